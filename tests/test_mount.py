"""Mounting daxfs the ways an administrator does: the daemon directly,
mount -t fuse.daxfs (through mount.fuse3), an fstab line, read-only, from
the installed tree; what /proc/mounts shows; every wrong input failing
with one line and a non-zero status; signals; --help and --version.
"""
import errno
import json
import os
import re
import signal
import subprocess
import uuid

import pytest

from conftest import (BUILD, binary, detach, is_mounted, new_region_path,
                      run, start_daxfs)
from helpers_ops import (MiB, daxfs_pids, fresh_region, mkfs, mounted,
                         read_file, run_prog, wait_for, which_ok,
                         write_file)

pytestmark = pytest.mark.usefixtures("need_fuse")

SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def info(daxfsctl, region):
    res = daxfsctl("info", "--json", region)
    assert res.rc == 0, res
    return json.loads(res.out)


def proc_mounts_line(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == mnt:
                return fields
    return None


def one_line_failure(res, *needles):
    assert res.rc > 0, f"expected a failure, not success or a signal: {res!r}"
    lines = res.err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0], f"want one line on stderr: {res!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def mountpoint(tmp_path, tag="mnt"):
    """A mount point unique to this test, so pgrep -f on it finds only
    the daemons this test started."""
    p = tmp_path / f"{tag}-{uuid.uuid4().hex[:10]}"
    p.mkdir()
    return str(p)


def reap(mnt):
    """After a test: nothing left mounted at mnt, no daemon of ours left
    serving it (ended by pid, only those whose command line names it)."""
    if is_mounted(mnt):
        run(["umount", mnt], timeout=30)
    detach(mnt)
    for pid in daxfs_pids(mnt):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_gone(mnt, timeout=20):
    return wait_for(lambda: not daxfs_pids(mnt), timeout=timeout)


def check_usable(mnt):
    write_file(os.path.join(mnt, "hello"), b"hello daxfs")
    assert read_file(os.path.join(mnt, "hello")) == b"hello daxfs"


# --- what /proc/mounts shows -------------------------------------------------

def test_proc_mounts(mount):
    fields = proc_mounts_line(mount.mnt)
    assert fields is not None
    assert fields[0] == mount.region
    assert fields[1] == os.path.realpath(mount.mnt)
    assert fields[2] == "fuse.daxfs"
    assert "rw" in fields[3].split(",")


def test_region_path_with_comma_and_space(daxfsctl, tmp_path):
    """The region is the mount's source even when its name needs escaping
    in the option list and in /proc/mounts."""
    path = f"/dev/shm/daxfs-test-odd,name {uuid.uuid4().hex[:8]}"
    mnt = mountpoint(tmp_path)
    try:
        mkfs(daxfsctl, path, "--size", "16M")
        with mounted(path, mnt) as m:
            fields = proc_mounts_line(m.mnt)
            assert fields[2] == "fuse.daxfs"
            # /proc/mounts escapes the space as \040
            assert fields[0].replace("\\040", " ") == path
            check_usable(m.mnt)
    finally:
        reap(mnt)
        if os.path.exists(path):
            os.unlink(path)


# --- mount(8) and fstab ------------------------------------------------------
#
# mount(8) (setuid, util-linux 2.38) runs its helpers with a sanitized
# environment: PATH is dropped, so mount.fuse3's "/bin/sh -c daxfs ..."
# searches the shell's default PATH (/usr/local/sbin:/usr/local/bin:...),
# whatever PATH the caller had.  To run "mount -t fuse.daxfs" against the
# build under test without installing it on this machine, these tests work
# in a private mount namespace in which a directory holding "daxfs" is
# bind-mounted over /usr/local/bin.  mount.fuse3 itself keeps PATH, which
# test_mount_fuse3_helper_uses_path shows directly.

NS_PRELUDE = """
set -eu
mount --bind "$BINDIR" /usr/local/bin
fail() { echo "FAIL: $*"; exit 1; }
gone() {
    k=0
    while pgrep -f "$MNT" >/dev/null; do
        k=$((k + 1)); [ $k -lt 200 ] || fail "daxfs still running"
        sleep 0.1
    done
    echo "no daxfs left"
}
"""


def mount_env(bindir):
    env = dict(os.environ)
    env["PATH"] = f"{bindir}:{SYS_PATH}"
    return env


def in_mount_ns(bindir, script, env=None, timeout=120):
    """Run a shell script in a private mount namespace with bindir over
    /usr/local/bin; the script gets $BINDIR, and whatever env adds."""
    full = mount_env(bindir)
    full["BINDIR"] = bindir
    full.update(env or {})
    return run(["unshare", "--mount", "--propagation", "private",
                "/bin/sh", "-c", NS_PRELUDE + script], env=full,
               timeout=timeout)


@pytest.fixture
def need_mount_fuse3():
    if not os.path.exists("/sbin/mount.fuse3") and not which_ok(
            "mount.fuse3"):
        pytest.skip("mount.fuse3 (package fuse3) is not installed")
    if not which_ok("unshare"):
        pytest.skip("unshare (util-linux) is not installed")


@pytest.fixture
def bindir(tmp_path):
    """A directory with daxfs (the build under test) and nothing else."""
    d = tmp_path / "bin"
    d.mkdir()
    os.symlink(binary("daxfs"), d / "daxfs")
    os.symlink(binary("daxfsctl"), d / "daxfsctl")
    return str(d)


MOUNT_SCRIPT = """
mount -t fuse.daxfs $OPTS "$REGION" "$MNT" || fail "mount exited $?"
grep " $MNT " /proc/self/mounts
pid=$(pgrep -f "$MNT")
echo "pid $pid exe $(readlink /proc/$pid/exe)"
echo hello > "$MNT/hello"
[ "$(cat "$MNT/hello")" = hello ] || fail "read back"
daxfsctl status --json "$MNT"; echo
umount "$MNT" || fail "umount exited $?"
grep -q " $MNT " /proc/self/mounts && fail "still mounted"
gone
"""


def parse_ns_output(out):
    lines = out.splitlines()
    mounts = [ln.split() for ln in lines if ln.count(" ") >= 5 and
              not ln.startswith(("pid ", "{"))]
    status = [json.loads(ln) for ln in lines if ln.startswith("{")]
    exe = [ln.split(" exe ")[1] for ln in lines if ln.startswith("pid ")]
    return mounts, status, exe


def test_mount_fuse3_helper_uses_path(daxfsctl, region, tmp_path,
                                      need_mount_fuse3):
    """mount.fuse3 runs "daxfs" from PATH with the argv the daemon takes."""
    mnt = mountpoint(tmp_path)
    helper = "/sbin/mount.fuse3" if os.path.exists("/sbin/mount.fuse3") \
        else "mount.fuse3"
    try:
        res = run([helper, region, mnt, "-t", "fuse.daxfs", "-o",
                   "rw,unbind_timeout=4"], env=mount_env(BUILD), timeout=60)
        assert res.rc == 0, res
        fields = proc_mounts_line(mnt)
        assert (fields[0], fields[2]) == (region, "fuse.daxfs")
        pids = daxfs_pids(mnt)
        assert len(pids) == 1, pids
        assert os.path.samefile(f"/proc/{pids[0]}/exe", binary("daxfs"))
        check_usable(mnt)
        st = daxfsctl("status", "--json", mnt)
        assert json.loads(st.out)["unbind_timeout_ms"] == 4000
        assert run(["umount", mnt], timeout=60).rc == 0
        assert not is_mounted(mnt)
        assert wait_gone(mnt), f"daxfs still running: {daxfs_pids(mnt)}"
        assert info(daxfsctl, region)["state"] == "clean"
    finally:
        reap(mnt)


def test_mount_t_fuse_daxfs(daxfsctl, region, tmp_path, bindir,
                            need_mount_fuse3):
    mnt = mountpoint(tmp_path)
    try:
        res = in_mount_ns(bindir, MOUNT_SCRIPT,
                          dict(REGION=region, MNT=mnt, OPTS=""))
        assert res.rc == 0, res
        mounts, status, exe = parse_ns_output(res.out)
        assert [m[:3] for m in mounts] == [[region, mnt, "fuse.daxfs"]]
        assert "rw" in mounts[0][3].split(",")
        assert exe == ["/usr/local/bin/daxfs"] or \
            os.path.realpath(exe[0]) == os.path.realpath(binary("daxfs"))
        assert status[0]["mountpoint"] == mnt
        assert "no daxfs left" in res.out
        assert not daxfs_pids(mnt)
        assert info(daxfsctl, region)["state"] == "clean"
    finally:
        reap(mnt)


def test_mount_t_with_options(daxfsctl, region, tmp_path, bindir,
                              need_mount_fuse3):
    mnt = mountpoint(tmp_path)
    try:
        res = in_mount_ns(bindir, MOUNT_SCRIPT, dict(
            REGION=region, MNT=mnt,
            OPTS="-o noatime,nodev,unbind_timeout=3,x-test=1"))
        assert res.rc == 0, res
        mounts, status, _ = parse_ns_output(res.out)
        opts = mounts[0][3].split(",")
        assert "noatime" in opts and "nodev" in opts
        assert status[0]["unbind_timeout_ms"] == 3000
        assert not daxfs_pids(mnt)
    finally:
        reap(mnt)


def test_mount_t_unknown_option_fails(region, tmp_path, bindir,
                                      need_mount_fuse3):
    mnt = mountpoint(tmp_path)
    try:
        res = in_mount_ns(bindir, """
mount -t fuse.daxfs -o no_such_option "$REGION" "$MNT" && fail "mounted"
grep -q " $MNT " /proc/self/mounts && fail "mounted anyway"
gone
""", dict(REGION=region, MNT=mnt))
        assert res.rc == 0, res
        assert "no_such_option" in res.err
        assert not daxfs_pids(mnt)
    finally:
        reap(mnt)


def test_fstab_entry(daxfsctl, region, tmp_path, bindir, need_mount_fuse3):
    mnt = mountpoint(tmp_path)
    fstab = tmp_path / "fstab"
    fstab.write_text("# daxfs test fstab\n"
                     f"{region} {mnt} fuse.daxfs "
                     "defaults,unbind_timeout=5 0 0\n")
    script = """
for round in 1 2; do
    mount --fstab "$FSTAB" "$MNT" || fail "mount exited $?"
    grep " $MNT " /proc/self/mounts
    [ $round = 1 ] && echo hello > "$MNT/hello"
    [ "$(cat "$MNT/hello")" = hello ] || fail "read back"
    daxfsctl status --json "$MNT"; echo
    umount "$MNT" || fail "umount exited $?"
    gone
done
"""
    try:
        res = in_mount_ns(bindir, script, dict(MNT=mnt, FSTAB=str(fstab)))
        assert res.rc == 0, res
        mounts, status, _ = parse_ns_output(res.out)
        assert [m[:3] for m in mounts] == [[region, mnt, "fuse.daxfs"]] * 2
        assert [s["unbind_timeout_ms"] for s in status] == [5000, 5000]
        assert res.out.count("no daxfs left") == 2
        assert not daxfs_pids(mnt)
        assert info(daxfsctl, region)["state"] == "clean"
    finally:
        reap(mnt)


# --- read-only ---------------------------------------------------------------

def test_read_only(daxfsctl, region, tmp_path):
    mnt = mountpoint(tmp_path)
    with mounted(region, mnt) as m:
        write_file(m.path("file"), b"written rw")
        os.mkdir(m.path("dir"))
        os.setxattr(m.path("file"), "user.k", b"v")
    before = info(daxfsctl, region)
    with mounted(region, mnt, opts=("-o", "ro")) as m:
        assert "ro" in proc_mounts_line(mnt)[3].split(",")
        assert read_file(m.path("file")) == b"written rw"
        assert os.getxattr(m.path("file"), "user.k") == b"v"
        assert set(os.listdir(m.mnt)) == {"file", "dir"}
        cases = [
            (os.open, m.path("file"), os.O_WRONLY),
            (os.open, m.path("new"), os.O_WRONLY | os.O_CREAT),
            (os.mkdir, m.path("d2")),
            (os.unlink, m.path("file")),
            (os.rmdir, m.path("dir")),
            (os.rename, m.path("file"), m.path("f2")),
            (os.symlink, "x", m.path("l")),
            (os.link, m.path("file"), m.path("h")),
            (os.chmod, m.path("file"), 0o600),
            (os.truncate, m.path("file"), 0),
            (os.setxattr, m.path("file"), "user.k", b"w"),
            (os.removexattr, m.path("file"), "user.k"),
            (os.utime, m.path("file"), None),
            (os.mkfifo, m.path("fifo")),
        ]
        for fn, *args in cases:
            with pytest.raises(OSError) as ei:
                fn(*args)
            assert ei.value.errno == errno.EROFS, (fn.__name__, args)
        assert read_file(m.path("file")) == b"written rw"
    after = info(daxfsctl, region)
    assert after["state"] == "clean"
    assert after["free_blocks"] == before["free_blocks"]
    assert after["used_inodes"] == before["used_inodes"]


# --- errors a person can make ------------------------------------------------

def daxfs_fails(args, mnt, timeout=30):
    """Run the daemon expecting it to refuse; never leave a mount."""
    try:
        return run([binary("daxfs"), *args], timeout=timeout)
    finally:
        reap(mnt)


@pytest.mark.parametrize("fg", [True, False], ids=["foreground",
                                                   "background"])
def test_unknown_option(region, tmp_path, fg):
    mnt = mountpoint(tmp_path)
    res = daxfs_fails((["-f"] if fg else []) +
                      ["-o", "rw,no_such_option", region, mnt], mnt)
    one_line_failure(res, "no_such_option")
    assert not is_mounted(mnt)
    for bad in (["-o", "unbind_timeout=soon"], ["-o", "attr_timeout=-1"],
                ["-x"], ["-o"]):
        res = daxfs_fails(["-f", *bad, region, mnt], mnt)
        one_line_failure(res)
    one_line_failure(daxfs_fails(["-f", region], mnt))
    one_line_failure(daxfs_fails(["-f", region, mnt, "extra"], mnt))


def make_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("fg", [True, False], ids=["foreground",
                                                   "background"])
@pytest.mark.parametrize("kind", ["unformatted", "garbage", "missing",
                                  "directory", "tiny", "chardev"])
def test_bad_region(tmp_path, kind, fg):
    mnt = mountpoint(tmp_path)
    path = new_region_path("bad")
    try:
        if kind == "unformatted":
            make_file(path, bytes(32 * MiB))
        elif kind == "garbage":
            make_file(path, os.urandom(32 * MiB))
        elif kind == "directory":
            os.mkdir(path)
        elif kind == "tiny":
            make_file(path, b"daxfs" * 10)
        elif kind == "chardev":
            path = "/dev/null"
        res = daxfs_fails((["-f"] if fg else []) + [path, mnt], mnt)
        one_line_failure(res, path)
        assert not is_mounted(mnt)
        assert not daxfs_pids(mnt)
        if kind in ("unformatted", "garbage"):
            # the region was not changed by the attempt
            assert os.path.getsize(path) == 32 * MiB
    finally:
        if path.startswith("/dev/shm/") and os.path.isdir(path):
            os.rmdir(path)
        elif path.startswith("/dev/shm/") and os.path.exists(path):
            os.unlink(path)


def test_corrupt_region(daxfsctl, tmp_path):
    """A formatted region whose superblocks were overwritten."""
    mnt = mountpoint(tmp_path)
    with fresh_region(daxfsctl, "corrupt", "--size", "16M") as path:
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.write(os.urandom(8192))               # primary superblock
            f.seek(size - 4096)
            f.write(os.urandom(4096))               # backup superblock
        res = daxfs_fails(["-f", path, mnt], mnt)
        one_line_failure(res, path)
        assert not is_mounted(mnt)


def test_region_already_mounted(region, tmp_path):
    mnt1, mnt2 = mountpoint(tmp_path, "one"), mountpoint(tmp_path, "two")
    with mounted(region, mnt1) as m:
        res = daxfs_fails(["-f", region, mnt2], mnt2)
        line = one_line_failure(res, region)
        assert f"in use by pid {m.proc.pid}" in line, line
        assert not is_mounted(mnt2)
        # the first mount is unharmed
        check_usable(m.mnt)
        # and the same mount point twice
        res = daxfs_fails(["-f", region, mnt1], mnt1 + "-none")
        one_line_failure(res)
        assert is_mounted(mnt1) and m.alive()


def test_bad_mountpoint(region, tmp_path):
    missing = str(tmp_path / "does-not-exist")
    res = daxfs_fails(["-f", region, missing], missing)
    one_line_failure(res, missing)
    assert not os.path.exists(missing)
    afile = str(tmp_path / "a-file")
    make_file(afile, b"")
    res = daxfs_fails(["-f", region, afile], afile)
    one_line_failure(res, afile)
    # the region was not left marked in use
    mnt = mountpoint(tmp_path)
    with mounted(region, mnt) as m:
        check_usable(m.mnt)


# --- signals -----------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_unmounts_cleanly(daxfsctl, region, tmp_path, sig):
    mnt = mountpoint(tmp_path)
    m = start_daxfs(region, mnt)
    try:
        check_usable(m.mnt)
        fd = os.open(m.path("big"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"z" * MiB)
        os.close(fd)
        os.kill(m.proc.pid, sig)
        rc = m.proc.wait(timeout=30)
        assert rc == 0, m.stderr()
        assert wait_for(lambda: not is_mounted(mnt), timeout=10)
        m.unmount()             # exit status and stderr checks
        st = info(daxfsctl, region)
        assert st["state"] == "clean"
        assert st["in_use_by_pid"] is None
    finally:
        m.cleanup()
    with mounted(region, mnt) as m2:
        assert read_file(m2.path("hello")) == b"hello daxfs"
        assert os.path.getsize(m2.path("big")) == MiB


# --- the single-threaded loop ------------------------------------------------

def test_single_threaded_daemon(region, tmp_path):
    """daxfs -s serves everything from one thread, mmap writeback
    included, without deadlocking."""
    mnt = mountpoint(tmp_path)
    with mounted(region, mnt, opts=("-s",)) as m:
        for case in ("coherent", "shared2", "private", "sigbus"):
            run_prog("daxfs_mmap", case, m.path(f"m-{case}"))
        run_prog("daxfs_syscalls", "utimens", m.path("m-coherent"))
        data = os.urandom(3 * MiB)
        write_file(m.path("f"), data)
        fi = os.open(m.path("f"), os.O_RDONLY)
        fo = os.open(m.path("g"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            assert os.copy_file_range(fi, fo, MiB, 0, 0) == MiB
        finally:
            os.close(fi)
            os.close(fo)
        assert read_file(m.path("g")) == data[:MiB]


# --- help and version --------------------------------------------------------

# -o options people pass to FUSE filesystems that daxfs does not take
UNKNOWN_OPTS = ["no_such_option", "max_read=4096", "blksize=4096",
                "direct_io", "kernel_cache", "uid=0", "gid=0", "umask=022",
                "debug", "big_writes", "auto_unmount"]


def test_help_and_version():
    res = run([binary("daxfs"), "--help"])
    assert res.rc == 0 and res.err == "", res
    assert "Usage: daxfs" in res.out
    for word in ("-f", "-d", "-s", "-o", "unbind_timeout", "entry_timeout",
                 "attr_timeout", "ro", "rw", "allow_other", "allow_root",
                 "--help", "--version"):
        assert re.search(r"(^|[\s,])" + re.escape(word) + r"\b", res.out), \
            word
    assert run([binary("daxfs"), "-h"]).out == res.out
    v = run([binary("daxfs"), "--version"])
    assert v.rc == 0 and v.err == "", v
    assert re.match(r"^daxfs \d+\.\d+\.\d+\b", v.out), v.out
    assert run([binary("daxfs"), "-V"]).out == v.out


def listed_options(text):
    """The -o options daxfs --help lists, each as one would pass it."""
    section = text.split("-o OPTIONS", 1)[1].split("-h, --help", 1)[0]
    opts = []
    for line in section.splitlines()[1:]:
        spec = re.split(r"\s{2,}", line.strip())[0]
        if not spec or not line.startswith("     ") or \
                line.startswith("      "):
            continue                      # a description line
        for word in spec.split(","):
            word = word.strip()
            if not word:
                continue
            name = word.split("=")[0]
            if word == "x-*":
                opts.append("x-test")
            elif "=" in word and "|" in word:
                # a choice: each of them
                opts.extend(f"{name}={v}"
                            for v in word.split("=", 1)[1].split("|"))
            elif "=" in word:
                opts.append(name + ("=x" if word.endswith("*") else "=1"))
            else:
                opts.append(name)
    return opts


def try_option(region, mnt, opt):
    """Mount with -o opt: (True, "") if it mounted (then unmounted), or
    (False, stderr) if the daemon refused."""
    proc = subprocess.Popen([binary("daxfs"), "-f", "-o", opt, region, mnt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert wait_for(lambda: is_mounted(mnt) or proc.poll() is not None,
                        timeout=20), f"-o {opt}: neither mounted nor exited"
        mounted_ = is_mounted(mnt)
        if mounted_:
            assert run(["umount", mnt]).rc == 0
        _, err = proc.communicate(timeout=30)
        if mounted_:
            assert proc.returncode == 0, (opt, err)
        else:
            assert proc.returncode > 0, (opt, err)
        return mounted_, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reap(mnt)


def test_help_lists_the_options():
    listed = listed_options(run([binary("daxfs"), "--help"]).out)
    for opt in ("unbind_timeout=1", "entry_timeout=1", "attr_timeout=1",
                "ro", "rw", "allow_other", "allow_root", "noatime",
                "defaults", "x-test"):
        assert opt in listed, (opt, listed)


def test_every_listed_option_mounts(region, tmp_path):
    listed = listed_options(run([binary("daxfs"), "--help"]).out)
    mnt = mountpoint(tmp_path)
    refused = {}
    for opt in listed:
        ok, err = try_option(region, mnt, opt)
        if not ok and not (opt == "transport=io_uring" and
                           "transport=io_uring:" in err):
            refused[opt] = err      # (io_uring may be off in the kernel)
    assert not refused, f"listed in --help but refused: {refused}"


def test_every_accepted_option_is_listed(region, tmp_path):
    listed = listed_options(run([binary("daxfs"), "--help"]).out)
    names = {o.split("=")[0] for o in listed}
    mnt = mountpoint(tmp_path)
    unlisted = []
    for opt in ("default_permissions", "fsname=x", "subtype=x", "diratime",
                "norelatime", "nosymfollow", "symfollow", "nostrictatime",
                "lazytime", "iversion", "silent", "loud", "remount",
                "bind"):
        if opt.split("=")[0] in names:
            continue
        ok, _ = try_option(region, mnt, opt)
        if ok:
            unlisted.append(opt)
    assert not unlisted, f"accepted but not in --help: {unlisted}"


def test_unknown_options_refused_with_one_line(region, tmp_path):
    mnt = mountpoint(tmp_path)
    for opt in UNKNOWN_OPTS:
        ok, err = try_option(region, mnt, opt)
        assert not ok, f"-o {opt} was accepted"
        lines = err.strip().split("\n")
        assert len(lines) == 1 and opt.split("=")[0] in lines[0], (opt, err)
        assert "unknown mount option" in lines[0], (opt, err)


def test_options_missing_their_value(region, tmp_path):
    """daxfs's own valued options given without a value: the line says
    so, rather than calling them unknown."""
    mnt = mountpoint(tmp_path)
    for opt in ("unbind_timeout", "entry_timeout", "attr_timeout",
                "read_ahead_kb", "max_dirty_ratio"):
        ok, err = try_option(region, mnt, opt)
        assert not ok, f"-o {opt} was accepted"
        lines = err.strip().split("\n")
        assert len(lines) == 1, (opt, err)
        assert f"mount option '{opt}' needs a value" in lines[0], (opt, err)


# --- the installed tree ------------------------------------------------------

@pytest.fixture
def installed(tmp_path):
    """cmake --install of the build under test into a staging directory
    (DESTDIR, so nothing outside it is touched)."""
    if not os.path.exists(os.path.join(BUILD, "cmake_install.cmake")):
        pytest.skip(f"{BUILD} is not a CMake build tree")
    dest = tmp_path / "destdir"
    prefix = "/tmp/daxfs-inst"
    env = dict(os.environ, DESTDIR=str(dest))
    res = run(["cmake", "--install", BUILD, "--prefix", prefix], env=env,
              timeout=120)
    assert res.rc == 0, res
    return str(dest) + prefix


def test_installed_tree_mounts(installed, daxfsctl, tmp_path,
                               need_mount_fuse3):
    """mkfs.daxfs and mount -t fuse.daxfs with nothing but the installed
    binaries (their sbin over /usr/local/bin in a private namespace, and
    first on PATH)."""
    sbin = os.path.join(installed, "sbin")
    for exe in ("daxfs", "daxfsctl"):
        assert os.access(os.path.join(sbin, exe), os.X_OK), exe
    path = new_region_path("inst")
    mnt = mountpoint(tmp_path)
    script = """
[ "$(command -v daxfsctl)" = "$BINDIR/daxfsctl" ] || fail "wrong daxfsctl"
[ "$(command -v mkfs.daxfs)" = "$BINDIR/mkfs.daxfs" ] || fail "no mkfs.daxfs"
mkfs.daxfs --size 32M "$REGION" >/dev/null || fail "mkfs exited $?"
""" + MOUNT_SCRIPT
    try:
        res = in_mount_ns(sbin, script, dict(REGION=path, MNT=mnt, OPTS=""))
        assert res.rc == 0, res
        mounts, status, exe = parse_ns_output(res.out)
        assert [m[:3] for m in mounts] == [[path, mnt, "fuse.daxfs"]]
        assert status[0]["state"] == "live"
        assert "no daxfs left" in res.out
        assert not daxfs_pids(mnt)
        assert info(daxfsctl, path)["state"] == "clean"
    finally:
        reap(mnt)
        if os.path.exists(path):
            os.unlink(path)


def test_installed_tree_has_mkfs_daxfs(installed, tmp_path):
    mkfs_daxfs = os.path.join(installed, "sbin", "mkfs.daxfs")
    assert os.access(mkfs_daxfs, os.X_OK), os.listdir(
        os.path.dirname(mkfs_daxfs))
    path = new_region_path("mkfs")
    try:
        res = run([mkfs_daxfs, "--size", "16M", path])
        assert res.rc == 0, res
    finally:
        if os.path.exists(path):
            os.unlink(path)


# --- regions the daemon must refuse ------------------------------------------

@pytest.mark.parametrize("fmt,off,value,why", [
    ("<H", 8, 2, "version 2.0 is not supported"),
    ("<Q", 32, 1 << 17, "incompatible features 0x20000"),
], ids=["newer-major-version", "unknown-incompat-feature"])
def test_daemon_refuses_newer_format(region, tmp_path, fmt, off, value,
                                     why):
    """A region written by a newer daxfs: the daemon refuses it with one
    line, mounts nothing, and leaves the region as it was."""
    from test_daxfsctl import rewrite_superblocks
    rewrite_superblocks(region, fmt, off, value)
    with open(region, "rb") as f:
        before = f.read()
    mnt = mountpoint(tmp_path)
    res = run([binary("daxfs"), "-f", region, mnt], timeout=60)
    assert res.rc == 1, res
    lines = res.err.strip().split("\n")
    assert len(lines) == 1 and why in lines[0] and region in lines[0], res
    assert not is_mounted(mnt)
    with open(region, "rb") as f:
        assert f.read() == before, "the refused region was changed"
