/*
 * test_journal.c -- crash consistency of the journal.
 *
 * The region tracer records every store, flush and drain of a commit.  A
 * crash is simulated by rebuilding, in a second "crashed" region, the
 * image as it was before the commit plus a prefix of the commit's stores
 * (cut at every record boundary and every 8-byte boundary), or plus a
 * random subset of the 8-byte words stored since the last drain (caches
 * write back in any order).  journal_recover then runs on that image:
 *
 *   - while the log is incomplete (the commit point not reached) nothing
 *     may be applied and the metadata must be exactly the old state;
 *   - once the log is complete, in the middle of the in-place apply or of
 *     the sequence advance, recovery must produce exactly the committed
 *     state, and doing it again (also after a crash during recovery) must
 *     change nothing.
 *
 * Hand-built logs check that a bad CRC, a wrong sequence number or a
 * record aimed outside the region, at a superblock or at the journal is
 * never applied, and a sequence of fifty random transactions followed by a
 * cut fifty-first must recover to "the first fifty applied" (or all
 * fifty-one once the fifty-first reached its commit point), checked also
 * against an independent model of the bytes written.
 */
#include "testlib.h"

#define MiB (1ULL << 20)
#define RSIZE (16 * MiB)
#define NSCRATCH 16		/* data blocks the transactions write into */

enum { EV_STORE, EV_FLUSH, EV_DRAIN };

struct ev {
	int kind;
	uint64_t off, len;
	uint8_t *data;
};

struct trace {
	struct ev *v;
	uint32_t n, cap;
};

/* ---- the tracer ------------------------------------------------------ */

/* tr_push -- a new zeroed event at the end */
static struct ev *tr_push(struct trace *t)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		CHECK(t->v);
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	return &t->v[t->n++];
}

/* tr_store -- the tracer saw a store: keep a copy of the bytes */
static void tr_store(void *arg, uint64_t off, const void *src, uint64_t len,
		     bool nt)
{
	struct ev *e = tr_push(arg);

	(void)nt;
	e->kind = EV_STORE;
	e->off = off;
	e->len = len;
	e->data = malloc(len ? len : 1);
	CHECK(e->data);
	memcpy(e->data, src, len);
}

/* tr_flush -- the tracer saw a flush */
static void tr_flush(void *arg, uint64_t off, uint64_t len)
{
	struct ev *e = tr_push(arg);

	e->kind = EV_FLUSH;
	e->off = off;
	e->len = len;
}

/* tr_drain -- the tracer saw a drain */
static void tr_drain(void *arg)
{
	tr_push(arg)->kind = EV_DRAIN;
}

/* trace_reset -- forget the events, keep the array */
static void trace_reset(struct trace *t)
{
	for (uint32_t k = 0; k < t->n; k++)
		free(t->v[k].data);
	t->n = 0;
}

/* ---- the world: a mounted fs, a crashed copy, images ----------------- */

struct range {
	uint64_t start, len;
};

struct world {
	const char *path, *cpath;
	struct daxfs *fs;
	struct region *c;		/* the crashed region */
	struct daxfs_dsb sb;
	uint8_t *pre, *post;		/* images around the traced commit */
	struct trace tr;		/* the commit's events */
	struct trace rtr;		/* a recovery's events */
	uint64_t scratch;		/* first of NSCRATCH owned blocks */
	uint8_t *model, *model_new;	/* scratch contents, independent */
	uint64_t inos[64];
	int ninos;
	struct range owned[256];	/* blocks owned, for tx_free */
	int nowned;
	uint64_t log_off, log_len, jsb_off, meta_end;
	bool c_dirty;			/* C differs beyond the touched set */
	/* statistics */
	uint64_t cuts_old, cuts_new, rec_bounds, subsets, mounts;
};

static struct trace_stats {
	uint64_t log_stores, apply_stores;
} ts;

/* image_read -- the whole region into buf */
static void image_read(struct region *r, uint8_t *buf)
{
	CHECK_OK(region_read(r, 0, buf, RSIZE));
}

/* c_load_full -- make the crashed region exactly img */
static void c_load_full(struct world *w, const uint8_t *img)
{
	CHECK_OK(region_write(w->c, 0, img, RSIZE));
	w->c_dirty = false;
}

/* c_restore -- undo every store the traces could have made */
static void c_restore(struct world *w, const uint8_t *img)
{
	if (w->c_dirty) {
		c_load_full(w, img);
		return;
	}
	for (uint32_t k = 0; k < w->tr.n; k++) {
		const struct ev *e = &w->tr.v[k];

		if (e->kind == EV_STORE)
			CHECK_OK(region_write(w->c, e->off, img + e->off,
					      e->len));
	}
	for (uint32_t k = 0; k < w->rtr.n; k++) {
		const struct ev *e = &w->rtr.v[k];

		if (e->kind == EV_STORE)
			CHECK_OK(region_write(w->c, e->off, img + e->off,
					      e->len));
	}
}

/* c_apply -- events [0, k) of t whole, then b bytes of event k */
static void c_apply(struct world *w, const struct trace *t, uint32_t k,
		    uint64_t b)
{
	for (uint32_t j = 0; j < k && j < t->n; j++)
		if (t->v[j].kind == EV_STORE)
			CHECK_OK(region_write(w->c, t->v[j].off,
					      t->v[j].data, t->v[j].len));
	if (k < t->n && t->v[k].kind == EV_STORE && b)
		CHECK_OK(region_write(w->c, t->v[k].off, t->v[k].data,
				      MIN(b, t->v[k].len)));
}

/* c_same -- does C equal img over [off, off+len)?  Reports the first
 * difference. */
static void c_expect(struct world *w, const uint8_t *img, uint64_t off,
		     uint64_t len, const char *what, uint32_t k, uint64_t b)
{
	const uint8_t *p = region_ptr(w->c, off, len);

	CHECK(p);
	if (!memcmp(p, img + off, len))
		return;
	for (uint64_t x = 0; x < len; x++)
		if (p[x] != img[off + x])
			tl_fail(__FILE__, __LINE__, "%s (cut at event %u byte "
				"%" PRIu64 "): region byte %#" PRIx64 " is "
				"%#x, expected %#x", what, k, b, off + x, p[x],
				img[off + x]);
}

/* expect_old -- metadata and scratch exactly as before the commit */
static void expect_old(struct world *w, uint32_t k, uint64_t b)
{
	c_expect(w, w->pre, 0, w->log_off, "torn log: before the log", k, b);
	c_expect(w, w->pre, w->log_off + w->log_len,
		 w->meta_end - (w->log_off + w->log_len),
		 "torn log: after the log", k, b);
	c_expect(w, w->pre, FS_BLOCK_OFF(w->scratch),
		 FS_BLOCK_OFF(NSCRATCH), "torn log: scratch", k, b);
}

/* expect_new -- metadata and scratch exactly as after the commit */
static void expect_new(struct world *w, uint32_t k, uint64_t b)
{
	c_expect(w, w->post, 0, w->meta_end, "committed: metadata", k, b);
	c_expect(w, w->post, FS_BLOCK_OFF(w->scratch),
		 FS_BLOCK_OFF(NSCRATCH), "committed: scratch", k, b);
}

/* recover -- journal_recover on C */
static int recover(struct world *w)
{
	uint64_t seq = 0;

	return journal_recover(w->c, &w->sb, true, &seq);
}

/* first_drain -- index of the commit point's drain: the one after the
 * header, which the commit writes last, at the start of the log, once
 * the records are durable */
static uint32_t first_drain(const struct trace *t, uint64_t log_off)
{
	bool header = false;

	for (uint32_t k = 0; k < t->n; k++) {
		if (t->v[k].kind == EV_STORE && t->v[k].off == log_off)
			header = true;
		if (header && t->v[k].kind == EV_DRAIN)
			return k;
	}
	tl_fail(__FILE__, __LINE__, "the commit never drained");
}

/* last_log_store -- the last store before the commit point's drain */
static uint32_t last_log_store(const struct trace *t, uint32_t d)
{
	for (uint32_t k = d; k-- > 0;)
		if (t->v[k].kind == EV_STORE)
			return k;
	tl_fail(__FILE__, __LINE__, "no log store before the drain");
}

/* log_complete -- does the cut (k, b) include every log store? */
static bool log_complete(const struct trace *t, uint32_t d, uint32_t k,
			 uint64_t b)
{
	uint32_t ls = last_log_store(t, d);

	return k > ls || (k == ls && b >= t->v[ls].len);
}

/* mount_check -- mount C (recovery included) and compare what the
 * filesystem sees with the image it must have */
static void mount_check(struct world *w, const uint8_t *img)
{
	struct mount_opts o = { .readonly = false };
	struct daxfs *fs = NULL;
	struct daxfs_dsb sb;
	uint64_t nfree = 0;
	int ret;

	memcpy(&sb, img, sizeof(sb));
	ret = fs_mount(w->cpath, &o, &fs);
	CHECK_MSG(ret == 0, "mount of the crashed region: %s",
		  daxfs_errmsg(ret));
	for (uint64_t b = 0; b < sb.nblocks; b++)
		nfree += !bitmap_test((const uint64_t *)(img +
				     FS_BLOCK_OFF(sb.bitmap_start)), b);
	CHECK_EQ(fs->alloc.free, nfree);
	for (int k = 0; k < w->ninos; k++) {
		const struct daxfs_dinode *want = (const void *)(img +
			FS_BLOCK_OFF(sb.itable_start) +
			w->inos[k] * DAXFS_INODE_SIZE);
		struct inode *i = NULL;

		ret = inode_get(fs, w->inos[k], &i);
		if (!want->mode) {
			CHECK_ERR(ret, -ENOENT);
			continue;
		}
		CHECK_OK(ret);
		CHECK_MEM(&i->d, want, sizeof(*want));
	}
	CHECK_OK(fs_unmount(fs, true));
	w->c_dirty = true;
	w->mounts++;
}

/* ---- building transactions ------------------------------------------- */

/* a pending pattern write, applied to the model at commit */
static void pattern_write(struct world *w, struct tx *tx, uint64_t len)
{
	uint64_t span = FS_BLOCK_OFF(NSCRATCH);
	uint64_t off = tl_rand_below(span - len + 1);
	uint8_t buf[8192];

	CHECK(len <= sizeof(buf));
	tl_fill_random(buf, len);
	if (tl_rand_below(4) == 0)
		memset(buf, (int)tl_rand_below(256), len);
	CHECK_OK(tx_write(tx, FS_BLOCK_OFF(w->scratch) + off, buf, len));
	memcpy(w->model_new + off, buf, len);
}

/* free_slot_write -- a free dinode (mode 0, new generation) into one of
 * the last slots of the inode table: a metadata-area record */
static void free_slot_write(struct world *w, struct tx *tx)
{
	struct daxfs_dinode d;
	uint64_t ino = w->fs->ninodes - 1 - tl_rand_below(32);

	memset(&d, 0, sizeof(d));
	d.generation = (uint32_t)tl_rand();
	dinode_set_crc(&d);
	CHECK_OK(tx_write(tx, w->fs->itable_off + ino * DAXFS_INODE_SIZE, &d,
			  sizeof(d)));
}

/* touch_inode -- change a known inode in memory and queue it */
static void touch_inode(struct world *w, struct tx *tx)
{
	struct inode *i;

	if (!w->ninos)
		return;
	i = tl_get_inode(w->fs, w->inos[tl_rand_below(w->ninos)]);
	i->d.uid = (uint32_t)tl_rand();
	i->d.size = tl_rand_below(1ULL << 40);
	i->d.mtime_sec = tl_rand();
	i->d.mtime_nsec = (uint32_t)tl_rand_below(1000000000);
	tx_dirty_inode(tx, i);
}

/* new_inode -- allocate an inode in this transaction */
static void new_inode(struct world *w, struct tx *tx)
{
	struct inode *i = NULL;

	if (w->ninos >= (int)ARRAY_SIZE(w->inos))
		return;
	CHECK_OK(inode_alloc(w->fs, tx, DAXFS_S_IFREG | 0644,
			     (uint32_t)tl_rand_below(1000), 0, &i));
	w->inos[w->ninos++] = i->ino;
}

/* bitmap_change -- allocate a few blocks and free some owned ones */
static void bitmap_change(struct world *w, struct tx *tx)
{
	struct tx_range got;

	if (w->nowned < (int)ARRAY_SIZE(w->owned) &&
	    alloc_reserve(w->fs, tl_rand_below(w->fs->nblocks),
			  tl_rand_range(1, 100), 0, &got) == 0) {
		CHECK_OK(tx_alloc(tx, got.start, got.len));
		w->owned[w->nowned++] = (struct range){ got.start, got.len };
	}
	if (w->nowned > 1 && tl_rand_below(2)) {
		int k = (int)tl_rand_below(w->nowned - 1);

		CHECK_OK(tx_free(tx, w->owned[k].start, w->owned[k].len));
		w->owned[k] = w->owned[--w->nowned];
	}
}

/* build_tx -- a transaction of several kinds of records.  size 0: a few
 * small records; 1: mixed; 2: large */
static struct tx *build_tx(struct world *w, int size)
{
	struct tx *tx = tx_begin(w->fs);
	int nrec = size == 0 ? 3 : size == 1 ? 8 : 40;

	memcpy(w->model_new, w->model, FS_BLOCK_OFF(NSCRATCH));
	for (int k = 0; k < nrec; k++) {
		switch (tl_rand_below(6)) {
		case 0:
		case 1:
			pattern_write(w, tx, tl_rand_range(1, size == 2 ?
							   2000 : 300));
			break;
		case 2:
			free_slot_write(w, tx);
			break;
		case 3:
			touch_inode(w, tx);
			break;
		case 4:
			if (size)
				new_inode(w, tx);
			else
				pattern_write(w, tx, 8);
			break;
		default:
			bitmap_change(w, tx);
			break;
		}
	}
	/* always at least one of each kind */
	pattern_write(w, tx, 64);
	touch_inode(w, tx);
	bitmap_change(w, tx);
	return tx;
}

/* traced_commit -- commit with the tracer on; images before and after */
static void traced_commit(struct world *w, struct tx *tx)
{
	struct region_tracer t = { tr_store, tr_flush, tr_drain, &w->tr };

	trace_reset(&w->tr);
	trace_reset(&w->rtr);
	image_read(w->fs->r, w->pre);
	w->fs->r->tracer = &t;
	CHECK_OK(tx_commit(tx));
	w->fs->r->tracer = NULL;
	image_read(w->fs->r, w->post);
	/* the model says what the scratch blocks hold now */
	memcpy(w->model, w->model_new, FS_BLOCK_OFF(NSCRATCH));
	CHECK_MEM(w->post + FS_BLOCK_OFF(w->scratch), w->model,
		  FS_BLOCK_OFF(NSCRATCH));
}

/* record_bounds -- positions in the log stream (the log stores in the
 * order the commit makes them: the records, then the header) where
 * records begin, found by parsing the log as format.h describes it */
static uint32_t record_bounds(struct world *w, uint64_t *pos, uint32_t max)
{
	const uint8_t *log = w->post + w->log_off;
	struct daxfs_jtx h;
	uint64_t p = sizeof(h);
	uint32_t n = 0;

	memcpy(&h, log, sizeof(h));
	CHECK_EQ(h.magic, DAXFS_TX_MAGIC);
	CHECK(h.nrec >= 3);
	for (uint32_t r = 0; r < h.nrec; r++) {
		struct daxfs_jrec rec;

		CHECK(n < max);
		pos[n++] = p - sizeof(h);
		memcpy(&rec, log + p, sizeof(rec));
		p += sizeof(rec) + ALIGN_UP(rec.len, 8);
	}
	CHECK_EQ(p, sizeof(h) + h.len);
	CHECK(n + 1 < max);
	pos[n++] = h.len;		/* the records, no header */
	pos[n++] = p;			/* and the header */
	return n;
}

/* log_pos -- the event and byte where `upto` bytes of the log stream end */
static void log_pos(struct world *w, uint32_t d, uint64_t upto,
		    uint32_t *kp, uint64_t *bp)
{
	uint64_t seen = 0;
	uint32_t k;

	/* find the event and byte the cut falls in */
	*bp = 0;
	for (k = 0; k < d; k++) {
		if (w->tr.v[k].kind != EV_STORE)
			continue;
		if (upto <= seen + w->tr.v[k].len) {
			*bp = upto - seen;
			break;
		}
		seen += w->tr.v[k].len;
	}
	*kp = k;
}

/* log_cut -- rebuild C with `upto` bytes of the log stores written (in
 * stream order) and check recovery */
static void log_cut(struct world *w, uint32_t d, uint64_t upto,
		    uint64_t total)
{
	uint32_t k;
	uint64_t b;
	int ret;

	log_pos(w, d, upto, &k, &b);
	c_restore(w, w->pre);
	c_apply(w, &w->tr, k, b);
	/* a cut can leave the log complete after all: the bytes not yet
	 * written may already hold what was to be written */
	if (upto < total) {
		const uint8_t *p = region_ptr(w->c, w->log_off, total);

		CHECK(p);
		if (!memcmp(p, w->post + w->log_off, total))
			upto = total;
	}
	ret = recover(w);
	if (upto < total) {
		CHECK_MSG(ret == 0, "torn log (%" PRIu64 " of %" PRIu64
			  " bytes): recover returned %d", upto, total, ret);
		expect_old(w, k, b);
		w->cuts_old++;
	} else {
		CHECK_MSG(ret == 1, "complete log: recover returned %d", ret);
		expect_new(w, k, b);
		w->cuts_new++;
	}
	/* again: nothing more to do, nothing changes */
	CHECK_EQ(recover(w), 0);
	if (upto < total)
		expect_old(w, k, b);
	else
		expect_new(w, k, b);
}

/* apply_cut -- the log complete, events [d, k) and b bytes of k done */
static void apply_cut(struct world *w, uint32_t k, uint64_t b)
{
	int ret;

	c_restore(w, w->pre);
	c_apply(w, &w->tr, k, b);
	ret = recover(w);
	CHECK_MSG(ret == 0 || ret == 1, "apply phase (event %u byte %" PRIu64
		  "): recover returned %d (%s)", k, b, ret,
		  daxfs_errmsg(ret));
	expect_new(w, k, b);
	CHECK_EQ(recover(w), 0);
	expect_new(w, k, b);
	w->cuts_new++;
}

/* subset_cut -- everything before event `from` (a drain) is durable; of
 * the 8-byte words stored in events [from, to) a random subset reached
 * the media */
static void subset_cut(struct world *w, uint32_t from, uint32_t to,
		       bool log_phase)
{
	uint64_t keep = tl_rand_range(1, 15);	/* in 16ths */
	int ret;

	c_restore(w, w->pre);
	c_apply(w, &w->tr, from, 0);
	for (uint32_t k = from; k < to; k++) {
		const struct ev *e = &w->tr.v[k];

		if (e->kind != EV_STORE)
			continue;
		for (uint64_t x = 0; x < e->len; x += 8) {
			/* words split at the event's own alignment */
			uint64_t n = MIN(8, e->len - x);

			if (tl_rand_below(16) < keep)
				CHECK_OK(region_write(w->c, e->off + x,
						      e->data + x, n));
		}
	}
	ret = recover(w);
	if (log_phase) {
		const uint8_t *p = region_ptr(w->c, w->log_off, w->log_len);
		bool complete;

		CHECK(p);
		complete = !memcmp(p, w->post + w->log_off, w->log_len);

		/* complete means every word landed or was already equal */
		if (!complete) {
			CHECK_MSG(ret == 0, "torn log subset: recover %d", ret);
			expect_old(w, to, 0);
		} else {
			CHECK_MSG(ret == 1, "complete log subset: recover %d",
				  ret);
			expect_new(w, to, 0);
		}
	} else {
		CHECK_MSG(ret == 0 || ret == 1, "apply subset: recover %d "
			  "(%s)", ret, daxfs_errmsg(ret));
		expect_new(w, to, 0);
	}
	w->subsets++;
}

/* recovery_crash -- crash during recovery itself, at every 8 bytes of
 * its stores: recovering again must still give the committed state */
static void recovery_crash(struct world *w, uint32_t d)
{
	struct region_tracer t = { tr_store, tr_flush, tr_drain, &w->rtr };

	c_restore(w, w->pre);
	c_apply(w, &w->tr, d, 0);
	trace_reset(&w->rtr);
	w->c->tracer = &t;
	CHECK_EQ(recover(w), 1);
	w->c->tracer = NULL;
	expect_new(w, d, 0);
	CHECK(w->rtr.n > 0);
	for (uint32_t k = 0; k < w->rtr.n; k++) {
		const struct ev *e = &w->rtr.v[k];

		if (e->kind != EV_STORE)
			continue;
		for (uint64_t b = 0; b <= e->len; b += 8) {
			int ret;

			c_restore(w, w->pre);
			c_apply(w, &w->tr, d, 0);
			c_apply(w, &w->rtr, k, b);
			ret = recover(w);
			CHECK_MSG(ret == 0 || ret == 1, "crash in recovery "
				  "(event %u byte %" PRIu64 "): %d (%s)", k, b,
				  ret, daxfs_errmsg(ret));
			expect_new(w, k, b);
			CHECK_EQ(recover(w), 0);
			w->cuts_new++;
		}
	}
}

/*
 * crash_suite -- every cut of the traced commit.  exhaustive: every
 * 8-byte boundary of the log and of the apply; otherwise record
 * boundaries, event boundaries and `nrandom` random 8-byte cuts.
 */
static void crash_suite(struct world *w, bool exhaustive, int nrandom,
			int nsubsets)
{
	uint32_t d = first_drain(&w->tr, w->log_off);
	uint64_t total = 0, bounds[4096];
	uint32_t nb;

	/* the log is written before the commit point's drain, in the log */
	for (uint32_t k = 0; k < d; k++) {
		const struct ev *e = &w->tr.v[k];

		if (e->kind != EV_STORE)
			continue;
		CHECK(e->off >= w->log_off &&
		      e->off + e->len <= w->log_off + w->log_len);
		total += e->len;
		ts.log_stores++;
	}
	CHECK(total > sizeof(struct daxfs_jtx));
	c_load_full(w, w->pre);

	/* 1. torn logs: at every record boundary, and every 8 bytes */
	nb = record_bounds(w, bounds, ARRAY_SIZE(bounds));
	for (uint32_t k = 0; k < nb; k++) {
		/* the records are written first, the header last */
		log_cut(w, d, bounds[k], total);
		w->rec_bounds++;
	}
	if (exhaustive) {
		for (uint64_t p = 0; p <= total; p += 8)
			log_cut(w, d, p, total);
	} else {
		log_cut(w, d, 0, total);
		log_cut(w, d, total, total);
		for (int k = 0; k < nrandom; k++)
			log_cut(w, d, ALIGN_DOWN(tl_rand_below(total), 8),
				total);
	}

	/* 2. the apply and the retire: every event and 8 bytes within */
	for (uint32_t k = d; k < w->tr.n; k++) {
		const struct ev *e = &w->tr.v[k];

		if (e->kind != EV_STORE)
			continue;
		ts.apply_stores++;
		for (uint64_t b = 0; b < e->len; b += 8) {
			if (!exhaustive && b && tl_rand_below(8))
				continue;
			apply_cut(w, k, b);
		}
	}
	apply_cut(w, w->tr.n, 0);

	/* 3. reordered write-back: within each epoch between drains, any
	 * subset of the words stored may have reached the media; a drain
	 * completes only when all of them have */
	for (int s = 0; s < nsubsets; s++) {
		uint32_t from = 0;

		for (uint32_t k = 0; k <= w->tr.n; k++) {
			if (k < w->tr.n && w->tr.v[k].kind != EV_DRAIN)
				continue;
			subset_cut(w, from, k, k <= d);
			from = k + 1;
		}
	}

	/* 4. a crash while recovering */
	recovery_crash(w, d);

	/* 5. the whole filesystem, mounted from a few crashed images */
	c_load_full(w, w->pre);
	c_apply(w, &w->tr, 1, 0);		/* the records, no header */
	mount_check(w, w->pre);
	c_load_full(w, w->pre);
	log_cut(w, d, total - 8, total);
	c_load_full(w, w->pre);
	{
		/* all of the log but its last word that changes */
		uint64_t p = ALIGN_DOWN(total - 1, 8), b;
		uint32_t k;

		while (p && !memcmp(w->pre + w->log_off + p,
				    w->post + w->log_off + p,
				    MIN(8, total - p)))
			p -= 8;
		log_pos(w, d, p, &k, &b);
		c_apply(w, &w->tr, k, b);
	}
	mount_check(w, w->pre);
	c_load_full(w, w->pre);
	c_apply(w, &w->tr, d + 1, 0);		/* complete log */
	mount_check(w, w->post);
	c_load_full(w, w->pre);
	c_apply(w, &w->tr, w->tr.n, 0);		/* all of it */
	mount_check(w, w->post);
}

/* world_init -- a mounted filesystem with scratch blocks and inodes */
static void world_init(struct world *w)
{
	struct tx_range got;
	struct tx *tx;

	memset(w, 0, sizeof(*w));
	w->path = tl_region_path("fs");
	w->cpath = tl_region_path("crash");
	tl_mkfs(w->path, RSIZE, 1024);
	CHECK_OK(region_open(w->cpath, REGION_CREATE, RSIZE, &w->c));
	w->fs = tl_mount(w->path);
	w->sb = w->fs->sb;
	w->pre = malloc(RSIZE);
	w->post = malloc(RSIZE);
	w->model = calloc(1, FS_BLOCK_OFF(NSCRATCH));
	w->model_new = calloc(1, FS_BLOCK_OFF(NSCRATCH));
	CHECK(w->pre && w->post && w->model && w->model_new);
	w->log_off = w->fs->log_off;
	w->log_len = w->fs->log_len;
	w->jsb_off = w->fs->jsb_off;
	w->meta_end = FS_BLOCK_OFF(w->fs->data_start);
	CHECK_EQ(w->log_off, FS_BLOCK_OFF(w->sb.journal_start + 1));

	tl_lock(w->fs);
	/* scratch blocks, zeroed, owned */
	CHECK_OK(alloc_reserve(w->fs, 0, NSCRATCH, 0, &got));
	CHECK_EQ(got.len, NSCRATCH);
	w->scratch = got.start;
	CHECK_OK(region_zero(w->fs->r, FS_BLOCK_OFF(got.start),
			     FS_BLOCK_OFF(NSCRATCH)));
	CHECK_OK(region_persist(w->fs->r, FS_BLOCK_OFF(got.start),
				FS_BLOCK_OFF(NSCRATCH)));
	tx = tx_begin(w->fs);
	CHECK_OK(tx_alloc(tx, got.start, got.len));
	for (int k = 0; k < 4; k++)
		new_inode(w, tx);
	CHECK_OK(tx_commit(tx));
	tl_unlock(w->fs);
}

/* world_free -- unmount and release everything */
static void world_free(struct world *w)
{
	CHECK_OK(fs_unmount(w->fs, true));
	region_close(w->c);
	trace_reset(&w->tr);
	trace_reset(&w->rtr);
	free(w->tr.v);
	free(w->rtr.v);
	free(w->pre);
	free(w->post);
	free(w->model);
	free(w->model_new);
}

/* test_cuts -- transactions of three sizes, cut everywhere */
static void test_cuts(struct world *w)
{
	static const struct { int size; bool exhaustive; int nrandom; } t[] = {
		{ 0, true, 0 },
		{ 1, true, 0 },
		{ 1, true, 0 },
		{ 2, false, 300 },
	};

	for (size_t k = 0; k < ARRAY_SIZE(t); k++) {
		struct tx *tx;

		tl_lock(w->fs);
		tx = build_tx(w, t[k].size);
		traced_commit(w, tx);
		tl_unlock(w->fs);
		crash_suite(w, t[k].exhaustive, t[k].nrandom, 100);
	}
	printf("  cuts: %" PRIu64 " torn-log states recovered to the old "
	       "state, %" PRIu64 " later ones to the new (%" PRIu64
	       " record boundaries, %" PRIu64 " reordered write-backs, %"
	       PRIu64 " mounts)\n", w->cuts_old, w->cuts_new, w->rec_bounds,
	       w->subsets, w->mounts);
}

/* ---- hand-built logs ------------------------------------------------- */

struct hrec {
	uint64_t off;
	uint32_t len;
	const void *data;
};

/* craft -- write a sealed transaction into C's log; returns its bytes */
static uint64_t craft(struct world *w, uint64_t seq, const struct hrec *r,
		      int n, int nrec_adjust, bool bad_crc)
{
	static uint8_t buf[64 << 10];
	struct daxfs_jtx h;
	uint64_t p = sizeof(h);
	uint32_t crc;

	for (int k = 0; k < n; k++) {
		struct daxfs_jrec rec = { .off = r[k].off, .len = r[k].len };

		CHECK(p + sizeof(rec) + ALIGN_UP(r[k].len, 8) <= sizeof(buf));
		memcpy(buf + p, &rec, sizeof(rec));
		p += sizeof(rec);
		memset(buf + p, 0, ALIGN_UP(r[k].len, 8));
		memcpy(buf + p, r[k].data, r[k].len);
		p += ALIGN_UP(r[k].len, 8);
	}
	memset(&h, 0, sizeof(h));
	h.magic = DAXFS_TX_MAGIC;
	h.seq = seq;
	h.nrec = (uint32_t)(n + nrec_adjust);
	h.len = (uint32_t)(p - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	crc = crc32c(0, buf, p);
	if (bad_crc)
		crc ^= 0x400;
	h.crc = crc;
	memcpy(buf, &h, sizeof(h));
	CHECK_OK(region_write(w->c, w->log_off, buf, p));
	return p;
}

/* c_jseq -- the sequence number in C's journal superblock */
static uint64_t c_jseq(struct world *w)
{
	struct daxfs_jsb j;

	CHECK_OK(region_read(w->c, w->jsb_off, &j, sizeof(j)));
	return j.seq;
}

/* test_crafted -- what recovery must refuse */
static void test_crafted(struct world *w)
{
	uint8_t pat[512];
	uint64_t sbase = FS_BLOCK_OFF(w->scratch);
	uint64_t seq, size = w->sb.region_size;
	struct hrec good[3];
	int ret;

	image_read(w->fs->r, w->pre);
	c_load_full(w, w->pre);
	seq = c_jseq(w);
	tl_fill_random(pat, sizeof(pat));
	good[0] = (struct hrec){ sbase + 100, 200, pat };
	good[1] = (struct hrec){ sbase + 4096 * 3 + 5, 17, pat + 200 };
	good[2] = (struct hrec){ w->fs->itable_off + 1000 * 256, 256, pat };

	/* a well-formed transaction applies, once */
	craft(w, seq, good, 3, 0, false);
	CHECK_EQ(recover(w), 1);
	CHECK_EQ(c_jseq(w), seq + 1);
	for (int k = 0; k < 3; k++) {
		const uint8_t *p = region_ptr(w->c, good[k].off, good[k].len);

		CHECK_MEM(p, good[k].data, good[k].len);
	}
	CHECK_EQ(recover(w), 0);
	c_load_full(w, w->pre);

	/* not applied: bad CRC, other sequence numbers, no records */
	static const struct { int64_t dseq; bool bad; int adj; } quiet[] = {
		{ 0, true, 0 }, { -1, false, 0 }, { 1, false, 0 },
		{ 1000, false, 0 },
	};
	for (size_t k = 0; k < ARRAY_SIZE(quiet); k++) {
		craft(w, seq + (uint64_t)quiet[k].dseq, good, 3, quiet[k].adj,
		      quiet[k].bad);
		CHECK_EQ(recover(w), 0);
		CHECK_EQ(c_jseq(w), seq);
		expect_old(w, 0, 0);
	}
	craft(w, seq, good, 0, 0, false);		/* nrec 0 */
	CHECK_EQ(recover(w), 0);
	expect_old(w, 0, 0);
	{
		/* a wrong magic */
		struct daxfs_jtx h;

		craft(w, seq, good, 3, 0, false);
		CHECK_OK(region_read(w->c, w->log_off, &h, sizeof(h)));
		h.magic ^= 1;
		CHECK_OK(region_write(w->c, w->log_off, &h, sizeof(h)));
		CHECK_EQ(recover(w), 0);
		expect_old(w, 0, 0);
		/* a length beyond the log */
		h.magic = DAXFS_TX_MAGIC;
		h.len = (uint32_t)w->log_len;
		CHECK_OK(region_write(w->c, w->log_off, &h, sizeof(h)));
		CHECK(recover(w) <= 0);
		expect_old(w, 0, 0);
		h.len = UINT32_MAX;
		CHECK_OK(region_write(w->c, w->log_off, &h, sizeof(h)));
		CHECK(recover(w) <= 0);
		expect_old(w, 0, 0);
	}

	/* malformed but sealed: -EUCLEAN, and not even the good records */
	const struct { uint64_t off; uint32_t len; const char *what; } bad[] = {
		{ 0, 8, "the primary superblock" },
		{ 4000, 200, "across the primary superblock" },
		{ FS_BLOCK_OFF(w->sb.backup_block), 8, "the backup" },
		{ FS_BLOCK_OFF(w->sb.backup_block) - 8, 16,
		  "into the backup" },
		{ w->jsb_off, 64, "the journal superblock" },
		{ w->log_off + 4096, 64, "the log" },
		{ w->jsb_off - 8, 16, "into the journal" },
		{ w->log_off + w->log_len - 8, 16, "out of the journal" },
		{ size, 8, "just past the region" },
		{ size - 4, 8, "across the end" },
		{ UINT64_MAX - 7, 16, "wrapping around" },
		{ sbase, 0, "zero length" },
	};
	for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
		struct hrec r[3] = { good[0], good[1], good[2] };

		r[1] = (struct hrec){ bad[k].off, bad[k].len, pat };
		craft(w, seq, r, 3, 0, false);
		ret = recover(w);
		CHECK_MSG(ret == -EUCLEAN, "record at %s: recover %d",
			  bad[k].what, ret);
		CHECK_EQ(c_jseq(w), seq);
		expect_old(w, 0, 0);
	}
	/* record count disagrees with the bytes */
	craft(w, seq, good, 3, 1, false);
	CHECK_ERR(recover(w), -EUCLEAN);
	expect_old(w, 0, 0);
	craft(w, seq, good, 3, -1, false);
	CHECK_ERR(recover(w), -EUCLEAN);
	expect_old(w, 0, 0);
	{
		/* a record longer than what follows it */
		struct hrec r[1] = { { sbase, 64, pat } };
		uint8_t raw[sizeof(struct daxfs_jtx) + 16 + 64];
		struct daxfs_jtx h;
		struct daxfs_jrec rec;

		craft(w, seq, r, 1, 0, false);
		CHECK_OK(region_read(w->c, w->log_off, raw, sizeof(raw)));
		memcpy(&rec, raw + sizeof(h), sizeof(rec));
		rec.len = 72;
		memcpy(raw + sizeof(h), &rec, sizeof(rec));
		memcpy(&h, raw, sizeof(h));
		h.crc = 0;
		memcpy(raw, &h, sizeof(h));
		h.crc = crc32c(0, raw, sizeof(raw));
		memcpy(raw, &h, sizeof(h));
		CHECK_OK(region_write(w->c, w->log_off, raw, sizeof(raw)));
		CHECK_ERR(recover(w), -EUCLEAN);
		expect_old(w, 0, 0);
	}
	/* and the filesystem refuses to mount over such a journal */
	{
		struct mount_opts o = { .readonly = false };
		struct daxfs *fs = NULL;
		struct hrec r[3] = { good[0], { 0, 8, pat }, good[2] };

		craft(w, seq, r, 3, 0, false);
		CHECK_ERR(fs_mount(w->cpath, &o, &fs), -EUCLEAN);
		expect_old(w, 0, 0);
		/* a damaged journal superblock too */
		c_load_full(w, w->pre);
		CHECK_OK(region_write(w->c, w->jsb_off + 20, "x", 1));
		CHECK_ERR(recover(w), -EUCLEAN);
		CHECK_ERR(fs_mount(w->cpath, &o, &fs), -EUCLEAN);
	}
	c_load_full(w, w->pre);
}

/* test_zero_length -- a zero-length write in a transaction must not
 * make the log unreplayable */
static void test_zero_length(struct world *w)
{
	struct tx *tx;
	struct daxfs_jsb j;
	uint8_t v = 0x5a;

	tl_lock(w->fs);
	tx = tx_begin(w->fs);
	memcpy(w->model_new, w->model, FS_BLOCK_OFF(NSCRATCH));
	CHECK_OK(tx_write(tx, FS_BLOCK_OFF(w->scratch) + 8, &v, 0));
	CHECK_OK(tx_write(tx, FS_BLOCK_OFF(w->scratch) + 16, &v, 1));
	w->model_new[16] = v;
	CHECK_OK(tx_zero(tx, FS_BLOCK_OFF(w->scratch) + 24, 0));
	traced_commit(w, tx);
	tl_unlock(w->fs);
	/* a crash after the apply, before the retire: roll jsb back */
	c_load_full(w, w->post);
	CHECK_OK(region_read(w->c, w->jsb_off, &j, sizeof(j)));
	j.seq--;
	j.crc = crc32c(0, &j, offsetof(struct daxfs_jsb, crc));
	CHECK_OK(region_write(w->c, w->jsb_off, &j, sizeof(j)));
	CHECK_EQ(recover(w), 1);
	expect_new(w, 0, 0);
}

/* ---- fifty transactions, then a cut fifty-first ---------------------- */

static void test_sequence(struct world *w)
{
	uint8_t *s50, *model50;
	uint32_t d;
	uint64_t total = 0, stores = 0;

	for (int n = 0; n < 50; n++) {
		struct tx *tx;

		tl_lock(w->fs);
		tx = build_tx(w, (int)tl_rand_below(3));
		if (n % 10 == 9) {
			traced_commit(w, tx);	/* checks the model */
		} else {
			CHECK_OK(tx_commit(tx));
			memcpy(w->model, w->model_new,
			       FS_BLOCK_OFF(NSCRATCH));
		}
		tl_unlock(w->fs);
	}
	/* the fifty are all in the region, as the model says */
	s50 = malloc(RSIZE);
	model50 = malloc(FS_BLOCK_OFF(NSCRATCH));
	CHECK(s50 && model50);
	image_read(w->fs->r, s50);
	CHECK_MEM(s50 + FS_BLOCK_OFF(w->scratch), w->model,
		  FS_BLOCK_OFF(NSCRATCH));
	memcpy(model50, w->model, FS_BLOCK_OFF(NSCRATCH));

	tl_lock(w->fs);
	traced_commit(w, build_tx(w, 1 + (int)tl_rand_below(2)));
	tl_unlock(w->fs);
	CHECK_MEM(w->pre, s50, RSIZE);
	d = first_drain(&w->tr, w->log_off);
	for (uint32_t k = 0; k < d; k++)
		if (w->tr.v[k].kind == EV_STORE)
			total += w->tr.v[k].len;
	for (uint32_t k = 0; k < w->tr.n; k++)
		stores += w->tr.v[k].kind == EV_STORE;
	c_load_full(w, s50);
	for (int cut = 0; cut < 300; cut++) {
		/* a random event, a random 8-byte point in it */
		uint32_t k = (uint32_t)tl_rand_below(w->tr.n + 1);
		uint64_t b = 0;
		const uint8_t *p;
		int ret;

		if (k < w->tr.n && w->tr.v[k].kind == EV_STORE)
			b = ALIGN_DOWN(tl_rand_below(w->tr.v[k].len + 1), 8);
		c_restore(w, s50);
		c_apply(w, &w->tr, k, b);
		ret = recover(w);
		CHECK(ret == 0 || ret == 1);
		p = region_ptr(w->c, FS_BLOCK_OFF(w->scratch),
			       FS_BLOCK_OFF(NSCRATCH));
		if (!log_complete(&w->tr, d, k, b)) {
			/* the 51st never committed: the first 50 applied */
			expect_old(w, k, b);
			CHECK_MEM(p, model50, FS_BLOCK_OFF(NSCRATCH));
		} else {
			expect_new(w, k, b);
			CHECK_MEM(p, w->model, FS_BLOCK_OFF(NSCRATCH));
		}
		if (cut % 60 == 0) {
			c_restore(w, s50);
			c_apply(w, &w->tr, k, b);
			mount_check(w, log_complete(&w->tr, d, k, b) ?
				    w->post : s50);
		}
	}
	printf("  sequence: 50 transactions, then 300 cuts of the 51st (%"
	       PRIu64 " stores, log %" PRIu64 " bytes)\n", stores, total);
	free(s50);
	free(model50);
}

int main(void)
{
	struct world w;

	tl_init("journal");
	world_init(&w);
	test_crafted(&w);
	test_zero_length(&w);
	test_cuts(&w);
	test_sequence(&w);
	/* the filesystem itself is still sound after all of it */
	w.fs = tl_remount(w.fs, w.path);
	world_free(&w);
	printf("journal: all passed\n");
	return 0;
}
