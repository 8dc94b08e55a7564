"""Helpers shared by the daemon tests (test_ops, test_mmap,
test_persistence, test_mount): the syscall programs in tests/progs, libc
calls Python lacks (renameat2, fallocate with a mode), fsck, and mounts of
regions formatted with options of the test's choosing.
"""
import contextlib
import ctypes
import json
import os
import random
import shutil
import subprocess
import threading
import time

import pytest

from conftest import (binary, is_mounted, new_region_path, run,
                      start_daxfs)

KiB = 1 << 10
MiB = 1 << 20
BLOCK = 4096

# fallocate(2) modes (linux/falloc.h)
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_ZERO_RANGE = 0x10
FALLOC_FL_INSERT_RANGE = 0x20

# renameat2(2) flags (linux/fs.h)
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                            ctypes.c_char_p, ctypes.c_uint]
_libc.renameat2.restype = ctypes.c_int
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                            ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def prog(name):
    """A program from tests/progs in the build under test."""
    return binary(os.path.join("tests", "progs", name))


def run_prog(name, *args, timeout=60):
    """Run a tests/progs program; assert it passed, return its output."""
    res = run([prog(name), *map(str, args)], timeout=timeout)
    assert res.rc == 0, f"{name} {' '.join(map(str, args))}: {res!r}"
    return res.out


def renameat2(old, new, flags=0):
    """renameat2 on two paths; raises OSError like os.rename does."""
    ret = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                          os.fsencode(new), flags)
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def fallocate(fd, mode, offset, length):
    """fallocate(2) with any mode; raises OSError."""
    ret = _libc.fallocate(fd, mode, offset, length)
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


_BASE = bytes((k * 7 + (k >> 8)) & 0xff for k in range(65536))


def pattern(n, seed=0):
    """n bytes of a pattern that differs at every offset and per seed."""
    shift = (seed * 13 + seed // 19) & 0xff
    table = bytes((b + shift) & 0xff for b in range(256))
    block = _BASE.translate(table)
    if seed % 19 == 18:
        block = block[::-1]
    reps = n // len(block) + 1
    return (block * reps)[:n]


def statvfs_free(mnt):
    sv = os.statvfs(mnt)
    return sv.f_bfree * sv.f_frsize


def fsck_available(daxfsctl):
    """(True, "") when daxfsctl fsck exists in this build, else the reason."""
    res = daxfsctl("fsck", "--help")
    if res.rc != 0:
        return False, (f"daxfsctl fsck --help exits {res.rc} "
                       f"({(res.err or res.out).strip()}): fsck is not "
                       f"available in this build")
    return True, ""


def fsck_clean(daxfsctl, region):
    """Assert fsck finds region clean.  Returns None when it was checked,
    or the reason it could not be (fsck not in this build)."""
    have, why = fsck_available(daxfsctl)
    if not have:
        return why
    res = daxfsctl("fsck", region, timeout=300)
    assert res.rc == 0, f"fsck of {region} is not clean: {res!r}"
    return None


def finish_fsck(daxfsctl, region):
    """At the end of a test: fsck must be clean; if fsck is missing from
    the build, say so by skipping (everything before it has passed)."""
    why = fsck_clean(daxfsctl, region)
    if why:
        pytest.skip(f"all other checks passed; fsck not run: {why}")


def mkfs(daxfsctl, path, *opts):
    res = daxfsctl("mkfs", *opts, path)
    assert res.rc == 0, res
    return path


@contextlib.contextmanager
def mounted(region, mnt, opts=(), env=None):
    """start_daxfs as a context: unmounted (and checked) on success,
    cleaned up on failure."""
    m = start_daxfs(region, mnt, opts, env=env)
    try:
        yield m
        if m.alive():
            m.unmount()
    finally:
        if m.alive() or is_mounted(m.mnt):
            m.cleanup()


@contextlib.contextmanager
def fresh_region(daxfsctl, tag, *mkfs_opts):
    """A region formatted with mkfs_opts, removed afterwards."""
    path = new_region_path(tag)
    try:
        mkfs(daxfsctl, path, *mkfs_opts)
        yield path
    finally:
        if os.path.lexists(path):
            os.unlink(path)


def status(mnt):
    """`daxfsctl status --json` of a mount, as a dict."""
    res = run([binary("daxfsctl"), "status", "--json", str(mnt)], timeout=60)
    assert res.rc == 0, res
    return json.loads(res.out)


def wait_state(mnt, want, within):
    """Poll status until its state is `want`; the last status."""
    deadline = time.monotonic() + within
    while True:
        st = status(mnt)
        if st["state"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def wait_for(cond, timeout=20, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def daxfs_pids(pattern_):
    """pids of processes whose command line holds pattern_ and run daxfs."""
    res = subprocess.run(["pgrep", "-f", pattern_], capture_output=True,
                         text=True)
    pids = []
    for p in res.stdout.split():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"daxfs":
            pids.append(int(p))
    return pids


def which_ok(name):
    return shutil.which(name) is not None


UNCACHED = ("-o", "entry_timeout=0,attr_timeout=0")


def serve_mount(region, tmp_path, caching):
    """The body of a `mount` fixture like conftest's, with the kernel's
    caching of names and attributes as the daemon sets it by default
    ("cached") or off ("uncached": entry_timeout=0,attr_timeout=0, so
    that every lookup and stat reaches the daemon instead of being
    answered from what the kernel remembers)."""
    opts = () if caching == "cached" else UNCACHED
    m = start_daxfs(region, tmp_path / "mnt", opts)
    # pytest does not throw a failed test's exception in here: whatever
    # happened, a failing unmount (a descriptor left open by a failed
    # test: "target is busy") must not leave the daemon behind
    try:
        yield m
        if m.alive():
            m.unmount()
    finally:
        if m.alive() or is_mounted(m.mnt):
            m.cleanup()
    # whatever the test did, the region it leaves must be consistent
    # (when this build has fsck: the tests that need it say so)
    if not m.alive() and not is_mounted(m.mnt):
        fsck_clean(_daxfsctl_call, region)


def _daxfsctl_call(*args, timeout=120):
    return run([binary("daxfsctl"), *map(str, args)], timeout=timeout)


def file_lifecycle_churn(d, rounds=300, workers=3, watchers=2,
                         block=4096):
    """Threads that open (creating), write, maybe unlink, read and close
    16 names in d, while others list, stat and read them: the inode
    lifecycle under every race between RELEASE, FORGET, LOOKUP and a
    read's reply.  Returns the exceptions the threads hit; raises if one
    of them hung."""
    stop = threading.Event()
    errors = []

    def churn(t):
        rng = random.Random(t)
        try:
            for _ in range(rounds):
                p = os.path.join(d, f"c{rng.randrange(16)}")
                try:
                    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:
                    continue
                try:
                    os.pwrite(fd, b"c" * rng.randrange(1, 3 * block),
                              rng.randrange(0, 4 * block))
                    if rng.random() < 0.5:
                        try:
                            os.unlink(p)
                        except FileNotFoundError:
                            pass
                    os.pread(fd, block, 0)
                finally:
                    os.close(fd)
        except Exception as e:                # noqa: BLE001
            errors.append(e)

    def watcher():
        rng = random.Random(7)
        try:
            while not stop.is_set():
                for e in os.scandir(d):
                    try:
                        e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        pass
                try:
                    with open(os.path.join(d, f"c{rng.randrange(16)}"),
                              "rb") as f:
                        f.read()
                except FileNotFoundError:
                    pass
        except Exception as e:                # noqa: BLE001
            errors.append(e)

    ws = [threading.Thread(target=churn, args=(t,)) for t in range(workers)]
    vs = [threading.Thread(target=watcher) for _ in range(watchers)]
    for th in ws + vs:
        th.start()
    for th in ws:
        th.join(120)
    stop.set()
    for th in vs:
        th.join(60)
    hung = [th for th in ws + vs if th.is_alive()]
    assert not hung, f"{len(hung)} threads hung in a request"
    return errors
