/*
 * alloc.c -- free space.
 *
 * Two bitmaps in memory: `committed` mirrors the on-region bitmap (what a
 * crash would leave), `inuse` adds the blocks writers have reserved but
 * not yet committed.  Allocation searches `inuse`; a transaction moves its
 * reservations into `committed` and logs the words it changed.  Freed
 * blocks leave `committed` at commit and `inuse` only after it, so they
 * are never reused before the free is durable.
 *
 * Placement.  The region is divided into chunks of the device alignment
 * (2 MiB on a typical devdax).  Big requests take whole free chunks, so
 * large files sit in aligned extents that can be mapped with huge pages;
 * small requests first fill chunks that are already partly used, so small
 * files do not each break open a fresh chunk.  Both try the block after the
 * file's last one first, to keep files contiguous.
 *
 * Owns: fs->alloc.  Must never: touch the region (the journal does).
 * Callers hold meta_lock exclusive.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs_i.h"

/* bitmap_set -- set (on) or clear a range of bits */
void bitmap_set(uint64_t *map, uint64_t start, uint64_t len, bool on)
{
	uint64_t b = start, end = start + len;

	while (b < end) {
		uint64_t w = b / 64, bit = b % 64;
		uint64_t n = MIN(64 - bit, end - b);
		uint64_t mask = (n == 64) ? ~0ULL : ((1ULL << n) - 1) << bit;

		if (on)
			map[w] |= mask;
		else
			map[w] &= ~mask;
		b += n;
	}
}

static uint64_t chunk_size(const struct alloc *a, const struct daxfs *fs,
			   uint64_t c)
{
	uint64_t s = c * a->chunk_blocks;

	return MIN(a->chunk_blocks, fs->nblocks - s);
}

/* count_free -- free blocks of inuse in [start, start+len) */
static uint64_t count_free(const uint64_t *map, uint64_t start, uint64_t len)
{
	uint64_t n = 0;

	for (uint64_t b = start; b < start + len;) {
		if (b % 64 == 0 && start + len - b >= 64) {
			n += 64 - (uint64_t)__builtin_popcountll(map[b / 64]);
			b += 64;
		} else {
			n += !bitmap_test(map, b);
			b++;
		}
	}
	return n;
}

/* alloc_init -- load the bitmap and build the chunk summary */
int alloc_init(struct daxfs *fs)
{
	struct alloc *a = &fs->alloc;
	int ret;

	a->nwords = DIV_ROUND_UP(fs->nblocks, 64);
	a->committed = malloc(a->nwords * 8);
	a->inuse = malloc(a->nwords * 8);
	a->chunk_blocks = fs->align_blocks;
	a->nchunks = DIV_ROUND_UP(fs->nblocks, a->chunk_blocks);
	a->chunk_free = calloc(a->nchunks, sizeof(*a->chunk_free));
	if (!a->committed || !a->inuse || !a->chunk_free) {
		alloc_free_all(fs);
		return -ENOMEM;
	}
	ret = region_read(fs->r, fs->bitmap_off, a->committed, a->nwords * 8);
	if (ret) {
		alloc_free_all(fs);
		return ret;
	}
	/* bits past the last block are never free */
	if (fs->nblocks % 64)
		a->committed[a->nwords - 1] |= ~0ULL << (fs->nblocks % 64);
	for (uint64_t b = 0; b < fs->data_start; b += 64) {
		uint64_t n = MIN(64, fs->data_start - b);

		if (count_free(a->committed, b, n)) {
			daxfs_seterr("free-space bitmap marks metadata blocks "
				     "free; run 'daxfsctl fsck --repair'");
			alloc_free_all(fs);
			return -EUCLEAN;
		}
	}
	if (!bitmap_test(a->committed, fs->nblocks - 1)) {
		daxfs_seterr("free-space bitmap marks the backup superblock "
			     "free; run 'daxfsctl fsck --repair'");
		alloc_free_all(fs);
		return -EUCLEAN;
	}
	memcpy(a->inuse, a->committed, a->nwords * 8);
	a->free = 0;
	for (uint64_t c = 0; c < a->nchunks; c++) {
		a->chunk_free[c] = (uint32_t)count_free(a->inuse,
					c * a->chunk_blocks,
					chunk_size(a, fs, c));
		a->free += a->chunk_free[c];
	}
	a->cursor_small = fs->data_start / a->chunk_blocks;
	a->cursor_big = a->cursor_small;
	return 0;
}

void alloc_free_all(struct daxfs *fs)
{
	free(fs->alloc.committed);
	free(fs->alloc.inuse);
	free(fs->alloc.chunk_free);
	memset(&fs->alloc, 0, sizeof(fs->alloc));
}

/* take -- mark [start, start+len) reserved in inuse */
static void take(struct daxfs *fs, uint64_t start, uint64_t len)
{
	struct alloc *a = &fs->alloc;

	bitmap_set(a->inuse, start, len, true);
	a->free -= len;
	for (uint64_t b = start; b < start + len;) {
		uint64_t c = b / a->chunk_blocks;
		uint64_t end = MIN(start + len, (c + 1) * a->chunk_blocks);

		a->chunk_free[c] -= (uint32_t)(end - b);
		b = end;
	}
}

/* run_from -- length of the free run at b, up to max */
static uint64_t run_from(const struct daxfs *fs, uint64_t b, uint64_t max)
{
	uint64_t n = 0;

	while (n < max && b + n < fs->nblocks &&
	       !bitmap_test(fs->alloc.inuse, b + n))
		n++;
	return n;
}

/* first_free_in -- first free block of chunk c at or after b, or ~0 */
static uint64_t first_free_in(const struct daxfs *fs, uint64_t c)
{
	const struct alloc *a = &fs->alloc;
	uint64_t b = c * a->chunk_blocks;
	uint64_t end = b + chunk_size(a, fs, c);

	while (b < end) {
		uint64_t w = a->inuse[b / 64] | ((1ULL << (b % 64)) - 1);

		if (w != ~0ULL) {
			uint64_t f = (b & ~63ULL) +
				     (uint64_t)__builtin_ctzll(~w);

			return f < end ? f : ~0ULL;
		}
		b = (b & ~63ULL) + 64;
	}
	return ~0ULL;
}

/*
 * alloc_reserve -- reserve up to `want` contiguous blocks.  Gets at least
 * one or fails with -ENOSPC.  The result is in out; it becomes durable
 * through tx_alloc() or goes back with alloc_unreserve().
 */
int alloc_reserve(struct daxfs *fs, uint64_t goal, uint64_t want,
		  unsigned flags, struct tx_range *out)
{
	struct alloc *a = &fs->alloc;
	uint64_t cb = a->chunk_blocks, n, c;

	if (!want)
		return -EINVAL;
	if (!a->free)
		return -ENOSPC;

	/* 1. right after the file's last block */
	if (goal >= fs->data_start && goal < fs->nblocks &&
	    !bitmap_test(a->inuse, goal)) {
		n = run_from(fs, goal, want);
		if (n == want || n >= cb || !(flags & ALLOC_BIG)) {
			take(fs, goal, n);
			*out = (struct tx_range){ goal, n };
			return 0;
		}
	}

	/* 2. big: whole free chunks, as many in a row as wanted */
	if ((flags & ALLOC_BIG) && want >= cb) {
		for (uint64_t k = 0; k < a->nchunks; k++) {
			c = (a->cursor_big + k) % a->nchunks;
			if (a->chunk_free[c] != cb || c * cb < fs->data_start)
				continue;
			n = run_from(fs, c * cb, want);
			a->cursor_big = c;
			take(fs, c * cb, n);
			*out = (struct tx_range){ c * cb, n };
			return 0;
		}
	}

	/* 3. small: fill chunks already in use; then open a free one */
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t k = 0; k < a->nchunks; k++) {
			uint64_t f;

			c = (a->cursor_small + k) % a->nchunks;
			if (!a->chunk_free[c])
				continue;
			if (pass == 0 && a->chunk_free[c] ==
					 chunk_size(a, fs, c))
				continue;
			f = first_free_in(fs, c);
			if (f == ~0ULL)
				continue;
			n = run_from(fs, f, want);
			a->cursor_small = c;
			take(fs, f, n);
			*out = (struct tx_range){ f, n };
			return 0;
		}
	}
	return -ENOSPC;
}

/* alloc_unreserve -- give reserved (or freed and committed) blocks back */
void alloc_unreserve(struct daxfs *fs, uint64_t start, uint64_t len)
{
	struct alloc *a = &fs->alloc;

	bitmap_set(a->inuse, start, len, false);
	a->free += len;
	for (uint64_t b = start; b < start + len;) {
		uint64_t c = b / a->chunk_blocks;
		uint64_t end = MIN(start + len, (c + 1) * a->chunk_blocks);

		a->chunk_free[c] += (uint32_t)(end - b);
		b = end;
	}
}

/* alloc_release -- a committed free: the blocks may be reused now */
void alloc_release(struct daxfs *fs, uint64_t start, uint64_t len)
{
	alloc_unreserve(fs, start, len);
}

/* alloc_commit -- set or clear a range in the committed map */
void alloc_commit(struct daxfs *fs, uint64_t start, uint64_t len,
		  bool allocate)
{
	bitmap_set(fs->alloc.committed, start, len, allocate);
}
