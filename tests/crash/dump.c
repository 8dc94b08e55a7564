/*
 * dump.c -- a canonical dump of a mounted daxfs (model.c compares them),
 * and the probe that extends files over what lies past their end.
 *
 * The dump walks the tree from the root through the namei.h entry points
 * (and dir_next() under fs_dir_lock()), which take their own locks and
 * never store to the region: a dump of the live filesystem must not
 * change what a crash would find.  Each path gets its inode number, type
 * and mode, owner, link count, size, device number, a hash of its
 * contents (files) or its target (symlinks), and a hash of its xattrs.
 * Times are left out: daxfs keeps them lazily, as every filesystem may.
 *
 * It also notes a file whose blocks hold anything but zeros past its end
 * of file: on the live filesystem that never happens (file.c), in a
 * crash image it may, and probe_extend() checks it does no harm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashsim.h"

#define BS DAXFS_BLOCK_SIZE

struct ver *ver_new(const uint8_t *data, uint64_t size)
{
	struct ver *v = xcalloc(1, sizeof(*v));

	v->size = size;
	v->data = xmalloc(size);
	if (size)
		memcpy(v->data, data, size);
	v->ref = 1;
	return v;
}

struct ver *ver_get(struct ver *v)
{
	v->ref++;
	return v;
}

void ver_put(struct ver *v)
{
	if (v && --v->ref == 0) {
		free(v->data);
		free(v);
	}
}

struct walk {
	struct daxfs *fs;
	struct dump *d;
	uint32_t cap;
	struct sbuf *err;
	int ret;
};

static int fail(struct walk *w, int ret, const char *fmt, const char *path)
{
	if (!w->ret) {
		sb_printf(w->err, fmt, path);
		sb_printf(w->err, ": %s (%s)\n", strerror(-ret),
			  daxfs_errmsg(ret));
		w->ret = ret;
	}
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* read_xattrs -- names sorted, each with its value's length and hash */
static int read_xattrs(struct walk *w, struct dent *e)
{
	char list[8192], *names[512], val[DAXFS_BLOCK_SIZE];
	struct sbuf s = { 0 };
	int len, n = 0;

	len = fs_listxattr(w->fs, e->ino, list, sizeof(list));
	if (len < 0)
		return fail(w, len, "listxattr %s", e->path);
	for (int p = 0; p < len && n < 512; p += (int)strlen(list + p) + 1)
		names[n++] = list + p;
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	e->xhash = 0x5851;
	sb_printf(&s, "%s", "");
	for (int k = 0; k < n; k++) {
		int vl = fs_getxattr(w->fs, e->ino, names[k], val, sizeof(val));
		uint64_t vh;

		if (vl < 0) {
			sb_free(&s);
			return fail(w, vl, "getxattr %s", e->path);
		}
		vh = hash_bytes(val, (size_t)vl, 7);
		e->xhash = mix64(e->xhash ^ hash_bytes(names[k],
					strlen(names[k]), 3)) ^ vh;
		sb_printf(&s, "%s%s=%d:%04llx", k ? "," : "", names[k], vl,
			  (unsigned long long)(vh & 0xffff));
	}
	e->xattrs = s.s ? s.s : xstrdup("");
	return 0;
}

/* check_tail -- mapped bytes at or past EOF must read zero */
static int check_tail(struct walk *w, const struct dent *e)
{
	struct daxfs *fs = w->fs;
	struct inode *i;
	uint8_t buf[BS];
	int ret;

	if (w->d->tail_bad)
		return 0;
	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, e->ino, &i);
	for (uint32_t k = 0; !ret && k < i->next && !w->d->tail_bad; k++) {
		uint64_t s = FS_BLOCK_OFF(i->ext[k].lblk);
		uint64_t end = FS_BLOCK_OFF(i->ext[k].lblk + i->ext[k].len);

		for (uint64_t pos = MAX(s, e->size); pos < end;) {
			uint64_t n = MIN(BS - pos % BS, end - pos);
			uint64_t at = FS_BLOCK_OFF(i->ext[k].pblk) + (pos - s);

			ret = region_read(fs->r, at, buf, n);
			if (ret)
				break;
			for (uint64_t b = 0; b < n; b++) {
				if (buf[b]) {
					w->d->tail_bad = e->ino;
					w->d->tail_off = pos + b;
					break;
				}
			}
			if (w->d->tail_bad)
				break;
			pos += n;
		}
	}
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret ? fail(w, ret, "extents of %s", e->path) : 0;
}

static int read_file(struct walk *w, struct dent *e)
{
	uint8_t *buf = xmalloc(e->size);
	uint64_t got = 0;

	while (got < e->size) {
		int n = fs_read(w->fs, e->ino, got, buf + got,
				MIN(e->size - got, 1u << 30));

		if (n <= 0) {
			free(buf);
			return fail(w, n ? n : -EIO, "read %s", e->path);
		}
		got += (uint64_t)n;
	}
	e->chash = hash_bytes(buf, e->size, 11);
	e->data = xcalloc(1, sizeof(*e->data));
	e->data->size = e->size;
	e->data->data = buf;
	e->data->ref = 1;
	return check_tail(w, e);
}

static struct dent *add(struct walk *w, const char *path, uint64_t ino)
{
	struct dump *d = w->d;
	struct dent *e;

	if (d->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		d->v = xrealloc(d->v, w->cap * sizeof(*d->v));
	}
	e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->ino = ino;
	return e;
}

struct child {
	char *name;
	uint64_t ino;
	uint8_t type;
};

static int cmp_child(const void *a, const void *b)
{
	return strcmp(((const struct child *)a)->name,
		      ((const struct child *)b)->name);
}

static int walk_dir(struct walk *w, uint64_t ino, const char *path,
		    int depth);

/* visit -- one inode under path */
static int visit(struct walk *w, uint64_t ino, const char *path, int depth,
		 uint8_t dtype)
{
	struct stat st;
	struct dent *e;
	size_t idx;
	int ret;

	ret = fs_getattr(w->fs, ino, &st);
	if (ret)
		return fail(w, ret, "getattr %s", path);
	e = add(w, path, ino);
	idx = (size_t)(e - w->d->v);
	e->mode = st.st_mode;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->nlink = (uint32_t)st.st_nlink;
	e->rdev = st.st_rdev;
	e->size = (uint64_t)st.st_size;
	if (dtype && dtype != ((st.st_mode & S_IFMT) >> 12)) {
		sb_printf(w->err, "%s: entry type %u but inode mode 0%o\n",
			  path, dtype, st.st_mode);
		w->ret = w->ret ? w->ret : -EUCLEAN;
	}
	if (S_ISREG(st.st_mode)) {
		ret = read_file(w, e);
	} else if (S_ISLNK(st.st_mode)) {
		char t[DAXFS_SYMLINK_MAX + 1];

		ret = fs_readlink(w->fs, ino, t, sizeof(t));
		if (ret < 0)
			return fail(w, ret, "readlink %s", path);
		e->target = xstrdup(t);
		e->chash = hash_bytes(t, strlen(t), 13);
		ret = 0;
	}
	if (!ret)
		ret = read_xattrs(w, &w->d->v[idx]);
	if (!ret && S_ISDIR(st.st_mode))
		ret = walk_dir(w, ino, path, depth + 1);
	return ret;
}

static int walk_dir(struct walk *w, uint64_t ino, const char *path, int depth)
{
	struct child *c = NULL;
	uint32_t n = 0, cap = 0, slot = 0;
	struct inode *dir;
	struct dentry *de;
	int ret;

	if (depth > 64)
		return fail(w, -ELOOP, "%s: too deep", path);
	ret = fs_dir_lock(w->fs, ino, &dir);
	if (ret)
		return fail(w, ret, "opendir %s", path);
	while ((de = dir_next(dir, &slot))) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			c = xrealloc(c, cap * sizeof(*c));
		}
		c[n].name = xstrdup(de->name);
		c[n].ino = de->ino;
		c[n].type = de->type;
		n++;
		slot++;
	}
	fs_dir_unlock(w->fs);
	if (n)
		qsort(c, n, sizeof(*c), cmp_child);
	for (uint32_t k = 0; k < n && !ret; k++) {
		size_t pl = strlen(path) + strlen(c[k].name) + 2;
		char *p = xmalloc(pl);

		snprintf(p, pl, "%s%s%s", path, path[1] ? "/" : "", c[k].name);
		ret = visit(w, c[k].ino, p, depth, c[k].type);
		free(p);
	}
	for (uint32_t k = 0; k < n; k++)
		free(c[k].name);
	free(c);
	return ret;
}

/* mapped_end -- the end of a file's last mapped block, in bytes */
static uint64_t mapped_end(struct daxfs *fs, uint64_t ino)
{
	uint64_t end = 0;
	struct inode *i;

	pthread_rwlock_rdlock(&fs->meta_lock);
	if (!inode_get(fs, ino, &i) && i->next)
		end = FS_BLOCK_OFF(i->ext[i->next - 1].lblk +
				   i->ext[i->next - 1].len);
	pthread_rwlock_unlock(&fs->meta_lock);
	return end;
}

/*
 * probe_extend -- what a user would see: every file that has blocks past
 * its end of file is extended over them (by truncate, by a write beyond
 * the end, or by fallocate, in turn), and the bytes between the old end
 * and the new must read zero.  Returns 0, or 1 with the first offender in
 * why.  Changes the filesystem.
 */
int probe_extend(struct daxfs *fs, const struct dump *d, struct sbuf *why)
{
	static const char *const how[] = { "truncate", "write", "fallocate" };
	uint8_t *buf = NULL;
	int bad = 0;

	for (uint32_t k = 0; k < d->n && !bad; k++) {
		const struct dent *e = &d->v[k];
		uint64_t end, s = e->size;
		int m = (int)(e->ino % 3), ret;

		if (!S_ISREG(e->mode) || dump_find_ino(d, e->ino) != e)
			continue;
		end = mapped_end(fs, e->ino);
		if (end <= s)
			continue;
		if (m == 0) {
			struct fs_setattr a = { .valid = SETATTR_SIZE,
						.size = end };

			ret = fs_setattr(fs, e->ino, &a, NULL);
		} else if (m == 1) {
			ret = fs_write(fs, e->ino, end, "", 1);
			ret = ret == 1 ? 0 : ret < 0 ? ret : -EIO;
		} else {
			ret = fs_fallocate(fs, e->ino, 0, end, 1);
		}
		buf = xrealloc(buf, end - s);
		if (!ret) {
			ret = fs_read(fs, e->ino, s, buf, end - s);
			ret = ret == (int)(end - s) ? 0 : ret < 0 ? ret : -EIO;
		}
		if (ret) {
			sb_printf(why, "  extending %s (%s from %llu to %llu) "
				  "failed: %s\n", e->path, how[m],
				  (unsigned long long)s,
				  (unsigned long long)end, strerror(-ret));
			bad = 1;
			break;
		}
		for (uint64_t b = 0; b < end - s; b++) {
			if (buf[b]) {
				sb_printf(why, "  %s (inode %llu) extended by "
					  "%s from %llu to %llu bytes reads "
					  "%#x at byte %llu, not zero: stale "
					  "data past its end of file came "
					  "back\n", e->path,
					  (unsigned long long)e->ino, how[m],
					  (unsigned long long)s,
					  (unsigned long long)end, buf[b],
					  (unsigned long long)(s + b));
				bad = 1;
				break;
			}
		}
	}
	free(buf);
	return bad;
}

static int cmp_dent(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->path,
		      ((const struct dent *)b)->path);
}

static uint64_t dent_hash(const struct dent *e)
{
	uint64_t f[9] = { e->ino, e->mode, e->uid, e->gid, e->nlink, e->rdev,
			  e->size, e->chash, e->xhash };

	return hash_bytes(f, sizeof(f), hash_bytes(e->path, strlen(e->path),
						   17));
}

/* dump_fs -- the whole tree; 0, or -errno with the reason in err */
int dump_fs(struct daxfs *fs, struct dump *out, struct sbuf *err)
{
	struct walk w = { .fs = fs, .d = out, .err = err };

	memset(out, 0, sizeof(*out));
	visit(&w, DAXFS_ROOT_INO, "/", 0, 0);
	qsort(out->v, out->n, sizeof(*out->v), cmp_dent);
	out->hash = 0xd0;
	for (uint32_t k = 0; k < out->n; k++)
		out->hash = mix64(out->hash ^ dent_hash(&out->v[k]));
	return w.ret;
}

void dump_free(struct dump *d)
{
	for (uint32_t k = 0; k < d->n; k++) {
		free(d->v[k].path);
		free(d->v[k].target);
		free(d->v[k].xattrs);
		ver_put(d->v[k].data);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}

const struct dent *dump_find_ino(const struct dump *d, uint64_t ino)
{
	for (uint32_t k = 0; k < d->n; k++)
		if (d->v[k].ino == ino)
			return &d->v[k];
	return NULL;
}

