/*
 * fuzz_xattr.c -- an inode's xattr block: xattr_block_check() on the raw
 * block, then listing and reading through xattr_list()/xattr_get() on a
 * mounted filesystem, then sets and removals, each committed.  What the
 * list names must be readable, sizes must be honoured (ERANGE, never an
 * overrun), a value set must read back, and after every commit the new
 * block must pass the check and the dinode in the region match memory.
 *
 * Input: [flags] [8 operations of 4 bytes] [block...]
 *   flags bit 0: make the block's magic, owner and checksum right
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE
#define NOPS 8
#define OPSZ 4
#define HDR (1 + NOPS * OPSZ)

static struct fz_live live;
static struct daxfs *fs;
static uint64_t xb;			/* where the fuzzed block goes */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct fz_image *tmpl = fz_templates();
	const char *dir = fz_seed_dir();

	(void)argc;
	(void)argv;
	fz_live_init(&live, &tmpl[FZ_CLEAN]);
	fs = live.fs;
	xb = fs->nblocks - 8;
	if (dir) {
		static const uint8_t ops[NOPS * OPSZ] = {
			0, 1, 5, 0,  1, 0, 0, 0,  2, 0, 0, 0,  0, 2, 200, 0,
			3, 3, 0, 0,  0, 4, 0, 1,  1, 1, 0, 0,  2, 7, 0, 0,
		};
		struct daxfs_dinode d;
		uint8_t buf[HDR + BS];
		struct daxfs_dxattrblk h;

		memcpy(&d, tmpl[FZ_CLEAN].bytes + fs->itable_off +
		       tmpl[FZ_CLEAN].ino_a * DAXFS_INODE_SIZE, sizeof(d));
		buf[0] = 0x01;
		memcpy(buf + 1, ops, sizeof(ops));
		memcpy(buf + HDR, tmpl[FZ_CLEAN].bytes +
		       FS_BLOCK_OFF(d.xattr_block), BS);
		memcpy(&h, buf + HDR, sizeof(h));
		fz_write_seed(dir, "inode-a", buf,
			      HDR + sizeof(h) + h.used);
		buf[0] = 0;
		fz_write_seed(dir, "inode-a-raw", buf,
			      HDR + sizeof(h) + h.used);
		exit(0);
	}
	return 0;
}

static const char *names[] = {
	"user.color", "user.n", "trusted.empty", "user.x", "security.s",
	"user.a-much-longer-name-for-an-attribute", "trusted.t", "user.",
};

/* check_reads -- everything the list names reads back, within sizes */
static void check_reads(struct inode *i)
{
	static char list[8192], val[70000];
	int n, m, v;

	n = xattr_list(fs, i, NULL, 0);
	if (n < 0) {
		FZ_ASSERT(n == -EUCLEAN);
		return;
	}
	FZ_ASSERT((size_t)n <= sizeof(list));
	m = xattr_list(fs, i, list, (size_t)n);
	FZ_ASSERT(m == n);
	if (n)
		FZ_ASSERT(xattr_list(fs, i, list, (size_t)n - 1) == -ERANGE);
	for (int p = 0; p < n; p += (int)strlen(list + p) + 1) {
		FZ_ASSERT(memchr(list + p, 0, (size_t)(n - p)));
		v = xattr_get(fs, i, list + p, NULL, 0);
		FZ_ASSERT(v >= 0 && v <= UINT16_MAX);
		FZ_ASSERT(xattr_get(fs, i, list + p, val, (size_t)v) == v);
		if (v > 1)	/* size 0 asks for the size */
			FZ_ASSERT(xattr_get(fs, i, list + p, val,
					    (size_t)v - 1) == -ERANGE);
	}
	xattr_get(fs, i, "user.none", val, sizeof(val));
}

/* one -- one change, committed; 0 if it was */
static int one(struct inode *i, const uint8_t *op)
{
	const char *name = names[op[1] % ARRAY_SIZE(names)];
	static uint8_t value[UINT16_MAX], back[UINT16_MAX];
	size_t len = (size_t)op[2] * (op[3] % 16 + 1);
	int ret, flags = 0;

	memset(value, op[2] ^ 0x5a, len);
	switch (op[0] % 4) {
	case 0:
	case 3:
		flags = op[0] & 0x10 ? XATTR_CREATE :
			op[0] & 0x20 ? XATTR_REPLACE : 0;
		ret = xattr_set(fs, i, name, value, len, flags);
		if (!ret) {
			FZ_ASSERT(xattr_get(fs, i, name, back, sizeof(back)) ==
				  (int)len);
			FZ_ASSERT(!memcmp(value, back, len));
		}
		return ret;
	case 1:
		ret = xattr_remove(fs, i, name);
		if (!ret)
			FZ_ASSERT(xattr_get(fs, i, name, NULL, 0) == -ENODATA);
		return ret;
	default:
		check_reads(i);
		return 1;
	}
}

static void check_region(struct inode *i)
{
	struct daxfs_dinode d;

	memcpy(&d, live.rg.map + fs->itable_off +
	       FZ_FAKE_INO * DAXFS_INODE_SIZE, sizeof(d));
	FZ_ASSERT(!memcmp(&d, &i->d, sizeof(d)));
	if (d.xattr_block)
		FZ_ASSERT(!xattr_block_check(live.rg.map +
					     FS_BLOCK_OFF(d.xattr_block),
					     FZ_FAKE_INO));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t blk[BS];
	struct daxfs_dxattrblk h;
	struct inode *i;
	int ret;

	if (size < HDR)
		return -1;
	fz_live_reset(&live);
	memset(blk, 0, sizeof(blk));
	memcpy(blk, data + HDR, MIN(size - HDR, BS));
	if (data[0] & 0x01) {
		memcpy(&h, blk, sizeof(h));
		h.magic = DAXFS_XATTR_MAGIC;
		h.ino = FZ_FAKE_INO;
		memcpy(blk, &h, sizeof(h));
		fz_seal_xattr(blk);
	}
	ret = xattr_block_check(blk, FZ_FAKE_INO);
	FZ_ASSERT(ret == 0 || ret == -EUCLEAN);
	memcpy(live.rg.map + FS_BLOCK_OFF(xb), blk, BS);
	fz_live_mark(&live, xb, 1);
	fz_live_recount(&live);

	i = calloc(1, sizeof(*i));
	FZ_ASSERT(i);
	i->ino = FZ_FAKE_INO;
	i->d.mode = DAXFS_S_IFREG | 0644;
	i->d.nlink = 1;
	i->d.blocks = 1;
	i->d.xattr_block = xb;
	i->ext_loaded = true;
	dinode_set_crc(&i->d);
	memcpy(live.rg.map + fs->itable_off + FZ_FAKE_INO * DAXFS_INODE_SIZE,
	       &i->d, sizeof(i->d));
	check_reads(i);
	for (unsigned k = 0; k < NOPS; k++) {
		ret = one(i, data + 1 + k * OPSZ);
		fz_live_check_alloc(&live);
		if (ret > 0)
			continue;
		if (ret) {
			/* as the daemon does after a failed change */
			atomic_store(&fs->error, false);
			memcpy(&i->d, live.rg.map + fs->itable_off +
			       FZ_FAKE_INO * DAXFS_INODE_SIZE, sizeof(i->d));
			continue;
		}
		check_region(i);
	}
	free(i);
	return 0;
}
