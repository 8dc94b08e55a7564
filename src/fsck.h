/*
 * fsck.h -- the daxfs checker and repairer.
 *
 * fsck_run() checks a region that no daemon has mounted read-write and,
 * when asked, repairs it in place.  It reports every problem and note
 * through callbacks, so the caller decides how they are shown.
 *
 * The second half of this header is private to src/fsck*.c: the state
 * one run shares between its passes.
 */
#ifndef DAXFS_FSCK_H
#define DAXFS_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "daxfs_i.h"

/* what became of a problem */
enum fsck_status {
	FSCK_FOUND,			/* checking only: left as it is */
	FSCK_FIXED,			/* repaired; detail says how, or NULL */
	FSCK_UNFIXED,			/* repair failed; detail says why */
};

struct fsck_opts {
	bool repair;
	void (*problem)(void *arg, const char *msg, enum fsck_status st,
			const char *detail);
	void (*note)(void *arg, const char *msg);
	void *arg;
};

struct fsck_result {
	uint64_t errors;		/* problems found */
	uint64_t fixed;			/* of which repaired */
	uint64_t notes;
	uint64_t inodes;		/* in use */
	uint64_t data_blocks;		/* the data area */
	uint64_t used_data_blocks;
	bool marked_clean;		/* repair set the state to clean */
};

/*
 * fsck_run -- check (and with o->repair, repair) the region spec.
 * 0 when the check ran to the end (res says what it found), or -errno
 * for an operational failure (cannot open, locked, not daxfs, I/O error),
 * with a sentence in daxfs_errmsg().
 */
int fsck_run(const char *spec, const struct fsck_opts *o,
	     struct fsck_result *res);

/* ---- private to src/fsck*.c ---- */

/* c->istate: the low four bits hold the DT_* type of a used inode */
#define IS_TYPE		0x000fu
#define IS_USED		0x0010u		/* allocated and passed the checks */
#define IS_BAD		0x0020u		/* damaged: cleared (or would be) */
#define IS_XDROP	0x0040u		/* its xattr block was dropped */
#define IS_EDROP	0x0080u		/* its extents were dropped */
#define IS_NEW		0x0100u		/* created by this run */
#define IS_ORPHAN	0x0200u		/* nlink 0: an orphan unless linked */

#define DT_DIR_		4u		/* DAXFS_S_IFDIR >> 12 */

/* one directory, as the passes after the inode scan need it */
struct fdir {
	uint64_t ino;
	uint64_t parent;		/* dinode.parent (as repaired) */
	uint64_t found;			/* directory holding its entry */
	uint64_t entry_off;		/* region offset of that entry */
	uint64_t nb;			/* blocks (size / block size) */
	uint64_t nlink;			/* dinode.nlink as read */
	struct extent *ext;		/* its extent list, lblk 0.. nb */
	uint32_t next;
	uint32_t nsub;			/* subdirectory entries in it */
	uint32_t nent;			/* entries in it */
	uint32_t walk;			/* reachability walk id */
	int32_t nlink_adj;		/* check mode: links repair adds */
	uint8_t entry_slots;
	uint8_t reach;			/* REACH_* */
	uint32_t free_hint;		/* block that may have room */
};

enum { REACH_UNKNOWN, REACH_YES, REACH_ORPHAN };

/* claims: what kind of pointer owns a block range */
enum claim_kind { CLAIM_DATA, CLAIM_ARRAY, CLAIM_XATTR };

/* a claim on blocks an earlier claim already owned */
struct fconflict {
	uint64_t ino;
	uint64_t pblk, len;
	uint64_t other;			/* an earlier owner, 0 unknown */
	uint32_t idx;			/* extent index for CLAIM_DATA */
	enum claim_kind kind;
};

/* the pending journal transaction, laid over region reads */
struct jrec_ref {
	uint64_t off, len;
	const uint8_t *data;
	uint32_t seq;			/* order of application */
};

struct nameset;

struct fsck {
	const struct fsck_opts *o;
	struct fsck_result *res;
	struct region *r;
	bool repair;
	struct daxfs_dsb sb;
	struct daxfs geo;		/* geometry only, for inode_check */
	uint64_t nblocks, ninodes, data_start, itable_off;

	/* check mode with a committed transaction: its records */
	uint8_t *jbuf;
	struct jrec_ref *recs;		/* sorted by offset */
	uint64_t *rmaxend;		/* running max of record ends */
	uint32_t nrecs;

	/* blocks: one bit each, words cover the whole bitmap area */
	uint64_t nwords;
	uint64_t *bitmap;		/* on-region, plus our own changes */
	uint64_t *owned;		/* what the metadata claims */
	uint64_t *dup;			/* claimed more than once; lazy */
	uint64_t free_read;		/* free blocks in the bitmap as read */
	uint64_t alloc_hint;		/* where fsck_alloc_run looks first */
	bool bitmap_dirty;

	/* inodes */
	uint16_t *istate;
	uint32_t *links;		/* entries found per inode */
	uint64_t used_read;		/* slots with a mode, as read */
	struct fdir *dirs;		/* sorted by ino */
	uint64_t ndirs, dirs_cap;
	struct fdir *lf;		/* /lost+found: in dirs, or made */
	bool lf_own;			/* made by this run, freed with c */
	struct nameset *lf_names;
	bool lf_unusable;		/* "lost+found" is not a directory */
	bool root_bad;
	struct fconflict *conf;
	uint64_t nconf, conf_cap;

	uint64_t unfixed;
	bool changed;			/* anything written */
	int fatal;			/* first operational error */
};

/* fsck.c */
int fsck_read(struct fsck *c, uint64_t off, void *buf, uint64_t len);
int fsck_write(struct fsck *c, uint64_t off, const void *buf, uint64_t len);
void fsck_problem(struct fsck *c, int fixret, const char *detail,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void fsck_note(struct fsck *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int fsck_fail(struct fsck *c, int err);
const char *fsck_name(const char *name, size_t len, char *out, size_t cap);
int fsck_inode_read(struct fsck *c, uint64_t ino, struct daxfs_dinode *d);
int fsck_inode_write(struct fsck *c, uint64_t ino, struct daxfs_dinode *d);
int fsck_inode_clear(struct fsck *c, uint64_t ino, uint32_t generation);

uint64_t fsck_free_count(const uint64_t *map, uint64_t n);
void fsck_own_fixed(struct fsck *c);

/* fsck_inode.c */
int fsck_ext_read(struct fsck *c, const struct daxfs_dinode *d, uint64_t ino,
		  struct extent **out, uint32_t *n);
int fsck_pass_inodes(struct fsck *c);
int fsck_pass_conflicts(struct fsck *c);
int fsck_rebuild_owned(struct fsck *c);
int fsck_free_inode(struct fsck *c, uint64_t ino);
struct fdir *fsck_dir_find(struct fsck *c, uint64_t ino);

/* fsck_space.c */
int fsck_alloc_run(struct fsck *c, uint64_t goal, uint64_t len,
		   uint64_t *start);
void fsck_take(struct fsck *c, uint64_t start, uint64_t len);
void fsck_release(struct fsck *c, uint64_t start, uint64_t len);
int fsck_copy_blocks(struct fsck *c, uint64_t from, uint64_t to,
		     uint64_t len);
int fsck_dir_grow(struct fsck *c, struct fdir *dir);
int fsck_pass_space(struct fsck *c);

/* fsck_dir.c */
int fsck_pass_dirs(struct fsck *c);
int fsck_pass_reach(struct fsck *c);
int fsck_pass_links(struct fsck *c);
int fsck_make_dir(struct fsck *c, uint64_t ino, uint64_t parent,
		  uint32_t perm, uint32_t uid, uint32_t gid);
void fsck_names_free(struct nameset *s);

#endif /* DAXFS_FSCK_H */
