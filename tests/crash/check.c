/*
 * check.c -- judging one crash image: building it on the scratch region,
 * fsck, mount (journal replay), dump, comparison with the model states,
 * the extension probe, unmount, fsck again.  The rules are written at the
 * top of daxfs_crashsim.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashsim.h"
#include "fsck.h"

static double now_s(void)
{
	return (double)now_ns() / 1e9;
}

struct fsck_log {
	struct sbuf *b;
	uint64_t lines;
};

static void fsck_problem_cb(void *arg, const char *msg, enum fsck_status st,
			    const char *detail)
{
	struct fsck_log *l = arg;

	(void)st;
	if (l->lines++ < 10)
		sb_printf(l->b, "    fsck ERROR: %s%s%s\n", msg,
			  detail ? ": " : "", detail ? detail : "");
}

static void fsck_note_cb(void *arg, const char *msg)
{
	struct fsck_log *l = arg;

	if (l->lines++ < 10)
		sb_printf(l->b, "    fsck note: %s\n", msg);
}

/* fsck_image -- check mode; 0 when it ran without errors (and, when
 * strict, without notes) */
int fsck_image(const char *path, struct sbuf *why, bool strict,
	       const char *when)
{
	struct sbuf log = { 0 };
	struct fsck_log l = { &log, 0 };
	struct fsck_opts o = { false, fsck_problem_cb, fsck_note_cb, &l };
	struct fsck_result res;
	int ret = fsck_run(path, &o, &res);

	if (ret) {
		sb_printf(why, "  fsck %s could not run: %s\n", when,
			  daxfs_errmsg(ret));
	} else if (res.errors || (strict && res.notes)) {
		sb_printf(why, "  fsck %s: %" PRIu64 " errors, %" PRIu64
			  " notes\n%s", when, res.errors, res.notes,
			  log.s ? log.s : "");
		ret = -EUCLEAN;
	}
	sb_free(&log);
	return ret;
}

/* the images judged so far: an open-addressing set keyed by image hash */
static bool seen_find(struct sim *s, uint64_t h, uint64_t *dump)
{
	for (size_t k = h & (s->capseen - 1); s->capseen && s->seen[k].img;
	     k = (k + 1) & (s->capseen - 1)) {
		if (s->seen[k].img == h) {
			*dump = s->seen[k].dump;
			return true;
		}
	}
	return false;
}

static void seen_put(struct seen *v, size_t cap, uint64_t h, uint64_t dump)
{
	size_t k = h & (cap - 1);

	while (v[k].img && v[k].img != h)
		k = (k + 1) & (cap - 1);
	v[k] = (struct seen){ h, dump };
}

static void seen_add(struct sim *s, uint64_t h, uint64_t dump)
{
	h |= 1;				/* 0 marks a free slot */
	if ((s->nseen + 1) * 2 > s->capseen) {
		size_t cap = s->capseen ? s->capseen * 2 : 4096;
		struct seen *v = xcalloc(cap, sizeof(*v));

		for (size_t k = 0; k < s->capseen; k++)
			if (s->seen[k].img)
				seen_put(v, cap, s->seen[k].img,
					 s->seen[k].dump);
		free(s->seen);
		s->seen = v;
		s->capseen = cap;
	}
	seen_put(s->seen, s->capseen, h, dump);
	s->nseen++;
}

/*
 * materialize -- make the scratch region hold the image: the durable
 * words with the overlay on top.  A full copy every FULL_EVERY images;
 * in between only the pages that can differ are compared and copied:
 * the metadata area and backup superblock, every block in use in the
 * bitmap of the new image or of the scratch (a check writes nothing
 * else: a mount writes data blocks only once they are allocated, and
 * frees only blocks that were), pages whose durable contents changed,
 * and pages the previous and this overlay touch.
 */
#define FULL_EVERY 64

static void mark_bitmap(struct sim *s, const uint8_t *img)
{
	const uint64_t *bm = (const void *)(img + s->fs->bitmap_off);
	uint64_t n = s->fs->nblocks;

	for (uint64_t w = 0; w < DIV_ROUND_UP(n, 64); w++) {
		uint64_t v = bm[w];

		while (v) {
			uint64_t b = w * 64 + (uint64_t)__builtin_ctzll(v);

			if (b < n)
				s->cand[b] = 1;
			v &= v - 1;
		}
	}
}

static void materialize(struct sim *s, const struct overlay *ov, bool full)
{
	const uint8_t *dur = pm_image(s->pm), *chg = pm_changed(s->pm);
	uint64_t npages = s->o.size / 4096;

	if (full || ++s->since_full >= FULL_EVERY) {
		pm_materialize(s->pm, ov, s->scratch);
		s->since_full = 0;
	} else {
		memset(s->cand, 0, npages);
		memset(s->cand, 1, s->fs->data_start);
		s->cand[s->fs->nblocks - 1] = 1;
		mark_bitmap(s, dur);
		mark_bitmap(s, s->scratch);
		for (size_t k = 0; k < ov->n; k++) {
			uint64_t off = ov->w[k] * 8, bm = s->fs->bitmap_off;

			s->cand[off / 4096] = 1;
			/* a bitmap word the overlay sets: its 64 blocks */
			if (off >= bm && off < bm + s->fs->nblocks / 8)
				memset(s->cand + (off - bm) * 8, 1,
				       MIN(64, s->fs->nblocks - (off - bm) * 8));
		}
		for (size_t k = 0; k < s->nprev; k++)
			s->cand[s->prev_w[k] * 8 / 4096] = 1;
		for (uint64_t p = 0; p < npages; p++) {
			if (!s->cand[p] && !chg[p])
				continue;
			if (memcmp(s->scratch + p * 4096, dur + p * 4096, 4096))
				memcpy(s->scratch + p * 4096, dur + p * 4096,
				       4096);
		}
		for (size_t k = 0; k < ov->n; k++)
			memcpy(s->scratch + ov->w[k] * 8, &ov->val[k], 8);
		if (s->o.verify_restore) {
			uint8_t *want = xmalloc(s->o.size);

			pm_materialize(s->pm, ov, want);
			if (memcmp(want, s->scratch, s->o.size)) {
				printf("FAIL: tool error: the page by page "
				       "restore missed a change\n");
				s->tool_errors++;
			}
			free(want);
		}
	}
	pm_changed_reset(s->pm);
	s->prev_w = xrealloc(s->prev_w, (ov->n + 1) * sizeof(*s->prev_w));
	if (ov->n)
		memcpy(s->prev_w, ov->w, ov->n * sizeof(*s->prev_w));
	s->nprev = ov->n;
}

static void keep_image(struct sim *s, const struct overlay *ov)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/daxfs-crash-op%" PRIu64 "-drain%"
		 PRIu64 "-%" PRIx64 ".img", s->o.keep, s->op, s->drains,
		 ov->hash);
	materialize(s, ov, true);
	f = fopen(path, "w");
	if (!f || fwrite(s->scratch, 1, s->o.size, f) != s->o.size)
		fprintf(stderr, "daxfs_crashsim: cannot save %s\n", path);
	else
		printf("  image saved as %s\n", path);
	if (f)
		fclose(f);
}

/*
 * judge -- check the image in the scratch region against the model
 * states older and newer (the operation in flight not applied, or
 * applied).  True when it passes; why says what failed.
 */
static bool judge(struct sim *s, const struct model *older,
		  const struct model *newer, bool inflight, struct sbuf *why,
		  uint64_t *dump_hash)
{
	struct mount_opts mo = { .readonly = false };
	struct sbuf d1 = { 0 }, d2 = { 0 };
	struct daxfs *fs = NULL;
	struct dump img = { 0 };
	bool ok = false;
	int ret;

	if (fsck_image(s->img_path, why, false, "before mounting"))
		return false;
	ret = fs_mount(s->img_path, &mo, &fs);
	if (ret) {
		sb_printf(why, "  mount failed: %s\n", daxfs_errmsg(ret));
		return false;
	}
	ret = dump_fs(fs, &img, why);
	if (ret) {
		sb_printf(why, "  the mounted image cannot be walked\n");
	} else if (model_match(older, &img, false, &d1) &&
		   model_match(newer, &img, inflight, &d2)) {
		sb_printf(why, "  the image is neither state (- model, "
			  "+ image):\n  against the state before op %" PRIu64
			  ":\n%s  against the state after op %" PRIu64 ":\n%s",
			  s->op, d1.s, s->op, d2.s);
	} else if (!s->o.no_probe && probe_extend(fs, &img, why)) {
		/* reported by probe_extend */
	} else {
		ok = true;
	}
	ret = fs_unmount(fs, true);
	if (ok && ret) {
		sb_printf(why, "  unmount failed: %s\n", daxfs_errmsg(ret));
		ok = false;
	}
	if (ok && fsck_image(s->img_path, why, true,
			      "after mount and unmount"))
		ok = false;
	*dump_hash = img.hash;
	dump_free(&img);
	sb_free(&d1);
	sb_free(&d2);
	return ok;
}

/*
 * check_image -- build one crash image and judge it.  A failure is
 * confirmed on a fully copied image before it is reported.
 */
bool check_image(struct sim *s, const struct overlay *ov,
		 const struct model *older, const struct model *newer,
		 bool inflight)
{
	struct sbuf why = { 0 };
	uint64_t dh = 0;
	double t0 = now_s();
	bool ok;

	s->generated++;
	if (seen_find(s, ov->hash | 1, &dh) && dh &&
	    (dh == older->d.hash || dh == newer->d.hash))
		return true;
	s->checked++;
	materialize(s, ov, false);
	ok = judge(s, older, newer, inflight, &why, &dh);
	if (!ok && s->since_full) {
		sb_free(&why);
		materialize(s, ov, true);
		ok = judge(s, older, newer, inflight, &why, &dh);
		if (ok) {
			printf("FAIL: tool error: op %" PRIu64 ", drain %" PRIu64
			       ": the image restored page by page failed, "
			       "fully copied it passes\n", s->op, s->drains);
			s->tool_errors++;
		}
	}
	seen_add(s, ov->hash, ok ? dh : 0);
	if (!ok) {
		s->failures++;
		if (s->reported++ < s->o.show) {
			printf("FAIL: op %" PRIu64 " [%s], drain %" PRIu64
			       ", image \"%s\" (%zu words not durable "
			       "written back)\n%s", s->op, s->desc, s->drains,
			       ov->what, ov->n, why.s ? why.s : "");
			if (s->op > 1)
				printf("  (op %" PRIu64 " was [%s])\n",
				       s->op - 1, s->prev_desc);
			if (s->o.keep)
				keep_image(s, ov);
		}
	}
	sb_free(&why);
	s->t_check += now_s() - t0;
	return ok;
}

