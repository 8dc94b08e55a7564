/*
 * crashsim.h -- what the pieces of daxfs_crashsim share.
 *
 *   trace.c     recording every store, flush and drain the filesystem
 *               makes (a region tracer), and the persistence model that
 *               turns them into the images a crash could leave behind
 *   dump.c      a canonical dump of a mounted filesystem
 *   model.c     model states, the versions of unsynced files, and the
 *               rule that decides whether an image's dump matches one
 *   workload.c  the seeded random operations, and which files' data is
 *               unsynced (so may legitimately be old or new after a crash)
 *   check.c     judging one image: fsck, mount, dump, compare, probe
 *   daxfs_crashsim.c  the driver: options, the per-operation loop, the
 *               replay of each operation's trace, summary
 *
 * The judging rules are written down at the top of daxfs_crashsim.c.
 */
#ifndef DAXFS_CRASHSIM_H
#define DAXFS_CRASHSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daxfs_i.h"
#include "namei.h"

/* ---- small helpers (trace.c) -------------------------------------------- */

struct rng {
	uint64_t s;
};

uint64_t rng_next(struct rng *g);
uint64_t rng_below(struct rng *g, uint64_t n);	/* [0, n), n > 0 */
uint64_t mix64(uint64_t x);
uint64_t hash_bytes(const void *p, size_t len, uint64_t seed);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* a growing text buffer for reports */
struct sbuf {
	char *s;
	size_t len, cap;
};
void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_free(struct sbuf *b);

/* ---- recording (trace.c) ------------------------------------------------ */

enum ev_kind { EV_STORE, EV_FLUSH, EV_DRAIN };

struct ev {
	uint8_t kind;
	bool nt;			/* a store that bypassed the cache */
	uint64_t off, len;
	uint64_t data;			/* stores: offset in the arena */
};

struct trace {
	struct ev *v;
	size_t n, cap;
	uint8_t *arena;
	size_t alen, acap;
	bool paused;			/* events now are a tool error */
	uint64_t stray;			/* events seen while paused */
	/* --break: how the recording lies about what the region saw */
	int brk;
	uint64_t log_lo, log_hi;	/* the journal log area */
	uint64_t it_lo, it_hi;		/* the inode table */
	uint64_t dropped;		/* events the break removed */
	bool after_log_flush;		/* commit-fence: next drain is it */
};

enum brk_mode {
	BRK_NONE,
	BRK_COMMIT_FENCE,	/* the drain after a log write never happens */
	BRK_INODE_FLUSH,	/* flushes of the inode table never happen */
};

void trace_attach(struct trace *t, struct region *r,
		  struct region_tracer *rt);
void trace_reset(struct trace *t);
void trace_free(struct trace *t);

/* ---- the persistence model (trace.c) ------------------------------------ */

/*
 * The durable image plus, for every 8-byte word stored since it was last
 * durable, the history of values it took.  A crash leaves each such word
 * at one of those values (the durable one, or the value after any later
 * store): 8-byte aligned stores are failure atomic, nothing larger is.
 */
struct pmodel;

enum vkind {
	V_DURABLE,	/* only what a drain made durable */
	V_ALL,		/* every store reached the media */
	V_PREFIX,	/* the stores up to a cut (8-byte granularity) */
	V_LINE,		/* each 64-byte line written back at a random time */
	V_WORD,		/* each 8-byte word at a random point of its history */
	V_DROP1,	/* everything but one store */
	V_NKINDS
};

extern const char *const vkind_name[V_NKINDS];

struct overlay {
	uint64_t *w, *val;		/* word index, value */
	size_t n, cap;
	uint64_t hash;			/* of the whole image */
	char what[96];			/* how it was chosen */
};

struct pmodel *pm_new(const uint8_t *image, uint64_t size);
void pm_free(struct pmodel *pm);
void pm_store(struct pmodel *pm, uint64_t off, const void *src,
	      uint64_t len, bool nt);
void pm_flush(struct pmodel *pm, uint64_t off, uint64_t len);
void pm_drain(struct pmodel *pm);
uint64_t pm_pending(const struct pmodel *pm);
void pm_variant(struct pmodel *pm, enum vkind k, struct rng *g,
		struct overlay *o);
void pm_materialize(const struct pmodel *pm, const struct overlay *o,
		    uint8_t *dst);
const uint8_t *pm_image(const struct pmodel *pm);
const uint8_t *pm_changed(const struct pmodel *pm);
void pm_changed_reset(struct pmodel *pm);
void pm_absorb(struct pmodel *pm, const uint8_t *image);
void overlay_free(struct overlay *o);

/* ---- dumps (dump.c) and models (model.c) -------------------------------- */

/* one file's contents at one point; shared between model states */
struct ver {
	uint64_t size;
	uint8_t *data;
	int ref;
};

struct ver *ver_new(const uint8_t *data, uint64_t size);
struct ver *ver_get(struct ver *v);
void ver_put(struct ver *v);

struct dent {
	char *path;
	uint64_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t rdev, size;
	uint64_t chash;			/* file contents or symlink target */
	uint64_t xhash;			/* every xattr, names and values */
	char *target;			/* symlinks */
	char *xattrs;			/* "name=len:hash ..." for diffs */
	struct ver *data;		/* regular files: contents */
};

struct dump {
	struct dent *v;			/* sorted by path */
	uint32_t n;
	uint64_t hash;
	uint64_t tail_bad;		/* inode whose tail past EOF is not 0 */
	uint64_t tail_off;		/* first such byte */
};

/* a file whose contents since its last fsync are not all durable: the
 * versions it has had since (the first is what the fsync left) */
struct vset {
	uint64_t ino;
	uint32_t n;
	struct ver **v;
};

struct model {
	struct dump d;
	struct vset *vs;		/* unsynced files */
	uint32_t nvs;
	/* when this state is the one an operation in flight was producing:
	 * files that operation may leave half old, half new (a hole punch
	 * zeroes edges and frees blocks in separate steps) */
	struct vset *vsi;
	uint32_t nvsi;
};

int dump_fs(struct daxfs *fs, struct dump *out, struct sbuf *err);
void dump_free(struct dump *d);
const struct dent *dump_find_ino(const struct dump *d, uint64_t ino);
void model_free(struct model *m);
const struct vset *model_vset(const struct model *m, uint64_t ino,
			      bool inflight);
/* extend every file over its blocks past EOF: they must read zero */
int probe_extend(struct daxfs *fs, const struct dump *d, struct sbuf *why);
/* 0 when img matches m under the rules; else 1 with why in diff */
int model_match(const struct model *m, const struct dump *img,
		bool inflight, struct sbuf *diff);

/* what a step did to a file's data */
enum vt_touch {
	T_NONE, T_WRITE, T_PUNCH, T_EXACT, T_SYNC,
	T_SYNC_ALL,		/* an unmount made every file durable */
};

/* the version lists of unsynced files (model.c) */
struct vtrack;
struct vtrack *vt_new(void);
void vt_free(struct vtrack *vt);
uint64_t vt_update(struct vtrack *vt, const struct model *prev,
		   struct model *next, uint64_t ino, enum vt_touch touched);

/* ---- the workload (workload.c) ------------------------------------------ */

struct workload;

struct wl_opts {
	uint64_t seed;
	uint64_t max_file;		/* bytes */
	uint32_t fsync_pct;		/* after a data operation */
};

struct workload *wl_new(struct daxfs *fs, const struct wl_opts *o);
void wl_free(struct workload *w);
/* around a remount: let go of kept references; the new filesystem */
void wl_release(struct workload *w, char *desc, size_t desclen);
void wl_remounted(struct workload *w, struct daxfs *fs);
/* one operation chosen against the state cur; its description in desc */
int wl_step(struct workload *w, const struct model *cur, char *desc,
	    size_t desclen);
/* kept references whose inode has no name left */
uint32_t wl_orphans(struct workload *w);
/* after the step's dump: which files are unsynced, with their versions */
void wl_versions(struct workload *w, const struct model *prev,
		 struct model *next);

/* ---- the driver (daxfs_crashsim.c) and its checks (check.c) ------------- */

struct opts {
	uint64_t seed, ops, size;
	uint32_t partials, fsync_pct, show, remount_pct;
	uint64_t trace_op, max_file;
	bool cacheline, verbose, seed_set, no_probe, verify_restore;
	int brk;
	const char *keep;
};

/* an image already checked: its hash, and its dump's if it passed */
struct seen {
	uint64_t img, dump;
};

struct sim {
	struct opts o;
	const char *img_path;		/* the scratch region */
	struct daxfs *fs;
	struct trace tr;
	struct region_tracer rt;
	struct pmodel *pm;
	uint8_t *scratch;		/* the image region, mapped */
	struct model prev, cur;
	struct rng g;			/* the crash variants */
	struct rng rg;			/* when to remount */
	uint8_t *mounted_img;		/* the region after a remount */
	uint64_t remounts;
	uint64_t op;			/* the operation being replayed */
	char desc[512], prev_desc[512];
	uint64_t drains, generated, checked, failures, reported;
	uint64_t tool_errors;
	struct {			/* summed over the model states */
		uint64_t ext_array, xattr_block, big_dir, block_link;
		uint64_t hard_link, unsynced, orphans;
		uint32_t max_ext, max_entries;
	} cov;
	uint8_t *cand;			/* materialize: pages to compare */
	uint64_t *prev_w;		/* words the last overlay set */
	size_t nprev;
	uint64_t since_full;
	uint64_t tail_live;		/* the live fs broke the invariant */
	struct seen *seen;
	size_t nseen, capseen;
	double t_check;
};

int fsck_image(const char *path, struct sbuf *why, bool strict,
	       const char *when);
bool check_image(struct sim *s, const struct overlay *ov,
		 const struct model *older, const struct model *newer,
		 bool inflight);

#endif /* DAXFS_CRASHSIM_H */
