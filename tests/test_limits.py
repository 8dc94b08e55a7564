"""Limits: each works, or fails cleanly with the errno Linux filesystems
give.

- 100,000 files in one directory (created, listed, looked up, removed);
- 1,000,000 files in the filesystem (in directories of 1,000), made
  through the mount by a C creator (tests/faults/mkfiles.c): about two
  minutes on the 2-core development VMs (16,600 creates/s);
- a file that fills the region: written until ENOSPC, its size is the
  free space less the blocks its own extent list needs;
- names of 255 bytes work, 256 give ENAMETOOLONG;
- paths: 4,095 bytes (PATH_MAX with its NUL) work, longer ones get
  ENAMETOOLONG from the kernel;
- a directory tree 1,000 deep: made level by level, walked, checked by
  fsck, a rename into its own depths refused (EINVAL), removed.

Timings are printed (pytest -s shows them).
"""
import errno
import json
import os
import time

import pytest

from conftest import binary, new_region_path, run, start_daxfs

MiB = 1 << 20

pytestmark = pytest.mark.usefixtures("need_fuse")


@pytest.fixture
def region_factory():
    made = []

    def make(size, *extra):
        path = new_region_path("limits")
        res = run([binary("daxfsctl"), "mkfs", "--size", size, *extra,
                   path])
        assert res.rc == 0, res
        made.append(path)
        return path
    yield make
    for p in made:
        if os.path.lexists(p):
            os.unlink(p)


def mkfiles(*args, timeout=1800):
    res = run([binary("tests/faults/daxfs_mkfiles"), *map(str, args)],
              timeout=timeout)
    assert res.out, res
    out = json.loads(res.out)
    assert res.rc == 0, f"{args[0]} stopped: {out}"
    return out


def fsck_clean(region, timeout=1800):
    res = run([binary("daxfsctl"), "fsck", region], timeout=timeout)
    assert res.rc == 0, res
    return res.out.strip()


def mounted(region, tmp_path):
    return start_daxfs(region, tmp_path / "mnt", timeout=60)


# --- many files --------------------------------------------------------------

def test_100k_files_in_one_directory(region_factory, tmp_path):
    n = 100_000
    region = region_factory("1G", "--inodes", str(n + 1000))
    m = mounted(region, tmp_path)
    try:
        os.mkdir(m.path("d"))
        made = mkfiles("create", m.path("d"), n)
        listed = mkfiles("count", m.path("d"))
        assert listed["done"] == n, listed
        for k in (0, 1, n // 2, n - 1):
            assert os.stat(m.path("d", f"f{k:07d}")).st_size == 0
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("d", f"f{n:07d}"))
        st = os.stat(m.path("d"))
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    print(f"\n100,000 files in one directory: created in "
          f"{made['seconds']:.1f} s ({n / made['seconds']:.0f}/s), listed "
          f"in {listed['seconds']:.2f} s; the directory is "
          f"{st.st_size // MiB} MiB; {fsck_clean(region)}")
    m = mounted(region, tmp_path)
    try:
        # a cold index: the first lookup loads the whole directory
        t0 = time.monotonic()
        os.stat(m.path("d", f"f{n - 1:07d}"))
        cold = time.monotonic() - t0
        gone = mkfiles("remove", m.path("d"), n)
        os.rmdir(m.path("d"))
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    print(f"first lookup after remount {cold * 1000:.0f} ms; removed in "
          f"{gone['seconds']:.1f} s ({n / gone['seconds']:.0f}/s)")
    fsck_clean(region)


def test_million_files(region_factory, tmp_path):
    """1,000,000 files in directories of 1,000; the inode table is sized
    for them (mkfs --inodes).  DAXFS_LIMIT_FILES=N runs a smaller count."""
    n = int(os.environ.get("DAXFS_LIMIT_FILES", 1_000_000))
    per = 1000
    region = region_factory("4G", "--inodes", str(n + n // per + 1000))
    m = mounted(region, tmp_path)
    try:
        os.mkdir(m.path("t"))
        made = mkfiles("create", m.path("t"), n, per, timeout=3600)
        listed = mkfiles("count", m.path("t"), timeout=3600)
        assert listed["done"] == n + n // per, listed
        sv = os.statvfs(m.mnt)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    t0 = time.monotonic()
    summary = fsck_clean(region, timeout=3600)
    fsck_s = time.monotonic() - t0
    m = mounted(region, tmp_path)
    try:
        gone = mkfiles("remove", m.path("t"), n, per, timeout=3600)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    print(f"\n{n:,} files in {n // per} directories: created in "
          f"{made['seconds']:.1f} s ({n / made['seconds']:.0f}/s), counted "
          f"in {listed['seconds']:.1f} s, fsck in {fsck_s:.1f} s, removed "
          f"in {gone['seconds']:.1f} s; {sv.f_ffree:,} inodes were left; "
          f"{summary}")
    fsck_clean(region, timeout=3600)


def test_inodes_run_out_with_enospc(region_factory, tmp_path):
    """More files than inode slots: ENOSPC, as on ext4."""
    region = region_factory("64M", "--inodes", "1100")
    m = mounted(region, tmp_path)
    try:
        res = run([binary("tests/faults/daxfs_mkfiles"), "create", m.mnt,
                   "2000"])
        out = json.loads(res.out)
        assert res.rc == 1 and out["errno"] == errno.ENOSPC, out
        assert out["done"] == 1100 - 1, out     # --inodes counts the root
        assert os.statvfs(m.mnt).f_ffree == 0
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    fsck_clean(region)


# --- a file that fills the region ----------------------------------------

def test_file_fills_the_region(region_factory, tmp_path):
    region = region_factory("256M")
    m = mounted(region, tmp_path)
    try:
        written = 0
        chunk = b"\xa5" * (4 * MiB)
        with open(m.path("all"), "wb", buffering=0) as f:
            # counted once its name is in (the root's first block)
            free = os.statvfs(m.mnt).f_bfree
            t0 = time.monotonic()
            with pytest.raises(OSError) as e:
                while True:
                    written += f.write(chunk)
        secs = time.monotonic() - t0
        assert e.value.errno == errno.ENOSPC, e.value
        st = os.stat(m.path("all"))
        assert st.st_size == written
        owned = st.st_blocks // 8              # data and extent list
        meta = owned - written // 4096
        left = os.statvfs(m.mnt).f_bfree
        assert written % 4096 == 0
        assert owned + left == free, (owned, left, free)
        # what is neither data nor extent list: at most a block or two
        # the list could not grow into
        assert meta <= 2 and left <= 2, (meta, left)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    print(f"\nfilled {written // MiB} MiB of {free * 4096 // MiB} MiB free "
          f"in {secs:.2f} s ({written / secs / 1e9:.2f} GB/s); {meta} "
          f"blocks went to the file's extent list, {left} stayed free")
    fsck_clean(region)


# --- names and paths ---------------------------------------------------------

def test_name_lengths(region_factory, tmp_path):
    region = region_factory("64M")
    m = mounted(region, tmp_path)
    ok, long = "n" * 255, "n" * 256
    try:
        root = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # 255 bytes: every kind of name
            fd = os.open(ok, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=root)
            os.write(fd, b"data")
            os.close(fd)
            os.mkdir("d" * 255, dir_fd=root)
            os.symlink(ok, "s" * 255, dir_fd=root)
            os.link(ok, "l" * 255, src_dir_fd=root, dst_dir_fd=root)
            os.rename(ok, "r" * 255, src_dir_fd=root, dst_dir_fd=root)
            os.mknod("p" * 255, 0o600 | 0o010000, dir_fd=root)
            names = set(os.listdir(m.mnt))
            assert {"d" * 255, "s" * 255, "l" * 255, "r" * 255,
                    "p" * 255} <= names, names
            assert os.readlink("s" * 255, dir_fd=root) == ok
            assert os.stat("r" * 255, dir_fd=root).st_nlink == 2
            # non-ASCII: 255 bytes, fewer characters
            u = "é" * 127 + "x"
            assert len(u.encode()) == 255
            os.mkdir(u, dir_fd=root)
            assert u in os.listdir(m.mnt)
            # 256 bytes: ENAMETOOLONG from every call that takes a name
            calls = [
                ("open", lambda: os.open(long, os.O_CREAT | os.O_WRONLY,
                                         0o644, dir_fd=root)),
                ("stat", lambda: os.stat(long, dir_fd=root)),
                ("mkdir", lambda: os.mkdir(long, dir_fd=root)),
                ("symlink", lambda: os.symlink("t", long, dir_fd=root)),
                ("link", lambda: os.link("r" * 255, long, src_dir_fd=root,
                                         dst_dir_fd=root)),
                ("rename", lambda: os.rename("r" * 255, long,
                                             src_dir_fd=root,
                                             dst_dir_fd=root)),
                ("unlink", lambda: os.unlink(long, dir_fd=root)),
                ("mknod", lambda: os.mknod(long, 0o600 | 0o010000,
                                           dir_fd=root)),
                ("setxattr", lambda: os.setxattr(
                    m.path("r" * 255), "user." + "x" * 251, b"v")),
            ]
            for what, call in calls:
                with pytest.raises(OSError) as e:
                    call()
                want = errno.ERANGE if what == "setxattr" else \
                    errno.ENAMETOOLONG
                assert e.value.errno == want, (what, e.value)
            # an xattr name of 255 bytes is the longest there is
            os.setxattr(m.path("r" * 255), "user." + "x" * 250, b"v")
        finally:
            os.close(root)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    fsck_clean(region)


def test_path_max(region_factory, tmp_path):
    """Sixteen 255-byte components and fifteen slashes: 4,095 bytes, the
    longest path Linux takes (PATH_MAX counts the NUL).  One byte more
    and the kernel refuses it with ENAMETOOLONG."""
    region = region_factory("64M")
    m = mounted(region, tmp_path)
    comps = [chr(ord("a") + k) * 255 for k in range(16)]
    path = "/".join(comps)
    assert len(path) == 4095
    try:
        root = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            d = os.dup(root)
            for c in comps[:-1]:
                os.mkdir(c, dir_fd=d)
                nd = os.open(c, os.O_RDONLY | os.O_DIRECTORY, dir_fd=d)
                os.close(d)
                d = nd
            os.close(d)
            # the whole 4,095-byte path, relative to the mount
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644,
                         dir_fd=root)
            os.write(fd, b"at the bottom")
            os.close(fd)
            assert os.stat(path, dir_fd=root).st_size == 13
            fd = os.open(path, os.O_RDONLY, dir_fd=root)
            assert os.read(fd, 100) == b"at the bottom"
            os.close(fd)
            for longer in ("./" + path, path.replace("/", "//", 1)):
                with pytest.raises(OSError) as e:
                    os.stat(longer, dir_fd=root)
                assert e.value.errno == errno.ENAMETOOLONG, e.value
            # the absolute path through the mount point is longer still
            with pytest.raises(OSError) as e:
                os.stat(os.path.join(m.mnt, path))
            assert e.value.errno == errno.ENAMETOOLONG
            os.unlink(path, dir_fd=root)
        finally:
            os.close(root)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    fsck_clean(region)


# --- a deep tree -------------------------------------------------------------

def test_tree_1000_deep(region_factory, tmp_path):
    """1,000 nested directories of 7-byte names (a path of about 8,000
    bytes: only descriptors reach the bottom), walked, checked by fsck,
    then removed bottom up."""
    depth = 1000
    region = region_factory("64M")
    m = mounted(region, tmp_path)
    try:
        t0 = time.monotonic()
        fds = [os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)]
        for k in range(depth):
            name = f"l{k:06d}"
            os.mkdir(name, dir_fd=fds[-1])
            fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY,
                               dir_fd=fds[-1]))
        with open(f"/proc/self/fd/{fds[-1]}/bottom", "w") as f:
            f.write("deep")
        made = time.monotonic() - t0
        for fd in fds:
            os.close(fd)
        # a rename of the top into its own depths is refused
        deep = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
        for k in range(depth):
            nd = os.open(f"l{k:06d}", os.O_RDONLY | os.O_DIRECTORY,
                         dir_fd=deep)
            os.close(deep)
            deep = nd
        with pytest.raises(OSError) as e:
            os.rename(m.path("l000000"), f"/proc/self/fd/{deep}/x")
        os.close(deep)
        assert e.value.errno == errno.EINVAL, e.value
        # walk it, by descriptors (os.fwalk recurses, one frame a level)
        t0 = time.monotonic()
        levels = 0
        found = None
        stack = [os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)]
        while stack:
            fd = stack.pop()
            levels += 1
            for e in os.scandir(fd):
                if e.is_dir(follow_symlinks=False):
                    stack.append(os.open(e.name, os.O_RDONLY |
                                         os.O_DIRECTORY, dir_fd=fd))
                elif e.name == "bottom":
                    rfd = os.open("bottom", os.O_RDONLY, dir_fd=fd)
                    found = os.read(rfd, 100).decode()
                    os.close(rfd)
            os.close(fd)
        walked = time.monotonic() - t0
        assert levels == depth + 1 and found == "deep", (levels, found)
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    summary = fsck_clean(region)
    m = mounted(region, tmp_path)
    try:
        t0 = time.monotonic()
        fds = [os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)]
        for k in range(depth):
            fds.append(os.open(f"l{k:06d}", os.O_RDONLY | os.O_DIRECTORY,
                               dir_fd=fds[-1]))
        os.unlink("bottom", dir_fd=fds[-1])
        for k in range(depth - 1, -1, -1):
            os.close(fds.pop())
            os.rmdir(f"l{k:06d}", dir_fd=fds[-1])
        os.close(fds.pop())
        removed = time.monotonic() - t0
        assert os.listdir(m.mnt) == []
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    fsck_clean(region)
    print(f"\n1,000 levels: made in {made:.2f} s, walked in {walked:.2f} s, "
          f"removed in {removed:.2f} s; {summary}")
