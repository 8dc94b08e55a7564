"""Unbinding a daxfs region while applications use it.

The forced-unbind script (tests/unbind/forced-unbind.sh) runs each mode
end to end: orderly (daxfsctl unbind), truncate and delete of a file
region.  The focused tests below check one promise each: what `daxfsctl
status` says in every phase, ENXIO for new opens, EIO on descriptors opened
before, SIGBUS on a revoked mapping, an idle daemon noticing a vanished
region, the one-line errors, and that umount and remount work afterwards.
The stress test repeats unbind/remount under load: 10 cycles by default,
200 with DAXFS_STRESS=1.
"""
import errno
import json
import mmap
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import (BUILD, ROOT, binary, detach, is_mounted, new_region_path,
                      run, start_daxfs)
from helpers_ops import status, wait_state

SCRIPT = os.path.join(ROOT, "tests", "unbind", "forced-unbind.sh")
STRESS = os.environ.get("DAXFS_STRESS") == "1"

pytestmark = pytest.mark.usefixtures("need_fuse")


def unbind(mnt, *args, timeout=60):
    res = run([binary("daxfsctl"), "unbind", "--json", *args, str(mnt)],
              timeout=timeout)
    return res


def readline_within(proc, secs):
    """A line from proc's stdout, or AssertionError after secs."""
    import select
    ready, _, _ = select.select([proc.stdout], [], [], secs)
    assert ready, f"no output from {proc.args[:3]} within {secs} s"
    return proc.stdout.readline()


def expect_errno(err, fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err, \
        f"{fn.__name__}{args}: {e.value} (want {errno.errorcode[err]})"


@pytest.fixture
def big_region(daxfsctl):
    """A formatted 512 MiB file region, removed afterwards."""
    path = new_region_path("unbind")
    res = daxfsctl("mkfs", "--size", "512M", path)
    assert res.rc == 0, res
    yield path
    for p in (path, path + ".restored"):
        if os.path.lexists(p):
            os.unlink(p)


# --- the script ---------------------------------------------------------------

# unbind_timeout for the scripted runs: the release takes tens of ms here,
# but the drain waits on a load of 256 io_uring requests and four kinds of
# workers, on a loaded CI machine, possibly in the ASan build
SCRIPT_TIMEOUT = 30


def run_script(mode):
    """Run forced-unbind.sh in one mode; its stdout, and the file region
    it made for itself (/dev/shm/daxfs-forced-unbind-PID), which it must
    have removed."""
    argv = ["bash", SCRIPT, "--mode", mode, "--build", BUILD,
            "--size", "256M", "--files", "64", "--file-size", "1M",
            "--uring-depth", "256", "--timeout", str(SCRIPT_TIMEOUT)]
    # the script mounts under its own mktemp directory: not under pytest's
    # basetemp, which a concurrent pytest run may rename and clean out
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    own_region = f"/dev/shm/daxfs-forced-unbind-{proc.pid}"
    out = stdout + stderr
    m = re.search(rf"^summary: mode={mode} pass=(\d+) fail=(\d+) skip=(\d+)$",
                  stdout, re.M)
    assert m, f"no summary for {mode}:\n{out}"
    assert int(m.group(2)) == 0 and proc.returncode == 0, \
        "failed checks:\n" + "\n".join(
            line for line in out.splitlines() if line.startswith("FAIL")) + \
        f"\n\nfull output:\n{out}"
    assert int(m.group(1)) >= 25, out
    rel = re.search(rf"^release: mode={mode} ms=(\d+)$", stdout, re.M)
    assert rel and int(rel.group(1)) <= SCRIPT_TIMEOUT * 1000, out
    for line in stdout.splitlines():
        if line.startswith("orderly unbind released") or \
                line.startswith("SKIP"):
            print(line)
    return stdout, own_region


@pytest.mark.parametrize("mode", ["orderly", "truncate", "delete"])
def test_forced_unbind_script(mode):
    out, own_region = run_script(mode)
    if mode == "orderly":
        assert re.search(r"^orderly unbind released the region in \d+ ms "
                         r"\(revoke \d+ ms, drain \d+ ms, release \d+ ms; "
                         r"\d+ bytes written back\)", out, re.M), out
    # (only its own: the other pytest pass may be running the script now)
    assert not os.path.exists(own_region), f"{own_region} left behind"


def test_script_usage_errors():
    res = run(["bash", SCRIPT, "--mode", "sideways", "--build", BUILD])
    assert res.rc == 2 and "unknown mode" in res.err, res
    res = run(["bash", SCRIPT, "--mode", "driver", "--build", BUILD])
    assert res.rc == 2 and "device-DAX" in res.err, res
    res = run(["bash", SCRIPT, "--region", "/dev/null", "--build", BUILD])
    assert res.rc == 2 and len(res.err.strip().splitlines()) == 1, res


# --- loadgen's verifier is not vacuous ---------------------------------------

def test_loadgen_verify_catches_loss(tmp_path):
    lg = binary("daxfs_loadgen")
    d = tmp_path / "lg"
    assert run([lg, "--dir", d, "--phase", "prepare", "--files", "2",
                "--size", "64K"]).rc == 0
    assert run([lg, "--dir", d, "--phase", "verify"]).rc == 0
    state = tmp_path / "state"
    state.write_text("daxfs-loadgen-state 1\nfiles 2 size 65536\n"
                     "ack 1 3 7\n")
    res = run([lg, "--dir", d, "--phase", "verify", "--state", state,
               "--json"])
    assert res.rc == 1, res
    v = json.loads(res.out)
    assert v["stale_blocks"] == 1 and "file 1 block 3" in v["examples"], v
    with open(d / "f0001.dat", "r+b") as f:
        f.seek(4096 * 5 + 8)
        f.write(b"\0" * 8)
    res = run([lg, "--dir", d, "--phase", "verify", "--json"])
    assert res.rc == 1 and json.loads(res.out)["invalid_blocks"] == 1, res
    assert run([lg, "--dir", d, "--phase", "sideways"]).rc == 2


# --- status -----------------------------------------------------------------

DIRTIER = textwrap.dedent("""
    import mmap, os, sys
    path, size = sys.argv[1], int(sys.argv[2])
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, size)
    m = mmap.mmap(fd, size, mmap.MAP_SHARED)
    for off in range(0, size, 4096):
        m[off:off + 8] = b"dirtied!"
    print("ready", flush=True)
    sys.stdin.read()
    m[0]          # after the unbind: SIGBUS kills us
    print("no SIGBUS", flush=True)
""")


def test_status_in_every_phase(big_region, tmp_path):
    m = start_daxfs(big_region, tmp_path / "mnt",
                    opts=("-o", "unbind_timeout=10"))
    fds = []
    try:
        check_status_phases(m, fds)
        for fd in fds:
            os.close(fd)
        fds = []
        deadline = time.monotonic() + 10
        while status(m.mnt)["open_files"] and time.monotonic() < deadline:
            time.sleep(0.02)     # RELEASE is sent after close(2) returns
        assert status(m.mnt)["open_files"] == 0
        m.unmount()
    except BaseException:
        for fd in fds:
            os.close(fd)
        m.cleanup()
        raise
    # every page the child dirtied before the unbind is in the region
    m = start_daxfs(big_region, tmp_path / "mnt")
    try:
        with open(m.path("dirty"), "rb") as f:
            data = f.read()
        assert len(data) == 320 << 20
        bad = [off for off in range(0, len(data), 4096)
               if data[off:off + 8] != b"dirtied!"]
        assert not bad, f"{len(bad)} dirtied pages lost, first at {bad[0]}"
        m.unmount()
    except BaseException:
        m.cleanup()
        raise


def check_status_phases(big_mount, fds):
    mnt = big_mount.mnt
    st = status(mnt)
    assert st["state"] == "live" and st["unbind"] is None
    assert st["inflight"] == 0 and st["open_files"] == 0
    assert st["inside"] == "", st
    assert st["kind"] == "file" and st["unbind_timeout_ms"] == 10000
    base_users = st["page_users"]

    for k in range(3):
        p = big_mount.path(f"held{k}")
        with open(p, "wb") as f:
            f.write(b"x" * 8192)
            f.flush()
            os.fsync(f.fileno())
        fds.append(os.open(p, os.O_RDONLY))
    # the writers' RELEASEs are sent after close(2) returns: wait for them
    deadline = time.monotonic() + 10
    while (st := status(mnt))["open_files"] != 3 or st["inflight"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert st["open_files"] == 3, st
    assert st["page_users"] >= base_users + 3, st
    assert st["inflight"] == 0, st

    # a child with 320 MiB of dirty shared pages: revoking writes back
    # whatever the kernel has not written yet, which takes long enough to
    # watch the phases go by
    dirtier = subprocess.Popen([sys.executable, "-c", DIRTIER,
                                big_mount.path("dirty"), str(320 << 20)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert readline_within(dirtier, 60).strip() == "ready"
        u = subprocess.Popen([binary("daxfsctl"), "unbind", "--json", mnt],
                             stdout=subprocess.PIPE, text=True)
        seen = []
        texts = []
        deadline = time.monotonic() + 90
        while u.poll() is None and time.monotonic() < deadline:
            seen.append(status(mnt))
            if seen[-1]["state"] == "revoking" and not texts:
                texts.append(run([binary("daxfsctl"), "status", mnt]).out)
        out, _ = u.communicate(timeout=60)
        assert u.returncode == 0, out
        final = status(mnt)
        dirtier.stdin.close()
        assert dirtier.wait(timeout=30) == -signal.SIGBUS
    finally:
        if dirtier.poll() is None:
            dirtier.kill()
            dirtier.wait()

    order = ["live", "revoking", "draining", "released"]
    states = [s["state"] for s in seen] + [final["state"]]
    idx = [order.index(s) for s in states]
    assert idx == sorted(idx), states
    for text in texts:
        # the text form says the unbind is under way and what it has done
        # so far, not zeros that read like results
        assert "in progress: revoking" in text or "released" in text, text
        if "in progress: revoking" in text:
            assert "revoking:" in text and "so far" in text, text
            assert "released:" not in text, text
    running = []
    for s in seen:
        if s["state"] != "live":
            # the report exists from the moment the sequence starts
            assert s["unbind"] and s["unbind"]["cause"] == \
                "daxfsctl unbind", s
            assert s["unbind"]["forced"] is False
            running.append(s)
        if s["state"] == "revoking":
            r = s["unbind"]
            assert r["phase"] == "revoking" and r["in_progress"], s
            # an inode leaves the page users once revoked
            assert s["page_users"] + r["inodes_revoked"] >= 4, s
        if s["state"] == "draining":
            assert s["unbind"]["phase"] in ("draining", "releasing"), s
            assert s["page_users"] == 0, s
    # while it runs, the report's figures are the ones so far: they only
    # grow, and never past the final ones
    for key in ("ms_total", "bytes_written_back", "inodes_revoked"):
        vals = [s["unbind"][key] for s in running
                if s["unbind"]["phase"] != "done"]
        assert vals == sorted(vals), (key, vals)
        assert all(v <= final["unbind"][key] for v in vals), (key, vals)
    revoking = [s for s in running if s["state"] == "revoking"]
    if len(revoking) > 1:
        assert revoking[-1]["unbind"]["ms_revoke"] > 0, revoking[-1]

    assert final["state"] == "released"
    r = final["unbind"]
    assert r["phase"] == "done" and r["in_progress"] is False, r
    assert r["forced"] is False and r["timed_out"] is False
    assert r["error"] == 0 and r["bytes_lost"] == 0
    assert r["inodes_revoked"] >= 4, r
    assert r["ms_total"] >= r["ms_revoke"] + r["ms_drain"] + \
        r["ms_release"], r
    assert r["uring_cancelled"] >= 1, r
    assert abs(r["started_unix_ms"] / 1000 - time.time()) < 120, r
    assert final["inflight"] == 0 and final["uring_ops"] == 0, final
    assert final["page_users"] == 0, final
    # the dead child's RELEASE arrives after its exit
    deadline = time.monotonic() + 10
    while status(mnt)["open_files"] != 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert status(mnt)["open_files"] == 3
    # the unbind's own JSON says the same
    assert json.loads(out)["unbind"]["inodes_revoked"] == \
        r["inodes_revoked"]
    for text in texts:
        print(f"daxfsctl status while revoking:\n{text}")
    print(f"states seen while unbinding: "
          f"{sorted(set(states), key=order.index)}; revoke "
          f"{r['ms_revoke']} ms, {r['bytes_written_back']} bytes written "
          f"back")


# --- what applications see --------------------------------------------------

def test_open_and_create_fail_with_enxio(need_fuse, region, tmp_path):
    m = start_daxfs(region, tmp_path / "mnt")
    try:
        for k in range(3):
            with open(m.path(f"f{k}"), "w") as f:
                f.write("data")
        os.mkdir(m.path("sub"))
        m.unmount()
        # remounted: the kernel caches none of these names, so opening
        # one sends a LOOKUP, which must answer ENXIO too
        m = start_daxfs(region, tmp_path / "mnt")
        os.stat(m.path("f0"))
        assert unbind(m.mnt).rc == 0
        expect_errno(errno.ENXIO, os.open, m.path("f0"), os.O_RDONLY)
        expect_errno(errno.ENXIO, os.open, m.path("f1"), os.O_RDONLY)
        expect_errno(errno.ENXIO, os.open, m.path("f2"), os.O_RDWR)
        expect_errno(errno.ENXIO, os.open, m.path("new"),
                     os.O_CREAT | os.O_WRONLY, 0o644)
        expect_errno(errno.ENXIO, os.open, m.path("sub", "new"),
                     os.O_CREAT | os.O_WRONLY, 0o644)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise


def test_read_write_fail_with_eio_on_earlier_descriptor(mount):
    p = mount.path("f")
    with open(p, "wb") as f:
        f.write(os.urandom(1 << 20))
    fd = os.open(p, os.O_RDWR)
    os.pread(fd, 4096, 0)       # some pages cached, some not
    try:
        assert unbind(mount.mnt).rc == 0
        expect_errno(errno.EIO, os.pread, fd, 4096, 0)
        expect_errno(errno.EIO, os.pread, fd, 4096, 512 << 10)
        expect_errno(errno.EIO, os.pwrite, fd, b"y" * 4096, 8192)
        expect_errno(errno.EIO, os.fsync, fd)
    finally:
        os.close(fd)


def test_mapped_access_raises_sigbus(mount):
    p = mount.path("f")
    with open(p, "wb") as f:
        f.write(b"z" * (64 << 10))
    fd = os.open(p, os.O_RDWR)
    m = mmap.mmap(fd, 64 << 10, mmap.MAP_SHARED)
    assert m[0:1] == b"z"
    try:
        assert unbind(mount.mnt).rc == 0
        for what in ("load", "store"):
            pid = os.fork()
            if pid == 0:
                import resource
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                signal.signal(signal.SIGBUS, signal.SIG_DFL)
                if what == "load":
                    m[8192]
                else:
                    m[0:1] = b"q"
                os._exit(0)
            _, st = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGBUS, \
                f"mapped {what} after unbind: wait status {st:#x}"
    finally:
        m.close()
        os.close(fd)


# --- triggers ---------------------------------------------------------------

def test_forced_unbind_counts_lost_data(big_region, tmp_path):
    """A region cut under dirty shared mappings: the pages whose blocks
    were cut off cannot be written back, and the report says how much was
    lost instead of claiming it was saved."""
    size = 128 << 20
    m = start_daxfs(big_region, tmp_path / "mnt")
    dirtier = subprocess.Popen([sys.executable, "-c", DIRTIER,
                                m.path("dirty"), str(size)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert readline_within(dirtier, 60).strip() == "ready"
        os.truncate(big_region, 16 << 20)     # the file's blocks are gone
        st = wait_state(m.mnt, "released", 60)
        assert st["state"] == "released", st
        r = st["unbind"]
        assert r["forced"] is True and r["phase"] == "done", r
        assert r["bytes_lost"] > 0, r
        assert r["bytes_lost"] + r["bytes_written_back"] <= size, r
        dirtier.stdin.close()
        assert dirtier.wait(timeout=30) == -signal.SIGBUS
        m.unmount()
        print(f"cut under {size >> 20} MiB of dirty pages: "
              f"{r['bytes_lost']} bytes lost, {r['bytes_written_back']} "
              f"written back")
    except BaseException:
        if dirtier.poll() is None:
            dirtier.kill()
            dirtier.wait()
        m.cleanup()
        raise


@pytest.mark.parametrize("how", ["truncate", "delete"])
def test_idle_daemon_notices_vanished_region(how, need_fuse, region,
                                            tmp_path):
    m = start_daxfs(region, tmp_path / "mnt")
    keep = os.open(region, os.O_RDONLY)     # keeps a deleted region's data
    try:
        assert status(m.mnt)["state"] == "live"
        cut_ms = time.time() * 1000
        if how == "truncate":
            os.truncate(region, 16 << 20)
        else:
            os.unlink(region)
        st = wait_state(m.mnt, "released", 30)
        assert st["state"] == "released", st
        # how long the idle daemon took to notice, by its own clock (the
        # watcher looks about once a second); the bound leaves room for a
        # loaded machine, the figure is printed
        took = (st["unbind"]["started_unix_ms"] - cut_ms) / 1000
        print(f"an idle daemon noticed the {how} after {took:.2f} s")
        assert took < 5, f"noticed after {took:.2f} s"
        assert st["unbind"]["forced"] is True, st
        assert "truncated or deleted" in st["unbind"]["cause"], st
        expect_errno(errno.ENXIO, os.open, m.path("x"),
                     os.O_CREAT | os.O_WRONLY, 0o644)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    finally:
        os.close(keep)
    if how == "truncate":
        # a vanished region is never written to, let alone marked clean:
        # extended back to its size, it must not pass for a clean one
        os.truncate(region, 64 << 20)
        res = run([binary("daxfsctl"), "info", "--json", region])
        assert res.rc == 0, res
        assert json.loads(res.out)["state"] != "clean", res.out


def test_unbind_of_other_directory_is_one_line(daxfsctl, tmp_path):
    res = daxfsctl("unbind", tmp_path)
    assert res.rc == 1, res
    assert res.err.count("\n") == 1 and "not a daxfs mount point" in res.err
    res = daxfsctl("unbind", tmp_path / "missing")
    assert res.rc == 1 and res.err.count("\n") == 1, res
    res = daxfsctl("unbind", "--timeout", "soon", tmp_path)
    assert res.rc == 2 and res.err.count("\n") == 1, res


def test_unbind_twice_is_harmless(mount):
    first = unbind(mount.mnt)
    assert first.rc == 0, first
    r1 = json.loads(first.out)["unbind"]
    second = unbind(mount.mnt)
    assert second.rc == 0, second
    r2 = json.loads(second.out)["unbind"]
    assert r2["started_unix_ms"] == r1["started_unix_ms"], (r1, r2)
    assert r2["cause"] == "daxfsctl unbind"
    assert status(mount.mnt)["state"] == "released"
    text = run([binary("daxfsctl"), "status", mount.mnt])
    assert text.rc == 0 and "state:        released" in text.out, text
    assert "in progress" not in text.out, text
    assert mount.alive()


def test_drain_timeout_names_the_straggler(need_fuse, daxfsctl, tmp_path):
    """A request still inside when the drain times out: the region is
    released anyway, the report names the request, daxfsctl exits 3, and
    the request ends (short or failed) instead of hanging."""
    region = new_region_path("straggler")
    assert daxfsctl("mkfs", "--size", "3G", region).rc == 0
    m = start_daxfs(region, tmp_path / "mnt")
    size = 1 << 30
    try:
        src, dst = m.path("src"), m.path("dst")
        # A long copy: 1 GiB, mostly a hole (cheap to set up, but every
        # byte of it is still written into fresh blocks of dst), ending in
        # 1 MiB of fsynced data that must survive the release.
        chunk = os.urandom(1 << 20)
        with open(src, "wb") as f:
            f.truncate(size - len(chunk))
            f.seek(size - len(chunk))
            f.write(chunk)
            os.fsync(f.fileno())
        fi = os.open(src, os.O_RDONLY)
        fo = os.open(dst, os.O_RDWR | os.O_CREAT, 0o644)
        want = f"copy_file_range on inode {os.fstat(fo).st_ino} for"
        result = {}

        def copy():
            try:
                result["n"] = os.copy_file_range(fi, fo, size, 0, 0)
            except OSError as e:
                result["n"] = e
        import threading
        # the copy and every status below from one CPU: over io_uring
        # they meet on one queue, and status must still be answered
        # while the copy runs (a worker busy with a long request must not
        # hold up the next one from its CPU)
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        t = threading.Thread(target=copy)
        t.start()
        # unbind only once the daemon is inside the copy (a RELEASE of
        # src still in flight, or the kernel's own steps before it sends
        # the copy, must not count), as status says while it runs
        deadline = time.monotonic() + 30
        try:
            while want not in (st := status(m.mnt))["inside"]:
                assert "n" not in result, f"the copy ended first: {result}"
                assert time.monotonic() < deadline, f"never inside: {st}"
                time.sleep(0.005)
            assert st["inflight"] >= 1, st
            res = unbind(m.mnt, "--timeout", "0.001")
        finally:
            os.sched_setaffinity(0, cpus)
        t.join(60)
        assert not t.is_alive(), "copy_file_range hung after the release"
        os.close(fi)
        os.close(fo)
        rep = json.loads(res.out)["unbind"]
        if not rep["timed_out"]:
            pytest.fail(f"the copy ended before the drain; report {rep}")
        assert res.rc == 3, res
        assert "copy_file_range on inode" in rep["holders"], rep
        n = result["n"]
        assert isinstance(n, OSError) or n < size, result
        assert status(m.mnt)["state"] == "released"
        m.unmount()
        m = start_daxfs(region, tmp_path / "mnt")
        with open(src, "rb") as f:
            f.seek(size - len(chunk))
            assert f.read() == chunk
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    finally:
        os.unlink(region)


def test_umount_after_release_and_remount(need_fuse, region, daxfsctl,
                                          tmp_path):
    m = start_daxfs(region, tmp_path / "mnt")
    try:
        with open(m.path("kept"), "wb") as f:
            f.write(b"acknowledged" * 1000)
            os.fsync(f.fileno())
        assert unbind(m.mnt).rc == 0
        # released: the lock is gone, so the region can be inspected
        res = daxfsctl("info", "--json", region)
        assert res.rc == 0, res
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    assert not is_mounted(m.mnt)
    m = start_daxfs(region, tmp_path / "mnt")
    try:
        with open(m.path("kept"), "rb") as f:
            assert f.read() == b"acknowledged" * 1000
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    if run([binary("daxfsctl"), "fsck", "--help"]).rc == 0:
        res = daxfsctl("fsck", region)
        assert res.rc == 0, res


# --- stress -----------------------------------------------------------------

def test_unbind_remount_cycles_under_load(need_fuse, big_region, daxfsctl,
                                          tmp_path):
    cycles = 200 if STRESS else 10
    lg = binary("daxfs_loadgen")
    mnt = tmp_path / "mnt"
    state = tmp_path / "state"
    have_fsck = run([binary("daxfsctl"), "fsck", "--help"]).rc == 0
    m = start_daxfs(big_region, mnt)
    try:
        res = run([lg, "--dir", mnt / "lg", "--phase", "prepare",
                   "--files", "16", "--size", "256K"])
        assert res.rc == 0, res
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    for cycle in range(cycles):
        m = start_daxfs(big_region, mnt, opts=("-o", "unbind_timeout=30"))
        ready = tmp_path / f"ready{cycle}"
        try:
            load = subprocess.Popen(
                [lg, "--dir", mnt / "lg", "--phase", "run", "--json",
                 "--state", state, "--ready", ready, "--mmap-workers", "1",
                 "--uring-depth", "32", "--duration", "120",
                 "--hang-timeout", "20"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 30
            while not ready.exists() and load.poll() is None and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
            assert ready.exists(), f"cycle {cycle}: load never got going"
            time.sleep(0.05 * (cycle % 5))
            res = unbind(mnt)
            assert res.rc == 0, f"cycle {cycle}: {res}"
            out, err = load.communicate(timeout=90)
            rep = json.loads(out)
            assert load.returncode == 0 and not rep["hung"], \
                f"cycle {cycle}: {out}\n{err}"
            assert rep["all_failed"] and rep["probe_ok"] == 0, \
                f"cycle {cycle}: {out}"
            assert m.alive(), f"cycle {cycle}: daemon died"
            m.unmount()
        except BaseException:
            if load.poll() is None:
                load.kill()
                load.wait()
            m.cleanup()
            raise
        m = start_daxfs(big_region, mnt)
        try:
            res = run([lg, "--dir", mnt / "lg", "--phase", "verify",
                       "--state", state])
            assert res.rc == 0, f"cycle {cycle}: {res}"
            m.unmount()
        except BaseException:
            m.cleanup()
            raise
        if have_fsck and (STRESS or cycle == cycles - 1 or cycle % 3 == 0):
            res = daxfsctl("fsck", big_region)
            assert res.rc == 0, f"cycle {cycle}: {res}"
    detach(mnt)
