/*
 * ops.c -- the FUSE lowlevel op table, session-wide handlers (init,
 * forget, statfs) and the control ioctl.
 *
 * Owns: nothing; every handler is a thin wrapper.  Must never: touch the
 * region outside the gate, or block a request thread on the unbind
 * sequence.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ops_i.h"
#include "transport.h"

void ops_fill_entry(struct daemon *d, struct inode *i,
		    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = i->ino;
	e->generation = i->d.generation;
	pthread_rwlock_rdlock(&d->fs->meta_lock);
	inode_stat(d->fs, i, &e->attr);
	pthread_rwlock_unlock(&d->fs->meta_lock);
	e->attr_timeout = d->attr_timeout;
	e->entry_timeout = d->entry_timeout;
}

void ops_reply_entry(fuse_req_t req, int ret, struct inode *i)
{
	struct fuse_entry_param e;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	ops_fill_entry(D(req), i, &e);
	if (fuse_reply_entry(req, &e))
		inode_forget(D(req)->fs, i->ino, 1, false);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	/* everything changes through this mount, so the kernel's caches
	 * stay coherent; writes go through (no writeback cache), which
	 * keeps application writes and page writeback distinguishable */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE);
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->time_gran = 1;
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct daemon *d = D(req);
	bool ok = gate_enter(&d->gate, USE_INTERNAL, OP_FORGET, ino) == 0;

	if (inode_forget(d->fs, ino, nlookup, ok) > 0)
		mapping_remove(&d->map, ino);
	if (ok)
		gate_exit(&d->gate);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct daemon *d = D(req);
	bool ok = gate_enter(&d->gate, USE_INTERNAL, OP_FORGET, 0) == 0;

	for (size_t k = 0; k < count; k++)
		if (inode_forget(d->fs, forgets[k].ino, forgets[k].nlookup,
				 ok) > 0)
			mapping_remove(&d->map, forgets[k].ino);
	if (ok)
		gate_exit(&d->gate);
	fuse_reply_none(req);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct daemon *d = D(req);
	struct daxfs *fs = d->fs;
	struct statvfs sv;
	int err = gate_enter(&d->gate, USE_META_READ, OP_STATFS, ino);

	if (err) {
		reply_err(req, err);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	pthread_rwlock_rdlock(&fs->meta_lock);
	sv.f_bsize = DAXFS_BLOCK_SIZE;
	sv.f_frsize = DAXFS_BLOCK_SIZE;
	sv.f_blocks = fs->nblocks - fs->data_start - 1;
	sv.f_bfree = fs->alloc.free;
	sv.f_bavail = fs->alloc.free;
	sv.f_files = fs->ninodes - 1;
	sv.f_ffree = fs->free_inodes;
	sv.f_favail = fs->free_inodes;
	memcpy(&sv.f_fsid, fs->sb.uuid, sizeof(sv.f_fsid));
	pthread_rwlock_unlock(&fs->meta_lock);
	sv.f_namemax = DAXFS_NAME_MAX;
	gate_exit(&d->gate);
	fuse_reply_statfs(req, &sv);
}

/* fill_status -- what daxfsctl status shows */
static void fill_status(struct daemon *d, struct daxfs_ctl_status *st)
{
	struct daxfs *fs = d->fs;
	struct transport_stats ts;
	int state = gate_state(&d->gate);

	memset(st, 0, sizeof(*st));
	st->version = DAXFS_CTL_VERSION;
	st->state = (uint32_t)state;
	st->pid = (uint64_t)getpid();
	str_copy(st->region, sizeof(st->region), d->region);
	snprintf(st->kind, sizeof(st->kind), "%s",
		 fs->r->kind == REGION_KIND_DEVDAX ? "devdax" : "file");
	str_copy(st->mountpoint, sizeof(st->mountpoint), d->mountpoint);
	st->open_files = atomic_load(&d->open_files);
	st->inflight = gate_inflight(&d->gate);
	gate_holders(&d->gate, st->inside, sizeof(st->inside));
	st->uring_ops = unbind_uring_ops(d);
	st->page_users = mapping_count(&d->map);
	transport_stats(d, &ts);
	st->uring = ts.uring;
	st->ring_queues = ts.queues;
	st->ring_entries = ts.entries;
	st->ring_requests = ts.requests;
	pthread_rwlock_rdlock(&fs->meta_lock);
	st->size_bytes = FS_BLOCK_OFF(fs->nblocks - fs->data_start - 1);
	st->free_bytes = FS_BLOCK_OFF(fs->alloc.free);
	st->inodes_free = fs->free_inodes;
	st->inodes_used = fs->ninodes - 1 - fs->free_inodes;
	pthread_rwlock_unlock(&fs->meta_lock);
	st->unbind_timeout_ms = d->unbind_timeout_ms;
	st->readonly = d->readonly;
	st->fs_error = atomic_load(&fs->error);
	unbind_report(d, &st->report);
}

/*
 * op_ioctl -- the control channel on the mount root.  Not gated: it must
 * answer while the region is revoked, drained and released.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct daemon *d = D(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	(void)arg;
	(void)fi;
	if (flags & FUSE_IOCTL_COMPAT) {
		reply_err(req, ENOSYS);
		return;
	}
	if (ino != FUSE_ROOT_ID) {
		reply_err(req, ENOTTY);
		return;
	}
	switch (cmd) {
	case DAXFS_IOC_STATUS: {
		struct daxfs_ctl_status st;

		if (out_bufsz < sizeof(st)) {
			reply_err(req, EINVAL);
			return;
		}
		fill_status(d, &st);
		fuse_reply_ioctl(req, 0, &st, sizeof(st));
		return;
	}
	case DAXFS_IOC_UNBIND: {
		struct daxfs_ctl_unbind u;
		int ret;

		if (in_bufsz < sizeof(u)) {
			reply_err(req, EINVAL);
			return;
		}
		if (ctx->uid != 0 && ctx->uid != d->owner_uid) {
			reply_err(req, EPERM);
			return;
		}
		memcpy(&u, in_buf, sizeof(u));
		ret = unbind_request(d, false, "daxfsctl unbind",
				     u.timeout_ms);
		if (ret)
			reply_err(req, ret);
		else
			fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	}
	}
	reply_err(req, ENOTTY);
}

const struct fuse_lowlevel_ops daxfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	/* no .flush: writes go through, so close has nothing to report;
	 * answering ENOSYS once makes the kernel stop sending FLUSH */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.ioctl = op_ioctl,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
};
