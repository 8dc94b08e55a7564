/*
 * xattr.c -- extended attributes: all of an inode's in one block, which
 * every change replaces as a whole (copy-on-write), so a change is one
 * small transaction that swaps the block pointer.
 *
 * Owns: xattr blocks.  Callers hold meta_lock (exclusive to change).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "daxfs_i.h"

#define BS DAXFS_BLOCK_SIZE
#define ENTRY_SIZE(nl, vl) ALIGN_UP(sizeof(struct daxfs_dxattr) + (nl) + (vl), 4)

/* xattr_block_check -- is a block a well-formed xattr block of ino? */
int xattr_block_check(const void *blk, uint64_t ino)
{
	const struct daxfs_dxattrblk *h = blk;
	struct daxfs_dxattrblk c = *h;
	const uint8_t *p = (const uint8_t *)(h + 1), *end;
	uint32_t crc;

	if (h->magic != DAXFS_XATTR_MAGIC || h->ino != ino ||
	    h->used > DAXFS_XATTR_SPACE || h->reserved)
		return -EUCLEAN;
	c.crc = 0;
	crc = crc32c(0, &c, sizeof(c));
	crc = crc32c(crc, p, h->used);
	if (crc != h->crc)
		return -EUCLEAN;
	end = p + h->used;
	for (uint32_t k = 0; k < h->count; k++) {
		const struct daxfs_dxattr *e = (const void *)p;

		if (end - p < (ptrdiff_t)sizeof(*e) || !e->name_len ||
		    e->reserved ||
		    (uint64_t)(end - p) < ENTRY_SIZE(e->name_len,
						     e->value_len) ||
		    memchr(p + sizeof(*e), 0, e->name_len))
			return -EUCLEAN;
		p += ENTRY_SIZE(e->name_len, e->value_len);
	}
	return p == end ? 0 : -EUCLEAN;
}

/* load -- the inode's xattr block into buf (an empty one if none) */
static int load(struct daxfs *fs, struct inode *i, uint8_t *buf)
{
	struct daxfs_dxattrblk *h = (void *)buf;
	int ret;

	if (!i->d.xattr_block) {
		memset(buf, 0, BS);
		h->magic = DAXFS_XATTR_MAGIC;
		h->ino = i->ino;
		return 0;
	}
	ret = region_read(fs->r, FS_BLOCK_OFF(i->d.xattr_block), buf, BS);
	if (ret)
		return ret;
	if (xattr_block_check(buf, i->ino)) {
		daxfs_seterr("inode %llu: xattr block is damaged",
			     (unsigned long long)i->ino);
		return -EUCLEAN;
	}
	return 0;
}

/* find -- the entry called name, or NULL */
static struct daxfs_dxattr *find(uint8_t *buf, const char *name)
{
	struct daxfs_dxattrblk *h = (void *)buf;
	uint8_t *p = buf + sizeof(*h);
	size_t nl = strlen(name);

	for (uint32_t k = 0; k < h->count; k++) {
		struct daxfs_dxattr *e = (void *)p;

		if (e->name_len == nl && !memcmp(p + sizeof(*e), name, nl))
			return e;
		p += ENTRY_SIZE(e->name_len, e->value_len);
	}
	return NULL;
}

int xattr_get(struct daxfs *fs, struct inode *i, const char *name,
	      void *value, size_t size)
{
	uint8_t buf[BS];
	struct daxfs_dxattr *e;
	int ret = load(fs, i, buf);

	if (ret)
		return ret;
	e = find(buf, name);
	if (!e)
		return -ENODATA;
	if (size == 0)
		return e->value_len;
	if (size < e->value_len)
		return -ERANGE;
	memcpy(value, (uint8_t *)(e + 1) + e->name_len, e->value_len);
	return e->value_len;
}

int xattr_list(struct daxfs *fs, struct inode *i, char *out, size_t size)
{
	uint8_t buf[BS];
	struct daxfs_dxattrblk *h = (void *)buf;
	uint8_t *p = buf + sizeof(*h);
	size_t total = 0;
	int ret = load(fs, i, buf);

	if (ret)
		return ret;
	for (uint32_t k = 0; k < h->count; k++) {
		struct daxfs_dxattr *e = (void *)p;

		if (size) {
			if (total + e->name_len + 1 > size)
				return -ERANGE;
			memcpy(out + total, p + sizeof(*e), e->name_len);
			out[total + e->name_len] = '\0';
		}
		total += e->name_len + 1u;
		p += ENTRY_SIZE(e->name_len, e->value_len);
	}
	return (int)total;
}

/* replace -- store buf as the inode's new xattr block, or none if empty */
static int replace(struct daxfs *fs, struct inode *i, uint8_t *buf)
{
	struct daxfs_dxattrblk *h = (void *)buf;
	struct tx_range got = { 0, 0 };
	struct tx *tx;
	int ret;

	if (h->count) {
		h->crc = 0;
		h->crc = crc32c(crc32c(0, h, sizeof(*h)), h + 1, h->used);
		ret = alloc_reserve(fs, i->d.xattr_block, 1, 0, &got);
		if (ret)
			return ret;
		/* unreachable until the commit: write directly, durably */
		ret = region_write(fs->r, FS_BLOCK_OFF(got.start), buf, BS);
		if (!ret)
			ret = region_persist(fs->r, FS_BLOCK_OFF(got.start), BS);
		if (ret) {
			alloc_unreserve(fs, got.start, 1);
			return ret;
		}
	}
	tx = tx_begin(fs);
	if (got.len)
		tx_alloc(tx, got.start, 1);
	if (i->d.xattr_block) {
		tx_free(tx, i->d.xattr_block, 1);
		i->d.blocks--;
	}
	i->d.xattr_block = got.start;
	i->d.blocks += got.len;
	inode_touch(i, TOUCH_C);
	tx_dirty_inode(tx, i);
	return tx_commit(tx);
}

/* drop -- remove entry e from buf */
static void drop(uint8_t *buf, struct daxfs_dxattr *e)
{
	struct daxfs_dxattrblk *h = (void *)buf;
	uint8_t *p = (uint8_t *)e;
	size_t sz = ENTRY_SIZE(e->name_len, e->value_len);
	uint8_t *end = buf + sizeof(*h) + h->used;

	memmove(p, p + sz, (size_t)(end - (p + sz)));
	memset(end - sz, 0, sz);
	h->used -= (uint32_t)sz;
	h->count--;
}

int xattr_set(struct daxfs *fs, struct inode *i, const char *name,
	      const void *value, size_t size, int flags)
{
	uint8_t buf[BS];
	struct daxfs_dxattrblk *h = (void *)buf;
	struct daxfs_dxattr *e;
	size_t nl = strlen(name), sz;
	int ret;

	if (!nl || nl > 255)
		return -ERANGE;
	if (size > UINT16_MAX)
		return -E2BIG;
	ret = load(fs, i, buf);
	if (ret)
		return ret;
	e = find(buf, name);
	if (e && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!e && (flags & XATTR_REPLACE))
		return -ENODATA;
	if (e)
		drop(buf, e);
	sz = ENTRY_SIZE(nl, size);
	if (h->used + sz > DAXFS_XATTR_SPACE)
		return -ENOSPC;
	e = (void *)(buf + sizeof(*h) + h->used);
	e->name_len = (uint8_t)nl;
	e->reserved = 0;
	e->value_len = (uint16_t)size;
	memcpy(e + 1, name, nl);
	if (size)
		memcpy((uint8_t *)(e + 1) + nl, value, size);
	h->used += (uint32_t)sz;
	h->count++;
	return replace(fs, i, buf);
}

int xattr_remove(struct daxfs *fs, struct inode *i, const char *name)
{
	uint8_t buf[BS];
	struct daxfs_dxattr *e;
	int ret = load(fs, i, buf);

	if (ret)
		return ret;
	e = find(buf, name);
	if (!e)
		return -ENODATA;
	drop(buf, e);
	return replace(fs, i, buf);
}
