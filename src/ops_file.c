/*
 * ops_file.c -- FUSE handlers for file data: open, create, read, write,
 * release, fsync, fallocate, lseek and copy_file_range.
 *
 * Reads reply straight from region memory: the reply's iovec points into
 * the mapping (holes point at a shared zero buffer) and the kernel copies
 * from there, with the file's io_lock held shared until it has.  A page
 * that vanished under the copy makes the kernel fail the reply with EIO
 * for the reader; it never faults the daemon.
 *
 * Owns: nothing.  Must never: hand the kernel a region pointer outside the
 * gate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ops_i.h"

#define BS DAXFS_BLOCK_SIZE
#define ZERO_LEN (128u << 10)
#define MAX_IOV 512

static const char zeroes[ZERO_LEN];

static struct inode *fh_inode(struct fuse_file_info *fi)
{
	return (struct inode *)(uintptr_t)fi->fh;
}

/*
 * put_open -- drop one of the references counted in i->nopen: an open
 * handle (RELEASE) or a read that used the inode after its reply went out.
 * The kernel may already have sent FORGET (it sends RELEASE
 * asynchronously), so the last reference evicts the inode if nothing else
 * knows it.  i may be freed by others from the decrement on; only ino is
 * used after it.
 */
static void put_open(struct daemon *d, struct inode *i, fuse_ino_t ino,
		     bool in_gate)
{
	if (atomic_fetch_sub(&i->nopen, 1) != 1)
		return;
	if (!in_gate && gate_enter(&d->gate, USE_INTERNAL, OP_RELEASE, ino))
		return;
	pthread_rwlock_wrlock(&d->fs->meta_lock);
	inode_close_locked(d->fs, ino);
	pthread_rwlock_unlock(&d->fs->meta_lock);
	if (!in_gate)
		gate_exit(&d->gate);
}

/* do_open -- common to open and create: track it, keep the page cache */
static void do_open(struct daemon *d, struct inode *i,
		    struct fuse_file_info *fi)
{
	fi->fh = (uintptr_t)i;
	/* every change goes through this mount, so cached pages stay
	 * valid across opens */
	fi->keep_cache = 1;
	atomic_fetch_add(&i->nopen, 1);
	atomic_fetch_add(&d->open_files, 1);
	mapping_add(&d->map, i->ino);
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct inode *i;
	int ret = gate_enter(&d->gate, USE_NEW, OP_OPEN, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	pthread_rwlock_rdlock(&d->fs->meta_lock);
	ret = inode_get(d->fs, ino, &i);
	pthread_rwlock_unlock(&d->fs->meta_lock);
	if (!ret && inode_is_dir(i))
		ret = -EISDIR;
	else if (!ret && !inode_is_reg(i))
		ret = -EINVAL;
	/* libfuse asks for atomic O_TRUNC: the kernel then drops its pages
	 * and size itself and leaves truncating the file to us */
	if (!ret && (fi->flags & O_TRUNC)) {
		struct fs_setattr a = { .valid = SETATTR_SIZE, .size = 0 };

		ret = fs_setattr(d->fs, ino, &a, NULL);
	}
	if (ret) {
		reply_err(req, ret == -ENOENT ? -ESTALE : ret);
	} else {
		do_open(d, i, fi);
		if (fuse_reply_open(req, fi)) {
			atomic_fetch_sub(&i->nopen, 1);
			atomic_fetch_sub(&d->open_files, 1);
		}
	}
	gate_exit(&d->gate);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fs_cred c = { ctx->uid, ctx->gid };
	struct fuse_entry_param e;
	struct inode *i;
	int ret = gate_enter(&d->gate, USE_NEW, OP_CREATE, parent);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = fs_mknod(d->fs, parent, name, (mode & 07777) | S_IFREG, 0, &c,
		       &i);
	if (ret) {
		reply_err(req, ret);
	} else {
		ops_fill_entry(d, i, &e);
		do_open(d, i, fi);
		if (fuse_reply_create(req, &e, fi)) {
			atomic_fetch_sub(&i->nopen, 1);
			atomic_fetch_sub(&d->open_files, 1);
			inode_forget(d->fs, i->ino, 1, false);
		}
	}
	gate_exit(&d->gate);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct inode *i = fh_inode(fi);
	struct iovec iov[MAX_IOV];
	uint64_t pos = (uint64_t)off, end;
	int n = 0, ret = gate_enter(&d->gate, USE_READ, OP_READ, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	/*
	 * Once the reply is out, the application may close the file and the
	 * kernel may forget the inode before this thread has let go of
	 * io_lock: a reference in nopen keeps the inode in memory until then.
	 */
	atomic_fetch_add(&i->nopen, 1);
	pthread_rwlock_rdlock(&i->io_lock);
	end = pos < i->d.size ? MIN(i->d.size, pos + size) : pos;
	while (pos < end && n < MAX_IOV) {
		uint64_t pblk, run, len;
		bool mapped = ext_lookup(i, pos / BS, &pblk, &run);

		len = run == UINT64_MAX ? end - pos :
		      MIN(FS_BLOCK_OFF(run) - pos % BS, end - pos);
		if (mapped) {
			const void *p = region_ptr(d->fs->r, FS_BLOCK_OFF(pblk) +
						   pos % BS, len);

			if (!p) {
				ret = EIO;
				break;
			}
			iov[n].iov_base = (void *)p;
		} else {
			len = MIN(len, ZERO_LEN);
			iov[n].iov_base = (void *)zeroes;
		}
		iov[n++].iov_len = len;
		pos += len;
	}
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_iov(req, iov, n);	/* a short read at MAX_IOV */
	pthread_rwlock_unlock(&i->io_lock);
	put_open(d, i, ino, true);
	gate_exit(&d->gate);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct inode *i = fh_inode(fi);
	bool wb = fi->writepage;
	int ret = gate_enter(&d->gate, wb ? USE_WRITEBACK : USE_WRITE,
			     OP_WRITE, ino);

	if (ret) {
		if (wb)
			atomic_fetch_add(&d->gate.lost_bytes, size);
		else
			unbind_reinvalidate(d, ino);
		reply_err(req, ret);
		return;
	}
	if (d->readonly) {
		ret = -EROFS;
	} else {
		pthread_rwlock_wrlock(&i->io_lock);
		ret = file_write_bytes(d->fs, i, (uint64_t)off, buf, size);
		pthread_rwlock_unlock(&i->io_lock);
	}
	if (ret >= 0 && (fi->flags & (O_SYNC | O_DSYNC))) {
		int r = file_sync(d->fs, i,
				  (fi->flags & O_SYNC) != O_SYNC);

		if (r)
			ret = r;
	}
	if (ret < 0) {
		if (wb)
			atomic_fetch_add(&d->gate.lost_bytes, size);
		reply_err(req, ret);
	} else {
		if (wb && gate_state(&d->gate) != GATE_LIVE)
			atomic_fetch_add(&d->gate.writeback_bytes,
					 (uint64_t)ret);
		fuse_reply_write(req, (size_t)ret);
	}
	gate_exit(&d->gate);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	atomic_fetch_sub(&d->open_files, 1);
	put_open(d, fh_inode(fi), ino, false);
	fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_WRITEBACK, OP_FSYNC, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ret = d->readonly ? 0 : file_sync(d->fs, fh_inode(fi), datasync);
	reply_err(req, ret);
	gate_exit(&d->gate);
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		  off_t len, struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	int ret = gate_enter(&d->gate, USE_WRITE, OP_FALLOCATE, ino);

	(void)fi;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (off < 0 || len <= 0)
		ret = -EINVAL;
	else
		ret = fs_fallocate(d->fs, ino, mode, (uint64_t)off,
				   (uint64_t)len);
	reply_err(req, ret);
	gate_exit(&d->gate);
}

/* seek_data_hole -- SEEK_DATA / SEEK_HOLE over the extent list */
static int64_t seek_data_hole(struct inode *i, uint64_t off, int whence)
{
	uint64_t size = i->d.size, pos = off;

	if (off >= size)
		return -ENXIO;
	while (pos < size) {
		uint64_t pblk, run;
		bool mapped = ext_lookup(i, pos / BS, &pblk, &run);

		if (mapped == (whence == SEEK_DATA))
			return (int64_t)pos;
		if (run == UINT64_MAX)
			break;
		pos = FS_BLOCK_OFF(pos / BS + run);
	}
	/* past the last extent: a hole up to the end of file */
	return whence == SEEK_HOLE ? (int64_t)size : -ENXIO;
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	struct daemon *d = D(req);
	struct inode *i = fh_inode(fi);
	int64_t r;
	int ret = gate_enter(&d->gate, USE_META_READ, OP_LSEEK, ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (off < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		reply_err(req, EINVAL);
		gate_exit(&d->gate);
		return;
	}
	pthread_rwlock_rdlock(&i->io_lock);
	r = seek_data_hole(i, (uint64_t)off, whence);
	if (r >= 0 && r < off)
		r = off;
	pthread_rwlock_unlock(&i->io_lock);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_lseek(req, r);
	gate_exit(&d->gate);
}

/*
 * copy_range -- copy len bytes from src at off_in to dst at off_out,
 * region to region (holes as zeroes), with both io_locks held.
 */
static int64_t copy_range(struct daxfs *fs, struct inode *src, uint64_t off_in,
			  struct inode *dst, uint64_t off_out, uint64_t len)
{
	uint64_t done = 0, end;

	if (off_in >= src->d.size)
		return 0;
	end = MIN(src->d.size, off_in + len);
	while (off_in + done < end) {
		uint64_t pos = off_in + done, pblk, run, n;
		bool mapped = ext_lookup(src, pos / BS, &pblk, &run);
		const void *p;
		int w;

		n = run == UINT64_MAX ? end - pos :
		    MIN(FS_BLOCK_OFF(run) - pos % BS, end - pos);
		n = MIN(n, 1ULL << 20);
		if (mapped) {
			p = region_ptr(fs->r, FS_BLOCK_OFF(pblk) + pos % BS, n);
			if (!p)
				return done ? (int64_t)done : -EIO;
		} else {
			n = MIN(n, ZERO_LEN);
			p = zeroes;
		}
		w = file_write_bytes(fs, dst, off_out + done, p, n);
		if (w < 0)
			return done ? (int64_t)done : w;
		done += (uint64_t)w;
		if ((uint64_t)w < n)
			break;
	}
	return (int64_t)done;
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			off_t off_out, struct fuse_file_info *fi_out,
			size_t len, int flags)
{
	struct daemon *d = D(req);
	struct inode *src = fh_inode(fi_in), *dst = fh_inode(fi_out);
	int64_t r;
	int ret = gate_enter(&d->gate, USE_WRITE, OP_COPY_FILE_RANGE, ino_out);

	(void)ino_in;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (flags || off_in < 0 || off_out < 0) {
		reply_err(req, EINVAL);
		gate_exit(&d->gate);
		return;
	}
	if (d->readonly) {
		reply_err(req, EROFS);
		gate_exit(&d->gate);
		return;
	}
	if (src == dst) {
		uint64_t a = (uint64_t)off_in, b = (uint64_t)off_out;

		if (a < b + len && b < a + len) {
			reply_err(req, EINVAL);	/* overlapping ranges */
			gate_exit(&d->gate);
			return;
		}
		pthread_rwlock_wrlock(&src->io_lock);
	} else if (src->ino < dst->ino) {	/* lock order: by inode */
		pthread_rwlock_rdlock(&src->io_lock);
		pthread_rwlock_wrlock(&dst->io_lock);
	} else {
		pthread_rwlock_wrlock(&dst->io_lock);
		pthread_rwlock_rdlock(&src->io_lock);
	}
	r = copy_range(d->fs, src, (uint64_t)off_in, dst, (uint64_t)off_out,
		       len);
	if (src != dst)
		pthread_rwlock_unlock(&dst->io_lock);
	pthread_rwlock_unlock(&src->io_lock);
	if (r < 0)
		reply_err(req, (int)r);
	else
		fuse_reply_write(req, (size_t)r);
	gate_exit(&d->gate);
}
