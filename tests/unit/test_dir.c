/*
 * test_dir.c -- directories: thousands of random names (1..255 bytes)
 * added, looked up, removed, retargeted and added again, checked against
 * a model after every round: lookups, dir_next order and coverage,
 * entries that never overlap or cross a block, slots that are reused
 * instead of growing the directory, the size and block count, and an
 * independent decoding of the entries stored in the region.  After a
 * remount the rebuilt index must match (same slots); a damaged entry is
 * skipped, not fatal.
 *
 * Run with "regressions" for reproducers of bugs these tests found (each
 * fails if its bug comes back).
 */
#include <sys/wait.h>

#include "testlib.h"

#define MiB (1ULL << 20)
#define SPB DAXFS_SLOTS_PER_BLOCK
#define MAXN 24000

struct name {
	char s[DAXFS_NAME_MAX + 1];
	uint8_t len;
	bool present;
	uint64_t ino;
	uint32_t mode;
	uint32_t slot;			/* where the index put it */
};

struct dmodel {
	struct name *v;
	uint32_t n;
	uint32_t present;
};

static const uint32_t modes[] = {
	DAXFS_S_IFREG, DAXFS_S_IFDIR, DAXFS_S_IFLNK, DAXFS_S_IFIFO,
	DAXFS_S_IFSOCK, DAXFS_S_IFCHR, DAXFS_S_IFBLK,
};

/* random_name -- bytes 1..255 except '/', never "." or "..", unique in
 * the model (checked by the caller) */
static void random_name(struct name *nm, uint32_t len)
{
	for (uint32_t k = 0; k < len; k++) {
		uint8_t c;

		do {
			if (tl_rand_below(4))
				c = (uint8_t)('a' + tl_rand_below(26));
			else
				c = (uint8_t)tl_rand_range(1, 255);
		} while (c == '/');
		nm->s[k] = (char)c;
	}
	nm->s[len] = '\0';
	nm->len = (uint8_t)len;
	if ((len == 1 && nm->s[0] == '.') ||
	    (len == 2 && nm->s[0] == '.' && nm->s[1] == '.'))
		nm->s[0] = 'x';
}

/* same_name -- is e called s? */
static bool same_name(const struct name *a, const char *s, size_t len)
{
	return a->len == len && !memcmp(a->s, s, len);
}

/* model_has -- was this name ever used?  Names are never reused, so a
 * removed name must stay unknown to lookups */
static bool model_has(const struct dmodel *m, const struct name *nm)
{
	for (uint32_t k = 0; k < m->n; k++)
		if (same_name(&m->v[k], nm->s, nm->len))
			return true;
	return false;
}

/* dir_blocks -- blocks mapped to the directory */
static uint64_t dir_blocks(const struct inode *d)
{
	uint64_t n = 0;

	for (uint32_t k = 0; k < d->next; k++)
		n += d->ext[k].len;
	return n;
}

/* decode_region -- parse every entry in the directory's blocks straight
 * from the region and compare with the model */
static void decode_region(struct daxfs *fs, struct inode *d,
			  const struct dmodel *m)
{
	uint64_t nb = d->d.size / DAXFS_BLOCK_SIZE;
	uint8_t blk[DAXFS_BLOCK_SIZE];
	uint32_t found = 0;

	for (uint64_t lb = 0; lb < nb; lb++) {
		uint64_t pblk, run;

		CHECK(ext_lookup(d, lb, &pblk, &run));
		CHECK_OK(region_read(fs->r, FS_BLOCK_OFF(pblk), blk,
				     sizeof(blk)));
		for (uint32_t s = 0; s < SPB;) {
			struct daxfs_ddirent h;
			const char *nm;
			uint32_t crc;
			bool match = false;

			memcpy(&h, blk + s * DAXFS_SLOT_SIZE, sizeof(h));
			if (!h.ino) {
				s++;
				continue;
			}
			nm = (const char *)blk + s * DAXFS_SLOT_SIZE +
			     sizeof(h);
			CHECK(h.name_len >= 1);
			CHECK_EQ(h.nslots, DAXFS_DIRENT_SLOTS(h.name_len));
			CHECK(s + h.nslots <= SPB);	/* within the block */
			CHECK_EQ(h.reserved, 0);
			{
				struct daxfs_ddirent z = h;

				z.crc = 0;
				crc = crc32c(0, &z, sizeof(z));
				crc = crc32c(crc, nm, h.name_len);
				CHECK_EQ(crc, h.crc);
			}
			for (uint32_t k = 0; k < m->n; k++) {
				const struct name *e = &m->v[k];

				if (e->present && e->slot == lb * SPB + s) {
					CHECK(same_name(e, nm, h.name_len));
					CHECK_EQ(h.ino, e->ino);
					CHECK_EQ(h.type,
						 mode_to_dtype(e->mode));
					match = true;
					break;
				}
			}
			CHECK_MSG(match, "entry at slot %" PRIu64 " is not in "
				  "the model", lb * SPB + s);
			found++;
			/* the slots after the header are the name, then 0 */
			for (uint32_t x = sizeof(h) + h.name_len;
			     x < h.nslots * DAXFS_SLOT_SIZE; x++)
				CHECK_EQ(blk[s * DAXFS_SLOT_SIZE + x], 0);
			s += h.nslots;
		}
	}
	CHECK_EQ(found, m->present);
}

/* check_dir -- the index against the model, every way */
static void check_dir(struct daxfs *fs, struct inode *d, struct dmodel *m,
		      bool set_slots, bool region)
{
	uint32_t slot = 0, seen = 0, prev_end = 0;
	struct dentry *de;

	CHECK(d->dir);
	CHECK_EQ(d->dir->count, m->present);
	CHECK_EQ(d->d.size % DAXFS_BLOCK_SIZE, 0);
	CHECK_EQ(dir_blocks(d), d->d.size / DAXFS_BLOCK_SIZE);
	CHECK_EQ(d->dir->nslots, d->d.size / DAXFS_BLOCK_SIZE * SPB);
	for (uint32_t k = 0; k < m->n; k++) {
		struct name *e = &m->v[k];

		de = dir_lookup(d, e->s, e->len);
		if (!e->present) {
			CHECK_MSG(!de, "removed name %u still found", k);
			continue;
		}
		CHECK_MSG(de, "name %u (%u bytes) not found", k, e->len);
		CHECK_EQ(de->ino, e->ino);
		CHECK_EQ(de->type, mode_to_dtype(e->mode));
		CHECK_EQ(de->name_len, e->len);
		CHECK(!memcmp(de->name, e->s, e->len));
		CHECK_EQ(de->name[e->len], '\0');
		CHECK_EQ(de->nslots, DAXFS_DIRENT_SLOTS(e->len));
		if (set_slots)
			e->slot = de->slot;
		else
			CHECK_EQ(de->slot, e->slot);
	}
	/* iteration: increasing, non-overlapping, within blocks, complete */
	while ((de = dir_next(d, &slot))) {
		CHECK_EQ(de->slot, slot);
		CHECK(slot >= prev_end);
		CHECK_EQ(slot / SPB, (slot + de->nslots - 1) / SPB);
		CHECK(dir_lookup(d, de->name, de->name_len) == de);
		prev_end = slot + de->nslots;
		slot = prev_end;
		seen++;
	}
	CHECK_EQ(seen, m->present);
	CHECK_EQ(slot, d->dir->nslots);
	if (region)
		decode_region(fs, d, m);
}

/* add_names -- n new random names, `per_tx` to a transaction */
static void add_names(struct daxfs *fs, struct inode *d, struct dmodel *m,
		      uint32_t n, uint32_t maxlen, uint32_t per_tx)
{
	struct tx *tx = NULL;

	tl_lock(fs);
	CHECK(m->n + n <= MAXN);
	for (uint32_t k = 0; k < n; k++) {
		struct name *e = &m->v[m->n];
		uint32_t len = tl_rand_below(3) ? (uint32_t)tl_rand_range(1, 24)
				: (uint32_t)tl_rand_range(1, maxlen);

		for (;;) {
			random_name(e, len);
			if (!model_has(m, e))
				break;
			if (len < maxlen)
				len++;		/* short names run out */
		}
		e->ino = tl_rand_range(2, fs->ninodes - 1);
		e->mode = modes[tl_rand_below(ARRAY_SIZE(modes))] | 0644;
		if (!tx)
			tx = tx_begin(fs);
		CHECK_OK(dir_add(fs, tx, d, e->s, e->len, e->ino, e->mode));
		e->present = true;
		e->slot = dir_lookup(d, e->s, e->len)->slot;
		m->n++;
		m->present++;
		if (k % per_tx == per_tx - 1) {
			CHECK_OK(tx_commit(tx));
			tx = NULL;
		}
	}
	if (tx)
		CHECK_OK(tx_commit(tx));
	tl_unlock(fs);
}

/* remove_some -- remove about a fraction 1/every of the present names;
 * returns the slots freed */
static uint32_t remove_some(struct daxfs *fs, struct inode *d,
			    struct dmodel *m, uint32_t every)
{
	uint32_t freed = 0;
	struct tx *tx;

	tl_lock(fs);
	tx = tx_begin(fs);
	for (uint32_t k = 0; k < m->n; k++) {
		struct name *e = &m->v[k];
		struct dentry *de;

		if (!e->present || tl_rand_below(every))
			continue;
		de = dir_lookup(d, e->s, e->len);
		CHECK(de);
		CHECK_OK(dir_remove(fs, tx, d, de));
		e->present = false;
		m->present--;
		freed += (uint32_t)DAXFS_DIRENT_SLOTS(e->len);
		if (tx_room(tx) < (64 << 10)) {
			CHECK_OK(tx_commit(tx));
			tx = tx_begin(fs);
		}
	}
	CHECK_OK(tx_commit(tx));
	tl_unlock(fs);
	return freed;
}

/* retarget_some -- point a few names at other inodes */
static void retarget_some(struct daxfs *fs, struct inode *d,
			  struct dmodel *m, uint32_t n)
{
	struct tx *tx;

	tl_lock(fs);
	tx = tx_begin(fs);
	for (uint32_t t = 0; t < n && m->present; t++) {
		struct name *e = &m->v[tl_rand_below(m->n)];
		struct dentry *de;

		if (!e->present)
			continue;
		de = dir_lookup(d, e->s, e->len);
		CHECK(de);
		e->ino = tl_rand_range(2, fs->ninodes - 1);
		e->mode = modes[tl_rand_below(ARRAY_SIZE(modes))] | 0755;
		CHECK_OK(dir_retarget(fs, tx, d, de, e->ino, e->mode));
		CHECK_EQ(de->ino, e->ino);
	}
	CHECK_OK(tx_commit(tx));
	tl_unlock(fs);
}

/* reload -- remount and rebuild the directory's index from the region */
static struct daxfs *reload(struct daxfs *fs, const char *path,
			    struct inode **d)
{
	uint64_t ino = (*d)->ino;

	fs = tl_remount(fs, path);
	*d = tl_get_inode(fs, ino);
	tl_lock(fs);
	CHECK_OK(dir_load(fs, *d));
	tl_unlock(fs);
	return fs;
}

/* test_names -- the main model test */
static void test_names(const char *path)
{
	struct dmodel m = { calloc(MAXN, sizeof(struct name)), 0, 0 };
	struct daxfs *fs;
	struct inode *d;
	uint64_t free0, size;
	uint32_t freed;

	CHECK(m.v);
	tl_mkfs(path, 64 * MiB, 16384);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	d = tl_new_inode(fs, DAXFS_S_IFDIR | 0755);
	tl_lock(fs);
	CHECK_OK(dir_load(fs, d));
	tl_unlock(fs);
	CHECK_EQ(d->dir->nslots, 0);
	CHECK(dir_lookup(d, "a", 1) == NULL);
	check_dir(fs, d, &m, false, true);

	/* names of every length, 255 included */
	tl_lock(fs);
	{
		struct tx *tx = tx_begin(fs);

		for (uint32_t len = 1; len <= DAXFS_NAME_MAX; len++) {
			struct name *e = &m.v[m.n];

			memset(e->s, 'a' + (int)(len % 26), len);
			e->s[0] = 'L';
			e->s[len] = '\0';
			e->len = (uint8_t)len;
			e->ino = 2 + len;
			e->mode = DAXFS_S_IFREG | 0600;
			CHECK_OK(dir_add(fs, tx, d, e->s, len, e->ino,
					 e->mode));
			e->present = true;
			m.n++;
			m.present++;
		}
		/* 0 and 256 bytes are not names */
		CHECK_ERR(dir_add(fs, tx, d, "x", 0, 5, DAXFS_S_IFREG),
			  -ENAMETOOLONG);
		{
			char big[DAXFS_NAME_MAX + 2];

			memset(big, 'b', sizeof(big));
			CHECK_ERR(dir_add(fs, tx, d, big, DAXFS_NAME_MAX + 1,
					  5, DAXFS_S_IFREG), -ENAMETOOLONG);
		}
		CHECK_OK(tx_commit(tx));
	}
	tl_unlock(fs);
	check_dir(fs, d, &m, true, true);

	/* thousands of random names, a few per transaction */
	add_names(fs, d, &m, 3000, DAXFS_NAME_MAX, 7);
	check_dir(fs, d, &m, false, true);
	CHECK(d->d.size >= 40 * DAXFS_BLOCK_SIZE);
	CHECK_EQ(fs->alloc.free, free0 - dir_blocks(d) - d->d.ext_blocks);
	fs = reload(fs, path, &d);
	check_dir(fs, d, &m, false, true);

	/* remove a third, then reuse the slots: one-slot names must fit in
	 * the holes without growing the directory */
	freed = remove_some(fs, d, &m, 3);
	check_dir(fs, d, &m, false, true);
	size = d->d.size;
	add_names(fs, d, &m, freed, 40, 5);	/* <= 48 bytes: one slot */
	check_dir(fs, d, &m, false, true);
	CHECK_EQ(d->d.size, size);
	/* the directory is now full: the next name grows it by a block */
	{
		uint32_t slot = 0, used = 0;
		struct dentry *de;

		while ((de = dir_next(d, &slot))) {
			used += de->nslots;
			slot += de->nslots;
		}
		if (used == d->dir->nslots) {
			add_names(fs, d, &m, 1, 40, 1);
			CHECK_EQ(d->d.size, size + DAXFS_BLOCK_SIZE);
		}
	}
	retarget_some(fs, d, &m, 200);
	check_dir(fs, d, &m, false, true);
	fs = reload(fs, path, &d);
	check_dir(fs, d, &m, false, true);

	/* rounds of churn */
	for (int round = 0; round < 6; round++) {
		/* freed slots are found again: one-slot names fill them */
		freed = remove_some(fs, d, &m, (uint32_t)tl_rand_range(2, 6));
		size = d->d.size;
		add_names(fs, d, &m, MIN(freed, 800), 40,
			  (uint32_t)tl_rand_range(1, 9));
		CHECK_EQ(d->d.size, size);
		add_names(fs, d, &m, (uint32_t)tl_rand_range(500, 1500),
			  DAXFS_NAME_MAX, (uint32_t)tl_rand_range(1, 20));
		retarget_some(fs, d, &m, 50);
		check_dir(fs, d, &m, false, round % 2 == 0);
		if (round % 3 == 2) {
			fs = reload(fs, path, &d);
			check_dir(fs, d, &m, false, true);
		}
	}
	printf("  names: %u added in all, %u present, directory of %" PRIu64
	       " blocks\n", m.n, m.present, d->d.size / DAXFS_BLOCK_SIZE);

	/* removing everything keeps the blocks (no shrinking) but every
	 * name is gone and the slots are reused */
	remove_some(fs, d, &m, 1);
	check_dir(fs, d, &m, false, true);
	size = d->d.size;
	add_names(fs, d, &m, 500, DAXFS_NAME_MAX, 10);
	CHECK_EQ(d->d.size, size);
	check_dir(fs, d, &m, false, true);
	fs = reload(fs, path, &d);
	check_dir(fs, d, &m, false, true);
	CHECK_OK(fs_unmount(fs, true));
	free(m.v);
}

/* test_damaged -- damaged entries are skipped, the rest still load */
static void test_damaged(const char *path)
{
	struct dmodel m = { calloc(MAXN, sizeof(struct name)), 0, 0 };
	struct daxfs *fs;
	struct inode *d;
	uint64_t pblk, run, off;
	uint32_t victims[3], nv = 0;

	CHECK(m.v);
	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	d = tl_new_inode(fs, DAXFS_S_IFDIR | 0755);
	tl_lock(fs);
	CHECK_OK(dir_load(fs, d));
	tl_unlock(fs);
	add_names(fs, d, &m, 300, DAXFS_NAME_MAX, 10);
	check_dir(fs, d, &m, false, true);
	/* a flipped name byte, a flipped crc, an inode number out of range */
	for (uint32_t k = 0; k < m.n && nv < 3; k += 97) {
		struct name *e = &m.v[k];
		struct daxfs_ddirent h;

		CHECK(e->present);
		CHECK(ext_lookup(d, e->slot / SPB, &pblk, &run));
		off = FS_BLOCK_OFF(pblk) +
		      (uint64_t)(e->slot % SPB) * DAXFS_SLOT_SIZE;
		CHECK_OK(region_read(fs->r, off, &h, sizeof(h)));
		if (nv == 0) {
			uint8_t c;

			CHECK_OK(region_read(fs->r, off + sizeof(h), &c, 1));
			c ^= 0x20;
			CHECK_OK(region_write(fs->r, off + sizeof(h), &c, 1));
		} else if (nv == 1) {
			h.crc ^= 1;
			CHECK_OK(region_write(fs->r, off, &h, sizeof(h)));
		} else {
			struct daxfs_ddirent z;
			uint32_t crc;

			h.ino = fs->ninodes + 5;
			z = h;
			z.crc = 0;
			crc = crc32c(0, &z, sizeof(z));
			h.crc = crc32c(crc, e->s, e->len);
			CHECK_OK(region_write(fs->r, off, &h, sizeof(h)));
		}
		victims[nv++] = k;
	}
	/* garbage in a free slot: the last slot of the last block */
	{
		uint8_t junk[DAXFS_SLOT_SIZE];
		uint64_t lb = d->d.size / DAXFS_BLOCK_SIZE - 1;

		CHECK(ext_lookup(d, lb, &pblk, &run));
		off = FS_BLOCK_OFF(pblk) + (SPB - 1) * DAXFS_SLOT_SIZE;
		CHECK_OK(region_read(fs->r, off, junk, sizeof(junk)));
		if (!junk[0] && !junk[7]) {
			tl_fill_random(junk, sizeof(junk));
			CHECK_OK(region_write(fs->r, off, junk, sizeof(junk)));
		}
	}
	CHECK_OK(region_persist(fs->r, 0, fs->r->size));
	for (uint32_t k = 0; k < nv; k++) {
		m.v[victims[k]].present = false;
		m.present--;
	}
	/* drop the in-memory directory, as a remount would, and rebuild;
	 * no remount: unmount would write nothing over the damage anyway */
	tl_lock(fs);
	dir_unload(d);
	CHECK_OK(dir_load(fs, d));
	tl_unlock(fs);
	check_dir(fs, d, &m, false, false);
	CHECK_EQ(d->dir->count, 300 - nv);
	CHECK_OK(fs_unmount(fs, true));
	free(m.v);
}

/* ---- regressions ------------------------------------------------------ */

/*
 * bug_dirent_overread -- dir.c parse_block(): dirent_check() reads
 * name_len bytes of name before the caller checks that the entry's slots
 * lie inside the block, so an entry in the last slot with name_len 255
 * (and a matching nslots) reads up to 207 bytes past the block buffer.
 * Only AddressSanitizer can see it; the load itself runs in a child.
 */
static int bug_dirent_overread(const char *path)
{
#if defined(__SANITIZE_ADDRESS__)
	struct daxfs *fs;
	struct inode *d;
	struct daxfs_ddirent h;
	uint64_t pblk, run, ino;
	pid_t pid;
	int status;

	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	d = tl_new_inode(fs, DAXFS_S_IFDIR | 0755);
	ino = d->ino;
	tl_lock(fs);
	CHECK_OK(dir_load(fs, d));
	{
		struct tx *tx = tx_begin(fs);

		CHECK_OK(dir_add(fs, tx, d, "a", 1, 2, DAXFS_S_IFREG));
		CHECK_OK(tx_commit(tx));
	}
	tl_unlock(fs);
	CHECK(ext_lookup(d, 0, &pblk, &run));
	memset(&h, 0, sizeof(h));
	h.ino = 3;
	h.name_len = 255;
	h.type = 8;
	h.nslots = (uint8_t)DAXFS_DIRENT_SLOTS(255);
	CHECK_OK(region_write(fs->r, FS_BLOCK_OFF(pblk) +
			      (SPB - 1) * DAXFS_SLOT_SIZE, &h, sizeof(h)));
	CHECK_OK(fs_unmount(fs, true));
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fs = tl_mount(path);
		d = tl_get_inode(fs, ino);
		dir_load(fs, d);		/* the over-read, if any */
		fs_unmount(fs, true);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	printf("  KNOWN BUG dir.c parse_block(): an entry in the last slot "
	       "with name_len 255 is checksummed past the end of the block "
	       "buffer (see the AddressSanitizer report above)\n");
	return 1;
#else
	(void)path;
	printf("  dirent over-read: only visible under AddressSanitizer "
	       "(build with -DDAXFS_SANITIZE=ON)\n");
	return -1;
#endif
}

/* regressions -- bugs these tests once found must stay fixed */
static int regressions(void)
{
	const char *path = tl_region_path("bugs");
	int shown = bug_dirent_overread(path);

	if (shown < 0) {
		printf("SKIP: the dirent over-read check needs an "
		       "AddressSanitizer build\n");
		return TL_SKIP;
	}
	if (shown) {
		printf("FAIL: a fixed bug is back\n");
		return 1;
	}
	printf("dir regressions: none reproduced\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *path;

	tl_init("dir");
	if (argc > 1 && !strcmp(argv[1], "regressions"))
		return regressions();
	path = tl_region_path("r");
	test_names(path);
	test_damaged(path);
	printf("dir: all passed\n");
	return 0;
}
