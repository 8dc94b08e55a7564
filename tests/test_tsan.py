"""ThreadSanitizer: the daemon built with -DDAXFS_TSAN=ON serves a
concurrent load (threads creating, writing, reading, mapping, renaming,
listing and unlinking, plus daxfs_loadgen's mmap, io_uring and
pread/pwrite workers), is unbound while the load runs -- orderly with
`daxfsctl unbind`, and forced by truncating the region -- and is unmounted.
Any "WARNING: ThreadSanitizer" in the daemon's stderr fails the test
(Mount.unmount() checks the sanitizer markers).

The TSan build is found through $DAXFS_TSAN_BUILD, e.g.

    cmake -S . -B build-tsan -DDAXFS_TSAN=ON && cmake --build build-tsan
    DAXFS_TSAN_BUILD=$PWD/build-tsan python3 -m pytest tests/test_tsan.py

Without it every test here skips, saying so.  The C test of the gate
itself is tests/unit/test_gate.c, run by ctest in the TSan build.
"""
import errno
import mmap
import os
import shutil
import subprocess
import threading
import time

import pytest

import conftest
from conftest import new_region_path, run, start_daxfs
from helpers_ops import file_lifecycle_churn, wait_for

TSAN_BUILD = os.environ.get("DAXFS_TSAN_BUILD")
PLAIN_BUILD = conftest.BUILD        # before the fixture below points it away

pytestmark = [
    pytest.mark.usefixtures("need_fuse"),
    pytest.mark.skipif(not TSAN_BUILD, reason="DAXFS_TSAN_BUILD (a "
                       "-DDAXFS_TSAN=ON build directory) is not set; "
                       "scripts/test.sh sets it in the normal build's "
                       "pass only"),
]

# report every race, keep going (a mount must come down cleanly to be
# checked), no false reports from the uninstrumented libfuse's own threads
# being told apart from ours
TSAN_OPTIONS = "halt_on_error=0:second_deadlock_stack=1:history_size=4"
# the daemons here take the default transport whatever the pass runs over
# ($DAXFS_TEST_TRANSPORT): FUSE over io_uring when the kernel offers it


@pytest.fixture
def tsan(monkeypatch):
    """Binaries (daxfs, daxfsctl, daxfs_loadgen) from the TSan build."""
    for name in ("daxfs", "daxfsctl", "daxfs_loadgen"):
        path = os.path.join(TSAN_BUILD, name)
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is not built")
    out = run(["nm", "-D", os.path.join(TSAN_BUILD, "daxfs")]).out + \
        run(["nm", os.path.join(TSAN_BUILD, "daxfs")]).out
    if "__tsan_init" not in out:
        pytest.fail(f"{TSAN_BUILD}/daxfs is not built with "
                    f"-DDAXFS_TSAN=ON")
    monkeypatch.setattr(conftest, "BUILD", TSAN_BUILD)
    return TSAN_BUILD


@pytest.fixture
def tsan_region(tsan):
    path = new_region_path("tsan")
    res = run([os.path.join(tsan, "daxfsctl"), "mkfs", "--size", "256M",
               path])
    assert res.rc == 0, res
    yield path
    if os.path.lexists(path):
        os.unlink(path)


class Load:
    """Threads doing everything a filesystem is asked to do, until told to
    stop; errors after the unbind are expected and counted, not raised."""

    OPS = ("create", "write", "read", "mmap", "rename", "list", "unlink",
           "xattr", "truncate", "mkdir")

    def __init__(self, root, nthreads=6):
        self.root = root
        self.stop = threading.Event()
        # a store to a mapping revoked by the unbind raises SIGBUS, which
        # would kill this very process: mappings stop before the unbind
        # (daxfs_loadgen, a process of its own, maps across it)
        self.mmap_ok = threading.Event()
        self.mmap_ok.set()
        self.mapping = 0
        self.ops = 0
        self.errors = {}
        self.unexpected = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.worker, args=(k,))
                        for k in range(nthreads)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop_mapping(self):
        self.mmap_ok.clear()
        while True:
            with self.lock:
                if not self.mapping:
                    return
            time.sleep(0.001)

    def finish(self, timeout=60):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def count_error(self, e):
        with self.lock:
            self.errors[e.errno] = self.errors.get(e.errno, 0) + 1

    def worker(self, k):
        d = os.path.join(self.root, f"w{k}")
        shared = os.path.join(self.root, "shared")
        n = 0
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            self.count_error(e)
        while not self.stop.is_set():
            op = self.OPS[(n + k) % len(self.OPS)]
            p = os.path.join(d, f"f{n % 16}")
            try:
                self.one(op, p, d, shared, n)
            except OSError as e:
                # ENOENT/EEXIST/ENOTEMPTY: threads racing on names
                self.count_error(e)
                if e.errno not in (errno.ENOENT, errno.EEXIST,
                                   errno.ENOTEMPTY, errno.EIO, errno.ENXIO,
                                   errno.ENODATA, errno.ESTALE):
                    self.unexpected.append(f"{op} {p}: {e}")
            except (ValueError, BufferError) as e:
                self.unexpected.append(f"{op} {p}: {e!r}")
            n += 1
            with self.lock:
                self.ops += 1

    @staticmethod
    def map_once(p):
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 16384)
            m = mmap.mmap(fd, 16384, mmap.MAP_SHARED)
            try:
                m[0:8] = b"mapped!!"
                m[8192] = 1
                m.flush()
            finally:
                m.close()
        finally:
            os.close(fd)

    def one(self, op, p, d, shared, n):
        if op == "create":
            fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        elif op == "write":
            with open(p, "ab") as f:
                f.write(os.urandom(4096 + n % 5000))
                if n % 4 == 0:
                    os.fsync(f.fileno())
            with open(shared, "ab") as f:
                f.write(b"s" * 100)
        elif op == "read":
            with open(p, "rb") as f:
                f.read()
            with open(shared, "rb") as f:
                f.read(65536)
        elif op == "mmap":
            with self.lock:
                if not self.mmap_ok.is_set():
                    return
                self.mapping += 1
            try:
                self.map_once(p)
            finally:
                with self.lock:
                    self.mapping -= 1
        elif op == "rename":
            os.rename(p, os.path.join(d, f"f{(n + 7) % 16}"))
        elif op == "list":
            os.listdir(d)
            os.listdir(self.root)
            os.stat(p)
        elif op == "unlink":
            os.unlink(p)
        elif op == "xattr":
            os.setxattr(p, "user.t", str(n).encode())
            os.getxattr(p, "user.t")
            os.listxattr(p)
        elif op == "truncate":
            os.truncate(p, n % 20000)
        elif op == "mkdir":
            sub = os.path.join(d, f"sub{n % 4}")
            if n % 8 < 4:
                os.mkdir(sub)
            else:
                os.rmdir(sub)


def loadgen(tsan, mnt, tmp_path, tag):
    """daxfs_loadgen running mmap, io_uring and rw workers; returned once
    every worker is under way.  The load is not what is under test: the
    plain build's loadgen is used when there is one (faster)."""
    lg = os.path.join(PLAIN_BUILD, "daxfs_loadgen")
    if not os.access(lg, os.X_OK):
        lg = os.path.join(tsan, "daxfs_loadgen")
    d = os.path.join(mnt, "lg")
    res = run([lg, "--dir", d, "--phase", "prepare", "--files", "8",
               "--size", "256K"], timeout=120)
    assert res.rc == 0, res
    ready = tmp_path / f"ready-{tag}"
    proc = subprocess.Popen(
        [lg, "--dir", d, "--phase", "run", "--ready", str(ready),
         "--mmap-workers", "2", "--uring-workers", "1", "--uring-depth",
         "32", "--rw-workers", "2", "--open-workers", "1", "--duration",
         "120", "--hang-timeout", "60", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TSAN_OPTIONS=TSAN_OPTIONS))
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), f"loadgen never got going: {proc.poll()}"
    return proc


def finish_loadgen(proc):
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"loadgen did not stop after the unbind:\n{err}")
    if "WARNING: ThreadSanitizer" in err:
        # a race in the load generator, not in daxfs: shown, not failed
        print(f"daxfs_loadgen reported races:\n{err}")
    return out


def known_exit_hang(pid):
    """Is the daemon stuck the way TSan makes libfuse stick at exit?

    fuse_session_loop_mt() ends by pthread_cancel()ing its idle workers,
    which sit in read() on /dev/fuse.  Under ThreadSanitizer a cancelled
    read can wait forever in __pthread_disable_asynccancel (the sanitizer
    does not run glibc's cancellation handler there), and main waits in
    pthread_join for it.  The plain and ASan builds exit normally.  Any
    other picture -- a thread waiting on a lock, a daxfs frame -- is ours.
    Returns (known, backtraces)."""
    if not shutil.which("gdb"):
        return False, "(gdb is not installed: no backtrace to tell)"
    res = run(["gdb", "-p", str(pid), "-batch", "-ex",
               "thread apply all bt"], timeout=120)
    bt = res.out + res.err
    if res.rc != 0 and "Thread" not in bt:
        return False, f"(no gdb backtrace: {bt.strip()[:500]})"
    threads = bt.split("\nThread ")[1:]
    known = bool(threads) and any(
        "fuse_session_loop_mt" in t and "pthread_join" in t
        for t in threads) and any(
        "__pthread_disable_asynccancel" in t for t in threads)
    for t in threads:
        if any(w in t for w in ("pthread_mutex_lock", "pthread_rwlock",
                                "pthread_cond_wait", "gate_drain",
                                "sem_wait")):
            known = False
    return known, bt


def unmount_tsan(m, timeout=60):
    """umount; the daemon must exit 0 -- or be stuck only in the known
    TSan exit hang, which is reported and ended -- and its stderr hold no
    sanitizer report."""
    res = run(["umount", m.mnt], timeout=120)
    assert res.rc == 0, f"umount {m.mnt}: {res.err}"
    try:
        rc = m.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        known, bt = known_exit_hang(m.proc.pid)
        m.proc.kill()
        m.proc.wait()
        assert known, f"daxfs did not exit after umount:\n{bt}\n" \
                      f"stderr:\n{m.stderr()}"
        print("note: the TSan daemon hung in libfuse's exit "
              "(pthread_cancel of a worker in read(), a ThreadSanitizer "
              "limitation); killed it")
        rc = 0
    err = m.stderr()
    assert rc == 0, f"daxfs exited {rc}; stderr:\n{err}"
    for mark in conftest.SANITIZER_MARKS:
        assert mark not in err, f"sanitizer report:\n{err}"
    return err


def run_unbound(tsan, region, tmp_path, unbind):
    """Mount the TSan daemon, load it, unbind while loaded, unmount."""
    env = {"TSAN_OPTIONS": TSAN_OPTIONS}
    m = start_daxfs(region, tmp_path / "mnt", env=env,
                    opts=("-o", "unbind_timeout=20,transport=auto"),
                    timeout=60)
    load = lg = None
    try:
        load = Load(m.mnt)
        load.start()
        lg = loadgen(tsan, m.mnt, tmp_path, "run")
        time.sleep(6)       # let the load and the loadgen interleave
        assert wait_for(lambda: load.ops > 100, timeout=120), \
            f"only {load.ops} operations in two minutes"
        assert not load.unexpected, load.unexpected[:5]
        load.stop_mapping()
        unbind(m)
        time.sleep(1)
        assert load.finish(), "a load thread hung after the unbind"
        finish_loadgen(lg)
        assert m.alive(), f"daemon died:\n{m.stderr()}"
        err = unmount_tsan(m)
    except BaseException:
        print(m.stderr()[-20000:])
        # threads blocked in requests would keep umount waiting: the
        # daemon goes first
        if m.alive():
            m.proc.kill()
            m.proc.wait()
        if load:
            load.finish(5)
        if lg and lg.poll() is None:
            lg.kill()
            lg.wait()
        m.cleanup()
        raise
    errs = {errno.errorcode.get(e, e): n for e, n in load.errors.items()}
    print(f"{load.ops} operations in all; errors by errno "
          f"{errs}")
    assert "WARNING: ThreadSanitizer" not in err
    return load


def test_tsan_orderly_unbind_under_load(tsan, tsan_region, tmp_path):
    def unbind(m):
        res = run([os.path.join(tsan, "daxfsctl"), "unbind", m.mnt],
                  timeout=120)
        assert res.rc == 0, res

    load = run_unbound(tsan, tsan_region, tmp_path, unbind)
    assert not load.unexpected, load.unexpected[:5]
    # the data written before the unbind is there, and fsck is clean
    res = run([os.path.join(tsan, "daxfsctl"), "fsck", tsan_region],
              timeout=300, env=dict(os.environ, TSAN_OPTIONS=TSAN_OPTIONS))
    assert res.rc == 0, res
    assert "WARNING: ThreadSanitizer" not in res.err, res.err


def test_tsan_forced_unbind_under_load(tsan, tsan_region, tmp_path):
    """The region file is truncated under the loaded daemon: the watcher
    and the SIGBUS guard race with every request in flight."""
    def unbind(m):
        os.truncate(tsan_region, 128 << 20)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            res = run([os.path.join(tsan, "daxfsctl"), "status", m.mnt],
                      timeout=60)
            if "state:        released" in res.out:
                return
            time.sleep(0.1)
        pytest.fail(f"the daemon did not release the cut region: {res}")

    run_unbound(tsan, tsan_region, tmp_path, unbind)


def test_tsan_file_lifecycle_races(tsan, tsan_region, tmp_path):
    """Files opened, written, read, unlinked and closed by some threads
    while others list, stat and read them: a read's reply goes out before
    the reader lets go of the inode, and the close and the kernel's
    FORGET that follow race to evict it.  TSan sees any use of an inode
    after it was freed (the plain build would just hang, some day)."""
    m = start_daxfs(tsan_region, tmp_path / "mnt",
                    opts=("-o", "transport=auto"),
                    env={"TSAN_OPTIONS": TSAN_OPTIONS}, timeout=60)
    d = os.path.join(m.mnt, "churn")
    try:
        os.mkdir(d)
        errors = file_lifecycle_churn(d, rounds=400)
        assert not errors, errors[:5]
        unmount_tsan(m)
    except BaseException:
        print(m.stderr()[-20000:])
        if m.alive():
            m.proc.kill()
            m.proc.wait()
        m.cleanup()
        raise
