/*
 * test_xattr.c -- extended attributes: set, get, list and remove with
 * XATTR_CREATE / XATTR_REPLACE, -ENODATA, -ERANGE for a small buffer or a
 * bad name, -E2BIG, -ENOSPC exactly where format.h says the block is full
 * (entries 4-byte aligned after a 32-byte header), random operations
 * against a model, block accounting (each change replaces the block; the
 * old one is freed, no block once the last attribute goes), persistence
 * across remounts, and a damaged block reported as -EUCLEAN.
 */
#include <sys/xattr.h>

#include "testlib.h"

#define MiB (1ULL << 20)
#define MAXX 64

struct xa {
	char name[DAXFS_NAME_MAX + 1];
	uint8_t value[600];
	uint32_t vlen;
	bool present;
};

struct xmodel {
	struct xa v[MAXX];
	uint32_t n;
};

/* entry_size -- bytes an attribute takes in the block (format.h) */
static uint64_t entry_size(size_t nl, size_t vl)
{
	return ALIGN_UP(sizeof(struct daxfs_dxattr) + nl + vl, 4);
}

/* model_used -- bytes the present attributes take in the block */
static uint64_t model_used(const struct xmodel *m)
{
	uint64_t u = 0;

	for (uint32_t k = 0; k < m->n; k++)
		if (m->v[k].present)
			u += entry_size(strlen(m->v[k].name), m->v[k].vlen);
	return u;
}

/* check_xattrs -- every attribute, the list, the block and the counts */
static void check_xattrs(struct daxfs *fs, struct inode *i,
			 const struct xmodel *m, uint64_t free0)
{
	uint8_t val[1024];
	char list[8192];
	uint32_t present = 0;
	size_t total = 0;
	int n;

	for (uint32_t k = 0; k < m->n; k++) {
		const struct xa *x = &m->v[k];

		n = xattr_get(fs, i, x->name, val, sizeof(val));
		if (!x->present) {
			CHECK_ERR(n, -ENODATA);
			continue;
		}
		CHECK_EQ(n, x->vlen);
		CHECK_MEM(val, x->value, x->vlen);
		CHECK_EQ(xattr_get(fs, i, x->name, NULL, 0), x->vlen);
		present++;
		total += strlen(x->name) + 1;
	}
	n = xattr_list(fs, i, NULL, 0);
	CHECK_EQ(n, total);
	n = xattr_list(fs, i, list, sizeof(list));
	CHECK_EQ(n, total);
	/* each name once, each one present */
	for (size_t p = 0, seen = 0; p < total; seen++) {
		size_t l = strlen(list + p);
		bool found = false;

		CHECK(seen < present);
		for (uint32_t k = 0; k < m->n; k++)
			if (m->v[k].present && !strcmp(m->v[k].name, list + p))
				found = true;
		CHECK_MSG(found, "listed name \"%s\" is not in the model",
			  list + p);
		p += l + 1;
	}
	if (total)
		CHECK_ERR(xattr_list(fs, i, list, total - 1), -ERANGE);
	/* one block while any attribute exists, none otherwise */
	if (present) {
		uint8_t blk[DAXFS_BLOCK_SIZE];
		const struct daxfs_dxattrblk *h = (const void *)blk;

		CHECK(i->d.xattr_block >= fs->data_start);
		CHECK(bitmap_test(fs->alloc.committed, i->d.xattr_block));
		CHECK_OK(region_read(fs->r, FS_BLOCK_OFF(i->d.xattr_block),
				     blk, sizeof(blk)));
		CHECK_OK(xattr_block_check(blk, i->ino));
		CHECK_EQ(h->count, present);
		CHECK_EQ(h->used, model_used(m));
		CHECK_EQ(fs->alloc.free, free0 - 1);
		CHECK_EQ(i->d.blocks, 1);
	} else {
		CHECK_EQ(i->d.xattr_block, 0);
		CHECK_EQ(fs->alloc.free, free0);
		CHECK_EQ(i->d.blocks, 0);
	}
}

/* m_set -- xattr_set, and the model if it should succeed */
static int m_set(struct daxfs *fs, struct inode *i, struct xmodel *m,
		 const char *name, const void *val, uint32_t vlen, int flags)
{
	struct xa *x = NULL;
	int ret;

	for (uint32_t k = 0; k < m->n; k++)
		if (!strcmp(m->v[k].name, name))
			x = &m->v[k];
	tl_lock(fs);
	ret = xattr_set(fs, i, name, val, vlen, flags);
	tl_unlock(fs);
	if (ret)
		return ret;
	if (!x) {
		CHECK(m->n < MAXX);
		x = &m->v[m->n++];
		snprintf(x->name, sizeof(x->name), "%s", name);
	}
	CHECK(vlen <= sizeof(x->value));
	memcpy(x->value, val, vlen);
	x->vlen = vlen;
	x->present = true;
	return 0;
}

/* m_remove -- xattr_remove, and the model if it succeeded */
static int m_remove(struct daxfs *fs, struct inode *i, struct xmodel *m,
		    const char *name)
{
	int ret;

	tl_lock(fs);
	ret = xattr_remove(fs, i, name);
	tl_unlock(fs);
	if (!ret)
		for (uint32_t k = 0; k < m->n; k++)
			if (!strcmp(m->v[k].name, name))
				m->v[k].present = false;
	return ret;
}

/* test_semantics -- the rules of set, get, list and remove */
static void test_semantics(const char *path)
{
	struct xmodel *m = calloc(1, sizeof(*m));
	struct daxfs *fs;
	struct inode *i;
	uint64_t free0, ino;
	char buf[300], big[DAXFS_NAME_MAX + 2];

	CHECK(m);
	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	i = tl_new_inode(fs, DAXFS_S_IFREG | 0644);
	ino = i->ino;
	check_xattrs(fs, i, m, free0);
	CHECK_ERR(xattr_get(fs, i, "user.none", buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(xattr_list(fs, i, buf, sizeof(buf)), 0);
	CHECK_ERR(m_remove(fs, i, m, "user.none"), -ENODATA);

	CHECK_OK(m_set(fs, i, m, "user.a", "1", 1, 0));
	check_xattrs(fs, i, m, free0);
	CHECK_ERR(m_set(fs, i, m, "user.a", "2", 1, XATTR_CREATE), -EEXIST);
	CHECK_ERR(m_set(fs, i, m, "user.b", "2", 1, XATTR_REPLACE), -ENODATA);
	check_xattrs(fs, i, m, free0);
	CHECK_OK(m_set(fs, i, m, "user.a", "hello", 5, XATTR_REPLACE));
	CHECK_OK(m_set(fs, i, m, "user.b", "", 0, XATTR_CREATE));
	CHECK_OK(m_set(fs, i, m, "trusted.c", "xyz", 3, 0));
	check_xattrs(fs, i, m, free0);
	/* sizes: a query, too small, just right */
	CHECK_EQ(xattr_get(fs, i, "user.a", NULL, 0), 5);
	CHECK_ERR(xattr_get(fs, i, "user.a", buf, 4), -ERANGE);
	CHECK_EQ(xattr_get(fs, i, "user.a", buf, 5), 5);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(xattr_get(fs, i, "user.b", buf, sizeof(buf)), 0);
	/* a prefix or an extension of a name is another name */
	CHECK_ERR(xattr_get(fs, i, "user.", buf, sizeof(buf)), -ENODATA);
	CHECK_ERR(xattr_get(fs, i, "user.aa", buf, sizeof(buf)), -ENODATA);
	/* names: 255 bytes fit, 256 and empty do not; values up to 64 KiB */
	memset(big, 'n', sizeof(big));
	memcpy(big, "user.", 5);
	big[DAXFS_NAME_MAX] = '\0';
	CHECK_OK(m_set(fs, i, m, big, "v", 1, 0));
	big[DAXFS_NAME_MAX] = 'n';
	big[DAXFS_NAME_MAX + 1] = '\0';
	CHECK_ERR(m_set(fs, i, m, big, "v", 1, 0), -ERANGE);
	CHECK_ERR(m_set(fs, i, m, "", "v", 1, 0), -ERANGE);
	{
		static uint8_t huge[UINT16_MAX + 2];

		CHECK_ERR(m_set(fs, i, m, "user.huge", huge, sizeof(huge), 0),
			  -E2BIG);
		/* fits the field, not the block */
		CHECK_ERR(m_set(fs, i, m, "user.huge", huge, 5000, 0),
			  -ENOSPC);
	}
	check_xattrs(fs, i, m, free0);
	/* remove all: the block goes */
	CHECK_OK(m_remove(fs, i, m, "user.a"));
	CHECK_ERR(m_remove(fs, i, m, "user.a"), -ENODATA);
	check_xattrs(fs, i, m, free0);
	for (uint32_t k = 0; k < m->n; k++)
		if (m->v[k].present)
			CHECK_OK(m_remove(fs, i, m, m->v[k].name));
	check_xattrs(fs, i, m, free0);
	CHECK_EQ(i->d.xattr_block, 0);

	/* persistence */
	CHECK_OK(m_set(fs, i, m, "user.keep", "persist", 7, 0));
	CHECK_OK(m_set(fs, i, m, "security.x", "\0\1\2", 3, 0));
	fs = tl_remount(fs, path);
	i = tl_get_inode(fs, ino);
	check_xattrs(fs, i, m, free0);
	/* deleting the inode frees the block */
	tl_delete_inode(fs, i);
	CHECK_EQ(fs->alloc.free, free0);
	CHECK_OK(fs_unmount(fs, true));
	free(m);
}

/* test_full -- -ENOSPC exactly when the entries would not fit */
static void test_full(const char *path)
{
	struct xmodel *m = calloc(1, sizeof(*m));
	struct daxfs *fs;
	struct inode *i;
	uint64_t free0, ino, used = 0;
	uint8_t val[600];
	char name[64];
	int k, ret;

	CHECK(m);
	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	i = tl_new_inode(fs, DAXFS_S_IFREG | 0644);
	ino = i->ino;
	for (k = 0;; k++) {
		uint32_t vlen = (uint32_t)tl_rand_range(0, 300);
		uint64_t sz;

		snprintf(name, sizeof(name), "user.attr%d", k);
		sz = entry_size(strlen(name), vlen);
		tl_fill_random(val, vlen);
		ret = m_set(fs, i, m, name, val, vlen, XATTR_CREATE);
		if (used + sz > DAXFS_XATTR_SPACE) {
			CHECK_MSG(ret == -ENOSPC, "entry of %" PRIu64 " bytes "
				  "with %" PRIu64 " of %zu used: %d", sz, used,
				  (size_t)DAXFS_XATTR_SPACE, ret);
			break;
		}
		CHECK_OK(ret);
		used += sz;
	}
	CHECK(k > 10);
	check_xattrs(fs, i, m, free0);
	/* what is left fits exactly: fill it to the last byte */
	{
		uint64_t left = DAXFS_XATTR_SPACE - used;

		snprintf(name, sizeof(name), "user.z");
		if (left >= entry_size(strlen(name), 0)) {
			uint32_t vlen = (uint32_t)(left - sizeof(struct
				daxfs_dxattr) - strlen(name));

			tl_fill_random(val, vlen);
			CHECK_OK(m_set(fs, i, m, name, val, vlen, 0));
			CHECK_EQ(model_used(m), DAXFS_XATTR_SPACE);
			/* now even the smallest entry fails */
			CHECK_ERR(m_set(fs, i, m, "user.y", "", 0, 0), -ENOSPC);
		}
	}
	/* growing a value in a full block fails and keeps the old one */
	CHECK_ERR(m_set(fs, i, m, "user.attr0", val, 400, XATTR_REPLACE),
		  -ENOSPC);
	check_xattrs(fs, i, m, free0);
	/* shrinking one makes room */
	CHECK_OK(m_set(fs, i, m, "user.attr0", "", 0, 0));
	check_xattrs(fs, i, m, free0);
	fs = tl_remount(fs, path);
	i = tl_get_inode(fs, ino);
	check_xattrs(fs, i, m, free0);
	CHECK_OK(fs_unmount(fs, true));
	free(m);
}

/* test_random -- random operations against the model */
static void test_random(const char *path)
{
	struct xmodel *m = calloc(1, sizeof(*m));
	struct daxfs *fs;
	struct inode *i;
	uint64_t free0, ino, counts[4] = { 0 };
	static const char *prefix[] = { "user.", "trusted.", "security.",
					"system." };

	CHECK(m);
	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	i = tl_new_inode(fs, DAXFS_S_IFREG | 0644);
	ino = i->ino;
	/* a fixed pool of names, so sets hit existing ones often */
	for (uint32_t k = 0; k < 40; k++) {
		uint32_t len = (uint32_t)tl_rand_range(1, 60);

		snprintf(m->v[k].name, sizeof(m->v[k].name), "%s",
			 prefix[tl_rand_below(ARRAY_SIZE(prefix))]);
		for (uint32_t c = 0; c < len; c++)
			m->v[k].name[strlen(m->v[k].name)] =
				(char)('a' + tl_rand_below(26));
	}
	m->n = 40;
	for (int op = 0; op < 2000; op++) {
		struct xa *x = &m->v[tl_rand_below(m->n)];
		uint8_t val[600];
		uint32_t vlen = (uint32_t)(tl_rand_below(4) ?
				tl_rand_range(0, 64) : tl_rand_range(0, 600));
		int flags = (int)tl_rand_below(3);
		int ret;

		if (flags == 1)
			flags = XATTR_CREATE;
		else if (flags == 2)
			flags = XATTR_REPLACE;
		tl_fill_random(val, vlen);
		if (tl_rand_below(3)) {
			uint64_t need = model_used(m) -
				(x->present ? entry_size(strlen(x->name),
							 x->vlen) : 0) +
				entry_size(strlen(x->name), vlen);
			int want = (flags == XATTR_CREATE && x->present) ?
				   -EEXIST :
				   (flags == XATTR_REPLACE && !x->present) ?
				   -ENODATA :
				   need > DAXFS_XATTR_SPACE ? -ENOSPC : 0;

			ret = m_set(fs, i, m, x->name, val, vlen, flags);
			CHECK_MSG(ret == want, "set %s (%u bytes, flags %d): "
				  "%d, want %d", x->name, vlen, flags, ret,
				  want);
			counts[ret ? 1 : 0]++;
		} else {
			int want = x->present ? 0 : -ENODATA;

			ret = m_remove(fs, i, m, x->name);
			CHECK_EQ(ret, want);
			counts[2]++;
		}
		check_xattrs(fs, i, m, free0);
		if (op % 250 == 249) {
			fs = tl_remount(fs, path);
			i = tl_get_inode(fs, ino);
			check_xattrs(fs, i, m, free0);
			counts[3]++;
		}
	}
	printf("  random: %" PRIu64 " sets, %" PRIu64 " refused, %" PRIu64
	       " removes, %" PRIu64 " remounts\n", counts[0], counts[1],
	       counts[2], counts[3]);
	CHECK_OK(fs_unmount(fs, true));
	free(m);
}

/* test_damaged -- a damaged block is reported, not trusted */
static void test_damaged(const char *path)
{
	struct daxfs *fs;
	struct inode *i;
	uint64_t ino, blk;
	char buf[64];
	uint8_t c;

	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	i = tl_new_inode(fs, DAXFS_S_IFREG | 0644);
	ino = i->ino;
	tl_lock(fs);
	CHECK_OK(xattr_set(fs, i, "user.one", "1", 1, 0));
	CHECK_OK(xattr_set(fs, i, "user.two", "22", 2, 0));
	tl_unlock(fs);
	blk = i->d.xattr_block;
	fs = tl_remount(fs, path);
	/* flip a byte of the first entry's name */
	CHECK_OK(region_read(fs->r, FS_BLOCK_OFF(blk) + 40, &c, 1));
	c ^= 0x01;
	CHECK_OK(region_write(fs->r, FS_BLOCK_OFF(blk) + 40, &c, 1));
	i = tl_get_inode(fs, ino);
	CHECK_ERR(xattr_get(fs, i, "user.one", buf, sizeof(buf)), -EUCLEAN);
	CHECK_ERR(xattr_list(fs, i, buf, sizeof(buf)), -EUCLEAN);
	tl_lock(fs);
	CHECK_ERR(xattr_set(fs, i, "user.three", "3", 1, 0), -EUCLEAN);
	tl_unlock(fs);
	/* a wrong owner */
	{
		uint8_t b[DAXFS_BLOCK_SIZE];

		CHECK_OK(region_read(fs->r, FS_BLOCK_OFF(blk), b, sizeof(b)));
		b[40] ^= 0x01;
		CHECK_OK(xattr_block_check(b, ino));
		CHECK_ERR(xattr_block_check(b, ino + 1), -EUCLEAN);
	}
	CHECK_OK(fs_unmount(fs, true));
}

int main(void)
{
	const char *path;

	tl_init("xattr");
	path = tl_region_path("r");
	test_semantics(path);
	test_full(path);
	test_random(path);
	test_damaged(path);
	printf("xattr: all passed\n");
	return 0;
}
