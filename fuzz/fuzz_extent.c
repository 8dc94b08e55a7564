/*
 * fuzz_extent.c -- a file's extent list, inline or in an external array,
 * loaded from the region into a mounted filesystem and then changed by a
 * sequence of punches, inserts and syncs, each one committed.  After every
 * commit the list in memory must be sorted, disjoint and inside the data
 * area, the free-space counters must match the bitmap, and reading the
 * inode back from the region must give the same list; after a failed
 * change the inode is reloaded, as the daemon does.
 *
 * Input: [flags] [n] [8 operations of 9 bytes] [n extents of 24 bytes]
 *   flags bit 0: shape the extents into a valid list; bit 1: an external
 *   array even for five or fewer
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE
#define EXTSZ sizeof(struct daxfs_dextent)
#define NOPS 8
#define OPSZ 9
#define HDR (2 + NOPS * OPSZ)
#define FAKE_INO FZ_FAKE_INO

static struct fz_live live;
static struct daxfs *fs;
static uint64_t arr;			/* two blocks for the fuzzed array */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct fz_image *tmpl = fz_templates();
	const char *dir = fz_seed_dir();

	(void)argc;
	(void)argv;
	fz_live_init(&live, &tmpl[FZ_CLEAN]);
	fs = live.fs;
	arr = fs->nblocks - 8;
	if (dir) {
		const uint8_t *b = tmpl[FZ_CLEAN].bytes;
		static const uint8_t ops[NOPS * OPSZ] = {
			0, 3, 0, 0, 0, 2, 0, 0, 0,
			1, 20, 0, 0, 0, 4, 0, 0, 0,
			2, 0, 0, 0, 0, 0, 0, 0, 0,
			1, 1, 0, 0, 0, 9, 0, 0, 0,
			5, 0, 0, 0, 0, 1, 0, 0, 0,
			0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
			1, 7, 0, 0, 0, 30, 0, 0, 0,
			3, 0, 0, 0, 0, 0, 0, 0, 0,
		};
		const uint64_t inos[] = { tmpl[FZ_CLEAN].ino_frag,
					  tmpl[FZ_CLEAN].ino_a,
					  tmpl[FZ_CLEAN].ino_big };

		for (unsigned k = 0; k < ARRAY_SIZE(inos); k++) {
			struct daxfs_dinode d;
			struct extent *e;
			uint32_t n;
			uint8_t buf[HDR + 255 * EXTSZ];
			char name[32];

			memcpy(&d, b + fs->itable_off + inos[k] *
			       DAXFS_INODE_SIZE, sizeof(d));
			if (ext_read_fs(fs, &d, inos[k], &e, &n))
				fz_fail("template extents");
			buf[0] = d.ext_block ? 0x02 : 0;
			buf[1] = (uint8_t)n;
			memcpy(buf + 2, ops, sizeof(ops));
			for (uint32_t x = 0; x < n; x++) {
				struct daxfs_dextent de = {
					e[x].lblk, e[x].pblk,
					(uint32_t)e[x].len, 0 };

				memcpy(buf + HDR + x * EXTSZ, &de, EXTSZ);
			}
			free(e);
			snprintf(name, sizeof(name), "inode-%llu",
				 (unsigned long long)inos[k]);
			fz_write_seed(dir, name, buf, HDR + n * EXTSZ);
			buf[0] |= 0x01;
			snprintf(name, sizeof(name), "inode-%llu-shaped",
				 (unsigned long long)inos[k]);
			fz_write_seed(dir, name, buf, HDR + n * EXTSZ);
		}
		exit(0);
	}
	return 0;
}

static void check_list(const struct inode *i)
{
	FZ_ASSERT(i->next <= i->ext_cap || (!i->next && !i->ext_cap));
	for (uint32_t k = 0; k < i->next; k++) {
		const struct extent *e = &i->ext[k];

		FZ_ASSERT(e->len > 0 && e->len <= UINT32_MAX);
		FZ_ASSERT(e->pblk >= fs->data_start &&
			  e->pblk + e->len <= fs->nblocks - 1);
		FZ_ASSERT(e->lblk + e->len > e->lblk);
		FZ_ASSERT(!k || e->lblk >= i->ext[k - 1].lblk +
					   i->ext[k - 1].len);
	}
	FZ_ASSERT(i->d.nextents == i->next);
}

/* check_region -- the committed inode, read back, says what memory says */
static void check_region(const struct inode *i)
{
	struct daxfs_dinode d;
	struct extent *e;
	uint32_t n;
	int ret;

	memcpy(&d, live.rg.map + fs->itable_off + FAKE_INO * DAXFS_INODE_SIZE,
	       sizeof(d));
	FZ_ASSERT(!memcmp(&d, &i->d, sizeof(d)));
	ret = ext_read_fs(fs, &d, FAKE_INO, &e, &n);
	if (ret)
		fz_fail("committed extents do not read back: %s",
			daxfs_errmsg(ret));
	FZ_ASSERT(n == i->next);
	FZ_ASSERT(!n || !memcmp(e, i->ext, n * sizeof(*e)));
	free(e);
}

/* reload -- after a failure: what the region holds, as the daemon does */
static void reload(struct inode *i)
{
	int ret;

	atomic_store(&fs->error, false);
	memcpy(&i->d, live.rg.map + fs->itable_off +
	       FAKE_INO * DAXFS_INODE_SIZE, sizeof(i->d));
	ext_unload(i);
	ret = ext_load(fs, i);
	if (ret)
		fz_fail("a committed list no longer loads: %s",
			daxfs_errmsg(ret));
}

/* shape -- turn fuzzed extents into a valid list */
static void shape(struct daxfs_dextent *x, uint32_t n)
{
	uint64_t span = fs->nblocks - 1 - fs->data_start, lb = 0;

	for (uint32_t k = 0; k < n; k++) {
		uint64_t len = 1 + x[k].len % 32;

		x[k].lblk = lb + x[k].lblk % 64;
		x[k].pblk = fs->data_start + x[k].pblk % (span - len + 1);
		x[k].len = (uint32_t)len;
		x[k].reserved = 0;
		lb = x[k].lblk + len;
	}
}

/* one -- one operation in its own transaction; 0 if it committed */
static int one(struct inode *i, const uint8_t *op)
{
	uint32_t a, b;
	uint64_t lblk, len, pblk, run;
	struct tx_range got;
	struct tx *tx;
	bool done;
	int ret = 0;

	memcpy(&a, op + 1, 4);
	memcpy(&b, op + 5, 4);
	lblk = a % 4096;
	tx = tx_begin(fs);
	switch (op[0] % 4) {
	case 0:
		len = b >= 0xff000000u ? UINT64_MAX : 1 + b % 256;
		ret = ext_punch(fs, tx, i, lblk, len, 1 + op[0] / 4 % 8,
				&done);
		break;
	case 1:
		ret = alloc_reserve(fs, ext_last_pblk(i, lblk), 1 + b % 64,
				    (op[0] & 0x80) ? ALLOC_BIG : 0, &got);
		if (ret)
			break;
		if (ext_lookup(i, lblk, &pblk, &run) || run < got.len) {
			alloc_unreserve(fs, got.start, got.len);
			ret = -EEXIST;
			break;
		}
		ret = ext_insert(fs, tx, i, lblk, got.start, got.len);
		break;
	case 2:
		ret = ext_sync(fs, tx, i);
		break;
	case 3:
		ret = ext_punch(fs, tx, i, 0, UINT64_MAX, 4096, &done);
		break;
	}
	if (ret) {
		tx_abort(tx);
		return ret;
	}
	return tx_commit(tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daxfs_dextent x[255];
	struct daxfs_dinode d;
	struct inode *i;
	uint32_t n;
	uint64_t blocks = 0, end = 0;
	int ret;

	if (size < HDR)
		return -1;
	n = MIN(data[1], (size - HDR) / EXTSZ);
	memcpy(x, data + HDR, n * EXTSZ);
	if (data[0] & 0x01)
		shape(x, n);

	fz_live_reset(&live);

	/* a file owning those extents, its blocks marked in use */
	memset(&d, 0, sizeof(d));
	d.mode = DAXFS_S_IFREG | 0644;
	d.nlink = 1;
	d.nextents = n;
	for (uint32_t k = 0; k < n; k++) {
		if (x[k].pblk >= fs->data_start && x[k].len &&
		    x[k].pblk < fs->nblocks - 1 &&
		    x[k].len <= fs->nblocks - 1 - x[k].pblk) {
			fz_live_mark(&live, x[k].pblk, x[k].len);
			blocks += x[k].len;
		}
		end = MAX(end, x[k].lblk + x[k].len);
	}
	if (n > DAXFS_INLINE_EXTENTS || (n && (data[0] & 0x02))) {
		struct daxfs_dextarray h = { .magic = DAXFS_EXT_MAGIC,
					     .ino = FAKE_INO };

		d.ext_block = arr;
		d.ext_blocks = (uint32_t)DIV_ROUND_UP(sizeof(h) + n * EXTSZ,
						      BS);
		h.cap = DAXFS_EXT_PER_ARRAY(d.ext_blocks);
		memcpy(live.rg.map + FS_BLOCK_OFF(arr), &h, sizeof(h));
		memcpy(live.rg.map + FS_BLOCK_OFF(arr) + sizeof(h), x,
		       n * EXTSZ);
		fz_live_mark(&live, arr, d.ext_blocks);
		blocks += d.ext_blocks;
	} else {
		memcpy(d.inl, x, n * EXTSZ);
	}
	d.blocks = blocks;
	d.size = end > (1ULL << 40) ? 0 : FS_BLOCK_OFF(end);
	dinode_set_crc(&d);
	memcpy(live.rg.map + fs->itable_off + FAKE_INO * DAXFS_INODE_SIZE, &d,
	       sizeof(d));
	fz_live_recount(&live);

	i = calloc(1, sizeof(*i));
	FZ_ASSERT(i);
	i->ino = FAKE_INO;
	i->d = d;
	pthread_rwlock_init(&i->io_lock, NULL);
	ret = ext_load(fs, i);
	if (ret) {
		FZ_ASSERT(ret == -EUCLEAN);
		free(i);
		return 0;
	}
	check_list(i);
	for (unsigned k = 0; k < NOPS; k++) {
		ret = one(i, data + 2 + k * OPSZ);
		fz_live_check_alloc(&live);
		if (ret) {
			reload(i);
			continue;
		}
		check_list(i);
		check_region(i);
	}
	ext_unload(i);
	pthread_rwlock_destroy(&i->io_lock);
	free(i);
	return 0;
}
