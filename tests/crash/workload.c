/*
 * workload.c -- seeded random operations through namei.h, and the record
 * of which files' data is not yet durable.
 *
 * Each step picks one operation against the current model state (so it
 * mostly names things that exist, and sometimes things that do not, or
 * the wrong kind: failing operations must change nothing).  Inodes that
 * an operation returns carry a lookup reference; the step drops it with
 * eviction, as the kernel does when it forgets an inode.
 *
 * Data durability (model.c keeps the versions): after a write the next
 * step is an fsync of that file with probability fsync_pct, and always
 * once a file has collected too many unsynced versions.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "crashsim.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define MAX_HELD	4
#define MAX_DEPTH	4
#define MAX_ENTRIES	400
#define GROW_TO		200	/* creates are favoured below this */

struct workload {
	struct daxfs *fs;
	struct rng g;
	struct wl_opts o;
	uint8_t *buf;
	struct vtrack *vt;
	/* this step */
	uint64_t touched_ino;
	enum vt_touch touched;
	uint64_t fsync_next;	/* queued fsync, 0 none */
	/* lookup references kept, as the kernel keeps them for open files:
	 * an unlink then leaves an orphan, freed when it is let go */
	uint64_t held[MAX_HELD];
	uint32_t nheld;
};

struct workload *wl_new(struct daxfs *fs, const struct wl_opts *o)
{
	struct workload *w = xcalloc(1, sizeof(*w));

	w->fs = fs;
	w->o = *o;
	w->g.s = o->seed;
	w->buf = xmalloc(o->max_file + DAXFS_BLOCK_SIZE);
	w->vt = vt_new();
	return w;
}

void wl_free(struct workload *w)
{
	for (uint32_t k = 0; k < w->nheld; k++)
		inode_forget(w->fs, w->held[k], 1, true);
	vt_free(w->vt);
	free(w->buf);
	free(w);
}

/* wl_release -- before an unmount: let go of the kept references (an
 * orphan is freed now) */
void wl_release(struct workload *w, char *desc, size_t dl)
{
	snprintf(desc, dl, "remount (let go of %u inodes, unmount cleanly, "
		 "mount)", w->nheld);
	while (w->nheld)
		inode_forget(w->fs, w->held[--w->nheld], 1, true);
	w->touched = T_SYNC_ALL;
	w->touched_ino = 0;
	w->fsync_next = 0;
}

/* wl_remounted -- carry on with the filesystem mounted again */
void wl_remounted(struct workload *w, struct daxfs *fs)
{
	w->fs = fs;
}

/* ---- choosing things ---------------------------------------------------- */

static uint64_t below(struct workload *w, uint64_t n)
{
	return n ? rng_below(&w->g, n) : 0;
}

static bool chance(struct workload *w, unsigned pct)
{
	return below(w, 100) < pct;
}

enum want { W_ANY, W_NONROOT, W_DIR, W_REG, W_NONDIR };

static bool fits(const struct dent *e, enum want k)
{
	switch (k) {
	case W_ANY:
		return true;
	case W_NONROOT:
		return e->ino != DAXFS_ROOT_INO;
	case W_DIR:
		return S_ISDIR(e->mode);
	case W_REG:
		return S_ISREG(e->mode);
	case W_NONDIR:
		return !S_ISDIR(e->mode);
	}
	return false;
}

/* pick -- a random entry of the kind, or NULL */
static const struct dent *pick(struct workload *w, const struct dump *d,
			       enum want k)
{
	uint32_t n = 0, at;

	for (uint32_t x = 0; x < d->n; x++)
		n += fits(&d->v[x], k);
	if (!n)
		return NULL;
	at = (uint32_t)below(w, n);
	for (uint32_t x = 0; x < d->n; x++)
		if (fits(&d->v[x], k) && at-- == 0)
			return &d->v[x];
	return NULL;
}

static int depth(const char *path)
{
	int n = 0;

	for (; *path; path++)
		n += *path == '/';
	return n;
}

/* parent_ino -- the directory holding path, and the last component */
static uint64_t parent_ino(const struct dump *d, const char *path,
			   const char **name)
{
	const char *slash = strrchr(path, '/');
	size_t pl = (size_t)(slash - path);

	*name = slash + 1;
	if (pl == 0)
		return DAXFS_ROOT_INO;
	for (uint32_t x = 0; x < d->n; x++)
		if (strlen(d->v[x].path) == pl &&
		    !strncmp(d->v[x].path, path, pl))
			return d->v[x].ino;
	return DAXFS_ROOT_INO;		/* not reached: parents are dumped */
}

/* a directory to create in, not too deep; the root often, so that one
 * directory grows past a block */
static const struct dent *pick_dir(struct workload *w, const struct dump *d)
{
	if (chance(w, 50))
		return &d->v[0];	/* "/" sorts first */
	for (int tries = 0; tries < 8; tries++) {
		const struct dent *e = pick(w, d, W_DIR);

		if (e && (e->ino == DAXFS_ROOT_INO ||
			  depth(e->path) < MAX_DEPTH))
			return e;
	}
	return &d->v[0];		/* "/" sorts first */
}

/* new_name -- mostly short names from a small pool (so renames replace
 * and creates collide), some from a larger one (so directories grow past
 * a block), sometimes long ones (multi-slot entries) */
static void new_name(struct workload *w, char *out, size_t len)
{
	uint64_t r = below(w, 100);

	if (r < 8) {
		size_t n = 60 + below(w, 196);

		for (size_t k = 0; k < n && k + 1 < len; k++)
			out[k] = (char)('a' + (k + n) % 26);
		out[MIN(n, len - 1)] = '\0';
		out[0] = (char)('A' + below(w, 3));
		return;
	}
	if (r < 30) {
		snprintf(out, len, "e%u", (unsigned)below(w, 150));
		return;
	}
	snprintf(out, len, "%c%u", "fdsn"[below(w, 4)],
		 (unsigned)below(w, 10));
}

static void fill(struct workload *w, uint8_t *p, uint64_t n)
{
	uint64_t v = rng_next(&w->g);
	int kind = (int)below(w, 3);

	for (uint64_t k = 0; k < n; k++) {
		if (kind == 0 && k % 8 == 0)
			v = rng_next(&w->g);
		p[k] = kind == 2 ? (uint8_t)(v + k / 512) :
		       (uint8_t)(v >> (k % 8 * 8));
	}
}

static const char *err_str(int ret)
{
	static char b[32];

	if (ret >= 0) {
		snprintf(b, sizeof(b), "%d", ret);
		return b;
	}
	snprintf(b, sizeof(b), "%s", strerror(-ret));
	return b;
}

static void forget(struct workload *w, struct inode *i, int ret)
{
	if (!ret && i)
		inode_forget(w->fs, i->ino, 1, true);
}

/* ---- the operations ----------------------------------------------------- */

static int op_create(struct workload *w, const struct dump *d, char *desc,
		     size_t dl)
{
	const struct dent *dir = pick_dir(w, d);
	struct fs_cred c = { (uint32_t)below(w, 3), (uint32_t)below(w, 3) };
	struct inode *i = NULL;
	char name[256];
	int r = (int)below(w, 100), ret;
	const char *what;

	new_name(w, name, sizeof(name));
	if (r < 60) {
		what = "create";
		ret = fs_mknod(w->fs, dir->ino, name, S_IFREG | 0644, 0, &c,
			       &i);
	} else if (r < 80) {
		what = "mkdir";
		ret = fs_mkdir(w->fs, dir->ino, name, 0755, &c, &i);
	} else if (r < 85) {
		uint32_t m[] = { S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK };

		what = "mknod";
		ret = fs_mknod(w->fs, dir->ino, name, m[below(w, 4)] | 0600,
			       0x0801 + below(w, 100), &c, &i);
	} else {
		char t[DAXFS_SYMLINK_MAX + 1];
		size_t n = chance(w, 70) ? 1 + below(w, DAXFS_INLINE_BYTES) :
			   DAXFS_INLINE_BYTES + 1 +
			   below(w, DAXFS_SYMLINK_MAX - DAXFS_INLINE_BYTES);

		for (size_t k = 0; k < n; k++)
			t[k] = (char)('a' + below(w, 26));
		t[n] = '\0';
		what = "symlink";
		ret = fs_symlink(w->fs, dir->ino, name, t, &c, &i);
	}
	snprintf(desc, dl, "%s %s%s%.40s -> %s", what, dir->path,
		 dir->path[1] ? "/" : "", name, err_str(ret));
	forget(w, i, ret);
	return ret;
}

static int op_link(struct workload *w, const struct dump *d, char *desc,
		   size_t dl)
{
	const struct dent *src = pick(w, d, W_NONDIR);
	const struct dent *dir = pick_dir(w, d);
	struct inode *i = NULL;
	char name[256];
	int ret;

	if (!src)
		return -ENOENT;
	new_name(w, name, sizeof(name));
	ret = fs_link(w->fs, src->ino, dir->ino, name, &i);
	snprintf(desc, dl, "link %s to %s%s%.40s -> %s", src->path, dir->path,
		 dir->path[1] ? "/" : "", name, err_str(ret));
	forget(w, i, ret);
	return ret;
}

/* an empty directory other than the root, or NULL */
static const struct dent *pick_empty_dir(struct workload *w,
					 const struct dump *d)
{
	for (int tries = 0; tries < 8; tries++) {
		const struct dent *e = pick(w, d, W_DIR);
		size_t l;
		bool empty = true;

		if (!e || e->ino == DAXFS_ROOT_INO)
			continue;
		l = strlen(e->path);
		for (uint32_t x = 0; x < d->n && empty; x++)
			empty = !(strncmp(d->v[x].path, e->path, l) == 0 &&
				  d->v[x].path[l] == '/');
		if (empty)
			return e;
	}
	return NULL;
}

/* a held file that still has a name, or NULL */
static const struct dent *pick_held(struct workload *w, const struct dump *d)
{
	if (!w->nheld)
		return NULL;
	return dump_find_ino(d, w->held[below(w, w->nheld)]);
}

static int op_remove(struct workload *w, const struct dump *d, char *desc,
		     size_t dl)
{
	int r = (int)below(w, 100);
	const struct dent *e = r < 15 ? pick_empty_dir(w, d) :
			       r < 35 ? pick_held(w, d) : NULL;

	if (!e)
		e = pick(w, d, chance(w, 75) ? W_NONDIR : W_NONROOT);
	const char *name;
	uint64_t p;
	int ret;

	if (!e)
		return -ENOENT;
	p = parent_ino(d, e->path, &name);
	if (S_ISDIR(e->mode))
		ret = fs_rmdir(w->fs, p, name);
	else
		ret = fs_unlink(w->fs, p, name);
	snprintf(desc, dl, "%s %s -> %s", S_ISDIR(e->mode) ? "rmdir" :
		 "unlink", e->path, err_str(ret));
	return ret;
}

static int op_rename(struct workload *w, const struct dump *d, char *desc,
		     size_t dl)
{
	const struct dent *src = pick(w, d, W_NONROOT), *dst = NULL, *nd;
	const char *sname, *dname;
	char name[256];
	uint64_t sp, dp;
	unsigned flags = 0;
	int r = (int)below(w, 100), ret;
	const char *kind;

	if (!src)
		return -ENOENT;
	sp = parent_ino(d, src->path, &sname);
	if (r < 45) {
		/* to a new name, in the same directory or another */
		nd = chance(w, 50) ? pick_dir(w, d) : NULL;
		new_name(w, name, sizeof(name));
		dname = name;
		dp = nd ? nd->ino : sp;
		kind = nd ? "across" : "plain";
		if (chance(w, 20))
			flags = RENAME_NOREPLACE;
	} else {
		/* over an existing entry: replace or exchange */
		dst = pick(w, d, S_ISDIR(src->mode) && chance(w, 70) ? W_DIR :
				 W_NONROOT);
		if (!dst || dst->ino == DAXFS_ROOT_INO)
			return -ENOENT;
		dp = parent_ino(d, dst->path, &dname);
		snprintf(name, sizeof(name), "%s", dname);
		dname = name;
		flags = r < 75 ? 0 : r < 95 ? RENAME_EXCHANGE :
			RENAME_NOREPLACE;
		kind = flags == RENAME_EXCHANGE ? "exchange" : "replace";
	}
	ret = fs_rename(w->fs, sp, sname, dp, dname, flags);
	snprintf(desc, dl, "rename(%s%s) %s -> dir %llu/%.40s -> %s", kind,
		 flags == RENAME_NOREPLACE ? ",noreplace" : "", src->path,
		 (unsigned long long)dp, dname, err_str(ret));
	return ret;
}

static uint64_t write_len(struct workload *w)
{
	switch (below(w, 9)) {
	case 8:
		return 1 + below(w, w->o.max_file / 2);	/* big */
	case 0: case 1:
		return 1 + below(w, 64);
	case 2: case 3:
		return 65 + below(w, 4032);
	case 4:
		return DAXFS_BLOCK_SIZE * (1 + below(w, 4));
	case 5: case 6:
		return 4096 + below(w, 28 << 10);
	default:
		return (32 << 10) + below(w, 224 << 10);
	}
}

static int op_write(struct workload *w, const struct dump *d, char *desc,
		    size_t dl)
{
	const struct dent *e = pick(w, d, W_REG);
	uint64_t len = write_len(w), off;
	const char *kind;
	int ret;

	if (!e)
		return -ENOENT;
	switch (below(w, 6)) {
	case 0:
		kind = "overwrite";
		off = below(w, e->size + 1);
		break;
	case 5:
		/* a small piece anywhere: files with many extents */
		kind = "scattered";
		off = ALIGN_DOWN(below(w, w->o.max_file), DAXFS_BLOCK_SIZE);
		len = MIN(len, DAXFS_BLOCK_SIZE);
		break;
	case 1:
		kind = "aligned";
		off = ALIGN_DOWN(below(w, e->size + 8192), DAXFS_BLOCK_SIZE);
		break;
	case 2:
		kind = "sparse";
		off = e->size + 1 + below(w, 64 << 10);
		break;
	default:
		kind = "append";
		off = e->size;
		break;
	}
	if (off >= w->o.max_file)
		off = below(w, w->o.max_file / 2);
	len = MIN(len, w->o.max_file - off);
	fill(w, w->buf, len);
	ret = fs_write(w->fs, e->ino, off, w->buf, len);
	snprintf(desc, dl, "write(%s) %s off=%llu len=%llu -> %s", kind,
		 e->path, (unsigned long long)off, (unsigned long long)len,
		 err_str(ret));
	w->touched_ino = e->ino;
	w->touched = T_WRITE;
	return ret < 0 ? ret : 0;
}

static int op_truncate(struct workload *w, const struct dump *d, char *desc,
		       size_t dl)
{
	const struct dent *e = pick(w, d, W_REG);
	struct fs_setattr a = { .valid = SETATTR_SIZE };
	int ret;

	if (!e)
		return -ENOENT;
	switch (below(w, 5)) {
	case 0:
		a.size = 0;
		break;
	case 1:
		a.size = e->size / 2;
		break;
	case 2:
		a.size = e->size + below(w, 3 * DAXFS_BLOCK_SIZE);
		break;
	case 3:
		a.size = below(w, e->size + 1);
		break;
	default:
		a.size = below(w, w->o.max_file);
		break;
	}
	ret = fs_setattr(w->fs, e->ino, &a, NULL);
	snprintf(desc, dl, "truncate %s %llu -> %llu: %s", e->path,
		 (unsigned long long)e->size, (unsigned long long)a.size,
		 err_str(ret));
	w->touched_ino = e->ino;
	w->touched = T_EXACT;
	return ret;
}

static int op_fallocate(struct workload *w, const struct dump *d, char *desc,
			size_t dl)
{
	const struct dent *e = pick(w, d, W_REG);
	int r = (int)below(w, 3), mode;
	uint64_t off, len;
	int ret;

	if (!e)
		return -ENOENT;
	if (r == 2 && e->size) {
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		off = below(w, e->size);
		len = 1 + below(w, e->size - off + DAXFS_BLOCK_SIZE);
	} else {
		mode = r == 1 ? FALLOC_FL_KEEP_SIZE : 0;
		off = below(w, e->size + 16384);
		len = 1 + below(w, chance(w, 80) ? 64 << 10 : w->o.max_file);
		if (off + len > w->o.max_file)
			off = 0, len = MIN(len, w->o.max_file);
	}
	ret = fs_fallocate(w->fs, e->ino, mode, off, len);
	snprintf(desc, dl, "fallocate(%s) %s off=%llu len=%llu -> %s",
		 mode & FALLOC_FL_PUNCH_HOLE ? "punch" :
		 mode ? "keep_size" : "extend", e->path,
		 (unsigned long long)off, (unsigned long long)len,
		 err_str(ret));
	w->touched_ino = e->ino;
	w->touched = mode & FALLOC_FL_PUNCH_HOLE ? T_PUNCH : T_EXACT;
	return ret;
}

static int op_fsync(struct workload *w, const struct dump *d, uint64_t ino,
		    char *desc, size_t dl)
{
	const struct dent *e = ino ? dump_find_ino(d, ino) : pick(w, d, W_ANY);
	int ret;

	if (!e)
		return -ENOENT;
	ret = fs_fsync(w->fs, e->ino, chance(w, 30));
	snprintf(desc, dl, "fsync %s -> %s", e->path, err_str(ret));
	if (!ret && S_ISREG(e->mode)) {
		w->touched_ino = e->ino;
		w->touched = T_SYNC;
	}
	return ret;
}

static int op_setattr(struct workload *w, const struct dump *d, char *desc,
		      size_t dl)
{
	const struct dent *e = pick(w, d, W_ANY);
	struct fs_setattr a = { 0 };
	int ret;

	if (!e)
		return -ENOENT;
	switch (below(w, 4)) {
	case 0:
	case 1:
		a.valid = SETATTR_MODE;
		a.mode = (uint32_t)below(w, 07777 + 1);
		break;
	case 2:
		a.valid = SETATTR_UID | SETATTR_GID;
		a.uid = (uint32_t)below(w, 5);
		a.gid = (uint32_t)below(w, 5);
		break;
	default:
		a.valid = SETATTR_MTIME | SETATTR_ATIME_NOW;
		a.mtime.tv_sec = (time_t)below(w, 1u << 31);
		break;
	}
	ret = fs_setattr(w->fs, e->ino, &a, NULL);
	snprintf(desc, dl, "setattr(%#x) %s mode=0%o uid=%u gid=%u -> %s",
		 a.valid, e->path, a.mode, a.uid, a.gid, err_str(ret));
	return ret;
}

static int op_xattr(struct workload *w, const struct dump *d, char *desc,
		    size_t dl)
{
	const struct dent *e = pick(w, d, W_ANY);
	char name[32];
	int ret;

	if (!e)
		return -ENOENT;
	snprintf(name, sizeof(name), "user.%c%s", (char)('a' + below(w, 6)),
		 chance(w, 10) ? "-a-longer-attribute-name" : "");
	if (chance(w, 25)) {
		ret = fs_removexattr(w->fs, e->ino, name);
		snprintf(desc, dl, "removexattr %s %s -> %s", e->path, name,
			 err_str(ret));
	} else {
		uint64_t len = chance(w, 80) ? below(w, 100) : below(w, 1500);
		int flags = chance(w, 80) ? 0 : chance(w, 50) ? XATTR_CREATE :
			    XATTR_REPLACE;

		fill(w, w->buf, len);
		ret = fs_setxattr(w->fs, e->ino, name, w->buf, len, flags);
		snprintf(desc, dl, "setxattr %s %s len=%llu flags=%d -> %s",
			 e->path, name, (unsigned long long)len, flags,
			 err_str(ret));
	}
	return ret;
}

static int op_evict(struct workload *w, const struct dump *d, char *desc,
		    size_t dl)
{
	const struct dent *e = pick(w, d, W_ANY);
	int ret;

	if (!e)
		return -ENOENT;
	ret = inode_forget(w->fs, e->ino, 0, true);
	snprintf(desc, dl, "evict %s (as the kernel forgetting it) -> %s",
		 e->path, err_str(ret));
	return ret;
}

/* op_open -- keep a lookup reference, as the kernel does for an open file */
static int op_open(struct workload *w, const struct dump *d, char *desc,
		   size_t dl)
{
	const struct dent *e = pick(w, d, W_NONROOT);
	struct inode *i = NULL;
	const char *name;
	uint64_t p;
	int ret;

	if (!e || w->nheld == MAX_HELD)
		return -ENOENT;
	p = parent_ino(d, e->path, &name);
	ret = fs_lookup(w->fs, p, name, &i);
	snprintf(desc, dl, "open %s (keeps a reference) -> %s", e->path,
		 err_str(ret));
	if (!ret)
		w->held[w->nheld++] = i->ino;
	return ret;
}

/* op_close -- let go of a kept reference; an orphan is freed now */
static int op_close(struct workload *w, const struct dump *d, char *desc,
		    size_t dl)
{
	uint32_t k = (uint32_t)below(w, w->nheld);
	uint64_t ino;
	int ret;

	if (!w->nheld)
		return -ENOENT;
	ino = w->held[k];
	w->held[k] = w->held[--w->nheld];
	ret = inode_forget(w->fs, ino, 1, true);
	snprintf(desc, dl, "close inode %llu%s -> %s", (unsigned long long)ino,
		 dump_find_ino(d, ino) ? "" : " (unlinked: freed now)",
		 err_str(ret));
	return ret < 0 ? ret : 0;
}

/* wl_orphans -- kept inodes that have no name left */
uint32_t wl_orphans(struct workload *w)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < w->nheld; k++) {
		struct inode *i = inode_find(w->fs, w->held[k]);

		n += i && i->d.nlink == 0;
	}
	return n;
}

static int choose(struct workload *w, const struct dump *d, char *desc,
		  size_t dl)
{
	int r = (int)below(w, 100);

	if (d->n > MAX_ENTRIES && r < 40)
		return op_remove(w, d, desc, dl);
	if (r < 16 || d->n < 4 || (d->n < GROW_TO && chance(w, 12)))
		return op_create(w, d, desc, dl);
	if (r < 20)
		return op_link(w, d, desc, dl);
	if (r < 28)
		return op_remove(w, d, desc, dl);
	if (r < 40)
		return op_rename(w, d, desc, dl);
	if (r < 60)
		return op_write(w, d, desc, dl);
	if (r < 66)
		return op_truncate(w, d, desc, dl);
	if (r < 72)
		return op_fallocate(w, d, desc, dl);
	if (r < 78)
		return op_fsync(w, d, 0, desc, dl);
	if (r < 84)
		return op_setattr(w, d, desc, dl);
	if (r < 92)
		return op_xattr(w, d, desc, dl);
	if (r < 94)
		return op_open(w, d, desc, dl);
	if (r < 97)
		return op_close(w, d, desc, dl);
	return op_evict(w, d, desc, dl);
}

/* wl_step -- one operation; what it was in desc */
int wl_step(struct workload *w, const struct model *cur, char *desc,
	    size_t dl)
{
	const struct dump *d = &cur->d;
	uint64_t q = w->fsync_next;
	int ret;

	w->touched = T_NONE;
	w->touched_ino = 0;
	w->fsync_next = 0;
	*desc = '\0';
	ret = q ? op_fsync(w, d, q, desc, dl) : 0;
	if (*desc)
		return ret;
	/* an operation that found nothing to work on did nothing: then
	 * something is created instead */
	ret = choose(w, d, desc, dl);
	if (!*desc)
		ret = op_create(w, d, desc, dl);
	return ret;
}

/* ---- versions ----------------------------------------------------------- */

/*
 * wl_versions -- after a step and its dump: the new state's unsynced
 * files, and whether the next step is an fsync.
 */
void wl_versions(struct workload *w, const struct model *prev,
		 struct model *next)
{
	uint64_t q = vt_update(w->vt, prev, next, w->touched_ino, w->touched);

	if (q)
		w->fsync_next = q;
	else if (w->touched_ino && w->touched == T_WRITE &&
		 chance(w, w->o.fsync_pct))
		w->fsync_next = w->touched_ino;
}
