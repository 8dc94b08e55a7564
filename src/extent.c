/*
 * extent.c -- a file's block map: sorted, non-overlapping extents, up to
 * five inline in the dinode, beyond that in an external array.
 *
 * In memory the whole list is one sorted array (inode->ext), loaded on
 * first use.  A change is planned before anything is touched -- inline,
 * logged in place in the array, or a copy-on-write of the array into new
 * blocks when it must grow or a shift would make the transaction large --
 * so that the only step that can fail (allocating a new array) fails
 * before memory and region disagree.
 *
 * Owns: inode->ext and the on-region extent arrays.  Must never: store to
 * a reachable array except through the journal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs_i.h"

#define EXT_MAX_LEN	(1ULL << 19)	/* 2 GiB: bounds one free's bitmap */
#define EXT_MAX_END	(1ULL << 38)	/* file.c's MAX_FILE_SIZE, in blocks */
#define SHIFT_MAX	(64u << 10)	/* log at most this much of an array */
#define EXTSZ		sizeof(struct daxfs_dextent)

static int check_list(const struct extent *e, uint32_t n, uint64_t ds,
		      uint64_t nb, uint64_t ino)
{
	for (uint32_t k = 0; k < n; k++) {
		if (!e[k].len || e[k].len > UINT32_MAX ||
		    e[k].pblk < ds || e[k].pblk >= nb - 1 ||
		    e[k].len > nb - 1 - e[k].pblk ||
		    e[k].lblk + e[k].len < e[k].lblk ||
		    /* no file reaches past this; a damaged list that did
		     * would overflow byte offsets (a read that never ends) */
		    e[k].lblk + e[k].len > EXT_MAX_END ||
		    (k && e[k].lblk < e[k - 1].lblk + e[k - 1].len)) {
			daxfs_seterr("inode %llu: extent %u is invalid",
				     (unsigned long long)ino, k);
			return -EUCLEAN;
		}
	}
	return 0;
}

/*
 * ext_array_check -- the header of inode ino's out-of-line extent array,
 * which must hold its n extents: 0, or -EUCLEAN with the reason set.  The
 * mount and fsck judge it the same way.
 */
int ext_array_check(const struct daxfs_dextarray *h,
		    const struct daxfs_dinode *d, uint64_t ino, uint32_t n)
{
	if (h->magic != DAXFS_EXT_MAGIC || h->ino != ino ||
	    h->cap != DAXFS_EXT_PER_ARRAY(d->ext_blocks) || n > h->cap ||
	    !mem_is_zero(h->reserved, sizeof(h->reserved))) {
		daxfs_seterr("inode %llu: extent array header is damaged",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	return 0;
}

/* ext_read -- the extent list of a dinode from the region */
static int ext_read(struct region *r, const struct daxfs_dinode *d,
		    uint64_t ino, uint64_t ds, uint64_t nb,
		    struct extent **out, uint32_t *n_out)
{
	uint32_t n = d->nextents;
	struct daxfs_dextent *raw;
	struct extent *e;
	int ret = 0;

	*out = NULL;
	*n_out = 0;
	if (d->flags & DAXFS_IF_INLINE)
		return 0;
	if (!n)
		return 0;
	raw = malloc((size_t)n * EXTSZ);
	e = malloc((size_t)n * sizeof(*e));
	if (!raw || !e) {
		free(raw);
		free(e);
		return -ENOMEM;
	}
	if (!d->ext_block) {
		if (n > DAXFS_INLINE_EXTENTS) {
			daxfs_seterr("inode %llu: too many inline extents",
				     (unsigned long long)ino);
			ret = -EUCLEAN;
		} else
			memcpy(raw, d->inl, (size_t)n * EXTSZ);
	} else {
		struct daxfs_dextarray h;

		ret = region_read(r, FS_BLOCK_OFF(d->ext_block), &h,
				  sizeof(h));
		if (!ret)
			ret = ext_array_check(&h, d, ino, n);
		if (!ret)
			ret = region_read(r, FS_BLOCK_OFF(d->ext_block) +
					  sizeof(h), raw, (uint64_t)n * EXTSZ);
	}
	for (uint32_t k = 0; k < n && !ret; k++) {
		if (raw[k].reserved) {
			daxfs_seterr("inode %llu: extent %u has reserved bits",
				     (unsigned long long)ino, k);
			ret = -EUCLEAN;
			break;
		}
		e[k].lblk = raw[k].lblk;
		e[k].pblk = raw[k].pblk;
		e[k].len = raw[k].len;
	}
	if (!ret)
		ret = check_list(e, n, ds, nb, ino);
	free(raw);
	if (ret) {
		free(e);
		return ret;
	}
	*out = e;
	*n_out = n;
	return 0;
}

/* ext_read_fs -- ext_read bounded by a mounted filesystem's geometry */
int ext_read_fs(const struct daxfs *fs, const struct daxfs_dinode *d,
		uint64_t ino, struct extent **out, uint32_t *n)
{
	return ext_read(fs->r, d, ino, fs->data_start, fs->nblocks, out, n);
}

/* ext_load -- bring an inode's extents into memory */
int ext_load(struct daxfs *fs, struct inode *i)
{
	struct extent *e;
	uint32_t n;
	int ret;

	if (i->ext_loaded)
		return 0;
	ret = ext_read_fs(fs, &i->d, i->ino, &e, &n);
	if (ret)
		return ret;
	i->ext = e;
	i->next = n;
	i->ext_cap = n;
	i->ext_loaded = true;
	return 0;
}

void ext_unload(struct inode *i)
{
	free(i->ext);
	i->ext = NULL;
	i->next = i->ext_cap = 0;
	i->ext_loaded = false;
}

/* find -- index of the first extent ending after lblk (n if none) */
static uint32_t find(const struct inode *i, uint64_t lblk)
{
	uint32_t lo = 0, hi = i->next;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct extent *e = &i->ext[mid];

		if (e->lblk + e->len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * ext_lookup -- where file block lblk lives.  True with pblk and the
 * number of contiguous blocks from there; false for a hole, with len the
 * blocks until the next extent (UINT64_MAX past the last).
 */
bool ext_lookup(const struct inode *i, uint64_t lblk, uint64_t *pblk,
		uint64_t *len)
{
	uint32_t k = find(i, lblk);

	if (k < i->next && i->ext[k].lblk <= lblk) {
		*pblk = i->ext[k].pblk + (lblk - i->ext[k].lblk);
		*len = i->ext[k].len - (lblk - i->ext[k].lblk);
		return true;
	}
	*len = k < i->next ? i->ext[k].lblk - lblk : UINT64_MAX;
	return false;
}

/* ext_last_pblk -- a good place for block lblk: after its neighbour */
uint64_t ext_last_pblk(const struct inode *i, uint64_t lblk)
{
	uint32_t k = find(i, lblk);
	const struct extent *e;

	if (k == 0)
		return 0;
	e = &i->ext[k - 1];
	return e->pblk + e->len + (lblk - (e->lblk + e->len));
}

enum plan { PLAN_INLINE, PLAN_LOG, PLAN_COW };

struct ext_plan {
	enum plan how;
	struct tx_range arr;		/* PLAN_COW: the new array */
};

static uint64_t array_blocks(uint64_t entries)
{
	return DIV_ROUND_UP(sizeof(struct daxfs_dextarray) + entries * EXTSZ,
			    DAXFS_BLOCK_SIZE);
}

/*
 * reserve_run -- exactly `want` contiguous blocks for an extent array.
 * alloc_reserve() hands out the first free run it finds, which in a
 * fragmented region may be shorter; hold such runs aside (so the search
 * moves on) and give them back at the end.
 */
static int reserve_run(struct daxfs *fs, uint64_t want, struct tx_range *out)
{
	struct tx_range *held = NULL, got;
	uint32_t nheld = 0, cap = 0;
	int ret;

	for (;;) {
		ret = alloc_reserve(fs, 0, want, 0, &got);
		if (ret || got.len >= want)
			break;
		if (nheld == cap) {
			uint32_t c = cap ? cap * 2 : 16;
			struct tx_range *n = realloc(held, c * sizeof(*n));

			if (!n) {
				alloc_unreserve(fs, got.start, got.len);
				ret = -ENOMEM;
				break;
			}
			held = n;
			cap = c;
		}
		held[nheld++] = got;
	}
	for (uint32_t k = 0; k < nheld; k++)
		alloc_unreserve(fs, held[k].start, held[k].len);
	free(held);
	if (!ret)
		*out = got;
	return ret;
}

/*
 * plan -- how to store n extents of which [from, n) changed; allocates the
 * new array for a copy-on-write, so it is the step that may fail.
 */
static int plan(struct daxfs *fs, struct tx *tx, struct inode *i, uint32_t n,
		uint32_t from, struct ext_plan *p)
{
	uint32_t cap = i->d.ext_block ? DAXFS_EXT_PER_ARRAY(i->d.ext_blocks)
				      : 0;
	uint64_t want;

	if (n > i->ext_cap) {
		uint32_t c = i->ext_cap ? i->ext_cap : 4;
		struct extent *e;

		while (c < n)
			c *= 2;
		e = realloc(i->ext, c * sizeof(*e));
		if (!e)
			return -ENOMEM;
		i->ext = e;
		i->ext_cap = c;
	}
	if (n <= DAXFS_INLINE_EXTENTS) {
		p->how = PLAN_INLINE;
		return 0;
	}
	if (i->d.ext_block && n <= cap && from <= n &&
	    (uint64_t)(n - from) * EXTSZ <= MIN(SHIFT_MAX, tx_room(tx) / 2)) {
		p->how = PLAN_LOG;
		return 0;
	}
	p->how = PLAN_COW;
	want = array_blocks(MAX((uint64_t)n * 2, 64));
	return reserve_run(fs, want, &p->arr);
}

static void pack(const struct extent *e, uint32_t n, struct daxfs_dextent *o)
{
	for (uint32_t k = 0; k < n; k++) {
		o[k].lblk = e[k].lblk;
		o[k].pblk = e[k].pblk;
		o[k].len = (uint32_t)e[k].len;
		o[k].reserved = 0;
	}
}

/* emit -- store the list as planned; [from, next) changed */
static int emit(struct daxfs *fs, struct tx *tx, struct inode *i,
		uint32_t from, const struct ext_plan *p)
{
	uint32_t n = i->next;
	struct daxfs_dextent *raw;
	int ret = 0;

	switch (p->how) {
	case PLAN_INLINE:
		memset(i->d.inl, 0, sizeof(i->d.inl));
		pack(i->ext, n, (struct daxfs_dextent *)(void *)i->d.inl);
		if (i->d.ext_block) {
			tx_free(tx, i->d.ext_block, i->d.ext_blocks);
			i->d.blocks -= i->d.ext_blocks;
			i->d.ext_block = 0;
			i->d.ext_blocks = 0;
		}
		break;
	case PLAN_LOG:
		if (from >= n)
			break;
		raw = malloc((size_t)(n - from) * EXTSZ);
		if (!raw)
			return -ENOMEM;
		pack(i->ext + from, n - from, raw);
		ret = tx_write(tx, FS_BLOCK_OFF(i->d.ext_block) +
			       sizeof(struct daxfs_dextarray) +
			       (uint64_t)from * EXTSZ, raw,
			       (uint64_t)(n - from) * EXTSZ);
		free(raw);
		break;
	case PLAN_COW: {
		struct daxfs_dextarray h;
		uint64_t off = FS_BLOCK_OFF(p->arr.start);

		memset(&h, 0, sizeof(h));
		h.magic = DAXFS_EXT_MAGIC;
		h.ino = i->ino;
		h.cap = DAXFS_EXT_PER_ARRAY(p->arr.len);
		raw = malloc((size_t)n * EXTSZ);
		if (!raw) {
			alloc_unreserve(fs, p->arr.start, p->arr.len);
			return -ENOMEM;
		}
		pack(i->ext, n, raw);
		/* unreachable until the commit, so no logging needed; it
		 * must be durable before the commit makes it reachable */
		ret = region_write(fs->r, off, &h, sizeof(h));
		if (!ret)
			ret = region_write(fs->r, off + sizeof(h), raw,
					   (uint64_t)n * EXTSZ);
		if (!ret)
			ret = region_persist(fs->r, off,
					     sizeof(h) + (uint64_t)n * EXTSZ);
		free(raw);
		tx_alloc(tx, p->arr.start, p->arr.len);
		if (ret)
			return ret;
		if (i->d.ext_block) {
			tx_free(tx, i->d.ext_block, i->d.ext_blocks);
			i->d.blocks -= i->d.ext_blocks;
		}
		i->d.ext_block = p->arr.start;
		i->d.ext_blocks = (uint32_t)p->arr.len;
		i->d.blocks += p->arr.len;
		memset(i->d.inl, 0, sizeof(i->d.inl));
		break;
	}
	}
	i->d.nextents = n;
	tx_dirty_inode(tx, i);
	return ret ? ret : tx->err;
}

/*
 * ext_insert -- map file blocks [lblk, lblk+len) to region blocks pblk..,
 * which the caller reserved; they become the file's at commit, or go back
 * to the free pool if the transaction is aborted (also after a failure
 * here).  The range must be a hole.
 */
int ext_insert(struct daxfs *fs, struct tx *tx, struct inode *i,
	       uint64_t lblk, uint64_t pblk, uint64_t len)
{
	uint32_t n = i->next, k = find(i, lblk), from, nn;
	struct ext_plan p;
	bool mp, mn;
	int ret;

	if (k < n && i->ext[k].lblk < lblk + len)
		return -EEXIST;		/* not a hole: a caller bug */
	mp = k > 0 && i->ext[k - 1].lblk + i->ext[k - 1].len == lblk &&
	     i->ext[k - 1].pblk + i->ext[k - 1].len == pblk &&
	     i->ext[k - 1].len + len <= EXT_MAX_LEN;
	mn = k < n && lblk + len == i->ext[k].lblk &&
	     pblk + len == i->ext[k].pblk &&
	     i->ext[k].len + len + (mp ? i->ext[k - 1].len : 0) <= EXT_MAX_LEN;
	nn = n + 1 - (mp ? 1 : 0) - (mn ? 1 : 0);
	from = mp ? k - 1 : k;
	/* from here the blocks belong to the transaction: an abort returns
	 * them to the free pool */
	tx_alloc(tx, pblk, len);
	ret = plan(fs, tx, i, nn, from, &p);
	if (ret)
		return ret;
	if (mp && mn) {
		i->ext[k - 1].len += len + i->ext[k].len;
		memmove(&i->ext[k], &i->ext[k + 1],
			(n - k - 1) * sizeof(*i->ext));
	} else if (mp) {
		i->ext[k - 1].len += len;
	} else if (mn) {
		i->ext[k].lblk = lblk;
		i->ext[k].pblk = pblk;
		i->ext[k].len += len;
	} else {
		memmove(&i->ext[k + 1], &i->ext[k], (n - k) * sizeof(*i->ext));
		i->ext[k] = (struct extent){ lblk, pblk, len };
	}
	i->next = nn;
	i->d.blocks += len;
	return emit(fs, tx, i, from, &p);
}

/* ext_max_len -- the longest extent ext_insert will build */
uint64_t ext_max_len(void)
{
	return EXT_MAX_LEN;
}

/*
 * ext_punch -- unmap file blocks [lblk, lblk+len) and free them, working
 * down from the end of the range, at most `budget` extents per call (and
 * no more than the transaction has room for).  *done says whether the
 * whole range is now a hole.
 */
int ext_punch(struct daxfs *fs, struct tx *tx, struct inode *i,
	      uint64_t lblk, uint64_t len, uint64_t budget, bool *done)
{
	uint64_t end = (len > UINT64_MAX - lblk) ? UINT64_MAX : lblk + len;
	uint32_t n = i->next, lo = find(i, lblk), hi, k, from, nn;
	struct ext_plan p;
	int ret;

	*done = false;
	if (lo >= n || i->ext[lo].lblk >= end) {
		*done = true;
		return 0;
	}
	/* hi: one past the last extent starting before end */
	hi = lo;
	while (hi < n && i->ext[hi].lblk < end)
		hi++;

	/* one extent with the range strictly inside it: split */
	if (hi - lo == 1 && i->ext[lo].lblk < lblk &&
	    i->ext[lo].lblk + i->ext[lo].len > end) {
		struct extent e = i->ext[lo];

		ret = plan(fs, tx, i, n + 1, lo, &p);
		if (ret)
			return ret;
		memmove(&i->ext[lo + 2], &i->ext[lo + 1],
			(n - lo - 1) * sizeof(*i->ext));
		i->ext[lo].len = lblk - e.lblk;
		i->ext[lo + 1].lblk = end;
		i->ext[lo + 1].pblk = e.pblk + (end - e.lblk);
		i->ext[lo + 1].len = e.lblk + e.len - end;
		i->next = n + 1;
		tx_free(tx, e.pblk + (lblk - e.lblk), end - lblk);
		i->d.blocks -= end - lblk;
		*done = true;
		return emit(fs, tx, i, lo, &p);
	}

	/* trim or drop extents hi-1 down to lo while budget and room last */
	uint32_t first = hi, removed = 0;
	uint64_t room = tx_room(tx);

	for (k = hi; k > lo && budget; k--, budget--) {
		const struct extent *e = &i->ext[k - 1];
		uint64_t cost = 1024 + e->len / 8;

		if (cost > room && k != hi)
			break;
		room = room > cost ? room - cost : 0;
		first = k - 1;
	}
	/* count what goes: entries wholly inside the range */
	for (k = first; k < hi; k++)
		if (i->ext[k].lblk >= lblk &&
		    i->ext[k].lblk + i->ext[k].len <= end)
			removed++;
	nn = n - removed;
	from = first;
	ret = plan(fs, tx, i, nn, from, &p);
	if (ret)
		return ret;
	for (k = hi; k > first; k--) {
		struct extent *e = &i->ext[k - 1];
		uint64_t es = e->lblk, ee = e->lblk + e->len;
		uint64_t cs = MAX(es, lblk), ce = MIN(ee, end);

		tx_free(tx, e->pblk + (cs - es), ce - cs);
		i->d.blocks -= ce - cs;
		if (cs == es && ce == ee) {
			memmove(e, e + 1, (i->next - k) * sizeof(*e));
			i->next--;
		} else if (cs == es) {
			e->lblk = ce;
			e->pblk += ce - es;
			e->len = ee - ce;
		} else {
			e->len = cs - es;
		}
	}
	*done = first == lo;
	return emit(fs, tx, i, from, &p);
}

/* ext_sync -- store the whole in-memory list (after a bulk change) */
int ext_sync(struct daxfs *fs, struct tx *tx, struct inode *i)
{
	struct ext_plan p;
	int ret = plan(fs, tx, i, i->next, 0, &p);

	return ret ? ret : emit(fs, tx, i, 0, &p);
}
