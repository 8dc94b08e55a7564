"""daxfsctl: mkfs, info and list, and the mkfs.daxfs alias.

What a person sees: every run either succeeds with nothing on stderr, or
fails with exactly one line on stderr that names the thing and the reason,
a positive exit status (2 for usage errors, 1 for the rest) and never a
signal.  Under the ASan build a sanitizer report breaks the "nothing on
stderr" / "one line" rules, so those checks also catch memory errors and
leaks.

fsck, status and unbind are tested with the code that implements them.
"""
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import textwrap

import pytest

from conftest import binary, is_root, new_region_path, run

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
BLOCK = 4096
SB_SIZE = 512               # struct daxfs_dsb

# byte offsets of struct daxfs_dsb fields (src/format.h)
SB_MAGIC = 0
SB_VERSION_MAJOR = 8
SB_FEAT_INCOMPAT = 32
SB_UUID = 40
SB_LABEL = 56
SB_REGION_SIZE = 120
SB_STATE = 232
SB_BACKUP_BLOCK = 264
SB_CRC = 508

UUID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# --- helpers -------------------------------------------------------------

def ok(res):
    """A successful run: exit 0 and nothing on stderr."""
    assert res.rc == 0, res
    assert res.err == "", res
    return res


def one_line_error(res, *needles, rc=None):
    """A failed run: positive status, one stderr line holding each needle."""
    assert res.rc > 0, f"expected a failure, not a success or a signal: " \
                       f"{res!r}"
    if rc is not None:
        assert res.rc == rc, res
    lines = res.err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr: {res!r}"
    for n in needles:
        assert n.lower() in lines[0].lower(), \
            f"{n!r} missing from the error line {lines[0]!r}"
    return lines[0]


def info_json(daxfsctl, path):
    res = ok(daxfsctl("info", "--json", path))
    return json.loads(res.out)


def flip_bit(path, offset, bit=0):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ (1 << bit)]))


def backup_offset(path):
    """The backup superblock sits in the last 4 KiB block of the region."""
    return (os.path.getsize(path) // BLOCK - 1) * BLOCK


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def rewrite_superblocks(path, fmt, offset, value):
    """Change one field in both superblocks and reseal their CRCs, as a
    buggy or hostile writer would: the checksums no longer protect us."""
    with open(path, "r+b") as f:
        for off in (0, backup_offset(path)):
            f.seek(off)
            sb = bytearray(f.read(SB_SIZE))
            struct.pack_into(fmt, sb, offset, value)
            struct.pack_into("<I", sb, SB_CRC, crc32c(bytes(sb[:SB_CRC])))
            f.seek(off)
            f.write(sb)


def text_field(out, name):
    """The value of a 'name:   value' line of text info."""
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no '{name}:' line in {out!r}")


def have_devdax(name="dax0.0"):
    return os.path.exists(f"/sys/bus/dax/devices/{name}") or \
        os.path.exists(f"/dev/{name}")


# --- mkfs and info on a good region --------------------------------------

def test_mkfs_1g_creates_file_region(daxfsctl, region_path):
    res = ok(daxfsctl("mkfs", "--size", "1G", region_path))
    assert region_path in res.out
    st = os.stat(region_path)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == GiB

    j = info_json(daxfsctl, region_path)
    assert j["region"] == region_path
    assert j["kind"] == "file"
    assert j["size"] == GiB
    assert j["block_size"] == BLOCK
    assert j["blocks"] * j["block_size"] == j["size"]
    assert j["state"] == "clean"
    assert j["backup_superblock_used"] is False
    assert UUID_RE.match(j["uuid"]), j["uuid"]
    assert j["label"] == ""
    assert j["version_major"] == 1
    assert j["journal_pending"] is False
    assert j["mount_count"] == 0
    assert j["in_use_by_pid"] is None
    assert j["mountpoint"] is None


def test_info_json_figures_are_consistent(daxfsctl, region_path):
    ok(daxfsctl("mkfs", "--size", "1G", region_path))
    j = info_json(daxfsctl, region_path)
    lay = j["layout"]

    # data area: everything from data_start up to the backup block
    assert j["data_blocks"] == j["blocks"] - lay["data_start"] - 1
    assert j["free_blocks"] + j["used_data_blocks"] == j["data_blocks"]
    assert j["used_data_blocks"] == 0          # a new filesystem
    assert j["inodes"] == j["used_inodes"] + j["free_inodes"]
    assert j["used_inodes"] == 1               # the root directory
    # the metadata areas follow each other after the primary superblock
    assert lay["bitmap_start"] == 1
    assert lay["bitmap_blocks"] * BLOCK * 8 >= j["blocks"]
    assert lay["journal_start"] == lay["bitmap_start"] + lay["bitmap_blocks"]
    assert lay["itable_start"] == lay["journal_start"] + \
        lay["journal_blocks"]
    assert lay["data_start"] >= lay["itable_start"] + lay["itable_blocks"]
    assert lay["itable_blocks"] * BLOCK >= (j["inodes"] + 1) * 256
    assert j["journal_bytes"] == lay["journal_blocks"] * BLOCK
    assert (lay["data_start"] * BLOCK) % j["data_align"] == 0
    assert lay["backup_block"] == j["blocks"] - 1
    # times are plausible
    assert j["mkfs_time"] > 1_600_000_000
    assert j["mount_time"] == 0


def test_two_regions_get_different_uuids(daxfsctl, region_path):
    other = new_region_path("u")
    try:
        ok(daxfsctl("mkfs", "--size", "16M", region_path))
        ok(daxfsctl("mkfs", "--size", "16M", other))
        assert info_json(daxfsctl, region_path)["uuid"] != \
            info_json(daxfsctl, other)["uuid"]
    finally:
        if os.path.lexists(other):
            os.unlink(other)


@pytest.mark.parametrize("label", [
    "scratch",
    "x" * 63,
    'quote" back\\slash\ttab',
    "caf\u00e9 \u30c7\u30fc\u30bf",
], ids=["plain", "63-bytes", "json-escapes", "utf8"])
def test_label_round_trip(daxfsctl, region_path, label):
    ok(daxfsctl("mkfs", "--size", "64M", "--label", label, region_path))
    assert info_json(daxfsctl, region_path)["label"] == label
    res = ok(daxfsctl("info", region_path))
    assert text_field(res.out, "label") == label.strip()


def test_label_short_option(daxfsctl, region_path):
    ok(daxfsctl("mkfs", "-s", "64M", "-L", "short", region_path))
    assert info_json(daxfsctl, region_path)["label"] == "short"


def test_label_too_long_is_refused(daxfsctl, region_path):
    res = daxfsctl("mkfs", "--size", "64M", "--label", "y" * 64, region_path)
    one_line_error(res, "label", "63", rc=2)
    assert not os.path.exists(region_path)


def test_info_text(daxfsctl, region):
    j = info_json(daxfsctl, region)
    res = ok(daxfsctl("info", region))
    out = res.out
    assert region in text_field(out, "region")
    assert "file region" in text_field(out, "region")
    assert text_field(out, "label") == "(none)"
    assert text_field(out, "uuid") == j["uuid"]
    assert text_field(out, "state") == "clean"
    assert text_field(out, "size") == "64.0 MiB (67108864 bytes)"
    assert text_field(out, "block size").startswith("4096")
    assert text_field(out, "inodes") == f"1 used of {j['inodes']}"
    assert text_field(out, "last mount") == "never"
    assert not out.lstrip().startswith("{")


def test_info_reports_formatted_size_of_grown_file(daxfsctl, region):
    """A file grown after mkfs keeps its filesystem at the formatted size."""
    os.truncate(region, 128 * MiB)
    j = info_json(daxfsctl, region)
    assert j["size"] == 64 * MiB
    assert j["backup_superblock_used"] is False


# --- mkfs over an existing filesystem ------------------------------------

def test_mkfs_refuses_existing_daxfs(daxfsctl, region):
    before = info_json(daxfsctl, region)
    for args in ([], ["--size", "64M"], ["--label", "new"]):
        res = daxfsctl("mkfs", *args, region)
        one_line_error(res, region, "already holds a daxfs", "--force",
                       rc=1)
    after = info_json(daxfsctl, region)
    assert after["uuid"] == before["uuid"]
    assert after["label"] == before["label"]


@pytest.mark.parametrize("size", ["32M", "128M"])
def test_refused_mkfs_leaves_region_untouched(daxfsctl, region, size):
    before = info_json(daxfsctl, region)
    res = daxfsctl("mkfs", "--size", size, region)
    one_line_error(res, "already holds a daxfs", rc=1)
    assert os.path.getsize(region) == 64 * MiB
    assert info_json(daxfsctl, region)["uuid"] == before["uuid"]


def test_mkfs_force_reformats(daxfsctl, region):
    before = info_json(daxfsctl, region)
    ok(daxfsctl("mkfs", "--force", "--label", "again", region))
    after = info_json(daxfsctl, region)
    assert after["uuid"] != before["uuid"]
    assert UUID_RE.match(after["uuid"])
    assert after["label"] == "again"
    assert after["size"] == 64 * MiB      # no --size: all of the file


def test_mkfs_force_short_option_and_resize(daxfsctl, region):
    before = info_json(daxfsctl, region)
    ok(daxfsctl("mkfs", "-f", "--size", "128M", region))
    assert os.path.getsize(region) == 128 * MiB
    after = info_json(daxfsctl, region)
    assert after["size"] == 128 * MiB
    assert after["uuid"] != before["uuid"]


def test_mkfs_refuses_when_only_backup_is_left(daxfsctl, region):
    """A damaged primary does not make the filesystem fair game: the backup
    still holds it, so mkfs without --force refuses."""
    flip_bit(region, SB_MAGIC)
    res = daxfsctl("mkfs", region)
    one_line_error(res, "already holds a daxfs", rc=1)
    assert info_json(daxfsctl, region)["backup_superblock_used"] is True


def test_mkfs_existing_non_daxfs_file(daxfsctl, region_path):
    """A file that holds no daxfs is formatted without --force."""
    with open(region_path, "wb") as f:
        f.truncate(32 * MiB)
    ok(daxfsctl("mkfs", region_path))
    assert info_json(daxfsctl, region_path)["size"] == 32 * MiB


def test_mkfs_missing_file_needs_size(daxfsctl, region_path):
    res = daxfsctl("mkfs", region_path)
    one_line_error(res, region_path, "--size", rc=1)
    assert not os.path.exists(region_path)


# --- sizes ---------------------------------------------------------------

@pytest.mark.parametrize("arg,size", [
    (str(16 * MiB), 16 * MiB),
    ("16384K", 16 * MiB),
    ("16384k", 16 * MiB),
    ("48M", 48 * MiB),
    ("1G", GiB),
    ("1g", GiB),
    ("1GiB", GiB),
    ("1GB", GiB),
])
def test_size_suffixes(daxfsctl, region_path, arg, size):
    ok(daxfsctl("mkfs", "--size", arg, region_path))
    assert os.path.getsize(region_path) == size
    assert info_json(daxfsctl, region_path)["size"] == size


def test_size_terabyte(daxfsctl, region_path):
    """T is 2^40.  Only the file and mkfs are checked: 'info' on a 1 TiB
    file region reads every inode slot and so fills ~17 GiB of /dev/shm."""
    res = ok(daxfsctl("mkfs", "--size", "1T", region_path))
    st = os.stat(region_path)
    assert st.st_size == TiB
    assert st.st_blocks * 512 < 256 * MiB      # mkfs left it sparse
    assert "1.0 TiB" in res.out


@pytest.mark.parametrize("arg", [
    "12Q", "-5", "0", "", "G", "1.5G", " 1G", "1 G", "0x10M", "1e9", "1KK",
    "1Gx", "99999999999999999999", "17179869184T",
])
def test_size_garbage_is_refused(daxfsctl, region_path, arg):
    res = daxfsctl("mkfs", "--size", arg, region_path)
    one_line_error(res, "invalid size", f"'{arg}'", rc=2)
    assert not os.path.exists(region_path)


@pytest.mark.parametrize("arg", ["1", "4K", "1M", "15M", "16383K"])
def test_size_below_minimum(daxfsctl, region_path, arg):
    res = daxfsctl("mkfs", "--size", arg, region_path)
    one_line_error(res, region_path, "too small", "16.0 MiB", rc=1)
    assert not os.path.exists(region_path)


@pytest.mark.parametrize("size", [
    2 * MiB,
    8 * MiB,
])
def test_existing_file_below_minimum(daxfsctl, region_path, size):
    with open(region_path, "wb") as f:
        f.truncate(size)
    res = daxfsctl("mkfs", region_path)
    one_line_error(res, region_path, "too small", "16.0 MiB", rc=1)
    assert os.path.getsize(region_path) == size


def test_failed_mkfs_leaves_no_file(daxfsctl, region_path):
    res = daxfsctl("mkfs", "--size", "16000T", region_path)
    one_line_error(res, region_path, rc=1)
    assert not os.path.exists(region_path)


# --- inodes --------------------------------------------------------------

@pytest.mark.parametrize("n", [16, 5000, 100000])
def test_inodes(daxfsctl, region_path, n):
    res = ok(daxfsctl("mkfs", "--size", "64M", "--inodes", n, region_path))
    assert f"{n} inodes" in res.out
    j = info_json(daxfsctl, region_path)
    # --inodes counts usable inodes: what mkfs prints and info reports
    assert j["inodes"] == n
    assert j["used_inodes"] == 1
    assert j["layout"]["itable_blocks"] * BLOCK >= (n + 1) * 256


def test_inodes_default_depends_on_size(daxfsctl, region_path):
    ok(daxfsctl("mkfs", "--size", "1G", region_path))
    big = info_json(daxfsctl, region_path)["inodes"]
    ok(daxfsctl("mkfs", "--force", "--size", "16M", region_path))
    small = info_json(daxfsctl, region_path)["inodes"]
    assert big > small


@pytest.mark.parametrize("arg", ["abc", "0", "15", "-1", "1.5"])
def test_inodes_garbage_is_refused(daxfsctl, region_path, arg):
    res = daxfsctl("mkfs", "--size", "64M", "--inodes", arg, region_path)
    one_line_error(res, "inode", f"'{arg}'", rc=2)
    assert not os.path.exists(region_path)


def test_inodes_too_many_for_region(daxfsctl, region_path):
    # 10^6 inodes need 244 MiB of inode table: more than the region
    res = daxfsctl("mkfs", "--size", "64M", "--inodes", "1000000",
                   region_path)
    one_line_error(res, region_path, "too small for that many inodes",
                   rc=1)
    assert not os.path.exists(region_path)


# --- mkfs.daxfs ----------------------------------------------------------

@pytest.fixture
def mkfs_daxfs(tmp_path):
    link = tmp_path / "mkfs.daxfs"
    link.symlink_to(binary("daxfsctl"))

    def call(*args):
        return run([str(link), *map(str, args)])
    return call


def test_mkfs_daxfs_alias(mkfs_daxfs, daxfsctl, region_path):
    res = ok(mkfs_daxfs("--size", "64M", "--label", "alias", region_path))
    assert res.out.startswith("mkfs.daxfs:")
    j = info_json(daxfsctl, region_path)
    assert j["label"] == "alias"
    assert j["size"] == 64 * MiB

    res = mkfs_daxfs(region_path)
    line = one_line_error(res, region_path, "already holds a daxfs", rc=1)
    assert line.startswith("mkfs.daxfs:")

    ok(mkfs_daxfs("-f", region_path))
    assert info_json(daxfsctl, region_path)["uuid"] != j["uuid"]


def test_mkfs_daxfs_help_and_errors(mkfs_daxfs, region_path):
    res = ok(mkfs_daxfs("--help"))
    assert res.out.startswith("Usage:")
    assert "--size" in res.out
    one_line_error(mkfs_daxfs("--bogus", region_path), "--bogus", rc=2)
    one_line_error(mkfs_daxfs("--size", "12Q", region_path), "12Q", rc=2)
    one_line_error(mkfs_daxfs(), "no region", rc=2)
    assert not os.path.exists(region_path)


# --- list ----------------------------------------------------------------

def daxfs_mounts():
    with open("/proc/mounts") as f:
        return [ln.split() for ln in f if ln.split()[2:3] == ["fuse.daxfs"]]


def devdax_devices():
    d = "/sys/bus/dax/devices"
    return os.listdir(d) if os.path.isdir(d) else []


def list_stable(daxfsctl, *args):
    """list, run while /proc/mounts holds still (other tests may mount)."""
    for _ in range(5):
        before = daxfs_mounts()
        res = daxfsctl("list", *args)
        if daxfs_mounts() == before:
            return res, before
    pytest.fail("daxfs mounts kept changing under 'daxfsctl list'")


def test_list_text(daxfsctl):
    res, mounts = list_stable(daxfsctl)
    ok(res)
    assert res.out.strip()
    if not devdax_devices():
        assert "no device-DAX devices" in res.out
    if not mounts:
        assert "no daxfs mounts" in res.out
    for m in mounts:
        assert f"mount   {m[0]} on {m[1]} " in res.out


def test_list_json(daxfsctl):
    res, mounts = list_stable(daxfsctl, "--json")
    ok(res)
    v = json.loads(res.out)
    assert isinstance(v, list)
    if not devdax_devices() and not mounts:
        assert v == []
        assert res.out.strip() == "[]"
    for e in v:
        assert isinstance(e, dict) and e.get("type") in ("device", "mount")
    got = [(e["source"], e["mountpoint"]) for e in v if e["type"] == "mount"]
    assert got == [(m[0], m[1]) for m in mounts]
    if not devdax_devices():
        assert all(e["type"] == "mount" for e in v)


def test_mounted_region(daxfsctl, region, mount):
    """list, info and mkfs as they see a region that a daemon serves."""
    mnt, daemon = os.path.realpath(mount.mnt), mount.proc
    v = json.loads(ok(daxfsctl("list", "--json")).out)
    mine = [e for e in v if e["type"] == "mount" and e["mountpoint"] == mnt]
    assert len(mine) == 1 and mine[0]["source"] == region, v
    assert f"mount   {region} on {mnt} " in ok(daxfsctl("list")).out

    j = info_json(daxfsctl, region)
    assert j["state"] == "mounted"
    assert j["in_use_by_pid"] == daemon.pid
    assert j["mountpoint"] == mnt
    assert f"pid {daemon.pid}, mounted at {mnt}" in \
        ok(daxfsctl("info", region)).out

    res = daxfsctl("mkfs", "--force", region)
    one_line_error(res, region, f"region is in use by pid {daemon.pid}",
                   rc=1)
    assert info_json(daxfsctl, region)["uuid"] == j["uuid"]


def test_list_takes_no_arguments(daxfsctl):
    one_line_error(daxfsctl("list", "extra"), "no arguments", rc=2)


# --- help, usage errors --------------------------------------------------

@pytest.mark.parametrize("args,word", [
    (["--help"], "daxfsctl"),
    (["-h"], "daxfsctl"),
    (["help"], "daxfsctl"),
    (["mkfs", "--help"], "mkfs"),
    (["mkfs", "-h"], "mkfs"),
    (["info", "--help"], "info"),
    (["list", "--help"], "list"),
])
def test_help(daxfsctl, args, word):
    res = ok(daxfsctl(*args))
    first = res.out.splitlines()[0]
    assert first.startswith("Usage: daxfsctl"), res
    assert word in first


def test_main_help_lists_every_command(daxfsctl):
    out = ok(daxfsctl("--help")).out
    for cmd in ("mkfs", "fsck", "info", "list", "status", "unbind"):
        assert re.search(rf"^\s+{cmd}\b", out, re.M), cmd


def test_version(daxfsctl):
    res = ok(daxfsctl("--version"))
    assert re.match(r"daxfsctl \d+\.\d+\.\d+ \(format 1\.\d+\)$",
                    res.out.strip()), res


def test_no_command(daxfsctl):
    res = daxfsctl()
    assert res.rc == 2, res
    assert res.out == ""
    assert res.err.startswith("Usage:")


def test_unknown_command(daxfsctl):
    one_line_error(daxfsctl("frobnicate"), "unknown command", "frobnicate",
                   rc=2)
    one_line_error(daxfsctl("--frobnicate"), "unknown option",
                   "--frobnicate", rc=2)


@pytest.mark.parametrize("cmd", ["mkfs", "info", "list"])
@pytest.mark.parametrize("opt", ["--bogus", "-Z"])
def test_unknown_option(daxfsctl, region, cmd, opt):
    args = [cmd, opt] + ([region] if cmd != "list" else [])
    one_line_error(daxfsctl(*args), f"unknown option '{opt}'", "--help",
                   rc=2)


def test_option_missing_value(daxfsctl, region_path):
    one_line_error(daxfsctl("mkfs", region_path, "--size"),
                   "option '--size' needs a value", rc=2)
    one_line_error(daxfsctl("mkfs", "--size"),
                   "option '--size' needs a value", rc=2)
    one_line_error(daxfsctl("mkfs", "-L"), "option '-L' needs a value",
                   rc=2)
    one_line_error(daxfsctl("mkfs", "--label"),
                   "option '--label' needs a value", rc=2)
    one_line_error(daxfsctl("info", "--json=1", region_path),
                   "option '--json' takes no value", rc=2)
    assert not os.path.exists(region_path)


@pytest.mark.parametrize("cmd", ["mkfs", "info"])
def test_region_argument_count(daxfsctl, region, cmd):
    one_line_error(daxfsctl(cmd), "no region given", rc=2)
    one_line_error(daxfsctl(cmd, region, region), "too many", rc=2)


# --- things that are not a region ----------------------------------------

@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


@pytest.fixture
def block_device(tmp_path):
    """A block device: a loop device of our own over a scratch file when we
    may make one (then even a wrong mkfs harms nothing), else an existing
    one that is only ever looked at (info)."""
    losetup = shutil.which("losetup")
    if is_root() and losetup:
        img = tmp_path / "loop.img"
        with open(img, "wb") as f:
            f.truncate(64 * MiB)
        p = subprocess.run([losetup, "--find", "--show", str(img)],
                           capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            dev = p.stdout.strip()
            try:
                yield dev, True
            finally:
                subprocess.run([losetup, "-d", dev], capture_output=True)
            return
    for name in sorted(os.listdir("/sys/class/block")):
        dev = f"/dev/{name}"
        if os.path.exists(dev) and stat.S_ISBLK(os.stat(dev).st_mode):
            yield dev, False
            return
    pytest.skip("no block device on this machine and no way to make a "
                "loop device (needs root and losetup)")


def test_info_missing_path(daxfsctl, region_path):
    one_line_error(daxfsctl("info", region_path), region_path, "no such",
                   rc=1)
    assert not os.path.exists(region_path)


def test_directory(daxfsctl, tmp_path):
    for cmd in (["info"], ["mkfs", "--size", "64M"], ["mkfs", "--force"]):
        res = daxfsctl(*cmd, tmp_path)
        one_line_error(res, str(tmp_path), "is a directory", rc=1)
    assert os.listdir(tmp_path) == []


def test_dev_null(daxfsctl):
    for cmd in (["info"], ["mkfs", "--force", "--size", "64M"]):
        res = daxfsctl(*cmd, "/dev/null")
        one_line_error(res, "/dev/null", "character device",
                       "not device-DAX", rc=1)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo(daxfsctl, fifo):
    for cmd in (["info"], ["mkfs", "--force", "--size", "64M"]):
        res = daxfsctl(*cmd, fifo, timeout=30)   # must not block on open
        one_line_error(res, fifo, "fifo", rc=1)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_block_device(daxfsctl, block_device):
    dev, ours = block_device
    one_line_error(daxfsctl("info", dev), dev, "block device", rc=1)
    if ours:
        res = daxfsctl("mkfs", "--force", "--size", "64M", dev)
        one_line_error(res, dev, "block device", rc=1)


def test_symlink_to_region(daxfsctl, region, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(region)
    assert info_json(daxfsctl, link)["uuid"] == \
        info_json(daxfsctl, region)["uuid"]


@pytest.mark.parametrize("spec", ["dax0.0", "/dev/dax0.0", "dax7.3"])
def test_no_such_devdax(daxfsctl, spec):
    name = spec.rsplit("/", 1)[-1]
    if have_devdax(name):
        pytest.skip(f"{name} exists on this machine")
    for cmd in (["info"], ["mkfs", "--force"]):
        res = daxfsctl(*cmd, spec)
        one_line_error(res, spec, f"no device-DAX device named {name}",
                       "libdaxctl", rc=1)


@pytest.mark.parametrize("size", [0, 100, BLOCK - 1])
def test_empty_or_tiny_file(daxfsctl, region_path, size):
    with open(region_path, "wb") as f:
        f.write(os.urandom(size))
    one_line_error(daxfsctl("info", region_path), region_path, rc=1)
    one_line_error(daxfsctl("mkfs", region_path), region_path, rc=1)
    assert os.path.getsize(region_path) == size


# --- damaged regions -----------------------------------------------------

@pytest.mark.parametrize("fill", ["random", "zero"])
def test_not_a_daxfs_region(daxfsctl, region_path, fill):
    with open(region_path, "wb") as f:
        if fill == "random":
            for _ in range(16):
                f.write(os.urandom(MiB))
        else:
            f.truncate(16 * MiB)
    res = daxfsctl("info", region_path)
    one_line_error(res, region_path, "not a daxfs region", rc=1)
    assert res.out == ""
    one_line_error(daxfsctl("info", "--json", region_path),
                   "not a daxfs region", rc=1)


def test_flipped_bit_in_primary_uses_backup(daxfsctl, region_path):
    """One flipped bit anywhere in the primary superblock: info still works,
    from the backup, and says so."""
    ok(daxfsctl("mkfs", "--size", "16M", "--label", "flip", region_path))
    good = info_json(daxfsctl, region_path)
    bad = []
    for off in range(SB_SIZE):
        flip_bit(region_path, off, off % 8)
        res = daxfsctl("info", "--json", region_path)
        flip_bit(region_path, off, off % 8)
        try:
            j = json.loads(res.out) if res.rc == 0 else None
        except ValueError:
            j = None
        if (res.rc != 0 or res.err or not j or
                j["backup_superblock_used"] is not True or
                j["uuid"] != good["uuid"] or j["label"] != "flip" or
                j["size"] != good["size"]):
            bad.append((off, res))
    assert not bad, f"{len(bad)} offsets failed, first: {bad[:3]}"


def test_flipped_bit_in_primary_text(daxfsctl, region):
    flip_bit(region, SB_UUID, 3)
    res = ok(daxfsctl("info", region))
    assert "backup used" in text_field(res.out, "state")


@pytest.mark.parametrize("bit", [0, 12, 40])
def test_flipped_bit_in_backup_block_field(daxfsctl, region, bit):
    """The damaged primary's pointer to its backup is not to be trusted."""
    flip_bit(region, SB_BACKUP_BLOCK + bit // 8, bit % 8)
    j = info_json(daxfsctl, region)
    assert j["backup_superblock_used"] is True
    assert j["layout"]["backup_block"] == j["blocks"] - 1


def test_flipped_bit_in_backup_only(daxfsctl, region):
    flip_bit(region, backup_offset(region) + SB_LABEL, 2)
    assert info_json(daxfsctl, region)["backup_superblock_used"] is False


@pytest.mark.parametrize("off", [SB_MAGIC, SB_UUID, SB_REGION_SIZE, SB_CRC])
def test_both_superblocks_damaged(daxfsctl, region, off):
    flip_bit(region, off, 1)
    flip_bit(region, backup_offset(region) + off, 1)
    res = daxfsctl("info", region)
    line = one_line_error(res, region, rc=1)
    assert "superblock" in line or "not a daxfs region" in line, line
    assert res.out == ""


def test_both_superblocks_checksum_message(daxfsctl, region):
    flip_bit(region, SB_LABEL, 0)
    flip_bit(region, backup_offset(region) + SB_LABEL, 0)
    one_line_error(daxfsctl("info", region), "damaged", "checksum", rc=1)


@pytest.mark.parametrize("size", [32 * MiB, 64 * MiB - BLOCK, BLOCK])
def test_truncated_region(daxfsctl, region, size):
    os.truncate(region, size)
    res = daxfsctl("info", region)
    one_line_error(res, region, "truncated", rc=1)
    assert res.out == ""


def test_truncated_to_nothing(daxfsctl, region):
    os.truncate(region, 0)
    one_line_error(daxfsctl("info", region), region, rc=1)


# fields rewritten in both superblocks with a valid CRC: the checks behind
# the checksum must catch them, and nothing may crash
FORGED = [
    ("<H", SB_VERSION_MAJOR, 2, "version 2.0 is not supported"),
    ("<Q", SB_FEAT_INCOMPAT, 1 << 17, "incompatible features 0x20000"),
    ("<I", SB_STATE, 7, "state 7"),
    ("<Q", SB_REGION_SIZE, 1 << 62, "inconsistent"),
    ("<Q", 128, 0, "inconsistent"),                 # nblocks
    ("<Q", 128, 1 << 62, "inconsistent"),
    ("<Q", 136, 3, "alignment"),                    # data_align
    ("<Q", 152, 0, "inconsistent"),                 # bitmap_blocks
    ("<Q", 168, 1 << 40, "inconsistent"),           # journal_blocks
    ("<Q", 192, 1 << 50, "inconsistent"),           # ninodes
    ("<Q", 200, 1 << 40, "inconsistent"),           # data_start
    ("<Q", SB_BACKUP_BLOCK, 5, "inconsistent"),
    ("<B", 300, 1, "reserved"),
]


@pytest.mark.parametrize("fmt,off,value,why", FORGED,
                         ids=[f"{o}={v:#x}" for _, o, v, _ in FORGED])
def test_forged_superblock(daxfsctl, region, fmt, off, value, why):
    rewrite_superblocks(region, fmt, off, value)
    one_line_error(daxfsctl("info", region), region, why, rc=1)
    one_line_error(daxfsctl("info", "--json", region), why, rc=1)
    # mkfs still sees a daxfs there and will not overwrite it unasked
    one_line_error(daxfsctl("mkfs", region), "already holds", rc=1)


# --- the region lock -----------------------------------------------------

LOCKER = textwrap.dedent("""\
    import fcntl, sys
    f = open(sys.argv[1], "r+b")
    fcntl.lockf(f.fileno(), fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
""")


@pytest.fixture
def lock_holder():
    procs = []

    def hold(path):
        p = subprocess.Popen([sys.executable, "-c", LOCKER, path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p
    yield hold
    for p in procs:
        p.stdin.close()
        p.wait(timeout=30)


def test_mkfs_on_locked_region(daxfsctl, region, lock_holder):
    before = info_json(daxfsctl, region)
    holder = lock_holder(region)
    for args in (["--force"], ["--force", "--size", "32M"], []):
        res = daxfsctl("mkfs", *args, region)
        one_line_error(res, region, f"region is in use by pid {holder.pid}",
                       rc=1)
    assert os.path.getsize(region) == 64 * MiB
    # info takes no lock: it still reads the region, and names the holder
    j = info_json(daxfsctl, region)
    assert j["uuid"] == before["uuid"]
    assert j["in_use_by_pid"] == holder.pid
    assert f"pid {holder.pid}" in ok(daxfsctl("info", region)).out

    holder.stdin.close()
    holder.wait(timeout=30)
    ok(daxfsctl("mkfs", "--force", region))
    assert info_json(daxfsctl, region)["in_use_by_pid"] is None
