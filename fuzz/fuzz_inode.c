/*
 * fuzz_inode.c -- one dinode and the extent array it may point to:
 * inode_check(), then ext_read_fs() (the mount's reader) and
 * fsck_ext_read() (fsck's), which must agree, then lookups in the list
 * and, for a directory, building its index from the blocks it names.
 *
 * Input: [flags] [inode number] [dinode: 256 bytes] [array: 2 blocks]
 *   flags bit 0: reseal the dinode; bit 1: point it at the fuzzed array;
 *   bit 2: make the array's header right; bit 3: a regular file with
 *   only known flags
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE
#define HDR 2
#define ARR_BLOCKS 2

static struct fz_region rg;
static struct region *r;
static const struct fz_image *tmpl;
static struct daxfs geo;
static uint64_t arr;			/* where the fuzzed array goes */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fz_seed_dir();
	int ret;

	(void)argc;
	(void)argv;
	tmpl = fz_templates();
	fz_region_new(&rg, FZ_REGION_SIZE);
	fz_region_load(&rg, tmpl[FZ_CLEAN].bytes);
	ret = region_open(rg.spec, 0, 0, &r);
	if (ret)
		fz_fail("region_open: %s", daxfs_errmsg(ret));
	fz_geo(&geo, r, &tmpl[FZ_CLEAN].sb);
	arr = geo.nblocks - 1 - ARR_BLOCKS - 2;
	if (dir) {
		const uint8_t *b = tmpl[FZ_CLEAN].bytes;

		for (uint64_t ino = 1; ino < 24; ino++) {
			struct daxfs_dinode d;
			uint8_t buf[HDR + sizeof(d) + 1024];
			size_t n = HDR + sizeof(d);
			char name[32];

			memcpy(&d, b + geo.itable_off + ino * DAXFS_INODE_SIZE,
			       sizeof(d));
			if (!d.mode)
				continue;
			buf[0] = 0;
			buf[1] = (uint8_t)ino;
			memcpy(buf + HDR, &d, sizeof(d));
			if (d.ext_block) {
				memcpy(buf + n, b + FS_BLOCK_OFF(d.ext_block),
				       1024);
				n += 1024;
				buf[0] = 0x02;	/* at our copy of the array */
			}
			snprintf(name, sizeof(name), "inode-%llu",
				 (unsigned long long)ino);
			fz_write_seed(dir, name, buf, n);
		}
		exit(0);
	}
	return 0;
}

static void check_list(const struct extent *e, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		FZ_ASSERT(e[k].len > 0);
		FZ_ASSERT(e[k].pblk >= geo.data_start);
		FZ_ASSERT(e[k].pblk < geo.nblocks - 1 &&
			  e[k].len <= geo.nblocks - 1 - e[k].pblk);
		FZ_ASSERT(e[k].lblk + e[k].len > e[k].lblk);
		FZ_ASSERT(!k || e[k].lblk >= e[k - 1].lblk + e[k - 1].len);
	}
}

/* lookups -- ext_lookup must say what the list says */
static void lookups(const struct inode *i, const uint8_t *in, size_t len)
{
	uint64_t probe[8] = { 0, UINT64_MAX, 1, 4096 };
	uint64_t pblk, run;

	for (size_t k = 0; k < 4 && k * 8 + 8 <= len; k++)
		memcpy(&probe[4 + k], in + k * 8, 8);
	for (uint32_t k = 0; k < i->next; k++) {
		const struct extent *e = &i->ext[k];

		FZ_ASSERT(ext_lookup(i, e->lblk, &pblk, &run));
		FZ_ASSERT(pblk == e->pblk && run == e->len);
		FZ_ASSERT(ext_lookup(i, e->lblk + e->len - 1, &pblk, &run));
		FZ_ASSERT(run == 1);
		if (k + 1 == i->next ||
		    i->ext[k + 1].lblk > e->lblk + e->len) {
			FZ_ASSERT(!ext_lookup(i, e->lblk + e->len, &pblk,
					      &run));
			FZ_ASSERT(run > 0);
		}
		ext_last_pblk(i, e->lblk + e->len);
	}
	for (size_t k = 0; k < ARRAY_SIZE(probe); k++) {
		if (ext_lookup(i, probe[k], &pblk, &run))
			FZ_ASSERT(run > 0 && pblk >= geo.data_start &&
				  pblk + run <= geo.nblocks - 1);
		ext_last_pblk(i, probe[k]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsck_opts fo = { 0 };
	struct fsck_result fres;
	struct fsck *c;
	struct daxfs_dinode d;
	struct daxfs_dextarray h;
	struct inode *i;
	struct extent *e = NULL, *fe = NULL;
	uint32_t n = 0, fn = 0;
	uint64_t ino;
	struct stat st;
	int ret, fret;

	if (size < HDR + sizeof(d))
		return -1;
	ino = data[1] % FZ_NINODES;
	memcpy(&d, data + HDR, sizeof(d));
	memset(rg.map + FS_BLOCK_OFF(arr), 0, ARR_BLOCKS * BS);
	memcpy(rg.map + FS_BLOCK_OFF(arr), data + HDR + sizeof(d),
	       MIN(size - HDR - sizeof(d), ARR_BLOCKS * BS));
	if (data[0] & 0x02) {
		d.ext_block = arr;
		d.ext_blocks = 1 + (d.ext_blocks & 1);
	}
	if (data[0] & 0x04) {
		memcpy(&h, rg.map + FS_BLOCK_OFF(arr), sizeof(h));
		h.magic = DAXFS_EXT_MAGIC;
		h.ino = ino;
		h.cap = DAXFS_EXT_PER_ARRAY(d.ext_blocks);
		memcpy(rg.map + FS_BLOCK_OFF(arr), &h, sizeof(h));
	}
	if (data[0] & 0x08) {
		d.mode = DAXFS_S_IFREG | (d.mode & 07777);
		d.flags = 0;
		d.reserved = 0;
	}
	if (data[0] & 0x01)
		dinode_set_crc(&d);

	ret = inode_check(&d, ino, &geo);
	if (ret) {
		FZ_ASSERT(ret == -EUCLEAN);
		return 0;
	}
	FZ_ASSERT(inode_check(&d, ino, NULL) == 0);
	if (!d.mode)
		return 0;

	/* the mount's reader and fsck's reader must agree */
	ret = ext_read_fs(&geo, &d, ino, &e, &n);
	FZ_ASSERT(ret == 0 || ret == -EUCLEAN);
	c = calloc(1, sizeof(*c));
	FZ_ASSERT(c);
	c->o = &fo;
	c->res = &fres;
	c->r = r;
	c->nblocks = geo.nblocks;
	c->ninodes = geo.ninodes;
	c->data_start = geo.data_start;
	fret = fsck_ext_read(c, &d, ino, &fe, &fn);
	FZ_ASSERT(fret == 0 || fret == -EUCLEAN);
	free(c);
	if (!fret) {
		/* fsck checks all the mount does, and more */
		FZ_ASSERT(!ret && n == fn);
		FZ_ASSERT(!n || !memcmp(e, fe, n * sizeof(*e)));
	}
	free(fe);
	if (ret)
		return 0;
	FZ_ASSERT((d.flags & DAXFS_IF_INLINE) ? n == 0 : n == d.nextents);
	check_list(e, n);

	i = calloc(1, sizeof(*i));
	FZ_ASSERT(i);
	i->ino = ino;
	i->d = d;
	i->ext = e;
	i->next = i->ext_cap = n;
	i->ext_loaded = true;
	lookups(i, data + HDR + sizeof(d),
		size - HDR - sizeof(d));
	inode_stat(&geo, i, &st);
	if (inode_is_dir(i) && !dir_load(&geo, i)) {
		uint32_t slot = 0;
		struct dentry *de;

		while ((de = dir_next(i, &slot))) {
			FZ_ASSERT(dir_lookup(i, de->name, de->name_len) == de);
			slot++;
		}
		dir_unload(i);
	}
	ext_unload(i);
	free(i);
	return 0;
}
