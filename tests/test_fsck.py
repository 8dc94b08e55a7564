"""daxfsctl fsck: checking and repairing regions damaged on purpose.

Regions are built and damaged with tests/daxfs_format.py, without a
daemon.  Exit statuses follow e2fsck: 0 clean, 1 corrected, 4 left
uncorrected, 8 operational error, 16 usage error.
"""
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daxfs_format as fmt  # noqa: E402
from conftest import binary  # noqa: E402
from daxfs_format import BLOCK, ROOT_INO, Image  # noqa: E402


def fsck(daxfsctl, path, *opts):
    res = daxfsctl("fsck", *opts, path)
    # a sanitizer build reports with exit status 1, which fsck also uses
    assert "Sanitizer" not in res.err and "runtime error" not in res.err, \
        res.err
    assert res.rc >= 0, f"killed by signal {-res.rc}: {res}"
    return res


def assert_clean(daxfsctl, path):
    res = fsck(daxfsctl, path)
    assert res.rc == 0, res
    assert "clean" in res.out, res
    return res


def repair_then_clean(daxfsctl, path, expect=1):
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == expect, res
    assert_clean(daxfsctl, path)
    return res


def one_line_error(res, rc, why):
    assert res.rc == rc, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and why in lines[0], res
    assert res.out == "", res


@pytest.fixture
def tree(region):
    """A populated, consistent region: (path, {name: ino})."""
    with Image(region) as img:
        names = fmt.populate(img)
    return region, names


# ---- clean regions and the command line ----

def test_fresh_mkfs_is_clean(daxfsctl, region):
    res = assert_clean(daxfsctl, region)
    assert res.err == "" and "clean, 1 inodes" in res.out


def test_populated_region_is_clean(daxfsctl, tree):
    path, names = tree
    res = assert_clean(daxfsctl, path)
    assert f"{len(names) + 1} inodes" in res.out
    before = open(path, "rb").read()
    assert fsck(daxfsctl, path, "--repair").rc == 0
    assert open(path, "rb").read() == before      # nothing to change


def test_help(daxfsctl):
    res = daxfsctl("fsck", "--help")
    assert res.rc == 0 and res.out.startswith("Usage: daxfsctl fsck")
    assert "--repair" in res.out and "Exit status" in res.out


@pytest.mark.parametrize("args,why", [
    (["--bogus", "R"], "'--bogus'"), (["-x", "R"], "'-x'"),
    ([], "no region given"), (["R", "R"], "too many arguments")])
def test_usage_errors(daxfsctl, region, args, why):
    res = daxfsctl("fsck", *[region if a == "R" else a for a in args])
    one_line_error(res, 16, why)


@pytest.mark.parametrize("path,why", [
    ("/dev/null", "character device"),
    ("/", "is a directory"),
    ("/dev/shm/daxfs-test-no-such-region", "no such file")])
@pytest.mark.parametrize("opts", [[], ["--repair"]])
def test_not_a_region(daxfsctl, path, why, opts):
    one_line_error(daxfsctl("fsck", *opts, path), 8, why)


@pytest.mark.parametrize("opts", [[], ["--repair"]])
def test_garbage_region(daxfsctl, region_path, opts):
    with open(region_path, "wb") as f:
        f.write(random.Random(7).randbytes(16 << 20))
    one_line_error(fsck(daxfsctl, region_path, *opts), 8,
                   "not a daxfs region")


def test_truncated_region(daxfsctl, region):
    os.truncate(region, 32 << 20)
    one_line_error(fsck(daxfsctl, region), 8, "backup is unusable")


@pytest.mark.parametrize("opts", [[], ["--repair"]])
def test_region_vanishes_during_check(daxfsctl, region_path, opts):
    """The region file truncated under a running check: an I/O error (the
    SIGBUS guard turns the fault into one), never a crash.  A preloaded
    shim stops fsck the moment it has mapped the region, so the region is
    gone before fsck reads a byte of it."""
    assert daxfsctl("mkfs", "--size", "1G", region_path).rc == 0
    env = dict(os.environ,
               LD_PRELOAD=binary("tests/faults/libdaxfs_stop_map.so"),
               DAXFS_STOP_MAP_PATH=region_path,
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
               ":verify_asan_link_order=0")
    proc = subprocess.Popen([binary("daxfsctl"), "fsck", *opts, region_path],
                            text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while proc_state(proc.pid) != "T":
            assert proc.poll() is None, \
                f"fsck ended before it mapped the region: {proc.communicate()}"
            assert time.monotonic() < deadline, "fsck never mapped the region"
            time.sleep(0.005)
        os.truncate(region_path, BLOCK)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert "Sanitizer" not in err, err
    assert proc.returncode == 8, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no longer accessible" in lines[0], err


def proc_state(pid):
    """The one-letter state of a process (R, S, T, ...), '' once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


def test_locked_region(daxfsctl, region):
    """A mounted region: its daemon holds the exclusive lock."""
    fd = os.open(region, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        for opts in ([], ["--repair"]):
            one_line_error(fsck(daxfsctl, region, *opts), 8,
                           f"region is in use by pid {os.getpid()}")
    finally:
        os.close(fd)
    assert_clean(daxfsctl, region)


def test_shared_lock_allows_check_only(daxfsctl, region):
    fd = os.open(region, os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        assert_clean(daxfsctl, region)
        one_line_error(fsck(daxfsctl, region, "--repair"), 8, "in use by")
    finally:
        os.close(fd)


def test_json(daxfsctl, tree):
    path, names = tree
    doc = json.loads(fsck(daxfsctl, path, "--json").out)
    assert doc["clean"] is True and doc["errors"] == 0
    assert doc["notes"] == [] and doc["problems"] == []
    with Image(path) as img:
        d = img.inode(names["a"])
        d.nlink = 5
        img.write_inode(names["a"], d)
        img.sb.state = fmt.STATE_MOUNTED
        img.write_sb()
    res = fsck(daxfsctl, path, "--json")
    assert res.rc == 4
    doc = json.loads(res.out)
    assert doc["clean"] is False and doc["errors"] == 1 and doc["fixed"] == 0
    assert "link count 5, found 2" in doc["problems"][0]["message"]
    assert any("not cleanly unmounted" in n for n in doc["notes"])
    res = fsck(daxfsctl, path, "--json", "--repair")
    assert res.rc == 1
    doc = json.loads(res.out)
    assert doc["errors"] == 1 and doc["fixed"] == 1
    assert doc["problems"][0]["fixed"] is True and doc["marked_clean"]


def test_output_format(daxfsctl, tree):
    path, names = tree
    with Image(path) as img:
        d = img.inode(names["a"])
        d.nlink = 3
        img.write_inode(names["a"], d)
    res = fsck(daxfsctl, path)
    assert res.rc == 4 and res.err == ""
    lines = res.out.strip().splitlines()
    assert lines == [
        f"daxfsctl fsck: {path}: inode {names['a']}: link count 3, found 2",
        f"daxfsctl fsck: {path}: 1 error, 0 fixed; run 'daxfsctl fsck "
        f"--repair {path}'"]
    lines = fsck(daxfsctl, path, "--repair").out.strip().splitlines()
    assert lines == [
        f"daxfsctl fsck: {path}: inode {names['a']}: link count 3, found 2 "
        "(fixed)", f"daxfsctl fsck: {path}: 1 error, 1 fixed"]


def test_check_never_writes(daxfsctl, tree):
    path, names = tree
    with Image(path) as img:
        img.flip(img.inode_off(names["a"]) + 30)
        img.set_bit(img.sb.nblocks - 50)
        img.write_tx([(img.inode_off(names["null"]) + 12, b"\x05\0\0\0")])
        img.flip(100)
    before = open(path, "rb").read()
    assert fsck(daxfsctl, path).rc == 4
    assert open(path, "rb").read() == before


# ---- damage that a check finds and a repair fixes ----
#
# Each case damages a populated region and returns the texts the check
# must print, and optionally a function that verifies the repaired image.

DAMAGE = {}


def damage(fn):
    DAMAGE[fn.__name__] = fn
    return fn


def set_field(img, ino, **kw):
    d = img.inode(ino)
    for k, v in kw.items():
        setattr(d, k, v)
    img.write_inode(ino, d)


@damage
def primary_superblock_bit_flip(img, n):
    backup = img.read_sb(backup=True).pack()
    img.flip(fmt.Superblock().offset("ninodes"), 0x10)

    def verify(img):
        assert img.read_sb().pack() == backup
    return ["primary superblock is damaged", "the backup is intact"], verify


@damage
def backup_superblock_damaged(img, n):
    img.flip(img.sb.backup_block * BLOCK + 200)
    return ["backup superblock is damaged (superblock checksum"], None


@damage
def backup_superblock_differs(img, n):
    img.sb.mount_count += 3
    img.write_sb(primary=False)
    return ["backup superblock differs from the primary"], None


@damage
def superblock_free_counts(img, n):
    img.sb.free_blocks -= 3
    img.write_sb()

    def verify(img):
        assert img.sb.free_blocks == img.free_blocks()
    return ["superblock free counts are wrong"], verify


@damage
def journal_superblock_damaged(img, n):
    img.flip(img.sb.journal_start * BLOCK + 9)
    return ["journal superblock is damaged"], None


@damage
def malformed_transaction(img, n):
    img.write_tx([(0, bytes(64))])          # over the superblock
    return [f"journal transaction {img.jsb().seq} is malformed"], None


@damage
def root_missing(img, n):
    img.write_inode(ROOT_INO, fmt.Dinode())

    def verify(img):
        assert img.inode(ROOT_INO).mode & fmt.S_IFMT == fmt.S_IFDIR
        lf = img.lookup(ROOT_INO, "lost+found")
        assert img.lookup(lf, f"#{n['d']}") == n["d"]
    return ["root directory is missing"], verify


@damage
def root_not_a_directory(img, n):
    set_field(img, ROOT_INO, mode=fmt.S_IFREG | 0o644)
    return ["root inode is not a directory"], None


@damage
def inode_zero_in_use(img, n):
    img.write_inode(0, fmt.Dinode(mode=fmt.S_IFREG, nlink=1))
    return ["inode 0 is reserved but not empty"], None


@damage
def invalid_mode(img, n):
    set_field(img, n["s"], mode=0o170777)
    return [f"inode {n['s']}: invalid mode"], None


@damage
def damaged_inode_is_cleared(img, n):
    img.flip(img.inode_off(n["frag"]) + 17)

    def verify(img):
        assert img.inode(n["frag"]).mode == 0
        assert img.lookup(n["d"], "frag") is None
    # its entry and its blocks are the consequences
    return [f"inode {n['frag']}: checksum mismatch",
            f"entry 'frag' points to a damaged inode ({n['frag']})",
            "(leaked)"], verify


@damage
def extent_out_of_range(img, n):
    d = img.inode(n["a"])
    ext = img.extents(d)
    ext[0].pblk = 3                         # in the bitmap
    img.set_extents(n["a"], d, ext)
    img.write_inode(n["a"], d)
    return [f"inode {n['a']}: extent 0 (file block 0, region block 3, "
            "3 blocks) lies outside the data area"], None


@damage
def extent_array_damaged(img, n):
    img.flip(img.inode(n["frag"]).ext_block * BLOCK + 9)   # its owner
    return [f"inode {n['frag']}: extent array header is damaged"], None


@damage
def block_count(img, n):
    set_field(img, n["frag"], blocks=img.inode(n["frag"]).blocks + 5)
    return [f"inode {n['frag']}: block count 14, found 9"], None


@damage
def xattr_block_damaged(img, n):
    xb = img.inode(n["a"]).xattr_block
    img.flip(xb * BLOCK + 40)

    def verify(img):
        assert img.inode(n["a"]).xattr_block == 0 and not img.bit(xb)
    return [f"inode {n['a']}: xattr block {xb} is damaged"], verify


@damage
def device_with_blocks(img, n):
    d = img.inode(n["null"])
    b = img.alloc_blocks(1)
    img.set_extents(n["null"], d, [fmt.Extent(lblk=0, pblk=b, len=1)])
    d.blocks = 1
    img.write_inode(n["null"], d)
    img.sync_counts()

    def verify(img):
        assert not img.bit(b) and img.inode(n["null"]).nextents == 0
    return ["a device, fifo or socket owns data blocks"], verify


@damage
def symlink_without_target(img, n):
    d = img.inode(n["long"])
    img.set_bit(img.extents(d)[0].pblk, False)
    img.set_extents(n["long"], d, [])
    d.blocks = 0
    img.write_inode(n["long"], d)
    img.sync_counts()
    return ["symlink target block is missing"], None


@damage
def leaked_block(img, n):
    b = img.sb.nblocks - 100
    img.set_bit(b)
    img.sync_counts()

    def verify(img):
        assert not img.bit(b)
    return [f"1 blocks in use but owned by nothing (leaked): {b}"], verify


@damage
def metadata_blocks_marked_free(img, n):
    img.set_bit(img.sb.itable_start + 1, False)
    img.set_bit(img.sb.backup_block, False)
    img.sync_counts()

    def verify(img):
        assert img.bit(img.sb.itable_start + 1)
        assert img.bit(img.sb.backup_block)
    return [f"2 blocks owned but marked free: {img.sb.itable_start + 1}, "
            f"{img.sb.backup_block}"], verify


@damage
def file_block_marked_free(img, n):
    b = img.extents(img.inode(n["a"]))[0].pblk + 1
    img.set_bit(b, False)
    img.sync_counts()
    return [f"1 blocks owned but marked free: {b}"], None


@damage
def bitmap_tail_bits(img, n):
    img.write((img.sb.bitmap_start + img.sb.bitmap_blocks) * BLOCK - 1,
              b"\0")
    return ["8 bits past the end of the region are clear"], None


def file_on(img, pblk, name="b"):
    """A new one-block file whose block is pblk, already someone's."""
    b = img.mkfile(ROOT_INO, name, b"B" * BLOCK)
    db = img.inode(b)
    img.set_bit(img.extents(db)[0].pblk, False)
    img.set_extents(b, db, [fmt.Extent(lblk=0, pblk=pblk, len=1)])
    img.write_inode(b, db)
    img.sync_counts()
    return b


@damage
def block_owned_twice(img, n):
    """Two files share a block: the later one gets its own copy."""
    pa = img.extents(img.inode(n["a"]))[0].pblk
    b = file_on(img, pa + 1)
    data = img.read((pa + 1) * BLOCK, BLOCK)

    def verify(img):
        nb = img.extents(img.inode(b))[0].pblk
        assert nb != pa + 1 and img.read(nb * BLOCK, BLOCK) == data
        assert img.extents(img.inode(n["a"]))[0].pblk == pa
    return [f"inode {b}: extent 0 (blocks {pa + 1}-{pa + 1}) shares blocks "
            f"with inode {n['a']}"], verify


@damage
def extent_array_shared_with_file(img, n):
    arr = img.inode(n["frag"]).ext_block
    b = file_on(img, arr)
    return [f"inode {b}: extent 0 (blocks {arr}-{arr}) shares blocks with "
            f"inode {n['frag']}"], None


@damage
def xattr_block_shared_with_file(img, n):
    file_on(img, img.inode(n["a"]).xattr_block)
    return ["shares blocks with inode"], None


@damage
def extents_overlap_within_a_file(img, n):
    d = img.inode(n["a"])
    ext = img.extents(d)
    ext.append(fmt.Extent(lblk=10, pblk=ext[0].pblk, len=2))
    img.set_extents(n["a"], d, ext)
    d.blocks += 2
    img.write_inode(n["a"], d)
    return [f"inode {n['a']}: extent 1", f"shares blocks with inode "
            f"{n['a']}"], None


@damage
def link_counts(img, n):
    set_field(img, n["a"], nlink=3)
    set_field(img, ROOT_INO, nlink=9)

    def verify(img):
        assert img.inode(n["a"]).nlink == 2
        assert img.inode(ROOT_INO).nlink == 3
    return [f"inode {n['a']}: link count 3, found 2",
            "inode 1: link count 9, found 3"], verify


@damage
def unreachable_inode(img, n):
    lost = img.mkfile(0, None, b"lost data")
    img.sync_counts()

    def verify(img):
        lf = img.lookup(ROOT_INO, "lost+found")
        assert img.lookup(lf, f"#{lost}") == lost
        assert img.inode(lf).parent == ROOT_INO
        assert img.inode(ROOT_INO).nlink == 4
        assert img.read(img.extents(img.inode(lost))[0].pblk * BLOCK,
                        9) == b"lost data"
    return [f"inode {lost} is not connected to the root"], verify


@damage
def unreachable_into_existing_lost_found(img, n):
    lf = img.mkdir(ROOT_INO, "lost+found")
    lost = img.mkfile(0, None, b"lost")
    img.mkfile(lf, f"#{lost}", b"older")    # the name is taken
    sub = img.mkdir(ROOT_INO, "sub")
    img.write(img.entry_off(ROOT_INO, "sub"), bytes(64))
    set_field(img, ROOT_INO, nlink=img.inode(ROOT_INO).nlink - 1)
    img.sync_counts()

    def verify(img):
        assert img.lookup(lf, f"#{lost}.1") == lost
        assert img.lookup(lf, f"#{sub}") == sub
        assert img.inode(sub).parent == lf and img.inode(lf).nlink == 3
    return [f"inode {lost} is not connected",
            f"directory {sub} is not connected"], verify


@damage
def bad_dirent_crc(img, n):
    img.flip(img.entry_off(n["d"], "frag") + 17)         # in the name

    def verify(img):
        lf = img.lookup(ROOT_INO, "lost+found")
        assert img.lookup(lf, f"#{n['frag']}") == n["frag"]
    return [f"directory {n['d']}: damaged entry in block 0, slot 0",
            f"inode {n['frag']} is not connected"], verify


@damage
def dirent_name_past_its_block(img, n):
    blk = img.extents(img.inode(n["e"]))[0].pblk
    h = fmt.Dirent(ino=n["empty"], name_len=255, type=fmt.DT_REG, nslots=5)
    img.write(blk * BLOCK + 63 * fmt.SLOT, h.pack())
    return [f"directory {n['e']}: damaged entry in block 0, slot 63"], None


@damage
def dirents_point_nowhere(img, n):
    img.add_entry(ROOT_INO, "ghost", 77, fmt.DT_REG)
    img.add_entry(ROOT_INO, "far", img.sb.ninodes + 5, fmt.DT_REG)
    img.add_entry(n["d"], "up", ROOT_INO, fmt.DT_DIR)
    img.add_entry(n["e"], "me", n["e"], fmt.DT_DIR)
    return ["entry 'ghost' points to a free inode (77)",
            "entry 'far' points to an inode out of range",
            "entry 'up' points to the root directory (1)",
            "entry 'me' points to the directory itself"], None


@damage
def dirent_type_mismatch(img, n):
    img.write(img.entry_off(ROOT_INO, "s"),
              fmt.encode_dirent("s", n["s"], fmt.DT_REG))

    def verify(img):
        assert [t for nm, _, t, _ in img.entries(ROOT_INO)
                if nm == "s"] == [fmt.DT_LNK]
    return [f"entry 's' has type 8, but inode {n['s']} has type 10"], verify


@damage
def duplicate_name(img, n):
    img.add_entry(ROOT_INO, "a", n["null"], fmt.DT_CHR)
    return ["directory 1: duplicate entry 'a'"], None


@damage
def parent_mismatch(img, n):
    set_field(img, n["e"], parent=ROOT_INO)

    def verify(img):
        assert img.inode(n["e"]).parent == n["d"]
    return [f"directory {n['e']}: parent is 1, found {n['d']}"], verify


@damage
def directory_linked_twice(img, n):
    img.add_entry(ROOT_INO, "e2", n["e"], fmt.DT_DIR)

    def verify(img):
        assert img.lookup(ROOT_INO, "e2") is None
        assert img.lookup(n["d"], "e") == n["e"]
    return [f"directory {n['e']} has more than one entry"], verify


@damage
def directory_loop(img, n):
    """x and y hold each other and nothing else holds either."""
    x = img.mkdir(ROOT_INO, "x")
    y = img.mkdir(x, "y")
    img.add_entry(y, "x", x, fmt.DT_DIR)
    img.write(img.entry_off(ROOT_INO, "x"), bytes(64))
    set_field(img, x, parent=y, nlink=3)
    set_field(img, y, parent=x, nlink=3)
    set_field(img, ROOT_INO, nlink=img.inode(ROOT_INO).nlink - 1)
    img.sync_counts()
    return ["part of a directory loop"], None


@damage
def directory_size_and_holes(img, n):
    d = img.inode(n["d"])
    ext = img.extents(d)
    b = img.alloc_blocks(1)
    ext.append(fmt.Extent(lblk=5, pblk=b, len=1))
    img.set_extents(n["d"], d, ext)
    d.blocks += 1
    d.size = 6 * BLOCK
    img.write_inode(n["d"], d)
    img.sync_counts()

    def verify(img):
        assert img.inode(n["d"]).size == BLOCK and not img.bit(b)
    return ["blocks are not contiguous from file block 1 on",
            f"directory {n['d']}: size 24576, expected 4096"], verify


@damage
def committed_transaction_with_damage(img, n):
    bad = img.inode(n["null"])
    bad.nlink = 3
    img.write_tx([img.inode_record(n["null"], bad)])
    return ["will be replayed at mount",
            f"inode {n['null']}: link count 3, found 1"], None


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage(daxfsctl, tree, case):
    path, names = tree
    with Image(path) as img:
        expect, verify = DAMAGE[case](img, names)
    res = fsck(daxfsctl, path)
    assert res.rc == 4, res
    for text in expect:
        assert text in res.out, res.out
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 1, res
    assert "(fixed" in res.out and "not fixed" not in res.out
    assert_clean(daxfsctl, path)
    if verify:
        with Image(path) as img:
            verify(img)


# ---- superblock cases that are not a simple repair ----

def test_both_superblocks_damaged(daxfsctl, region):
    with Image(region) as img:
        img.flip(100)
        img.flip(img.sb.backup_block * BLOCK + 100)
    for opts in ([], ["--repair"]):
        one_line_error(fsck(daxfsctl, region, *opts), 8,
                       "backup is unusable")


def test_unclean_state_is_a_note_and_repair_marks_clean(daxfsctl, tree):
    path, _ = tree
    with Image(path) as img:
        img.sb.state = fmt.STATE_MOUNTED
        img.sb.free_blocks = 0          # not valid while mounted
        img.write_sb()
    res = fsck(daxfsctl, path)
    assert res.rc == 0 and "not cleanly unmounted" in res.out, res
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 0 and "marked clean" in res.out, res
    with Image(path) as img:
        assert img.sb.state == fmt.STATE_CLEAN
        assert img.sb.free_blocks == img.free_blocks()
        assert img.read_sb(backup=True).pack() == img.sb.pack()


def test_unfixable_errors_leave_the_state_alone(daxfsctl, region):
    """Every data block in use and two files sharing one: no room for the
    copy, so the repair fails and the crashed region stays unclean."""
    with Image(region) as img:
        a = img.mkfile(ROOT_INO, "a", b"A" * BLOCK)
        file_on(img, img.extents(img.inode(a))[0].pblk)
        free = [x for x in range(img.sb.data_start, img.sb.nblocks - 1)
                if not img.bit(x)]
        big, d = img.new_inode(fmt.S_IFREG | 0o644)
        exts, lblk = [], 0
        for x in free:              # one file takes every free block
            if exts and exts[-1].pblk + exts[-1].len == x:
                exts[-1].len += 1
            else:
                exts.append(fmt.Extent(lblk=lblk, pblk=x, len=1))
            img.set_bit(x)
            lblk += 1
        img.set_extents(big, d, exts)
        d.blocks, d.size = lblk, lblk * BLOCK
        img.write_inode(big, d)
        img.add_entry(ROOT_INO, "big", big, fmt.DT_REG)
        img.sb.state = fmt.STATE_MOUNTED
        img.write_sb()
    res = fsck(daxfsctl, region, "--repair")
    assert res.rc == 4, res
    assert "(not fixed: no free space for a copy)" in res.out
    assert "the rest could not be repaired" in res.out
    with Image(region) as img:
        assert img.sb.state == fmt.STATE_MOUNTED


# ---- the journal ----

def test_committed_transaction_is_checked_as_replayed(daxfsctl, tree):
    """The region alone has a wrong link count; the committed transaction
    fixes it, so the check sees no error, and a repair replays it."""
    path, names = tree
    with Image(path) as img:
        ino = names["null"]
        good = img.inode(ino)
        set_field(img, ino, nlink=7)
        img.write_tx([img.inode_record(ino, good)])
        seq = img.jsb().seq
    res = fsck(daxfsctl, path)
    assert res.rc == 0, res
    assert (f"note: journal holds committed transaction {seq}; it will be "
            "replayed at mount") in res.out
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 0, res
    assert f"note: replayed committed journal transaction {seq}" in res.out
    with Image(path) as img:
        assert img.inode(names["null"]).nlink == 1
        assert img.jsb().seq == seq + 1
    assert "journal" not in assert_clean(daxfsctl, path).out


def test_committed_transaction_creates_file(daxfsctl, tree):
    """A create (inode and entry) that only the journal holds."""
    path, names = tree
    with Image(path) as img:
        ino = img.alloc_inode()
        d = fmt.Dinode(mode=fmt.S_IFREG | 0o600, nlink=1, generation=1)
        blk = img.extents(img.inode(names["e"]))[0].pblk
        ent = fmt.encode_dirent("new", ino, fmt.DT_REG)
        img.write_tx([img.inode_record(ino, d),
                      (blk * BLOCK + fmt.SLOT, ent)])    # slot 1 of /e
        img.sb.state = fmt.STATE_MOUNTED    # a daemon was running
        img.write_sb()
    res = fsck(daxfsctl, path)
    assert res.rc == 0 and "will be replayed" in res.out, res
    assert f"{len(names) + 2} inodes" in res.out
    assert fsck(daxfsctl, path, "--repair").rc == 0
    with Image(path) as img:
        assert img.lookup(names["e"], "new") == ino
    assert_clean(daxfsctl, path)


@pytest.mark.parametrize("how", ["torn", "retired"])
def test_uncommitted_transaction_is_ignored(daxfsctl, tree, how):
    path, names = tree
    with Image(path) as img:
        bad = img.inode(names["null"])
        bad.nlink = 9
        seq = img.jsb().seq
        img.write_tx([img.inode_record(names["null"], bad)],
                     corrupt=how == "torn",
                     seq=seq - 1 if how == "retired" else None)
    assert "journal" not in assert_clean(daxfsctl, path).out
    assert fsck(daxfsctl, path, "--repair").rc == 0
    with Image(path) as img:
        assert img.jsb().seq == seq
        assert img.inode(names["null"]).nlink == 1


@pytest.mark.parametrize("torn", ["new_seq_old_crc", "old_seq_new_crc"])
def test_journal_superblock_torn_by_a_crash(daxfsctl, tree, torn):
    """A crash in the middle of retiring a transaction: its sequence
    number and checksum disagree by one step.  Not damage: the applied
    transaction is replayed again."""
    path, names = tree
    with Image(path) as img:
        ino = names["null"]
        img.write_tx([img.inode_record(ino, img.inode(ino))])
        j = img.jsb()
        seq = j.seq
        j.seq += 1
        j.seal()
        if torn == "new_seq_old_crc":
            j.crc = fmt.Jsb(**{**vars(j), "seq": seq}).seal().crc
        else:
            j.seq = seq
        img.write(img.sb.journal_start * BLOCK, j.pack())
    res = fsck(daxfsctl, path)
    assert res.rc == 0, res
    assert "caught mid-update" in res.out and "will be replayed" in res.out
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 0 and "replayed committed" in res.out, res
    with Image(path) as img:
        assert img.jsb().seq == seq + 1
    assert "journal" not in assert_clean(daxfsctl, path).out


@pytest.mark.parametrize("case", ["unpadded", "short", "too_many",
                                  "beyond_region"])
def test_malformed_transaction_shapes(daxfsctl, tree, case):
    """Sealed transactions whose records do not add up must be read
    without overrunning anything (the sanitizer build checks)."""
    path, names = tree
    with Image(path) as img:
        off = img.inode_off(names["null"]) + 12
        rec = fmt.Jrec(off=off, len=5).pack() + b"\x01\0\0\0\0"
        if case == "unpadded":      # fills the body exactly, then a 2nd
            img.write_tx_raw(rec, 2)
        elif case == "short":       # a record longer than the body
            img.write_tx_raw(fmt.Jrec(off=off, len=64).pack() + bytes(8), 1)
        elif case == "too_many":
            img.write_tx_raw(rec + bytes(3), 1000)
        else:
            img.write_tx_raw(fmt.Jrec(off=img.sb.region_size - 4,
                                      len=8).pack() + bytes(8), 1)
    res = fsck(daxfsctl, path)
    assert res.rc == 4 and "is malformed" in res.out, res
    assert "discarded" in repair_then_clean(daxfsctl, path).out
    with Image(path) as img:
        assert img.inode(names["null"]).nlink == 1


# ---- orphans and lost+found ----

@pytest.mark.parametrize("kind", ["file", "directory"])
def test_orphan_is_a_note(daxfsctl, tree, kind):
    """An unlinked-but-open file (or rmdir'ed directory) left by a crash:
    mount frees it, so the check only notes it; a repair frees it and its
    blocks."""
    path, _ = tree
    with Image(path) as img:
        if kind == "file":
            ino = img.mkfile(0, None, b"x" * (3 * BLOCK), nlink=0)
            blk = img.extents(img.inode(ino))[0].pblk
        else:
            ino, _ = img.new_inode(fmt.S_IFDIR | 0o755, nlink=0, parent=1)
        img.sb.state = fmt.STATE_MOUNTED
        img.write_sb()
    res = fsck(daxfsctl, path)
    assert res.rc == 0, res
    assert f"note: inode {ino} is an orphan" in res.out
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 0, res
    assert f"note: inode {ino} was an orphan" in res.out
    with Image(path) as img:
        assert img.inode(ino).mode == 0
        if kind == "file":
            assert not any(img.bit(blk + k) for k in range(3))
        assert img.sb.state == fmt.STATE_CLEAN
    assert "orphan" not in assert_clean(daxfsctl, path).out


def test_root_damage_moves_everything_to_lost_found(daxfsctl, tree):
    path, names = tree
    with Image(path) as img:
        img.flip(img.inode_off(ROOT_INO) + 40)     # in atime
    res = fsck(daxfsctl, path)
    assert res.rc == 4 and "inode 1: checksum mismatch" in res.out
    res = repair_then_clean(daxfsctl, path)
    assert "(fixed: cleared; a new root directory is made)" in res.out
    with Image(path) as img:
        lf = img.lookup(ROOT_INO, "lost+found")
        found = {nm: i for nm, i, _, _ in img.entries(lf)}
        for name in ("d", "s", "long", "null"):
            assert found[f"#{names[name]}"] == names[name]
        # a is still linked from d, so it comes back through d
        assert f"#{names['a']}" not in found
        assert img.inode(names["a"]).nlink == 1
        assert img.inode(names["d"]).parent == lf
        assert img.lookup(names["d"], "frag") == names["frag"]


def test_many_unreachable_grow_lost_found(daxfsctl, region):
    """More reconnected entries than one directory block holds."""
    with Image(region) as img:
        lost = [img.mkfile(0, None) for _ in range(70)]
        img.sync_counts()
    res = fsck(daxfsctl, region)
    assert res.rc == 4 and res.out.count("is not connected") == 70
    repair_then_clean(daxfsctl, region)
    with Image(region) as img:
        lf = img.lookup(ROOT_INO, "lost+found")
        assert img.inode(lf).size == 2 * BLOCK
        assert sorted(i for _, i, _, _ in img.entries(lf)) == lost


def test_lost_found_that_is_a_file(daxfsctl, tree):
    path, _ = tree
    with Image(path) as img:
        img.mkfile(ROOT_INO, "lost+found", b"not a directory")
        lost = img.mkfile(0, None, b"lost")
        img.sync_counts()
    res = fsck(daxfsctl, path, "--repair")
    assert res.rc == 4, res
    assert (f"inode {lost} is not connected to the root (not fixed: "
            "'lost+found' in the root is not a directory)") in res.out


# ---- never crash, and a repair leaves a clean region ----

def scribble_blocks(img, rng):
    """Random bytes over part of one metadata block (not a superblock)."""
    blocks = [img.sb.itable_start, img.sb.journal_start + 1,
              img.sb.bitmap_start]
    for ino in range(1, 10):
        d = img.inode(ino)
        blocks += [e.pblk for e in img.extents(d)]
        blocks += [b for b in (d.ext_block, d.xattr_block) if b]
    off = rng.choice(blocks) * BLOCK + rng.randrange(BLOCK // 2)
    img.write(off, rng.randbytes(rng.randrange(64, BLOCK // 2)))


@pytest.mark.parametrize("seed", range(50))
def test_random_damage(daxfsctl, region, seed):
    rng = random.Random(seed)
    with Image(region) as img:
        fmt.populate(img)
        if seed % 4 == 3:
            scribble_blocks(img, rng)
        else:
            fmt.scribble(img, rng, 1 + seed % 8)
    assert fsck(daxfsctl, region).rc in (0, 4)
    assert fsck(daxfsctl, region, "--repair").rc in (0, 1)
    assert_clean(daxfsctl, region)
    assert fsck(daxfsctl, region, "--repair").rc == 0
