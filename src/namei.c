/*
 * namei.c -- namespace and attribute operations: create, link, unlink,
 * rename, setattr, xattrs, and the data entry points, each one
 * transaction, each with the errno Linux filesystems give.
 *
 * Owns: the rules (POSIX semantics) over inode.c, dir.c, file.c, xattr.c.
 * Must never: reply to FUSE (ops*.c do) or leave memory and region
 * disagreeing after an error: every fallible step comes before the first
 * change, or the transaction is aborted and the change undone.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

#include "namei.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define BS DAXFS_BLOCK_SIZE

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0)
		return -ENOENT;
	if (n > DAXFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

static bool is_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

/* get_dir -- a cached directory inode with its index loaded; meta_lock
 * held exclusive */
static int get_dir_locked(struct daxfs *fs, uint64_t ino, struct inode **out)
{
	struct inode *d;
	int ret = inode_get(fs, ino, &d);

	if (ret)
		return ret == -ENOENT ? -ESTALE : ret;
	if (!inode_is_dir(d))
		return -ENOTDIR;
	ret = dir_load(fs, d);
	if (ret)
		return ret;
	*out = d;
	return 0;
}

/*
 * rdlock_dir -- meta_lock shared with dir's index loaded.  Building an
 * index changes memory, so the first use upgrades to exclusive once.
 */
static int rdlock_dir(struct daxfs *fs, uint64_t ino, struct inode **out)
{
	struct inode *d;
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &d);
	if (ret) {
		pthread_rwlock_unlock(&fs->meta_lock);
		return ret == -ENOENT ? -ESTALE : ret;
	}
	if (!inode_is_dir(d)) {
		pthread_rwlock_unlock(&fs->meta_lock);
		return -ENOTDIR;
	}
	while (!d->dir) {
		pthread_rwlock_unlock(&fs->meta_lock);
		pthread_rwlock_wrlock(&fs->meta_lock);
		ret = dir_load(fs, d);
		pthread_rwlock_unlock(&fs->meta_lock);
		if (ret)
			return ret;
		pthread_rwlock_rdlock(&fs->meta_lock);
	}
	*out = d;
	return 0;
}

/* fs_dir_lock -- meta_lock shared and the directory's index ready, for
 * walking it with dir_next(); fs_dir_unlock() ends it */
int fs_dir_lock(struct daxfs *fs, uint64_t ino, struct inode **dir)
{
	return rdlock_dir(fs, ino, dir);
}

void fs_dir_unlock(struct daxfs *fs)
{
	pthread_rwlock_unlock(&fs->meta_lock);
}

/* fs_lookup -- name in parent; takes a lookup reference */
int fs_lookup(struct daxfs *fs, uint64_t parent, const char *name,
	      struct inode **out)
{
	struct inode *dir, *i;
	struct dentry *de;
	uint64_t ino;
	int ret;

	if (strlen(name) > DAXFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = rdlock_dir(fs, parent, &dir);
	if (ret)
		return ret;
	if (!strcmp(name, "."))
		ino = dir->ino;
	else if (!strcmp(name, ".."))
		ino = dir->d.parent;
	else if ((de = dir_lookup(dir, name, strlen(name))))
		ino = de->ino;
	else
		ino = 0;
	ret = ino ? inode_get(fs, ino, &i) : -ENOENT;
	if (ret == -ENOENT && ino)
		ret = -EUCLEAN;		/* an entry naming a free inode */
	if (!ret) {
		inode_ref(fs, i, 1);
		*out = i;
	}
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_getattr(struct daxfs *fs, uint64_t ino, struct stat *st)
{
	struct inode *i;
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (!ret)
		inode_stat(fs, i, st);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret == -ENOENT ? -ESTALE : ret;
}

static int writable(struct daxfs *fs)
{
	if (fs->readonly)
		return -EROFS;
	if (atomic_load(&fs->error))
		return -EIO;
	return 0;
}

/*
 * new_inode -- the common part of mknod, mkdir and symlink: a new inode
 * named name in parent, inside the caller's transaction.  On failure the
 * transaction is aborted and nothing is left behind.
 */
static int new_inode(struct daxfs *fs, struct tx *tx, struct inode *dir,
		     const char *name, uint32_t mode, const struct fs_cred *c,
		     struct inode **out)
{
	struct inode *i;
	uint32_t gid = c->gid;
	int ret;

	if (dir->d.nlink >= DAXFS_LINK_MAX &&
	    (mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR)
		return -EMLINK;
	/* set-group-ID directories pass their group on (and the bit, to
	 * subdirectories) */
	if (dir->d.mode & S_ISGID) {
		gid = dir->d.gid;
		if ((mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR)
			mode |= S_ISGID;
	}
	ret = inode_alloc(fs, tx, mode, c->uid, gid, &i);
	if (ret)
		return ret;
	ret = dir_add(fs, tx, dir, name, strlen(name), i->ino, mode);
	if (ret) {
		tx_abort(tx);
		inode_unalloc(fs, i);
		inode_reload_locked(fs, dir);
		return ret;
	}
	if ((mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR) {
		i->d.parent = dir->ino;
		dir->d.nlink++;
	}
	inode_touch(dir, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, dir);
	*out = i;
	return 0;
}

/* prepare_create -- locks and checks shared by every create */
static int prepare_create(struct daxfs *fs, uint64_t parent,
			  const char *name, struct inode **dir)
{
	int ret = writable(fs);

	if (ret)
		return ret;
	ret = check_name(name);
	if (ret)
		return ret;
	if (is_dot(name))
		return -EEXIST;
	ret = get_dir_locked(fs, parent, dir);
	if (ret)
		return ret;
	if ((*dir)->d.nlink == 0)
		return -ENOENT;		/* the directory was removed */
	if (dir_lookup(*dir, name, strlen(name)))
		return -EEXIST;
	return 0;
}

static int finish_create(struct daxfs *fs, struct tx *tx, struct inode *i,
			 struct inode **out)
{
	int ret = tx_commit(tx);

	if (ret)
		return ret;
	inode_ref(fs, i, 1);
	*out = i;
	return 0;
}

int fs_mknod(struct daxfs *fs, uint64_t parent, const char *name,
	     uint32_t mode, uint64_t rdev, const struct fs_cred *c,
	     struct inode **out)
{
	struct inode *dir, *i;
	struct tx *tx;
	int ret;

	switch (mode & DAXFS_S_IFMT) {
	case DAXFS_S_IFREG: case DAXFS_S_IFIFO: case DAXFS_S_IFSOCK:
	case DAXFS_S_IFCHR: case DAXFS_S_IFBLK:
		break;
	case 0:
		mode |= DAXFS_S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = prepare_create(fs, parent, name, &dir);
	if (ret)
		goto out;
	tx = tx_begin(fs);
	ret = new_inode(fs, tx, dir, name, mode, c, &i);
	if (ret)
		goto out;
	if (S_ISCHR(mode) || S_ISBLK(mode))
		i->d.rdev = rdev;
	ret = finish_create(fs, tx, i, out);
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_mkdir(struct daxfs *fs, uint64_t parent, const char *name,
	     uint32_t mode, const struct fs_cred *c, struct inode **out)
{
	struct inode *dir, *i;
	struct tx *tx;
	int ret;

	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = prepare_create(fs, parent, name, &dir);
	if (ret)
		goto out;
	tx = tx_begin(fs);
	ret = new_inode(fs, tx, dir, name, DAXFS_S_IFDIR | (mode & 07777), c,
			&i);
	if (ret)
		goto out;
	ret = dir_load(fs, i);		/* an empty index */
	if (ret) {
		/* undo new_inode() as its own failure path does: the entry
		 * in dir's index and the inode were never committed */
		tx_abort(tx);
		inode_unalloc(fs, i);
		inode_reload_locked(fs, dir);
		goto out;
	}
	ret = finish_create(fs, tx, i, out);
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_symlink(struct daxfs *fs, uint64_t parent, const char *name,
	       const char *target, const struct fs_cred *c,
	       struct inode **out)
{
	size_t len = strlen(target);
	struct tx_range got = { 0, 0 };
	struct inode *dir, *i;
	struct tx *tx;
	int ret;

	if (len == 0)
		return -ENOENT;
	if (len > DAXFS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = prepare_create(fs, parent, name, &dir);
	if (ret)
		goto out;
	if (len > DAXFS_INLINE_BYTES) {
		/* one block holds any target; written before it is linked */
		ret = alloc_reserve(fs, 0, 1, 0, &got);
		if (!ret)
			ret = region_write(fs->r, FS_BLOCK_OFF(got.start),
					   target, len);
		if (!ret)
			ret = region_zero(fs->r, FS_BLOCK_OFF(got.start) + len,
					  BS - len);
		if (!ret)
			ret = region_persist(fs->r, FS_BLOCK_OFF(got.start),
					     BS);
		if (ret) {
			if (got.len)
				alloc_unreserve(fs, got.start, 1);
			goto out;
		}
	}
	tx = tx_begin(fs);
	ret = new_inode(fs, tx, dir, name, DAXFS_S_IFLNK | 0777, c, &i);
	if (ret) {
		if (got.len)
			alloc_unreserve(fs, got.start, 1);
		goto out;
	}
	i->d.size = len;
	if (got.len) {
		ret = ext_insert(fs, tx, i, 0, got.start, 1);
		if (ret) {
			tx_abort(tx);
			inode_unalloc(fs, i);
			goto out;
		}
	} else {
		i->d.flags |= DAXFS_IF_INLINE;
		memcpy(i->d.inl, target, len);
	}
	ret = finish_create(fs, tx, i, out);
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_readlink(struct daxfs *fs, uint64_t ino, char *buf, size_t size)
{
	struct inode *i;
	uint64_t len;
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (ret)
		goto out;
	if (!inode_is_lnk(i)) {
		ret = -EINVAL;
		goto out;
	}
	len = i->d.size;
	if (len > DAXFS_SYMLINK_MAX || len == 0) {
		ret = -EUCLEAN;
		goto out;
	}
	if (size <= len) {
		ret = -ERANGE;
		goto out;
	}
	if (i->d.flags & DAXFS_IF_INLINE) {
		memcpy(buf, i->d.inl, len);
	} else {
		uint64_t pblk, run;

		if (!ext_lookup(i, 0, &pblk, &run)) {
			ret = -EUCLEAN;
			goto out;
		}
		ret = region_read(fs->r, FS_BLOCK_OFF(pblk), buf, len);
		if (ret)
			goto out;
	}
	buf[len] = '\0';
	ret = (int)len;
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_link(struct daxfs *fs, uint64_t ino, uint64_t newparent,
	    const char *newname, struct inode **out)
{
	struct inode *dir, *i;
	struct tx *tx;
	int ret;

	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = prepare_create(fs, newparent, newname, &dir);
	if (ret)
		goto out;
	ret = inode_get(fs, ino, &i);
	if (ret)
		goto out;
	if (inode_is_dir(i)) {
		ret = -EPERM;
		goto out;
	}
	if (i->d.nlink >= DAXFS_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	if (i->d.nlink == 0) {
		ret = -ENOENT;		/* linkat of an unlinked open file */
		goto out;
	}
	tx = tx_begin(fs);
	ret = dir_add(fs, tx, dir, newname, strlen(newname), i->ino,
		      i->d.mode);
	if (ret) {
		tx_abort(tx);
		inode_reload_locked(fs, dir);
		goto out;
	}
	i->d.nlink++;
	inode_touch(i, TOUCH_C);
	tx_dirty_inode(tx, i);
	inode_touch(dir, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, dir);
	ret = finish_create(fs, tx, i, out);
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/* drop_link -- one name fewer for i; deleted now if nobody holds it */
static void drop_link(struct tx *tx, struct inode *i)
{
	if (inode_is_dir(i))
		i->d.nlink = 0;
	else if (i->d.nlink)
		i->d.nlink--;
	inode_touch(i, TOUCH_C);
	tx_dirty_inode(tx, i);
}

static int dir_is_empty_locked(struct daxfs *fs, struct inode *d)
{
	int ret = dir_load(fs, d);

	if (ret)
		return ret;
	return d->dir->count ? -ENOTEMPTY : 0;
}

static int remove_entry(struct daxfs *fs, uint64_t parent, const char *name,
			bool want_dir)
{
	struct inode *dir, *i;
	struct dentry *de;
	struct tx *tx;
	int ret;

	ret = writable(fs);
	if (ret)
		return ret;
	if (!strcmp(name, "."))
		return want_dir ? -EINVAL : -EISDIR;
	if (!strcmp(name, ".."))
		return want_dir ? -ENOTEMPTY : -EISDIR;
	if (strlen(name) > DAXFS_NAME_MAX)
		return -ENAMETOOLONG;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = get_dir_locked(fs, parent, &dir);
	if (ret)
		goto out;
	de = dir_lookup(dir, name, strlen(name));
	if (!de) {
		ret = -ENOENT;
		goto out;
	}
	ret = inode_get(fs, de->ino, &i);
	if (ret)
		goto out;
	if (want_dir && !inode_is_dir(i)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (!want_dir && inode_is_dir(i)) {
		ret = -EISDIR;
		goto out;
	}
	if (want_dir) {
		ret = dir_is_empty_locked(fs, i);
		if (ret)
			goto out;
	}
	tx = tx_begin(fs);
	ret = dir_remove(fs, tx, dir, de);
	if (ret) {
		tx_abort(tx);
		goto out;
	}
	if (want_dir)
		dir->d.nlink--;
	drop_link(tx, i);
	inode_touch(dir, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, dir);
	ret = tx_commit(tx);
	if (!ret)
		ret = inode_evict_locked(fs, i);	/* frees it if unused */
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_unlink(struct daxfs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, false);
}

int fs_rmdir(struct daxfs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, true);
}

/* is_ancestor -- is a an ancestor of (or equal to) directory d? */
static int is_ancestor(struct daxfs *fs, uint64_t a, struct inode *d)
{
	uint64_t ino = d->ino, steps = 0;

	while (1) {
		struct inode *p;
		int ret;

		if (ino == a)
			return 1;
		if (ino == DAXFS_ROOT_INO)
			return 0;
		if (++steps > fs->ninodes)
			return -EUCLEAN;	/* a parent cycle */
		ret = inode_get(fs, ino, &p);
		if (ret)
			return ret;
		ino = p->d.parent;
	}
}

/* reparent -- a directory i moves from dir to ndir */
static void reparent(struct tx *tx, struct inode *i, struct inode *dir,
		     struct inode *ndir)
{
	if (!inode_is_dir(i) || dir == ndir)
		return;
	i->d.parent = ndir->ino;
	dir->d.nlink--;
	ndir->d.nlink++;
	tx_dirty_inode(tx, i);
}

int fs_rename(struct daxfs *fs, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned flags)
{
	struct inode *dir, *ndir, *src, *dst = NULL;
	struct daxfs_dinode saved_src, saved_dst;
	struct dentry *sde, *dde;
	struct tx *tx;
	int ret;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	ret = writable(fs);
	if (!ret)
		ret = check_name(newname);
	if (ret)
		return ret;
	if (is_dot(name) || is_dot(newname))
		return -EBUSY;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = get_dir_locked(fs, parent, &dir);
	if (!ret)
		ret = get_dir_locked(fs, newparent, &ndir);
	if (ret)
		goto out;
	sde = dir_lookup(dir, name, strlen(name));
	if (!sde) {
		ret = -ENOENT;
		goto out;
	}
	ret = inode_get(fs, sde->ino, &src);
	if (ret)
		goto out;
	dde = dir_lookup(ndir, newname, strlen(newname));
	if (dde) {
		ret = inode_get(fs, dde->ino, &dst);
		if (ret)
			goto out;
	}
	if (dst == src) {		/* same inode: nothing to do */
		ret = (flags & RENAME_NOREPLACE) && sde != dde ? -EEXIST : 0;
		goto out;
	}
	if (flags & RENAME_EXCHANGE) {
		if (!dst) {
			ret = -ENOENT;
			goto out;
		}
	} else if (dst && (flags & RENAME_NOREPLACE)) {
		ret = -EEXIST;
		goto out;
	}
	if (ndir->d.nlink == 0) {
		ret = -ENOENT;
		goto out;
	}
	/* a directory may not move below itself */
	if (inode_is_dir(src) && dir != ndir) {
		ret = is_ancestor(fs, src->ino, ndir);
		if (ret) {
			ret = ret > 0 ? -EINVAL : ret;
			goto out;
		}
	}
	if (dst && (flags & RENAME_EXCHANGE) && inode_is_dir(dst) &&
	    dir != ndir) {
		ret = is_ancestor(fs, dst->ino, dir);
		if (ret) {
			ret = ret > 0 ? -EINVAL : ret;
			goto out;
		}
	}
	if (dst && !(flags & RENAME_EXCHANGE)) {
		if (inode_is_dir(src) && !inode_is_dir(dst)) {
			ret = -ENOTDIR;
			goto out;
		}
		if (!inode_is_dir(src) && inode_is_dir(dst)) {
			ret = -EISDIR;
			goto out;
		}
		if (inode_is_dir(dst)) {
			ret = dir_is_empty_locked(fs, dst);
			if (ret)
				goto out;
		}
	}
	if (inode_is_dir(src) && dir != ndir && !dst &&
	    ndir->d.nlink >= DAXFS_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}

	/* files are not reloaded on abort (a reader may be using their
	 * extents): keep their dinodes to put back */
	saved_src = src->d;
	if (dst)
		saved_dst = dst->d;
	tx = tx_begin(fs);
	if (flags & RENAME_EXCHANGE) {
		uint64_t si = src->ino, di = dst->ino;

		ret = dir_retarget(fs, tx, dir, sde, di, dst->d.mode);
		if (!ret)
			ret = dir_retarget(fs, tx, ndir, dde, si, src->d.mode);
		if (ret)
			goto abort;
		reparent(tx, src, dir, ndir);
		reparent(tx, dst, ndir, dir);
		inode_touch(dst, TOUCH_C);
		tx_dirty_inode(tx, dst);
	} else if (dst) {
		ret = dir_retarget(fs, tx, ndir, dde, src->ino, src->d.mode);
		if (!ret)
			ret = dir_remove(fs, tx, dir, sde);
		if (ret)
			goto abort;
		if (inode_is_dir(dst))
			ndir->d.nlink--;	/* its ".." is gone */
		drop_link(tx, dst);
		reparent(tx, src, dir, ndir);
	} else {
		ret = dir_add(fs, tx, ndir, newname, strlen(newname),
			      src->ino, src->d.mode);
		if (!ret)
			ret = dir_remove(fs, tx, dir, sde);
		if (ret)
			goto abort;
		reparent(tx, src, dir, ndir);
	}
	inode_touch(src, TOUCH_C);
	tx_dirty_inode(tx, src);
	inode_touch(dir, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, dir);
	inode_touch(ndir, TOUCH_M | TOUCH_C);
	tx_dirty_inode(tx, ndir);
	ret = tx_commit(tx);
	if (!ret && dst && !(flags & RENAME_EXCHANGE))
		ret = inode_evict_locked(fs, dst);
	goto out;
abort:
	/* memory may be ahead of the region (a grown directory, a
	 * retargeted entry): read it all back */
	tx_abort(tx);
	inode_reload_locked(fs, dir);
	if (ndir != dir)
		inode_reload_locked(fs, ndir);
	if (src != dir && src != ndir)
		src->d = saved_src;
	if (dst && dst != dir && dst != ndir)
		dst->d = saved_dst;
out:
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/*
 * fs_setattr -- chmod, chown, truncate and utimes.  A size change takes
 * the file's io_lock so no read or write is in its way.
 */
int fs_setattr(struct daxfs *fs, uint64_t ino, const struct fs_setattr *a,
	       struct stat *out)
{
	struct inode *i;
	struct tx *tx;
	uint64_t sec;
	uint32_t nsec;
	int ret;

	ret = writable(fs);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	pthread_rwlock_unlock(&fs->meta_lock);
	if (ret)
		return ret == -ENOENT ? -ESTALE : ret;

	if (a->valid & SETATTR_SIZE) {
		if (inode_is_dir(i))
			return -EISDIR;
		if (!inode_is_reg(i))
			return -EINVAL;
		pthread_rwlock_wrlock(&i->io_lock);
		ret = file_truncate(fs, i, a->size);
		pthread_rwlock_unlock(&i->io_lock);
		if (ret)
			return ret;
	}
	pthread_rwlock_wrlock(&fs->meta_lock);
	fs_now(&sec, &nsec);
	if (a->valid & SETATTR_MODE)
		i->d.mode = (i->d.mode & DAXFS_S_IFMT) | (a->mode & 07777);
	if (a->valid & SETATTR_UID)
		i->d.uid = a->uid;
	if (a->valid & SETATTR_GID)
		i->d.gid = a->gid;
	if (a->valid & SETATTR_ATIME_NOW) {
		i->d.atime_sec = sec;
		i->d.atime_nsec = nsec;
	} else if (a->valid & SETATTR_ATIME) {
		i->d.atime_sec = (uint64_t)a->atime.tv_sec;
		i->d.atime_nsec = (uint32_t)a->atime.tv_nsec;
	}
	if (a->valid & SETATTR_MTIME_NOW) {
		i->d.mtime_sec = sec;
		i->d.mtime_nsec = nsec;
	} else if (a->valid & SETATTR_MTIME) {
		i->d.mtime_sec = (uint64_t)a->mtime.tv_sec;
		i->d.mtime_nsec = (uint32_t)a->mtime.tv_nsec;
	}
	if (a->valid & SETATTR_CTIME) {
		i->d.ctime_sec = (uint64_t)a->ctime.tv_sec;
		i->d.ctime_nsec = (uint32_t)a->ctime.tv_nsec;
	} else if (a->valid & ~(unsigned)SETATTR_SIZE) {
		i->d.ctime_sec = sec;
		i->d.ctime_nsec = nsec;
	}
	if (a->valid & ~(unsigned)SETATTR_SIZE) {
		tx = tx_begin(fs);
		tx_dirty_inode(tx, i);
		ret = tx_commit(tx);
	}
	if (!ret && out)
		inode_stat(fs, i, out);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/* get_file -- a regular file's inode (the kernel holds a reference) */
static int get_file(struct daxfs *fs, uint64_t ino, struct inode **out)
{
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, out);
	pthread_rwlock_unlock(&fs->meta_lock);
	if (ret)
		return ret == -ENOENT ? -ESTALE : ret;
	if (inode_is_dir(*out))
		return -EISDIR;
	if (!inode_is_reg(*out))
		return -EINVAL;
	return 0;
}

int fs_write(struct daxfs *fs, uint64_t ino, uint64_t off, const void *buf,
	     uint64_t len)
{
	struct inode *i;
	int ret = writable(fs);

	if (!ret)
		ret = get_file(fs, ino, &i);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&i->io_lock);
	ret = file_write_bytes(fs, i, off, buf, len);
	pthread_rwlock_unlock(&i->io_lock);
	return ret;
}

int fs_read(struct daxfs *fs, uint64_t ino, uint64_t off, void *buf,
	    uint64_t len)
{
	struct inode *i;
	int ret = get_file(fs, ino, &i);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&i->io_lock);
	ret = file_read_bytes(fs, i, off, buf, len);
	pthread_rwlock_unlock(&i->io_lock);
	return ret;
}

int fs_fsync(struct daxfs *fs, uint64_t ino, bool datasync)
{
	struct inode *i;
	int ret;

	if (fs->readonly)
		return 0;
	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	pthread_rwlock_unlock(&fs->meta_lock);
	if (ret)
		return ret == -ENOENT ? -ESTALE : ret;
	return file_sync(fs, i, datasync);
}

int fs_fallocate(struct daxfs *fs, uint64_t ino, int mode, uint64_t off,
		 uint64_t len)
{
	struct inode *i;
	int ret = writable(fs);

	if (!ret)
		ret = get_file(fs, ino, &i);
	if (ret)
		return ret;
	if (!len || off + len < off)
		return -EINVAL;
	pthread_rwlock_wrlock(&i->io_lock);
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		ret = file_punch(fs, i, off, len);
	else if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE)
		ret = file_allocate(fs, i, off, len,
				    mode == FALLOC_FL_KEEP_SIZE);
	else
		ret = -EOPNOTSUPP;
	pthread_rwlock_unlock(&i->io_lock);
	return ret;
}

/* xattr entry points: meta_lock around xattr.c */
int fs_setxattr(struct daxfs *fs, uint64_t ino, const char *name,
		const void *value, size_t size, int flags)
{
	struct inode *i;
	int ret = writable(fs);

	if (ret)
		return ret;
	/* system.* names mean something to the kernel (POSIX ACLs), which
	 * daxfs does not implement: storing one as plain bytes would let
	 * cp -a "set" an ACL in place of the mode and leave the mode wrong.
	 * Refused, tools fall back to chmod. */
	if (!strncmp(name, "system.", 7))
		return -EOPNOTSUPP;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (!ret)
		ret = xattr_set(fs, i, name, value, size, flags);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_getxattr(struct daxfs *fs, uint64_t ino, const char *name,
		void *value, size_t size)
{
	struct inode *i;
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (!ret)
		ret = xattr_get(fs, i, name, value, size);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_listxattr(struct daxfs *fs, uint64_t ino, char *buf, size_t size)
{
	struct inode *i;
	int ret;

	pthread_rwlock_rdlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (!ret)
		ret = xattr_list(fs, i, buf, size);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

int fs_removexattr(struct daxfs *fs, uint64_t ino, const char *name)
{
	struct inode *i;
	int ret = writable(fs);

	if (ret)
		return ret;
	pthread_rwlock_wrlock(&fs->meta_lock);
	ret = inode_get(fs, ino, &i);
	if (!ret)
		ret = xattr_remove(fs, i, name);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}
