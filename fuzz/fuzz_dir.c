/*
 * fuzz_dir.c -- directory blocks: the input becomes the blocks of a
 * directory in a mounted filesystem; dir_load() indexes them (skipping
 * damaged entries), and then entries are added, removed and retargeted,
 * each change committed.  The index must stay consistent (every entry
 * found by name and by slot, none overlapping or crossing a block), the
 * allocator must balance, and after every commit an index rebuilt from
 * the region must equal the one in memory.
 *
 * Input: [flags] [blocks: 1 or 2] [8 operations of 4 bytes] [blocks...]
 *   flags bit 0: reseal the entries' checksums
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE
#define SPB DAXFS_SLOTS_PER_BLOCK
#define NOPS 8
#define OPSZ 4
#define HDR (2 + NOPS * OPSZ)

static struct fz_live live;
static struct daxfs *fs;
static uint64_t blk;			/* the directory's two blocks */
/* the blocks held entries dir_load() skipped as damaged or duplicate.
 * They stay in the region, so a later load may index one the first load
 * left out (a duplicate whose twin was removed): fsck's job, not the
 * index's.  The rebuilt index is then only checked to contain memory's. */
static bool skipped;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct fz_image *tmpl = fz_templates();
	const char *dir = fz_seed_dir();

	(void)argc;
	(void)argv;
	fz_live_init(&live, &tmpl[FZ_CLEAN]);
	fs = live.fs;
	blk = fs->nblocks - 8;
	if (dir) {
		static const uint8_t ops[NOPS * OPSZ] = {
			0, 12, 1, 2,  1, 0, 0, 0,  0, 255, 7, 7,  2, 1, 0, 0,
			0, 40, 3, 3,  1, 2, 0, 0,  0, 100, 9, 1,  3, 0, 0, 0,
		};
		const uint64_t inos[] = { DAXFS_ROOT_INO, tmpl[FZ_CLEAN].ino_d,
					  tmpl[FZ_CLEAN].ino_big };
		const uint8_t *b = tmpl[FZ_CLEAN].bytes;

		for (unsigned k = 0; k < ARRAY_SIZE(inos); k++) {
			struct daxfs_dinode d;
			struct extent *e;
			uint32_t n;
			uint8_t *buf = calloc(1, HDR + 2 * BS);
			uint64_t nb;
			char name[32];

			memcpy(&d, b + fs->itable_off + inos[k] *
			       DAXFS_INODE_SIZE, sizeof(d));
			if (ext_read_fs(fs, &d, inos[k], &e, &n) || !n)
				fz_fail("template directory");
			nb = MIN(d.size / BS, 2);
			buf[0] = 0;
			buf[1] = (uint8_t)nb;
			memcpy(buf + 2, ops, sizeof(ops));
			for (uint64_t lb = 0; lb < nb; lb++) {
				struct inode tmp = { .ext = e, .next = n };
				uint64_t pblk, run;

				ext_lookup(&tmp, lb, &pblk, &run);
				memcpy(buf + HDR + lb * BS,
				       b + FS_BLOCK_OFF(pblk), BS);
			}
			free(e);
			snprintf(name, sizeof(name), "dir-%llu",
				 (unsigned long long)inos[k]);
			fz_write_seed(dir, name, buf, HDR + nb * BS);
			free(buf);
		}
		exit(0);
	}
	return 0;
}

/* check_index -- every entry where the index says, and nothing shared */
static uint32_t check_index(struct inode *i)
{
	struct dir_index *x = i->dir;
	uint8_t used[16 * SPB] = { 0 };
	struct dentry *de;
	uint32_t slot = 0, count = 0;

	FZ_ASSERT(x->nslots <= sizeof(used));
	while ((de = dir_next(i, &slot))) {
		FZ_ASSERT(de->slot == slot);
		FZ_ASSERT(de->name_len >= 1 && strlen(de->name) ==
			  de->name_len);
		FZ_ASSERT(de->nslots == DAXFS_DIRENT_SLOTS(de->name_len));
		FZ_ASSERT(slot / SPB == (slot + de->nslots - 1) / SPB);
		FZ_ASSERT(slot + de->nslots <= x->nslots);
		FZ_ASSERT(dir_lookup(i, de->name, de->name_len) == de);
		for (uint32_t s = slot; s < slot + de->nslots; s++) {
			FZ_ASSERT(!used[s]);
			used[s] = 1;
		}
		count++;
		slot++;
	}
	FZ_ASSERT(count == x->count);
	return count;
}

/* check_region -- an index rebuilt from the committed directory */
static void check_region(struct inode *i)
{
	struct inode *c = calloc(1, sizeof(*c));
	struct dentry *de, *cd;
	uint32_t slot = 0;
	int ret;

	FZ_ASSERT(c);
	c->ino = i->ino;
	memcpy(&c->d, live.rg.map + fs->itable_off +
	       i->ino * DAXFS_INODE_SIZE, sizeof(c->d));
	FZ_ASSERT(!memcmp(&c->d, &i->d, sizeof(c->d)));
	ret = dir_load(fs, c);
	if (ret)
		fz_fail("a committed directory does not load: %s",
			daxfs_errmsg(ret));
	if (getenv("FUZZ_VERBOSE")) {
		for (int k = 0; k < 2; k++) {
			struct inode *w = k ? c : i;
			uint32_t s = 0;

			fprintf(stderr, "%s index, %u entries:\n",
				k ? "rebuilt" : "memory", w->dir->count);
			while ((de = dir_next(w, &s))) {
				fprintf(stderr, "  slot %u+%u ino %llu len %u\n",
					s, de->nslots,
					(unsigned long long)de->ino,
					de->name_len);
				s++;
			}
		}
	}
	FZ_ASSERT(skipped ? c->dir->count >= i->dir->count :
		  c->dir->count == i->dir->count);
	while ((de = dir_next(i, &slot))) {
		cd = dir_lookup(c, de->name, de->name_len);
		FZ_ASSERT(cd || skipped);
		FZ_ASSERT(skipped || (cd->ino == de->ino &&
				      cd->slot == de->slot &&
				      cd->type == de->type));
		slot++;
	}
	dir_unload(c);
	ext_unload(c);
	free(c);
}

/* op_name -- a name for an operation: 1..255 bytes, never . or .. */
static size_t op_name(const uint8_t *op, char *name)
{
	size_t len = 1 + op[1] % DAXFS_NAME_MAX;

	for (size_t k = 0; k < len; k++)
		name[k] = (char)('a' + (op[2] + k * op[3]) % 26);
	name[len] = '\0';
	return len;
}

/* one -- one change in its own transaction; 0 if it committed */
static int one(struct inode *i, const uint8_t *op)
{
	char name[DAXFS_NAME_MAX + 1];
	size_t len = op_name(op, name);
	uint32_t slot = op[1] % (i->dir->nslots + 1);
	struct dentry *de;
	struct tx *tx;
	int ret = -ENOENT;

	tx = tx_begin(fs);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "op %u name %zu slot %u\n", op[0] % 4, len,
			slot);
	switch (op[0] % 4) {
	case 0:
		if (dir_lookup(i, name, len)) {
			ret = -EEXIST;
			break;
		}
		ret = dir_add(fs, tx, i, name, len, 2, DAXFS_S_IFREG);
		if (!ret) {
			de = dir_lookup(i, name, len);
			FZ_ASSERT(de && de->ino == 2);
		}
		break;
	case 1:
		if ((de = dir_next(i, &slot)))
			ret = dir_remove(fs, tx, i, de);
		break;
	case 2:
		if ((de = dir_next(i, &slot)))
			ret = dir_retarget(fs, tx, i, de, 3, DAXFS_S_IFDIR);
		break;
	case 3:
		/* the longest names: the directory grows sooner */
		memset(name + len, 'z', DAXFS_NAME_MAX - len);
		name[DAXFS_NAME_MAX] = '\0';
		if (!dir_lookup(i, name, DAXFS_NAME_MAX))
			ret = dir_add(fs, tx, i, name, DAXFS_NAME_MAX, 4,
				      DAXFS_S_IFLNK);
		break;
	}
	if (ret) {
		tx_abort(tx);
		return ret;
	}
	tx_dirty_inode(tx, i);
	return tx_commit(tx);
}

static struct inode *new_dir(void)
{
	struct inode *i = calloc(1, sizeof(*i));

	FZ_ASSERT(i);
	i->ino = FZ_FAKE_INO;
	pthread_rwlock_init(&i->io_lock, NULL);
	memcpy(&i->d, live.rg.map + fs->itable_off +
	       FZ_FAKE_INO * DAXFS_INODE_SIZE, sizeof(i->d));
	return i;
}

static void free_dir(struct inode *i)
{
	dir_unload(i);
	ext_unload(i);
	pthread_rwlock_destroy(&i->io_lock);
	free(i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daxfs_dextent x = { 0 };
	struct daxfs_dinode d;
	struct inode *i;
	uint64_t nb;
	int ret;

	if (size < HDR)
		return -1;
	nb = 1 + (data[1] & 1);
	fz_live_reset(&live);

	/* a directory of nb blocks holding the input */
	memset(live.rg.map + FS_BLOCK_OFF(blk), 0, nb * BS);
	memcpy(live.rg.map + FS_BLOCK_OFF(blk), data + HDR,
	       MIN(size - HDR, nb * BS));
	if (data[0] & 0x01)
		fz_seal_dirents(live.rg.map + FS_BLOCK_OFF(blk), nb * BS);
	fz_live_mark(&live, blk, nb);
	fz_live_recount(&live);
	memset(&d, 0, sizeof(d));
	d.mode = DAXFS_S_IFDIR | 0755;
	d.nlink = 2;
	d.parent = DAXFS_ROOT_INO;
	d.size = nb * BS;
	d.blocks = nb;
	d.nextents = 1;
	x.pblk = blk;
	x.len = (uint32_t)nb;
	memcpy(d.inl, &x, sizeof(x));
	dinode_set_crc(&d);
	memcpy(live.rg.map + fs->itable_off + FZ_FAKE_INO * DAXFS_INODE_SIZE,
	       &d, sizeof(d));

	i = new_dir();
	fz_syslog_calls = 0;
	ret = dir_load(fs, i);
	FZ_ASSERT(ret == 0);
	skipped = fz_syslog_calls > 0;
	check_index(i);
	for (unsigned k = 0; k < NOPS; k++) {
		ret = one(i, data + 2 + k * OPSZ);
		fz_live_check_alloc(&live);
		if (ret) {
			/* as the daemon does after an aborted change */
			atomic_store(&fs->error, false);
			free_dir(i);
			i = new_dir();
			ret = dir_load(fs, i);
			if (ret)
				fz_fail("a committed directory does not "
					"load: %s", daxfs_errmsg(ret));
			check_index(i);
			continue;
		}
		check_index(i);
		check_region(i);
	}
	free_dir(i);
	return 0;
}
