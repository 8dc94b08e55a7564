"""The daxfs daemon, operation by operation, the way applications use it:
every FUSE operation through the kernel with its success cases and the
errno Linux filesystems give for its error cases, plus running out of
space, concurrency and a large file.

Each test gets a fresh, mounted 64 MiB file region from the `mount`
fixture (or formats its own when it needs a different size).  `mount`
here runs every test twice, once with the kernel caching names and
attributes (the daemon's defaults) and once with entry_timeout=0 and
attr_timeout=0, so that what a test sees comes from the daemon and not
from the kernel's memory of it.  At the unmount the test fails if the
daemon does not exit 0 with a clean stderr (no sanitizer report) or if
daxfsctl fsck finds the region inconsistent.

Syscall-level cases run in tests/progs/daxfs_syscalls.
"""
import errno
import hashlib
import os
import random
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from helpers_ops import (BLOCK, FALLOC_FL_COLLAPSE_RANGE,
                         FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE,
                         FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, MiB,
                         RENAME_EXCHANGE, RENAME_NOREPLACE, fallocate,
                         file_lifecycle_churn, finish_fsck, fresh_region,
                         mounted, pattern,
                         read_file, renameat2, run_prog, serve_mount,
                         statvfs_free, wait_for, write_file)

pytestmark = pytest.mark.usefixtures("need_fuse")


@pytest.fixture(params=["cached", "uncached"])
def mount(request, need_fuse, region, tmp_path):
    """conftest's `mount`, twice: every test taking it runs with the
    kernel caching names and attributes and without."""
    yield from serve_mount(region, tmp_path, request.param)


def raises_errno(err, fn, *args, **kw):
    """fn(*args) must fail with errno err (or one of a tuple of them)."""
    errs = err if isinstance(err, tuple) else (err,)
    with pytest.raises(OSError) as ei:
        fn(*args, **kw)
    assert ei.value.errno in errs, \
        f"{fn.__name__}{args}: {errno.errorcode.get(ei.value.errno)}, " \
        f"want {'/'.join(errno.errorcode[e] for e in errs)}"


def near_now(t, slack=10):
    return abs(time.time() - t) < slack


# --- lookup and getattr ------------------------------------------------------

def test_lookup_enoent_enotdir(mount):
    raises_errno(errno.ENOENT, os.stat, mount.path("missing"))
    raises_errno(errno.ENOENT, os.open, mount.path("missing"), os.O_RDONLY)
    raises_errno(errno.ENOENT, os.stat, mount.path("nodir", "x"))
    write_file(mount.path("f"), b"x")
    raises_errno(errno.ENOTDIR, os.stat, mount.path("f", "x"))
    raises_errno(errno.ENOTDIR, os.open, mount.path("f", "x"),
                 os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENOTDIR, os.listdir, mount.path("f"))
    raises_errno(errno.ENOTDIR, os.open, mount.path("f"),
                 os.O_RDONLY | os.O_DIRECTORY)
    # a name that was there and is gone (negative entries must not lie)
    os.unlink(mount.path("f"))
    raises_errno(errno.ENOENT, os.stat, mount.path("f"))
    write_file(mount.path("f"), b"back")
    assert read_file(mount.path("f")) == b"back"


def test_name_length_limits(mount):
    ok = "n" * 255
    long = "n" * 256
    write_file(mount.path(ok), b"255")
    assert read_file(mount.path(ok)) == b"255"
    assert ok in os.listdir(mount.mnt)
    os.mkdir(mount.path("d" * 255))
    os.symlink("t", mount.path("s" * 255))
    p = mount.path(long)
    raises_errno(errno.ENAMETOOLONG, os.stat, p)
    raises_errno(errno.ENAMETOOLONG, os.open, p, os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENAMETOOLONG, os.mkdir, p)
    raises_errno(errno.ENAMETOOLONG, os.symlink, "t", p)
    raises_errno(errno.ENAMETOOLONG, os.link, mount.path(ok), p)
    raises_errno(errno.ENAMETOOLONG, os.rename, mount.path(ok), p)
    raises_errno(errno.ENAMETOOLONG, os.mkfifo, p)
    raises_errno(errno.ENAMETOOLONG, os.unlink, p)
    assert sorted(os.listdir(mount.mnt)) == sorted(["d" * 255, ok, "s" * 255])


def test_odd_names(mount):
    names = [b"\xff\xfe\x80 not utf-8", b"new\nline", b" spaces ",
             b"tab\there", b"-dash", b"...", b".hidden", b"*?[glob]",
             "\u00fcn\u00efc\u00f8d\u00e9 \U0001f600".encode(),
             ("\u00e9" * 127).encode() + b"x"]          # 255 bytes
    root = os.fsencode(mount.mnt)
    for k, n in enumerate(names):
        write_file(os.path.join(root, n), b"%d" % k)
    assert sorted(os.listdir(root)) == sorted(names)
    for k, n in enumerate(names):
        assert read_file(os.path.join(root, n)) == b"%d" % k
    for n in names:                     # same length, new name
        os.rename(os.path.join(root, n), os.path.join(root, b"R" + n[1:]))
    assert sorted(os.listdir(root)) == sorted(b"R" + n[1:] for n in names)
    raises_errno(errno.ENAMETOOLONG, os.stat,
                 os.path.join(root, ("\u00e9" * 128).encode()))


def test_dot_and_dotdot(mount):
    os.makedirs(mount.path("a", "b"))
    a = os.stat(mount.path("a"))
    assert os.stat(mount.path("a", ".")).st_ino == a.st_ino
    assert os.stat(mount.path("a", "b", "..")).st_ino == a.st_ino
    assert os.stat(mount.path("a", "..")).st_ino == \
        os.stat(mount.mnt).st_ino


def test_getattr_file(mount):
    p = mount.path("f")
    t0 = time.time()
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640)
    st = os.fstat(fd)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640 & ~current_umask()
    assert st.st_nlink == 1
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert st.st_size == 0 and st.st_blocks == 0
    assert st.st_blksize == BLOCK
    for t in (st.st_atime, st.st_mtime, st.st_ctime):
        assert near_now(t)
    time.sleep(0.02)
    os.write(fd, b"z" * 5000)
    os.close(fd)
    st2 = os.stat(p)
    assert st2.st_size == 5000
    assert st2.st_blocks == 2 * BLOCK // 512     # two 4 KiB blocks
    assert st2.st_mtime_ns > st.st_mtime_ns
    assert st2.st_ctime_ns > st.st_ctime_ns
    assert st2.st_mtime >= t0 - 1
    assert st2.st_ino == st.st_ino


def current_umask():
    old = os.umask(0)
    os.umask(old)
    return old


def test_getattr_dirs_and_links(mount):
    root = os.stat(mount.mnt)
    assert stat.S_ISDIR(root.st_mode) and root.st_nlink == 2
    os.mkdir(mount.path("d"), 0o750)
    d = os.stat(mount.path("d"))
    assert stat.S_ISDIR(d.st_mode)
    assert stat.S_IMODE(d.st_mode) == 0o750 & ~current_umask()
    assert d.st_nlink == 2
    assert os.stat(mount.mnt).st_nlink == 3
    os.mkdir(mount.path("d", "e"))
    os.mkdir(mount.path("d", "f"))
    write_file(mount.path("d", "file"), b"")
    assert os.stat(mount.path("d")).st_nlink == 4   # files do not count
    os.symlink("some/target", mount.path("l"))
    lst = os.lstat(mount.path("l"))
    assert stat.S_ISLNK(lst.st_mode)
    assert lst.st_size == len("some/target")
    assert stat.S_IMODE(lst.st_mode) == 0o777
    os.rmdir(mount.path("d", "e"))
    assert os.stat(mount.path("d")).st_nlink == 3


# --- setattr -----------------------------------------------------------------

def test_chmod(mount):
    p = mount.path("f")
    write_file(p, b"data")
    before = os.stat(p)
    time.sleep(0.02)
    for mode in (0o600, 0o000, 0o4755, 0o2711, 0o1777, 0o7777, 0o644):
        os.chmod(p, mode)
        st = os.stat(p)
        assert stat.S_IMODE(st.st_mode) == mode
        assert stat.S_ISREG(st.st_mode)
    assert st.st_ctime_ns > before.st_ctime_ns
    assert st.st_mtime_ns == before.st_mtime_ns
    os.mkdir(mount.path("d"))
    os.chmod(mount.path("d"), 0o701)
    st = os.stat(mount.path("d"))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o701
    fd = os.open(p, os.O_RDONLY)
    os.fchmod(fd, 0o640)
    assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o640
    os.close(fd)
    assert read_file(p) == b"data"


def test_chown_as_root(mount):
    if os.geteuid() != 0:
        pytest.skip("chown to other users needs root")
    p = mount.path("f")
    write_file(p, b"x")
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(p, -1, 42)                      # only the group
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 42)
    os.chown(p, 7, -1)                       # only the owner
    assert (os.stat(p).st_uid, os.stat(p).st_gid) == (7, 42)
    os.symlink("f", mount.path("l"))
    os.lchown(mount.path("l"), 99, 98)
    assert (os.lstat(mount.path("l")).st_uid,
            os.lstat(mount.path("l")).st_gid) == (99, 98)
    assert (os.stat(p).st_uid, os.stat(p).st_gid) == (7, 42)
    os.mkdir(mount.path("d"))
    os.chown(mount.path("d"), 4000000000, 4000000001)   # 32-bit ids
    st = os.stat(mount.path("d"))
    assert (st.st_uid, st.st_gid) == (4000000000, 4000000001)


def test_truncate_down_and_up(mount):
    p = mount.path("f")
    data = pattern(3 * BLOCK + 100, seed=1)
    write_file(p, data)
    # shrink into the middle of a block, then grow past it again: the
    # bytes between the two sizes read as zero, not as the old data
    os.truncate(p, BLOCK + 10)
    assert os.stat(p).st_size == BLOCK + 10
    assert read_file(p) == data[:BLOCK + 10]
    os.truncate(p, 3 * BLOCK)
    got = read_file(p)
    assert len(got) == 3 * BLOCK
    assert got[:BLOCK + 10] == data[:BLOCK + 10]
    assert got[BLOCK + 10:] == bytes(3 * BLOCK - BLOCK - 10)
    # extending from a non-block-aligned size: the old tail reads zero
    write_file(p, b"abc")
    os.truncate(p, 10000)
    assert read_file(p) == b"abc" + bytes(10000 - 3)
    # extension allocates nothing
    assert os.stat(p).st_blocks <= BLOCK // 512
    # ftruncate through an open descriptor, and to zero
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 1)
    assert os.pread(fd, 100, 0) == b"a"
    os.ftruncate(fd, 0)
    assert os.fstat(fd).st_size == 0 and os.fstat(fd).st_blocks == 0
    assert os.pread(fd, 10, 0) == b""
    os.close(fd)
    # a huge sparse size
    os.truncate(p, 1 << 40)
    st = os.stat(p)
    assert st.st_size == 1 << 40 and st.st_blocks == 0
    with open(p, "rb") as f:
        f.seek((1 << 40) - 5)
        assert f.read(100) == bytes(5)
    os.truncate(p, 0)
    raises_errno(errno.EISDIR, os.truncate, mount.mnt, 0)
    raises_errno(errno.EINVAL, os.truncate, p, -1)


def test_truncate_frees_space(mount):
    p = mount.path("f")
    write_file(p, pattern(4 * MiB))
    os.sync()
    free_before = statvfs_free(mount.mnt)
    os.truncate(p, MiB + 1)
    freed = statvfs_free(mount.mnt) - free_before
    assert freed >= 3 * MiB - 2 * BLOCK
    assert os.stat(p).st_blocks * 512 <= MiB + BLOCK
    assert read_file(p) == pattern(4 * MiB)[:MiB + 1]


def test_o_trunc(mount):
    p = mount.path("f")
    write_file(p, pattern(MiB))
    free0 = statvfs_free(mount.mnt)
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        # the daemon really truncated: the blocks are free again (statfs
        # is not cached by the kernel)
        assert statvfs_free(mount.mnt) >= free0 + MiB
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert read_file(p) == b"new"
    # the daemon's own idea of the file agrees with the kernel's cached
    # one: look again from a fresh mount
    mount.unmount()
    with mounted(mount.region, mount.mnt) as m:
        st = os.stat(m.path("f"))
        assert st.st_size == 3 and st.st_blocks == BLOCK // 512
        os.truncate(m.path("f"), 10)
        assert read_file(m.path("f")) == b"new" + bytes(7)


def test_utimens_explicit_and_now(mount):
    p = mount.path("f")
    write_file(p, b"x")
    os.utime(p, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(p)
    assert st.st_atime_ns == 1_000_000_123
    assert st.st_mtime_ns == 2_000_000_456
    # before 1970, and far in the future
    os.utime(p, ns=(-1_000_000_000, 4_102_444_800_000_000_001))
    st = os.stat(p)
    assert st.st_atime_ns == -1_000_000_000
    assert st.st_mtime_ns == 4_102_444_800_000_000_001
    # UTIME_NOW for both
    os.utime(p)
    st = os.stat(p)
    assert near_now(st.st_atime) and near_now(st.st_mtime)
    # directories and (without following) symlinks
    os.mkdir(mount.path("d"))
    os.utime(mount.path("d"), ns=(5, 6))
    st = os.stat(mount.path("d"))
    assert (st.st_atime_ns, st.st_mtime_ns) == (5, 6)
    os.symlink("f", mount.path("l"))
    os.utime(mount.path("l"), ns=(7, 8), follow_symlinks=False)
    st = os.lstat(mount.path("l"))
    assert (st.st_atime_ns, st.st_mtime_ns) == (7, 8)
    assert near_now(os.stat(p).st_mtime)


def test_utimens_omit(mount):
    p = mount.path("f")
    write_file(p, b"x")
    run_prog("daxfs_syscalls", "utimens", p)


# --- creating nodes ----------------------------------------------------------

def test_create_exclusive(mount):
    p = mount.path("f")
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.write(fd, b"one")
    os.close(fd)
    raises_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL |
                 os.O_RDWR)
    # O_CREAT without O_EXCL opens the existing file untouched
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o777)
    assert os.read(fd, 10) == b"one"
    os.close(fd)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    raises_errno(errno.ENOENT, os.open, mount.path("no", "f"),
                 os.O_CREAT | os.O_RDWR)
    raises_errno(errno.EISDIR, os.open, mount.mnt, os.O_WRONLY)
    raises_errno(errno.EISDIR, os.open, mount.mnt, os.O_RDWR)


def test_fifo_works(mount):
    p = mount.path("fifo")
    os.mkfifo(p, 0o600)
    st = os.stat(p)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    raises_errno(errno.EEXIST, os.mkfifo, p)
    got = []

    def reader():
        with open(p, "rb") as f:
            got.append(f.read())

    t = threading.Thread(target=reader)
    t.start()
    payload = pattern(200000, seed=3)       # more than a pipe buffer
    with open(p, "wb") as f:
        f.write(payload)
    t.join(30)
    assert not t.is_alive()
    assert got == [payload]
    # the fifo holds no data of its own
    assert os.stat(p).st_size == 0


def test_mknod_devices_and_sockets(mount):
    if os.geteuid() != 0:
        pytest.skip("mknod of a device node needs root")
    c = mount.path("chr")
    os.mknod(c, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    st = os.stat(c)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    b = mount.path("blk")
    os.mknod(b, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    st = os.stat(b)
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 200)
    r = mount.path("reg")
    os.mknod(r, stat.S_IFREG | 0o640)
    assert stat.S_ISREG(os.stat(r).st_mode) and os.stat(r).st_size == 0
    raises_errno(errno.EEXIST, os.mknod, r, stat.S_IFREG | 0o640)
    # a unix socket bound in the filesystem accepts connections
    sp = mount.path("sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(sp)
        srv.listen(1)
        assert stat.S_ISSOCK(os.stat(sp).st_mode)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect(sp)
        conn, _ = srv.accept()
        cli.sendall(b"over a daxfs socket")
        assert conn.recv(100) == b"over a daxfs socket"
        conn.close()
        cli.close()
    finally:
        srv.close()
    os.unlink(sp)


def test_mkdir(mount):
    os.mkdir(mount.path("d"))
    raises_errno(errno.EEXIST, os.mkdir, mount.path("d"))
    write_file(mount.path("f"), b"")
    raises_errno(errno.EEXIST, os.mkdir, mount.path("f"))
    raises_errno(errno.ENOENT, os.mkdir, mount.path("no", "d"))
    raises_errno(errno.ENOTDIR, os.mkdir, mount.path("f", "d"))
    raises_errno(errno.EEXIST, os.mkdir, mount.mnt)
    os.makedirs(mount.path("a", "b", "c", "d", "e"))
    assert os.path.isdir(mount.path("a", "b", "c", "d", "e"))


# --- removing ----------------------------------------------------------------

def test_unlink(mount):
    p = mount.path("f")
    write_file(p, b"x")
    os.unlink(p)
    assert not os.path.lexists(p)
    raises_errno(errno.ENOENT, os.unlink, p)
    os.mkdir(mount.path("d"))
    raises_errno(errno.EISDIR, os.unlink, mount.path("d"))
    os.symlink("d", mount.path("l"))
    os.unlink(mount.path("l"))                # the link, not the target
    assert os.path.isdir(mount.path("d"))
    assert os.listdir(mount.mnt) == ["d"]


def test_unlink_open_file(mount):
    p = mount.path("f")
    data = pattern(2 * MiB)
    write_file(p, data)
    free0 = statvfs_free(mount.mnt)
    fd = os.open(p, os.O_RDWR)
    os.unlink(p)
    assert not os.path.exists(p)
    assert os.fstat(fd).st_nlink == 0
    # still readable and writable through the descriptor
    assert os.pread(fd, len(data), 0) == data
    os.pwrite(fd, b"more", len(data))
    assert os.fstat(fd).st_size == len(data) + 4
    # the blocks stay allocated while it is open, and are freed after
    assert statvfs_free(mount.mnt) <= free0
    os.close(fd)
    assert wait_for_free(mount.mnt, free0 + 2 * MiB - BLOCK)


def wait_for_free(mnt, want, timeout=10):
    """The kernel forgets an unlinked inode asynchronously: poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if statvfs_free(mnt) >= want:
            return True
        time.sleep(0.05)
    return statvfs_free(mnt) >= want


def test_rmdir(mount):
    os.mkdir(mount.path("d"))
    write_file(mount.path("d", "f"), b"")
    raises_errno(errno.ENOTEMPTY, os.rmdir, mount.path("d"))
    raises_errno(errno.ENOTDIR, os.rmdir, mount.path("d", "f"))
    raises_errno(errno.EINVAL, os.rmdir, mount.path("d", "."))
    raises_errno(errno.ENOTEMPTY, os.rmdir, mount.path("d", ".."))
    raises_errno(errno.ENOENT, os.rmdir, mount.path("missing"))
    raises_errno(errno.EBUSY, os.rmdir, mount.mnt)
    os.unlink(mount.path("d", "f"))
    os.mkdir(mount.path("d", "sub"))
    raises_errno(errno.ENOTEMPTY, os.rmdir, mount.path("d"))
    os.rmdir(mount.path("d", "sub"))
    assert os.stat(mount.path("d")).st_nlink == 2
    os.rmdir(mount.path("d"))
    assert os.listdir(mount.mnt) == []
    assert os.stat(mount.mnt).st_nlink == 2
    # a removed directory that is still someone's cwd
    os.mkdir(mount.path("cwd"))
    fd = os.open(mount.path("cwd"), os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir(mount.path("cwd"))
    raises_errno(errno.ENOENT, os.open, "x", os.O_CREAT | os.O_WRONLY,
                 dir_fd=fd)
    assert os.listdir(fd) == []
    os.close(fd)


# --- rename ------------------------------------------------------------------

def test_rename_plain(mount):
    write_file(mount.path("a"), b"content a")
    ino = os.stat(mount.path("a")).st_ino
    os.rename(mount.path("a"), mount.path("b"))
    assert not os.path.exists(mount.path("a"))
    assert read_file(mount.path("b")) == b"content a"
    assert os.stat(mount.path("b")).st_ino == ino
    os.mkdir(mount.path("d"))
    os.rename(mount.path("b"), mount.path("d", "c"))
    assert os.listdir(mount.mnt) == ["d"]
    assert read_file(mount.path("d", "c")) == b"content a"
    raises_errno(errno.ENOENT, os.rename, mount.path("b"), mount.path("x"))
    raises_errno(errno.ENOENT, os.rename, mount.path("d", "c"),
                 mount.path("nodir", "c"))
    # renaming a name to itself changes nothing
    os.rename(mount.path("d", "c"), mount.path("d", "c"))
    assert read_file(mount.path("d", "c")) == b"content a"


def test_rename_over_file(mount):
    write_file(mount.path("a"), b"new")
    write_file(mount.path("b"), pattern(MiB))
    free0 = statvfs_free(mount.mnt)
    ino_a = os.stat(mount.path("a")).st_ino
    os.rename(mount.path("a"), mount.path("b"))
    assert os.listdir(mount.mnt) == ["b"]
    assert read_file(mount.path("b")) == b"new"
    assert os.stat(mount.path("b")).st_ino == ino_a
    # the replaced file's blocks come back
    assert wait_for_free(mount.mnt, free0 + MiB - BLOCK)
    # over a file that is still open: it lives on until closed
    write_file(mount.path("c"), b"old c")
    fd = os.open(mount.path("c"), os.O_RDONLY)
    os.rename(mount.path("b"), mount.path("c"))
    assert os.pread(fd, 100, 0) == b"old c"
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)
    assert read_file(mount.path("c")) == b"new"


def test_rename_dirs(mount):
    root = mount.mnt
    os.makedirs(mount.path("a", "sub"))
    write_file(mount.path("a", "sub", "f"), b"f")
    os.mkdir(mount.path("empty"))
    assert os.stat(root).st_nlink == 4
    # a directory over an empty directory
    os.rename(mount.path("a"), mount.path("empty"))
    assert sorted(os.listdir(root)) == ["empty"]
    assert read_file(mount.path("empty", "sub", "f")) == b"f"
    assert os.stat(root).st_nlink == 3
    # over a non-empty directory
    os.mkdir(mount.path("other"))
    raises_errno((errno.ENOTEMPTY, errno.EEXIST), os.rename,
                 mount.path("other"), mount.path("empty"))
    # type mismatches
    write_file(mount.path("file"), b"")
    raises_errno(errno.ENOTDIR, os.rename, mount.path("other"),
                 mount.path("file"))
    raises_errno(errno.EISDIR, os.rename, mount.path("file"),
                 mount.path("other"))
    # into its own subtree
    raises_errno(errno.EINVAL, os.rename, mount.path("empty"),
                 mount.path("empty", "sub", "x"))
    raises_errno(errno.EINVAL, os.rename, mount.path("empty"),
                 mount.path("empty", "x"))
    # across directories: both parents' link counts and ".." follow
    os.rename(mount.path("empty", "sub"), mount.path("other", "moved"))
    assert os.stat(mount.path("empty")).st_nlink == 2
    assert os.stat(mount.path("other")).st_nlink == 3
    assert os.stat(mount.path("other", "moved", "..")).st_ino == \
        os.stat(mount.path("other")).st_ino
    assert read_file(mount.path("other", "moved", "f")) == b"f"
    # rename of "." or ".." is refused
    raises_errno((errno.EBUSY, errno.EINVAL), os.rename,
                 mount.path("other", "."), mount.path("x"))
    # replacing an empty directory someone has open: it is gone for them
    os.mkdir(mount.path("open"))
    fd = os.open(mount.path("open"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rename(mount.path("other"), mount.path("open"))
        assert os.fstat(fd).st_nlink == 0
        assert os.listdir(fd) == []
        raises_errno(errno.ENOENT, os.open, "x", os.O_CREAT | os.O_WRONLY,
                     dir_fd=fd)
    finally:
        os.close(fd)
    assert sorted(os.listdir(root)) == ["empty", "file", "open"]
    assert os.listdir(mount.path("open")) == ["moved"]
    assert os.stat(root).st_nlink == 4


def test_rename_noreplace(mount):
    write_file(mount.path("a"), b"a")
    write_file(mount.path("b"), b"b")
    raises_errno(errno.EEXIST, renameat2, mount.path("a"), mount.path("b"),
                 RENAME_NOREPLACE)
    assert read_file(mount.path("a")) == b"a"
    assert read_file(mount.path("b")) == b"b"
    renameat2(mount.path("a"), mount.path("c"), RENAME_NOREPLACE)
    assert sorted(os.listdir(mount.mnt)) == ["b", "c"]
    os.mkdir(mount.path("d"))
    raises_errno(errno.EEXIST, renameat2, mount.path("c"), mount.path("d"),
                 RENAME_NOREPLACE)
    raises_errno(errno.EINVAL, renameat2, mount.path("b"), mount.path("c"),
                 RENAME_NOREPLACE | RENAME_EXCHANGE)


def test_rename_exchange_files(mount):
    write_file(mount.path("a"), b"AAAA")
    write_file(mount.path("b"), b"BB")
    ia, ib = os.stat(mount.path("a")).st_ino, os.stat(mount.path("b")).st_ino
    renameat2(mount.path("a"), mount.path("b"), RENAME_EXCHANGE)
    assert read_file(mount.path("a")) == b"BB"
    assert read_file(mount.path("b")) == b"AAAA"
    assert os.stat(mount.path("a")).st_ino == ib
    assert os.stat(mount.path("b")).st_ino == ia
    raises_errno(errno.ENOENT, renameat2, mount.path("a"),
                 mount.path("missing"), RENAME_EXCHANGE)
    assert sorted(os.listdir(mount.mnt)) == ["a", "b"]


def test_rename_exchange_file_and_dir_across_dirs(mount):
    os.mkdir(mount.path("A"))
    os.mkdir(mount.path("B"))
    write_file(mount.path("A", "f"), b"file")
    os.mkdir(mount.path("B", "d"))
    write_file(mount.path("B", "d", "inner"), b"inner")
    A, B = mount.path("A"), mount.path("B")
    assert (os.stat(A).st_nlink, os.stat(B).st_nlink) == (2, 3)
    renameat2(mount.path("A", "f"), mount.path("B", "d"), RENAME_EXCHANGE)
    # A/f is now the directory, B/d the file
    assert os.path.isdir(mount.path("A", "f"))
    assert read_file(mount.path("A", "f", "inner")) == b"inner"
    assert read_file(mount.path("B", "d")) == b"file"
    assert (os.stat(A).st_nlink, os.stat(B).st_nlink) == (3, 2)
    assert os.stat(mount.path("A", "f", "..")).st_ino == os.stat(A).st_ino
    # the moved directory can be removed from its new place
    os.unlink(mount.path("A", "f", "inner"))
    os.rmdir(mount.path("A", "f"))
    assert os.stat(A).st_nlink == 2
    # exchanging two directories across parents keeps the counts
    os.makedirs(mount.path("A", "x", "deep"))
    os.mkdir(mount.path("B", "y"))
    renameat2(mount.path("A", "x"), mount.path("B", "y"), RENAME_EXCHANGE)
    assert os.path.isdir(mount.path("B", "y", "deep"))
    assert (os.stat(A).st_nlink, os.stat(B).st_nlink) == (3, 3)
    assert os.stat(mount.path("B", "y", "..")).st_ino == os.stat(B).st_ino
    assert os.stat(mount.path("A", "x", "..")).st_ino == os.stat(A).st_ino
    # a directory may not be exchanged into its own subtree
    raises_errno(errno.EINVAL, renameat2, mount.path("B", "y"),
                 mount.path("B", "y", "deep"), RENAME_EXCHANGE)


def test_rename_onto_own_hard_link(mount):
    write_file(mount.path("a"), b"x")
    os.link(mount.path("a"), mount.path("b"))
    os.rename(mount.path("a"), mount.path("b"))     # POSIX: does nothing
    assert sorted(os.listdir(mount.mnt)) == ["a", "b"]
    assert os.stat(mount.path("a")).st_nlink == 2


# --- links -------------------------------------------------------------------

def test_hard_links(mount):
    write_file(mount.path("a"), b"shared")
    os.mkdir(mount.path("d"))
    os.link(mount.path("a"), mount.path("b"))
    os.link(mount.path("a"), mount.path("d", "c"))
    sa = os.stat(mount.path("a"))
    assert sa.st_nlink == 3
    for n in (("b",), ("d", "c")):
        st = os.stat(mount.path(*n))
        assert st.st_ino == sa.st_ino and st.st_nlink == 3
    with open(mount.path("b"), "ab") as f:
        f.write(b" data")
    assert read_file(mount.path("d", "c")) == b"shared data"
    os.unlink(mount.path("a"))
    assert os.stat(mount.path("b")).st_nlink == 2
    raises_errno(errno.EEXIST, os.link, mount.path("b"), mount.path("d", "c"))
    raises_errno(errno.EPERM, os.link, mount.path("d"), mount.path("dl"))
    raises_errno(errno.ENOENT, os.link, mount.path("a"), mount.path("z"))
    os.unlink(mount.path("b"))
    assert os.stat(mount.path("d", "c")).st_nlink == 1
    assert read_file(mount.path("d", "c")) == b"shared data"
    # a hard link to a symlink is a second name for the link itself
    os.symlink("d/c", mount.path("s"))
    os.link(mount.path("s"), mount.path("s2"), follow_symlinks=False)
    assert os.readlink(mount.path("s2")) == "d/c"
    assert os.lstat(mount.path("s")).st_nlink == 2


# --- symlinks ----------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 60, 120, 121, 200, 4095])
def test_symlink_lengths(mount, length):
    target = ("t" * 9 + "/") * (length // 10) + "x" * (length % 10)
    assert len(target) == length
    os.symlink(target, mount.path("l"))
    assert os.readlink(mount.path("l")) == target
    assert os.lstat(mount.path("l")).st_size == length


def test_symlink_errors_and_following(mount):
    raises_errno(errno.ENAMETOOLONG, os.symlink, "x" * 4096,
                 mount.path("l"))
    assert not os.path.lexists(mount.path("l"))
    os.mkdir(mount.path("d"))
    write_file(mount.path("d", "f"), b"through a link")
    os.symlink("d/f", mount.path("rel"))
    os.symlink(mount.path("d"), mount.path("abs"))
    assert read_file(mount.path("rel")) == b"through a link"
    assert read_file(mount.path("abs", "f")) == b"through a link"
    raises_errno(errno.EEXIST, os.symlink, "y", mount.path("rel"))
    raises_errno(errno.EINVAL, os.readlink, mount.path("d", "f"))
    os.symlink("dangling", mount.path("dang"))
    raises_errno(errno.ENOENT, os.stat, mount.path("dang"))
    os.symlink("loop", mount.path("loop"))
    raises_errno(errno.ELOOP, os.stat, mount.path("loop"))


# --- file I/O ----------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, MiB + 3,
                                  3 * MiB - 1])
def test_write_read_sizes(mount, size):
    p = mount.path("f")
    data = pattern(size, seed=size % 251)
    write_file(p, data)
    assert os.stat(p).st_size == size
    assert read_file(p) == data
    blocks = -(-size // BLOCK)
    assert os.stat(p).st_blocks == blocks * BLOCK // 512


def test_pread_pwrite_model(mount):
    """Random pwrites at odd offsets, across block boundaries, against an
    in-memory model; then random preads."""
    rng = random.Random(1234)
    p = mount.path("f")
    model = bytearray()
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for k in range(300):
            off = rng.choice([
                rng.randrange(0, 64 * BLOCK),
                rng.randrange(1, 16) * BLOCK - rng.randrange(1, 9),
                rng.randrange(0, 2 * MiB)])
            n = rng.choice([1, 3, 511, BLOCK - 1, BLOCK, BLOCK + 1,
                            rng.randrange(1, 3 * BLOCK)])
            data = bytes(rng.getrandbits(8) for _ in range(n)) \
                if n < 64 else pattern(n, seed=k)
            assert os.pwrite(fd, data, off) == n
            if len(model) < off + n:
                model.extend(bytes(off + n - len(model)))
            model[off:off + n] = data
        assert os.fstat(fd).st_size == len(model)
        for _ in range(300):
            off = rng.randrange(0, len(model) + 100)
            n = rng.randrange(0, 3 * BLOCK)
            assert os.pread(fd, n, off) == bytes(model[off:off + n])
    finally:
        os.close(fd)
    assert read_file(p) == bytes(model)


def test_o_append(mount):
    p = mount.path("f")
    write_file(p, b"start:")
    a = os.open(p, os.O_WRONLY | os.O_APPEND)
    b = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        for k in range(50):
            os.write(a if k % 2 else b, b"%02d," % k)
        os.lseek(a, 0, os.SEEK_SET)               # ignored for O_APPEND
        os.write(a, b"end")
    finally:
        os.close(a)
        os.close(b)
    assert read_file(p) == b"start:" + b"".join(b"%02d," % k
                                                 for k in range(50)) + b"end"


@pytest.mark.parametrize("flag", ["O_SYNC", "O_DSYNC"])
def test_sync_writes(mount, flag):
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, flag), 0o644)
    try:
        data = pattern(BLOCK * 5 + 7)
        for off in range(0, len(data), 3000):
            assert os.pwrite(fd, data[off:off + 3000], off) == \
                len(data[off:off + 3000])
        assert os.pread(fd, len(data) + 10, 0) == data
    finally:
        os.close(fd)
    assert read_file(p) == data


def test_fsync_fdatasync_fsyncdir(mount):
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"x" * 10000)
    os.fsync(fd)
    os.pwrite(fd, b"y", 20000)
    os.fdatasync(fd)
    os.close(fd)
    assert os.stat(p).st_size == 20001
    dfd = os.open(mount.mnt, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.fdatasync(dfd)
    os.close(dfd)
    os.mkdir(mount.path("d"))
    dfd = os.open(mount.path("d"), os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    # fsync of a read-only descriptor is allowed too
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def test_sparse_file(mount):
    p = mount.path("f")
    far = 10 * MiB + 123
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"head", 0)
        os.pwrite(fd, b"tail", far)
        st = os.fstat(fd)
        assert st.st_size == far + 4
        # two blocks, not 2,500
        assert st.st_blocks == 2 * BLOCK // 512
        assert os.pread(fd, 8, 0) == b"head" + bytes(4)
        assert os.pread(fd, MiB, 5 * MiB) == bytes(MiB)
        assert os.pread(fd, 10, far - 3) == bytes(3) + b"tail"
        # filling a hole in the middle
        os.pwrite(fd, b"middle", 5 * MiB + BLOCK - 2)
        assert os.fstat(fd).st_blocks == 4 * BLOCK // 512
        assert os.pread(fd, 10, 5 * MiB + BLOCK - 4) == \
            bytes(2) + b"middle" + bytes(2)
    finally:
        os.close(fd)
    data = read_file(p)
    assert len(data) == far + 4
    assert data.count(0) == len(data) - 14


def test_lseek_data_hole(mount):
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # empty file
        raises_errno(errno.ENXIO, os.lseek, fd, 0, os.SEEK_DATA)
        raises_errno(errno.ENXIO, os.lseek, fd, 0, os.SEEK_HOLE)
        os.pwrite(fd, b"d" * BLOCK, MiB)
        os.pwrite(fd, b"e" * 10, 3 * MiB)
        size = 3 * MiB + 10
        assert os.lseek(fd, 0, os.SEEK_DATA) == MiB
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
        assert os.lseek(fd, MiB + 5, os.SEEK_DATA) == MiB + 5
        assert os.lseek(fd, MiB, os.SEEK_HOLE) == MiB + BLOCK
        assert os.lseek(fd, MiB + BLOCK, os.SEEK_DATA) == 3 * MiB
        assert os.lseek(fd, 3 * MiB, os.SEEK_HOLE) == size
        assert os.lseek(fd, size - 1, os.SEEK_HOLE) == size
        raises_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA)
        raises_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_HOLE)
        raises_errno(errno.ENXIO, os.lseek, fd, size + MiB, os.SEEK_DATA)
        # a file that is all hole
        os.ftruncate(fd, 0)
        os.ftruncate(fd, 2 * MiB)
        raises_errno(errno.ENXIO, os.lseek, fd, 0, os.SEEK_DATA)
        assert os.lseek(fd, 100, os.SEEK_HOLE) == 100
        # a file that is all data
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"x" * (3 * BLOCK), 0)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 3 * BLOCK
    finally:
        os.close(fd)


def test_copy_file_range(mount):
    src, dst = mount.path("src"), mount.path("dst")
    data = pattern(3 * MiB + 77, seed=5)
    write_file(src, data)
    write_file(dst, b"")
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_RDWR)
    try:
        done = 0
        while done < len(data):
            n = os.copy_file_range(fi, fo, len(data) - done, done, done)
            assert n > 0
            done += n
        assert read_file(dst) == data
        # a partial range at odd offsets into an existing file
        n = os.copy_file_range(fi, fo, 10001, 12345, 777)
        assert n == 10001
        want = bytearray(data)
        want[777:777 + 10001] = data[12345:12345 + 10001]
        assert read_file(dst) == bytes(want)
        # past the source's end: nothing
        assert os.copy_file_range(fi, fo, 100, len(data) + 5, 0) == 0
        # crossing the source's end: short
        assert os.copy_file_range(fi, fo, 100, len(data) - 10, 0) == 10
    finally:
        os.close(fi)
        os.close(fo)


def test_copy_file_range_holes_and_same_file(mount):
    src, dst = mount.path("sparse"), mount.path("dst")
    fd = os.open(src, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"A" * 100, 0)
    os.pwrite(fd, b"B" * 100, 2 * MiB)
    os.close(fd)
    write_file(dst, b"\xff" * (3 * MiB))       # holes must overwrite this
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_RDWR)
    try:
        total = 2 * MiB + 100
        done = 0
        while done < total:
            n = os.copy_file_range(fi, fo, total - done, done, done)
            assert n > 0
            done += n
    finally:
        os.close(fi)
        os.close(fo)
    got = read_file(dst)
    assert got[:100] == b"A" * 100
    assert got[100:2 * MiB] == bytes(2 * MiB - 100)
    assert got[2 * MiB:2 * MiB + 100] == b"B" * 100
    assert got[2 * MiB + 100:] == b"\xff" * (MiB - 100)
    # within one file: disjoint ranges work, overlapping ones are EINVAL
    p = mount.path("same")
    data = pattern(4 * BLOCK, seed=9)
    write_file(p, data)
    fd = os.open(p, os.O_RDWR)
    try:
        assert os.copy_file_range(fd, fd, BLOCK, 0, 2 * BLOCK) == BLOCK
        assert os.pread(fd, BLOCK, 2 * BLOCK) == data[:BLOCK]
        raises_errno(errno.EINVAL, os.copy_file_range, fd, fd, 2 * BLOCK,
                     0, BLOCK)
        raises_errno(errno.EINVAL, os.copy_file_range, fd, fd, 100, 50, 0)
    finally:
        os.close(fd)


# --- readdir -----------------------------------------------------------------

def ls(path):
    """readdir's raw view: {name: (d_type, d_ino)}, checked for dups."""
    out = run_prog("daxfs_syscalls", "ls", path)
    entries = {}
    for line in out.splitlines():
        name, dtype, ino = line.split("\t")
        assert name not in entries, f"{name} returned twice"
        entries[name] = (int(dtype), int(ino))
    return entries


DT = {"fifo": 1, "chr": 2, "dir": 4, "blk": 6, "reg": 8, "lnk": 10,
      "sock": 12}


def test_readdir_types_and_inodes(mount):
    os.mkdir(mount.path("dir"))
    write_file(mount.path("reg"), b"")
    os.symlink("reg", mount.path("lnk"))
    os.mkfifo(mount.path("fifo"))
    kinds = ["dir", "reg", "lnk", "fifo"]
    if os.geteuid() == 0:
        os.mknod(mount.path("chr"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
        os.mknod(mount.path("blk"), stat.S_IFBLK | 0o600, os.makedev(1, 3))
        kinds += ["chr", "blk"]
    os.mknod(mount.path("sock"), stat.S_IFSOCK | 0o600)
    kinds.append("sock")
    got = ls(mount.mnt)
    assert set(got) == set(kinds) | {".", ".."}
    for k in kinds:
        assert got[k] == (DT[k], os.lstat(mount.path(k)).st_ino), k
    assert got["."] == (DT["dir"], os.stat(mount.mnt).st_ino)
    assert got[".."][0] == DT["dir"]
    sub = ls(mount.path("dir"))
    assert set(sub) == {".", ".."}
    assert sub["."][1] == os.stat(mount.path("dir")).st_ino
    assert sub[".."][1] == os.stat(mount.mnt).st_ino


def test_readdir_after_many_creates_and_deletes(mount):
    d = mount.path("d")
    os.mkdir(d)
    alive = set()
    for k in range(700):
        n = f"file-{k:04d}" + ("-" + "x" * (k % 200) if k % 7 == 0 else "")
        write_file(os.path.join(d, n), b"")
        alive.add(n)
    for n in sorted(alive)[::3]:
        os.unlink(os.path.join(d, n))
        alive.discard(n)
    for k in range(150):                  # reuse the freed slots
        n = f"again-{k}-" + "y" * (k % 180)
        if k % 5 == 0:
            os.mkdir(os.path.join(d, n))
        else:
            write_file(os.path.join(d, n), b"")
        alive.add(n)
    got = ls(d)
    assert set(got) == alive | {".", ".."}
    assert sorted(os.listdir(d)) == sorted(alive)
    for n in alive:
        want = DT["dir"] if n.startswith("again-") and \
            int(n.split("-")[1]) % 5 == 0 else DT["reg"]
        assert got[n][0] == want, n
    assert os.stat(d).st_nlink == 2 + 30


def test_readdir_with_concurrent_unlinks(mount):
    d = mount.path("d")
    os.mkdir(d)
    names = {f"entry-{k:05d}-{'z' * (k % 40)}" for k in range(1500)}
    for n in names:
        write_file(os.path.join(d, n), b"")
    stop = threading.Event()
    errors = []

    def unlinker():
        try:
            for n in sorted(names, reverse=True):
                os.unlink(os.path.join(d, n))
        except Exception as e:                  # noqa: BLE001
            errors.append(e)
        finally:
            stop.set()

    t = threading.Thread(target=unlinker)
    t.start()
    listings = 0
    try:
        while not stop.is_set() or listings < 2:
            seen = os.listdir(d)
            listings += 1
            assert len(seen) == len(set(seen)), "a name listed twice"
            bad = set(seen) - names
            assert not bad, f"garbage names from readdir: {sorted(bad)[:5]}"
    finally:
        t.join(60)
    assert not errors, errors
    assert listings >= 2
    assert os.listdir(d) == []
    assert set(ls(d)) == {".", ".."}


def test_readdirplus_ls_l(mount):
    """ls -l of a big directory (readdirplus fills the attributes) shows
    what was created."""
    d = mount.path("d")
    os.mkdir(d)
    want = {}
    for k in range(400):
        n = f"e{k:03d}"
        p = os.path.join(d, n)
        if k % 10 == 0:
            os.mkdir(p, 0o700)
            want[n] = ("d", 0o700, 2, 0)
        elif k % 10 == 1:
            os.symlink("t" * (k % 50 + 1), p)
            want[n] = ("l", 0o777, 1, k % 50 + 1)
        else:
            write_file(p, b"x" * k)
            os.chmod(p, 0o600 + (k % 8) * 0o10)
            want[n] = ("-", 0o600 + (k % 8) * 0o10, 1, k)
        if k % 10 in (2, 3) and os.geteuid() == 0:
            os.lchown(p, 1000 + k, 2000 + k)
    res = subprocess.run(["ls", "-ln", "--time-style=+%s", d],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()[1:]          # "total N"
    assert len(lines) == 400
    for line in lines:
        f = line.split(None, 6)
        perms, nlink, uid, gid, size, mtime, rest = f
        name = rest.split(" -> ")[0]
        kind, mode, links, length = want[name]
        assert perms[0] == kind, line
        assert sym_mode(perms) == mode, line
        st = os.lstat(os.path.join(d, name))
        assert int(nlink) == links == st.st_nlink, line
        assert (int(uid), int(gid)) == (st.st_uid, st.st_gid), line
        if name[1:].isdigit() and int(name[1:]) % 10 in (2, 3) and \
                os.geteuid() == 0:
            k = int(name[1:])
            assert (int(uid), int(gid)) == (1000 + k, 2000 + k)
        if kind != "d":
            assert int(size) == length == st.st_size, line
        assert int(mtime) == int(st.st_mtime), line


def sym_mode(perms):
    bits = 0
    for k, c in enumerate(perms[1:10]):
        if c in "rwxst":
            bits |= 1 << (8 - k)
    return bits


# --- statfs ------------------------------------------------------------------

def test_statfs(mount):
    # directories keep the blocks they grow: give the root its first
    # one before taking the figures
    write_file(mount.path("keep"), b"")
    sv = os.statvfs(mount.mnt)
    assert sv.f_namemax == 255
    assert sv.f_bsize == BLOCK and sv.f_frsize == BLOCK
    # a 64 MiB region: most of it is data
    assert 48 * MiB <= sv.f_blocks * BLOCK <= 64 * MiB
    assert 0 < sv.f_bfree <= sv.f_blocks
    assert sv.f_bavail == sv.f_bfree
    assert sv.f_files > 1000 and 0 < sv.f_ffree < sv.f_files
    free0, files0 = sv.f_bfree, sv.f_ffree
    write_file(mount.path("big"), pattern(8 * MiB))
    for k in range(10):
        write_file(mount.path(f"f{k}"), b"")
    sv = os.statvfs(mount.mnt)
    assert free0 - sv.f_bfree >= 8 * MiB // BLOCK
    assert free0 - sv.f_bfree < 8 * MiB // BLOCK + 64
    assert files0 - sv.f_ffree == 11
    os.unlink(mount.path("big"))
    for k in range(10):
        os.unlink(mount.path(f"f{k}"))
    assert wait_for_free(mount.mnt, free0 * BLOCK)
    assert wait_for(lambda: os.statvfs(mount.mnt).f_ffree == files0)
    assert os.statvfs(mount.mnt).f_bfree == free0


# --- fallocate ---------------------------------------------------------------

def test_fallocate_mode0(mount):
    p = mount.path("f")
    write_file(p, b"abc")
    free0 = statvfs_free(mount.mnt)
    fd = os.open(p, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 2 * MiB + 5)
        st = os.fstat(fd)
        assert st.st_size == 2 * MiB + 5
        assert st.st_blocks * 512 >= 2 * MiB + 5
        assert os.pread(fd, 2 * MiB + 100, 0) == b"abc" + bytes(2 * MiB + 2)
        assert free0 - statvfs_free(mount.mnt) >= 2 * MiB
        # inside the file: the size stays
        os.posix_fallocate(fd, 100, 1000)
        assert os.fstat(fd).st_size == 2 * MiB + 5
        raises_errno(errno.EINVAL, fallocate, fd, 0, 0, 0)
        raises_errno(errno.EINVAL, fallocate, fd, 0, -1, 10)
    finally:
        os.close(fd)


def test_fallocate_keep_size(mount):
    p = mount.path("f")
    write_file(p, b"12345")
    free0 = statvfs_free(mount.mnt)
    fd = os.open(p, os.O_RDWR)
    try:
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4 * MiB)
        st = os.fstat(fd)
        assert st.st_size == 5
        assert st.st_blocks * 512 >= 4 * MiB
        assert free0 - statvfs_free(mount.mnt) >= 4 * MiB - BLOCK
        assert os.pread(fd, 100, 0) == b"12345"
        # writing into the preallocated range takes no more space
        free1 = statvfs_free(mount.mnt)
        os.pwrite(fd, b"z", 3 * MiB)
        assert statvfs_free(mount.mnt) == free1
        assert os.pread(fd, 3 * MiB + 1, 0) == b"12345" + \
            bytes(3 * MiB - 5) + b"z"
    finally:
        os.close(fd)


def test_fallocate_punch_hole(mount):
    p = mount.path("f")
    data = pattern(4 * MiB, seed=2)
    write_file(p, data)
    free0 = statvfs_free(mount.mnt)
    blocks0 = os.stat(p).st_blocks
    fd = os.open(p, os.O_RDWR)
    try:
        # unaligned ends: the partial blocks are zeroed, whole ones freed
        off, length = MiB + 100, 2 * MiB
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length)
        st = os.fstat(fd)
        assert st.st_size == 4 * MiB
        want = bytearray(data)
        want[off:off + length] = bytes(length)
        assert os.pread(fd, 4 * MiB, 0) == bytes(want)
        freed = statvfs_free(mount.mnt) - free0
        assert freed >= length - 2 * BLOCK
        assert blocks0 - st.st_blocks >= (length - 2 * BLOCK) // 512
        # inside one block
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 20)
        want[10:30] = bytes(20)
        assert os.pread(fd, 4 * MiB, 0) == bytes(want)
        # SEEK_HOLE sees the punched range
        assert os.lseek(fd, MiB, os.SEEK_HOLE) == MiB + BLOCK
        # past end of file: nothing changes
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  8 * MiB, MiB)
        assert os.fstat(fd).st_size == 4 * MiB
    finally:
        os.close(fd)
    assert read_file(p) == bytes(want)


@pytest.mark.parametrize("mode", [
    FALLOC_FL_ZERO_RANGE, FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE,
    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE])
def test_fallocate_unsupported_modes(mount, mode):
    p = mount.path("f")
    data = pattern(4 * BLOCK)
    write_file(p, data)
    fd = os.open(p, os.O_RDWR)
    try:
        raises_errno(errno.EOPNOTSUPP, fallocate, fd, mode, BLOCK, BLOCK)
    finally:
        os.close(fd)
    assert read_file(p) == data


# --- xattrs ------------------------------------------------------------------

def test_xattr_set_get_list_remove(mount):
    p = mount.path("f")
    write_file(p, b"")
    assert os.listxattr(p) == []
    os.setxattr(p, "user.one", b"1")
    os.setxattr(p, "user.two", b"\x00binary\xff" * 10)
    os.setxattr(p, "user.empty", b"")
    os.setxattr(p, "trusted.root", b"t")
    assert os.getxattr(p, "user.one") == b"1"
    assert os.getxattr(p, "user.two") == b"\x00binary\xff" * 10
    assert os.getxattr(p, "user.empty") == b""
    assert sorted(os.listxattr(p)) == sorted(
        ["user.one", "user.two", "user.empty", "trusted.root"])
    os.setxattr(p, "user.one", b"replaced value")
    assert os.getxattr(p, "user.one") == b"replaced value"
    os.removexattr(p, "user.two")
    raises_errno(errno.ENODATA, os.getxattr, p, "user.two")
    assert sorted(os.listxattr(p)) == sorted(
        ["user.one", "user.empty", "trusted.root"])
    # on a directory too; and changing xattrs moves ctime only
    os.mkdir(mount.path("d"))
    before = os.stat(mount.path("d"))
    time.sleep(0.02)
    os.setxattr(mount.path("d"), "user.dir", b"on a dir")
    assert os.getxattr(mount.path("d"), "user.dir") == b"on a dir"
    after = os.stat(mount.path("d"))
    assert after.st_ctime_ns > before.st_ctime_ns
    assert after.st_mtime_ns == before.st_mtime_ns
    # the file's data is untouched by all this
    assert read_file(p) == b""


def test_xattr_errors(mount):
    p = mount.path("f")
    write_file(p, b"")
    raises_errno(errno.ENODATA, os.getxattr, p, "user.missing")
    raises_errno(errno.ENODATA, os.removexattr, p, "user.missing")
    raises_errno(errno.ENODATA, os.setxattr, p, "user.new", b"v",
                 os.XATTR_REPLACE)
    os.setxattr(p, "user.new", b"v", os.XATTR_CREATE)
    raises_errno(errno.EEXIST, os.setxattr, p, "user.new", b"w",
                 os.XATTR_CREATE)
    assert os.getxattr(p, "user.new") == b"v"
    os.setxattr(p, "user.new", b"w", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.new") == b"w"
    # a value too big for the 4 KiB xattr block
    raises_errno((errno.ENOSPC, errno.E2BIG), os.setxattr, p, "user.big",
                 b"b" * 5000)
    raises_errno(errno.E2BIG, os.setxattr, p, "user.huge", b"h" * 70000)
    raises_errno(errno.ERANGE, os.setxattr, p, "user." + "n" * 251, b"x")
    assert os.listxattr(p) == ["user.new"]
    # fill the block: ENOSPC, and what was there stays readable
    k = 0
    with pytest.raises(OSError) as ei:
        while k < 1000:
            os.setxattr(p, f"user.fill{k:03d}", b"v" * 100)
            k += 1
    assert ei.value.errno in (errno.ENOSPC, errno.E2BIG)
    assert 20 < k < 60
    for j in range(k):
        assert os.getxattr(p, f"user.fill{j:03d}") == b"v" * 100
    # replacing an existing value by a larger one that does not fit
    raises_errno((errno.ENOSPC, errno.E2BIG), os.setxattr, p,
                 "user.fill000", b"v" * 3000)
    assert os.getxattr(p, "user.fill000") == b"v" * 100
    # removing one makes room again
    os.removexattr(p, "user.fill000")
    os.setxattr(p, "user.again", b"a" * 100)
    assert os.getxattr(p, "user.again") == b"a" * 100
    # a namespace the kernel refuses on a symlink
    os.symlink("f", mount.path("l"))
    raises_errno(errno.EPERM, os.setxattr, mount.path("l"), "user.x", b"1",
                 follow_symlinks=False)


def test_xattr_posix_acl_refused(mount):
    """daxfs has no POSIX ACLs: the system.posix_acl_* names are refused
    (rather than stored as bytes the kernel would not enforce), so cp -a
    and friends fall back to chmod and the mode comes out right."""
    p = mount.path("f")
    write_file(p, b"")
    os.chmod(p, 0o600)
    acl = bytes.fromhex("02000000" "01000600ffffffff" "04000400ffffffff"
                        "20000400ffffffff")          # rw-r--r--
    raises_errno(errno.EOPNOTSUPP, os.setxattr, p,
                 "system.posix_acl_access", acl)
    raises_errno(errno.EOPNOTSUPP, os.setxattr, mount.mnt,
                 "system.posix_acl_default", acl)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.listxattr(p) == []
    src = os.path.join(os.path.dirname(mount.mnt), "src")
    os.makedirs(os.path.join(src, "sub"), exist_ok=True)
    write_file(os.path.join(src, "sub", "file"), b"x", mode=0o644)
    os.chmod(os.path.join(src, "sub", "file"), 0o644)
    os.chmod(os.path.join(src, "sub"), 0o751)
    res = subprocess.run(["cp", "-a", src, mount.path("copy")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(os.stat(mount.path("copy", "sub")).st_mode) == 0o751
    assert stat.S_IMODE(os.stat(mount.path("copy", "sub", "file")).st_mode) \
        == 0o644


def test_xattr_erange(mount):
    p = mount.path("f")
    write_file(p, b"")
    run_prog("daxfs_syscalls", "xattr-erange", p)


def test_xattr_largest_value(mount):
    p = mount.path("f")
    write_file(p, b"")
    # the block holds a 32-byte header and a 4-byte entry header; find
    # the largest value that fits by trying downwards from 4 KiB
    name = "user.v"
    size = BLOCK
    while size > 3500:
        try:
            os.setxattr(p, name, b"q" * size)
            break
        except OSError as e:
            assert e.errno in (errno.ENOSPC, errno.E2BIG)
            size -= 1
    assert size >= BLOCK - 32 - 4 - len(name) - 4
    assert os.getxattr(p, name) == b"q" * size
    os.removexattr(p, name)
    assert os.listxattr(p) == []


# --- running out of space ----------------------------------------------------

def test_enospc_data(daxfsctl, need_fuse, tmp_path):
    with fresh_region(daxfsctl, "enospc", "--size", "16M") as region:
        with mounted(region, tmp_path / "mnt") as m:
            # the root directory's first block stays: take it first
            write_file(m.path("keep"), b"")
            free0 = statvfs_free(m.mnt)
            chunk = MiB
            written = {}
            short = None
            k = 0
            full = False
            while not full:
                name = f"f{k}"
                data = pattern(3 * chunk, seed=k)
                fd = os.open(m.path(name), os.O_WRONLY | os.O_CREAT, 0o644)
                off = 0
                try:
                    while off < len(data):
                        try:
                            n = os.write(fd, data[off:off + chunk])
                        except OSError as e:
                            assert e.errno == errno.ENOSPC, e
                            full = True
                            break
                        if n < len(data[off:off + chunk]):
                            short = n
                        off += n
                finally:
                    os.close(fd)
                written[name] = data[:off]
                k += 1
                assert k < 100, "16 MiB never filled up"
            assert short is not None, "no short write before ENOSPC"
            assert statvfs_free(m.mnt) < 64 * BLOCK
            # everything written before is intact
            for name, data in written.items():
                assert read_file(m.path(name)) == data, name
                assert os.stat(m.path(name)).st_size == len(data)
            # still full: a new write fails, nothing half-done is visible
            fd = os.open(m.path("more"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                raises_errno(errno.ENOSPC, os.write, fd, b"x" * (2 * MiB))
            finally:
                os.close(fd)
            assert os.stat(m.path("more")).st_size == 0
            fd = os.open(m.path("more"), os.O_RDWR)
            try:
                raises_errno(errno.ENOSPC, os.posix_fallocate, fd, 0,
                             4 * MiB)
            finally:
                os.close(fd)
            # deleting gives the space back
            for name in written:
                os.unlink(m.path(name))
            os.unlink(m.path("more"))
            assert wait_for_free(m.mnt, free0)
            assert statvfs_free(m.mnt) == free0
            write_file(m.path("after"), pattern(4 * MiB, seed=77))
            assert read_file(m.path("after")) == pattern(4 * MiB, seed=77)
        finish_fsck(daxfsctl, region)


def test_enospc_inodes(daxfsctl, need_fuse, tmp_path):
    with fresh_region(daxfsctl, "inodes", "--size", "16M",
                      "--inodes", "64") as region:
        with mounted(region, tmp_path / "mnt") as m:
            sv = os.statvfs(m.mnt)
            made = []
            with pytest.raises(OSError) as ei:
                for k in range(200):
                    write_file(m.path(f"f{k}"), b"%d" % k)
                    made.append(f"f{k}")
            assert ei.value.errno == errno.ENOSPC
            assert len(made) == sv.f_ffree
            assert os.statvfs(m.mnt).f_ffree == 0
            raises_errno(errno.ENOSPC, os.mkdir, m.path("d"))
            raises_errno(errno.ENOSPC, os.symlink, "x", m.path("s"))
            raises_errno(errno.ENOSPC, os.mkfifo, m.path("p"))
            assert not os.path.lexists(m.path(f"f{len(made)}"))
            # a hard link needs no inode
            os.link(m.path("f0"), m.path("f0-link"))
            for k, name in enumerate(made):
                assert read_file(m.path(name)) == b"%d" % k
            os.unlink(m.path("f1"))
            assert wait_for(lambda: os.statvfs(m.mnt).f_ffree == 1)
            os.mkdir(m.path("d"))
            assert os.path.isdir(m.path("d"))
        finish_fsck(daxfsctl, region)


# --- concurrency -------------------------------------------------------------

def test_concurrent_namespace_ops(daxfsctl, need_fuse, region, tmp_path):
    """4 threads x 1,000 creates, renames and unlinks over one shared set
    of names.  Renames use RENAME_NOREPLACE, so every success is exact:
    the survivors are the creates minus the unlinks, each file keeps the
    token it was created with, and no token shows up twice."""
    nthreads, nops, pool = 4, 1000, 48
    with mounted(region, tmp_path / "mnt") as m:
        d = m.path("race")
        os.mkdir(d)
        tally = [dict(create=0, unlink=0, rename=0, tokens=set())
                 for _ in range(nthreads)]
        errors = []
        barrier = threading.Barrier(nthreads)

        def worker(t):
            rng = random.Random(t)
            me = tally[t]
            barrier.wait()
            for k in range(nops):
                a = os.path.join(d, f"n{rng.randrange(pool)}")
                op = rng.random()
                try:
                    if op < 0.4:
                        token = f"{t}:{k}".encode()
                        fd = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                     0o644)
                        try:
                            os.write(fd, token)
                        finally:
                            os.close(fd)
                        me["create"] += 1
                        me["tokens"].add(token)
                    elif op < 0.7:
                        b = os.path.join(d, f"n{rng.randrange(pool)}")
                        renameat2(a, b, RENAME_NOREPLACE)
                        me["rename"] += 1
                    else:
                        os.unlink(a)
                        me["unlink"] += 1
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOENT):
                        errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,))
                   for t in range(nthreads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        assert not any(th.is_alive() for th in threads)
        assert not errors, errors[:5]
        creates = sum(x["create"] for x in tally)
        unlinks = sum(x["unlink"] for x in tally)
        assert creates > 500 and unlinks > 200
        assert sum(x["rename"] for x in tally) > 100
        names = os.listdir(d)
        assert len(names) == creates - unlinks
        assert set(names) <= {f"n{k}" for k in range(pool)}
        entries = ls(d)
        assert set(entries) == set(names) | {".", ".."}
        all_tokens = set().union(*(x["tokens"] for x in tally))
        seen = set()
        for n in names:
            tok = read_file(os.path.join(d, n))
            assert tok in all_tokens, (n, tok)
            assert tok not in seen, f"token {tok!r} in two files"
            seen.add(tok)
            assert entries[n] == (DT["reg"],
                                  os.stat(os.path.join(d, n)).st_ino)
        assert os.stat(d).st_nlink == 2
    finish_fsck(daxfsctl, region)


def test_parallel_writers_and_readers(mount):
    nthreads = 4
    size = 8 * MiB
    errors = []

    def writer(t):
        try:
            data = pattern(size, seed=t + 1)
            fd = os.open(mount.path(f"w{t}"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                step = 64 * 1024 + t * 4096 + 17      # odd chunk sizes
                for off in range(0, size, step):
                    os.pwrite(fd, data[off:off + step], off)
            finally:
                os.close(fd)
        except Exception as e:                    # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,))
               for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    for t in range(nthreads):
        assert read_file(mount.path(f"w{t}")) == pattern(size, seed=t + 1)

    # many readers of one file, at random offsets
    data = pattern(size, seed=1)

    def reader(t):
        try:
            rng = random.Random(100 + t)
            fd = os.open(mount.path("w0"), os.O_RDONLY)
            try:
                for _ in range(400):
                    off = rng.randrange(size)
                    n = rng.randrange(1, 300000)
                    assert os.pread(fd, n, off) == data[off:off + n]
            finally:
                os.close(fd)
        except Exception as e:                    # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors


def test_writer_and_readers_of_one_file(mount):
    """Readers never see anything but old or new bytes while a writer
    rewrites a file in place."""
    p = mount.path("f")
    size = 4 * MiB
    old, new = b"o" * size, b"n" * size
    write_file(p, old)
    errors = []
    stop = threading.Event()

    def reader():
        fd = os.open(p, os.O_RDONLY)
        try:
            while not stop.is_set():
                buf = os.pread(fd, size, 0)
                assert len(buf) == size
                assert buf.count(b"o") + buf.count(b"n") == size
        except Exception as e:                    # noqa: BLE001
            errors.append(e)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    fd = os.open(p, os.O_WRONLY)
    try:
        for off in range(0, size, 64 * 1024):
            os.pwrite(fd, new[off:off + 64 * 1024], off)
    finally:
        os.close(fd)
        stop.set()
        for th in threads:
            th.join(60)
    assert not errors, errors
    assert read_file(p) == new


# --- a large file ------------------------------------------------------------

def test_200mib_file(daxfsctl, need_fuse, tmp_path):
    size = 200 * MiB
    chunk = 4 * MiB
    with fresh_region(daxfsctl, "big", "--size", "320M") as region:
        mnt = tmp_path / "mnt"
        h = hashlib.sha256()
        with mounted(region, mnt) as m:
            p = m.path("big")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for k in range(size // chunk):
                    data = pattern(chunk, seed=k)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    h.update(data)
                os.fsync(fd)
            finally:
                os.close(fd)
            want = h.hexdigest()
            assert os.stat(p).st_size == size
            assert os.stat(p).st_blocks * 512 == size
            assert sha256_of(p) == want
        with mounted(region, mnt) as m:
            assert os.stat(m.path("big")).st_size == size
            assert sha256_of(m.path("big")) == want
        finish_fsck(daxfsctl, region)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# --- more semantics ----------------------------------------------------------

def test_readdir_seekdir_offsets_stable(mount):
    d = mount.path("d")
    os.mkdir(d)
    for k in range(300):
        write_file(os.path.join(d, f"s{k:03d}" + "q" * (k % 60)), b"")
    run_prog("daxfs_syscalls", "seekdir", d)
    assert len(os.listdir(d)) == 300 - 150 - len(
        [k for k in range(151, 300) if k % 5 == 0])


def test_directory_times(mount):
    d = mount.path("d")
    os.mkdir(d)
    os.utime(d, ns=(1, 1))
    steps = [
        ("create", lambda: write_file(os.path.join(d, "f"), b"")),
        ("mkdir", lambda: os.mkdir(os.path.join(d, "sub"))),
        ("rename", lambda: os.rename(os.path.join(d, "f"),
                                     os.path.join(d, "g"))),
        ("symlink", lambda: os.symlink("g", os.path.join(d, "l"))),
        ("link", lambda: os.link(os.path.join(d, "g"),
                                 os.path.join(d, "h"))),
        ("unlink", lambda: os.unlink(os.path.join(d, "h"))),
        ("rmdir", lambda: os.rmdir(os.path.join(d, "sub"))),
    ]
    for what, step in steps:
        os.utime(d, ns=(1, 1))
        ctime0 = os.stat(d).st_ctime_ns
        time.sleep(0.01)
        step()
        st = os.stat(d)
        assert near_now(st.st_mtime), what
        assert st.st_ctime_ns > ctime0, what
        assert st.st_atime_ns == 1, what
    # a rename across directories touches both
    os.mkdir(mount.path("e"))
    os.utime(d, ns=(1, 1))
    os.utime(mount.path("e"), ns=(1, 1))
    os.rename(os.path.join(d, "g"), mount.path("e", "g"))
    assert near_now(os.stat(d).st_mtime)
    assert near_now(os.stat(mount.path("e")).st_mtime)
    # reading a directory changes nothing
    os.utime(d, ns=(5, 6))
    os.listdir(d)
    st = os.stat(d)
    assert (st.st_atime_ns, st.st_mtime_ns) == (5, 6)


def test_setgid_directory_inheritance(mount):
    if os.geteuid() != 0:
        pytest.skip("chown to another group needs root")
    d = mount.path("shared")
    os.mkdir(d)
    os.chown(d, 0, 4242)
    os.chmod(d, 0o2775)
    write_file(os.path.join(d, "f"), b"")
    os.mkdir(os.path.join(d, "sub"))
    os.symlink("f", os.path.join(d, "l"))
    assert os.stat(os.path.join(d, "f")).st_gid == 4242
    assert os.lstat(os.path.join(d, "l")).st_gid == 4242
    sub = os.stat(os.path.join(d, "sub"))
    assert sub.st_gid == 4242
    assert sub.st_mode & stat.S_ISGID
    assert not os.stat(os.path.join(d, "f")).st_mode & stat.S_ISGID
    # outside, the creator's group
    write_file(mount.path("plain"), b"")
    assert os.stat(mount.path("plain")).st_gid == os.getgid()


def _as_user(uid, fn):
    """Run fn in a child process with uid/gid uid; return its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            fn()
            code = 0
        except BaseException as e:           # noqa: BLE001
            os.write(2, f"as uid {uid}: {e!r}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_permissions_and_suid_clearing(region, need_fuse, tmp_path):
    """With allow_other, the kernel checks permissions (default_permissions)
    and writes, truncates and chowns clear set-user-ID."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    nobody = 65534
    # pytest's tmp_path lies under a 0700 directory: mount where another
    # user can reach
    top = tempfile.mkdtemp(prefix="daxfs-test-perm-", dir="/tmp")
    os.chmod(top, 0o755)
    try:
        _permissions_and_suid(region, os.path.join(top, "mnt"), nobody)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _permissions_and_suid(region, mnt, nobody):
    with mounted(region, mnt, opts=("-o", "allow_other")) as m:
        os.chmod(m.mnt, 0o755)
        p = m.path("f")
        write_file(p, b"data")
        os.chmod(p, 0o600)
        assert _as_user(nobody, lambda: read_file(p)) != 0     # EACCES
        assert _as_user(nobody, lambda: os.stat(p)) == 0
        assert _as_user(nobody, lambda: write_file(m.path("x"), b"")) != 0
        os.chmod(p, 0o6777)
        assert _as_user(nobody, lambda: os.truncate(p, 2)) == 0
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o6000 == 0
        os.chmod(p, 0o4777)

        def append():
            with open(p, "ab") as f:
                f.write(b"!")
        assert _as_user(nobody, append) == 0
        assert read_file(p) == b"da!"
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o777
        os.chmod(p, 0o4755)
        os.chown(p, 1000, 1000)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o755
        # a sticky directory: others may not remove what is not theirs
        os.mkdir(m.path("tmp"))
        os.chmod(m.path("tmp"), 0o1777)
        write_file(m.path("tmp", "roots"), b"")
        assert _as_user(nobody, lambda: os.unlink(m.path("tmp", "roots"))) \
            != 0
        assert _as_user(nobody, lambda: write_file(m.path("tmp", "mine"),
                                                   b"")) == 0
        assert os.stat(m.path("tmp", "mine")).st_uid == nobody
        assert _as_user(nobody, lambda: os.unlink(m.path("tmp", "mine"))) \
            == 0
        assert os.listdir(m.path("tmp")) == ["roots"]


def test_hard_link_limit(mount):
    p = mount.path("f")
    write_file(p, b"x")
    d = mount.path("links")
    os.mkdir(d)
    made = 1
    with pytest.raises(OSError) as ei:
        while made < 70000:
            os.link(p, os.path.join(d, f"{made}"))
            made += 1
    assert ei.value.errno == errno.EMLINK
    assert made == 65000
    assert os.stat(p).st_nlink == 65000
    os.unlink(os.path.join(d, "1"))
    os.link(p, os.path.join(d, "again"))
    assert os.stat(p).st_nlink == 65000


def test_subdirectory_limit(daxfsctl, need_fuse, tmp_path):
    """A directory holds at most 65,000 links: mkdir and a rename of a
    directory into it give EMLINK; files still go in."""
    with fresh_region(daxfsctl, "emlink", "--size", "96M",
                      "--inodes", "70000") as region:
        with mounted(region, tmp_path / "mnt") as m:
            p = m.path("p")
            os.mkdir(p)
            os.mkdir(m.path("outside"))
            made = 0
            with pytest.raises(OSError) as ei:
                while made < 70000:
                    os.mkdir(os.path.join(p, str(made)))
                    made += 1
            assert ei.value.errno == errno.EMLINK
            assert made == 65000 - 2
            assert os.stat(p).st_nlink == 65000
            raises_errno(errno.EMLINK, os.rename, m.path("outside"),
                         os.path.join(p, "moved"))
            write_file(os.path.join(p, "a-file"), b"files do not count")
            # within the directory, renames and replacing a directory work
            os.rename(os.path.join(p, "0"), os.path.join(p, "zero"))
            os.rename(os.path.join(p, "zero"), os.path.join(p, "1"))
            assert os.stat(p).st_nlink == 65000 - 1
            os.mkdir(os.path.join(p, "again"))
            assert os.stat(p).st_nlink == 65000


def test_efbig(mount):
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        raises_errno(errno.EFBIG, os.pwrite, fd, b"x", 1 << 50)
        raises_errno(errno.EFBIG, os.ftruncate, fd, (1 << 50) + 1)
        raises_errno(errno.EFBIG, os.posix_fallocate, fd, (1 << 50) - 1,
                     2)
        assert os.fstat(fd).st_size == 0
        os.pwrite(fd, b"end", (1 << 50) - 3)
        assert os.fstat(fd).st_size == 1 << 50
        assert os.pread(fd, 10, (1 << 50) - 3) == b"end"
    finally:
        os.close(fd)


def test_o_direct(mount):
    import mmap
    p = mount.path("f")
    buf = mmap.mmap(-1, 64 * 1024)              # page-aligned memory
    buf[:] = pattern(64 * 1024, seed=4)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        assert os.pwrite(fd, buf, 0) == 64 * 1024
        assert os.pwrite(fd, buf[:4096], 1 << 20) == 4096
    finally:
        os.close(fd)
    # buffered readers see what went around the page cache
    data = read_file(p)
    assert data[:64 * 1024] == pattern(64 * 1024, seed=4)
    assert data[1 << 20:] == pattern(4096, seed=4)
    write_file(p, b"buffered" * 1000)
    fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    try:
        rbuf = mmap.mmap(-1, 8192)
        assert os.preadv(fd, [rbuf], 0) == 8000
        assert rbuf[:8000] == b"buffered" * 1000
    finally:
        os.close(fd)


def test_rename_whiteout_refused(mount):
    if os.geteuid() != 0:
        pytest.skip("RENAME_WHITEOUT needs CAP_MKNOD")
    write_file(mount.path("a"), b"a")
    raises_errno(errno.EINVAL, renameat2, mount.path("a"), mount.path("b"),
                 4)                            # RENAME_WHITEOUT
    assert os.listdir(mount.mnt) == ["a"]


def test_copy_file_range_extends_destination(mount):
    write_file(mount.path("src"), b"S" * 5000)
    write_file(mount.path("dst"), b"D" * 10)
    fi = os.open(mount.path("src"), os.O_RDONLY)
    fo = os.open(mount.path("dst"), os.O_WRONLY)
    try:
        assert os.copy_file_range(fi, fo, 5000, 0, 3 * MiB + 1) == 5000
    finally:
        os.close(fi)
        os.close(fo)
    got = read_file(mount.path("dst"))
    assert len(got) == 3 * MiB + 1 + 5000
    assert got[:10] == b"D" * 10
    assert got[10:3 * MiB + 1] == bytes(3 * MiB + 1 - 10)
    assert got[3 * MiB + 1:] == b"S" * 5000


def test_fxattr_on_unlinked_open_file(mount):
    p = mount.path("f")
    write_file(p, b"")
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        os.setxattr(fd, "user.k", b"v")
        assert os.getxattr(fd, "user.k") == b"v"
        assert os.listxattr(fd) == ["user.k"]
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)
    assert os.listdir(mount.mnt) == []


def test_concurrent_appends(mount):
    p = mount.path("log")
    write_file(p, b"")
    nthreads, nrec = 4, 500
    errors = []

    def appender(t):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            try:
                for k in range(nrec):
                    rec = f"<{t}:{k:04d}:" .encode() + b"x" * (k % 97) + b">\n"
                    assert os.write(fd, rec) == len(rec)
            finally:
                os.close(fd)
        except Exception as e:                    # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=appender, args=(t,))
               for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    lines = read_file(p).split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == nthreads * nrec
    want = {f"<{t}:{k:04d}:".encode() + b"x" * (k % 97) + b">"
            for t in range(nthreads) for k in range(nrec)}
    assert set(lines) == want
    # each writer's records stay in its own order
    for t in range(nthreads):
        mine = [ln for ln in lines if ln.startswith(f"<{t}:".encode())]
        assert mine == sorted(mine)


def test_concurrent_mkdir_rmdir_link_counts(daxfsctl, need_fuse, region,
                                            tmp_path):
    """Threads racing mkdir, rmdir, rename of directories and hard links
    over shared names: afterwards every link count is right (a directory's
    is 2 + its subdirectories, a file's the number of its names), also
    after a remount, and fsck is clean."""
    nthreads, nops, pool = 4, 600, 24
    mnt = tmp_path / "mnt"
    with mounted(region, mnt) as m:
        base = m.path("base")
        os.mkdir(base)
        for k in range(4):
            write_file(m.path(f"file{k}"), b"%d" % k)
        errors = []
        barrier = threading.Barrier(nthreads)

        def worker(t):
            rng = random.Random(1000 + t)
            barrier.wait()
            for _ in range(nops):
                a = os.path.join(base, f"n{rng.randrange(pool)}")
                b = os.path.join(base, f"n{rng.randrange(pool)}",
                                 f"n{rng.randrange(pool)}") \
                    if rng.random() < 0.3 else \
                    os.path.join(base, f"n{rng.randrange(pool)}")
                op = rng.random()
                try:
                    if op < 0.3:
                        os.mkdir(a)
                    elif op < 0.45:
                        os.rmdir(a)
                    elif op < 0.65:
                        os.rename(a, b)
                    elif op < 0.85:
                        os.link(m.path(f"file{rng.randrange(4)}"), a)
                    else:
                        os.unlink(a)
                except OSError as e:
                    if e.errno not in (errno.EEXIST, errno.ENOENT,
                                       errno.ENOTEMPTY, errno.ENOTDIR,
                                       errno.EISDIR, errno.EINVAL):
                        errors.append(e)

        threads = [threading.Thread(target=worker, args=(t,))
                   for t in range(nthreads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        assert not errors, errors[:5]
        first = check_link_counts(m.mnt)
    with mounted(region, mnt) as m:
        assert check_link_counts(m.mnt) == first
    finish_fsck(daxfsctl, region)


def check_link_counts(root):
    """Walk root: every directory's nlink is 2 + subdirectories, every
    file's nlink the number of names it has.  Returns the tree."""
    names = {}
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        st = os.stat(dirpath)
        assert st.st_nlink == 2 + len(dirnames), dirpath
        tree[os.path.relpath(dirpath, root)] = sorted(dirnames + filenames)
        for d in dirnames:
            assert os.stat(os.path.join(dirpath, d, "..")).st_ino == \
                st.st_ino
        for f in filenames:
            fst = os.lstat(os.path.join(dirpath, f))
            names.setdefault(fst.st_ino, []).append(fst.st_nlink)
    for ino, links in names.items():
        assert all(n == len(links) for n in links), (ino, links)
    return tree


def test_truncate_races_writes(daxfsctl, need_fuse, region, tmp_path):
    """Writers and truncaters on one file: afterwards, growing the file
    exposes only zeroes past the old end (no stale bytes), and fsck is
    clean."""
    mnt = tmp_path / "mnt"
    with mounted(region, mnt) as m:
        p = m.path("f")
        write_file(p, b"")
        errors = []
        stop = threading.Event()

        def writer(t):
            rng = random.Random(t)
            fd = os.open(p, os.O_WRONLY)
            try:
                while not stop.is_set():
                    off = rng.randrange(0, 2 * MiB)
                    os.pwrite(fd, b"W" * rng.randrange(1, 3 * BLOCK), off)
            except Exception as e:                # noqa: BLE001
                errors.append(e)
            finally:
                os.close(fd)

        threads = [threading.Thread(target=writer, args=(t,))
                   for t in range(3)]
        for th in threads:
            th.start()
        rng = random.Random(99)
        try:
            for _ in range(300):
                os.truncate(p, rng.randrange(0, 2 * MiB))
        finally:
            stop.set()
            for th in threads:
                th.join(60)
        assert not errors, errors
        data = read_file(p)
        assert set(data) <= {0, ord("W")}
        size = len(data)
        os.truncate(p, size + 3 * MiB)
        assert read_file(p)[size:] == bytes(3 * MiB)
        os.truncate(p, size // 2 + 5)
        os.truncate(p, size + MiB)
        assert read_file(p)[size // 2 + 5:] == \
            bytes(size + MiB - size // 2 - 5)
    finish_fsck(daxfsctl, region)


def test_big_directory(mount):
    """3,000 entries whose blocks interleave with their files' data (so
    the directory's own block list is long and scattered): every name
    found, the same after a remount, all removable."""
    d = mount.path("big")
    os.mkdir(d)
    n = 3000

    def name(k):
        return f"{k:05d}-" + "b" * (k % 120)

    for k in range(n):
        write_file(os.path.join(d, name(k)), b"%d" % k * (k % 3 * 700))
    names = os.listdir(d)
    assert len(names) == n and len(set(names)) == n
    size = os.stat(d).st_size
    assert size % BLOCK == 0 and size >= n * 64
    mount.unmount()
    with mounted(mount.region, mount.mnt):
        assert sorted(os.listdir(d)) == sorted(names)
        assert os.stat(d).st_size == size
        for k in range(0, n, 7):
            assert read_file(os.path.join(d, name(k))) == \
                b"%d" % k * (k % 3 * 700)
        for nm in names:
            os.unlink(os.path.join(d, nm))
        assert os.listdir(d) == []
        os.rmdir(d)
        assert os.listdir(mount.mnt) == []


def test_enospc_metadata_ops(daxfsctl, need_fuse, tmp_path):
    """With the data area full, every operation that needs a block fails
    with ENOSPC and leaves nothing behind; the region stays consistent
    (the same after a remount, and fsck-clean)."""
    with fresh_region(daxfsctl, "metafull", "--size", "16M") as region:
        mnt = tmp_path / "mnt"
        with mounted(region, mnt) as m:
            os.mkdir(m.path("d"))
            write_file(m.path("d", "first"), b"")     # d has one block
            write_file(m.path("victim"), b"v")
            os.setxattr(m.path("victim"), "user.old", b"o")
            # fill up
            fd = os.open(m.path("fill"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while True:
                    try:
                        if os.write(fd, bytes(MiB)) == 0:
                            break
                    except OSError as e:
                        assert e.errno == errno.ENOSPC
                        break
            finally:
                os.close(fd)
            assert os.statvfs(m.mnt).f_bfree == 0
            # names that fit in the directory's block still work
            for k in range(20):
                write_file(m.path("d", f"fits{k}"), b"")
            # a new directory block is needed at some point
            made = 0
            with pytest.raises(OSError) as ei:
                for k in range(200):
                    write_file(m.path("d", f"more{k:03d}-" + "m" * 100), b"")
                    made += 1
            assert ei.value.errno == errno.ENOSPC
            assert not os.path.exists(m.path("d", f"more{made:03d}-" +
                                             "m" * 100))
            long_name = "x" * 200
            raises_errno(errno.ENOSPC, os.symlink, "t" * 500,
                         m.path("longlink"))
            raises_errno(errno.ENOSPC, os.mkdir, m.path("d", long_name))
            raises_errno(errno.ENOSPC, os.link, m.path("victim"),
                         m.path("d", long_name))
            raises_errno(errno.ENOSPC, os.rename, m.path("victim"),
                         m.path("d", long_name))
            raises_errno(errno.ENOSPC, renameat2, m.path("victim"),
                         m.path("d", long_name), RENAME_NOREPLACE)
            raises_errno(errno.ENOSPC, os.setxattr, m.path("victim"),
                         "user.new", b"n")
            raises_errno(errno.ENOSPC, os.setxattr, m.path("victim"),
                         "user.old", b"replaced")
            fd = os.open(m.path("victim"), os.O_RDWR)
            try:
                raises_errno(errno.ENOSPC, os.pwrite, fd, b"w", 10 * BLOCK)
                raises_errno(errno.ENOSPC, fallocate, fd, 0, 0, 4 * BLOCK)
            finally:
                os.close(fd)
            # what needs no block still works
            os.symlink("short", m.path("shortlink"))
            os.truncate(m.path("victim"), 5 * MiB)
            os.truncate(m.path("victim"), 1)
            # nothing half-done is visible
            assert read_file(m.path("victim")) == b"v"
            assert os.stat(m.path("victim")).st_nlink == 1
            assert os.listxattr(m.path("victim")) == ["user.old"]
            assert os.getxattr(m.path("victim"), "user.old") == b"o"
            assert not os.path.lexists(m.path("longlink"))
            assert not os.path.lexists(m.path("d", long_name))
            names = sorted(os.listdir(m.path("d")))
            assert len(names) == 1 + 20 + made
            assert os.stat(m.path("d")).st_nlink == 2
            before = sorted(os.listdir(m.mnt))
            assert before == ["d", "fill", "shortlink", "victim"]
            # freeing space makes the same operations work
            os.truncate(m.path("fill"), 0)
            os.symlink("t" * 500, m.path("longlink"))
            os.rename(m.path("victim"), m.path("d", long_name))
            os.setxattr(m.path("d", long_name), "user.new", b"n")
            assert read_file(m.path("d", long_name)) == b"v"
            after = sorted(os.listdir(m.path("d")))
        with mounted(region, mnt) as m:
            assert sorted(os.listdir(m.path("d"))) == after
            assert os.getxattr(m.path("d", long_name), "user.old") == b"o"
            assert os.readlink(m.path("longlink")) == "t" * 500
        finish_fsck(daxfsctl, region)


def test_fragmented_files(daxfsctl, need_fuse, region, tmp_path):
    """Files of thousands of extents (interleaved writers, a hole punched
    in every other block): read back, after a remount, deleted, fsck."""
    mnt = tmp_path / "mnt"
    nblocks = 3000
    with mounted(region, mnt) as m:
        fa = os.open(m.path("a"), os.O_RDWR | os.O_CREAT, 0o644)
        fb = os.open(m.path("b"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for k in range(nblocks):
                os.pwrite(fa, pattern(BLOCK, seed=k), k * BLOCK)
                os.pwrite(fb, pattern(BLOCK, seed=k + 7), k * BLOCK)
            for k in range(0, nblocks, 2):
                fallocate(fa, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          k * BLOCK, BLOCK)
        finally:
            os.close(fa)
            os.close(fb)

        def check(mm):
            a = read_file(mm.path("a"))
            b = read_file(mm.path("b"))
            for k in range(nblocks):
                blk = a[k * BLOCK:(k + 1) * BLOCK]
                assert blk == (bytes(BLOCK) if k % 2 == 0 else
                               pattern(BLOCK, seed=k)), k
                assert b[k * BLOCK:(k + 1) * BLOCK] == \
                    pattern(BLOCK, seed=k + 7), k
            assert os.stat(mm.path("a")).st_blocks * 512 >= \
                nblocks // 2 * BLOCK
        check(m)
        fd = os.open(m.path("a"), os.O_RDONLY)
        try:
            assert os.lseek(fd, 0, os.SEEK_DATA) == BLOCK
            assert os.lseek(fd, BLOCK, os.SEEK_HOLE) == 2 * BLOCK
        finally:
            os.close(fd)
    with mounted(region, mnt) as m:
        check(m)
        # shrink through the middle, then delete
        os.truncate(m.path("b"), nblocks // 2 * BLOCK + 5)
        assert read_file(m.path("b"))[-5:] == \
            pattern(BLOCK, seed=nblocks // 2 + 7)[:5]
        free0 = statvfs_free(m.mnt)
        os.unlink(m.path("a"))
        os.unlink(m.path("b"))
        assert wait_for_free(m.mnt, free0 + (nblocks // 2 + nblocks // 2)
                             * BLOCK)
    finish_fsck(daxfsctl, region)


def test_inode_lifecycle_races(daxfsctl, need_fuse, region, tmp_path):
    """Creating, opening, closing and unlinking files while other threads
    stat, open and list them: afterwards every inode and block is free
    again (nothing leaked by a lost reference) and fsck is clean."""
    mnt = tmp_path / "mnt"
    with mounted(region, mnt) as m:
        d = m.path("d")
        os.mkdir(d)
        files0 = os.statvfs(m.mnt).f_ffree
        write_file(os.path.join(d, "warm"), b"")     # d gets its block
        os.unlink(os.path.join(d, "warm"))
        # the kernel lets go of the unlinked inode asynchronously
        assert wait_for(lambda: os.statvfs(m.mnt).f_ffree == files0)
        sv0 = os.statvfs(m.mnt)
        errors = file_lifecycle_churn(d, block=BLOCK)
        assert not errors, errors[:5]
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        ok = wait_for(lambda: os.statvfs(m.mnt).f_ffree == sv0.f_ffree
                      and os.statvfs(m.mnt).f_bfree == sv0.f_bfree)
        sv = os.statvfs(m.mnt)
        assert ok, f"leaked: {sv0.f_ffree - sv.f_ffree} inodes, " \
                   f"{sv0.f_bfree - sv.f_bfree} blocks"
    finish_fsck(daxfsctl, region)


# --- real programs -----------------------------------------------------------

@pytest.mark.parametrize("engine,direct", [
    ("psync", 0), ("psync", 1), ("io_uring", 0), ("io_uring", 1),
    ("libaio", 1), ("mmap", 0)])
def test_fio_verify(mount, engine, direct):
    """fio writes random blocks of random sizes from two jobs and verifies
    every one by checksum, through each I/O path applications use."""
    if not shutil.which("fio"):
        pytest.skip("fio is not installed")
    rw = "randrw" if engine == "mmap" else "randwrite"
    res = subprocess.run([
        "fio", "--name=verify", f"--directory={mount.mnt}",
        f"--ioengine={engine}", f"--direct={direct}", f"--rw={rw}",
        "--bsrange=512-64k" if direct else "--bsrange=1k-128k",
        "--size=16m", "--numjobs=2", "--iodepth=8", "--verify=crc32c",
        "--verify_fatal=1", "--do_verify=1", "--randrepeat=0",
        "--verify_state_save=0", "--output-format=terse"],
        capture_output=True, text=True, timeout=300, cwd=mount.mnt)
    if res.returncode and "engine" in res.stderr and "load" in res.stderr:
        pytest.skip(f"fio has no {engine} engine here: {res.stderr}")
    assert res.returncode == 0, res.stderr + res.stdout
    assert "verify" not in res.stderr.lower(), res.stderr


def test_git_repository(mount):
    """git init, add, commit, gc and fsck in the mount (renames, hard
    links, fsync, small files, mmap of pack files), then again after a
    remount."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = mount.path("repo")
    os.mkdir(repo)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x",
               HOME=os.path.dirname(mount.mnt))

    def git(*args, cwd=repo):
        r = subprocess.run(["git", "-c", "core.fsync=all", *args], cwd=cwd,
                           capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout

    git("init", "-q")
    for k in range(3):
        for j in range(40):
            write_file(os.path.join(repo, f"f{j}.txt"),
                       pattern(1000 + 97 * j + k, seed=j + k))
        git("add", "-A")
        git("commit", "-qm", f"commit {k}")
    git("gc", "-q", "--aggressive")
    git("fsck", "--strict")
    assert git("status", "--porcelain") == ""
    head = git("rev-parse", "HEAD")
    mount.unmount()
    with mounted(mount.region, mount.mnt):
        git("fsck", "--strict")
        assert git("rev-parse", "HEAD") == head
        assert git("status", "--porcelain") == ""
        assert len(git("log", "--oneline").splitlines()) == 3
