/*
 * test_alloc.c -- the block allocator and its transactions: a shadow
 * model of every block's state checked over thousands of random reserve,
 * unreserve, tx_alloc, tx_free, commit and abort operations (no block is
 * ever handed out twice, freed blocks come back only after the commit,
 * the counters and the on-region bitmap agree with the model), and the
 * placement rules: big requests take aligned chunks, small ones fill
 * partly used chunks first, goals extend contiguously, ENOSPC leaks
 * nothing, and a remount finds the same free space.
 */
#include "testlib.h"

#define MiB (1ULL << 20)

enum bstate {
	B_META,		/* never allocatable: metadata, backup */
	B_FREE,
	B_RES,		/* reserved, not in a transaction */
	B_TXALLOC,	/* reserved and handed to the open transaction */
	B_OWNED,	/* committed */
	B_TXFREE,	/* committed, freed by the open transaction */
};

struct rlist {
	struct tx_range *v;
	uint32_t n, cap;
};

/* model of the allocator, block by block */
struct model {
	struct daxfs *fs;
	uint8_t *st;
	uint64_t nblocks;
	struct rlist res, txa, own, txf;
	struct tx *tx;			/* open transaction or NULL */
	uint64_t ops, reserves, enospc, commits, aborts;
};

/* rl_add -- append a range */
static void rl_add(struct rlist *l, uint64_t start, uint64_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		CHECK(l->v);
	}
	l->v[l->n++] = (struct tx_range){ start, len };
}

/* rl_take -- remove range k (order not kept) */
static struct tx_range rl_take(struct rlist *l, uint32_t k)
{
	struct tx_range r = l->v[k];

	l->v[k] = l->v[--l->n];
	return r;
}

/* set_state -- move blocks between states, checking where they were */
static void set_state(struct model *m, uint64_t start, uint64_t len,
		      enum bstate from, enum bstate to)
{
	for (uint64_t b = start; b < start + len; b++) {
		CHECK_MSG(m->st[b] == from, "block %" PRIu64 " is in state "
			  "%d, expected %d", b, m->st[b], from);
		m->st[b] = (uint8_t)to;
	}
}

/* model_free -- free blocks in the model */
static uint64_t model_free(const struct model *m)
{
	uint64_t n = 0;

	for (uint64_t b = 0; b < m->nblocks; b++)
		n += m->st[b] == B_FREE;
	return n;
}

/* model_init -- a model of a freshly mounted filesystem */
static void model_init(struct model *m, struct daxfs *fs)
{
	memset(m, 0, sizeof(*m));
	m->fs = fs;
	m->nblocks = fs->nblocks;
	m->st = malloc(fs->nblocks);
	CHECK(m->st);
	for (uint64_t b = 0; b < fs->nblocks; b++) {
		bool meta = b < fs->data_start || b == fs->nblocks - 1;

		CHECK_EQ(bitmap_test(fs->alloc.committed, b), meta);
		m->st[b] = meta ? B_META : B_FREE;
	}
}

/* model_free_mem -- release the model */
static void model_free_mem(struct model *m)
{
	free(m->st);
	free(m->res.v);
	free(m->txa.v);
	free(m->own.v);
	free(m->txf.v);
}

/* check_bitmap_on_region -- the bitmap in the region equals `committed` */
static void check_bitmap_on_region(struct daxfs *fs)
{
	uint64_t words = fs->alloc.nwords;
	uint64_t *map = malloc(words * 8);

	CHECK(map);
	CHECK_OK(region_read(fs->r, fs->bitmap_off, map, words * 8));
	for (uint64_t b = 0; b < fs->nblocks; b++)
		CHECK_MSG(bitmap_test(map, b) ==
			  bitmap_test(fs->alloc.committed, b),
			  "block %" PRIu64 ": region %d, memory %d", b,
			  bitmap_test(map, b),
			  bitmap_test(fs->alloc.committed, b));
	free(map);
}

/* model_check -- every block, counter and chunk summary agrees */
static void model_check(struct model *m)
{
	struct alloc *a = &m->fs->alloc;
	uint64_t nfree = 0;

	for (uint64_t b = 0; b < m->nblocks; b++) {
		enum bstate s = m->st[b];
		bool inuse = s != B_FREE;
		bool comm = s == B_META || s == B_OWNED || s == B_TXFREE;

		CHECK_MSG(bitmap_test(a->inuse, b) == inuse, "block %" PRIu64
			  " state %d: inuse bit %d", b, s,
			  bitmap_test(a->inuse, b));
		CHECK_MSG(bitmap_test(a->committed, b) == comm, "block %"
			  PRIu64 " state %d: committed bit %d", b, s,
			  bitmap_test(a->committed, b));
		nfree += !inuse;
	}
	CHECK_EQ(a->free, nfree);
	for (uint64_t c = 0; c < a->nchunks; c++) {
		uint64_t s = c * a->chunk_blocks, n = 0;
		uint64_t e = MIN(s + a->chunk_blocks, m->nblocks);

		for (uint64_t b = s; b < e; b++)
			n += m->st[b] == B_FREE;
		CHECK_MSG(a->chunk_free[c] == n, "chunk %" PRIu64 ": %u free,"
			  " model %" PRIu64, c, a->chunk_free[c], n);
	}
}

/* model_tx -- the open transaction, opened on first use */
static struct tx *model_tx(struct model *m)
{
	if (!m->tx)
		m->tx = tx_begin(m->fs);
	return m->tx;
}

/* model_commit -- commit the open transaction and follow it in the model */
static void model_commit(struct model *m)
{
	if (!m->tx)
		return;
	CHECK_OK(tx_commit(m->tx));
	m->tx = NULL;
	m->commits++;
	while (m->txa.n) {
		struct tx_range r = rl_take(&m->txa, 0);

		set_state(m, r.start, r.len, B_TXALLOC, B_OWNED);
		rl_add(&m->own, r.start, r.len);
	}
	while (m->txf.n) {
		struct tx_range r = rl_take(&m->txf, 0);

		set_state(m, r.start, r.len, B_TXFREE, B_FREE);
	}
	check_bitmap_on_region(m->fs);
}

/* model_abort -- abort: allocations go back, frees are forgotten */
static void model_abort(struct model *m)
{
	if (!m->tx)
		return;
	tx_abort(m->tx);
	m->tx = NULL;
	m->aborts++;
	while (m->txa.n) {
		struct tx_range r = rl_take(&m->txa, 0);

		set_state(m, r.start, r.len, B_TXALLOC, B_FREE);
	}
	while (m->txf.n) {
		struct tx_range r = rl_take(&m->txf, 0);

		set_state(m, r.start, r.len, B_TXFREE, B_OWNED);
		rl_add(&m->own, r.start, r.len);
	}
}

/* op_reserve -- one reservation, checked against the model */
static void op_reserve(struct model *m)
{
	struct daxfs *fs = m->fs;
	uint64_t goal = 0, want;
	unsigned flags = tl_rand_below(3) == 0 ? ALLOC_BIG : 0;
	struct tx_range got = { 0, 0 };
	uint64_t before = model_free(m);
	int ret;

	switch (tl_rand_below(4)) {
	case 0:
		goal = 0;
		break;
	case 1:
		goal = tl_rand_below(m->nblocks + 10);
		break;
	default:
		if (m->own.n) {
			struct tx_range *r =
				&m->own.v[tl_rand_below(m->own.n)];
			goal = r->start + r->len;
		}
		break;
	}
	want = tl_rand_below(8) ? tl_rand_range(1, 16) :
				  tl_rand_range(1, 2000);
	/* the free run at the goal, in the model */
	uint64_t goal_run = 0;

	if (goal >= fs->data_start && goal < m->nblocks)
		while (goal + goal_run < m->nblocks &&
		       m->st[goal + goal_run] == B_FREE && goal_run < want)
			goal_run++;
	ret = alloc_reserve(fs, goal, want, flags, &got);
	m->reserves++;
	if (ret == -ENOSPC) {
		CHECK_EQ(before, 0);
		m->enospc++;
		return;
	}
	CHECK_OK(ret);
	CHECK(got.len >= 1 && got.len <= want);
	CHECK(got.start >= fs->data_start);
	CHECK(got.start + got.len <= fs->nblocks - 1);
	/* never twice: every block was free in the model */
	set_state(m, got.start, got.len, B_FREE, B_RES);
	/* a small request with a free goal gets the run at the goal */
	if (!(flags & ALLOC_BIG) && goal_run) {
		CHECK_EQ(got.start, goal);
		CHECK_EQ(got.len, goal_run);
	}
	rl_add(&m->res, got.start, got.len);
}

/* op_free -- tx_free a piece of an owned range */
static void op_free(struct model *m)
{
	struct tx_range r;
	uint64_t s, l;
	uint32_t k;

	if (!m->own.n)
		return;
	k = (uint32_t)tl_rand_below(m->own.n);
	r = rl_take(&m->own, k);
	s = r.start + tl_rand_below(r.len);
	l = tl_rand_range(1, r.start + r.len - s);
	CHECK_OK(tx_free(model_tx(m), s, l));
	set_state(m, s, l, B_OWNED, B_TXFREE);
	rl_add(&m->txf, s, l);
	if (s > r.start)
		rl_add(&m->own, r.start, s - r.start);
	if (s + l < r.start + r.len)
		rl_add(&m->own, s + l, r.start + r.len - (s + l));
}

/* test_random -- thousands of random operations against the model */
static void test_random(const char *path)
{
	struct daxfs *fs;
	struct model m;
	uint64_t free0;

	tl_mkfs(path, 64 * MiB, 1024);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	tl_lock(fs);
	model_init(&m, fs);
	model_check(&m);
	for (int op = 0; op < 30000; op++) {
		uint64_t dice = tl_rand_below(100);

		m.ops++;
		if (dice < 35) {
			op_reserve(&m);
		} else if (dice < 55) {
			if (m.res.n) {
				struct tx_range r = rl_take(&m.res,
					(uint32_t)tl_rand_below(m.res.n));

				CHECK_OK(tx_alloc(model_tx(&m), r.start,
						  r.len));
				set_state(&m, r.start, r.len, B_RES,
					  B_TXALLOC);
				rl_add(&m.txa, r.start, r.len);
			}
		} else if (dice < 63) {
			if (m.res.n) {
				struct tx_range r = rl_take(&m.res,
					(uint32_t)tl_rand_below(m.res.n));

				alloc_unreserve(fs, r.start, r.len);
				set_state(&m, r.start, r.len, B_RES, B_FREE);
			}
		} else if (dice < 85) {
			op_free(&m);
		} else if (dice < 96) {
			model_commit(&m);
		} else {
			model_abort(&m);
		}
		/* keep transactions well inside the log */
		if (m.tx && tx_room(m.tx) < (64 << 10))
			model_commit(&m);
		if (op % 64 == 0)
			model_check(&m);
	}
	model_commit(&m);
	model_check(&m);
	printf("  random: %" PRIu64 " ops, %" PRIu64 " reserves (%" PRIu64
	       " ENOSPC), %" PRIu64 " commits, %" PRIu64 " aborts\n", m.ops,
	       m.reserves, m.enospc, m.commits, m.aborts);

	/* what is still reserved goes back; a remount sees the same */
	while (m.res.n) {
		struct tx_range r = rl_take(&m.res, 0);

		alloc_unreserve(fs, r.start, r.len);
		set_state(&m, r.start, r.len, B_RES, B_FREE);
	}
	model_check(&m);
	uint64_t free1 = fs->alloc.free;

	tl_unlock(fs);
	fs = tl_remount(fs, path);
	CHECK_EQ(fs->alloc.free, free1);
	CHECK_EQ(fs->sb.free_blocks, free1);
	tl_lock(fs);
	m.fs = fs;
	model_check(&m);

	/* free everything: back to where we started, nothing leaked */
	while (m.own.n) {
		struct tx_range r = rl_take(&m.own, 0);

		CHECK_OK(tx_free(model_tx(&m), r.start, r.len));
		set_state(&m, r.start, r.len, B_OWNED, B_TXFREE);
		rl_add(&m.txf, r.start, r.len);
		if (tx_room(m.tx) < (64 << 10))
			model_commit(&m);
	}
	model_commit(&m);
	model_check(&m);
	CHECK_EQ(fs->alloc.free, free0);
	tl_unlock(fs);
	fs = tl_remount(fs, path);
	CHECK_EQ(fs->alloc.free, free0);
	CHECK_OK(fs_unmount(fs, true));
	model_free_mem(&m);
}

/* chunk_state -- 0 full, 1 partly used, 2 wholly free */
static int chunk_state(struct daxfs *fs, uint64_t c)
{
	struct alloc *a = &fs->alloc;
	uint64_t size = MIN(a->chunk_blocks,
			    fs->nblocks - c * a->chunk_blocks);

	if (!a->chunk_free[c])
		return 0;
	return a->chunk_free[c] == size ? 2 : 1;
}

/* test_placement -- big requests take aligned chunks, small ones fill
 * partly used chunks before opening new ones, goals extend */
static void test_placement(const char *path)
{
	struct daxfs *fs;
	struct alloc *a;
	struct tx_range got, big, prev;
	uint64_t cb;
	int *before;

	tl_mkfs(path, 64 * MiB, 1024);
	fs = tl_mount(path);
	a = &fs->alloc;
	cb = a->chunk_blocks;
	CHECK_EQ(cb, fs->sb.data_align / DAXFS_BLOCK_SIZE);
	CHECK(a->nchunks >= 8);
	before = calloc(a->nchunks, sizeof(*before));
	CHECK(before);
	tl_lock(fs);

	/* big: whole chunks, aligned, as long as asked */
	CHECK_OK(alloc_reserve(fs, 0, 2 * cb, ALLOC_BIG, &big));
	CHECK_EQ(big.start % cb, 0);
	CHECK_EQ(big.len, 2 * cb);
	CHECK(big.start >= fs->data_start);
	CHECK_OK(alloc_reserve(fs, 0, cb + 7, ALLOC_BIG, &got));
	CHECK_EQ(got.start % cb, 0);
	CHECK_EQ(got.len, cb + 7);
	CHECK(got.start >= big.start + big.len || got.start + got.len <=
	      big.start);

	/* small: never open a fresh chunk while a partly used one has room
	 * (a run that starts in a partly used chunk may go on into the next
	 * one: that keeps the extent in one piece and wastes nothing) */
	uint64_t checked = 0;

	for (int k = 0; k < 2500; k++) {
		uint64_t want = tl_rand_range(1, 9);
		bool partial = false;
		uint64_t c;

		for (c = 0; c < a->nchunks; c++) {
			before[c] = chunk_state(fs, c);
			partial |= before[c] == 1;
		}
		CHECK(a->free > 0);
		CHECK_OK(alloc_reserve(fs, 0, want, 0, &got));
		c = got.start / cb;
		if (partial) {
			CHECK_MSG(before[c] == 1, "small request of %" PRIu64
				  " opened chunk %" PRIu64 " while a partly "
				  "used chunk had room", want, c);
			checked++;
		}
		/* free a few now and then to make holes */
		if (tl_rand_below(4) == 0)
			alloc_unreserve(fs, got.start, 1);
	}
	CHECK(checked > 0);

	/* fill the partly used chunks one block at a time (a single block
	 * cannot run on into the next chunk); then a small request has to
	 * open a wholly free chunk, and takes it from its first block */
	uint64_t whole = 0, c;

	for (;;) {
		for (c = 0; c < a->nchunks && chunk_state(fs, c) != 1; c++)
			;
		if (c == a->nchunks)
			break;
		CHECK_OK(alloc_reserve(fs, 0, 1, 0, &got));
		CHECK_EQ(got.start / cb, c);
	}
	for (c = 0; c < a->nchunks; c++)
		whole += chunk_state(fs, c) == 2;
	/* 2500 requests of 1 to 9 blocks leave some chunks wholly free */
	CHECK(whole >= 2);
	CHECK_OK(alloc_reserve(fs, 0, 3, 0, &got));
	CHECK_EQ(got.start % cb, 0);
	CHECK_EQ(got.len, 3);

	/* a big request now: still whole free chunks */
	CHECK_OK(alloc_reserve(fs, 0, cb, ALLOC_BIG, &got));
	CHECK_EQ(got.start % cb, 0);
	CHECK_EQ(got.len, cb);
	tl_unlock(fs);
	CHECK_OK(fs_unmount(fs, true));

	/* goals: a free goal is taken and runs on contiguously */
	tl_mkfs(path, 64 * MiB, 1024);
	fs = tl_mount(path);
	a = &fs->alloc;
	tl_lock(fs);
	CHECK_OK(alloc_reserve(fs, 0, 10, 0, &prev));
	CHECK_EQ(prev.len, 10);
	for (int k = 0; k < 20; k++) {
		uint64_t want = tl_rand_range(1, 20);

		CHECK_OK(alloc_reserve(fs, prev.start + prev.len, want, 0,
				       &got));
		CHECK_EQ(got.start, prev.start + prev.len);
		CHECK_EQ(got.len, want);
		prev = got;
	}
	/* a big request with a free goal extends too */
	CHECK_OK(alloc_reserve(fs, prev.start + prev.len, 5, ALLOC_BIG,
			       &got));
	CHECK_EQ(got.start, prev.start + prev.len);
	CHECK_EQ(got.len, 5);
	/* an occupied goal falls back to somewhere free */
	CHECK_OK(alloc_reserve(fs, got.start, 3, 0, &prev));
	CHECK(prev.start != got.start);
	CHECK(prev.start >= got.start + got.len ||
	      prev.start + prev.len <= got.start);
	/* goals outside the data area are ignored, not obeyed */
	CHECK_OK(alloc_reserve(fs, 1, 1, 0, &got));
	CHECK(got.start >= fs->data_start);
	CHECK_OK(alloc_reserve(fs, fs->nblocks - 1, 1, 0, &got));
	CHECK(got.start < fs->nblocks - 1);
	CHECK_OK(alloc_reserve(fs, fs->nblocks + 100, 1, 0, &got));
	CHECK(got.start < fs->nblocks - 1);
	CHECK_ERR(alloc_reserve(fs, 0, 0, 0, &got), -EINVAL);
	tl_unlock(fs);
	CHECK_OK(fs_unmount(fs, true));
	free(before);
}

/* test_enospc -- fill the region, then give it all back */
static void test_enospc(const char *path)
{
	struct daxfs *fs;
	struct rlist all = { 0 };
	struct tx_range got;
	uint64_t free0, total = 0;
	uint64_t *bitmap0;
	struct tx *tx;
	int ret;

	tl_mkfs(path, 32 * MiB, 1024);
	fs = tl_mount(path);
	free0 = fs->alloc.free;
	bitmap0 = malloc(fs->alloc.nwords * 8);
	CHECK(bitmap0);
	CHECK_OK(region_read(fs->r, fs->bitmap_off, bitmap0,
			     fs->alloc.nwords * 8));
	tl_lock(fs);
	for (;;) {
		unsigned flags = tl_rand_below(2) ? ALLOC_BIG : 0;

		ret = alloc_reserve(fs, tl_rand_below(fs->nblocks),
				    tl_rand_range(1, 700), flags, &got);
		if (ret)
			break;
		rl_add(&all, got.start, got.len);
		total += got.len;
	}
	CHECK_ERR(ret, -ENOSPC);
	CHECK_EQ(total, free0);
	CHECK_EQ(fs->alloc.free, 0);
	CHECK_ERR(alloc_reserve(fs, 0, 1, 0, &got), -ENOSPC);
	CHECK_ERR(alloc_reserve(fs, 0, 1000, ALLOC_BIG, &got), -ENOSPC);

	/* make them all durable, over as many transactions as it takes */
	tx = tx_begin(fs);
	for (uint32_t k = 0; k < all.n; k++) {
		CHECK_OK(tx_alloc(tx, all.v[k].start, all.v[k].len));
		if (tx_room(tx) < (64 << 10)) {
			CHECK_OK(tx_commit(tx));
			tx = tx_begin(fs);
		}
	}
	CHECK_OK(tx_commit(tx));
	check_bitmap_on_region(fs);
	CHECK_EQ(tl_count_free(fs->alloc.committed, fs->nblocks), 0);
	tl_unlock(fs);
	fs = tl_remount(fs, path);
	CHECK_EQ(fs->alloc.free, 0);
	tl_lock(fs);
	CHECK_ERR(alloc_reserve(fs, 0, 1, 0, &got), -ENOSPC);

	/* free everything */
	tx = tx_begin(fs);
	for (uint32_t k = 0; k < all.n; k++) {
		CHECK_OK(tx_free(tx, all.v[k].start, all.v[k].len));
		if (tx_room(tx) < (64 << 10)) {
			CHECK_OK(tx_commit(tx));
			tx = tx_begin(fs);
		}
	}
	CHECK_OK(tx_commit(tx));
	CHECK_EQ(fs->alloc.free, free0);
	check_bitmap_on_region(fs);
	{
		uint64_t *now = malloc(fs->alloc.nwords * 8);

		CHECK(now);
		CHECK_OK(region_read(fs->r, fs->bitmap_off, now,
				     fs->alloc.nwords * 8));
		CHECK_MEM(now, bitmap0, fs->alloc.nwords * 8);
		free(now);
	}
	tl_unlock(fs);
	fs = tl_remount(fs, path);
	CHECK_EQ(fs->alloc.free, free0);
	CHECK_OK(fs_unmount(fs, true));
	free(all.v);
	free(bitmap0);
}

/* test_free_rules -- frees wait for the commit; bad frees are refused */
static void test_free_rules(const char *path)
{
	struct daxfs *fs;
	struct tx_range a, b, got;
	struct tx *tx;
	uint64_t free0;

	tl_mkfs(path, 16 * MiB, 1024);
	fs = tl_mount(path);
	tl_lock(fs);
	free0 = fs->alloc.free;

	/* own 8 blocks */
	CHECK_OK(alloc_reserve(fs, 0, 8, 0, &a));
	CHECK_EQ(a.len, 8);
	tx = tx_begin(fs);
	CHECK_OK(tx_alloc(tx, a.start, a.len));
	CHECK_OK(tx_commit(tx));
	CHECK_EQ(fs->alloc.free, free0 - 8);

	/* freed in an open transaction: not reusable yet */
	tx = tx_begin(fs);
	CHECK_OK(tx_free(tx, a.start, a.len));
	CHECK_EQ(fs->alloc.free, free0 - 8);
	CHECK_OK(alloc_reserve(fs, a.start, 1, 0, &got));
	CHECK(got.start < a.start || got.start >= a.start + a.len);
	alloc_unreserve(fs, got.start, got.len);
	/* the region stays full of other reservations: still never ours */
	{
		struct rlist held = { 0 };

		while (alloc_reserve(fs, a.start, 64, 0, &got) == 0) {
			CHECK(got.start + got.len <= a.start ||
			      got.start >= a.start + a.len);
			rl_add(&held, got.start, got.len);
		}
		CHECK_EQ(fs->alloc.free, 0);
		for (uint32_t k = 0; k < held.n; k++)
			alloc_unreserve(fs, held.v[k].start, held.v[k].len);
		free(held.v);
	}
	CHECK_OK(tx_commit(tx));
	/* after the commit they are free again */
	CHECK_EQ(fs->alloc.free, free0);
	CHECK_OK(alloc_reserve(fs, a.start, 8, 0, &got));
	CHECK_EQ(got.start, a.start);
	CHECK_EQ(got.len, 8);
	alloc_unreserve(fs, got.start, got.len);

	/* an aborted free changes nothing */
	CHECK_OK(alloc_reserve(fs, 0, 4, 0, &b));
	tx = tx_begin(fs);
	CHECK_OK(tx_alloc(tx, b.start, b.len));
	CHECK_OK(tx_commit(tx));
	tx = tx_begin(fs);
	CHECK_OK(tx_free(tx, b.start, b.len));
	tx_abort(tx);
	CHECK(bitmap_test(fs->alloc.committed, b.start));
	CHECK(bitmap_test(fs->alloc.inuse, b.start));
	CHECK_EQ(fs->alloc.free, free0 - 4);
	/* an aborted allocation goes back to the pool */
	CHECK_OK(alloc_reserve(fs, 0, 3, 0, &got));
	tx = tx_begin(fs);
	CHECK_OK(tx_alloc(tx, got.start, got.len));
	tx_abort(tx);
	CHECK_EQ(fs->alloc.free, free0 - 4);
	CHECK(!bitmap_test(fs->alloc.committed, got.start));

	/* a double free is corruption: refused, and the tx with it */
	CHECK_OK(alloc_reserve(fs, 0, 2, 0, &got));
	tx = tx_begin(fs);
	CHECK_OK(tx_alloc(tx, got.start, got.len));
	{
		uint64_t fb = fs->data_start;

		while (bitmap_test(fs->alloc.inuse, fb))
			fb++;
		CHECK_ERR(tx_free(tx, fb, 1), -EUCLEAN);
	}
	CHECK_ERR(tx_commit(tx), -EUCLEAN);
	/* a transaction that cannot commit stops all changes */
	CHECK(atomic_load(&fs->error));
	atomic_store(&fs->error, false);
	CHECK_EQ(fs->alloc.free, free0 - 4);	/* got went back */
	CHECK(!bitmap_test(fs->alloc.committed, got.start));
	/* frees outside the data area, or of nothing */
	const struct tx_range bad[] = {
		{ fs->data_start - 1, 1 },	/* the inode table */
		{ 0, 1 },			/* the superblock */
		{ 1, 1 },			/* the bitmap */
		{ fs->nblocks - 1, 1 },		/* the backup */
		{ fs->nblocks - 3, 5 },		/* past the end */
		{ fs->nblocks + 10, 1 },
		{ b.start, 0 },
		{ b.start, UINT64_MAX },
	};
	for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
		tx = tx_begin(fs);
		CHECK_MSG(tx_free(tx, bad[k].start, bad[k].len) == -EUCLEAN,
			  "free %" PRIu64 "+%" PRIu64, bad[k].start,
			  bad[k].len);
		CHECK_ERR(tx_commit(tx), -EUCLEAN);
		CHECK(atomic_load(&fs->error));
		atomic_store(&fs->error, false);
	}
	CHECK_EQ(fs->alloc.free, free0 - 4);

	/* freeing the same blocks twice in one transaction is a double
	 * free too; the commit must not count them free twice */
	tx = tx_begin(fs);
	CHECK_OK(tx_free(tx, b.start, b.len));
	{
		int r1 = tx_free(tx, b.start + 1, 1);
		int r2 = r1 ? r1 : tx_commit(tx);

		CHECK_MSG(r1 == -EUCLEAN || r2 == -EUCLEAN,
			  "double free in one tx: tx_free %d, commit %d", r1,
			  r2);
		if (r1)
			CHECK_ERR(tx_commit(tx), -EUCLEAN);
		/* a transaction that cannot commit stops all changes */
		CHECK(atomic_load(&fs->error));
		atomic_store(&fs->error, false);
	}
	CHECK_EQ(fs->alloc.free, free0 - 4);
	CHECK(bitmap_test(fs->alloc.committed, b.start));

	/* blocks allocated and freed in the same transaction were never
	 * durable: they are simply free after it */
	CHECK_OK(alloc_reserve(fs, 0, 6, 0, &got));
	CHECK_EQ(got.len, 6);
	tx = tx_begin(fs);
	CHECK_OK(tx_alloc(tx, got.start, got.len));
	CHECK_OK(tx_free(tx, got.start + 2, 2));	/* the middle */
	CHECK_OK(tx_commit(tx));
	CHECK(bitmap_test(fs->alloc.committed, got.start));
	CHECK(bitmap_test(fs->alloc.committed, got.start + 1));
	CHECK(!bitmap_test(fs->alloc.committed, got.start + 2));
	CHECK(!bitmap_test(fs->alloc.committed, got.start + 3));
	CHECK(bitmap_test(fs->alloc.committed, got.start + 4));
	CHECK(!bitmap_test(fs->alloc.inuse, got.start + 2));
	CHECK_EQ(fs->alloc.free, free0 - 4 - 4);
	check_bitmap_on_region(fs);
	tx = tx_begin(fs);
	CHECK_OK(tx_free(tx, got.start, 2));
	CHECK_OK(tx_free(tx, got.start + 4, 2));
	CHECK_OK(tx_free(tx, b.start, b.len));
	CHECK_OK(tx_commit(tx));
	CHECK_EQ(fs->alloc.free, free0);
	check_bitmap_on_region(fs);
	tl_unlock(fs);
	CHECK_OK(fs_unmount(fs, true));
}

/* test_bad_bitmap -- a bitmap that frees metadata refuses the mount */
static void test_bad_bitmap(const char *path)
{
	struct mount_opts o = { .readonly = false };
	struct daxfs *fs = NULL;
	struct region *r;
	struct daxfs_dsb sb;
	bool used;
	uint64_t w;

	for (int which = 0; which < 2; which++) {
		tl_mkfs(path, 16 * MiB, 1024);
		CHECK_OK(region_open(path, 0, 0, &r));
		CHECK_OK(super_read(r, &sb, &used));
		uint64_t b = which ? sb.nblocks - 1 : sb.data_start - 1;
		uint64_t off = FS_BLOCK_OFF(sb.bitmap_start) + b / 64 * 8;

		CHECK_OK(region_read(r, off, &w, 8));
		w &= ~(1ULL << (b % 64));
		CHECK_OK(region_write(r, off, &w, 8));
		region_close(r);
		CHECK_ERR(fs_mount(path, &o, &fs), -EUCLEAN);
	}
}

int main(void)
{
	const char *path;

	tl_init("alloc");
	path = tl_region_path("r");
	test_placement(path);
	test_free_rules(path);
	test_enospc(path);
	test_random(path);
	test_bad_bitmap(path);
	printf("alloc: all passed\n");
	return 0;
}
