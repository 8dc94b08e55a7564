"""The daxfs on-region format (src/format.h), for tests that build or
damage regions directly, without a daemon.

Every structure is little-endian with the layout of format.h; the sizes
are asserted below.  CRCs are CRC-32C (Castagnoli) as src/crc32c.c's
crc32c(0, buf, len) computes them.  Image wraps a formatted file region
and can add files, directories, symlinks, hard links, xattr blocks and
journal transactions the way the daemon would lay them out, so tests can
start from a consistent populated region and then damage one thing.
"""
import os
import struct
import time

BLOCK = 4096

SB_MAGIC = 0x4745525346584144       # "DAXFSREG"
JSB_MAGIC = 0x4c4e4a5346584144      # "DAXFSJNL"
TX_MAGIC = 0x4e58545346584144       # "DAXFSTXN"
EXT_MAGIC = 0x5458455346584144      # "DAXFSEXT"
XATTR_MAGIC = 0x5441585346584144    # "DAXFSXAT"

STATE_CLEAN = 1
STATE_MOUNTED = 2

INODE_SIZE = 256
ROOT_INO = 1
INLINE_EXTENTS = 5
INLINE_BYTES = 120
IF_INLINE = 0x1
SLOT = 64
SLOTS_PER_BLOCK = BLOCK // SLOT

S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

DT_REG = S_IFREG >> 12
DT_DIR = S_IFDIR >> 12
DT_LNK = S_IFLNK >> 12
DT_CHR = S_IFCHR >> 12


# ---- CRC-32C ----

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data, crc=0):
    """crc32c(crc, buf, len) of src/crc32c.c: start with 0, chainable."""
    crc ^= 0xFFFFFFFF
    for b in bytes(data):
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283   # the standard check value


# ---- structures ----

class Struct:
    """A fixed little-endian record: FIELDS is [(name, struct code)]."""
    FIELDS = []
    SIZE = 0

    def __init__(self, **kw):
        for name, code in self.FIELDS:
            default = b"" if code.endswith("s") else 0
            setattr(self, name, kw.pop(name, default))
        if kw:
            raise TypeError(f"unknown fields {sorted(kw)}")

    @classmethod
    def fmt(cls):
        return "<" + "".join(code for _, code in cls.FIELDS)

    @classmethod
    def unpack(cls, buf):
        vals = struct.unpack(cls.fmt(), bytes(buf[:cls.SIZE]))
        return cls(**dict(zip((n for n, _ in cls.FIELDS), vals)))

    def pack(self):
        return struct.pack(self.fmt(), *(getattr(self, n)
                                         for n, _ in self.FIELDS))

    def offset(self, field):
        off = 0
        for name, code in self.FIELDS:
            if name == field:
                return off
            off += struct.calcsize("<" + code)
        raise KeyError(field)


class Superblock(Struct):
    FIELDS = [("magic", "Q"), ("version_major", "H"), ("version_minor", "H"),
              ("block_size", "I"), ("feat_compat", "Q"),
              ("feat_ro_compat", "Q"), ("feat_incompat", "Q"),
              ("uuid", "16s"), ("label", "64s"), ("region_size", "Q"),
              ("nblocks", "Q"), ("data_align", "Q"), ("bitmap_start", "Q"),
              ("bitmap_blocks", "Q"), ("journal_start", "Q"),
              ("journal_blocks", "Q"), ("itable_start", "Q"),
              ("itable_blocks", "Q"), ("ninodes", "Q"), ("data_start", "Q"),
              ("root_ino", "Q"), ("free_blocks", "Q"), ("free_inodes", "Q"),
              ("state", "I"), ("mount_count", "I"), ("mkfs_time", "Q"),
              ("mount_time", "Q"), ("write_time", "Q"),
              ("backup_block", "Q"), ("reserved", "236s"), ("crc", "I")]
    SIZE = 512

    def seal(self):
        self.crc = crc32c(self.pack()[:508])
        return self


class Dinode(Struct):
    FIELDS = [("mode", "I"), ("uid", "I"), ("gid", "I"), ("nlink", "I"),
              ("size", "Q"), ("blocks", "Q"), ("atime_sec", "Q"),
              ("mtime_sec", "Q"), ("ctime_sec", "Q"), ("btime_sec", "Q"),
              ("atime_nsec", "I"), ("mtime_nsec", "I"), ("ctime_nsec", "I"),
              ("btime_nsec", "I"), ("flags", "I"), ("generation", "I"),
              ("rdev", "Q"), ("parent", "Q"), ("xattr_block", "Q"),
              ("ext_block", "Q"), ("ext_blocks", "I"), ("nextents", "I"),
              ("inl", "120s"), ("reserved", "I"), ("crc", "I")]
    SIZE = INODE_SIZE

    def seal(self):
        self.crc = crc32c(self.pack()[:252])
        return self


class Jsb(Struct):
    FIELDS = [("magic", "Q"), ("seq", "Q"), ("log_start", "Q"),
              ("log_blocks", "Q"), ("reserved", "28s"), ("crc", "I")]
    SIZE = 64

    def seal(self):
        self.crc = crc32c(self.pack()[:60])
        return self


class Jtx(Struct):
    FIELDS = [("magic", "Q"), ("seq", "Q"), ("nrec", "I"), ("len", "I"),
              ("crc", "I"), ("reserved", "I")]
    SIZE = 32


class Jrec(Struct):
    FIELDS = [("off", "Q"), ("len", "I"), ("reserved", "I")]
    SIZE = 16


class Extent(Struct):
    FIELDS = [("lblk", "Q"), ("pblk", "Q"), ("len", "I"), ("reserved", "I")]
    SIZE = 24


class ExtArray(Struct):
    FIELDS = [("magic", "Q"), ("ino", "Q"), ("cap", "I"),
              ("reserved", "12s")]
    SIZE = 32


class Dirent(Struct):
    FIELDS = [("ino", "Q"), ("name_len", "B"), ("type", "B"),
              ("nslots", "B"), ("reserved", "B"), ("crc", "I")]
    SIZE = 16


class XattrBlock(Struct):
    FIELDS = [("magic", "Q"), ("ino", "Q"), ("count", "I"), ("used", "I"),
              ("crc", "I"), ("reserved", "I")]
    SIZE = 32


for _cls in (Superblock, Dinode, Jsb, Jtx, Jrec, Extent, ExtArray, Dirent,
             XattrBlock):
    assert struct.calcsize(_cls.fmt()) == _cls.SIZE, _cls.__name__
assert Superblock().offset("state") == 232
assert Superblock().offset("backup_block") == 264
assert Dinode().offset("inl") == 128
assert Dinode().offset("flags") == 80


def ext_per_array(blocks):
    return (blocks * BLOCK - ExtArray.SIZE) // Extent.SIZE


def dirent_slots(name_len):
    return (Dirent.SIZE + name_len + SLOT - 1) // SLOT


def encode_dirent(name, ino, dtype):
    """An entry's slots, as dir.c's encode() writes them."""
    name = name.encode() if isinstance(name, str) else bytes(name)
    nslots = dirent_slots(len(name))
    h = Dirent(ino=ino, name_len=len(name), type=dtype, nslots=nslots)
    h.crc = crc32c(name, crc32c(h.pack()))
    buf = bytearray(nslots * SLOT)
    buf[:Dirent.SIZE] = h.pack()
    buf[Dirent.SIZE:Dirent.SIZE + len(name)] = name
    return bytes(buf)


def encode_xattrs(ino, attrs):
    """An xattr block holding attrs ({name: value} of bytes/str)."""
    body = bytearray()
    for name, value in attrs.items():
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        ent = struct.pack("<BBH", len(name), 0, len(value)) + name + value
        ent += b"\0" * (-len(ent) % 4)
        body += ent
    h = XattrBlock(magic=XATTR_MAGIC, ino=ino, count=len(attrs),
                   used=len(body))
    h.crc = crc32c(body, crc32c(h.pack()))
    blk = h.pack() + bytes(body)
    return blk + b"\0" * (BLOCK - len(blk))


class Image:
    """A formatted file region opened for direct reading and writing."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR)
        self.sb = Superblock.unpack(self.read(0, Superblock.SIZE))
        assert self.sb.magic == SB_MAGIC, "not a daxfs region"

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # raw access
    def read(self, off, n):
        return os.pread(self.fd, n, off)

    def write(self, off, data):
        assert os.pwrite(self.fd, bytes(data), off) == len(data)

    def read_block(self, b):
        return self.read(b * BLOCK, BLOCK)

    def flip(self, off, mask=0x01):
        """Flip bits of the byte at off."""
        v = self.read(off, 1)[0]
        self.write(off, bytes([v ^ mask]))

    # superblocks
    def write_sb(self, primary=True, backup=True):
        self.sb.seal()
        if primary:
            self.write(0, self.sb.pack())
        if backup:
            self.write(self.sb.backup_block * BLOCK, self.sb.pack())

    def read_sb(self, backup=False):
        off = self.sb.backup_block * BLOCK if backup else 0
        return Superblock.unpack(self.read(off, Superblock.SIZE))

    # free-space bitmap
    def bitmap_off(self, b):
        return self.sb.bitmap_start * BLOCK + b // 8

    def bit(self, b):
        return bool(self.read(self.bitmap_off(b), 1)[0] & (1 << (b % 8)))

    def set_bit(self, b, on=True):
        off = self.bitmap_off(b)
        v = self.read(off, 1)[0]
        v = v | (1 << (b % 8)) if on else v & ~(1 << (b % 8))
        self.write(off, bytes([v]))

    def free_blocks(self):
        raw = self.read(self.sb.bitmap_start * BLOCK,
                        (self.sb.nblocks + 7) // 8)
        used = sum(bin(x).count("1") for x in raw[:self.sb.nblocks // 8])
        for b in range(self.sb.nblocks // 8 * 8, self.sb.nblocks):
            used += bool(raw[b // 8] & (1 << (b % 8)))
        return self.sb.nblocks - used

    def alloc_blocks(self, n=1):
        """n contiguous free data blocks, marked in use; the first one."""
        b, run = self.sb.data_start, 0
        while b < self.sb.nblocks - 1:
            run = run + 1 if not self.bit(b) else 0
            if run == n:
                start = b - n + 1
                for x in range(start, start + n):
                    self.set_bit(x)
                self.write(start * BLOCK, bytes(n * BLOCK))
                return start
            b += 1
        raise RuntimeError("region full")

    # inodes
    def inode_off(self, ino):
        return self.sb.itable_start * BLOCK + ino * INODE_SIZE

    def inode(self, ino):
        return Dinode.unpack(self.read(self.inode_off(ino), INODE_SIZE))

    def write_inode(self, ino, d, seal=True):
        if seal:
            d.seal()
        self.write(self.inode_off(ino), d.pack())

    def used_inodes(self):
        return sum(1 for i in range(1, self.sb.ninodes)
                   if self.inode(i).mode)

    def alloc_inode(self):
        for ino in range(ROOT_INO + 1, self.sb.ninodes):
            if not self.inode(ino).mode:
                return ino
        raise RuntimeError("no free inode")

    def new_inode(self, mode, nlink=1, **kw):
        ino = self.alloc_inode()
        now = int(time.time())
        d = Dinode(mode=mode, uid=os.getuid(), gid=os.getgid(), nlink=nlink,
                   atime_sec=now, mtime_sec=now, ctime_sec=now,
                   btime_sec=now, generation=self.inode(ino).generation + 1,
                   **kw)
        self.write_inode(ino, d)
        return ino, d

    def sync_counts(self):
        """Superblock free counts as a clean unmount would leave them."""
        self.sb.free_blocks = self.free_blocks()
        self.sb.free_inodes = self.sb.ninodes - 1 - self.used_inodes()
        self.write_sb()

    # extents
    def extents(self, d):
        if d.flags & IF_INLINE or not d.nextents:
            return []
        if d.ext_block:
            raw = self.read(d.ext_block * BLOCK + ExtArray.SIZE,
                            d.nextents * Extent.SIZE)
        else:
            raw = d.inl[:d.nextents * Extent.SIZE]
        return [Extent.unpack(raw[k * Extent.SIZE:(k + 1) * Extent.SIZE])
                for k in range(d.nextents)]

    def set_extents(self, ino, d, exts, external=False):
        """Store a sorted extent list in d (written by the caller);
        an external array when asked or when it does not fit inline."""
        if d.ext_block:
            for b in range(d.ext_block, d.ext_block + d.ext_blocks):
                self.set_bit(b, False)
            d.blocks -= d.ext_blocks
            d.ext_block = d.ext_blocks = 0
        raw = b"".join(e.pack() for e in exts)
        if not external and len(exts) <= INLINE_EXTENTS:
            d.inl = raw + bytes(INLINE_BYTES - len(raw))
        else:
            nb = 1
            while ext_per_array(nb) < max(len(exts) * 2, 64):
                nb += 1
            start = self.alloc_blocks(nb)
            h = ExtArray(magic=EXT_MAGIC, ino=ino, cap=ext_per_array(nb))
            self.write(start * BLOCK, h.pack() + raw)
            d.ext_block, d.ext_blocks = start, nb
            d.blocks += nb
            d.inl = bytes(INLINE_BYTES)
        d.nextents = len(exts)

    # directories
    def entries(self, dino):
        """[(name, ino, type, region offset)] of a directory."""
        out = []
        d = self.inode(dino)
        for e in self.extents(d):
            for k in range(e.len):
                base = (e.pblk + k) * BLOCK
                blk = self.read(base, BLOCK)
                s = 0
                while s < SLOTS_PER_BLOCK:
                    h = Dirent.unpack(blk[s * SLOT:])
                    if not h.ino:
                        s += 1
                        continue
                    name = blk[s * SLOT + 16:s * SLOT + 16 + h.name_len]
                    out.append((name.decode(errors="replace"), h.ino,
                                h.type, base + s * SLOT))
                    s += max(h.nslots, 1)
        return out

    def lookup(self, dino, name):
        for n, ino, _, _ in self.entries(dino):
            if n == name:
                return ino
        return None

    def entry_off(self, dino, name):
        for n, _, _, off in self.entries(dino):
            if n == name:
                return off
        raise KeyError(name)

    def add_entry(self, dino, name, ino, dtype):
        """Add name -> ino to directory dino, growing it by a block if
        needed; returns the entry's region offset."""
        ent = encode_dirent(name, ino, dtype)
        need = len(ent) // SLOT
        d = self.inode(dino)
        exts = self.extents(d)
        for e in exts:
            for k in range(e.len):
                base = (e.pblk + k) * BLOCK
                blk = self.read(base, BLOCK)
                s, run = 0, 0
                while s < SLOTS_PER_BLOCK:
                    h = Dirent.unpack(blk[s * SLOT:])
                    if h.ino:
                        s += max(h.nslots, 1)
                        run = 0
                        continue
                    run += 1
                    s += 1
                    if run == need:
                        off = base + (s - need) * SLOT
                        self.write(off, ent)
                        return off
        b = self.alloc_blocks(1)
        lblk = d.size // BLOCK
        if exts and exts[-1].pblk + exts[-1].len == b:
            exts[-1].len += 1
        else:
            exts.append(Extent(lblk=lblk, pblk=b, len=1))
        self.set_extents(dino, d, exts, external=bool(d.ext_block))
        d.size += BLOCK
        d.blocks += 1
        self.write_inode(dino, d)
        self.write(b * BLOCK, ent)
        return b * BLOCK

    # building a tree
    def mkfile(self, parent, name, data=b"", nlink=1):
        nb = (len(data) + BLOCK - 1) // BLOCK
        ino, d = self.new_inode(S_IFREG | 0o644, nlink=nlink)
        if nb:
            start = self.alloc_blocks(nb)
            self.write(start * BLOCK, data)
            self.set_extents(ino, d, [Extent(lblk=0, pblk=start, len=nb)])
            d.blocks += nb
        d.size = len(data)
        self.write_inode(ino, d)
        if parent:
            self.add_entry(parent, name, ino, DT_REG)
        return ino

    def mkfile_fragmented(self, parent, name, nfrag):
        """A file of nfrag one-block extents with gaps between them (an
        external extent array when nfrag > 5)."""
        ino, d = self.new_inode(S_IFREG | 0o644)
        start = self.alloc_blocks(2 * nfrag)
        exts = []
        for k in range(nfrag):
            self.set_bit(start + 2 * k + 1, False)
            self.write((start + 2 * k) * BLOCK, bytes([k + 1]) * BLOCK)
            exts.append(Extent(lblk=k, pblk=start + 2 * k, len=1))
        self.set_extents(ino, d, exts)
        d.blocks += nfrag
        d.size = nfrag * BLOCK
        self.write_inode(ino, d)
        self.add_entry(parent, name, ino, DT_REG)
        return ino

    def mkdir(self, parent, name):
        ino, d = self.new_inode(S_IFDIR | 0o755, nlink=2, parent=parent)
        self.add_entry(parent, name, ino, DT_DIR)
        p = self.inode(parent)
        p.nlink += 1
        self.write_inode(parent, p)
        return ino

    def symlink(self, parent, name, target):
        target = target.encode()
        ino, d = self.new_inode(S_IFLNK | 0o777)
        d.size = len(target)
        if len(target) <= INLINE_BYTES:
            d.flags = IF_INLINE
            d.inl = target + bytes(INLINE_BYTES - len(target))
        else:
            b = self.alloc_blocks(1)
            self.write(b * BLOCK, target)
            self.set_extents(ino, d, [Extent(lblk=0, pblk=b, len=1)])
            d.blocks += 1
        self.write_inode(ino, d)
        self.add_entry(parent, name, ino, DT_LNK)
        return ino

    def mknod_chr(self, parent, name, rdev=0x0103):
        ino, d = self.new_inode(S_IFCHR | 0o600, rdev=rdev)
        self.add_entry(parent, name, ino, DT_CHR)
        return ino

    def link(self, parent, name, ino):
        d = self.inode(ino)
        d.nlink += 1
        self.write_inode(ino, d)
        self.add_entry(parent, name, ino, d.mode >> 12)

    def set_xattrs(self, ino, attrs):
        d = self.inode(ino)
        b = self.alloc_blocks(1)
        self.write(b * BLOCK, encode_xattrs(ino, attrs))
        d.xattr_block = b
        d.blocks += 1
        self.write_inode(ino, d)
        return b

    # journal
    def jsb(self):
        return Jsb.unpack(self.read(self.sb.journal_start * BLOCK, Jsb.SIZE))

    def write_jsb(self, j):
        self.write(self.sb.journal_start * BLOCK, j.seal().pack())

    def write_tx(self, records, seq=None, corrupt=False):
        """Put one transaction in the log: records are (offset, bytes).
        seq defaults to the journal's next sequence (committed, not
        retired); corrupt spoils its CRC (a torn commit)."""
        body = bytearray()
        for off, data in records:
            body += Jrec(off=off, len=len(data)).pack() + bytes(data)
            body += bytes(-len(body) % 8)
        h = Jtx(magic=TX_MAGIC, seq=self.jsb().seq if seq is None else seq,
                nrec=len(records), len=len(body))
        h.crc = crc32c(body, crc32c(h.pack())) ^ (1 if corrupt else 0)
        self.write((self.sb.journal_start + 1) * BLOCK, h.pack() + body)

    def write_tx_raw(self, body, nrec, seq=None):
        """A sealed transaction with exactly these record bytes (for
        malformed ones)."""
        h = Jtx(magic=TX_MAGIC, seq=self.jsb().seq if seq is None else seq,
                nrec=nrec, len=len(body))
        h.crc = crc32c(body, crc32c(h.pack()))
        self.write((self.sb.journal_start + 1) * BLOCK, h.pack() + body)

    def inode_record(self, ino, d):
        """A journal record that stores dinode d (sealed) at ino."""
        return (self.inode_off(ino), d.seal().pack())


def populate(img):
    """A small tree with every kind of object daxfs stores; returns
    {name: ino}.  Counts are synced, so a fresh region stays clean."""
    r = ROOT_INO
    names = {}
    names["a"] = img.mkfile(r, "a", b"hello world\n" * 1000)
    names["d"] = img.mkdir(r, "d")
    names["frag"] = img.mkfile_fragmented(names["d"], "frag", 8)
    names["e"] = img.mkdir(names["d"], "e")
    names["empty"] = img.mkfile(names["e"], "empty")
    names["s"] = img.symlink(r, "s", "a")
    names["long"] = img.symlink(r, "long", "x/" * 100)
    names["null"] = img.mknod_chr(r, "null")
    img.link(names["d"], "a-again", names["a"])
    img.set_xattrs(names["a"], {"user.color": "blue", "user.n": b"\x01\x02"})
    img.sync_counts()
    return names


def scribble(img, rng, n):
    """Damage n random bytes of the metadata a populated region uses: the
    first inodes, their directory blocks, extent arrays and xattr blocks,
    and the bitmap around the start of the data area."""
    targets = [(img.inode_off(0), 16 * INODE_SIZE),
               (img.sb.bitmap_start * BLOCK + img.sb.data_start // 8, 64)]
    for ino in range(1, 16):
        d = img.inode(ino)
        if d.mode & S_IFMT == S_IFDIR:
            targets += [(e.pblk * BLOCK, e.len * BLOCK)
                        for e in img.extents(d)]
        if d.ext_block:
            targets.append((d.ext_block * BLOCK, 512))
        if d.xattr_block:
            targets.append((d.xattr_block * BLOCK, 128))
    for _ in range(n):
        base, size = rng.choice(targets)
        off = base + rng.randrange(size)
        if rng.random() < 0.5:
            img.flip(off, 1 << rng.randrange(8))
        else:
            img.write(off, bytes([rng.randrange(256)]))
