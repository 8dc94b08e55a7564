/*
 * trace.c -- what the filesystem did to its region, and what a crash can
 * leave of it.
 *
 * Recording: a region tracer copies every store (offset and bytes) and
 * notes every flush and drain, in order, into a trace that the driver
 * replays after each operation.  With --break the recording leaves out
 * events the filesystem really made, to prove the checker notices.
 *
 * The persistence model: the durable image, and for every 8-byte word
 * stored since it was last durable, the values it took (its history).
 * A store becomes durable when a flush covering it is followed by a
 * drain; a non-temporal store at the next drain.  A crash leaves every
 * pending word at one point of its history; each variant below is one
 * rule for choosing those points.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashsim.h"

/* ---- helpers ------------------------------------------------------------ */

uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t rng_next(struct rng *g)
{
	g->s += 0x9e3779b97f4a7c15ULL;
	return mix64(g->s);
}

uint64_t rng_below(struct rng *g, uint64_t n)
{
	return rng_next(g) % n;
}

/* hash_bytes -- a 64-bit hash, 8 bytes a step; not cryptographic */
uint64_t hash_bytes(const void *p, size_t len, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = mix64(seed ^ len);

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, b, 8);
		h = mix64(h ^ v) + 0x9e3779b97f4a7c15ULL;
		b += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = 0;

		memcpy(&v, b, len);
		h = mix64(h ^ v ^ ((uint64_t)len << 56));
	}
	return h;
}

static void oom(void)
{
	fputs("daxfs_crashsim: out of memory\n", stderr);
	exit(2);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		oom();
	return d;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- recording ---------------------------------------------------------- */

static struct ev *push(struct trace *t, int kind)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 4096;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	t->v[t->n].kind = (uint8_t)kind;
	return &t->v[t->n++];
}

static bool overlaps(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off < hi && off + len > lo;
}

static void tr_store(void *arg, uint64_t off, const void *src, uint64_t len,
		     bool nt)
{
	struct trace *t = arg;
	struct ev *e;

	if (t->paused) {
		t->stray++;
		return;
	}
	if (t->alen + len > t->acap) {
		t->acap = MAX(t->acap * 2, t->alen + len + (1u << 20));
		t->arena = xrealloc(t->arena, t->acap);
	}
	e = push(t, EV_STORE);
	e->off = off;
	e->len = len;
	e->nt = nt;
	e->data = t->alen;
	memcpy(t->arena + t->alen, src, len);
	t->alen += len;
}

static void tr_flush(void *arg, uint64_t off, uint64_t len)
{
	struct trace *t = arg;
	struct ev *e;

	if (t->paused) {
		t->stray++;
		return;
	}
	if (t->brk == BRK_INODE_FLUSH &&
	    overlaps(off, len, t->it_lo, t->it_hi)) {
		t->dropped++;
		return;
	}
	t->after_log_flush = overlaps(off, len, t->log_lo, t->log_hi);
	e = push(t, EV_FLUSH);
	e->off = off;
	e->len = len;
}

static void tr_drain(void *arg)
{
	struct trace *t = arg;

	if (t->paused) {
		t->stray++;
		return;
	}
	if (t->brk == BRK_COMMIT_FENCE && t->after_log_flush) {
		t->after_log_flush = false;
		t->dropped++;
		return;
	}
	t->after_log_flush = false;
	push(t, EV_DRAIN);
}

/* trace_attach -- start recording everything r is asked to do */
void trace_attach(struct trace *t, struct region *r,
		  struct region_tracer *rt)
{
	rt->store = tr_store;
	rt->flush = tr_flush;
	rt->drain = tr_drain;
	rt->arg = t;
	r->tracer = rt;
}

/* trace_reset -- forget the events, keep the memory */
void trace_reset(struct trace *t)
{
	t->n = 0;
	t->alen = 0;
}

void trace_free(struct trace *t)
{
	free(t->v);
	free(t->arena);
	t->v = NULL;
	t->arena = NULL;
	t->n = t->cap = t->alen = t->acap = 0;
}

/* ---- the persistence model ---------------------------------------------- */

const char *const vkind_name[V_NKINDS] = {
	"durable", "all", "prefix", "lines", "words", "drop-one",
};

struct hent {
	uint64_t seq;			/* global order of word stores */
	uint64_t val;
	uint64_t store;			/* which store wrote it */
};

struct pword {
	uint64_t w;			/* word index */
	uint64_t dseq;			/* durable at the next drain up to */
	uint32_t n, cap;
	struct hent *h;
};

struct pmodel {
	uint64_t size, nwords;
	uint64_t *durable;		/* the image, as words */
	uint8_t *pchanged;		/* per 4 KiB page: durable changed */
	uint64_t dhash;			/* hash of the durable image */
	struct pword *pw;		/* pending words */
	size_t npw, capw;
	uint32_t *tab;			/* open addressing: pw index + 1 */
	size_t tabsize;
	uint64_t seq, nstores;
};

static uint64_t whash(uint64_t w, uint64_t v)
{
	return mix64(w * 0x9e3779b97f4a7c15ULL ^ mix64(v));
}

static void tab_rebuild(struct pmodel *pm)
{
	size_t want = 1024;

	while (want < pm->npw * 2 + 16)
		want *= 2;
	if (want != pm->tabsize) {
		free(pm->tab);
		pm->tab = xcalloc(want, sizeof(*pm->tab));
		pm->tabsize = want;
	} else {
		memset(pm->tab, 0, want * sizeof(*pm->tab));
	}
	for (size_t k = 0; k < pm->npw; k++) {
		size_t s = mix64(pm->pw[k].w) & (pm->tabsize - 1);

		while (pm->tab[s])
			s = (s + 1) & (pm->tabsize - 1);
		pm->tab[s] = (uint32_t)(k + 1);
	}
}

static struct pword *find(struct pmodel *pm, uint64_t w, bool create)
{
	size_t s = mix64(w) & (pm->tabsize - 1);

	while (pm->tab[s]) {
		struct pword *p = &pm->pw[pm->tab[s] - 1];

		if (p->w == w)
			return p;
		s = (s + 1) & (pm->tabsize - 1);
	}
	if (!create)
		return NULL;
	if (pm->npw == pm->capw) {
		pm->capw = pm->capw ? pm->capw * 2 : 4096;
		pm->pw = xrealloc(pm->pw, pm->capw * sizeof(*pm->pw));
	}
	memset(&pm->pw[pm->npw], 0, sizeof(pm->pw[0]));
	pm->pw[pm->npw].w = w;
	pm->tab[s] = (uint32_t)(++pm->npw);
	if (pm->npw * 2 > pm->tabsize)
		tab_rebuild(pm);
	return &pm->pw[pm->npw - 1];
}

struct pmodel *pm_new(const uint8_t *image, uint64_t size)
{
	struct pmodel *pm = xcalloc(1, sizeof(*pm));

	pm->size = size;
	pm->nwords = size / 8;
	pm->durable = xmalloc(size);
	memcpy(pm->durable, image, size);
	pm->pchanged = xcalloc(size / 4096 + 1, 1);
	for (uint64_t w = 0; w < pm->nwords; w++)
		pm->dhash ^= whash(w, pm->durable[w]);
	tab_rebuild(pm);
	return pm;
}

void pm_free(struct pmodel *pm)
{
	if (!pm)
		return;
	for (size_t k = 0; k < pm->npw; k++)
		free(pm->pw[k].h);
	free(pm->pw);
	free(pm->tab);
	free(pm->durable);
	free(pm->pchanged);
	free(pm);
}

static void set_durable(struct pmodel *pm, uint64_t w, uint64_t v)
{
	pm->dhash ^= whash(w, pm->durable[w]) ^ whash(w, v);
	pm->durable[w] = v;
	pm->pchanged[w / 512] = 1;
}

static uint64_t latest(const struct pmodel *pm, const struct pword *p)
{
	return p->n ? p->h[p->n - 1].val : pm->durable[p->w];
}

/* pm_store -- the CPU stored len bytes at off */
void pm_store(struct pmodel *pm, uint64_t off, const void *src,
	      uint64_t len, bool nt)
{
	const uint8_t *s = src;
	uint64_t id = ++pm->nstores;

	if (!len)
		return;
	for (uint64_t w = off / 8; w <= (off + len - 1) / 8; w++) {
		struct pword *p = find(pm, w, true);
		uint64_t lo = MAX(off, w * 8), hi = MIN(off + len, w * 8 + 8);
		uint64_t v = latest(pm, p);

		memcpy((uint8_t *)&v + (lo - w * 8), s + (lo - off), hi - lo);
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 2;
			p->h = xrealloc(p->h, p->cap * sizeof(*p->h));
		}
		p->h[p->n++] = (struct hent){ ++pm->seq, v, id };
		if (nt)
			p->dseq = pm->seq;
	}
}

/* pm_flush -- write back the cache lines of a range (durable at drain) */
void pm_flush(struct pmodel *pm, uint64_t off, uint64_t len)
{
	uint64_t lo, hi;

	if (!len)
		return;
	/* the words the range touches: a store is durable once a flush
	 * covering it was drained; neighbours the hardware would write back
	 * with the same cache line or page are not counted on */
	lo = off / 8;
	hi = (off + len + 7) / 8;
	if (hi - lo > pm->npw) {
		for (size_t k = 0; k < pm->npw; k++) {
			struct pword *p = &pm->pw[k];

			if (p->w >= lo && p->w < hi && p->n)
				p->dseq = p->h[p->n - 1].seq;
		}
		return;
	}
	for (uint64_t w = lo; w < hi; w++) {
		struct pword *p = find(pm, w, false);

		if (p && p->n)
			p->dseq = p->h[p->n - 1].seq;
	}
}

/* pm_drain -- every word whose flush (or nt store) came before is durable */
void pm_drain(struct pmodel *pm)
{
	size_t out = 0;

	for (size_t k = 0; k < pm->npw; k++) {
		struct pword *p = &pm->pw[k];

		if (p->dseq) {
			uint32_t j = 0, keep;

			while (j < p->n && p->h[j].seq <= p->dseq)
				j++;
			if (j)
				set_durable(pm, p->w, p->h[j - 1].val);
			keep = p->n - j;
			memmove(p->h, p->h + j, keep * sizeof(*p->h));
			p->n = keep;
			p->dseq = 0;
		}
		if (p->n) {
			pm->pw[out++] = *p;
		} else {
			free(p->h);
		}
	}
	pm->npw = out;
	tab_rebuild(pm);
}

uint64_t pm_pending(const struct pmodel *pm)
{
	return pm->npw;
}

static void ov_add(struct overlay *o, uint64_t w, uint64_t v)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 1024;
		o->w = xrealloc(o->w, o->cap * sizeof(*o->w));
		o->val = xrealloc(o->val, o->cap * sizeof(*o->val));
	}
	o->w[o->n] = w;
	o->val[o->n++] = v;
}

/* upto -- the history index in effect at time t; -1 for the durable one */
static int64_t upto(const struct pword *p, uint64_t t)
{
	int64_t j = (int64_t)p->n - 1;

	while (j >= 0 && p->h[j].seq > t)
		j--;
	return j;
}

/* pick_time -- a random moment among [lo, hi], or none or all of it */
static uint64_t pick_time(uint64_t r, uint64_t lo, uint64_t hi)
{
	switch (r % 4) {
	case 0:
		return 0;		/* nothing of this written back */
	case 1:
		return UINT64_MAX;	/* all of it */
	default:
		return lo + (r >> 8) % (hi - lo + 1);
	}
}

/*
 * pm_variant -- choose, for every pending word, the value a crash leaves
 * there (by the rule k), as an overlay on the durable image.
 */
void pm_variant(struct pmodel *pm, enum vkind k, struct rng *g,
		struct overlay *o)
{
	uint64_t lo = UINT64_MAX, hi = 0, cut = 0, salt = rng_next(g);
	uint64_t drop = 0;

	o->n = 0;
	o->hash = pm->dhash;
	for (size_t x = 0; x < pm->npw; x++) {
		lo = MIN(lo, pm->pw[x].h[0].seq);
		hi = MAX(hi, pm->pw[x].h[pm->pw[x].n - 1].seq);
	}
	if (!pm->npw)
		k = V_DURABLE;
	switch (k) {
	case V_PREFIX:
		cut = lo + rng_below(g, hi - lo + 1);
		snprintf(o->what, sizeof(o->what), "prefix: word stores up to "
			 "#%llu of #%llu..#%llu", (unsigned long long)cut,
			 (unsigned long long)lo, (unsigned long long)hi);
		break;
	case V_DROP1: {
		const struct pword *p = &pm->pw[rng_below(g, pm->npw)];

		drop = p->h[rng_below(g, p->n)].store;
		snprintf(o->what, sizeof(o->what), "all but store #%llu "
			 "(word %#llx)", (unsigned long long)drop,
			 (unsigned long long)p->w * 8);
		break;
	}
	case V_LINE:
	case V_WORD:
		snprintf(o->what, sizeof(o->what), "%s written back at random "
			 "times (salt %#llx)", k == V_LINE ? "cache lines" :
			 "8-byte words", (unsigned long long)salt);
		break;
	default:
		snprintf(o->what, sizeof(o->what), "%s", k == V_ALL ?
			 "every store written back" : "durable only");
		break;
	}
	if (k == V_DURABLE)
		return;
	for (size_t x = 0; x < pm->npw; x++) {
		const struct pword *p = &pm->pw[x];
		int64_t j;

		switch (k) {
		case V_ALL:
			j = p->n - 1;
			break;
		case V_PREFIX:
			j = upto(p, cut);
			break;
		case V_LINE:
			j = upto(p, pick_time(mix64(salt ^ (p->w / 8)), lo,
					      hi));
			break;
		case V_WORD:
			j = upto(p, pick_time(mix64(salt ^ p->w), lo, hi));
			break;
		case V_DROP1:
			j = p->n - 1;
			while (j >= 0 && p->h[j].store == drop)
				j--;
			break;
		default:
			j = -1;
			break;
		}
		if (j >= 0 && p->h[j].val != pm->durable[p->w]) {
			ov_add(o, p->w, p->h[j].val);
			o->hash ^= whash(p->w, pm->durable[p->w]) ^
				   whash(p->w, p->h[j].val);
		}
	}
}

/* pm_materialize -- the image: durable words, then the overlay */
void pm_materialize(const struct pmodel *pm, const struct overlay *o,
		    uint8_t *dst)
{
	memcpy(dst, pm->durable, pm->size);
	for (size_t x = 0; o && x < o->n; x++)
		memcpy(dst + o->w[x] * 8, &o->val[x], 8);
}

/* pm_image -- the durable image */
const uint8_t *pm_image(const struct pmodel *pm)
{
	return (const uint8_t *)pm->durable;
}

/* pm_changed -- pages whose durable contents changed since the last
 * pm_changed_reset(), one byte per 4 KiB page */
const uint8_t *pm_changed(const struct pmodel *pm)
{
	return pm->pchanged;
}

void pm_changed_reset(struct pmodel *pm)
{
	memset(pm->pchanged, 0, pm->size / 4096 + 1);
}

/*
 * pm_absorb -- the region was written outside the trace (a mount, which
 * persists everything it writes before it returns): image is what it
 * holds now, and every word that differs from the latest value the model
 * knows becomes durable with the image's value.
 */
void pm_absorb(struct pmodel *pm, const uint8_t *image)
{
	const uint64_t *img = (const void *)image;
	bool any = false;

	/* pending words it changed: what they hold now is durable */
	for (size_t k = 0; k < pm->npw; k++) {
		struct pword *p = &pm->pw[k];

		if (img[p->w] == p->h[p->n - 1].val)
			continue;
		set_durable(pm, p->w, img[p->w]);
		p->n = 0;		/* dropped by the drain below */
		p->dseq = 0;
		any = true;
	}
	/* and the words nothing had stored to since they were durable */
	for (uint64_t w = 0; w < pm->nwords; w++) {
		struct pword *p;

		if (img[w] == pm->durable[w])
			continue;
		p = find(pm, w, false);
		if (!p || !p->n)
			set_durable(pm, w, img[w]);
	}
	if (any)
		pm_drain(pm);
}

void overlay_free(struct overlay *o)
{
	free(o->w);
	free(o->val);
	memset(o, 0, sizeof(*o));
}

