/*
 * fuzz_journal.c -- journal replay: the journal superblock and the log
 * head of an image that crashed with a committed transaction are
 * replaced by the input.  journal_recover() must agree with itself
 * (looking, then replaying), replay at most once, never write outside
 * what a record may touch, and agree with fsck, which reads the region
 * through the pending transaction without replaying it: fsck sees a
 * transaction to replay exactly when the mount would replay one, and
 * finds the same problems before the replay as after it.
 *
 * Input: [flags] [journal superblock: 64 bytes] [log bytes...]
 *   flags bit 0: reseal the journal superblock; bit 1: reseal the
 *   transaction; bit 2: the journal superblock expects the transaction's
 *   sequence number; bit 3: the journal superblock's log fields are right
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE

static struct fz_region rg;
static struct region *r;
static const struct fz_image *tmpl;
static const struct daxfs_dsb *sb;
static uint64_t joff, loff, lcap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fz_seed_dir();
	int ret;

	(void)argc;
	(void)argv;
	tmpl = fz_templates();
	sb = &tmpl[FZ_PENDING].sb;
	joff = FS_BLOCK_OFF(sb->journal_start);
	loff = joff + BS;
	lcap = FS_BLOCK_OFF(sb->journal_blocks - 1);
	fz_region_new(&rg, FZ_REGION_SIZE);
	fz_region_load(&rg, tmpl[FZ_PENDING].bytes);
	ret = region_open(rg.spec, 0, 0, &r);
	if (ret)
		fz_fail("region_open: %s", daxfs_errmsg(ret));
	if (dir) {
		for (unsigned v = 0; v < FZ_NVARIANTS; v++) {
			const uint8_t *b = tmpl[v].bytes;
			struct daxfs_jtx h;
			size_t n;
			uint8_t *buf;
			char name[32];

			memcpy(&h, b + loff, sizeof(h));
			n = 1 + sizeof(struct daxfs_jsb) + sizeof(h) +
			    MIN(h.len, 8192);
			buf = calloc(1, n);
			memcpy(buf + 1, b + joff, sizeof(struct daxfs_jsb));
			memcpy(buf + 1 + sizeof(struct daxfs_jsb), b + loff,
			       n - 1 - sizeof(struct daxfs_jsb));
			snprintf(name, sizeof(name), "variant-%u", v);
			fz_write_seed(dir, name, buf, n);
			buf[0] = 0x0f;
			snprintf(name, sizeof(name), "variant-%u-sealed", v);
			fz_write_seed(dir, name, buf, n);
			free(buf);
		}
		exit(0);
	}
	return 0;
}

struct seen {
	bool pending;			/* fsck: a transaction to replay */
	uint64_t problems;
};

static void on_note(void *arg, const char *msg)
{
	struct seen *s = arg;

	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fsck note: %s\n", msg);
	if (!strncmp(msg, "journal holds committed transaction", 35))
		s->pending = true;
}

static void on_problem(void *arg, const char *msg, enum fsck_status st,
		       const char *detail)
{
	struct seen *s = arg;

	(void)st;
	(void)detail;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fsck problem: %s\n", msg);
	s->problems++;
}

/* check -- fsck without repair; -errno, or 0 with what it saw */
static int check(struct seen *s)
{
	struct fsck_opts o = { .problem = on_problem, .note = on_note,
			       .arg = s };
	struct fsck_result res;

	memset(s, 0, sizeof(*s));
	return fsck_run(rg.spec, &o, &res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t before[2 * BS];
	struct daxfs_jsb j;
	struct daxfs_jtx h;
	struct seen s1, s2;
	uint64_t seq1 = 0, seq2 = 0;
	int r1, r2, r3, f1, f2;

	if (size < 1)
		return -1;
	fz_region_load(&rg, tmpl[FZ_PENDING].bytes);
	if (size > 1)
		memcpy(rg.map + joff, data + 1,
		       MIN(size - 1, sizeof(struct daxfs_jsb)));
	if (size > 1 + sizeof(j))
		memcpy(rg.map + loff, data + 1 + sizeof(j),
		       MIN(size - 1 - sizeof(j), lcap));
	memcpy(&j, rg.map + joff, sizeof(j));
	memcpy(&h, rg.map + loff, sizeof(h));
	if (data[0] & 0x02)
		fz_seal_tx(rg.map + loff, lcap);
	if (data[0] & 0x04)
		j.seq = h.seq;
	if (data[0] & 0x08) {
		j.log_start = sb->journal_start + 1;
		j.log_blocks = sb->journal_blocks - 1;
	}
	if (data[0] & 0x01)
		fz_seal_jsb(&j);
	memcpy(rg.map + joff, &j, sizeof(j));
	memcpy(before, rg.map + loff, sizeof(before));

	f1 = check(&s1);
	FZ_ASSERT(f1 <= 0);
	r1 = journal_recover(r, sb, false, &seq1);
	r2 = journal_recover(r, sb, true, &seq2);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fsck %d, recover %d then %d (%s)\n", f1, r1,
			r2, daxfs_errmsg(r2));
	FZ_ASSERT(r1 == r2);
	FZ_ASSERT(r1 == 1 || r1 == 0 || r1 == -EUCLEAN || r1 == -ENOMEM);
	if (!f1)
		FZ_ASSERT(s1.pending == (r1 == 1));
	if (r1 != 1)
		return 0;
	FZ_ASSERT(seq1 == seq2);
	/* replayed once, retired, and nothing it must not touch touched */
	r3 = journal_recover(r, sb, false, NULL);
	FZ_ASSERT(r3 == 0);
	FZ_ASSERT(!memcmp(rg.map, tmpl[FZ_PENDING].bytes, BS));
	FZ_ASSERT(!memcmp(rg.map + FS_BLOCK_OFF(sb->backup_block),
			  tmpl[FZ_PENDING].bytes +
			  FS_BLOCK_OFF(sb->backup_block), BS));
	FZ_ASSERT(!memcmp(rg.map + loff, before, sizeof(before)));
	memcpy(&j, rg.map + joff, sizeof(j));
	FZ_ASSERT(j.seq == seq1 + 1);

	/* fsck read through the transaction what the replay then wrote */
	f2 = check(&s2);
	FZ_ASSERT(f2 <= 0);
	if (!f1 && !f2 && s1.problems != s2.problems)
		fz_fail("fsck found %llu problems reading through the pending "
			"transaction but %llu once it was replayed",
			(unsigned long long)s1.problems,
			(unsigned long long)s2.problems);
	return 0;
}
