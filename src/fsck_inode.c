/*
 * fsck_inode.c -- the inode scan: every slot of the inode table, the
 * extent lists, symlinks, device nodes, xattr blocks and directory shape,
 * and the claims that build the shadow bitmap of owned blocks; then the
 * blocks claimed twice, which a repair resolves by giving the later owner
 * its own copy.
 *
 * Owns: c->istate, c->dirs, c->conf, c->owned while scanning.  Must
 * never: follow a pointer that inode_check or fsck_ext_read has not
 * bounded by the geometry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck.h"

#define BS		DAXFS_BLOCK_SIZE
#define EXTSZ		sizeof(struct daxfs_dextent)
#define BATCH		256		/* dinodes per read: 64 KiB */
#define NAME_OWNERS_MAX	64		/* conflicts worth a rescan to name */
#define EXT_MAX_END	(1ULL << 38)	/* as extent.c: the largest file */

/* in_data -- does [b, b+n) lie in the data area? */
static bool in_data(const struct fsck *c, uint64_t b, uint64_t n)
{
	return b >= c->data_start && n > 0 && b < c->nblocks - 1 &&
	       n <= c->nblocks - 1 - b;
}

/*
 * fsck_ext_read -- a dinode's extent list, with every check ext_read in
 * extent.c makes (and the array's reserved bytes), read through the
 * journal overlay.  -EUCLEAN with a sentence when it cannot be used.
 */
int fsck_ext_read(struct fsck *c, const struct daxfs_dinode *d, uint64_t ino,
		  struct extent **out, uint32_t *n_out)
{
	uint32_t n = d->nextents;
	struct daxfs_dextent *raw;
	struct extent *e;
	int ret = 0;

	*out = NULL;
	*n_out = 0;
	if ((d->flags & DAXFS_IF_INLINE) || !n)
		return 0;
	if (n > c->nblocks - c->data_start - 1) {
		daxfs_seterr("inode %llu: %u extents cannot fit in the region",
			     (unsigned long long)ino, n);
		return -EUCLEAN;
	}
	if (!d->ext_block && n > DAXFS_INLINE_EXTENTS) {
		daxfs_seterr("inode %llu: too many inline extents",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	if (d->ext_block && (!in_data(c, d->ext_block, d->ext_blocks) ||
			     n > DAXFS_EXT_PER_ARRAY(d->ext_blocks))) {
		daxfs_seterr("inode %llu: extent array out of range",
			     (unsigned long long)ino);
		return -EUCLEAN;
	}
	raw = malloc((size_t)n * EXTSZ);
	e = malloc((size_t)n * sizeof(*e));
	if (!raw || !e) {
		free(raw);
		free(e);
		return -ENOMEM;
	}
	if (!d->ext_block) {
		memcpy(raw, d->inl, (size_t)n * EXTSZ);
	} else {
		struct daxfs_dextarray h;

		ret = fsck_read(c, FS_BLOCK_OFF(d->ext_block), &h, sizeof(h));
		if (!ret)
			ret = ext_array_check(&h, d, ino, n);
		if (!ret)
			ret = fsck_read(c, FS_BLOCK_OFF(d->ext_block) +
					sizeof(h), raw, (uint64_t)n * EXTSZ);
	}
	for (uint32_t k = 0; k < n && !ret; k++) {
		const struct daxfs_dextent *x = &raw[k];
		const char *why = NULL;

		e[k].lblk = x->lblk;
		e[k].pblk = x->pblk;
		e[k].len = x->len;
		if (x->reserved)
			why = "has reserved bits set";
		else if (!x->len)
			why = "is empty";
		else if (!in_data(c, x->pblk, x->len))
			why = "lies outside the data area";
		else if (x->lblk + x->len < x->lblk ||
			 x->lblk + x->len > EXT_MAX_END)
			why = "runs past the largest file offset";
		else if (k && x->lblk < e[k - 1].lblk + e[k - 1].len)
			why = "is out of order or overlaps the one before";
		if (why) {
			daxfs_seterr("inode %llu: extent %u (file block %llu, "
				     "region block %llu, %u blocks) %s",
				     (unsigned long long)ino, k,
				     (unsigned long long)x->lblk,
				     (unsigned long long)x->pblk, x->len, why);
			ret = -EUCLEAN;
		}
	}
	free(raw);
	if (ret) {
		free(e);
		return ret;
	}
	*out = e;
	*n_out = n;
	return 0;
}

/* fsck_dir_find -- the directory record of ino, or NULL */
struct fdir *fsck_dir_find(struct fsck *c, uint64_t ino)
{
	uint64_t lo = 0, hi = c->ndirs;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (c->dirs[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->ndirs && c->dirs[lo].ino == ino)
		return &c->dirs[lo];
	if (c->lf && c->lf->ino == ino)
		return c->lf;
	return NULL;
}

/* claim -- blocks [start, start+len) belong to ino; a clash is recorded */
static int claim(struct fsck *c, uint64_t ino, enum claim_kind kind,
		 uint32_t idx, uint64_t start, uint64_t len, bool record)
{
	bool clash = false;

	for (uint64_t b = start; b < start + len;) {
		uint64_t w = b / 64, bit = b % 64;
		uint64_t n = MIN(64 - bit, start + len - b);
		uint64_t mask = (n == 64) ? ~0ULL : ((1ULL << n) - 1) << bit;
		uint64_t both = c->owned[w] & mask;

		if (both) {
			if (!c->dup) {
				c->dup = calloc(c->nwords, 8);
				if (!c->dup)
					return fsck_fail(c, -ENOMEM);
			}
			c->dup[w] |= both;
			clash = true;
		}
		c->owned[w] |= mask;
		b += n;
	}
	if (!clash || !record)
		return 0;
	if (c->nconf == c->conf_cap) {
		uint64_t cap = c->conf_cap ? c->conf_cap * 2 : 16;
		struct fconflict *v = realloc(c->conf, cap * sizeof(*v));

		if (!v)
			return fsck_fail(c, -ENOMEM);
		c->conf = v;
		c->conf_cap = cap;
	}
	c->conf[c->nconf++] = (struct fconflict){ .ino = ino, .pblk = start,
		.len = len, .idx = idx, .kind = kind };
	return 0;
}

/*
 * inode_claims -- the block ranges an inode owns, as the repair leaves
 * it: fn(arg, kind, idx, start, len) for each.  The extents are e/n
 * (already read).
 */
typedef int (*claim_fn)(struct fsck *c, uint64_t ino, enum claim_kind kind,
			uint32_t idx, uint64_t start, uint64_t len, void *arg);

static int inode_claims(struct fsck *c, uint64_t ino,
			const struct daxfs_dinode *d, const struct extent *e,
			uint32_t n, claim_fn fn, void *arg)
{
	uint16_t st = c->istate[ino];
	int ret = 0;

	if (d->ext_block && !(st & IS_EDROP))
		ret = fn(c, ino, CLAIM_ARRAY, 0, d->ext_block, d->ext_blocks,
			 arg);
	for (uint32_t k = 0; k < n && !ret; k++)
		ret = fn(c, ino, CLAIM_DATA, k, e[k].pblk, e[k].len, arg);
	if (!ret && d->xattr_block && !(st & IS_XDROP))
		ret = fn(c, ino, CLAIM_XATTR, 0, d->xattr_block, 1, arg);
	return ret;
}

/* claim_cb -- inode_claims callback: claim (and record clashes if arg) */
static int claim_cb(struct fsck *c, uint64_t ino, enum claim_kind kind,
		    uint32_t idx, uint64_t start, uint64_t len, void *arg)
{
	return claim(c, ino, kind, idx, start, len, arg != NULL);
}

/* bad_inode -- a slot that cannot be trusted: cleared by a repair */
static int bad_inode(struct fsck *c, uint64_t ino,
		     const struct daxfs_dinode *d, const char *msg)
{
	int ret = c->repair ? fsck_inode_clear(c, ino, d->generation) : 0;

	c->istate[ino] = IS_BAD;
	if (ino == DAXFS_ROOT_INO)
		c->root_bad = true;
	fsck_problem(c, ret, ino == DAXFS_ROOT_INO ?
		     "cleared; a new root directory is made" : "cleared",
		     "%s", msg);
	return c->fatal;
}

/* dir_shape -- blocks contiguous from 0 and size == blocks * 4096 */
static void dir_shape(struct fsck *c, uint64_t ino, struct daxfs_dinode *d,
		      uint32_t *n, const struct extent *e, bool *dirty)
{
	const uint64_t limit = UINT32_MAX / DAXFS_SLOTS_PER_BLOCK;
	uint64_t lb = 0;
	uint32_t k = 0;

	while (k < *n && e[k].lblk == lb && lb + e[k].len <= limit)
		lb += e[k++].len;
	if (k < *n) {
		fsck_problem(c, 0, "blocks dropped", "directory %llu: its "
			     "blocks are not contiguous from file block %llu "
			     "on (%u of %u extents)", (unsigned long long)ino,
			     (unsigned long long)lb, *n - k, *n);
		if (!d->ext_block)
			memset(d->inl + (size_t)k * EXTSZ, 0,
			       (size_t)(DAXFS_INLINE_EXTENTS - k) * EXTSZ);
		d->nextents = k;
		*n = k;
		*dirty = true;
	}
	if (d->size != FS_BLOCK_OFF(lb)) {
		fsck_problem(c, 0, NULL, "directory %llu: size %llu, expected "
			     "%llu", (unsigned long long)ino,
			     (unsigned long long)d->size,
			     (unsigned long long)FS_BLOCK_OFF(lb));
		d->size = FS_BLOCK_OFF(lb);
		*dirty = true;
	}
}

/* add_dir -- remember a directory for the later passes (takes e) */
static int add_dir(struct fsck *c, uint64_t ino, const struct daxfs_dinode *d,
		   struct extent *e, uint32_t n)
{
	struct fdir *f;

	if (c->ndirs == c->dirs_cap) {
		uint64_t cap = c->dirs_cap ? c->dirs_cap * 2 : 64;
		struct fdir *v = realloc(c->dirs, cap * sizeof(*v));

		if (!v) {
			free(e);
			return fsck_fail(c, -ENOMEM);
		}
		c->dirs = v;
		c->dirs_cap = cap;
	}
	f = &c->dirs[c->ndirs++];
	memset(f, 0, sizeof(*f));
	f->ino = ino;
	f->parent = d->parent;
	f->nb = d->size / BS;
	f->nlink = d->nlink;
	f->ext = e;
	f->next = n;
	return 0;
}

/* check_xattr -- the xattr block must be a good one of this inode */
static int check_xattr(struct fsck *c, uint64_t ino, struct daxfs_dinode *d,
		       bool *dirty)
{
	uint8_t *buf;
	int ret;

	if (!d->xattr_block)
		return 0;
	buf = malloc(BS);
	if (!buf)
		return fsck_fail(c, -ENOMEM);
	ret = fsck_read(c, FS_BLOCK_OFF(d->xattr_block), buf, BS);
	if (!ret && xattr_block_check(buf, ino)) {
		fsck_problem(c, 0, "dropped", "inode %llu: xattr block %llu "
			     "is damaged", (unsigned long long)ino,
			     (unsigned long long)d->xattr_block);
		d->xattr_block = 0;
		c->istate[ino] |= IS_XDROP;
		*dirty = true;
	}
	free(buf);
	return ret ? fsck_fail(c, ret) : 0;
}

/* scan_inode -- every check of one slot; claims its blocks */
static int scan_inode(struct fsck *c, uint64_t ino, struct daxfs_dinode *d)
{
	struct extent *e = NULL;
	uint32_t n = 0, type;
	uint64_t want;
	bool dirty = false;
	int ret;

	if (mem_is_zero(d, sizeof(*d)))
		return 0;
	if (ino == 0) {
		static const struct daxfs_dinode zero;

		ret = c->repair ? fsck_write(c, c->itable_off, &zero,
					     sizeof(zero)) : 0;
		fsck_problem(c, ret, "cleared", "inode 0 is reserved but "
			     "not empty");
		return c->fatal;
	}
	if (d->mode)
		c->used_read++;
	daxfs_clearerr();
	if (inode_check(d, ino, &c->geo))
		return bad_inode(c, ino, d, daxfs_errmsg(EUCLEAN));
	if (!d->mode)
		return 0;
	type = d->mode & DAXFS_S_IFMT;
	if (ino == DAXFS_ROOT_INO && type != DAXFS_S_IFDIR)
		return bad_inode(c, ino, d, "root inode is not a directory");
	daxfs_clearerr();
	ret = fsck_ext_read(c, d, ino, &e, &n);
	if (ret == -EUCLEAN)
		return bad_inode(c, ino, d, daxfs_errmsg(ret));
	if (ret)
		return fsck_fail(c, ret);
	c->istate[ino] = mode_to_dtype(d->mode);
	/*
	 * An orphan's deletion releases its blocks before it clears the
	 * inode, in separate transactions; a crash between leaves a
	 * directory whose size still counts freed blocks or a symlink
	 * without its target block.  The mount finishes the deletion, so
	 * that is no error.
	 */
	switch (type) {
	case DAXFS_S_IFDIR: {
		uint64_t mapped = n ? FS_BLOCK_OFF(e[n - 1].lblk +
						   e[n - 1].len) : 0;

		/* written back by a repair (not reported): a directory
		 * with nlink 0 may yet turn out linked, and pass 4 then
		 * fixes its nlink on top of this dinode */
		if (!d->nlink && d->size > mapped) {
			d->size = mapped;
			dirty = true;
		}
		dir_shape(c, ino, d, &n, e, &dirty);
		break;
	}
	case DAXFS_S_IFLNK:
		if (d->size == 0 || d->size > DAXFS_SYMLINK_MAX) {
			free(e);
			return bad_inode(c, ino, d, "symlink has an invalid "
					 "target length");
		}
		if (!(d->flags & DAXFS_IF_INLINE) && !(n && e[0].lblk == 0) &&
		    d->nlink) {
			free(e);
			return bad_inode(c, ino, d, "symlink target block is "
					 "missing");
		}
		break;
	case DAXFS_S_IFREG:
		break;
	default:
		if (n || d->ext_block) {
			fsck_problem(c, 0, "blocks dropped", "inode %llu: a "
				     "device, fifo or socket owns data blocks",
				     (unsigned long long)ino);
			memset(d->inl, 0, sizeof(d->inl));
			d->nextents = 0;
			d->ext_block = 0;
			d->ext_blocks = 0;
			c->istate[ino] |= IS_EDROP;
			n = 0;
			dirty = true;
		}
		break;
	}
	if (check_xattr(c, ino, d, &dirty) ||
	    inode_claims(c, ino, d, e, n, claim_cb, c)) {
		free(e);
		return c->fatal;
	}
	want = (d->ext_block ? d->ext_blocks : 0) + (d->xattr_block ? 1 : 0);
	for (uint32_t k = 0; k < n; k++)
		want += e[k].len;
	if (d->blocks != want) {
		fsck_problem(c, 0, NULL, "inode %llu: block count %llu, found "
			     "%llu", (unsigned long long)ino,
			     (unsigned long long)d->blocks,
			     (unsigned long long)want);
		d->blocks = want;
		dirty = true;
	}
	if (dirty && c->repair && fsck_inode_write(c, ino, d)) {
		free(e);
		return c->fatal ? c->fatal : fsck_fail(c, -EIO);
	}
	c->istate[ino] |= IS_USED | (d->nlink ? 0 : IS_ORPHAN);
	if (type == DAXFS_S_IFDIR)
		return add_dir(c, ino, d, e, n);
	free(e);
	return 0;
}

/*
 * new_root -- the root directory is gone: an empty one in its place.
 * Whatever it held shows up as unconnected and goes to /lost+found.
 */
static int new_root(struct fsck *c)
{
	struct daxfs_dinode d;
	struct fdir root;
	int ret = 0;

	if (c->repair)
		ret = fsck_make_dir(c, DAXFS_ROOT_INO, DAXFS_ROOT_INO, 0755,
				    (uint32_t)getuid(), (uint32_t)getgid());
	if (!c->root_bad)
		fsck_problem(c, ret, "created", "root directory is missing");
	if (ret)
		return c->fatal ? c->fatal : ret;
	memset(&d, 0, sizeof(d));
	d.parent = DAXFS_ROOT_INO;
	d.nlink = 2;
	if (add_dir(c, DAXFS_ROOT_INO, &d, NULL, 0))
		return c->fatal;
	/* keep dirs sorted: the root, inode 1, goes first */
	root = c->dirs[c->ndirs - 1];
	memmove(&c->dirs[1], &c->dirs[0], (c->ndirs - 1) * sizeof(*c->dirs));
	c->dirs[0] = root;
	c->istate[DAXFS_ROOT_INO] = IS_USED | IS_NEW | DT_DIR_;
	return 0;
}

/* fsck_pass_inodes -- pass 1: every slot of the inode table */
int fsck_pass_inodes(struct fsck *c)
{
	struct daxfs_dinode *buf = malloc(BATCH * sizeof(*buf));
	int ret = 0;

	if (!buf)
		return fsck_fail(c, -ENOMEM);
	for (uint64_t base = 0; base < c->ninodes && !ret; base += BATCH) {
		uint64_t n = MIN(BATCH, c->ninodes - base);
		uint64_t off = c->itable_off + base * DAXFS_INODE_SIZE;
		uint64_t next = region_next_data(c->r, off, c->itable_off +
					c->ninodes * DAXFS_INODE_SIZE);

		/* a hole in a sparse file region holds only all-zero
		 * (never used) slots -- unless a pending journal record
		 * lands there, which the overlay in fsck_read() applies */
		if (!c->nrecs && next >= off + BATCH * DAXFS_INODE_SIZE) {
			base = ALIGN_DOWN((next - c->itable_off) /
					  DAXFS_INODE_SIZE, BATCH) - BATCH;
			continue;
		}
		ret = fsck_read(c, off, buf, n * DAXFS_INODE_SIZE);
		if (ret) {
			ret = fsck_fail(c, ret);
			break;
		}
		for (uint64_t k = 0; k < n && !ret; k++)
			ret = scan_inode(c, base + k, &buf[k]);
	}
	free(buf);
	if (!ret && !(c->istate[DAXFS_ROOT_INO] & IS_USED))
		ret = new_root(c);
	return ret ? ret : c->fatal;
}

/* inode_extents -- a used inode's dinode and extents, as repaired */
static int inode_extents(struct fsck *c, uint64_t ino,
			 struct daxfs_dinode *d, struct extent **e,
			 uint32_t *n)
{
	struct fdir *f;
	int ret;

	*e = NULL;
	*n = 0;
	ret = fsck_inode_read(c, ino, d);
	if (ret)
		return fsck_fail(c, ret);
	if (c->istate[ino] & IS_EDROP)
		return 0;
	f = (c->istate[ino] & IS_TYPE) == DT_DIR_ ? fsck_dir_find(c, ino) :
						    NULL;
	if (f) {
		if (!f->next)
			return 0;
		*e = malloc(f->next * sizeof(**e));
		if (!*e)
			return fsck_fail(c, -ENOMEM);
		memcpy(*e, f->ext, f->next * sizeof(**e));
		*n = f->next;
		return 0;
	}
	ret = fsck_ext_read(c, d, ino, e, n);
	return ret ? fsck_fail(c, ret) : 0;
}

/* claim_ord -- the order inode_claims visits an inode's claims in */
static uint32_t claim_ord(enum claim_kind kind, uint32_t idx)
{
	return kind == CLAIM_ARRAY ? 0 : kind == CLAIM_DATA ? idx + 1 :
	       UINT32_MAX;
}

/* name_cb -- an earlier claim overlapping a conflict names its owner */
static int name_cb(struct fsck *c, uint64_t ino, enum claim_kind kind,
		   uint32_t idx, uint64_t start, uint64_t len, void *arg)
{
	(void)arg;
	for (uint64_t k = 0; k < c->nconf; k++) {
		struct fconflict *x = &c->conf[k];

		if (x->other || start >= x->pblk + x->len ||
		    x->pblk >= start + len)
			continue;
		if (ino < x->ino || (ino == x->ino &&
		     claim_ord(kind, idx) < claim_ord(x->kind, x->idx)))
			x->other = ino;
	}
	return 0;
}

/* name_owners -- find an earlier owner for each conflict (a rescan) */
static int name_owners(struct fsck *c)
{
	for (uint64_t ino = 1; ino < c->ninodes && !c->fatal; ino++) {
		struct daxfs_dinode d;
		struct extent *e;
		uint32_t n;

		if (!(c->istate[ino] & IS_USED) || (c->istate[ino] & IS_NEW))
			continue;
		if (inode_extents(c, ino, &d, &e, &n))
			break;
		inode_claims(c, ino, &d, e, n, name_cb, NULL);
		free(e);
	}
	return c->fatal;
}

/* clone_claim -- give a conflicting claim its own copy of the blocks */
static int clone_claim(struct fsck *c, const struct fconflict *x, uint64_t *to)
{
	struct daxfs_dinode d;
	struct fdir *f;
	int ret;

	ret = fsck_alloc_run(c, 0, x->len, to);
	if (ret)
		return ret;
	ret = fsck_copy_blocks(c, x->pblk, *to, x->len);
	if (!ret)
		ret = fsck_inode_read(c, x->ino, &d);
	if (ret)
		return ret;
	fsck_take(c, *to, x->len);
	switch (x->kind) {
	case CLAIM_ARRAY:
		d.ext_block = *to;
		break;
	case CLAIM_XATTR:
		d.xattr_block = *to;
		break;
	case CLAIM_DATA:
		if (x->idx >= d.nextents)
			return -EUCLEAN;
		if (d.ext_block) {
			ret = fsck_write(c, FS_BLOCK_OFF(d.ext_block) +
					 sizeof(struct daxfs_dextarray) +
					 x->idx * EXTSZ +
					 offsetof(struct daxfs_dextent, pblk),
					 to, sizeof(*to));
			if (ret)
				return ret;
		} else {
			struct daxfs_dextent de;

			memcpy(&de, d.inl + x->idx * EXTSZ, EXTSZ);
			de.pblk = *to;
			memcpy(d.inl + x->idx * EXTSZ, &de, EXTSZ);
		}
		f = fsck_dir_find(c, x->ino);
		if (f && x->idx < f->next)
			f->ext[x->idx].pblk = *to;
		break;
	}
	ret = fsck_inode_write(c, x->ino, &d);
	if (ret)
		return ret;
	/* blocks only this claim held are nobody's now */
	for (uint64_t b = x->pblk; b < x->pblk + x->len; b++)
		if (!bitmap_test(c->dup, b))
			fsck_release(c, b, 1);
	return 0;
}

/* fsck_pass_conflicts -- pass 1b: blocks owned twice */
int fsck_pass_conflicts(struct fsck *c)
{
	if (!c->nconf)
		return 0;
	if (c->nconf <= NAME_OWNERS_MAX && name_owners(c))
		return c->fatal;
	for (uint64_t k = 0; k < c->nconf && !c->fatal; k++) {
		const struct fconflict *x = &c->conf[k];
		char what[96], other[48], how[96] = "";
		uint64_t to = 0;
		int ret = 0;

		if (x->kind == CLAIM_DATA)
			snprintf(what, sizeof(what), "extent %u (blocks "
				 "%llu-%llu)", x->idx,
				 (unsigned long long)x->pblk,
				 (unsigned long long)(x->pblk + x->len - 1));
		else if (x->kind == CLAIM_ARRAY)
			snprintf(what, sizeof(what), "extent array (blocks "
				 "%llu-%llu)", (unsigned long long)x->pblk,
				 (unsigned long long)(x->pblk + x->len - 1));
		else
			snprintf(what, sizeof(what), "xattr block %llu",
				 (unsigned long long)x->pblk);
		if (x->other)
			snprintf(other, sizeof(other), "inode %llu",
				 (unsigned long long)x->other);
		else
			snprintf(other, sizeof(other), "another inode");
		if (c->repair) {
			ret = clone_claim(c, x, &to);
			if (!ret)
				snprintf(how, sizeof(how), "copied to blocks "
					 "%llu-%llu", (unsigned long long)to,
					 (unsigned long long)(to + x->len - 1));
			else if (ret == -ENOSPC)
				snprintf(how, sizeof(how), "no free space for "
					 "a copy");
		}
		fsck_problem(c, ret, how[0] ? how : NULL, "inode %llu: %s "
			     "shares blocks with %s",
			     (unsigned long long)x->ino, what, other);
	}
	return c->fatal;
}

/*
 * fsck_rebuild_owned -- after repairs, the shadow bitmap again from what
 * the inodes now hold.
 */
int fsck_rebuild_owned(struct fsck *c)
{
	memset(c->owned, 0, c->nwords * 8);
	fsck_own_fixed(c);
	for (uint64_t ino = 1; ino < c->ninodes && !c->fatal; ino++) {
		struct daxfs_dinode d;
		struct extent *e;
		uint32_t n;

		if (!(c->istate[ino] & IS_USED))
			continue;
		if (inode_extents(c, ino, &d, &e, &n))
			break;
		inode_claims(c, ino, &d, e, n, claim_cb, NULL);
		free(e);
	}
	return c->fatal;
}

/* release_cb -- inode_claims callback: the blocks become free */
static int release_cb(struct fsck *c, uint64_t ino, enum claim_kind kind,
		      uint32_t idx, uint64_t start, uint64_t len, void *arg)
{
	(void)ino; (void)kind; (void)idx; (void)arg;
	fsck_release(c, start, len);
	return 0;
}

/* fsck_free_inode -- free an orphan and its blocks (repair) */
int fsck_free_inode(struct fsck *c, uint64_t ino)
{
	struct daxfs_dinode d;
	struct extent *e;
	uint32_t n;
	int ret;

	ret = inode_extents(c, ino, &d, &e, &n);
	if (ret)
		return ret;
	inode_claims(c, ino, &d, e, n, release_cb, NULL);
	free(e);
	ret = fsck_inode_clear(c, ino, d.generation);
	if (!ret)
		c->istate[ino] = 0;
	return ret;
}
