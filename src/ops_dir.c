/*
 * ops_dir.c -- FUSE handlers for names and attributes: lookup, getattr,
 * setattr, the creates, unlink, rmdir, rename, link, readlink, readdir
 * and extended attributes.
 *
 * Owns: nothing.  Must never: hold a lock across a reply that the kernel
 * might answer with a request of its own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops_i.h"

static struct fs_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	return (struct fs_cred){ c->uid, c->gid };
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	struct inode *i;
	int ret = gate_enter(&d->gate, USE_META_READ, OP_LOOKUP, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_lookup(d->fs, parent, name, &i);
	if (ret == -ENOENT) {
		/* a negative entry: the kernel may cache it, since every
		 * change to this filesystem passes through this mount */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = d->entry_timeout;
		fuse_reply_entry(req, &e);
	} else {
		ops_reply_entry(req, ret, i);
	}
	gate_exit(&d->gate);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct stat st;
	int ret = gate_enter(&d->gate, USE_META_READ, OP_GETATTR, ino);

	(void)fi;
	if (ret) {
		/* after release, attributes still in memory are still true;
		 * this keeps the mount root (and daxfsctl) reachable */
		struct inode *i = inode_find(d->fs, ino);

		if (!i) {
			reply_err(req, ret);
			return;
		}
		inode_stat(d->fs, i, &st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	ret = fs_getattr(d->fs, ino, &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, d->attr_timeout);
	gate_exit(&d->gate);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct fs_setattr a;
	struct stat st;
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_SETATTR, ino);

	(void)fi;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	memset(&a, 0, sizeof(a));
	if (to_set & FUSE_SET_ATTR_MODE) {
		a.valid |= SETATTR_MODE;
		a.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		a.valid |= SETATTR_UID;
		a.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		a.valid |= SETATTR_GID;
		a.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		a.valid |= SETATTR_SIZE;
		a.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		a.valid |= SETATTR_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		a.valid |= SETATTR_ATIME;
		a.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		a.valid |= SETATTR_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		a.valid |= SETATTR_MTIME;
		a.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		a.valid |= SETATTR_CTIME;
		a.ctime = attr->st_ctim;
	}
	ret = fs_setattr(d->fs, ino, &a, &st);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_attr(req, &st, d->attr_timeout);
	gate_exit(&d->gate);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct daemon *d = D(req);
	char buf[DAXFS_SYMLINK_MAX + 1];
	int ret = gate_enter(&d->gate, USE_META_READ, OP_READLINK, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_readlink(d->fs, ino, buf, sizeof(buf));
	if (ret < 0)
		reply_err(req, ret);
	else
		fuse_reply_readlink(req, buf);
	gate_exit(&d->gate);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode, dev_t rdev)
{
	struct daemon *d = D(req);
	struct fs_cred c = cred_of(req);
	struct inode *i = NULL;
	int ret = gate_enter(&d->gate, USE_NEW, OP_MKNOD, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_mknod(d->fs, parent, name, mode, rdev, &c, &i);
	ops_reply_entry(req, ret, i);
	gate_exit(&d->gate);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode)
{
	struct daemon *d = D(req);
	struct fs_cred c = cred_of(req);
	struct inode *i = NULL;
	int ret = gate_enter(&d->gate, USE_NEW, OP_MKDIR, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_mkdir(d->fs, parent, name, mode, &c, &i);
	ops_reply_entry(req, ret, i);
	gate_exit(&d->gate);
}

void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		const char *name)
{
	struct daemon *d = D(req);
	struct fs_cred c = cred_of(req);
	struct inode *i = NULL;
	int ret = gate_enter(&d->gate, USE_NEW, OP_SYMLINK, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_symlink(d->fs, parent, name, target, &c, &i);
	ops_reply_entry(req, ret, i);
	gate_exit(&d->gate);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname)
{
	struct daemon *d = D(req);
	struct inode *i = NULL;
	int ret = gate_enter(&d->gate, USE_NEW, OP_LINK, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_link(d->fs, ino, newparent, newname, &i);
	ops_reply_entry(req, ret, i);
	gate_exit(&d->gate);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_UNLINK, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_err(req, fs_unlink(d->fs, parent, name));
	gate_exit(&d->gate);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_RMDIR, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_err(req, fs_rmdir(d->fs, parent, name));
	gate_exit(&d->gate);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_RENAME, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_err(req, fs_rename(d->fs, parent, name, newparent, newname,
				 flags));
	gate_exit(&d->gate);
}

/* opendir is not gated: the control channel opens the mount root */
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

/*
 * do_readdir -- fill one reply buffer.  Offsets: 0 is ".", 1 is "..",
 * 2 + s is directory slot s, so an offset stays valid while entries
 * around it come and go.
 */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, bool plus)
{
	struct daemon *d = D(req);
	struct daxfs *fs = d->fs;
	struct inode *dir;
	char *buf;
	size_t used = 0;
	int ret = gate_enter(&d->gate, USE_META_READ,
			     plus ? OP_READDIRPLUS : OP_READDIR, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		reply_err(req, ENOMEM);
		gate_exit(&d->gate);
		return;
	}
	ret = fs_dir_lock(fs, ino, &dir);
	if (ret) {
		free(buf);
		reply_err(req, ret);
		gate_exit(&d->gate);
		return;
	}
	for (uint64_t pos = (uint64_t)off; used < size;) {
		struct fuse_entry_param e;
		struct dentry *de = NULL;
		const char *name;
		uint32_t slot;
		struct inode *i = NULL;
		size_t need;

		memset(&e, 0, sizeof(e));
		if (pos == 0) {
			name = ".";
			e.attr.st_ino = dir->ino;
			e.attr.st_mode = S_IFDIR;
		} else if (pos == 1) {
			name = "..";
			e.attr.st_ino = dir->d.parent;
			e.attr.st_mode = S_IFDIR;
		} else {
			slot = (uint32_t)(pos - 2);
			if (pos - 2 > UINT32_MAX ||
			    !(de = dir_next(dir, &slot)))
				break;
			pos = slot + 2ULL;
			name = de->name;
			e.attr.st_ino = de->ino;
			e.attr.st_mode = (mode_t)de->type << 12;
		}
		if (!plus) {
			need = fuse_add_direntry(req, buf + used, size - used,
						 name, &e.attr, (off_t)pos + 1);
			if (need > size - used)
				break;
			used += need;
			pos++;
			continue;
		}
		need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (need > size - used)
			break;
		if (de) {
			ret = inode_get(fs, de->ino, &i);
			if (ret)
				break;
			inode_ref(fs, i, 1);
			memset(&e, 0, sizeof(e));
			e.ino = i->ino;
			e.generation = i->d.generation;
			inode_stat(fs, i, &e.attr);
			e.attr_timeout = d->attr_timeout;
			e.entry_timeout = d->entry_timeout;
		}
		used += fuse_add_direntry_plus(req, buf + used, size - used,
					       name, &e, (off_t)pos + 1);
		pos++;
	}
	fs_dir_unlock(fs);
	if (ret && used == 0)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
	gate_exit(&d->gate);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_FSYNCDIR, ino);

	(void)datasync;
	(void)fi;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	/* directory changes are durable when they reply; only lazily
	 * kept times may be pending */
	if (!d->readonly) {
		struct inode *i = inode_find(d->fs, ino);

		pthread_rwlock_wrlock(&d->fs->meta_lock);
		ret = i ? inode_flush_locked(d->fs, i) : 0;
		pthread_rwlock_unlock(&d->fs->meta_lock);
	}
	reply_err(req, ret);
	gate_exit(&d->gate);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_SETXATTR, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_err(req, fs_setxattr(d->fs, ino, name, value, size, flags));
	gate_exit(&d->gate);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 size_t size)
{
	struct daemon *d = D(req);
	char *buf = NULL;
	int ret = gate_enter(&d->gate, USE_META_READ, OP_GETXATTR, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (size && !(buf = malloc(size))) {
		reply_err(req, ENOMEM);
		gate_exit(&d->gate);
		return;
	}
	ret = fs_getxattr(d->fs, ino, name, buf, size);
	if (ret < 0)
		reply_err(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)ret);
	else
		fuse_reply_buf(req, buf, (size_t)ret);
	free(buf);
	gate_exit(&d->gate);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct daemon *d = D(req);
	char *buf = NULL;
	int ret = gate_enter(&d->gate, USE_META_READ, OP_LISTXATTR, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (size && !(buf = malloc(size))) {
		reply_err(req, ENOMEM);
		gate_exit(&d->gate);
		return;
	}
	ret = fs_listxattr(d->fs, ino, buf, size);
	if (ret < 0)
		reply_err(req, ret);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)ret);
	else
		fuse_reply_buf(req, buf, (size_t)ret);
	free(buf);
	gate_exit(&d->gate);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_META_WRITE, OP_REMOVEXATTR, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_err(req, fs_removexattr(d->fs, ino, name));
	gate_exit(&d->gate);
}
