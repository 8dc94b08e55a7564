/*
 * model.c -- the model states and the rules an image is judged by.
 *
 * A model state is the dump of the live filesystem after an operation,
 * plus, for every file whose data is not all durable ("unsynced"), the
 * versions it has had since its last fsync.  A file is exact from its
 * creation and after each fsync of it.  A write makes it unsynced: until
 * its next fsync a crash may show any of those versions, byte by byte.
 * Truncate and fallocate are atomic and durable, so they keep an exact
 * file exact; a hole punch is too once it returned, but while it is in
 * flight the file may mix before and after (the state's vsi).
 *
 * model_match() is the rule: same paths; per path the same inode number,
 * type, mode, owner, link count, device number, xattrs and size and
 * contents (or target) -- except that an unsynced file's size is one of
 * its versions' sizes and each of its bytes what some version held there
 * (or zero where that version was shorter).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashsim.h"

#define MAX_VERS	6	/* then the workload fsyncs the file */

struct track {
	uint64_t ino;
	uint32_t n, cap;
	struct ver **v;		/* v[0]: contents at the last fsync */
};

/* the version lists of every regular file */
struct vtrack {
	struct track *t;
	uint32_t nt, capt;
};

struct vtrack *vt_new(void)
{
	return xcalloc(1, sizeof(struct vtrack));
}

static void track_clear(struct track *t)
{
	for (uint32_t k = 0; k < t->n; k++)
		ver_put(t->v[k]);
	t->n = 0;
}

void vt_free(struct vtrack *vt)
{
	for (uint32_t k = 0; k < vt->nt; k++) {
		track_clear(&vt->t[k]);
		free(vt->t[k].v);
	}
	free(vt->t);
	free(vt);
}

static void vsets_free(struct vset *vs, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		for (uint32_t j = 0; j < vs[k].n; j++)
			ver_put(vs[k].v[j]);
		free(vs[k].v);
	}
	free(vs);
}

void model_free(struct model *m)
{
	dump_free(&m->d);
	vsets_free(m->vs, m->nvs);
	vsets_free(m->vsi, m->nvsi);
	m->vs = m->vsi = NULL;
	m->nvs = m->nvsi = 0;
}

/* model_vset -- the versions a file may show, NULL if it must be exact */
const struct vset *model_vset(const struct model *m, uint64_t ino,
			      bool inflight)
{
	for (uint32_t k = 0; inflight && k < m->nvsi; k++)
		if (m->vsi[k].ino == ino)
			return &m->vsi[k];
	for (uint32_t k = 0; k < m->nvs; k++)
		if (m->vs[k].ino == ino)
			return &m->vs[k];
	return NULL;
}

static void describe(struct sbuf *b, char sign, const struct dent *e)
{
	sb_printf(b, "  %c %s ino=%llu mode=0%o uid=%u gid=%u nlink=%u "
		  "size=%llu", sign, e->path, (unsigned long long)e->ino,
		  e->mode, e->uid, e->gid, e->nlink,
		  (unsigned long long)e->size);
	if (e->rdev)
		sb_printf(b, " rdev=%#llx", (unsigned long long)e->rdev);
	if (S_ISREG(e->mode))
		sb_printf(b, " data=%016llx", (unsigned long long)e->chash);
	if (e->target)
		sb_printf(b, " -> %.60s%s", e->target,
			  strlen(e->target) > 60 ? "..." : "");
	if (e->xattrs && *e->xattrs)
		sb_printf(b, " xattrs[%s]", e->xattrs);
	sb_printf(b, "\n");
}

/*
 * unsynced_ok -- the rule for a file whose data is not all durable: its
 * size is one it had since its last fsync, and each byte holds what some
 * version since then held at that offset (or zero, where a version was
 * shorter: a file extended over a gap reads zeros there).
 */
static bool unsynced_ok(const struct vset *vs, const struct dent *img,
			struct sbuf *why)
{
	const uint8_t *b = img->data ? img->data->data : NULL;
	bool size_ok = false;

	for (uint32_t k = 0; k < vs->n; k++) {
		if (vs->v[k]->size == img->size) {
			size_ok = true;
			if (!memcmp(vs->v[k]->data, b, img->size))
				return true;
		}
	}
	if (!size_ok) {
		sb_printf(why, "    size %llu is none of the unsynced "
			  "versions':", (unsigned long long)img->size);
		for (uint32_t k = 0; k < vs->n; k++)
			sb_printf(why, " %llu",
				  (unsigned long long)vs->v[k]->size);
		sb_printf(why, "\n");
		return false;
	}
	for (uint64_t p = 0; p < img->size; p++) {
		bool ok = false;

		for (uint32_t k = 0; k < vs->n && !ok; k++) {
			const struct ver *v = vs->v[k];

			ok = p < v->size ? v->data[p] == b[p] : b[p] == 0;
		}
		if (!ok) {
			sb_printf(why, "    byte %llu is %#x, which no unsynced "
				  "version (%u) had there\n",
				  (unsigned long long)p, b[p], vs->n);
			return false;
		}
	}
	return true;
}

/* same -- one path's entry in the image against the model's */
static bool same(const struct model *m, bool inflight, const struct dent *me,
		 const struct dent *ie, struct sbuf *why)
{
	const struct vset *vs;

	if (me->ino != ie->ino || me->mode != ie->mode ||
	    me->uid != ie->uid || me->gid != ie->gid ||
	    me->nlink != ie->nlink || me->rdev != ie->rdev ||
	    me->xhash != ie->xhash)
		return false;
	if (!S_ISREG(me->mode))
		return me->size == ie->size && me->chash == ie->chash;
	if (me->size == ie->size && me->chash == ie->chash)
		return true;
	vs = model_vset(m, me->ino, inflight);
	return vs && unsynced_ok(vs, ie, why);
}

/* model_match -- does the image's dump fit the model state? */
int model_match(const struct model *m, const struct dump *img,
		bool inflight, struct sbuf *diff)
{
	uint32_t a = 0, b = 0, shown = 0;
	int bad = 0;

	if (img->hash == m->d.hash)
		return 0;
	while (a < m->d.n || b < img->n) {
		int c = a == m->d.n ? 1 : b == img->n ? -1 :
			strcmp(m->d.v[a].path, img->v[b].path);
		struct sbuf why = { 0 };

		if (c == 0 && same(m, inflight, &m->d.v[a], &img->v[b], &why)) {
			a++;
			b++;
			sb_free(&why);
			continue;
		}
		bad = 1;
		if (shown++ < 12) {
			if (c <= 0)
				describe(diff, '-', &m->d.v[a]);
			if (c >= 0)
				describe(diff, '+', &img->v[b]);
			if (why.s)
				sb_printf(diff, "%s", why.s);
		}
		sb_free(&why);
		if (c <= 0)
			a++;
		if (c >= 0)
			b++;
	}
	if (shown > 12)
		sb_printf(diff, "  ... %u more differences\n", shown - 12);
	return bad;
}

/* ---- the versions of unsynced files ------------------------------------- */

static struct track *track_of(struct vtrack *vt, uint64_t ino)
{
	for (uint32_t k = 0; k < vt->nt; k++)
		if (vt->t[k].ino == ino)
			return &vt->t[k];
	if (vt->nt == vt->capt) {
		vt->capt = vt->capt ? vt->capt * 2 : 64;
		vt->t = xrealloc(vt->t, vt->capt * sizeof(*vt->t));
	}
	memset(&vt->t[vt->nt], 0, sizeof(vt->t[0]));
	vt->t[vt->nt].ino = ino;
	return &vt->t[vt->nt++];
}

static void track_push(struct track *t, struct ver *v)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 8;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n++] = ver_get(v);
}

static void vset_add(struct vset **vs, uint32_t *n, uint64_t ino,
		     struct ver **v, uint32_t nv)
{
	struct vset *s;

	*vs = xrealloc(*vs, (*n + 1) * sizeof(**vs));
	s = &(*vs)[(*n)++];
	s->ino = ino;
	s->n = nv;
	s->v = xmalloc(nv * sizeof(*s->v));
	for (uint32_t k = 0; k < nv; k++)
		s->v[k] = ver_get(v[k]);
}

static bool same_ver(const struct ver *a, const struct ver *b)
{
	return a->size == b->size && !memcmp(a->data, b->data, a->size);
}

/*
 * punch_vsi -- a hole punch in flight zeroes its edges through the data
 * path and frees its blocks by a transaction, so until it returns the
 * file may be any mix of before and after
 */
static void punch_vsi(struct model *next, uint64_t ino, struct ver *before,
		      struct ver *after)
{
	struct ver *v[2] = { before, after };

	vset_add(&next->vsi, &next->nvsi, ino, v, 2);
}

/*
 * vt_update -- after a step (which touched the data of inode `ino` as
 * `touched` says) and its dump: bring the version lists up to date and
 * give the new model state its unsynced files.  Returns an inode that
 * has collected MAX_VERS versions and should be fsynced next, or 0.
 */
uint64_t vt_update(struct vtrack *vt, const struct model *prev,
		   struct model *next, uint64_t ino, enum vt_touch touched)
{
	uint64_t fsync_next = 0;

	/* files that went away, or whose inode number was reused */
	for (uint32_t k = 0; k < vt->nt;) {
		const struct dent *e = dump_find_ino(&next->d, vt->t[k].ino);

		if (!e || !S_ISREG(e->mode) ||
		    !dump_find_ino(&prev->d, vt->t[k].ino)) {
			track_clear(&vt->t[k]);
			free(vt->t[k].v);
			vt->t[k] = vt->t[--vt->nt];
			continue;
		}
		k++;
	}
	for (uint32_t x = 0; x < next->d.n; x++) {
		const struct dent *e = &next->d.v[x];
		struct track *t;

		if (!S_ISREG(e->mode))
			continue;
		t = track_of(vt, e->ino);
		if (!t->n || touched == T_SYNC_ALL) {
			track_clear(t);
			/* new to us: exact as it stands */
			track_push(t, e->data);
			continue;
		}
		if (e->ino != ino)
			continue;
		switch (touched) {
		case T_SYNC:
			track_clear(t);
			track_push(t, e->data);
			break;
		case T_PUNCH:
		case T_EXACT:
			/* durable when they return: an exact file stays
			 * exact (see punch_vsi for one in flight) */
			if (t->n == 1) {
				if (touched == T_PUNCH)
					punch_vsi(next, e->ino, t->v[0],
						  e->data);
				track_clear(t);
				track_push(t, e->data);
				break;
			}
			/* fall through */
		case T_WRITE:
			if (!same_ver(t->v[t->n - 1], e->data))
				track_push(t, e->data);
			break;
		default:
			break;
		}
	}
	for (uint32_t k = 0; k < vt->nt; k++) {
		struct track *t = &vt->t[k];

		if (t->n > 1) {
			vset_add(&next->vs, &next->nvs, t->ino, t->v, t->n);
			if (t->n >= MAX_VERS)
				fsync_next = t->ino;
		}
	}
	return fsync_next;
}
