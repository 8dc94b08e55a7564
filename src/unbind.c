/*
 * unbind.c -- the unbind sequence, live -> revoking -> draining ->
 * released, and what sets it off.
 *
 * One thread, started at mount, runs the sequence and watches for the
 * region vanishing.  It never serves FUSE requests, which is what lets it
 * call fuse_lowlevel_notify_inval_inode (that call waits for the
 * writeback WRITEs the request threads answer).  It waits with io_uring:
 * one poll each on an eventfd (unbind requests from the control ioctl and
 * from the SIGBUS guard), a 1-second timerfd (so an idle daemon notices a
 * vanished region within about a second), an inotify descriptor (a file
 * region truncated or unlinked) and a kobject-uevent netlink socket (a
 * devdax device unbound or removed).  Those polls are the daemon's own
 * io_uring operations: the sequence cancels and reaps them before it
 * releases the region.
 *
 * Owns: struct unbind, the report.  Must never: release the region while
 * a request is inside the gate, except after the timeout -- then the
 * region's address range stays reserved and inaccessible, so a straggler
 * gets EIO, and the report names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <liburing.h>

#include "daemon.h"

enum { W_EVENT = 1, W_TIMER, W_INOTIFY, W_UEVENT, W_CANCEL };

struct unbind {
	pthread_t thread;
	bool started;
	int efd, tfd, ifd, nfd;		/* closed by unbind_stop() */
	struct io_uring ring;
	bool have_ring;
	atomic_uint uring_ops;		/* polls armed in the ring */
	pthread_mutex_t lock;		/* guards everything below */
	bool stop;
	int want;			/* 0, or 1 orderly / 2 forced */
	char cause[128];
	uint64_t timeout_ms;
	struct daxfs_ctl_report report;	/* final figures of done phases */
	uint64_t again[64];		/* inodes to invalidate once more */
	uint32_t nagain;
	/* while the sequence runs: when it and the current phase began,
	 * and the gate's counters at the start, so that status can show
	 * the figures so far */
	uint64_t t0, t_phase;
	uint64_t wb0, lost0, ref0, done0;
	atomic_uint_fast64_t revoked;	/* inodes revoked so far */
};

static uint64_t ms_since(uint64_t t0)
{
	return (now_ns() - t0) / 1000000ull;
}

/* arm -- one poll in the ring for fd */
static void arm(struct unbind *u, int fd, uint64_t tag)
{
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag);
	atomic_fetch_add(&u->uring_ops, 1);
}

/* cancel_all -- cancel our polls and reap every completion */
static uint64_t cancel_all(struct unbind *u)
{
	struct io_uring_cqe *cqe;
	uint64_t tags[] = { W_EVENT, W_TIMER, W_INOTIFY, W_UEVENT };
	uint64_t cancelled = atomic_load(&u->uring_ops);

	for (size_t k = 0; k < ARRAY_SIZE(tags); k++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

		if (!sqe)
			break;
		io_uring_prep_poll_remove(sqe, tags[k]);
		io_uring_sqe_set_data64(sqe, W_CANCEL);
	}
	io_uring_submit(&u->ring);
	while (atomic_load(&u->uring_ops) > 0) {
		struct __kernel_timespec ts = { 1, 0 };

		if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts))
			break;
		if (io_uring_cqe_get_data64(cqe) != W_CANCEL)
			atomic_fetch_sub(&u->uring_ops, 1);
		io_uring_cqe_seen(&u->ring, cqe);
	}
	/* the cancellations' own completions */
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0)
		io_uring_cqe_seen(&u->ring, cqe);
	return cancelled;
}

/* region_vanished -- the SIGBUS guard found the region gone */
static void region_vanished(struct region *r, void *arg)
{
	struct daemon *d = arg;

	(void)r;
	unbind_request(d, true, "region access faulted (SIGBUS)", 0);
}

/* publish -- rep as the report, entering `phase` now; u->lock not held */
static void publish(struct unbind *u, struct daxfs_ctl_report *rep,
		    uint32_t phase)
{
	rep->phase = phase;
	pthread_mutex_lock(&u->lock);
	u->report = *rep;
	u->t_phase = now_ns();
	pthread_mutex_unlock(&u->lock);
}

/* gate_figures -- what the gate has counted since the unbind began */
static void gate_figures(struct daemon *d, struct daxfs_ctl_report *r)
{
	struct unbind *u = d->ub;

	r->bytes_written_back = atomic_load(&d->gate.writeback_bytes) -
				u->wb0;
	r->bytes_lost = atomic_load(&d->gate.lost_bytes) - u->lost0;
	r->requests_refused = atomic_load(&d->gate.refused) - u->ref0;
}

/* sofar -- fill in the running figures of an unbind under way; u->lock */
static void sofar(struct daemon *d, struct daxfs_ctl_report *r)
{
	struct unbind *u = d->ub;
	uint64_t now = now_ns(), phase_ms = (now - u->t_phase) / 1000000ull;

	if (r->phase == DAXFS_PHASE_NONE || r->phase == DAXFS_PHASE_DONE)
		return;
	r->ms_total = (now - u->t0) / 1000000ull;
	gate_figures(d, r);
	switch (r->phase) {
	case DAXFS_PHASE_REVOKING:
		r->inodes_revoked = atomic_load(&u->revoked);
		r->ms_revoke = phase_ms;
		break;
	case DAXFS_PHASE_DRAINING:
		r->requests_drained = atomic_load(&d->gate.completed) -
				      u->done0;
		r->ms_drain = phase_ms;
		break;
	default:
		r->ms_release = phase_ms;
		break;
	}
}

/*
 * run -- the sequence.  Called on the unbind thread only.  Each phase's
 * figures are published when it ends; status fills in the current one's
 * as it goes (sofar).
 */
static void run(struct daemon *d, bool forced, const char *cause,
		uint64_t timeout_ms)
{
	struct unbind *u = d->ub;
	struct daxfs_ctl_report rep;
	uint64_t t0 = now_ns(), t;
	struct timespec wall;
	int ret;

	memset(&rep, 0, sizeof(rep));
	rep.valid = 1;
	rep.forced = forced;
	clock_gettime(CLOCK_REALTIME, &wall);
	rep.started_unix_ms = (uint64_t)wall.tv_sec * 1000 +
			      (uint64_t)wall.tv_nsec / 1000000;
	snprintf(rep.cause, sizeof(rep.cause), "%s", cause);
	pthread_mutex_lock(&u->lock);
	u->t0 = t0;
	u->wb0 = atomic_load(&d->gate.writeback_bytes);
	u->lost0 = atomic_load(&d->gate.lost_bytes);
	u->ref0 = atomic_load(&d->gate.refused);
	atomic_store(&u->revoked, 0);
	pthread_mutex_unlock(&u->lock);
	publish(u, &rep, DAXFS_PHASE_REVOKING);
	syslog(LOG_NOTICE, "daxfs: %s: %s unbind: %s", d->mountpoint,
	       forced ? "forced" : "orderly", cause);

	/* 1. revoking: no new users; pages come back, then fault */
	gate_set(&d->gate, GATE_REVOKING);
	ret = mapping_revoke(&d->map, d->se, &u->revoked);
	if (ret && !rep.error)
		rep.error = (uint32_t)-ret;
	rep.inodes_revoked = atomic_load(&u->revoked);
	rep.ms_revoke = ms_since(t0);

	/* 2. draining: wait for every request still inside */
	t = now_ns();
	pthread_mutex_lock(&u->lock);
	u->done0 = atomic_load(&d->gate.completed);
	pthread_mutex_unlock(&u->lock);
	publish(u, &rep, DAXFS_PHASE_DRAINING);
	gate_set(&d->gate, GATE_DRAINING);
	ret = gate_drain(&d->gate, timeout_ms, rep.holders,
			 sizeof(rep.holders));
	if (ret == -ETIMEDOUT) {
		rep.timed_out = 1;
		syslog(LOG_WARNING, "daxfs: %s: drain timed out after %llu "
		       "ms; still inside: %s", d->mountpoint,
		       (unsigned long long)timeout_ms, rep.holders);
	}
	rep.requests_drained = atomic_load(&d->gate.completed) - u->done0;
	rep.uring_cancelled = cancel_all(u);
	rep.ms_drain = ms_since(t);
	publish(u, &rep, DAXFS_PHASE_RELEASING);

	/* 3. released: persist, mark clean, let go of the region.  Not
	 * when the region vanished: no fault may have been seen yet (an idle
	 * daemon whose file region was cut), but writing to it now would mark
	 * clean a region that lost its tail. */
	t = now_ns();
	if (region_alive(d->fs->r) && !rep.timed_out &&
	    !(forced && region_backing_gone(d->fs->r))) {
		ret = fs_quiesce(d->fs);
		if (ret && !rep.error)
			rep.error = (uint32_t)-ret;
	}
	ret = region_release(d->fs->r);
	if (ret && !rep.error)
		rep.error = (uint32_t)-ret;
	gate_set(&d->gate, GATE_RELEASED);
	rep.ms_release = ms_since(t);
	rep.ms_total = ms_since(t0);
	gate_figures(d, &rep);
	publish(u, &rep, DAXFS_PHASE_DONE);
	syslog(LOG_NOTICE, "daxfs: %s: region released in %llu ms "
	       "(%llu inodes revoked, %llu requests drained, %llu bytes "
	       "written back, %llu lost)", d->mountpoint,
	       (unsigned long long)rep.ms_total,
	       (unsigned long long)rep.inodes_revoked,
	       (unsigned long long)rep.requests_drained,
	       (unsigned long long)rep.bytes_written_back,
	       (unsigned long long)rep.bytes_lost);
}

/* uevent_matches -- is this kobject event our device going away? */
static bool uevent_matches(struct daemon *d, const char *buf, ssize_t n)
{
	const char *name = d->fs->r->name;
	bool gone = false, ours = false;

	if (!name[0])
		return false;
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1) {
		const char *kv = buf + off;
		const char *slash;

		if (!strcmp(kv, "ACTION=unbind") || !strcmp(kv, "ACTION=remove"))
			gone = true;
		if (!strncmp(kv, "DEVPATH=", 8) &&
		    (slash = strrchr(kv, '/')) && !strcmp(slash + 1, name))
			ours = true;
	}
	return gone && ours;
}

static void open_watchers(struct daemon *d)
{
	struct unbind *u = d->ub;
	struct region *r = d->fs->r;
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };

	u->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (u->tfd >= 0)
		timerfd_settime(u->tfd, 0, &its, NULL);
	u->ifd = u->nfd = -1;
	if (r->kind == REGION_KIND_FILE) {
		u->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (u->ifd >= 0 &&
		    inotify_add_watch(u->ifd, r->path, IN_MODIFY | IN_ATTRIB |
				      IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
			close(u->ifd);
			u->ifd = -1;
		}
	} else {
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
					  .nl_groups = 1 };

		u->nfd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC |
				SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
		if (u->nfd >= 0 &&
		    bind(u->nfd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(u->nfd);
			u->nfd = -1;
		}
	}
}

static void drain_fd(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* thread -- wait for a trigger; run the sequence once; then idle */
static void *thread(void *arg)
{
	struct daemon *d = arg;
	struct unbind *u = d->ub;
	bool done = false;

	arm(u, u->efd, W_EVENT);
	arm(u, u->tfd, W_TIMER);
	arm(u, u->ifd, W_INOTIFY);
	arm(u, u->nfd, W_UEVENT);
	io_uring_submit(&u->ring);
	for (;;) {
		struct io_uring_cqe *cqe;
		uint64_t tag;
		char cause[128] = "";
		int want = 0;
		uint64_t tmo;
		bool stop;

		if (!done) {
			if (io_uring_wait_cqe(&u->ring, &cqe))
				continue;
			tag = io_uring_cqe_get_data64(cqe);
			io_uring_cqe_seen(&u->ring, cqe);
			atomic_fetch_sub(&u->uring_ops, 1);
			switch (tag) {
			case W_EVENT:
				drain_fd(u->efd);
				break;
			case W_TIMER:
				drain_fd(u->tfd);
				if (region_alive(d->fs->r) &&
				    region_backing_gone(d->fs->r))
					unbind_request(d, true, d->fs->r->kind ==
						REGION_KIND_FILE ?
						"file region truncated or "
						"deleted" :
						"device-DAX device unbound",
						0);
				break;
			case W_INOTIFY:
				drain_fd(u->ifd);
				if (region_backing_gone(d->fs->r))
					unbind_request(d, true, "file region "
						"truncated or deleted", 0);
				break;
			case W_UEVENT: {
				char buf[8192];
				ssize_t n;

				while ((n = recv(u->nfd, buf, sizeof(buf) - 1,
						 0)) > 0) {
					buf[n] = 0;
					if (uevent_matches(d, buf, n))
						unbind_request(d, true,
							"device-DAX device "
							"unbound or removed", 0);
				}
				break;
			}
			}
			arm(u, tag == W_EVENT ? u->efd : tag == W_TIMER ?
			    u->tfd : tag == W_INOTIFY ? u->ifd : u->nfd, tag);
			io_uring_submit(&u->ring);
		} else {
			uint64_t v;

			uint64_t again[ARRAY_SIZE(u->again)];
			uint32_t n;

			/* released: nothing left to watch but requests to
			 * invalidate inodes again; wait to stop */
			if (read(u->efd, &v, sizeof(v)) < 0) {
				struct pollfd p = { u->efd, POLLIN, 0 };

				poll(&p, 1, 1000);
			}
			pthread_mutex_lock(&u->lock);
			n = u->nagain;
			memcpy(again, u->again, n * sizeof(*again));
			u->nagain = 0;
			pthread_mutex_unlock(&u->lock);
			for (uint32_t k = 0; k < n; k++)
				fuse_lowlevel_notify_inval_inode(d->se, again[k],
								 0, 0);
		}
		pthread_mutex_lock(&u->lock);
		stop = u->stop;
		if (!done && u->want) {
			want = u->want;
			snprintf(cause, sizeof(cause), "%s", u->cause);
		}
		tmo = u->timeout_ms;
		pthread_mutex_unlock(&u->lock);
		if (stop)
			break;
		if (want) {
			run(d, want == 2, cause, tmo);
			done = true;
		}
	}
	if (!done)
		cancel_all(u);
	return NULL;
}

/* unbind_start -- the watcher thread, at mount */
int unbind_start(struct daemon *d)
{
	struct unbind *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	d->ub = u;
	pthread_mutex_init(&u->lock, NULL);
	u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->efd < 0)
		return -errno;
	ret = io_uring_queue_init(16, &u->ring, 0);
	if (ret)
		return ret;
	u->have_ring = true;
	open_watchers(d);
	d->fs->r->on_vanish = region_vanished;
	d->fs->r->on_vanish_arg = d;
	ret = -pthread_create(&u->thread, NULL, thread, d);
	u->started = !ret;
	return ret;
}

/* unbind_stop -- end the thread (at unmount) */
void unbind_stop(struct daemon *d)
{
	struct unbind *u = d->ub;
	uint64_t one = 1;

	if (!u)
		return;
	if (d->fs && d->fs->r)
		d->fs->r->on_vanish = NULL;
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	pthread_mutex_unlock(&u->lock);
	if (u->started) {
		if (write(u->efd, &one, sizeof(one)) < 0)
			syslog(LOG_WARNING, "daxfs: cannot wake unbind thread");
		pthread_join(u->thread, NULL);
	}
	if (u->have_ring)
		io_uring_queue_exit(&u->ring);
	if (u->efd >= 0)
		close(u->efd);
	if (u->tfd >= 0)
		close(u->tfd);
	if (u->ifd >= 0)
		close(u->ifd);
	if (u->nfd >= 0)
		close(u->nfd);
	pthread_mutex_destroy(&u->lock);
	free(u);
	d->ub = NULL;
}

/*
 * unbind_request -- ask for the sequence (from any thread, including a
 * request handler that just hit SIGBUS).  -EALREADY once one was asked.
 */
int unbind_request(struct daemon *d, bool forced, const char *cause,
		   uint64_t timeout_ms)
{
	struct unbind *u = d->ub;
	uint64_t one = 1;
	int ret = 0;

	if (!u)
		return -ENXIO;
	pthread_mutex_lock(&u->lock);
	if (u->want) {
		ret = -EALREADY;
	} else {
		u->want = forced ? 2 : 1;
		snprintf(u->cause, sizeof(u->cause), "%s", cause);
		u->timeout_ms = timeout_ms ? timeout_ms : d->unbind_timeout_ms;
		u->report.valid = 1;
		u->report.forced = forced;
		snprintf(u->report.cause, sizeof(u->report.cause), "%s",
			 cause);
	}
	pthread_mutex_unlock(&u->lock);
	if (!ret && write(u->efd, &one, sizeof(one)) < 0)
		ret = -errno;
	return ret;
}

/*
 * unbind_reinvalidate -- a write was refused after revocation.  The
 * kernel put that write's data into the page cache, marked valid, before
 * asking us, so a reader (or a new mapping) could still see it: drop the
 * inode's pages once more, from the unbind thread (a request thread
 * cannot: the writer still holds those pages locked until we reply).
 */
void unbind_reinvalidate(struct daemon *d, uint64_t ino)
{
	struct unbind *u = d->ub;
	uint64_t one = 1;
	bool queued = false;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	for (uint32_t k = 0; k < u->nagain; k++)
		if (u->again[k] == ino)
			queued = true;
	if (!queued && u->nagain < ARRAY_SIZE(u->again)) {
		u->again[u->nagain++] = ino;
		queued = true;
	}
	pthread_mutex_unlock(&u->lock);
	if (queued && write(u->efd, &one, sizeof(one)) < 0)
		syslog(LOG_WARNING, "daxfs: cannot wake the unbind thread");
}

void unbind_report(struct daemon *d, struct daxfs_ctl_report *out)
{
	struct unbind *u = d->ub;

	memset(out, 0, sizeof(*out));
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	*out = u->report;
	sofar(d, out);
	pthread_mutex_unlock(&u->lock);
}

uint64_t unbind_uring_ops(struct daemon *d)
{
	return d->ub ? atomic_load(&d->ub->uring_ops) : 0;
}
