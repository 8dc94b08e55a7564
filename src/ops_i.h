/*
 * ops_i.h -- what the FUSE handler files (ops.c, ops_dir.c, ops_file.c)
 * share.  Every handler is thin: enter the gate, call a namei.c or file.c
 * worker that returns 0 or -errno, reply, leave the gate.
 */
#ifndef DAXFS_OPS_I_H
#define DAXFS_OPS_I_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "daemon.h"
#include "namei.h"

/* FUSE opcodes, for the gate's reports (values of the FUSE protocol) */
enum {
	OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4,
	OP_READLINK = 5, OP_SYMLINK = 6, OP_MKNOD = 8, OP_MKDIR = 9,
	OP_UNLINK = 10, OP_RMDIR = 11, OP_RENAME = 12, OP_LINK = 13,
	OP_OPEN = 14, OP_READ = 15, OP_WRITE = 16, OP_STATFS = 17,
	OP_RELEASE = 18, OP_FSYNC = 20, OP_SETXATTR = 21, OP_GETXATTR = 22,
	OP_LISTXATTR = 23, OP_REMOVEXATTR = 24, OP_FLUSH = 25,
	OP_READDIR = 28, OP_FSYNCDIR = 30, OP_CREATE = 35,
	OP_FALLOCATE = 43, OP_READDIRPLUS = 44, OP_RENAME2 = 45,
	OP_LSEEK = 46, OP_COPY_FILE_RANGE = 47,
};

static inline struct daemon *D(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* reply_err -- reply with a positive errno (0 = success) */
static inline void reply_err(fuse_req_t req, int err)
{
	fuse_reply_err(req, err < 0 ? -err : err);
}

/* fill_entry -- a reply entry for inode i (which holds a reference) */
void ops_fill_entry(struct daemon *d, struct inode *i,
		    struct fuse_entry_param *e);
/* reply_entry -- reply with i, or with the error */
void ops_reply_entry(fuse_req_t req, int ret, struct inode *i);

/* handlers, by file */
void op_lookup(fuse_req_t, fuse_ino_t, const char *);
void op_getattr(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void op_setattr(fuse_req_t, fuse_ino_t, struct stat *, int,
		struct fuse_file_info *);
void op_readlink(fuse_req_t, fuse_ino_t);
void op_mknod(fuse_req_t, fuse_ino_t, const char *, mode_t, dev_t);
void op_mkdir(fuse_req_t, fuse_ino_t, const char *, mode_t);
void op_unlink(fuse_req_t, fuse_ino_t, const char *);
void op_rmdir(fuse_req_t, fuse_ino_t, const char *);
void op_symlink(fuse_req_t, const char *, fuse_ino_t, const char *);
void op_rename(fuse_req_t, fuse_ino_t, const char *, fuse_ino_t,
	       const char *, unsigned int);
void op_link(fuse_req_t, fuse_ino_t, fuse_ino_t, const char *);
void op_opendir(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void op_readdir(fuse_req_t, fuse_ino_t, size_t, off_t,
		struct fuse_file_info *);
void op_readdirplus(fuse_req_t, fuse_ino_t, size_t, off_t,
		    struct fuse_file_info *);
void op_releasedir(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void op_fsyncdir(fuse_req_t, fuse_ino_t, int, struct fuse_file_info *);
void op_setxattr(fuse_req_t, fuse_ino_t, const char *, const char *,
		 size_t, int);
void op_getxattr(fuse_req_t, fuse_ino_t, const char *, size_t);
void op_listxattr(fuse_req_t, fuse_ino_t, size_t);
void op_removexattr(fuse_req_t, fuse_ino_t, const char *);

void op_open(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void op_create(fuse_req_t, fuse_ino_t, const char *, mode_t,
	       struct fuse_file_info *);
void op_read(fuse_req_t, fuse_ino_t, size_t, off_t, struct fuse_file_info *);
void op_write(fuse_req_t, fuse_ino_t, const char *, size_t, off_t,
	      struct fuse_file_info *);
void op_release(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void op_fsync(fuse_req_t, fuse_ino_t, int, struct fuse_file_info *);
void op_fallocate(fuse_req_t, fuse_ino_t, int, off_t, off_t,
		  struct fuse_file_info *);
void op_lseek(fuse_req_t, fuse_ino_t, off_t, int, struct fuse_file_info *);
void op_copy_file_range(fuse_req_t, fuse_ino_t, off_t,
			struct fuse_file_info *, fuse_ino_t, off_t,
			struct fuse_file_info *, size_t, int);

#endif
