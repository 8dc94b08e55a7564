/*
 * fsck_space.c -- free space for the checker: finding and taking blocks
 * a repair needs (copies of shared blocks, directory growth, extent
 * arrays), and the last pass, which compares the shadow bitmap of owned
 * blocks with the region's bitmap and settles the superblock's counters
 * and state.
 *
 * Owns: c->bitmap (the region's bitmap as our repairs change it).  Must
 * never: hand out a block that anything still owns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsck.h"

#define BS		DAXFS_BLOCK_SIZE
#define EXTSZ		sizeof(struct daxfs_dextent)
#define EXT_MAX_LEN	(1ULL << 19)	/* extent.c builds none longer */
#define COPY_CHUNK	256ULL		/* blocks per copy step */

/* run_at -- free blocks in owned from b, up to want */
static uint64_t run_at(const struct fsck *c, uint64_t b, uint64_t want)
{
	uint64_t n = 0;

	while (n < want && b + n < c->nblocks - 1 &&
	       !bitmap_test(c->owned, b + n))
		n++;
	return n;
}

/* fsck_alloc_run -- len free contiguous data blocks, at goal if it can */
int fsck_alloc_run(struct fsck *c, uint64_t goal, uint64_t len,
		   uint64_t *start)
{
	if (!len || len > c->nblocks)
		return -ENOSPC;
	if (goal >= c->data_start && run_at(c, goal, len) == len) {
		*start = goal;
		return 0;
	}
	/* from where the last search ended, then once more from the start */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t b = pass ? c->data_start :
			     MAX(c->alloc_hint, c->data_start);

		while (b < c->nblocks - 1) {
			uint64_t n;

			if (b % 64 == 0 && c->owned[b / 64] == ~0ULL) {
				b += 64;
				continue;
			}
			n = run_at(c, b, len);
			if (n == len) {
				*start = b;
				c->alloc_hint = b + len;
				return 0;
			}
			b += n + 1;
		}
	}
	return -ENOSPC;
}

/* fsck_take -- blocks become owned, and in use in the bitmap */
void fsck_take(struct fsck *c, uint64_t start, uint64_t len)
{
	bitmap_set(c->owned, start, len, true);
	bitmap_set(c->bitmap, start, len, true);
	c->bitmap_dirty = true;
}

/* fsck_release -- blocks nothing owns any more become free */
void fsck_release(struct fsck *c, uint64_t start, uint64_t len)
{
	bitmap_set(c->owned, start, len, false);
	bitmap_set(c->bitmap, start, len, false);
	c->bitmap_dirty = true;
}

/* fsck_copy_blocks -- copy len blocks (the ranges do not overlap) */
int fsck_copy_blocks(struct fsck *c, uint64_t from, uint64_t to,
		     uint64_t len)
{
	uint8_t *buf = malloc(COPY_CHUNK * BS);
	int ret = 0;

	if (!buf)
		return fsck_fail(c, -ENOMEM);
	for (uint64_t d = 0; d < len && !ret; d += COPY_CHUNK) {
		uint64_t n = MIN(COPY_CHUNK, len - d);

		ret = fsck_read(c, FS_BLOCK_OFF(from + d), buf,
				FS_BLOCK_OFF(n));
		if (!ret)
			ret = fsck_write(c, FS_BLOCK_OFF(to + d), buf,
					 FS_BLOCK_OFF(n));
	}
	free(buf);
	return ret;
}

/* zero_block -- a block about to be linked in */
static int zero_block(struct fsck *c, uint64_t b)
{
	int ret = region_zero(c->r, FS_BLOCK_OFF(b), BS);

	if (!ret)
		ret = region_persist(c->r, FS_BLOCK_OFF(b), BS);
	if (ret == -EIO)
		fsck_fail(c, ret);
	return ret;
}

/* pack -- an extent in its on-region form */
static void pack(const struct extent *e, struct daxfs_dextent *o)
{
	memset(o, 0, sizeof(*o));
	o->lblk = e->lblk;
	o->pblk = e->pblk;
	o->len = (uint32_t)e->len;
}

/* store_entry -- write extent k of a directory where it lives */
static int store_entry(struct fsck *c, struct fdir *f,
		       struct daxfs_dinode *d, uint32_t k)
{
	struct daxfs_dextent x;

	pack(&f->ext[k], &x);
	if (!d->ext_block) {
		memcpy(d->inl + (size_t)k * EXTSZ, &x, EXTSZ);
		return 0;
	}
	return fsck_write(c, FS_BLOCK_OFF(d->ext_block) +
			  sizeof(struct daxfs_dextarray) + (uint64_t)k * EXTSZ,
			  &x, EXTSZ);
}

/* new_array -- move a directory's whole list into a new extent array */
static int new_array(struct fsck *c, struct fdir *f, struct daxfs_dinode *d)
{
	uint64_t want = DIV_ROUND_UP(sizeof(struct daxfs_dextarray) +
				     (uint64_t)MAX(f->next * 2, 64) * EXTSZ,
				     BS);
	uint64_t start, bytes = FS_BLOCK_OFF(want);
	struct daxfs_dextarray *h;
	uint8_t *buf;
	int ret;

	ret = fsck_alloc_run(c, 0, want, &start);
	if (ret)
		return ret;
	buf = calloc(1, bytes);
	if (!buf)
		return fsck_fail(c, -ENOMEM);
	h = (void *)buf;
	h->magic = DAXFS_EXT_MAGIC;
	h->ino = f->ino;
	h->cap = DAXFS_EXT_PER_ARRAY(want);
	for (uint32_t k = 0; k < f->next; k++)
		pack(&f->ext[k], (struct daxfs_dextent *)(void *)
		     (buf + sizeof(*h) + (size_t)k * EXTSZ));
	ret = fsck_write(c, FS_BLOCK_OFF(start), buf, bytes);
	free(buf);
	if (ret)
		return ret;
	fsck_take(c, start, want);
	if (d->ext_block) {
		fsck_release(c, d->ext_block, d->ext_blocks);
		d->blocks -= d->ext_blocks;
	}
	d->ext_block = start;
	d->ext_blocks = (uint32_t)want;
	d->blocks += want;
	memset(d->inl, 0, sizeof(d->inl));
	return 0;
}

/* fsck_dir_grow -- add a zeroed block at the end of a directory */
int fsck_dir_grow(struct fsck *c, struct fdir *f)
{
	struct extent *last = f->next ? &f->ext[f->next - 1] : NULL;
	uint64_t goal = last ? last->pblk + last->len : 0, b;
	struct daxfs_dinode d;
	bool extend;
	int ret;

	if (f->nb >= UINT32_MAX / DAXFS_SLOTS_PER_BLOCK)
		return -ENOSPC;
	ret = fsck_inode_read(c, f->ino, &d);
	if (ret)
		return ret;
	extend = last && last->len < EXT_MAX_LEN &&
		 run_at(c, goal, 1) == 1;
	if (extend)
		b = goal;
	else if ((ret = fsck_alloc_run(c, goal, 1, &b)))
		return ret;
	ret = zero_block(c, b);
	if (ret)
		return ret;
	fsck_take(c, b, 1);		/* before new_array looks for room */
	if (extend) {
		last->len++;
		ret = store_entry(c, f, &d, f->next - 1);
		if (ret)
			last->len--;
	} else {
		struct extent *v = realloc(f->ext, (f->next + 1) * sizeof(*v));

		if (!v) {
			fsck_release(c, b, 1);
			return fsck_fail(c, -ENOMEM);
		}
		f->ext = v;
		f->ext[f->next++] = (struct extent){ f->nb, b, 1 };
		if (!d.ext_block && f->next <= DAXFS_INLINE_EXTENTS)
			ret = store_entry(c, f, &d, f->next - 1);
		else if (d.ext_block &&
			 f->next <= DAXFS_EXT_PER_ARRAY(d.ext_blocks))
			ret = store_entry(c, f, &d, f->next - 1);
		else
			ret = new_array(c, f, &d);
		if (ret)
			f->next--;
	}
	if (ret) {
		fsck_release(c, b, 1);
		return ret;
	}
	d.nextents = f->next;
	d.size += BS;
	d.blocks++;
	ret = fsck_inode_write(c, f->ino, &d);
	if (!ret)
		f->nb++;
	return ret;
}

/* ranges -- "12-15, 40, ..." for the bits of (a & ~b) in [lo, hi) */
static uint64_t ranges(const uint64_t *a, const uint64_t *b, uint64_t lo,
		       uint64_t hi, char *out, size_t cap)
{
	uint64_t count = 0, shown = 0;
	size_t o = 0;

	out[0] = '\0';
	for (uint64_t x = lo; x < hi;) {
		uint64_t w = x / 64;
		uint64_t s;

		if (x % 64 == 0 && !(a[w] & ~b[w])) {
			x += 64;
			continue;
		}
		if (!bitmap_test(a, x) || bitmap_test(b, x)) {
			x++;
			continue;
		}
		s = x;
		while (x < hi && bitmap_test(a, x) && !bitmap_test(b, x))
			x++;
		count += x - s;
		if (shown++ < 8 && o + 48 < cap) {
			o += (size_t)snprintf(out + o, cap - o, "%s%llu",
					      o ? ", " : "",
					      (unsigned long long)s);
			if (x - s > 1)
				o += (size_t)snprintf(out + o, cap - o, "-%llu",
						(unsigned long long)(x - 1));
		} else if (shown == 9 && o + 8 < cap) {
			o += (size_t)snprintf(out + o, cap - o, ", ...");
		}
	}
	return count;
}

/* settle_super -- counters and state at the end of a repair */
static int settle_super(struct fsck *c, uint64_t free_blocks,
			uint64_t free_inodes, bool *wrote)
{
	struct daxfs_dsb sb = c->sb;
	bool clean_now = c->unfixed == 0 && !c->fatal;

	*wrote = false;
	if (sb.state != DAXFS_STATE_CLEAN && !clean_now)
		return 0;
	sb.state = DAXFS_STATE_CLEAN;
	sb.free_blocks = free_blocks;
	sb.free_inodes = free_inodes;
	if (sb.state == c->sb.state && sb.free_blocks == c->sb.free_blocks &&
	    sb.free_inodes == c->sb.free_inodes)
		return 0;
	sb.write_time = (uint64_t)time(NULL);
	*wrote = true;
	if (super_write(c->r, &sb))
		return fsck_fail(c, -EIO);
	c->changed = true;
	c->sb = sb;
	return 0;
}

/*
 * fsck_pass_space -- the last pass: owned blocks against the bitmap, then
 * the superblock's counters and state.
 */
int fsck_pass_space(struct fsck *c)
{
	uint64_t leaked, lost, tail, nb = c->nblocks, fb, fi;
	uint64_t sb_fb = c->sb.free_blocks, sb_fi = c->sb.free_inodes;
	uint32_t was = c->sb.state;
	bool counts_bad, wrote;
	char buf[512];
	int ret = 0;

	if (c->repair && c->changed && fsck_rebuild_owned(c))
		return c->fatal;
	leaked = ranges(c->bitmap, c->owned, 0, nb, buf, sizeof(buf));
	if (leaked)
		fsck_problem(c, 0, "marked free", "free-space bitmap: %llu "
			     "blocks in use but owned by nothing (leaked): %s",
			     (unsigned long long)leaked, buf);
	lost = ranges(c->owned, c->bitmap, 0, nb, buf, sizeof(buf));
	if (lost)
		fsck_problem(c, 0, "marked in use", "free-space bitmap: %llu "
			     "blocks owned but marked free: %s",
			     (unsigned long long)lost, buf);
	tail = ranges(c->owned, c->bitmap, nb, c->nwords * 64, buf,
		      sizeof(buf));
	if (tail)
		fsck_problem(c, 0, "set", "free-space bitmap: %llu bits past "
			     "the end of the region are clear",
			     (unsigned long long)tail);
	if (c->repair && (leaked || lost || tail || c->bitmap_dirty)) {
		ret = fsck_write(c, FS_BLOCK_OFF(c->sb.bitmap_start), c->owned,
				 c->nwords * 8);
		if (ret)
			return fsck_fail(c, ret);
		memcpy(c->bitmap, c->owned, c->nwords * 8);
	}
	fb = fsck_free_count(c->owned, nb);
	fi = c->ninodes - 1 - c->res->inodes;
	c->res->data_blocks = nb - c->data_start - 1;
	c->res->used_data_blocks = c->res->data_blocks -
				   MIN(fb, c->res->data_blocks);

	counts_bad = was == DAXFS_STATE_CLEAN &&
		     (sb_fb != c->free_read ||
		      sb_fi != c->ninodes - 1 - c->used_read);
	if (was != DAXFS_STATE_CLEAN && !c->repair)
		fsck_note(c, "region was not cleanly unmounted; its free "
			  "counts are not checked");
	wrote = false;
	if (c->repair)
		ret = settle_super(c, fb, fi, &wrote);
	if (counts_bad)
		fsck_problem(c, ret, NULL, "superblock free counts are wrong "
			     "(%llu blocks and %llu inodes, found %llu and "
			     "%llu)", (unsigned long long)sb_fb,
			     (unsigned long long)sb_fi,
			     (unsigned long long)c->free_read,
			     (unsigned long long)(c->ninodes - 1 -
						  c->used_read));
	if (c->repair && wrote && was != DAXFS_STATE_CLEAN) {
		c->res->marked_clean = true;
		fsck_note(c, "region was not cleanly unmounted; marked clean");
	}
	return c->fatal;
}
