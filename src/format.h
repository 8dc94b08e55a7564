/*
 * format.h -- every structure daxfs stores in a region, in one place.
 *
 * All fields are fixed-width and little-endian.  Nothing here may use
 * size_t, mode_t, uid_t, long or a pointer.  The in-memory forms live in
 * daxfs_i.h; conversion happens in super.c, inode.c, dir.c and xattr.c.
 *
 * Region layout, in 4 KiB blocks:
 *
 *   0                     primary superblock
 *   bitmap_start ..       free-space bitmap, one bit per block (1 = in use)
 *   journal_start         journal superblock
 *   journal_start+1 ..    journal log area (one transaction at a time)
 *   itable_start ..       inode table, DAXFS_INODE_SIZE bytes per inode
 *   data_start ..         data: file extents, directory blocks, extent
 *                         arrays, xattr blocks (data_start is aligned to
 *                         the device alignment so huge-page-sized extents
 *                         can later be mapped with huge pages)
 *   nblocks - 1           backup superblock
 *
 * Block 0 and everything below data_start, and the backup block, are
 * marked in use in the bitmap.  Block number 0 therefore never names a data
 * block and serves as "none" in every pointer field.
 */
#ifndef DAXFS_FORMAT_H
#define DAXFS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t le16;
typedef uint32_t le32;
typedef uint64_t le64;

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "daxfs accesses its little-endian format directly; port the accessors first"
#endif

#define DAXFS_BLOCK_SHIFT	12
#define DAXFS_BLOCK_SIZE	(1u << DAXFS_BLOCK_SHIFT)

/* "DAXFSREG", "DAXFSJNL", "DAXFSTXN", "DAXFSEXT", "DAXFSXAT" read as le64 */
#define DAXFS_SB_MAGIC		0x4745525346584144ULL
#define DAXFS_JSB_MAGIC		0x4c4e4a5346584144ULL
#define DAXFS_TX_MAGIC		0x4e58545346584144ULL
#define DAXFS_EXT_MAGIC		0x5458455346584144ULL
#define DAXFS_XATTR_MAGIC	0x5441585346584144ULL

#define DAXFS_VERSION_MAJOR	1
#define DAXFS_VERSION_MINOR	0

/*
 * Feature masks.  An unknown incompat bit refuses the mount; an unknown
 * ro_compat bit allows a read-only mount only; unknown compat bits are
 * ignored.  None are defined yet in version 1.0.
 */
#define DAXFS_FEATURE_COMPAT_SUPP	0ULL
#define DAXFS_FEATURE_RO_COMPAT_SUPP	0ULL
#define DAXFS_FEATURE_INCOMPAT_SUPP	0ULL

/* superblock state */
#define DAXFS_STATE_CLEAN	1u	/* unmounted cleanly, counters valid */
#define DAXFS_STATE_MOUNTED	2u	/* a daemon holds it, or crashed */

#define DAXFS_LABEL_MAX		64
#define DAXFS_SB_SIZE		512

/* the smallest region mkfs accepts, and the size it makes by default */
#define DAXFS_MIN_REGION	(16ULL << 20)

struct daxfs_dsb {
	le64 magic;
	le16 version_major;
	le16 version_minor;
	le32 block_size;
	le64 feat_compat;
	le64 feat_ro_compat;
	le64 feat_incompat;
	uint8_t uuid[16];
	char label[DAXFS_LABEL_MAX];	/* NUL-padded, not always terminated */
	le64 region_size;		/* bytes covered by the format */
	le64 nblocks;
	le64 data_align;		/* bytes; power of two, >= block */
	le64 bitmap_start;
	le64 bitmap_blocks;
	le64 journal_start;
	le64 journal_blocks;		/* including the journal superblock */
	le64 itable_start;
	le64 itable_blocks;
	le64 ninodes;			/* slots in the inode table */
	le64 data_start;
	le64 root_ino;
	le64 free_blocks;		/* valid when state == CLEAN */
	le64 free_inodes;		/* valid when state == CLEAN */
	le32 state;
	le32 mount_count;
	le64 mkfs_time;
	le64 mount_time;
	le64 write_time;
	le64 backup_block;
	uint8_t reserved[236];		/* must be zero */
	le32 crc;			/* crc32c of bytes [0, offsetof(crc)) */
};

/*
 * Journal.  Metadata changes are redo-logged as byte ranges.  One
 * transaction occupies the log at a time:
 *
 *   1. write the records into the log; persist; then the tx header;
 *      persist -- the commit point: the header's CRC covers header and
 *      records (records first: a CRC cannot see a torn dinode record,
 *      whose data ends with its own crc32c; see tx_commit);
 *   2. apply every record in place; persist;
 *   3. advance jsb.seq; persist -- the transaction is retired.
 *
 * Recovery replays the log iff its header carries seq == jsb.seq and a
 * valid CRC, then advances jsb.seq.  Records hold absolute contents, so
 * replaying an already-applied transaction is harmless; step 3 guarantees
 * a retired transaction is never replayed over blocks that were freed and
 * reused for unjournaled file data afterwards.
 */
struct daxfs_jsb {
	le64 magic;
	le64 seq;			/* sequence of the next tx to commit */
	le64 log_start;			/* block */
	le64 log_blocks;
	uint8_t reserved[28];		/* must be zero */
	le32 crc;
};

struct daxfs_jtx {
	le64 magic;
	le64 seq;
	le32 nrec;
	le32 len;			/* bytes of records after this header */
	le32 crc;			/* over header (crc = 0) and records */
	le32 reserved;
};

struct daxfs_jrec {
	le64 off;			/* byte offset in the region */
	le32 len;			/* bytes of data that follow */
	le32 reserved;			/* data is padded to 8 bytes */
};

/* mode bits use the Linux values */
#define DAXFS_S_IFMT	0170000u
#define DAXFS_S_IFSOCK	0140000u
#define DAXFS_S_IFLNK	0120000u
#define DAXFS_S_IFREG	0100000u
#define DAXFS_S_IFBLK	0060000u
#define DAXFS_S_IFDIR	0040000u
#define DAXFS_S_IFCHR	0020000u
#define DAXFS_S_IFIFO	0010000u

/* inode flags */
#define DAXFS_IF_INLINE		0x1u	/* symlink target stored in inl[] */
#define DAXFS_IF_KNOWN		DAXFS_IF_INLINE

#define DAXFS_INODE_SIZE	256
#define DAXFS_ROOT_INO		1
#define DAXFS_FIRST_INO		1	/* inode 0 is never used */
#define DAXFS_INLINE_EXTENTS	5
#define DAXFS_INLINE_BYTES	120
#define DAXFS_NAME_MAX		255
#define DAXFS_SYMLINK_MAX	4095
#define DAXFS_LINK_MAX		65000u

struct daxfs_dextent {
	le64 lblk;			/* first file block */
	le64 pblk;			/* first region block */
	le32 len;			/* blocks */
	le32 reserved;			/* must be zero */
};

struct daxfs_dinode {
	le32 mode;			/* 0 = free slot */
	le32 uid;
	le32 gid;
	le32 nlink;			/* 0 with mode != 0: orphan */
	le64 size;
	le64 blocks;			/* region blocks owned, all kinds */
	le64 atime_sec;			/* seconds are signed (int64) */
	le64 mtime_sec;
	le64 ctime_sec;
	le64 btime_sec;
	le32 atime_nsec;
	le32 mtime_nsec;
	le32 ctime_nsec;
	le32 btime_nsec;
	le32 flags;
	le32 generation;
	le64 rdev;
	le64 parent;			/* directories: the parent's inode */
	le64 xattr_block;		/* 0 = none */
	le64 ext_block;			/* external extent array, 0 = inline */
	le32 ext_blocks;		/* its length in blocks */
	le32 nextents;
	uint8_t inl[DAXFS_INLINE_BYTES]; /* extents or a short symlink */
	le32 reserved;			/* must be zero */
	le32 crc;			/* crc32c of bytes [0, offsetof(crc)) */
};

/*
 * External extent array: contiguous blocks starting with this header,
 * followed by dinode.nextents extents sorted by lblk, never overlapping.
 */
struct daxfs_dextarray {
	le64 magic;
	le64 ino;			/* owner, checked by fsck */
	le32 cap;			/* extents that fit */
	uint8_t reserved[12];		/* must be zero */
};

#define DAXFS_EXT_PER_ARRAY(blocks) \
	((uint32_t)(((uint64_t)(blocks) * DAXFS_BLOCK_SIZE - \
		     sizeof(struct daxfs_dextarray)) / sizeof(struct daxfs_dextent)))

/*
 * Directories hold their entries in data blocks (reached through the
 * directory inode's extents) as 64-byte slots; an entry spans nslots
 * consecutive slots and never crosses a block.  A free slot has ino == 0;
 * deleting an entry zeroes all of its slots.  Lookup never scans: each
 * directory's entries are indexed in memory by name on first use.
 */
#define DAXFS_SLOT_SIZE		64
#define DAXFS_SLOTS_PER_BLOCK	(DAXFS_BLOCK_SIZE / DAXFS_SLOT_SIZE)

struct daxfs_ddirent {
	le64 ino;
	uint8_t name_len;		/* 1..255 */
	uint8_t type;			/* DT_* value (S_IFMT >> 12) */
	uint8_t nslots;
	uint8_t reserved;		/* must be zero */
	le32 crc;			/* over header (crc = 0) and name */
	/* name follows, not NUL-terminated */
};

#define DAXFS_DIRENT_SLOTS(name_len) \
	((sizeof(struct daxfs_ddirent) + (name_len) + DAXFS_SLOT_SIZE - 1) / \
	 DAXFS_SLOT_SIZE)

/*
 * Extended attributes of an inode live in one block, replaced as a whole
 * (copy-on-write) on every change.  Entries are packed after the header,
 * each 4-byte aligned: daxfs_dxattr, then the full name ("user.foo"), then
 * the value.
 */
struct daxfs_dxattrblk {
	le64 magic;
	le64 ino;
	le32 count;
	le32 used;			/* bytes of entries after the header */
	le32 crc;			/* over header (crc = 0) and entries */
	le32 reserved;
};

struct daxfs_dxattr {
	uint8_t name_len;		/* 1..255 */
	uint8_t reserved;
	le16 value_len;
};

#define DAXFS_XATTR_SPACE \
	(DAXFS_BLOCK_SIZE - sizeof(struct daxfs_dxattrblk))

/* compile-time layout checks: a change here is a format change */
_Static_assert(sizeof(struct daxfs_dsb) == DAXFS_SB_SIZE, "dsb size");
_Static_assert(offsetof(struct daxfs_dsb, label) == 56, "dsb label");
_Static_assert(offsetof(struct daxfs_dsb, region_size) == 120, "dsb size");
_Static_assert(offsetof(struct daxfs_dsb, state) == 232, "dsb state");
_Static_assert(offsetof(struct daxfs_dsb, backup_block) == 264, "dsb backup");
_Static_assert(offsetof(struct daxfs_dsb, crc) == 508, "dsb crc");
_Static_assert(sizeof(struct daxfs_jsb) == 64, "jsb size");
_Static_assert(sizeof(struct daxfs_jtx) == 32, "jtx size");
_Static_assert(sizeof(struct daxfs_jrec) == 16, "jrec size");
_Static_assert(sizeof(struct daxfs_dextent) == 24, "extent size");
_Static_assert(sizeof(struct daxfs_dinode) == DAXFS_INODE_SIZE, "inode size");
_Static_assert(offsetof(struct daxfs_dinode, size) == 16, "inode size field");
_Static_assert(offsetof(struct daxfs_dinode, flags) == 80, "inode flags");
_Static_assert(offsetof(struct daxfs_dinode, inl) == 128, "inode inline");
_Static_assert(offsetof(struct daxfs_dinode, crc) == 252, "inode crc");
_Static_assert(DAXFS_INLINE_EXTENTS * sizeof(struct daxfs_dextent) ==
	       DAXFS_INLINE_BYTES, "inline extents");
_Static_assert(sizeof(struct daxfs_dextarray) == 32, "extent array header");
_Static_assert(sizeof(struct daxfs_ddirent) == 16, "dirent header");
_Static_assert(DAXFS_DIRENT_SLOTS(DAXFS_NAME_MAX) <= 5, "dirent slots");
_Static_assert(sizeof(struct daxfs_dxattrblk) == 32, "xattr header");
_Static_assert(sizeof(struct daxfs_dxattr) == 4, "xattr entry");

#endif /* DAXFS_FORMAT_H */
