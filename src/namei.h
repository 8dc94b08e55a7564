/*
 * namei.h -- namespace and attribute operations on a mounted daxfs,
 * independent of FUSE: the FUSE handlers are thin wrappers over these, and
 * tools and tests use them directly.
 *
 * Inode numbers are the FUSE node ids (the root is 1).  Functions that
 * return an inode have taken one lookup reference on it for the caller
 * (the kernel's, when a FUSE reply carries it); drop it with
 * inode_forget().  All return 0 or -errno and take the locks they need.
 */
#ifndef DAXFS_NAMEI_H
#define DAXFS_NAMEI_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "daxfs_i.h"

struct fs_cred {
	uint32_t uid, gid;
};

/* which fields fs_setattr changes */
#define SETATTR_MODE		0x01u
#define SETATTR_UID		0x02u
#define SETATTR_GID		0x04u
#define SETATTR_SIZE		0x08u
#define SETATTR_ATIME		0x10u
#define SETATTR_MTIME		0x20u
#define SETATTR_ATIME_NOW	0x40u
#define SETATTR_MTIME_NOW	0x80u
#define SETATTR_CTIME		0x100u

struct fs_setattr {
	unsigned valid;
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

int fs_lookup(struct daxfs *fs, uint64_t parent, const char *name,
	      struct inode **out);
int fs_dir_lock(struct daxfs *fs, uint64_t ino, struct inode **dir);
void fs_dir_unlock(struct daxfs *fs);
int fs_getattr(struct daxfs *fs, uint64_t ino, struct stat *st);
int fs_mknod(struct daxfs *fs, uint64_t parent, const char *name,
	     uint32_t mode, uint64_t rdev, const struct fs_cred *c,
	     struct inode **out);
int fs_mkdir(struct daxfs *fs, uint64_t parent, const char *name,
	     uint32_t mode, const struct fs_cred *c, struct inode **out);
int fs_symlink(struct daxfs *fs, uint64_t parent, const char *name,
	       const char *target, const struct fs_cred *c,
	       struct inode **out);
int fs_link(struct daxfs *fs, uint64_t ino, uint64_t newparent,
	    const char *newname, struct inode **out);
int fs_unlink(struct daxfs *fs, uint64_t parent, const char *name);
int fs_rmdir(struct daxfs *fs, uint64_t parent, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE */
int fs_rename(struct daxfs *fs, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned flags);
/* returns the target's length; buf gets it NUL-terminated if it fits */
int fs_readlink(struct daxfs *fs, uint64_t ino, char *buf, size_t size);
int fs_setattr(struct daxfs *fs, uint64_t ino, const struct fs_setattr *a,
	       struct stat *out);
int fs_write(struct daxfs *fs, uint64_t ino, uint64_t off, const void *buf,
	     uint64_t len);
int fs_read(struct daxfs *fs, uint64_t ino, uint64_t off, void *buf,
	    uint64_t len);
int fs_fsync(struct daxfs *fs, uint64_t ino, bool datasync);
int fs_fallocate(struct daxfs *fs, uint64_t ino, int mode, uint64_t off,
		 uint64_t len);
int fs_setxattr(struct daxfs *fs, uint64_t ino, const char *name,
		const void *value, size_t size, int flags);
int fs_getxattr(struct daxfs *fs, uint64_t ino, const char *name,
		void *value, size_t size);
int fs_listxattr(struct daxfs *fs, uint64_t ino, char *buf, size_t size);
int fs_removexattr(struct daxfs *fs, uint64_t ino, const char *name);

#endif
