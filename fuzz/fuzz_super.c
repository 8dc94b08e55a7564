/*
 * fuzz_super.c -- the superblocks: super_check() on its own, and
 * super_read() (primary, then the backup it points to, then the last
 * block) over a real image; a superblock that passes must describe a
 * layout that fits the region, and the steps of a mount that trust it
 * (journal check, free-space bitmap, inode map) must stay inside.
 *
 * Input: [flags] [primary: 512 bytes] [backup: 512 bytes]
 *   flags bit 0: reseal the primary; bit 1: reseal the backup;
 *   bit 2: the backup is a copy of the primary; bit 3: the fuzzed
 *   backup goes to the block the primary names, not the last block
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static struct fz_region rg;
static struct region *r;
static const struct fz_image *tmpl;

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
	if (dir) {
		uint8_t buf[1 + 2 * DAXFS_SB_SIZE];

		for (unsigned v = 0; v < FZ_NVARIANTS; v++) {
			const uint8_t *b = tmpl[v].bytes;
			char name[32];

			buf[0] = 0;
			memcpy(buf + 1, b, DAXFS_SB_SIZE);
			memcpy(buf + 1 + DAXFS_SB_SIZE, b + FZ_REGION_SIZE -
			       DAXFS_BLOCK_SIZE, DAXFS_SB_SIZE);
			snprintf(name, sizeof(name), "variant-%u", v);
			fz_write_seed(dir, name, buf, sizeof(buf));
		}
		/* a damaged primary: the backup must carry the mount */
		buf[0] = 0x02;
		memset(buf + 1 + 100, 0xff, 8);
		fz_write_seed(dir, "bad-primary", buf, sizeof(buf));
		exit(0);
	}
	return 0;
}

/* check_layout -- what every user of a checked superblock relies on */
static void check_layout(const struct daxfs_dsb *sb, uint64_t size)
{
	FZ_ASSERT(sb->magic == DAXFS_SB_MAGIC);
	FZ_ASSERT(sb->block_size == DAXFS_BLOCK_SIZE);
	FZ_ASSERT(sb->region_size == FS_BLOCK_OFF(sb->nblocks));
	FZ_ASSERT(sb->region_size <= size);
	FZ_ASSERT(sb->bitmap_start >= 1 && sb->bitmap_blocks >= 1);
	FZ_ASSERT(sb->bitmap_blocks * 8 * DAXFS_BLOCK_SIZE >= sb->nblocks);
	FZ_ASSERT(sb->bitmap_start + sb->bitmap_blocks <= sb->journal_start);
	FZ_ASSERT(sb->journal_blocks >= 2);
	FZ_ASSERT(sb->journal_start + sb->journal_blocks <= sb->itable_start);
	FZ_ASSERT(sb->itable_start + sb->itable_blocks <= sb->data_start);
	FZ_ASSERT(sb->ninodes >= 2);
	FZ_ASSERT(sb->ninodes * DAXFS_INODE_SIZE <=
		  FS_BLOCK_OFF(sb->itable_blocks));
	FZ_ASSERT(sb->data_start < sb->nblocks - 1);
	FZ_ASSERT(sb->backup_block == sb->nblocks - 1);
	FZ_ASSERT(sb->data_align >= DAXFS_BLOCK_SIZE &&
		  !(sb->data_align & (sb->data_align - 1)));
	FZ_ASSERT(sb->root_ino < sb->ninodes);
}

/* mount_steps -- the reads a mount makes on the strength of sb */
static void mount_steps(const struct daxfs_dsb *sb)
{
	struct daxfs *fs = calloc(1, sizeof(*fs));
	uint64_t seq;
	int ret;

	FZ_ASSERT(fs);
	ret = journal_recover(r, sb, false, &seq);
	FZ_ASSERT(ret == 0 || ret == 1 || ret == -EUCLEAN || ret == -ENOMEM);
	fz_geo(fs, r, sb);
	ret = alloc_init(fs);
	FZ_ASSERT(ret == 0 || ret == -EUCLEAN || ret == -ENOMEM);
	if (!ret)
		alloc_free_all(fs);
	ret = imap_init(fs);
	FZ_ASSERT(ret == 0 || ret == -ENOMEM);
	FZ_ASSERT(ret || fs->free_inodes < fs->ninodes);
	free(fs->imap);
	free(fs->orphans);
	free(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint64_t last = FZ_REGION_SIZE - DAXFS_BLOCK_SIZE;
	struct daxfs_dsb p, b, sb;
	uint64_t boff = last;
	bool backup;
	int ret;

	if (size < 1)
		return -1;
	memset(&p, 0, sizeof(p));
	memset(&b, 0, sizeof(b));
	memcpy(&p, data + 1, MIN(size - 1, sizeof(p)));
	if (size > 1 + sizeof(p))
		memcpy(&b, data + 1 + sizeof(p),
		       MIN(size - 1 - sizeof(p), sizeof(b)));
	if (data[0] & 0x01)
		fz_seal_sb(&p);
	if (data[0] & 0x04)
		b = p;
	if (data[0] & 0x02)
		fz_seal_sb(&b);
	if ((data[0] & 0x08) && p.backup_block &&
	    p.backup_block < FZ_REGION_SIZE / DAXFS_BLOCK_SIZE)
		boff = FS_BLOCK_OFF(p.backup_block);

	/* the checker alone, against several region sizes */
	daxfs_clearerr();
	ret = super_check(&p, FZ_REGION_SIZE);
	if (!ret)
		check_layout(&p, FZ_REGION_SIZE);
	super_check(&p, 0);
	super_check(&p, UINT64_MAX);
	if (!super_check(&p, p.region_size))
		check_layout(&p, p.region_size);

	/* reading both copies from a region */
	memcpy(rg.map, &p, sizeof(p));
	memcpy(rg.map + boff, &b, sizeof(b));
	FZ_ASSERT(super_has_magic(r) == (p.magic == DAXFS_SB_MAGIC ||
		  ((const struct daxfs_dsb *)(rg.map + last))->magic ==
		  DAXFS_SB_MAGIC));
	daxfs_clearerr();
	ret = super_read(r, &sb, &backup);
	if (!ret) {
		check_layout(&sb, r->size);
		mount_steps(&sb);
	} else {
		FZ_ASSERT(ret == -EINVAL || ret == -EUCLEAN ||
			  ret == -EPROTONOSUPPORT);
		FZ_ASSERT(*daxfs_errmsg(ret));
	}

	/* put the template back */
	memcpy(rg.map, tmpl[FZ_CLEAN].bytes, DAXFS_BLOCK_SIZE);
	memcpy(rg.map + boff, tmpl[FZ_CLEAN].bytes + boff, DAXFS_BLOCK_SIZE);
	return 0;
}
