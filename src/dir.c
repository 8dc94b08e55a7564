/*
 * dir.c -- directories: entries in 64-byte slots in the directory's
 * blocks, and the in-memory index that makes lookup O(1).
 *
 * The index (a hash by name, plus a per-slot table for readdir and for
 * finding room) is built the first time a directory is used and kept
 * while the directory inode is cached.  Entries that fail their checks are
 * left out of the index and reported; fsck repairs them.
 *
 * Owns: inode->dir.  Callers hold meta_lock (exclusive to change).
 * Must never: store an entry except through the journal.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daxfs_i.h"

#define BS DAXFS_BLOCK_SIZE
#define SPB DAXFS_SLOTS_PER_BLOCK

static uint32_t name_hash(const char *name, size_t len)
{
	return crc32c(0x64617866, name, len);
}

uint8_t mode_to_dtype(uint32_t mode)
{
	return (uint8_t)((mode & DAXFS_S_IFMT) >> 12);
}

/* dirent_check -- is an on-region entry well formed? */
int dirent_check(const struct daxfs_ddirent *de, const char *name)
{
	struct daxfs_ddirent h = *de;
	uint32_t crc;

	if (!de->name_len || de->nslots != DAXFS_DIRENT_SLOTS(de->name_len) ||
	    de->reserved)
		return -EUCLEAN;
	switch (de->type) {
	case 1: case 2: case 4: case 6: case 8: case 10: case 12:
		break;
	default:
		return -EUCLEAN;
	}
	h.crc = 0;
	crc = crc32c(0, &h, sizeof(h));
	crc = crc32c(crc, name, de->name_len);
	if (crc != de->crc)
		return -EUCLEAN;
	if (memchr(name, '/', de->name_len) || memchr(name, 0, de->name_len))
		return -EUCLEAN;
	if ((de->name_len == 1 && name[0] == '.') ||
	    (de->name_len == 2 && name[0] == '.' && name[1] == '.'))
		return -EUCLEAN;
	return 0;
}

static void index_insert(struct dir_index *x, struct dentry *de)
{
	uint32_t b;

	if (x->count >= x->nbuckets) {
		uint32_t nb = x->nbuckets * 2;
		struct dentry **nh = calloc(nb, sizeof(*nh));

		if (nh) {
			for (uint32_t k = 0; k < x->nbuckets; k++) {
				struct dentry *e = x->buckets[k], *n;

				for (; e; e = n) {
					n = e->hnext;
					e->hnext = nh[e->hash & (nb - 1)];
					nh[e->hash & (nb - 1)] = e;
				}
			}
			free(x->buckets);
			x->buckets = nh;
			x->nbuckets = nb;
		}
	}
	b = de->hash & (x->nbuckets - 1);
	de->hnext = x->buckets[b];
	x->buckets[b] = de;
	x->slots[de->slot] = de;
	x->count++;
}

static void index_remove(struct dir_index *x, struct dentry *de)
{
	struct dentry **p = &x->buckets[de->hash & (x->nbuckets - 1)];

	for (; *p; p = &(*p)->hnext) {
		if (*p == de) {
			*p = de->hnext;
			break;
		}
	}
	x->slots[de->slot] = NULL;
	x->count--;
}

static struct dentry *dentry_new(const char *name, size_t len, uint64_t ino,
				 uint8_t type, uint32_t slot)
{
	struct dentry *de = malloc(sizeof(*de) + len + 1);

	if (!de)
		return NULL;
	de->hnext = NULL;
	de->ino = ino;
	de->slot = slot;
	de->hash = name_hash(name, len);
	de->type = type;
	de->nslots = (uint8_t)DAXFS_DIRENT_SLOTS(len);
	de->name_len = (uint8_t)len;
	memcpy(de->name, name, len);
	de->name[len] = '\0';
	return de;
}

void dir_unload(struct inode *dir)
{
	struct dir_index *x = dir->dir;

	if (!x)
		return;
	for (uint32_t s = 0; s < x->nslots; s++)
		free(x->slots[s]);
	free(x->slots);
	free(x->buckets);
	free(x);
	dir->dir = NULL;
}

/* slot_off -- region offset of a slot */
static int slot_off(const struct inode *dir, uint32_t slot, uint64_t *off)
{
	uint64_t pblk, run;

	if (!ext_lookup(dir, slot / SPB, &pblk, &run))
		return -EUCLEAN;
	*off = FS_BLOCK_OFF(pblk) + (uint64_t)(slot % SPB) * DAXFS_SLOT_SIZE;
	return 0;
}

/* parse_block -- index the entries of directory block lb; -ENOMEM when
 * an entry that passed its checks could not be indexed */
static int parse_block(struct daxfs *fs, struct inode *dir,
		       const uint8_t *buf, uint64_t lb, unsigned *bad)
{
	struct dir_index *x = dir->dir;

	for (uint32_t s = 0; s < SPB;) {
		const struct daxfs_ddirent *de =
			(const void *)(buf + s * DAXFS_SLOT_SIZE);
		const char *name = (const char *)(de + 1);
		struct dentry *d;

		if (!de->ino) {
			s++;
			continue;
		}
		/* the entry must fit its block before its name is read */
		if (!de->name_len ||
		    s + DAXFS_DIRENT_SLOTS(de->name_len) > SPB ||
		    dirent_check(de, name) || de->ino >= fs->ninodes ||
		    dir_lookup(dir, name, de->name_len)) {
			(*bad)++;
			s++;
			continue;
		}
		d = dentry_new(name, de->name_len, de->ino, de->type,
			       (uint32_t)(lb * SPB + s));
		/* an index missing a good entry would let its name be
		 * created again, a duplicate on the region: fail instead */
		if (!d)
			return -ENOMEM;
		index_insert(x, d);
		s += de->nslots;
	}
	return 0;
}

/* dir_load -- build a directory's index from its blocks */
int dir_load(struct daxfs *fs, struct inode *dir)
{
	struct dir_index *x;
	uint64_t nb, have = 0;
	uint8_t *buf;
	unsigned bad = 0;
	int ret;

	if (dir->dir)
		return 0;
	ret = ext_load(fs, dir);
	if (ret)
		return ret;
	nb = dir->d.size / BS;
	for (uint32_t k = 0; k < dir->next; k++)
		have += dir->ext[k].len;
	if (dir->d.size % BS || have != nb || nb > UINT32_MAX / SPB ||
	    (dir->next && dir->ext[dir->next - 1].lblk +
			  dir->ext[dir->next - 1].len != nb)) {
		daxfs_seterr("directory %llu: size and blocks disagree",
			     (unsigned long long)dir->ino);
		return -EUCLEAN;
	}
	x = calloc(1, sizeof(*x));
	buf = malloc(BS);
	if (x) {
		x->nbuckets = 16;
		x->buckets = calloc(x->nbuckets, sizeof(*x->buckets));
		x->nslots = (uint32_t)(nb * SPB);
		x->slots = calloc(MAX(x->nslots, 1), sizeof(*x->slots));
	}
	if (!x || !buf || !x->buckets || !x->slots) {
		if (x) {
			free(x->buckets);
			free(x->slots);
		}
		free(x);
		free(buf);
		return -ENOMEM;
	}
	dir->dir = x;
	for (uint64_t lb = 0; lb < nb && !ret; lb++) {
		uint64_t pblk, run;

		ext_lookup(dir, lb, &pblk, &run);
		ret = region_read(fs->r, FS_BLOCK_OFF(pblk), buf, BS);
		if (!ret)
			ret = parse_block(fs, dir, buf, lb, &bad);
	}
	free(buf);
	if (ret) {
		dir_unload(dir);
		return ret;
	}
	if (bad)
		syslog(LOG_WARNING, "daxfs: directory %llu: %u damaged "
		       "entries skipped; run daxfsctl fsck",
		       (unsigned long long)dir->ino, bad);
	return 0;
}

/* dir_lookup -- the entry called name, or NULL */
struct dentry *dir_lookup(struct inode *dir, const char *name, size_t len)
{
	struct dir_index *x = dir->dir;
	uint32_t h = name_hash(name, len);
	struct dentry *de;

	for (de = x->buckets[h & (x->nbuckets - 1)]; de; de = de->hnext)
		if (de->hash == h && de->name_len == len &&
		    !memcmp(de->name, name, len))
			return de;
	return NULL;
}

/* dir_next -- the first entry at or after *slot; advances *slot */
struct dentry *dir_next(struct inode *dir, uint32_t *slot)
{
	struct dir_index *x = dir->dir;

	for (uint32_t s = *slot; s < x->nslots; s++) {
		if (x->slots[s]) {
			*slot = s;
			return x->slots[s];
		}
	}
	*slot = x->nslots;
	return NULL;
}

/* find_room -- first run of `need` free slots inside one block */
static int64_t find_room(struct dir_index *x, uint32_t need)
{
	for (uint32_t b = x->free_hint; b < x->nslots / SPB; b++) {
		uint32_t s = b * SPB, end = s + SPB, run = 0;

		while (s < end) {
			if (x->slots[s]) {
				s += x->slots[s]->nslots;
				run = 0;
				continue;
			}
			if (++run == need)
				return (int64_t)(s + 1 - need);
			s++;
		}
	}
	return -1;
}

/* grow -- add a zeroed block to the directory */
static int grow(struct daxfs *fs, struct tx *tx, struct inode *dir)
{
	struct dir_index *x = dir->dir;
	uint64_t lb = x->nslots / SPB;
	struct dentry **ns;
	struct tx_range got;
	int ret;

	ns = realloc(x->slots, (x->nslots + SPB) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	x->slots = ns;
	memset(ns + x->nslots, 0, SPB * sizeof(*ns));
	ret = alloc_reserve(fs, ext_last_pblk(dir, lb), 1, 0, &got);
	if (ret)
		return ret;
	/* unreachable until commit: zero it directly, durably */
	ret = region_zero(fs->r, FS_BLOCK_OFF(got.start), BS);
	if (!ret)
		ret = region_persist(fs->r, FS_BLOCK_OFF(got.start), BS);
	if (ret) {
		alloc_unreserve(fs, got.start, 1);
		return ret;
	}
	ret = ext_insert(fs, tx, dir, lb, got.start, 1);
	if (ret)
		return ret;		/* the abort returns the block */
	x->nslots += SPB;
	dir->d.size += BS;
	return 0;
}

/* encode -- an entry's slots, ready to log */
static void encode(uint8_t *buf, const char *name, size_t len, uint64_t ino,
		   uint8_t type)
{
	struct daxfs_ddirent *h = (void *)buf;
	uint32_t crc;

	memset(buf, 0, DAXFS_DIRENT_SLOTS(len) * DAXFS_SLOT_SIZE);
	h->ino = ino;
	h->name_len = (uint8_t)len;
	h->type = type;
	h->nslots = (uint8_t)DAXFS_DIRENT_SLOTS(len);
	memcpy(buf + sizeof(*h), name, len);
	crc = crc32c(0, h, sizeof(*h));
	h->crc = crc32c(crc, name, len);
}

/* dir_add -- add name -> ino; the caller checked it does not exist */
int dir_add(struct daxfs *fs, struct tx *tx, struct inode *dir,
	    const char *name, size_t len, uint64_t ino, uint32_t mode)
{
	struct dir_index *x = dir->dir;
	uint8_t buf[5 * DAXFS_SLOT_SIZE];
	uint32_t need = (uint32_t)DAXFS_DIRENT_SLOTS(len);
	struct dentry *de;
	uint64_t off;
	int64_t s;
	int ret;

	if (!len || len > DAXFS_NAME_MAX)
		return -ENAMETOOLONG;
	s = find_room(x, need);
	if (s < 0) {
		ret = grow(fs, tx, dir);
		if (ret)
			return ret;
		s = find_room(x, need);
		if (s < 0)
			return -EIO;
	}
	de = dentry_new(name, len, ino, mode_to_dtype(mode), (uint32_t)s);
	if (!de)
		return -ENOMEM;
	ret = slot_off(dir, (uint32_t)s, &off);
	if (ret) {
		free(de);
		return ret;
	}
	encode(buf, name, len, ino, de->type);
	ret = tx_write(tx, off, buf, need * DAXFS_SLOT_SIZE);
	if (ret) {
		free(de);
		return ret;
	}
	index_insert(x, de);
	x->free_hint = (uint32_t)s / SPB;
	return 0;
}

/* dir_remove -- delete an entry (and free its memory) */
int dir_remove(struct daxfs *fs, struct tx *tx, struct inode *dir,
	       struct dentry *de)
{
	struct dir_index *x = dir->dir;
	uint64_t off;
	int ret;

	(void)fs;
	ret = slot_off(dir, de->slot, &off);
	if (!ret)
		ret = tx_zero(tx, off, (uint64_t)de->nslots * DAXFS_SLOT_SIZE);
	if (ret)
		return ret;
	index_remove(x, de);
	if (de->slot / SPB < x->free_hint)
		x->free_hint = de->slot / SPB;
	free(de);
	return 0;
}

/* dir_retarget -- point an existing entry at another inode */
int dir_retarget(struct daxfs *fs, struct tx *tx, struct inode *dir,
		 struct dentry *de, uint64_t ino, uint32_t mode)
{
	uint8_t buf[5 * DAXFS_SLOT_SIZE];
	uint64_t off;
	int ret;

	(void)fs;
	ret = slot_off(dir, de->slot, &off);
	if (ret)
		return ret;
	encode(buf, de->name, de->name_len, ino, mode_to_dtype(mode));
	ret = tx_write(tx, off, buf, (uint64_t)de->nslots * DAXFS_SLOT_SIZE);
	if (ret)
		return ret;
	de->ino = ino;
	de->type = mode_to_dtype(mode);
	return 0;
}
