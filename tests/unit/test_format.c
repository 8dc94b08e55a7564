/*
 * test_format.c -- the on-region format: CRC-32C (known vectors, the
 * SSE4.2 path against the table path), the superblock geometry for many
 * sizes and alignments, mkfs and super_read round trips, what super_check
 * refuses, the fall back to the backup superblock, and parse_size.
 */
#include "testlib.h"

/* the table path of crc32c.c, exported for this test only */
uint32_t crc32c_sw_only(uint32_t crc, const void *buf, size_t len);

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* test_crc_vectors -- published CRC-32C check values */
static void test_crc_vectors(void)
{
	uint8_t zero[32], ones[32], inc[32], dec[32];
	static const char digits[] = "123456789";

	memset(zero, 0, sizeof(zero));
	memset(ones, 0xff, sizeof(ones));
	for (int k = 0; k < 32; k++) {
		inc[k] = (uint8_t)k;
		dec[k] = (uint8_t)(31 - k);
	}
	for (int sw = 0; sw < 2; sw++) {
		uint32_t (*f)(uint32_t, const void *, size_t) =
			sw ? crc32c_sw_only : crc32c;

		CHECK_EQ(f(0, digits, 9), 0xE3069283u);
		CHECK_EQ(f(0, zero, 32), 0x8A9136AAu);
		CHECK_EQ(f(0, ones, 32), 0x62A8AB43u);
		CHECK_EQ(f(0, inc, 32), 0x46DD794Eu);
		CHECK_EQ(f(0, dec, 32), 0x113FDB5Cu);
		CHECK_EQ(f(0, digits, 0), 0u);
		/* extending a crc equals one pass over the concatenation */
		CHECK_EQ(f(f(0, digits, 4), digits + 4, 5), 0xE3069283u);
		CHECK_EQ(f(f(f(0, inc, 1), inc + 1, 17), inc + 18, 14),
			 0x46DD794Eu);
	}
}

/* test_crc_paths -- the hardware and table paths agree everywhere */
static void test_crc_paths(void)
{
	uint8_t buf[300 + 64];

#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		printf("  crc32c: SSE4.2 path compared with the table path\n");
	else
#endif
		printf("  crc32c: no SSE4.2 here; both calls use the table\n");

	for (int round = 0; round < 4; round++) {
		tl_fill_random(buf, sizeof(buf));
		for (size_t len = 0; len <= 300; len++) {
			size_t off = tl_rand_below(64);
			uint32_t seed = round ? (uint32_t)tl_rand() : 0;
			uint32_t hw = crc32c(seed, buf + off, len);
			uint32_t sw = crc32c_sw_only(seed, buf + off, len);

			CHECK_MSG(hw == sw, "len %zu off %zu seed %#x: "
				  "%#x != %#x", len, off, seed, hw, sw);
			/* split anywhere: the same result */
			if (len) {
				size_t cut = tl_rand_below(len + 1);

				uint32_t c1 = crc32c(seed, buf + off, cut);

				CHECK_EQ(crc32c(c1, buf + off + cut,
						len - cut), hw);
			}
		}
	}
}

/* geometry_ok -- the layout invariants super_geometry promises */
static void geometry_ok(uint64_t size, uint64_t align,
			const struct daxfs_dsb *sb)
{
	uint64_t ab = align / DAXFS_BLOCK_SIZE;
	uint64_t jbytes = FS_BLOCK_OFF(sb->journal_blocks);

	CHECK_EQ(sb->block_size, DAXFS_BLOCK_SIZE);
	CHECK_EQ(sb->nblocks, size / DAXFS_BLOCK_SIZE);
	CHECK_EQ(sb->region_size, sb->nblocks * DAXFS_BLOCK_SIZE);
	CHECK(sb->region_size <= size);
	CHECK_EQ(sb->data_align, align);
	/* ordered and non-overlapping: sb | bitmap | journal | itable | data */
	CHECK_EQ(sb->bitmap_start, 1);
	CHECK(sb->bitmap_blocks >= 1);
	CHECK(sb->journal_start >= sb->bitmap_start + sb->bitmap_blocks);
	CHECK(sb->journal_blocks >= 2);
	CHECK(jbytes >= MiB && jbytes <= 64 * MiB);
	CHECK(sb->itable_start >= sb->journal_start + sb->journal_blocks);
	CHECK(sb->itable_blocks >= 1);
	CHECK(sb->data_start >= sb->itable_start + sb->itable_blocks);
	CHECK_EQ(sb->data_start % ab, 0);
	/* the alignment costs less than one chunk */
	CHECK(sb->data_start < sb->itable_start + sb->itable_blocks + ab);
	CHECK_EQ(sb->backup_block, sb->nblocks - 1);
	CHECK(sb->data_start < sb->backup_block);
	/* the bitmap covers every block, the table every inode */
	CHECK(sb->bitmap_blocks * 8 * DAXFS_BLOCK_SIZE >= sb->nblocks);
	CHECK(sb->itable_blocks * DAXFS_BLOCK_SIZE >=
	      sb->ninodes * DAXFS_INODE_SIZE);
	CHECK((sb->bitmap_blocks - 1) * 8 * DAXFS_BLOCK_SIZE < sb->nblocks);
	CHECK(sb->ninodes >= 2);
	/* room for data */
	CHECK(sb->nblocks - 1 - sb->data_start >= 256);
	CHECK_EQ(sb->root_ino, DAXFS_ROOT_INO);
}

/* seal -- complete a geometry into a superblock super_check accepts */
static void seal(struct daxfs_dsb *sb)
{
	sb->magic = DAXFS_SB_MAGIC;
	sb->version_major = DAXFS_VERSION_MAJOR;
	sb->version_minor = DAXFS_VERSION_MINOR;
	sb->state = DAXFS_STATE_CLEAN;
	sb->free_blocks = sb->nblocks - sb->data_start - 1;
	sb->free_inodes = sb->ninodes - 2;
	super_set_crc(sb);
}

/* test_geometry -- many sizes and alignments, and the failures */
static void test_geometry(void)
{
	static const struct { uint64_t size, align, ninodes; } ok[] = {
		{ 16 * MiB, 2 * MiB, 0 },
		{ 16 * MiB + 12345, 2 * MiB, 0 },
		{ 17 * MiB - 1, 4096, 0 },
		{ 100 * MiB + 7, 64 << 10, 0 },
		{ 1 * GiB, 2 * MiB, 0 },
		{ 1 * GiB + 4095, 2 * MiB, 5000 },
		{ 3 * GiB, 1 * GiB, 0 },
		{ 2 * GiB + 2 * MiB, 1 * GiB, 0 },
		{ 64 * GiB, 2 * MiB, 0 },
		{ 1ULL << 42, 1 * GiB, 0 },
		{ 16 * MiB, 4096, 2 },
		{ 40 * MiB, 2 * MiB, 100000 },
	};
	struct daxfs_dsb sb;

	for (size_t k = 0; k < ARRAY_SIZE(ok); k++) {
		memset(&sb, 0, sizeof(sb));
		CHECK_MSG(super_geometry(ok[k].size, ok[k].align,
					 ok[k].ninodes, &sb) == 0,
			  "case %zu", k);
		geometry_ok(ok[k].size, ok[k].align, &sb);
		if (ok[k].ninodes)
			CHECK_EQ(sb.ninodes, ok[k].ninodes);
		else
			CHECK(sb.ninodes >= 1024);
		seal(&sb);
		CHECK_OK(super_check(&sb, ok[k].size));
		CHECK_OK(super_check(&sb, ok[k].size + 4 * MiB));
	}

	/* the journal grows with the region, within [1 MiB, 64 MiB] */
	memset(&sb, 0, sizeof(sb));
	CHECK_OK(super_geometry(64 * GiB, 2 * MiB, 0, &sb));
	CHECK_EQ(FS_BLOCK_OFF(sb.journal_blocks), 64 * MiB);
	CHECK_OK(super_geometry(16 * MiB, 2 * MiB, 0, &sb));
	CHECK_EQ(FS_BLOCK_OFF(sb.journal_blocks), 1 * MiB);

	/* too small */
	CHECK_ERR(super_geometry(1 * MiB, 2 * MiB, 0, &sb), -ENOSPC);
	CHECK_ERR(super_geometry(2 * MiB, 2 * MiB, 0, &sb), -ENOSPC);
	CHECK_ERR(super_geometry(0, 2 * MiB, 0, &sb), -ENOSPC);
	CHECK_ERR(super_geometry(8192, 4096, 2, &sb), -ENOSPC);
	CHECK_ERR(super_geometry(1 * GiB, 1 * GiB, 0, &sb), -ENOSPC);
	CHECK_ERR(super_geometry(1 * GiB + MiB, 1 * GiB, 0, &sb), -ENOSPC);
	/* far too many inodes for the region */
	CHECK_ERR(super_geometry(16 * MiB, 2 * MiB, 1000000, &sb), -ENOSPC);
	/* bad alignment or inode counts */
	CHECK_ERR(super_geometry(16 * MiB, 3 * 4096, 0, &sb), -EINVAL);
	CHECK_ERR(super_geometry(16 * MiB, 2048, 0, &sb), -EINVAL);
	CHECK_ERR(super_geometry(16 * MiB, 2 * MiB, 1, &sb), -EINVAL);

	/* super_min_size is the smallest size that lays out */
	static const uint64_t aligns[] = { 4096, 64 << 10, 2 * MiB, 1 * GiB };
	for (size_t k = 0; k < ARRAY_SIZE(aligns); k++) {
		uint64_t m = super_min_size(aligns[k], 0);

		CHECK_OK(super_geometry(m, aligns[k], 0, &sb));
		geometry_ok(m, aligns[k], &sb);
		CHECK(m >= DAXFS_MIN_REGION);
		if (m > DAXFS_MIN_REGION)
			CHECK(super_geometry(m - aligns[k], aligns[k], 0,
					     &sb) != 0);
	}
	CHECK_EQ(super_min_size(2 * MiB, 0), 16 * MiB);
}

/* read_sb -- the primary superblock of a region, raw */
static void read_sb(struct region *r, uint64_t off, struct daxfs_dsb *sb)
{
	CHECK_OK(region_read(r, off, sb, sizeof(*sb)));
}

/* test_mkfs_roundtrip -- what mkfs writes, super_read gives back */
static void test_mkfs_roundtrip(void)
{
	const char *path = tl_region_path("mkfs");
	const uint64_t size = 32 * MiB;
	struct daxfs_dsb sb, primary, backup, geo;
	struct daxfs_jsb jsb;
	struct daxfs_dinode root;
	struct region *r;
	struct daxfs *fs;
	uint64_t *map;
	bool used_backup = true;

	tl_mkfs(path, size, 0);
	CHECK_OK(region_open(path, 0, 0, &r));
	CHECK(super_has_magic(r));
	CHECK_OK(super_read(r, &sb, &used_backup));
	CHECK(!used_backup);
	CHECK_EQ(sb.magic, DAXFS_SB_MAGIC);
	CHECK_EQ(sb.version_major, DAXFS_VERSION_MAJOR);
	CHECK_EQ(sb.region_size, size);
	CHECK(!strcmp(sb.label, "unit"));
	CHECK_EQ(sb.state, DAXFS_STATE_CLEAN);
	CHECK_EQ(sb.data_align, r->align);
	CHECK_EQ(sb.feat_incompat, 0);
	/* the geometry is super_geometry's for this size */
	memset(&geo, 0, sizeof(geo));
	CHECK_OK(super_geometry(size, r->align, 0, &geo));
	CHECK_EQ(sb.nblocks, geo.nblocks);
	CHECK_EQ(sb.bitmap_blocks, geo.bitmap_blocks);
	CHECK_EQ(sb.journal_start, geo.journal_start);
	CHECK_EQ(sb.journal_blocks, geo.journal_blocks);
	CHECK_EQ(sb.itable_start, geo.itable_start);
	CHECK_EQ(sb.ninodes, geo.ninodes);
	CHECK_EQ(sb.data_start, geo.data_start);
	CHECK_EQ(sb.free_blocks, sb.nblocks - sb.data_start - 1);
	CHECK_EQ(sb.free_inodes, sb.ninodes - 2);
	/* primary and backup are the same bytes */
	read_sb(r, 0, &primary);
	read_sb(r, FS_BLOCK_OFF(sb.backup_block), &backup);
	CHECK_MEM(&primary, &backup, sizeof(primary));
	CHECK_MEM(&primary, &sb, sizeof(sb));
	/* the journal superblock */
	CHECK_OK(region_read(r, FS_BLOCK_OFF(sb.journal_start), &jsb,
			     sizeof(jsb)));
	CHECK_EQ(jsb.magic, DAXFS_JSB_MAGIC);
	CHECK_EQ(jsb.log_start, sb.journal_start + 1);
	CHECK_EQ(jsb.log_blocks, sb.journal_blocks - 1);
	CHECK_EQ(jsb.crc, crc32c(0, &jsb, offsetof(struct daxfs_jsb, crc)));
	CHECK_EQ(journal_recover(r, &sb, false, NULL), 0);
	/* the root directory */
	CHECK_OK(region_read(r, FS_BLOCK_OFF(sb.itable_start) +
			     DAXFS_ROOT_INO * DAXFS_INODE_SIZE, &root,
			     sizeof(root)));
	CHECK_OK(inode_check(&root, DAXFS_ROOT_INO, NULL));
	CHECK_EQ(root.mode & DAXFS_S_IFMT, DAXFS_S_IFDIR);
	CHECK_EQ(root.nlink, 2);
	CHECK_EQ(root.parent, DAXFS_ROOT_INO);
	/* the bitmap: metadata and the backup in use, data free */
	map = calloc(sb.bitmap_blocks, DAXFS_BLOCK_SIZE);
	CHECK(map);
	CHECK_OK(region_read(r, FS_BLOCK_OFF(sb.bitmap_start), map,
			     FS_BLOCK_OFF(sb.bitmap_blocks)));
	for (uint64_t b = 0; b < sb.bitmap_blocks * 8 * DAXFS_BLOCK_SIZE;
	     b++) {
		bool used = bitmap_test(map, b);
		bool want = b < sb.data_start || b >= sb.nblocks - 1;

		CHECK_MSG(used == want, "block %" PRIu64, b);
	}
	free(map);
	region_close(r);

	/* and it mounts with the free counts mkfs recorded */
	fs = tl_mount(path);
	CHECK_EQ(fs->alloc.free, sb.free_blocks);
	CHECK_EQ(fs->free_inodes, sb.free_inodes);
	CHECK(!fs->used_backup_sb);
	CHECK_OK(fs_unmount(fs, true));

	/* label too long, region too small */
	CHECK_OK(region_open(path, 0, 0, &r));
	{
		char label[DAXFS_LABEL_MAX + 1];
		struct mkfs_opts o = { .label = label };

		memset(label, 'x', DAXFS_LABEL_MAX);
		label[DAXFS_LABEL_MAX] = '\0';
		CHECK_ERR(daxfs_mkfs(r, &o), -ENAMETOOLONG);
		o.label = NULL;
		o.size = 1 * MiB;
		CHECK_ERR(daxfs_mkfs(r, &o), -ENOSPC);
	}
	/* failed attempts left the filesystem alone */
	CHECK_OK(super_read(r, &sb, &used_backup));
	CHECK(!used_backup);
	region_close(r);
}

/* reseal_check -- super_check of a modified, resealed copy */
static int reseal_check(const struct daxfs_dsb *sb, uint64_t size,
			void (*mod)(struct daxfs_dsb *))
{
	struct daxfs_dsb c = *sb;

	mod(&c);
	super_set_crc(&c);
	return super_check(&c, size);
}

/* the single-field changes test_super_check makes, each resealed */
static void m_incompat(struct daxfs_dsb *s) { s->feat_incompat |= 1ULL << 7; }
static void m_incompat_hi(struct daxfs_dsb *s)
{
	s->feat_incompat |= 1ULL << 63;
}
static void m_ro_compat(struct daxfs_dsb *s) { s->feat_ro_compat |= 1; }
static void m_compat(struct daxfs_dsb *s) { s->feat_compat |= 1ULL << 40; }
static void m_major(struct daxfs_dsb *s) { s->version_major++; }
static void m_minor(struct daxfs_dsb *s) { s->version_minor++; }
static void m_reserved0(struct daxfs_dsb *s) { s->reserved[0] = 1; }
static void m_reserved_last(struct daxfs_dsb *s) { s->reserved[235] = 0x80; }
static void m_state(struct daxfs_dsb *s) { s->state = 7; }
static void m_state_mounted(struct daxfs_dsb *s)
{
	s->state = DAXFS_STATE_MOUNTED;
}
static void m_block_size(struct daxfs_dsb *s) { s->block_size = 8192; }
static void m_misalign(struct daxfs_dsb *s) { s->data_start++; }
static void m_backup(struct daxfs_dsb *s) { s->backup_block--; }
static void m_root(struct daxfs_dsb *s) { s->root_ino = 2; }
static void m_overlap(struct daxfs_dsb *s) { s->itable_start--; }
static void m_bitmap_short(struct daxfs_dsb *s) { s->bitmap_blocks = 0; }
static void m_free_blocks(struct daxfs_dsb *s)
{
	s->free_blocks = s->nblocks + 1;
}
static void m_align(struct daxfs_dsb *s) { s->data_align = 3 * 4096; }
static void m_size(struct daxfs_dsb *s) { s->region_size += 4096; }

/* test_super_check -- what a superblock must not get away with */
static void test_super_check(void)
{
	static const struct {
		void (*mod)(struct daxfs_dsb *);
		int err;
		const char *what;
	} cases[] = {
		{ m_incompat, -EPROTONOSUPPORT, "unknown incompat" },
		{ m_incompat_hi, -EPROTONOSUPPORT, "unknown incompat 63" },
		{ m_ro_compat, 0, "unknown ro_compat (mount decides)" },
		{ m_compat, 0, "unknown compat" },
		{ m_major, -EPROTONOSUPPORT, "newer major version" },
		{ m_minor, 0, "newer minor version" },
		{ m_reserved0, -EUCLEAN, "reserved[0]" },
		{ m_reserved_last, -EUCLEAN, "reserved[last]" },
		{ m_state, -EUCLEAN, "unknown state" },
		{ m_state_mounted, 0, "mounted state" },
		{ m_block_size, -EUCLEAN, "block size" },
		{ m_misalign, -EUCLEAN, "misaligned data" },
		{ m_backup, -EUCLEAN, "backup block" },
		{ m_root, -EUCLEAN, "root inode" },
		{ m_overlap, -EUCLEAN, "overlapping areas" },
		{ m_bitmap_short, -EUCLEAN, "bitmap too small" },
		{ m_free_blocks, -EUCLEAN, "free count" },
		{ m_align, -EUCLEAN, "alignment" },
		{ m_size, -EUCLEAN, "region size" },
	};
	const uint64_t size = 64 * MiB;
	struct daxfs_dsb sb, c;

	memset(&sb, 0, sizeof(sb));
	CHECK_OK(super_geometry(size, 2 * MiB, 0, &sb));
	seal(&sb);
	CHECK_OK(super_check(&sb, size));

	/* the magic is checked first */
	c = sb;
	c.magic ^= 1;
	CHECK_ERR(super_check(&c, size), -EINVAL);
	c.magic = 0;
	super_set_crc(&c);
	CHECK_ERR(super_check(&c, size), -EINVAL);

	/* every single flipped bit is caught */
	for (size_t bit = 0; bit < sizeof(sb) * 8; bit++) {
		c = sb;
		((uint8_t *)&c)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK_ERR(super_check(&c, size),
			  bit < 64 ? -EINVAL : -EUCLEAN);
	}

	/* a region smaller than the format */
	CHECK_ERR(super_check(&sb, size - DAXFS_BLOCK_SIZE), -EUCLEAN);
	CHECK_ERR(super_check(&sb, 0), -EUCLEAN);

	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		int got = reseal_check(&sb, size, cases[k].mod);

		CHECK_MSG(got == cases[k].err, "%s: got %d, want %d",
			  cases[k].what, got, cases[k].err);
	}
}

/* accepted_ok -- a superblock super_check passed describes a layout
 * that lies within the region, in order, without overlaps */
static void accepted_ok(const struct daxfs_dsb *s, uint64_t size)
{
	uint64_t nb = s->nblocks;

	CHECK(FS_BLOCK_OFF(nb) <= size);
	CHECK(s->bitmap_start >= 1 && s->bitmap_blocks <= nb);
	CHECK(s->bitmap_blocks * 8 * DAXFS_BLOCK_SIZE >= nb);
	CHECK(s->journal_start >= s->bitmap_start + s->bitmap_blocks);
	CHECK(s->journal_blocks >= 2 && s->journal_blocks <= nb);
	CHECK(s->itable_start >= s->journal_start + s->journal_blocks);
	CHECK(s->itable_blocks <= nb);
	CHECK(s->itable_blocks * DAXFS_BLOCK_SIZE >=
	      s->ninodes * DAXFS_INODE_SIZE);
	CHECK(s->data_start >= s->itable_start + s->itable_blocks);
	CHECK(s->data_start < nb - 1);
	CHECK_EQ(s->backup_block, nb - 1);
}

/* test_super_fuzz -- resealed random changes: whatever super_check
 * accepts must be a layout the rest of daxfs can trust */
static void test_super_fuzz(void)
{
	const uint64_t size = 64 * MiB;
	static const size_t fields[] = {
		offsetof(struct daxfs_dsb, region_size),
		offsetof(struct daxfs_dsb, nblocks),
		offsetof(struct daxfs_dsb, data_align),
		offsetof(struct daxfs_dsb, bitmap_start),
		offsetof(struct daxfs_dsb, bitmap_blocks),
		offsetof(struct daxfs_dsb, journal_start),
		offsetof(struct daxfs_dsb, journal_blocks),
		offsetof(struct daxfs_dsb, itable_start),
		offsetof(struct daxfs_dsb, itable_blocks),
		offsetof(struct daxfs_dsb, ninodes),
		offsetof(struct daxfs_dsb, data_start),
		offsetof(struct daxfs_dsb, backup_block),
	};
	struct daxfs_dsb sb, c;
	unsigned accepted = 0;

	memset(&sb, 0, sizeof(sb));
	CHECK_OK(super_geometry(size, 2 * MiB, 0, &sb));
	seal(&sb);
	for (int round = 0; round < 200000; round++) {
		int nmod = (int)tl_rand_range(1, 3);

		c = sb;
		for (int m = 0; m < nmod; m++) {
			size_t f = fields[tl_rand_below(ARRAY_SIZE(fields))];
			uint64_t v;

			memcpy(&v, (uint8_t *)&c + f, 8);
			switch (tl_rand_below(6)) {
			case 0: v += tl_rand_range(1, 4); break;
			case 1: v -= tl_rand_range(1, 4); break;
			case 2: v = tl_rand(); break;
			case 3: v = 0 - tl_rand_below(1024); break;
			case 4: v = tl_rand_below(2 * sb.nblocks); break;
			default: v ^= 1ULL << tl_rand_below(64); break;
			}
			memcpy((uint8_t *)&c + f, &v, 8);
		}
		super_set_crc(&c);
		if (super_check(&c, size) == 0) {
			accepted_ok(&c, size);
			accepted++;
		}
	}
	printf("  fuzz: %u of 200000 mutated superblocks accepted, all "
	       "consistent\n", accepted);
}

/* damage -- flip one bit at byte off of the region */
static void damage(struct region *r, uint64_t off)
{
	uint8_t b;

	CHECK_OK(region_read(r, off, &b, 1));
	b ^= 0x10;
	CHECK_OK(region_write(r, off, &b, 1));
	CHECK_OK(region_persist(r, off, 1));
}

/* test_backup -- a damaged primary is replaced by the backup */
static void test_backup(void)
{
	const char *path = tl_region_path("backup");
	struct daxfs_dsb sb, good, raw;
	struct region *r;
	struct daxfs *fs;
	bool used = false;
	char zero[DAXFS_SB_SIZE];

	memset(zero, 0, sizeof(zero));
	tl_mkfs(path, 16 * MiB, 0);
	CHECK_OK(region_open(path, 0, 0, &r));
	read_sb(r, 0, &good);

	/* a flipped bit anywhere in the primary */
	for (int k = 0; k < 20; k++) {
		uint64_t off = tl_rand_below(DAXFS_SB_SIZE);

		damage(r, off);
		CHECK_OK(super_read(r, &sb, &used));
		CHECK(used);
		CHECK_MEM(&sb, &good, sizeof(sb));
		damage(r, off);			/* undo */
		CHECK_OK(super_read(r, &sb, &used));
		CHECK(!used);
	}
	/* the damage is in the pointer to the backup itself */
	for (int bit = 0; bit < 8; bit++) {
		uint64_t off = offsetof(struct daxfs_dsb, backup_block) +
			       tl_rand_below(3);
		uint8_t c;

		CHECK_OK(region_read(r, off, &c, 1));
		c ^= (uint8_t)(1u << bit);
		CHECK_OK(region_write(r, off, &c, 1));
		CHECK_OK(super_read(r, &sb, &used));
		CHECK(used);
		CHECK_MEM(&sb, &good, sizeof(sb));
		c ^= (uint8_t)(1u << bit);
		CHECK_OK(region_write(r, off, &c, 1));
	}
	/* a primary that is gone altogether */
	CHECK_OK(region_write(r, 0, zero, sizeof(zero)));
	CHECK_OK(super_read(r, &sb, &used));
	CHECK(used);
	CHECK_MEM(&sb, &good, sizeof(sb));
	region_close(r);

	/* mounting repairs the primary */
	fs = tl_mount(path);
	CHECK_OK(fs_unmount(fs, true));
	CHECK_OK(region_open(path, 0, 0, &r));
	read_sb(r, 0, &raw);
	CHECK_OK(super_check(&raw, r->size));
	CHECK_OK(super_read(r, &sb, &used));
	CHECK(!used);

	/* both damaged: a sentence and -EUCLEAN, not a guess */
	CHECK_OK(super_read(r, &sb, &used));
	CHECK(!used);
	damage(r, 100);
	damage(r, FS_BLOCK_OFF(good.backup_block) + 100);
	CHECK_ERR(super_read(r, &sb, &used), -EUCLEAN);
	/* both without magic: not a daxfs region */
	CHECK_OK(region_write(r, 0, zero, sizeof(zero)));
	CHECK_OK(region_write(r, FS_BLOCK_OFF(good.backup_block), zero,
			      sizeof(zero)));
	CHECK_ERR(super_read(r, &sb, &used), -EINVAL);
	CHECK(!super_has_magic(r));

	/* a primary from the future is refused, not bypassed */
	raw = good;
	raw.feat_incompat = 1ULL << 3;
	super_set_crc(&raw);
	CHECK_OK(region_write(r, 0, &raw, sizeof(raw)));
	CHECK_OK(region_write(r, FS_BLOCK_OFF(good.backup_block), &good,
			      sizeof(good)));
	CHECK_ERR(super_read(r, &sb, &used), -EPROTONOSUPPORT);
	region_close(r);
	{
		struct mount_opts o = { .readonly = false };

		CHECK_ERR(fs_mount(path, &o, &fs), -EPROTONOSUPPORT);
	}
}

/* test_backup_inside -- a filesystem smaller than its region keeps its
 * backup inside the format, not in the region's last block */
static void test_backup_inside(void)
{
	const char *path = tl_region_path("inside");
	struct mkfs_opts o = { .size = 16 * MiB };
	struct daxfs_dsb sb, good;
	struct region *r;
	bool used;

	CHECK_OK(region_open(path, REGION_CREATE, 20 * MiB, &r));
	CHECK_OK(daxfs_mkfs(r, &o));
	read_sb(r, 0, &good);
	CHECK_EQ(good.region_size, 16 * MiB);
	CHECK_EQ(good.backup_block, 16 * MiB / DAXFS_BLOCK_SIZE - 1);
	CHECK_OK(super_read(r, &sb, &used));
	CHECK(!used);
	damage(r, offsetof(struct daxfs_dsb, label));
	CHECK_OK(super_read(r, &sb, &used));
	CHECK(used);
	CHECK_MEM(&sb, &good, sizeof(sb));
	region_close(r);
}

/* test_parse_size -- sizes a person types */
static void test_parse_size(void)
{
	static const struct { const char *s; int ret; uint64_t v; } t[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "16k", 0, 16 << 10 },
		{ "16K", 0, 16 << 10 },
		{ "512M", 0, 512 * MiB },
		{ "1G", 0, GiB },
		{ "1g", 0, GiB },
		{ "1GB", 0, GiB },
		{ "1GiB", 0, GiB },
		{ "2T", 0, 2ULL << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "16777215T", 0, 16777215ULL << 40 },
		{ "", -EINVAL, 0 },
		{ "G", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ "1X", -EINVAL, 0 },
		{ "1Gx", -EINVAL, 0 },
		{ "1GiBs", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "16777216T", -ERANGE, 0 },
		{ "17179869184G", -ERANGE, 0 },
	};
	uint64_t v;

	for (size_t k = 0; k < ARRAY_SIZE(t); k++) {
		v = 12345;
		int ret = parse_size(t[k].s, &v);

		CHECK_MSG(ret == t[k].ret, "\"%s\": %d, want %d", t[k].s, ret,
			  t[k].ret);
		if (!ret)
			CHECK_MSG(v == t[k].v, "\"%s\": %" PRIu64, t[k].s, v);
		else
			CHECK_EQ(v, 12345);	/* untouched on error */
	}
	CHECK_ERR(parse_size(NULL, &v), -EINVAL);
}

int main(void)
{
	tl_init("format");
	test_crc_vectors();
	test_crc_paths();
	test_geometry();
	test_mkfs_roundtrip();
	test_super_check();
	test_super_fuzz();
	test_backup();
	test_backup_inside();
	test_parse_size();
	printf("format: all passed\n");
	return 0;
}
