/*
 * inode.c -- inodes: checking dinodes read from the region, the in-memory
 * inode cache, the inode map, allocation, eviction and deletion.
 *
 * Owns: fs->ihash (under icache_lock), fs->imap (under meta_lock).
 * Must never: write a dinode except through a transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daxfs_i.h"

void dinode_set_crc(struct daxfs_dinode *d)
{
	d->crc = crc32c(0, d, offsetof(struct daxfs_dinode, crc));
}

static bool valid_type(uint32_t mode)
{
	switch (mode & DAXFS_S_IFMT) {
	case DAXFS_S_IFREG: case DAXFS_S_IFDIR: case DAXFS_S_IFLNK:
	case DAXFS_S_IFCHR: case DAXFS_S_IFBLK: case DAXFS_S_IFIFO:
	case DAXFS_S_IFSOCK:
		return true;
	}
	return false;
}

static bool block_ok(const struct daxfs *fs, uint64_t b, uint64_t n)
{
	return b >= fs->data_start && n > 0 && b < fs->nblocks - 1 &&
	       n <= fs->nblocks - 1 - b;
}

/*
 * inode_check -- is a dinode read from the region usable?  Checks what a
 * reader relies on: checksum, type, pointers in range.  Free slots
 * (mode 0) pass.  fs may be NULL to skip the pointer checks.
 */
int inode_check(const struct daxfs_dinode *d, uint64_t ino,
		const struct daxfs *fs)
{
	if (crc32c(0, d, offsetof(struct daxfs_dinode, crc)) != d->crc) {
		/* an all-zero slot was never used */
		static const struct daxfs_dinode zero;

		if (!memcmp(d, &zero, sizeof(zero)))
			return 0;
		daxfs_seterr("inode %llu: checksum mismatch",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if (!d->mode)
		return 0;
	if (!valid_type(d->mode) || (d->mode & ~(DAXFS_S_IFMT | 07777))) {
		daxfs_seterr("inode %llu: invalid mode 0%o",
			     (unsigned long long)ino, d->mode);
		return -EUCLEAN;
	}
	if ((d->flags & ~DAXFS_IF_KNOWN) || d->reserved) {
		daxfs_seterr("inode %llu: unknown flags",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if ((d->flags & DAXFS_IF_INLINE) &&
	    ((d->mode & DAXFS_S_IFMT) != DAXFS_S_IFLNK ||
	     d->size > DAXFS_INLINE_BYTES || d->nextents || d->ext_block)) {
		daxfs_seterr("inode %llu: bad inline data",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if (!fs)
		return 0;
	if (d->xattr_block && !block_ok(fs, d->xattr_block, 1)) {
		daxfs_seterr("inode %llu: xattr block out of range",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if (d->ext_block ? (!block_ok(fs, d->ext_block, d->ext_blocks) ||
			    d->nextents > DAXFS_EXT_PER_ARRAY(d->ext_blocks))
			 : (d->ext_blocks ||
			    d->nextents > DAXFS_INLINE_EXTENTS)) {
		daxfs_seterr("inode %llu: extent list out of range",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if ((d->mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR &&
	    (d->parent == 0 || d->parent >= fs->ninodes)) {
		daxfs_seterr("inode %llu: bad parent",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	return 0;
}

static uint64_t ihash_of(const struct daxfs *fs, uint64_t ino)
{
	return (ino * 0x9e3779b97f4a7c15ULL) >> 20 & (fs->ihash_size - 1);
}

int icache_init(struct daxfs *fs)
{
	fs->ihash_size = 1024;
	fs->ihash = calloc(fs->ihash_size, sizeof(*fs->ihash));
	return fs->ihash ? 0 : -ENOMEM;
}

static void inode_free_mem(struct inode *i)
{
	ext_unload(i);
	dir_unload(i);
	pthread_rwlock_destroy(&i->io_lock);
	free(i);
}

void icache_free(struct daxfs *fs)
{
	for (uint64_t h = 0; h < fs->ihash_size && fs->ihash; h++) {
		struct inode *i = fs->ihash[h], *n;

		for (; i; i = n) {
			n = i->hnext;
			inode_free_mem(i);
		}
	}
	free(fs->ihash);
	fs->ihash = NULL;
	fs->icount = 0;
}

/* ihash_grow_locked -- double the table; icache_lock held */
static void ihash_grow_locked(struct daxfs *fs)
{
	uint64_t old = fs->ihash_size;
	struct inode **oh = fs->ihash, **nh = calloc(old * 2, sizeof(*nh));

	if (!nh)
		return;
	fs->ihash = nh;
	fs->ihash_size = old * 2;
	for (uint64_t h = 0; h < old; h++) {
		struct inode *i = oh[h], *n;

		for (; i; i = n) {
			uint64_t k = ihash_of(fs, i->ino);

			n = i->hnext;
			i->hnext = nh[k];
			nh[k] = i;
		}
	}
	free(oh);
}

static struct inode *find_locked(struct daxfs *fs, uint64_t ino)
{
	struct inode *i = fs->ihash[ihash_of(fs, ino)];

	while (i && i->ino != ino)
		i = i->hnext;
	return i;
}

/* inode_find -- the cached inode, or NULL */
struct inode *inode_find(struct daxfs *fs, uint64_t ino)
{
	struct inode *i;

	pthread_mutex_lock(&fs->icache_lock);
	i = find_locked(fs, ino);
	pthread_mutex_unlock(&fs->icache_lock);
	return i;
}

static struct inode *inode_new_mem(uint64_t ino)
{
	struct inode *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->ino = ino;
	pthread_rwlock_init(&i->io_lock, NULL);
	return i;
}

/* insert -- add to the cache unless someone beat us; returns the winner */
static struct inode *insert(struct daxfs *fs, struct inode *i)
{
	struct inode *have;

	pthread_mutex_lock(&fs->icache_lock);
	have = find_locked(fs, i->ino);
	if (!have) {
		uint64_t k = ihash_of(fs, i->ino);

		i->hnext = fs->ihash[k];
		fs->ihash[k] = i;
		if (++fs->icount > fs->ihash_size)
			ihash_grow_locked(fs);
		have = i;
	}
	pthread_mutex_unlock(&fs->icache_lock);
	return have;
}

static void unhash(struct daxfs *fs, struct inode *i)
{
	struct inode **p;

	pthread_mutex_lock(&fs->icache_lock);
	for (p = &fs->ihash[ihash_of(fs, i->ino)]; *p; p = &(*p)->hnext) {
		if (*p == i) {
			*p = i->hnext;
			fs->icount--;
			break;
		}
	}
	pthread_mutex_unlock(&fs->icache_lock);
}

/*
 * inode_get -- the in-memory inode for ino, loaded from the region if it
 * is not cached.  meta_lock held (shared is enough).  -ENOENT for a free
 * slot, -EUCLEAN for a damaged one.
 */
int inode_get(struct daxfs *fs, uint64_t ino, struct inode **out)
{
	struct inode *i = inode_find(fs, ino), *won;
	int ret;

	if (i) {
		*out = i;
		return 0;
	}
	if (ino < DAXFS_FIRST_INO || ino >= fs->ninodes) {
		daxfs_seterr("inode %llu is out of range",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	i = inode_new_mem(ino);
	if (!i)
		return -ENOMEM;
	ret = region_read(fs->r, fs->itable_off + ino * DAXFS_INODE_SIZE,
			  &i->d, sizeof(i->d));
	if (!ret)
		ret = inode_check(&i->d, ino, fs);
	if (!ret && !i->d.mode)
		ret = -ENOENT;
	/* load the block map now, so readers holding only shared locks
	 * never race to fill it in */
	if (!ret)
		ret = ext_load(fs, i);
	if (ret) {
		if (ret == -EUCLEAN)
			syslog(LOG_ERR, "daxfs: %s", daxfs_errmsg(ret));
		inode_free_mem(i);
		return ret;
	}
	won = insert(fs, i);
	if (won != i)
		inode_free_mem(i);
	*out = won;
	return 0;
}

/* referenced -- does the kernel still know i?  (nlookup is icache_lock's) */
static bool referenced(struct daxfs *fs, struct inode *i)
{
	bool r;

	pthread_mutex_lock(&fs->icache_lock);
	r = i->nlookup != 0;
	pthread_mutex_unlock(&fs->icache_lock);
	return r;
}

/* inode_ref -- the kernel took n more references */
void inode_ref(struct daxfs *fs, struct inode *i, uint64_t n)
{
	pthread_mutex_lock(&fs->icache_lock);
	i->nlookup += n;
	pthread_mutex_unlock(&fs->icache_lock);
}

/*
 * inode_release_blocks -- free everything an inode owns, over as many
 * transactions as it takes; meta_lock exclusive.
 */
int inode_release_blocks(struct daxfs *fs, struct inode *i)
{
	struct tx *tx;
	bool done = false;
	int ret;

	ret = ext_load(fs, i);
	while (!ret && !done) {
		tx = tx_begin(fs);
		ret = ext_punch(fs, tx, i, 0, UINT64_MAX, 4096, &done);
		if (ret) {
			tx_abort(tx);
			return ret;
		}
		ret = tx_commit(tx);
	}
	if (ret)
		return ret;
	if (i->d.xattr_block) {
		tx = tx_begin(fs);
		tx_free(tx, i->d.xattr_block, 1);
		i->d.xattr_block = 0;
		i->d.blocks--;
		tx_dirty_inode(tx, i);
		ret = tx_commit(tx);
	}
	return ret;
}

/* inode_delete_locked -- free an unlinked, unreferenced inode */
static int inode_delete_locked(struct daxfs *fs, struct inode *i)
{
	struct tx *tx;
	uint32_t gen = i->d.generation;
	int ret;

	ret = inode_release_blocks(fs, i);
	if (ret)
		return ret;
	tx = tx_begin(fs);
	memset(&i->d, 0, sizeof(i->d));
	i->d.generation = gen;		/* the next owner's starts above it */
	tx_dirty_inode(tx, i);
	ret = tx_commit(tx);
	if (ret)
		return ret;
	fs->imap[i->ino / 64] &= ~(1ULL << (i->ino % 64));
	fs->free_inodes++;
	return 0;
}

/* inode_flush_locked -- write back lazily kept times and size */
int inode_flush_locked(struct daxfs *fs, struct inode *i)
{
	struct tx *tx;

	if (!i->dirty || fs->readonly || atomic_load(&fs->error))
		return 0;
	tx = tx_begin(fs);
	tx_dirty_inode(tx, i);
	return tx_commit(tx);
}

/*
 * inode_evict_locked -- the kernel has let go: write back, delete if it
 * was unlinked, drop from the cache.  meta_lock exclusive.
 */
int inode_evict_locked(struct daxfs *fs, struct inode *i)
{
	int ret = 0;

	if (referenced(fs, i) || atomic_load(&i->nopen))
		return 0;
	if (!fs->readonly && !atomic_load(&fs->error) && region_alive(fs->r)) {
		if (i->d.nlink == 0 && i->ino != DAXFS_ROOT_INO) {
			ret = inode_delete_locked(fs, i);
		} else {
			/* unsynced data is counted in memory only */
			if (inode_is_reg(i))
				ret = file_sync_data_locked(fs, i);
			if (!ret)
				ret = inode_flush_locked(fs, i);
		}
	}
	if (i->ino == DAXFS_ROOT_INO)
		return ret;
	unhash(fs, i);
	inode_free_mem(i);
	return ret;
}

/*
 * inode_close_locked -- the last open handle of ino went away.  The kernel
 * sends RELEASE asynchronously, so its FORGET may already have been
 * handled (and eviction skipped because the file was open): evict now if
 * nothing references the inode, else just write back lazy changes.
 * meta_lock exclusive.
 */
int inode_close_locked(struct daxfs *fs, uint64_t ino)
{
	struct inode *i = inode_find(fs, ino);

	if (!i || atomic_load(&i->nopen))
		return 0;
	if (!referenced(fs, i))
		return inode_evict_locked(fs, i);
	return inode_flush_locked(fs, i);
}

/*
 * inode_forget -- the kernel dropped n references to ino.  With evict, an
 * inode the kernel no longer knows is written back (or deleted, if
 * unlinked) and dropped from memory; without, it only loses the count
 * (the region may be gone).  Returns 1 when the kernel's last reference
 * went, 0 otherwise, or -errno.
 */
int inode_forget(struct daxfs *fs, uint64_t ino, uint64_t n, bool evict)
{
	struct inode *i;
	bool last;
	int ret = 0;

	pthread_mutex_lock(&fs->icache_lock);
	i = find_locked(fs, ino);
	if (!i) {
		pthread_mutex_unlock(&fs->icache_lock);
		return 0;
	}
	i->nlookup = i->nlookup > n ? i->nlookup - n : 0;
	last = i->nlookup == 0;
	pthread_mutex_unlock(&fs->icache_lock);
	if (!last)
		return 0;
	if (evict) {
		pthread_rwlock_wrlock(&fs->meta_lock);
		/* a lookup may have come in between: evict re-checks */
		i = inode_find(fs, ino);
		ret = i ? inode_evict_locked(fs, i) : 0;
		pthread_rwlock_unlock(&fs->meta_lock);
	}
	return ret ? ret : 1;
}

/*
 * inode_alloc -- a fresh inode with nlink 1 (2 for a directory), added to
 * the cache and to tx.  meta_lock exclusive.
 */
int inode_alloc(struct daxfs *fs, struct tx *tx, uint32_t mode,
		uint32_t uid, uint32_t gid, struct inode **out)
{
	struct daxfs_dinode old;
	struct inode *i;
	uint64_t ino = 0, sec;
	uint32_t nsec;
	int ret;

	if (!fs->free_inodes)
		return -ENOSPC;
	for (uint64_t k = 0; k < fs->ninodes; k++) {
		uint64_t c = (fs->ino_hint + k) % fs->ninodes;

		if (c <= DAXFS_ROOT_INO)
			continue;
		if (!(fs->imap[c / 64] & (1ULL << (c % 64)))) {
			ino = c;
			break;
		}
		/* skip full words quickly */
		if (c % 64 == 0 && fs->imap[c / 64] == ~0ULL)
			k += 63;
	}
	if (!ino)
		return -ENOSPC;
	ret = region_read(fs->r, fs->itable_off + ino * DAXFS_INODE_SIZE,
			  &old, sizeof(old));
	if (ret)
		return ret;
	if (inode_find(fs, ino)) {
		daxfs_seterr("inode %llu is free but cached",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	i = inode_new_mem(ino);
	if (!i)
		return -ENOMEM;
	fs_now(&sec, &nsec);
	i->d.mode = mode;
	i->d.uid = uid;
	i->d.gid = gid;
	i->d.nlink = (mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR ? 2 : 1;
	i->d.atime_sec = i->d.mtime_sec = i->d.ctime_sec = i->d.btime_sec =
		sec;
	i->d.atime_nsec = i->d.mtime_nsec = i->d.ctime_nsec =
		i->d.btime_nsec = nsec;
	i->d.generation = old.generation + 1;
	i->ext_loaded = true;		/* a new inode has no extents */
	insert(fs, i);
	fs->imap[ino / 64] |= 1ULL << (ino % 64);
	fs->free_inodes--;
	fs->ino_hint = ino + 1;
	tx_dirty_inode(tx, i);
	*out = i;
	return 0;
}

/* inode_unalloc -- undo inode_alloc after its transaction was aborted */
void inode_unalloc(struct daxfs *fs, struct inode *i)
{
	fs->imap[i->ino / 64] &= ~(1ULL << (i->ino % 64));
	fs->free_inodes++;
	unhash(fs, i);
	inode_free_mem(i);
}

/*
 * inode_reload_locked -- after an aborted transaction: forget in-memory
 * changes to i (dinode, extents, directory index) by reading the region
 * again.  meta_lock exclusive.
 */
int inode_reload_locked(struct daxfs *fs, struct inode *i)
{
	struct daxfs_dinode d;
	int ret;

	ret = region_read(fs->r, fs->itable_off + i->ino * DAXFS_INODE_SIZE,
			  &d, sizeof(d));
	if (!ret)
		ret = inode_check(&d, i->ino, fs);
	if (ret)
		return ret;
	i->d = d;
	i->dirty = false;
	ext_unload(i);
	dir_unload(i);
	return ext_load(fs, i);
}

/* inode_touch -- set times to now */
void inode_touch(struct inode *i, unsigned what)
{
	uint64_t sec;
	uint32_t nsec;

	fs_now(&sec, &nsec);
	if (what & TOUCH_A) {
		i->d.atime_sec = sec;
		i->d.atime_nsec = nsec;
	}
	if (what & TOUCH_M) {
		i->d.mtime_sec = sec;
		i->d.mtime_nsec = nsec;
	}
	if (what & TOUCH_C) {
		i->d.ctime_sec = sec;
		i->d.ctime_nsec = nsec;
	}
	i->dirty = true;
}

/* inode_stat -- what stat(2) shows */
void inode_stat(const struct daxfs *fs, const struct inode *i,
		struct stat *st)
{
	(void)fs;
	memset(st, 0, sizeof(*st));
	st->st_ino = i->ino;
	st->st_mode = i->d.mode;
	st->st_nlink = i->d.nlink;
	st->st_uid = i->d.uid;
	st->st_gid = i->d.gid;
	st->st_rdev = i->d.rdev;
	st->st_size = (off_t)i->d.size;
	st->st_blksize = DAXFS_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)(i->d.blocks * (DAXFS_BLOCK_SIZE / 512));
	st->st_atim.tv_sec = (time_t)i->d.atime_sec;
	st->st_atim.tv_nsec = i->d.atime_nsec;
	st->st_mtim.tv_sec = (time_t)i->d.mtime_sec;
	st->st_mtim.tv_nsec = i->d.mtime_nsec;
	st->st_ctim.tv_sec = (time_t)i->d.ctime_sec;
	st->st_ctim.tv_nsec = i->d.ctime_nsec;
}

/*
 * imap_init -- build the inode map from the inode table; remembers
 * orphans (allocated, no links) for inode_scan_orphans().
 */
int imap_init(struct daxfs *fs)
{
	const uint64_t per = 256;	/* inodes per read: 64 KiB */
	struct daxfs_dinode *buf = malloc(per * sizeof(*buf));
	uint64_t used = 0;
	int ret = 0;

	fs->imap = calloc(DIV_ROUND_UP(fs->ninodes, 64), 8);
	if (!buf || !fs->imap) {
		free(buf);
		return -ENOMEM;
	}
	fs->imap[0] |= 1;		/* slot 0 is never used */
	free(fs->orphans);
	fs->orphans = NULL;
	fs->norphans = 0;
	for (uint64_t base = 0; base < fs->ninodes && !ret; base += per) {
		uint64_t n = MIN(per, fs->ninodes - base);
		uint64_t off = fs->itable_off + base * DAXFS_INODE_SIZE;
		uint64_t end = fs->itable_off + fs->ninodes * DAXFS_INODE_SIZE;
		uint64_t next = region_next_data(fs->r, off, end);

		/* a hole in a file region: never-used slots, skip them */
		if (next >= off + per * DAXFS_INODE_SIZE) {
			base = ALIGN_DOWN((next - fs->itable_off) /
					  DAXFS_INODE_SIZE, per) - per;
			continue;
		}
		ret = region_read(fs->r, fs->itable_off +
				  base * DAXFS_INODE_SIZE, buf,
				  n * DAXFS_INODE_SIZE);
		for (uint64_t k = 0; k < n && !ret; k++) {
			uint64_t ino = base + k;

			if (!buf[k].mode || ino == 0)
				continue;
			fs->imap[ino / 64] |= 1ULL << (ino % 64);
			used++;
			if (buf[k].nlink == 0 &&
			    inode_check(&buf[k], ino, fs) == 0) {
				uint64_t *o = realloc(fs->orphans,
					(fs->norphans + 1) * sizeof(*o));
				if (o) {
					fs->orphans = o;
					fs->orphans[fs->norphans++] = ino;
				}
			}
		}
	}
	free(buf);
	fs->free_inodes = fs->ninodes - 1 - used;
	fs->ino_hint = DAXFS_ROOT_INO + 1;
	return ret;
}

/* inode_scan_orphans -- free inodes left unlinked-but-open by a crash */
int inode_scan_orphans(struct daxfs *fs)
{
	int ret = 0;

	for (uint64_t k = 0; k < fs->norphans && !ret; k++) {
		struct inode *i;

		ret = inode_get(fs, fs->orphans[k], &i);
		if (ret == -ENOENT) {
			ret = 0;
			continue;
		}
		if (!ret)
			ret = inode_evict_locked(fs, i);
		if (!ret)
			fs->orphans_freed++;
	}
	free(fs->orphans);
	fs->orphans = NULL;
	fs->norphans = 0;
	return ret;
}
