/*
 * super.c -- the superblocks: geometry, checking, reading (with fallback to
 * the backup), writing both copies, and formatting a region (mkfs).
 *
 * Owns: the layout rules.  Must never: write anything but superblocks,
 * except in daxfs_mkfs(), which writes the whole metadata area.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daxfs_i.h"

#define JOURNAL_MIN	(1ULL << 20)
#define JOURNAL_MAX	(64ULL << 20)
#define INODE_RATIO	(16ULL << 10)	/* one inode per 16 KiB by default */
#define MIN_INODES	1024ULL
#define MIN_DATA_BLOCKS	256ULL		/* 1 MiB of data at least */

/* super_set_crc -- seal a superblock */
void super_set_crc(struct daxfs_dsb *sb)
{
	sb->crc = crc32c(0, sb, offsetof(struct daxfs_dsb, crc));
}

/*
 * super_geometry -- lay out a region of `size` bytes with data aligned to
 * `align` and `ninodes` inode slots (0: the default ratio).  Fills the
 * geometry fields of sb; -ENOSPC when the region is too small.
 */
int super_geometry(uint64_t size, uint64_t align, uint64_t ninodes,
		   struct daxfs_dsb *sb)
{
	uint64_t nblocks = size >> DAXFS_BLOCK_SHIFT;
	uint64_t ab, jbytes, b;

	if (align < DAXFS_BLOCK_SIZE || (align & (align - 1)))
		return -EINVAL;
	ab = align >> DAXFS_BLOCK_SHIFT;
	if (!ninodes)
		ninodes = MAX(MIN_INODES, size / INODE_RATIO);
	if (ninodes < 2 || ninodes > (1ULL << 40))
		return -EINVAL;
	jbytes = MIN(MAX(size / 256, JOURNAL_MIN), JOURNAL_MAX);

	sb->block_size = DAXFS_BLOCK_SIZE;
	sb->region_size = nblocks << DAXFS_BLOCK_SHIFT;
	sb->nblocks = nblocks;
	sb->data_align = align;
	sb->ninodes = ninodes;
	b = 1;
	sb->bitmap_start = b;
	sb->bitmap_blocks = DIV_ROUND_UP(nblocks, 8ULL * DAXFS_BLOCK_SIZE);
	b += sb->bitmap_blocks;
	sb->journal_start = b;
	sb->journal_blocks = jbytes >> DAXFS_BLOCK_SHIFT;
	b += sb->journal_blocks;
	sb->itable_start = b;
	sb->itable_blocks = DIV_ROUND_UP(ninodes * DAXFS_INODE_SIZE,
					 DAXFS_BLOCK_SIZE);
	b += sb->itable_blocks;
	sb->data_start = ALIGN_UP(b, ab);
	sb->backup_block = nblocks ? nblocks - 1 : 0;
	sb->root_ino = DAXFS_ROOT_INO;
	if (nblocks < 2 || sb->data_start + MIN_DATA_BLOCKS + 1 > nblocks)
		return -ENOSPC;
	return 0;
}

/* super_min_size -- the smallest region mkfs can format with ninodes
 * inode slots (0: the default count) */
uint64_t super_min_size(uint64_t align, uint64_t ninodes)
{
	struct daxfs_dsb sb;
	uint64_t lo = 0, hi = 1;	/* sizes DAXFS_MIN_REGION + k * align */

#define FITS(k) (super_geometry(DAXFS_MIN_REGION + (k) * align, align, \
				ninodes, &sb) != -ENOSPC)
	if (FITS(0))
		return DAXFS_MIN_REGION;
	/* the smallest k that fits: double, then halve the gap */
	while (!FITS(hi) && hi < (1ULL << 40)) {
		lo = hi;
		hi *= 2;
	}
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (FITS(mid))
			hi = mid;
		else
			lo = mid;
	}
#undef FITS
	return DAXFS_MIN_REGION + hi * align;
}

/*
 * super_check -- is this a superblock daxfs can use on a region of
 * region_size bytes?  0, or -errno with a sentence.
 */
int super_check(const struct daxfs_dsb *sb, uint64_t region_size)
{
	uint64_t meta_end;

	if (sb->magic != DAXFS_SB_MAGIC) {
		daxfs_seterr("not a daxfs region (bad magic); run "
			     "'daxfsctl mkfs' first");
		return -EINVAL;
	}
	if (crc32c(0, sb, offsetof(struct daxfs_dsb, crc)) != sb->crc) {
		daxfs_seterr("superblock checksum mismatch");
		return -EUCLEAN;
	}
	if (sb->version_major != DAXFS_VERSION_MAJOR) {
		daxfs_seterr("format version %u.%u is not supported by this "
			     "daxfs (it reads %u.x)", sb->version_major,
			     sb->version_minor, DAXFS_VERSION_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (sb->feat_incompat & ~DAXFS_FEATURE_INCOMPAT_SUPP) {
		daxfs_seterr("region uses incompatible features 0x%llx "
			     "unknown to this daxfs",
			     (unsigned long long)(sb->feat_incompat &
					~DAXFS_FEATURE_INCOMPAT_SUPP));
		return -EPROTONOSUPPORT;
	}
	if (!mem_is_zero(sb->reserved, sizeof(sb->reserved))) {
		daxfs_seterr("superblock reserved bytes are not zero");
		return -EUCLEAN;
	}
	if (sb->block_size != DAXFS_BLOCK_SIZE || sb->nblocks < 2 ||
	    sb->region_size != sb->nblocks << DAXFS_BLOCK_SHIFT ||
	    sb->nblocks > (1ULL << 40)) {
		daxfs_seterr("superblock geometry is inconsistent");
		return -EUCLEAN;
	}
	if (sb->region_size > region_size) {
		daxfs_seterr("region is %llu bytes but was formatted for "
			     "%llu; was it truncated?",
			     (unsigned long long)region_size,
			     (unsigned long long)sb->region_size);
		return -EUCLEAN;
	}
	if (sb->data_align < DAXFS_BLOCK_SIZE ||
	    (sb->data_align & (sb->data_align - 1)) ||
	    sb->data_align > (1ULL << 30)) {
		daxfs_seterr("superblock alignment %llu is invalid",
			     (unsigned long long)sb->data_align);
		return -EUCLEAN;
	}
	/* bounding each area by the region keeps the sums below from
	 * wrapping around (a crafted itable_blocks near 2^64 would) */
	if (sb->bitmap_blocks > sb->nblocks || sb->itable_blocks > sb->nblocks) {
		daxfs_seterr("superblock layout is inconsistent");
		return -EUCLEAN;
	}
	meta_end = sb->itable_start + sb->itable_blocks;
	if (sb->bitmap_start != 1 ||
	    sb->bitmap_blocks * 8ULL * DAXFS_BLOCK_SIZE < sb->nblocks ||
	    sb->journal_start != sb->bitmap_start + sb->bitmap_blocks ||
	    sb->journal_blocks < 2 || sb->journal_blocks > (1ULL << 20) ||
	    sb->itable_start != sb->journal_start + sb->journal_blocks ||
	    sb->ninodes < 2 || sb->ninodes > (1ULL << 40) ||
	    sb->itable_blocks * DAXFS_BLOCK_SIZE <
		sb->ninodes * DAXFS_INODE_SIZE ||
	    sb->data_start < meta_end ||
	    sb->data_start % (sb->data_align >> DAXFS_BLOCK_SHIFT) ||
	    sb->data_start >= sb->nblocks - 1 ||
	    sb->backup_block != sb->nblocks - 1 ||
	    sb->root_ino != DAXFS_ROOT_INO ||
	    sb->free_blocks > sb->nblocks || sb->free_inodes > sb->ninodes) {
		daxfs_seterr("superblock layout is inconsistent");
		return -EUCLEAN;
	}
	if (sb->state != DAXFS_STATE_CLEAN &&
	    sb->state != DAXFS_STATE_MOUNTED) {
		daxfs_seterr("superblock state %u is unknown", sb->state);
		return -EUCLEAN;
	}
	return 0;
}

/* super_has_magic -- does either superblock slot look like daxfs? */
bool super_has_magic(struct region *r)
{
	uint64_t m = 0;

	if (region_read(r, 0, &m, sizeof(m)) == 0 && m == DAXFS_SB_MAGIC)
		return true;
	if (r->size >= 2 * DAXFS_BLOCK_SIZE &&
	    region_read(r, ALIGN_DOWN(r->size, DAXFS_BLOCK_SIZE) -
			DAXFS_BLOCK_SIZE, &m, sizeof(m)) == 0 &&
	    m == DAXFS_SB_MAGIC)
		return true;
	return false;
}

/*
 * super_read -- the primary superblock, or the backup in the region's last
 * block when the primary is damaged.  *used_backup says which was taken.
 */
int super_read(struct region *r, struct daxfs_dsb *sb, bool *used_backup)
{
	char why[320];
	struct daxfs_dsb b;
	uint64_t boff, last, cand[2];
	int ret, bret, ncand = 0;

	*used_backup = false;
	ret = region_read(r, 0, sb, sizeof(*sb));
	if (ret) {
		daxfs_seterr("cannot read the superblock: %s", strerror(-ret));
		return ret;
	}
	ret = super_check(sb, r->size);
	if (!ret || ret == -EPROTONOSUPPORT)
		return ret;
	snprintf(why, sizeof(why), "%s", daxfs_errmsg(ret));

	/* the backup is where the primary says, and in the last block: the
	 * primary failed its checks, so its pointer may be the damage */
	last = ALIGN_DOWN(r->size, DAXFS_BLOCK_SIZE) - DAXFS_BLOCK_SIZE;
	if (sb->magic == DAXFS_SB_MAGIC && sb->backup_block > 0 &&
	    sb->backup_block < (r->size >> DAXFS_BLOCK_SHIFT))
		cand[ncand++] = FS_BLOCK_OFF(sb->backup_block);
	if (!ncand || cand[0] != last)
		cand[ncand++] = last;
	memset(&b, 0, sizeof(b));
	bret = -EUCLEAN;
	for (int k = 0; k < ncand && bret != -EPROTONOSUPPORT; k++) {
		boff = cand[k];
		bret = region_read(r, boff, &b, sizeof(b));
		if (!bret)
			bret = super_check(&b, r->size);
		if (!bret && b.backup_block << DAXFS_BLOCK_SHIFT == boff) {
			*sb = b;
			*used_backup = true;
			return 0;
		}
	}
	if (bret == -EPROTONOSUPPORT)
		return bret;
	if (ret == -EINVAL && sb->magic != DAXFS_SB_MAGIC &&
	    b.magic != DAXFS_SB_MAGIC) {
		daxfs_seterr("%s", why);
		return -EINVAL;
	}
	daxfs_seterr("primary superblock is damaged (%s) and the backup is "
		     "unusable: neither a mount nor fsck can use this region; "
		     "restore it from a copy or reformat it", why);
	return -EUCLEAN;
}

/* super_write -- seal and persist the primary, then the backup */
int super_write(struct region *r, struct daxfs_dsb *sb)
{
	int ret;

	super_set_crc(sb);
	ret = region_write(r, 0, sb, sizeof(*sb));
	if (!ret)
		ret = region_persist(r, 0, sizeof(*sb));
	if (!ret)
		ret = region_write(r, FS_BLOCK_OFF(sb->backup_block), sb,
				   sizeof(*sb));
	if (!ret)
		ret = region_persist(r, FS_BLOCK_OFF(sb->backup_block),
				     sizeof(*sb));
	return ret;
}

/* zero_range -- zero a byte range: punch a hole in a file region, or store
 * zeroes on a device */
static int zero_range(struct region *r, uint64_t off, uint64_t len)
{
	int ret;

	if (r->kind == REGION_KIND_FILE && !r->tracer &&
	    fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	for (uint64_t d = 0; d < len; d += 64ULL << 20) {
		uint64_t n = MIN(64ULL << 20, len - d);

		ret = region_zero(r, off + d, n);
		if (!ret)
			ret = region_flush(r, off + d, n);
		if (ret)
			return ret;
	}
	return region_drain(r);
}

static int set_bits(struct region *r, const struct daxfs_dsb *sb,
		    uint64_t start, uint64_t count)
{
	uint64_t words = sb->bitmap_blocks * DAXFS_BLOCK_SIZE / 8;
	uint64_t *map = calloc(words, 8);
	int ret;

	if (!map)
		return -ENOMEM;
	for (uint64_t b = start; b < start + count; b++)
		map[b / 64] |= 1ULL << (b % 64);
	map[sb->backup_block / 64] |= 1ULL << (sb->backup_block % 64);
	/* bits past the end of the region never name a block: in use */
	for (uint64_t b = sb->nblocks; b < words * 64; b++)
		map[b / 64] |= 1ULL << (b % 64);
	ret = region_write(r, FS_BLOCK_OFF(sb->bitmap_start), map, words * 8);
	free(map);
	return ret;
}

void fs_now(uint64_t *sec, uint32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = (uint64_t)ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

/*
 * daxfs_mkfs -- format a locked, mapped region.  Writes everything below
 * data_start, the root directory and both superblocks; leaves the data
 * area alone (blocks are zeroed when they are allocated).
 */
int daxfs_mkfs(struct region *r, const struct mkfs_opts *o)
{
	struct daxfs_dsb sb;
	struct daxfs_jsb jsb;
	struct daxfs_dinode root;
	uint64_t size = o->size ? o->size : r->size;
	uint64_t now;
	uint32_t nsec;
	int ret;

	memset(&sb, 0, sizeof(sb));
	if (size > r->size)
		size = r->size;
	ret = super_geometry(size, r->align, o->ninodes, &sb);
	if (ret == -ENOSPC || (!ret && size < super_min_size(r->align,
							     o->ninodes))) {
		char a[32];

		daxfs_seterr("region is too small%s; the minimum is %s",
			     o->ninodes ? " for that many inodes" : "",
			     format_size(super_min_size(r->align, o->ninodes),
					 a, sizeof(a)));
		return -ENOSPC;
	}
	if (ret) {
		daxfs_seterr("cannot lay out %llu inodes in this region",
			     (unsigned long long)o->ninodes);
		return ret;
	}
	if (o->label && strlen(o->label) >= DAXFS_LABEL_MAX) {
		daxfs_seterr("label is longer than %d bytes",
			     DAXFS_LABEL_MAX - 1);
		return -ENAMETOOLONG;
	}
	fs_now(&now, &nsec);
	sb.magic = DAXFS_SB_MAGIC;
	sb.version_major = DAXFS_VERSION_MAJOR;
	sb.version_minor = DAXFS_VERSION_MINOR;
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
		for (size_t i = 0; i < sizeof(sb.uuid); i++)
			sb.uuid[i] = (uint8_t)(rand() ^ (int)(now >> i));
	}
	sb.uuid[6] = (uint8_t)((sb.uuid[6] & 0x0f) | 0x40);	/* v4 */
	sb.uuid[8] = (uint8_t)((sb.uuid[8] & 0x3f) | 0x80);
	if (o->label)
		memcpy(sb.label, o->label, strlen(o->label));
	sb.free_blocks = sb.nblocks - sb.data_start - 1;
	sb.free_inodes = sb.ninodes - 2;	/* slot 0 and the root */
	sb.state = DAXFS_STATE_CLEAN;
	sb.mkfs_time = now;
	sb.write_time = now;

	/* invalidate the old superblocks first: a crash mid-mkfs must not
	 * leave an old filesystem that looks valid over new metadata */
	ret = zero_range(r, 0, DAXFS_BLOCK_SIZE);
	if (!ret)
		ret = zero_range(r, FS_BLOCK_OFF(sb.backup_block),
				 DAXFS_BLOCK_SIZE);
	if (!ret && r->size > sb.region_size &&
	    r->size - sb.region_size >= DAXFS_BLOCK_SIZE)
		ret = zero_range(r, ALIGN_DOWN(r->size, DAXFS_BLOCK_SIZE) -
				 DAXFS_BLOCK_SIZE, DAXFS_BLOCK_SIZE);
	if (!ret)
		ret = zero_range(r, DAXFS_BLOCK_SIZE,
				 FS_BLOCK_OFF(sb.data_start) -
				 DAXFS_BLOCK_SIZE);
	if (!ret)
		ret = set_bits(r, &sb, 0, sb.data_start);
	if (ret)
		return ret;

	memset(&jsb, 0, sizeof(jsb));
	jsb.magic = DAXFS_JSB_MAGIC;
	jsb.seq = 1;
	jsb.log_start = sb.journal_start + 1;
	jsb.log_blocks = sb.journal_blocks - 1;
	jsb.crc = crc32c(0, &jsb, offsetof(struct daxfs_jsb, crc));
	ret = region_write(r, FS_BLOCK_OFF(sb.journal_start), &jsb,
			   sizeof(jsb));
	if (ret)
		return ret;

	memset(&root, 0, sizeof(root));
	root.mode = DAXFS_S_IFDIR | 0755;
	root.uid = o->uid;
	root.gid = o->gid;
	root.nlink = 2;
	root.atime_sec = root.mtime_sec = root.ctime_sec = root.btime_sec =
		now;
	root.atime_nsec = root.mtime_nsec = root.ctime_nsec =
		root.btime_nsec = nsec;
	root.generation = 1;
	root.parent = DAXFS_ROOT_INO;
	dinode_set_crc(&root);
	ret = region_write(r, FS_BLOCK_OFF(sb.itable_start) +
			   DAXFS_ROOT_INO * DAXFS_INODE_SIZE, &root,
			   sizeof(root));
	if (!ret)
		ret = region_persist(r, 0, FS_BLOCK_OFF(sb.data_start));
	if (!ret)
		ret = super_write(r, &sb);
	return ret;
}
