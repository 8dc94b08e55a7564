"""Memory-mapped daxfs files: sharing between processes, coherence with
read() and write(), durability of msync and fsync across a daemon killed
with SIGKILL, MAP_PRIVATE copy-on-write, and SIGBUS past end-of-file.

The syscall-level cases run in tests/progs/daxfs_mmap (a C program that
checks its own expectations); the rest uses Python's mmap module.  Tests
taking `mount` run with and without the kernel's attribute caching (see
test_ops.py), and the region is fsck'd after each.
"""
import hashlib
import mmap
import os

import pytest

from conftest import start_daxfs
from helpers_ops import (BLOCK, MiB, finish_fsck, mounted, pattern,
                         read_file, run_prog, serve_mount, statvfs_free,
                         wait_for)

pytestmark = pytest.mark.usefixtures("need_fuse")


@pytest.fixture(params=["cached", "uncached"])
def mount(request, need_fuse, region, tmp_path):
    """conftest's `mount`, twice: every test taking it runs with the
    kernel caching names and attributes and without."""
    yield from serve_mount(region, tmp_path, request.param)


PAGE = mmap.PAGESIZE


def test_two_processes_share_a_mapping(mount):
    run_prog("daxfs_mmap", "shared2", mount.path("f"))


def test_mmap_and_read_write_coherent(mount):
    run_prog("daxfs_mmap", "coherent", mount.path("f"))


def test_map_private_does_not_leak(mount):
    run_prog("daxfs_mmap", "private", mount.path("f"))


def test_sigbus_past_eof(mount):
    run_prog("daxfs_mmap", "sigbus", mount.path("f"))


def test_store_into_a_hole(mount):
    """Stores into a sparse file's holes allocate blocks at writeback."""
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 64 * PAGE)
        assert os.fstat(fd).st_blocks == 0
        with mmap.mmap(fd, 64 * PAGE) as m:
            assert m[:] == bytes(64 * PAGE)
            for k in range(0, 64, 3):
                m[k * PAGE + 7:k * PAGE + 12] = b"%05d" % k
            m.flush()
        st = os.fstat(fd)
        assert st.st_size == 64 * PAGE
        assert st.st_blocks * 512 >= 22 * BLOCK
    finally:
        os.close(fd)
    data = read_file(p)
    for k in range(64):
        chunk = data[k * PAGE:(k + 1) * PAGE]
        if k % 3 == 0:
            assert chunk[7:12] == b"%05d" % k
            assert chunk[:7] == bytes(7) and chunk[12:] == bytes(PAGE - 12)
        else:
            assert chunk == bytes(PAGE)


def test_large_mapping_roundtrip(mount):
    p = mount.path("f")
    size = 32 * MiB
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, size)
        data = pattern(size, seed=11)
        with mmap.mmap(fd, size) as m:
            for off in range(0, size, MiB):
                m[off:off + MiB] = data[off:off + MiB]
            m.flush()
    finally:
        os.close(fd)
    assert hashlib.sha256(read_file(p)).digest() == \
        hashlib.sha256(data).digest()


def test_mapping_outlives_unlink(mount):
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, pattern(4 * MiB))
    free0 = statvfs_free(mount.mnt)
    m = mmap.mmap(fd, 4 * MiB)
    os.close(fd)
    os.unlink(p)
    assert not os.path.exists(p)
    assert m[:MiB] == pattern(4 * MiB)[:MiB]
    m[5:10] = b"still"
    assert m[:10] == pattern(10)[:5] + b"still"
    m.flush()
    m.close()
    # the last user gone, the blocks come back
    assert wait_for(lambda: statvfs_free(mount.mnt) >= free0 + 4 * MiB
                    - BLOCK)


def _prepare(m, name, size):
    fd = os.open(m.path(name), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"." * size)
    os.fsync(fd)
    return fd


@pytest.mark.parametrize("how", ["msync", "fsync", "fdatasync"])
def test_mapped_stores_durable_after_kill9(daxfsctl, region, need_fuse,
                                           tmp_path, how):
    """A store through a mapping, made durable with msync (or fsync on the
    descriptor), survives the daemon being killed with SIGKILL."""
    mnt = tmp_path / "mnt"
    m = start_daxfs(region, mnt)
    try:
        fd = _prepare(m, "f", 8 * PAGE)
        # and a sparse file whose stores land in holes
        sp = os.open(m.path("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(sp, 16 * PAGE)
        os.fsync(sp)
        with mmap.mmap(fd, 8 * PAGE) as a, mmap.mmap(sp, 16 * PAGE) as b:
            a[10:20] = b"0123456789"
            a[7 * PAGE + 100:7 * PAGE + 105] = b"store"
            b[15 * PAGE:15 * PAGE + 6] = b"sparse"
            if how == "msync":
                a.flush()
                b.flush()
            elif how == "fsync":
                os.fsync(fd)
                os.fsync(sp)
            else:
                os.fdatasync(fd)
                os.fdatasync(sp)
            m.kill9()
        for f in (fd, sp):
            try:
                os.close(f)     # its FLUSH finds the daemon gone
            except OSError:
                pass
    except BaseException:
        m.cleanup()
        raise
    state = daxfsctl("info", "--json", region)
    assert state.rc == 0 and '"state":"mounted"' in state.out.replace(" ", "")
    with mounted(region, mnt) as m2:
        data = read_file(m2.path("f"))
        want = bytearray(b"." * (8 * PAGE))
        want[10:20] = b"0123456789"
        want[7 * PAGE + 100:7 * PAGE + 105] = b"store"
        assert data == bytes(want)
        sparse = read_file(m2.path("sparse"))
        assert len(sparse) == 16 * PAGE
        assert sparse[15 * PAGE:15 * PAGE + 6] == b"sparse"
        assert sparse.count(0) == 16 * PAGE - 6
    finish_fsck(daxfsctl, region)


def test_mapping_sees_truncate_and_extend(mount):
    """A mapping of a file shrunk and regrown reads zeroes, not the old
    bytes, in the regrown part."""
    p = mount.path("f")
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x" * (3 * PAGE))
        with mmap.mmap(fd, 3 * PAGE) as m:
            assert m[PAGE + 5] == ord("x")
            os.ftruncate(fd, PAGE + 3)
            os.ftruncate(fd, 3 * PAGE)
            assert m[:PAGE + 3] == b"x" * (PAGE + 3)
            assert m[PAGE + 3:] == bytes(2 * PAGE - 3)
    finally:
        os.close(fd)
    assert read_file(p) == b"x" * (PAGE + 3) + bytes(2 * PAGE - 3)
