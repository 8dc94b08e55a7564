/*
 * fsck.c -- the checker's driver: opening the region, the superblocks, the
 * journal (replayed, or laid over every read when only checking), the
 * order of the passes, reporting, and the small I/O helpers the passes
 * share.
 *
 * Owns: struct fsck.  Must never: write to the region unless repairing
 * (the region is then locked exclusively, so no journal is needed), or
 * trust a number read from the region before checking it against the
 * geometry.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

/* fatal_msg -- the sentence for an error that ends the run */
static void fatal_msg(int err)
{
	if (err == -ENOMEM)
		daxfs_seterr("out of memory");
	else if (err == -EIO)
		daxfs_seterr("I/O error: the region is no longer accessible");
	else
		daxfs_seterr("%s", strerror(-err));
}

/* fsck_fail -- remember the first operational error; returns it */
int fsck_fail(struct fsck *c, int err)
{
	if (!c->fatal)
		c->fatal = err;
	return c->fatal;
}

/* vreport -- format a message and hand it to the caller */
static void vreport(struct fsck *c, bool note, enum fsck_status st,
		    const char *detail, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (note) {
		if (c->o->note)
			c->o->note(c->o->arg, msg);
	} else if (c->o->problem) {
		c->o->problem(c->o->arg, msg, st, detail);
	}
}

/*
 * fsck_problem -- one error.  fixret is what the repair returned (ignored
 * when only checking): 0 fixed, -errno not fixed; an I/O error or lack of
 * memory also ends the run.
 */
void fsck_problem(struct fsck *c, int fixret, const char *detail,
		  const char *fmt, ...)
{
	enum fsck_status st = FSCK_FOUND;
	va_list ap;

	c->res->errors++;
	if (c->repair) {
		if (fixret) {
			st = FSCK_UNFIXED;
			c->unfixed++;
			if (!detail)
				detail = strerror(-fixret);
			if (fixret == -EIO || fixret == -ENOMEM)
				fsck_fail(c, fixret);
		} else {
			st = FSCK_FIXED;
			c->res->fixed++;
		}
	}
	va_start(ap, fmt);
	vreport(c, false, st, detail, fmt, ap);
	va_end(ap);
}

/* fsck_note -- something worth saying that is not an error */
void fsck_note(struct fsck *c, const char *fmt, ...)
{
	va_list ap;

	c->res->notes++;
	va_start(ap, fmt);
	vreport(c, true, FSCK_FOUND, NULL, fmt, ap);
	va_end(ap);
}

/* fsck_name -- a name from the region, printable, in out */
const char *fsck_name(const char *name, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t k = 0; k < len && o + 5 < cap; k++) {
		unsigned char ch = (unsigned char)name[k];

		if (ch < 0x20 || ch == 0x7f || ch == '\'' || ch == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
	return out;
}

/*
 * fsck_own_fixed -- mark in the shadow bitmap the blocks no inode owns but
 * that are never free: the metadata area, the backup superblock and the
 * padding past the last block.
 */
void fsck_own_fixed(struct fsck *c)
{
	bitmap_set(c->owned, 0, c->data_start, true);
	bitmap_set(c->owned, c->sb.backup_block, 1, true);
	bitmap_set(c->owned, c->nblocks, c->nwords * 64 - c->nblocks, true);
}

/* rec_cmp_seq -- qsort: records in the order they are applied */
static int rec_cmp_seq(const void *a, const void *b)
{
	const struct jrec_ref *x = *(const struct jrec_ref * const *)a;
	const struct jrec_ref *y = *(const struct jrec_ref * const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* overlay -- lay the pending transaction's records over [off, off+len) */
static int overlay(struct fsck *c, uint64_t off, uint8_t *buf, uint64_t len)
{
	uint64_t end = off + len;
	uint32_t lo = 0, hi = c->nrecs, n = 0;
	const struct jrec_ref **hit;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->recs[mid].off < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* records [0, lo) start before end; walk back while any can reach */
	hit = malloc((size_t)(lo ? lo : 1) * sizeof(*hit));
	if (!hit)
		return -ENOMEM;
	for (uint32_t i = lo; i > 0 && c->rmaxend[i - 1] > off; i--) {
		const struct jrec_ref *rr = &c->recs[i - 1];

		if (rr->off + rr->len > off)
			hit[n++] = rr;
	}
	qsort(hit, n, sizeof(*hit), rec_cmp_seq);
	for (uint32_t k = 0; k < n; k++) {
		uint64_t s = MAX(off, hit[k]->off);
		uint64_t e = MIN(end, hit[k]->off + hit[k]->len);

		memcpy(buf + (s - off), hit[k]->data + (s - hit[k]->off),
		       e - s);
	}
	free(hit);
	return 0;
}

/*
 * fsck_read -- read the region as it will be after the journal is
 * replayed.  Ranges outside the region are refused, never read.
 */
int fsck_read(struct fsck *c, uint64_t off, void *buf, uint64_t len)
{
	int ret;

	if (!region_range_ok(c->r, off, len))
		return -EUCLEAN;
	ret = region_read(c->r, off, buf, len);
	if (!ret && c->nrecs)
		ret = overlay(c, off, buf, len);
	if (ret == -EIO || ret == -ENOMEM)
		fsck_fail(c, ret);
	return ret;
}

/* fsck_write -- store and persist (repair only) */
int fsck_write(struct fsck *c, uint64_t off, const void *buf, uint64_t len)
{
	int ret;

	if (!c->repair)
		return -EROFS;
	ret = region_write(c->r, off, buf, len);
	if (!ret)
		ret = region_persist(c->r, off, len);
	if (ret == -EIO)
		fsck_fail(c, ret);
	if (!ret)
		c->changed = true;
	return ret;
}

int fsck_inode_read(struct fsck *c, uint64_t ino, struct daxfs_dinode *d)
{
	return fsck_read(c, c->itable_off + ino * DAXFS_INODE_SIZE, d,
			 sizeof(*d));
}

/* fsck_inode_write -- seal and store a dinode */
int fsck_inode_write(struct fsck *c, uint64_t ino, struct daxfs_dinode *d)
{
	dinode_set_crc(d);
	return fsck_write(c, c->itable_off + ino * DAXFS_INODE_SIZE, d,
			  sizeof(*d));
}

/* fsck_inode_clear -- make a slot free, keeping its generation */
int fsck_inode_clear(struct fsck *c, uint64_t ino, uint32_t generation)
{
	struct daxfs_dinode d;

	memset(&d, 0, sizeof(d));
	d.generation = generation;
	return fsck_inode_write(c, ino, &d);
}

/* primary_why -- a few words on what is wrong with the primary */
static void primary_why(struct fsck *c, char *why, size_t len)
{
	struct daxfs_dsb p;
	int ret = region_read(c->r, 0, &p, sizeof(p));

	if (ret) {
		snprintf(why, len, "%s", strerror(-ret));
		return;
	}
	if (p.magic != DAXFS_SB_MAGIC) {
		snprintf(why, len, "bad magic");
		return;
	}
	daxfs_clearerr();
	ret = super_check(&p, c->r->size);
	snprintf(why, len, "%s", ret ? daxfs_errmsg(ret) : "unreadable");
}

/*
 * mid_update -- do two copies of the superblock differ only in what every
 * mount, unmount and quiesce rewrites (state, counts, times, checksum)?
 * super_write() persists the primary, then the backup, each as 8-byte
 * words that a crash can tear apart: such a difference is a crash in the
 * middle of that, not damage.
 */
static bool mid_update(const struct daxfs_dsb *a, const struct daxfs_dsb *b)
{
	struct daxfs_dsb x = *a, y = *b;

	/* one update apart: a mount counts one more */
	if (x.mount_count - y.mount_count + 1 > 2)
		return false;
	x.state = y.state = 0;
	x.mount_count = y.mount_count = 0;
	x.mount_time = y.mount_time = 0;
	x.write_time = y.write_time = 0;
	x.free_blocks = y.free_blocks = 0;
	x.free_inodes = y.free_inodes = 0;
	x.crc = y.crc = 0;
	return !memcmp(&x, &y, sizeof(x));
}

/* check_super -- pick the superblock to trust; compare the two copies */
static int check_super(struct fsck *c)
{
	struct daxfs_dsb b, sb;
	bool used_backup;
	char why[400];
	int ret;

	daxfs_clearerr();
	ret = super_read(c->r, &c->sb, &used_backup);
	if (ret == -EUCLEAN) {
		primary_why(c, why, sizeof(why));
		daxfs_seterr("primary superblock is damaged (%s) and the "
			     "backup is unusable; fsck cannot %s this region: "
			     "restore it from a copy or reformat it",
			     why, c->repair ? "repair" : "check");
		return ret;
	}
	if (ret)
		return ret;
	if (c->sb.feat_ro_compat & ~DAXFS_FEATURE_RO_COMPAT_SUPP) {
		daxfs_seterr("region uses features 0x%llx unknown to this "
			     "fsck", (unsigned long long)(c->sb.feat_ro_compat &
					~DAXFS_FEATURE_RO_COMPAT_SUPP));
		return -EPROTONOSUPPORT;
	}
	if (used_backup) {
		bool torn = !region_read(c->r, 0, &b, sizeof(b)) &&
			    mid_update(&b, &c->sb);

		primary_why(c, why, sizeof(why));
		sb = c->sb;
		ret = c->repair ? super_write(c->r, &sb) : 0;
		if (!ret && c->repair)
			c->changed = true;
		if (!ret && torn)
			fsck_note(c, "primary superblock was caught mid-update "
				  "by a crash; the backup is used and %s",
				  c->repair ? "was copied over it" :
				  "the mount rewrites both");
		else
			fsck_problem(c, ret, "rewritten from the backup",
				     "primary superblock is damaged (%s); the "
				     "backup is intact", why);
		return c->fatal;
	}
	ret = region_read(c->r, FS_BLOCK_OFF(c->sb.backup_block), &b,
			  sizeof(b));
	if (ret)
		return fsck_fail(c, ret);
	daxfs_clearerr();
	ret = super_check(&b, c->r->size);
	if ((ret || memcmp(&b, &c->sb, sizeof(b))) && mid_update(&b, &c->sb)) {
		sb = c->sb;
		ret = c->repair ? super_write(c->r, &sb) : 0;
		if (ret)
			return fsck_fail(c, ret);
		if (c->repair)
			c->changed = true;
		fsck_note(c, "backup superblock was caught mid-update by a "
			  "crash; %s", c->repair ? "rewritten from the primary" :
			  "the mount rewrites it");
	} else if (ret || memcmp(&b, &c->sb, sizeof(b))) {
		snprintf(why, sizeof(why), "%s", ret ? daxfs_errmsg(ret) : "");
		sb = c->sb;
		ret = c->repair ? super_write(c->r, &sb) : 0;
		if (!ret && c->repair)
			c->changed = true;
		if (why[0])
			fsck_problem(c, ret, "rewritten from the primary",
				     "backup superblock is damaged (%s)", why);
		else
			fsck_problem(c, ret, "rewritten from the primary",
				     "backup superblock differs from the "
				     "primary");
	}
	return c->fatal;
}

/* jrec_cmp_off -- qsort: records by offset, then by order */
static int jrec_cmp_off(const void *a, const void *b)
{
	const struct jrec_ref *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* drop_tx -- forget a loaded transaction */
static void drop_tx(struct fsck *c)
{
	free(c->jbuf);
	free(c->recs);
	free(c->rmaxend);
	c->jbuf = NULL;
	c->recs = NULL;
	c->rmaxend = NULL;
	c->nrecs = 0;
}

/* parse_tx -- check every record of a sealed transaction; fill c->recs */
static int parse_tx(struct fsck *c, const struct daxfs_jtx *h)
{
	uint64_t pos = 0;

	if (h->nrec > h->len / sizeof(struct daxfs_jrec))
		return -EUCLEAN;
	c->recs = calloc(h->nrec, sizeof(*c->recs));
	c->rmaxend = calloc(h->nrec, sizeof(*c->rmaxend));
	if (!c->recs || !c->rmaxend)
		return -ENOMEM;
	for (uint32_t n = 0; n < h->nrec; n++) {
		struct daxfs_jrec rec;
		uint64_t pad;

		if (h->len - pos < sizeof(rec))
			return -EUCLEAN;
		memcpy(&rec, c->jbuf + pos, sizeof(rec));
		pos += sizeof(rec);
		if (rec.len > h->len - pos || !jrec_ok(&c->sb, rec.off,
							 rec.len))
			return -EUCLEAN;
		c->recs[n] = (struct jrec_ref){ rec.off, rec.len,
						c->jbuf + pos, n };
		pos += rec.len;
		pad = ALIGN_UP(rec.len, 8) - rec.len;
		if (pad > h->len - pos)
			return -EUCLEAN;
		pos += pad;
	}
	return pos == h->len ? 0 : -EUCLEAN;
}

/*
 * load_tx -- the transaction in the log, if it is committed and not yet
 * retired: 1 with its records in c->recs, 0 when there is none (or it is
 * torn), -EUCLEAN when it is sealed but malformed.  Checked here in full
 * before journal_recover() is let near it.
 */
static int load_tx(struct fsck *c, const struct daxfs_jsb *j, uint64_t *seq)
{
	uint64_t loff = FS_BLOCK_OFF(c->sb.journal_start + 1);
	uint64_t lcap = FS_BLOCK_OFF(c->sb.journal_blocks - 1);
	struct daxfs_jtx h;
	uint32_t want;
	int ret;

	ret = region_read(c->r, loff, &h, sizeof(h));
	if (ret)
		return ret;
	if (h.magic != DAXFS_TX_MAGIC || h.seq != j->seq ||
	    h.len > lcap - sizeof(h) || h.nrec == 0)
		return 0;
	c->jbuf = malloc(h.len ? h.len : 1);
	if (!c->jbuf)
		return -ENOMEM;
	ret = region_read(c->r, loff + sizeof(h), c->jbuf, h.len);
	if (ret)
		return ret;
	want = h.crc;
	h.crc = 0;
	if (crc32c(crc32c(0, &h, sizeof(h)), c->jbuf, h.len) != want) {
		drop_tx(c);
		return 0;		/* torn: the commit never completed */
	}
	*seq = h.seq;
	ret = parse_tx(c, &h);
	if (ret) {
		drop_tx(c);
		return ret;
	}
	qsort(c->recs, h.nrec, sizeof(*c->recs), jrec_cmp_off);
	for (uint32_t n = 0; n < h.nrec; n++)
		c->rmaxend[n] = MAX(n ? c->rmaxend[n - 1] : 0,
				    c->recs[n].off + c->recs[n].len);
	c->nrecs = h.nrec;
	return 1;
}

/* jsb_store -- write a journal superblock (repair) */
static int jsb_store(struct fsck *c, struct daxfs_jsb *j)
{
	j->crc = crc32c(0, j, offsetof(struct daxfs_jsb, crc));
	return fsck_write(c, FS_BLOCK_OFF(c->sb.journal_start), j,
			  sizeof(*j));
}

/* jsb_rebuild -- a fresh journal superblock that retires whatever the
 * log holds */
static int jsb_rebuild(struct fsck *c)
{
	struct daxfs_jsb j;
	struct daxfs_jtx h;
	int ret;

	ret = region_read(c->r, FS_BLOCK_OFF(c->sb.journal_start + 1), &h,
			  sizeof(h));
	if (ret)
		return ret;
	memset(&j, 0, sizeof(j));
	j.magic = DAXFS_JSB_MAGIC;
	j.seq = (h.magic == DAXFS_TX_MAGIC && h.seq < UINT64_MAX - 1) ?
		h.seq + 1 : 1;
	j.log_start = c->sb.journal_start + 1;
	j.log_blocks = c->sb.journal_blocks - 1;
	return jsb_store(c, &j);
}

/* check_journal -- the journal superblock and a committed transaction */
static int check_journal(struct fsck *c)
{
	struct daxfs_jsb j;
	uint64_t seq = 0;
	int ret;

	ret = region_read(c->r, FS_BLOCK_OFF(c->sb.journal_start), &j,
			  sizeof(j));
	if (ret)
		return fsck_fail(c, ret);
	if (j.magic == DAXFS_JSB_MAGIC && jsb_crc(&j) != j.crc &&
	    mem_is_zero(j.reserved, sizeof(j.reserved)) && jsb_untear(&j)) {
		ret = c->repair ? jsb_store(c, &j) : 0;
		if (ret)
			return fsck_fail(c, ret);
		fsck_note(c, "journal superblock was caught mid-update by a "
			  "crash; %s", c->repair ? "settled" :
			  "the mount settles it");
	}
	if (j.magic != DAXFS_JSB_MAGIC || jsb_crc(&j) != j.crc ||
	    !mem_is_zero(j.reserved, sizeof(j.reserved))) {
		ret = c->repair ? jsb_rebuild(c) : 0;
		fsck_problem(c, ret, "rebuilt", "journal superblock is "
			     "damaged");
		return c->fatal;
	}
	if (j.log_start != c->sb.journal_start + 1 ||
	    j.log_blocks != c->sb.journal_blocks - 1) {
		ret = c->repair ? jsb_rebuild(c) : 0;
		fsck_problem(c, ret, "rebuilt", "journal superblock "
			     "disagrees with the superblock");
		return c->fatal;
	}
	ret = load_tx(c, &j, &seq);
	if (ret == -EUCLEAN) {
		if (c->repair) {
			j.seq++;
			ret = jsb_store(c, &j);
		} else {
			ret = 0;
		}
		fsck_problem(c, ret, "discarded", "journal transaction %llu is "
			     "malformed; the mount would refuse it",
			     (unsigned long long)seq);
		return c->fatal;
	}
	if (ret < 0)
		return fsck_fail(c, ret);
	if (ret == 0)
		return 0;
	if (!c->repair) {
		fsck_note(c, "journal holds committed transaction %llu; it "
			  "will be replayed at mount", (unsigned long long)seq);
		return 0;
	}
	drop_tx(c);
	daxfs_clearerr();
	ret = journal_recover(c->r, &c->sb, true, &seq);
	if (ret < 0)
		return fsck_fail(c, ret);
	c->changed = true;
	fsck_note(c, "replayed committed journal transaction %llu",
		  (unsigned long long)seq);
	return 0;
}

/* fsck_free_count -- clear bits of map in [0, n): free blocks */
uint64_t fsck_free_count(const uint64_t *map, uint64_t n)
{
	uint64_t used = 0;

	for (uint64_t w = 0; w < n / 64; w++)
		used += (uint64_t)__builtin_popcountll(map[w]);
	for (uint64_t b = n / 64 * 64; b < n; b++)
		used += bitmap_test(map, b);
	return n - used;
}

/*
 * setup -- geometry, the bitmaps and the per-inode arrays.  super_check()
 * bounds the fields one by one; the sums are checked here again without
 * room for overflow, since every size below is allocated from them.
 */
static int setup(struct fsck *c)
{
	const struct daxfs_dsb *sb = &c->sb;
	int ret;

	if (sb->bitmap_blocks > sb->nblocks ||
	    sb->itable_blocks > sb->nblocks ||
	    sb->bitmap_blocks * 8 * DAXFS_BLOCK_SIZE < sb->nblocks ||
	    sb->itable_start + sb->itable_blocks > sb->data_start ||
	    DIV_ROUND_UP(sb->ninodes * DAXFS_INODE_SIZE, DAXFS_BLOCK_SIZE) >
		sb->itable_blocks) {
		daxfs_seterr("superblock layout is inconsistent");
		return -EUCLEAN;
	}

	c->nblocks = sb->nblocks;
	c->ninodes = sb->ninodes;
	c->data_start = sb->data_start;
	c->itable_off = FS_BLOCK_OFF(sb->itable_start);
	c->geo.nblocks = c->nblocks;
	c->geo.ninodes = c->ninodes;
	c->geo.data_start = c->data_start;
	c->nwords = sb->bitmap_blocks * (DAXFS_BLOCK_SIZE / 8);
	c->bitmap = malloc(c->nwords * 8);
	c->owned = calloc(c->nwords, 8);
	c->istate = calloc(c->ninodes, sizeof(*c->istate));
	c->links = calloc(c->ninodes, sizeof(*c->links));
	if (!c->bitmap || !c->owned || !c->istate || !c->links)
		return fsck_fail(c, -ENOMEM);
	ret = fsck_read(c, FS_BLOCK_OFF(sb->bitmap_start), c->bitmap,
			c->nwords * 8);
	if (ret)
		return fsck_fail(c, ret);
	c->free_read = fsck_free_count(c->bitmap, c->nblocks);
	fsck_own_fixed(c);
	return 0;
}

/* teardown -- free everything a run allocated; close the region */
static void teardown(struct fsck *c)
{
	for (uint64_t k = 0; k < c->ndirs; k++)
		free(c->dirs[k].ext);
	free(c->dirs);
	if (c->lf && c->lf_own) {
		free(c->lf->ext);
		free(c->lf);
	}
	fsck_names_free(c->lf_names);
	free(c->conf);
	free(c->istate);
	free(c->links);
	free(c->bitmap);
	free(c->owned);
	free(c->dup);
	free(c->jbuf);
	free(c->recs);
	free(c->rmaxend);
	if (c->r)
		region_close(c->r);
}

/* fsck_run -- check and repair a region; see fsck.h */
int fsck_run(const char *spec, const struct fsck_opts *o,
	     struct fsck_result *res)
{
	struct fsck c;
	int ret;

	memset(&c, 0, sizeof(c));
	memset(res, 0, sizeof(*res));
	c.o = o;
	c.res = res;
	c.repair = o->repair;
	ret = region_open(spec, o->repair ? 0 : REGION_RDONLY | REGION_SHARED,
			  0, &c.r);
	if (ret)
		return ret;
	ret = check_super(&c);
	if (!ret)
		ret = check_journal(&c);
	if (!ret)
		ret = setup(&c);
	if (!ret)
		ret = fsck_pass_inodes(&c);
	if (!ret)
		ret = fsck_pass_conflicts(&c);
	if (!ret)
		ret = fsck_pass_dirs(&c);
	if (!ret)
		ret = fsck_pass_reach(&c);
	if (!ret)
		ret = fsck_pass_links(&c);
	if (!ret)
		ret = fsck_pass_space(&c);
	if (!ret && c.fatal)
		ret = c.fatal;
	if (ret && ret == c.fatal)
		fatal_msg(ret);		/* passes may have reset the sentence */
	teardown(&c);
	return ret;
}
