/*
 * file.c -- regular file data: writing (with allocation), reading into a
 * buffer, truncation, hole punching, preallocation and sync.
 *
 * Ordering.  New blocks are reserved first (meta_lock, briefly), then
 * zeroed where the write does not cover them and filled with the write's
 * data without any global lock, made durable, and only then mapped into
 * the file by a transaction.  A crash at any point leaves either the old
 * file or the new one, never a file that shows stale blocks.
 *
 * Bytes past end-of-file inside allocated blocks are zero, except after a
 * crash (see zero_past_eof): so growing a file zeroes them first, and
 * extending a file never exposes old data.
 *
 * Callers hold inode->io_lock exclusive for changes (shared for reads).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs_i.h"

#define MAX_FILE_SIZE	(1ULL << 50)
#define BS		DAXFS_BLOCK_SIZE

struct resv {
	uint64_t lblk, pblk, len;
};

struct resv_list {
	struct resv *v;
	uint32_t n, cap;
};

static int resv_add(struct resv_list *l, uint64_t lblk, uint64_t pblk,
		    uint64_t len)
{
	if (l->n == l->cap) {
		uint32_t c = l->cap ? l->cap * 2 : 8;
		struct resv *v = realloc(l->v, c * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = c;
	}
	l->v[l->n++] = (struct resv){ lblk, pblk, len };
	return 0;
}

static void resv_drop(struct daxfs *fs, struct resv_list *l)
{
	for (uint32_t k = 0; k < l->n; k++)
		alloc_unreserve(fs, l->v[k].pblk, l->v[k].len);
	l->n = 0;
}

/*
 * reserve_holes -- reserve blocks for every hole in [lb, lb+count).  Stops
 * early when the region is full; *covered is then the number of blocks
 * from lb that are mapped or reserved.  meta_lock taken here.
 */
static int reserve_holes(struct daxfs *fs, struct inode *i, uint64_t lb,
			 uint64_t count, struct resv_list *l,
			 uint64_t *covered)
{
	uint64_t x = lb, end = lb + count;
	int ret = 0;

	pthread_rwlock_wrlock(&fs->meta_lock);
	while (x < end) {
		uint64_t pblk, len;

		if (ext_lookup(i, x, &pblk, &len)) {
			x += MIN(len, end - x);
			continue;
		}
		len = MIN(len, end - x);
		while (len) {
			struct tx_range got;
			uint64_t goal = l->n && l->v[l->n - 1].lblk +
					l->v[l->n - 1].len == x ?
					l->v[l->n - 1].pblk + l->v[l->n - 1].len :
					ext_last_pblk(i, x);
			uint64_t want = MIN(len, ext_max_len());
			unsigned flags = (want >= fs->align_blocks ||
					  i->d.size >= FS_BLOCK_OFF(
						  fs->align_blocks)) ?
					 ALLOC_BIG : 0;

			ret = alloc_reserve(fs, goal, want, flags, &got);
			if (ret)
				goto out;
			ret = resv_add(l, x, got.start, got.len);
			if (ret) {
				alloc_unreserve(fs, got.start, got.len);
				goto out;
			}
			x += got.len;
			len -= got.len;
		}
	}
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	*covered = x - lb;
	return ret;
}

/* locate -- region block for file block x: mapped, or reserved in l */
static bool locate(const struct inode *i, const struct resv_list *l,
		   uint64_t x, uint64_t *pblk, uint64_t *len)
{
	if (ext_lookup(i, x, pblk, len))
		return true;
	for (uint32_t k = 0; k < l->n; k++) {
		const struct resv *r = &l->v[k];

		if (x >= r->lblk && x < r->lblk + r->len) {
			*pblk = r->pblk + (x - r->lblk);
			*len = r->len - (x - r->lblk);
			return true;
		}
	}
	return false;
}

/* zero_fresh -- zero the parts of reserved blocks outside [off, end) */
static int zero_fresh(struct daxfs *fs, const struct resv_list *l,
		      uint64_t off, uint64_t end)
{
	int ret = 0;

	for (uint32_t k = 0; k < l->n && !ret; k++) {
		uint64_t s = FS_BLOCK_OFF(l->v[k].lblk);
		uint64_t e = FS_BLOCK_OFF(l->v[k].lblk + l->v[k].len);
		uint64_t base = FS_BLOCK_OFF(l->v[k].pblk);

		if (off > s)
			ret = region_data_zero(fs->r, base, MIN(off, e) - s);
		if (!ret && end < e) {
			uint64_t z = MAX(end, s);

			ret = region_data_zero(fs->r, base + (z - s), e - z);
		}
	}
	return ret;
}

static int sync_fresh(struct daxfs *fs, const struct resv_list *l)
{
	int ret = 0;

	for (uint32_t k = 0; k < l->n && !ret; k++)
		ret = region_data_sync(fs->r, FS_BLOCK_OFF(l->v[k].pblk),
				       FS_BLOCK_OFF(l->v[k].len));
	return ret;
}

static int zero_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		      uint64_t len);

/*
 * zero_past_eof -- before a file grows to `to` bytes: zero what its blocks
 * hold past its end of file, up to `to`.  That is zero already unless a
 * crash left data there -- a truncate whose blocks were not freed yet,
 * an extending write whose data reached the media before its lazily kept
 * size did -- and growing the file would expose it.  Through the data
 * path, durable before the new size can be.
 */
static int zero_past_eof(struct daxfs *fs, struct inode *i, uint64_t to)
{
	if (to <= i->d.size)
		return 0;
	return zero_bytes(fs, i, i->d.size, to - i->d.size);
}

/*
 * map_fresh -- the transactions that make reserved blocks the file's.
 * Many small extents (a fragmented region) can outgrow one transaction,
 * so the work is committed in pieces, each raising the size over what it
 * mapped: every piece leaves a consistent file whose new blocks already
 * hold their data.  A failure puts the inode back as the last commit left
 * it and returns the blocks not yet committed.
 */
static int map_fresh(struct daxfs *fs, struct inode *i, struct resv_list *l,
		     uint64_t new_size, unsigned touch)
{
	struct daxfs_dinode saved;
	struct tx *tx;
	uint32_t k = 0;
	int ret = 0;

	pthread_rwlock_wrlock(&fs->meta_lock);
	while (k < l->n && !ret) {
		uint64_t mapped_end;

		saved = i->d;
		tx = tx_begin(fs);
		for (; k < l->n && !ret; k++) {
			if (tx->nrec && tx_room(tx) < (64u << 10) +
			    l->v[k].len / 8)
				break;		/* commit this piece first */
			ret = ext_insert(fs, tx, i, l->v[k].lblk,
					 l->v[k].pblk, l->v[k].len);
		}
		if (ret) {
			/* inserted blocks are in tx->allocs and go back with
			 * the abort; the rest go back here */
			tx_abort(tx);
			for (; k < l->n; k++)
				alloc_unreserve(fs, l->v[k].pblk, l->v[k].len);
			i->d = saved;
			ext_unload(i);
			ext_load(fs, i);
			break;
		}
		/* the last piece gives the whole size (the write may end in
		 * blocks that were mapped already); earlier pieces only what
		 * they mapped */
		mapped_end = k == l->n ? new_size :
			     FS_BLOCK_OFF(l->v[k - 1].lblk + l->v[k - 1].len);
		if (MIN(new_size, mapped_end) > i->d.size)
			i->d.size = MIN(new_size, mapped_end);
		if (touch)
			inode_touch(i, touch);
		tx_dirty_inode(tx, i);
		ret = tx_commit(tx);
		if (ret) {
			for (; k < l->n; k++)
				alloc_unreserve(fs, l->v[k].pblk, l->v[k].len);
		}
	}
	l->n = 0;
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/*
 * file_write_bytes -- write len bytes at off.  Returns the bytes written
 * (short only when the region fills up) or -errno.
 */
int file_write_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		     const void *buf, uint64_t len)
{
	struct resv_list l = { 0 };
	uint64_t end, lb0, nb, covered, done;
	int ret;

	if (!len)
		return 0;
	if (off >= MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		return -EFBIG;
	len = MIN(len, 1ULL << 30);	/* the count must fit the int */
	ret = ext_load(fs, i);
	if (!ret)
		ret = zero_past_eof(fs, i, off);
	if (ret)
		return ret;
	end = off + len;
	lb0 = off / BS;
	nb = DIV_ROUND_UP(end, BS) - lb0;
	ret = reserve_holes(fs, i, lb0, nb, &l, &covered);
	if (ret && ret != -ENOSPC)
		goto err;
	if (covered < nb) {
		/* full: write what fits */
		end = MIN(end, FS_BLOCK_OFF(lb0 + covered));
		if (end <= off) {
			ret = -ENOSPC;
			goto err;
		}
	}
	ret = zero_fresh(fs, &l, off, end);
	for (done = off; !ret && done < end;) {
		uint64_t pblk, run, n;

		if (!locate(i, &l, done / BS, &pblk, &run)) {
			ret = -EIO;
			break;
		}
		n = MIN(FS_BLOCK_OFF(run) - done % BS, end - done);
		ret = region_data_write(fs->r, FS_BLOCK_OFF(pblk) + done % BS,
					(const char *)buf + (done - off), n);
		done += n;
	}
	if (!ret && l.n)
		ret = sync_fresh(fs, &l);
	if (ret)
		goto err;
	atomic_fetch_add(&i->dirty_bytes, end - off);
	if (l.n) {
		ret = map_fresh(fs, i, &l, end, TOUCH_M | TOUCH_C);
		free(l.v);
		return ret ? ret : (int)(end - off);
	}
	pthread_rwlock_wrlock(&fs->meta_lock);
	if (end > i->d.size)
		i->d.size = end;	/* durable at fsync or next commit */
	inode_touch(i, TOUCH_M | TOUCH_C);
	pthread_rwlock_unlock(&fs->meta_lock);
	free(l.v);
	return (int)(end - off);

err:
	pthread_rwlock_wrlock(&fs->meta_lock);
	resv_drop(fs, &l);
	pthread_rwlock_unlock(&fs->meta_lock);
	free(l.v);
	return ret;
}

/* file_read_bytes -- copy up to len bytes at off (holes read as zero);
 * returns the bytes copied, short at end-of-file */
int file_read_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		    void *buf, uint64_t len)
{
	uint64_t end, pos;
	int ret;

	ret = ext_load(fs, i);
	if (ret)
		return ret;
	if (off >= i->d.size)
		return 0;
	end = MIN(i->d.size, off + len);
	for (pos = off; pos < end;) {
		uint64_t pblk, run, n;
		bool mapped = ext_lookup(i, pos / BS, &pblk, &run);

		n = run == UINT64_MAX ? end - pos :
		    MIN(FS_BLOCK_OFF(run) - pos % BS, end - pos);
		if (mapped)
			ret = region_read(fs->r, FS_BLOCK_OFF(pblk) + pos % BS,
					  (char *)buf + (pos - off), n);
		else
			memset((char *)buf + (pos - off), 0, n);
		if (ret)
			return ret;
		pos += n;
	}
	return (int)(end - off);
}

/* punch_loop -- unmap [lb, lb+count) over as many transactions as needed */
static int punch_loop(struct daxfs *fs, struct inode *i, uint64_t lb,
		      uint64_t count)
{
	bool done = false;
	int ret = 0;

	while (!ret && !done) {
		struct tx *tx = tx_begin(fs);
		struct daxfs_dinode saved = i->d;

		ret = ext_punch(fs, tx, i, lb, count, 4096, &done);
		if (ret) {
			/* ext_punch may fail after changing the list in memory
			 * (no memory to log it): put back what the region
			 * holds, as map_fresh does, or a later commit of the
			 * inode would drop extents whose blocks stay in use */
			tx_abort(tx);
			i->d = saved;
			ext_unload(i);
			ext_load(fs, i);
			break;
		}
		ret = tx_commit(tx);
	}
	return ret;
}

/*
 * file_truncate -- set the size.  Shrinking zeroes the new last block's
 * tail in the same transaction that sets the size, then frees the blocks
 * past it.  meta_lock taken here.
 */
int file_truncate(struct daxfs *fs, struct inode *i, uint64_t size)
{
	struct tx *tx;
	uint64_t pblk, run;
	int ret;

	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	ret = ext_load(fs, i);
	if (!ret)
		ret = zero_past_eof(fs, i, size);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = ext_load(fs, i);
	if (ret)
		goto out;
	tx = tx_begin(fs);
	if (size < i->d.size && size % BS &&
	    ext_lookup(i, size / BS, &pblk, &run))
		tx_zero(tx, FS_BLOCK_OFF(pblk) + size % BS, BS - size % BS);
	i->d.size = size;
	inode_touch(i, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, i);
	ret = tx_commit(tx);
	if (!ret)
		ret = punch_loop(fs, i, DIV_ROUND_UP(size, BS), UINT64_MAX);
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/* zero_bytes -- zero [off, off+len) of mapped blocks through the data path */
static int zero_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		      uint64_t len)
{
	uint64_t end = off + len;
	int ret = 0;

	while (!ret && off < end) {
		uint64_t pblk, run, n;
		bool mapped = ext_lookup(i, off / BS, &pblk, &run);

		n = run == UINT64_MAX ? end - off :
		    MIN(FS_BLOCK_OFF(run) - off % BS, end - off);
		if (mapped) {
			ret = region_data_zero(fs->r, FS_BLOCK_OFF(pblk) +
					       off % BS, n);
			if (!ret)
				ret = region_data_sync(fs->r, FS_BLOCK_OFF(pblk) +
						       off % BS, n);
		}
		off += n;
	}
	return ret;
}

/* file_punch -- make [off, off+len) read as zeroes, freeing whole blocks */
int file_punch(struct daxfs *fs, struct inode *i, uint64_t off, uint64_t len)
{
	uint64_t end, b0, b1;
	int ret;

	ret = ext_load(fs, i);
	if (ret || !len)
		return ret;
	end = MIN(off + len, MAX(i->d.size, off));
	if (len > UINT64_MAX - off)
		end = MAX(i->d.size, off);
	if (end <= off)
		return 0;
	b0 = DIV_ROUND_UP(off, BS);
	b1 = end / BS;
	if (b0 > b1) {		/* inside one block */
		ret = zero_bytes(fs, i, off, end - off);
	} else {
		ret = zero_bytes(fs, i, off, FS_BLOCK_OFF(b0) - off);
		if (!ret)
			ret = zero_bytes(fs, i, FS_BLOCK_OFF(b1),
					 end - FS_BLOCK_OFF(b1));
	}
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&fs->meta_lock);
	if (b1 > b0)
		ret = punch_loop(fs, i, b0, b1 - b0);
	if (!ret) {
		struct tx *tx = tx_begin(fs);

		inode_touch(i, TOUCH_M | TOUCH_C);
		tx_dirty_inode(tx, i);
		ret = tx_commit(tx);
	}
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/*
 * file_allocate -- fallocate(2) modes 0 and KEEP_SIZE: back [off,
 * off+len) with zeroed blocks, a batch per transaction.
 */
int file_allocate(struct daxfs *fs, struct inode *i, uint64_t off,
		  uint64_t len, bool keep_size)
{
	uint64_t end, lb, lend;
	int ret;

	if (!len)
		return -EINVAL;
	if (off >= MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		return -EFBIG;
	ret = ext_load(fs, i);
	if (!ret && !keep_size)
		ret = zero_past_eof(fs, i, off + len);
	if (ret)
		return ret;
	end = off + len;
	lend = DIV_ROUND_UP(end, BS);
	for (lb = off / BS; lb < lend;) {
		struct resv_list l = { 0 };
		uint64_t batch = MIN(lend - lb, 1ULL << 18);	/* 1 GiB */
		uint64_t covered;

		ret = reserve_holes(fs, i, lb, batch, &l, &covered);
		if (!ret || (ret == -ENOSPC && covered)) {
			int zr = 0;

			for (uint32_t k = 0; k < l.n && !zr; k++)
				zr = region_data_zero(fs->r,
						FS_BLOCK_OFF(l.v[k].pblk),
						FS_BLOCK_OFF(l.v[k].len));
			if (!zr)
				zr = sync_fresh(fs, &l);
			if (zr) {
				ret = zr;
			} else {
				uint64_t sz = keep_size ? 0 :
					MIN(end, FS_BLOCK_OFF(lb + covered));
				int mr = map_fresh(fs, i, &l, sz, TOUCH_C);

				if (mr)
					ret = mr;
			}
		}
		if (ret) {
			pthread_rwlock_wrlock(&fs->meta_lock);
			resv_drop(fs, &l);
			pthread_rwlock_unlock(&fs->meta_lock);
			free(l.v);
			return ret;
		}
		free(l.v);
		lb += batch;
	}
	/* a range that was allocated already (KEEP_SIZE before) still
	 * extends the file */
	if (!keep_size && end > i->d.size) {
		struct tx *tx;

		pthread_rwlock_wrlock(&fs->meta_lock);
		tx = tx_begin(fs);
		i->d.size = end;
		inode_touch(i, TOUCH_C);
		tx_dirty_inode(tx, i);
		ret = tx_commit(tx);
		pthread_rwlock_unlock(&fs->meta_lock);
	}
	return ret;
}

/*
 * file_sync_data_locked -- make the data written since the last sync
 * durable.  The caller holds io_lock or meta_lock (either keeps the
 * extents still).  Eviction calls it too: the count of unsynced bytes
 * lives in the in-memory inode, and a later fsync of a reloaded inode
 * would find nothing to do.
 */
int file_sync_data_locked(struct daxfs *fs, struct inode *i)
{
	uint_fast64_t n = atomic_exchange(&i->dirty_bytes, 0);
	int ret = 0;

	if (!n)
		return 0;
	if (fs->r->cacheline)
		ret = region_drain(fs->r);
	for (uint32_t k = 0; k < i->next && !ret && !fs->r->cacheline; k++)
		ret = region_data_sync(fs->r, FS_BLOCK_OFF(i->ext[k].pblk),
				       FS_BLOCK_OFF(i->ext[k].len));
	if (ret)
		atomic_fetch_add(&i->dirty_bytes, n);
	return ret;
}

/*
 * file_sync -- make the file's data and (unless data_only and the size is
 * unchanged) its inode durable.
 */
int file_sync(struct daxfs *fs, struct inode *i, bool data_only)
{
	int ret = 0;

	(void)data_only;
	if (fs->r->cacheline) {
		ret = file_sync_data_locked(fs, i);	/* needs no extents */
	} else if (atomic_load(&i->dirty_bytes)) {
		pthread_rwlock_rdlock(&i->io_lock);
		ret = file_sync_data_locked(fs, i);
		pthread_rwlock_unlock(&i->io_lock);
	}
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = inode_flush_locked(fs, i);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}
