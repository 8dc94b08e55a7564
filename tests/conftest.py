"""Shared fixtures for the daxfs test suite.

Binaries come from the build directory named by $DAXFS_BUILD (default:
./build under the project root).  Every test that needs a region gets a
fresh file region on /dev/shm that is removed afterwards, whatever happened.
"""
import os
import shutil
import subprocess
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DAXFS_BUILD", os.path.join(ROOT, "build"))
SHM = "/dev/shm"


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run cmake --build first")
    return path


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"<rc={self.rc} out={self.out!r} err={self.err!r}>"


def run(argv, timeout=120, input=None, env=None):
    """Run a command, capture text output, never raise on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, input=input, env=env)
    return Result(proc)


@pytest.fixture
def daxfsctl():
    """Call daxfsctl: daxfsctl('info', path) -> Result."""
    exe = binary("daxfsctl")

    def call(*args, timeout=120, env=None):
        return run([exe, *map(str, args)], timeout=timeout, env=env)
    return call


def new_region_path(tag="r"):
    return os.path.join(SHM, f"daxfs-test-{tag}-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def region_path():
    """A path on /dev/shm for a region that does not exist yet."""
    path = new_region_path()
    yield path
    if os.path.lexists(path):
        os.unlink(path)


@pytest.fixture
def region(region_path, daxfsctl):
    """A formatted 64 MiB file region."""
    res = daxfsctl("mkfs", "--size", "64M", region_path)
    assert res.rc == 0, res
    return region_path


@pytest.fixture
def scratch_dir(tmp_path):
    """A scratch directory (not on the region)."""
    return tmp_path


def is_root():
    return os.geteuid() == 0


def have_fuse():
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3")


# --- mounting ---------------------------------------------------------------

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer",
                   "SUMMARY: UndefinedBehaviorSanitizer")


def is_mounted(mnt, fstype="fuse.daxfs"):
    mnt = os.path.realpath(mnt)
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[1] == mnt and fields[2] == fstype:
                return True
    return False


class Mount:
    """A daxfs daemon running in the foreground, serving one mount."""

    def __init__(self, region, mnt, proc, errpath):
        self.region = region
        self.mnt = str(mnt)
        self.proc = proc
        self.errpath = errpath

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def stderr(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def unmount(self, timeout=60):
        """umount, then the daemon must exit 0 with a clean stderr."""
        if is_mounted(self.mnt):
            res = run(["umount", self.mnt], timeout=timeout)
            assert res.rc == 0, f"umount {self.mnt}: {res.err}"
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daxfs did not exit after umount; "
                                 f"stderr:\n{self.stderr()}")
        err = self.stderr()
        assert rc == 0, f"daxfs exited {rc}; stderr:\n{err}"
        for mark in SANITIZER_MARKS:
            assert mark not in err, f"sanitizer report:\n{err}"
        return err

    def kill9(self):
        """SIGKILL the daemon and detach the dead mount."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        detach(self.mnt)

    def cleanup(self):
        """Best effort, for failed tests: never raise."""
        try:
            if self.alive():
                run(["umount", self.mnt], timeout=30)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=30)
        finally:
            detach(self.mnt)


def detach(mnt):
    """Lazily unmount whatever is left at mnt (a dead daemon's mount)."""
    for _ in range(3):
        if not any(is_mounted(mnt, t) for t in ("fuse.daxfs", "fuse")):
            return
        run(["umount", "-l", str(mnt)], timeout=30)


def start_daxfs(region, mnt, opts=(), env=None, timeout=20):
    """Start `daxfs -f [opts] region mnt`; return a Mount once mounted."""
    os.makedirs(mnt, exist_ok=True)
    errpath = os.path.join(os.path.dirname(str(mnt)),
                           f"daxfs-{uuid.uuid4().hex[:8]}.stderr")
    errf = open(errpath, "w")
    full_env = dict(os.environ)
    full_env.setdefault("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1")
    full_env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    if env:
        full_env.update(env)
    # $DAXFS_TEST_TRANSPORT: the transport every mount here asks for
    # (scripts/test.sh runs one pass over io_uring, one over /dev/fuse),
    # unless the test chose one itself
    transport = os.environ.get("DAXFS_TEST_TRANSPORT")
    if transport and not any("transport=" in o for o in opts):
        opts = ("-o", f"transport={transport}", *opts)
    proc = subprocess.Popen([binary("daxfs"), "-f", *opts, str(region),
                             str(mnt)], stdout=errf, stderr=errf,
                            env=full_env)
    errf.close()
    m = Mount(region, mnt, proc, errpath)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_mounted(mnt):
            return m
        if proc.poll() is not None:
            raise AssertionError(f"daxfs exited {proc.returncode} before "
                                 f"mounting; stderr:\n{m.stderr()}")
        time.sleep(0.02)
    m.cleanup()
    raise AssertionError(f"daxfs did not mount within {timeout}s; "
                         f"stderr:\n{m.stderr()}")


@pytest.fixture
def need_fuse():
    if not is_root():
        pytest.skip("not root: mounting needs root here")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")


@pytest.fixture
def mount(need_fuse, region, tmp_path):
    """A mounted daxfs on a fresh 64 MiB file region; unmounted (and the
    daemon's exit status and stderr checked) afterwards."""
    m = start_daxfs(region, tmp_path / "mnt")
    try:
        yield m
        # the test passed: the daemon must unmount and exit cleanly
        if m.alive():
            m.unmount()
    finally:
        # whatever happened (a failed test may leave files open), leave
        # nothing mounted or running
        if m.alive() or is_mounted(m.mnt):
            m.cleanup()
