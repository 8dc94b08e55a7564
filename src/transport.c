/*
 * transport.c -- FUSE over io_uring: requests served from per-CPU queues
 * of ring entries instead of read(2)/writev(2) on /dev/fuse.
 *
 * Why: a FUSE request is two wake-ups, the daemon's and then the
 * application's.  With /dev/fuse any idle worker may take a request, most
 * often on the other CPU, so both wake-ups cross CPUs; on the virtual
 * machines daxfs is developed on that alone made a 4 KiB round trip take
 * about 25 us instead of 16.  With io_uring the kernel queues a request on
 * the queue of the CPU the application runs on, and the worker serving
 * that queue is pinned to that CPU.
 *
 * How: the kernel creates one queue per possible CPU.  Each worker (two
 * per queue) owns an io_uring with 128-byte SQEs and registers one ring
 * entry on its queue (IORING_OP_URING_CMD, FUSE_IO_URING_CMD_REGISTER):
 * a header buffer and a payload buffer.  One entry per worker, because
 * the kernel hands a request to any entry it holds: a second entry of a
 * worker busy with a long request (a 1 GiB copy_file_range, a large
 * fallocate) would make the next request from that CPU -- a `daxfsctl
 * status` or `unbind` among them -- wait for the long one to finish.
 * With one entry each, a request goes to a worker that is free, and only
 * waits when both of its CPU's workers are busy.  The kernel completes an
 * entry's command when it has copied a request into it.  The worker puts
 * the request back together the way /dev/fuse would have delivered it
 * (fuse_in_header, the opcode's header, the payload, contiguous: the
 * payload buffer has room in front for the first two) and hands it to
 * libfuse's fuse_session_process_buf(), which calls the same handlers as
 * ever.  Their reply reaches us through the session's writev hook: a
 * reply to the request this thread is serving is copied into the entry
 * (fuse_out_header into the header buffer, the rest into the payload
 * buffer; region memory under the SIGBUS guard, since a read reply points
 * into the region), and the worker answers with COMMIT_AND_FETCH, which
 * also waits for the next request.  Every other message -- replies to
 * requests that came through /dev/fuse, notifications -- is written to
 * /dev/fuse as before.
 *
 * The kernel keeps using /dev/fuse until every queue has an entry, and
 * always for FORGET, INTERRUPT and our notifications: libfuse's loop keeps
 * running beside the workers.  Entries can only be registered once INIT
 * has been answered (the kernel says EAGAIN before), so workers retry
 * until then.  At unmount the kernel ends every entry's command with
 * ENOTCONN; transport_stop() then wakes any worker still waiting (an
 * eventfd polled in its ring) and joins it.
 *
 * The handlers reply before they return (none defers a reply), which is
 * what lets a worker commit an entry as soon as process_buf returns.  A
 * handler that did not reply would leave the request waiting forever, so
 * the worker answers EIO for it instead.
 *
 * Owns: struct transport.  Must never: block a worker on anything that
 * needs another request on its own queue to finish (handlers never wait
 * for the kernel; the unbind thread, which does, is not a worker).
 */
#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <liburing.h>

#include "daemon.h"
#include "fuse_uring_abi.h"
#include "transport.h"

#define ENABLE_PARAM	"/sys/module/fuse/parameters/enable_uring"
#define NENTS		1		/* ring entries per worker */
#define PER_QUEUE	2		/* workers per queue */
#define HEADROOM	4096		/* in front of the payload */
#define PAYLOAD_CAP	((1u << 20) + 4096)	/* >= max_write, max_pages */
#define TAG_STOP	0		/* user_data of the stop poll */
#define BULK_BYTES	(128u << 10)	/* a transfer, not a round trip */

enum ent_state {
	ENT_IDLE,			/* not with the kernel */
	ENT_HELD,			/* registered or committed: the kernel
					 * holds it until a request comes */
	ENT_DEAD,			/* refused or torn down */
};

struct ring_ent {
	struct daxfs_uring_req_header *hdr;	/* iov[0] */
	char *buf;			/* HEADROOM + PAYLOAD_CAP; iov[1] */
	struct iovec iov[2];
	uint64_t unique;		/* the request being served */
	bool replied;			/* its reply is in the buffers */
	enum ent_state state;		/* the worker's only */
};

struct worker {
	struct transport *t;
	unsigned qid;			/* the queue, and the CPU it runs on */
	pthread_t thread;
	bool started;
	struct io_uring ring;		/* made and used by the thread */
	bool have_ring;
	bool roaming;			/* not pinned: serving bulk data */
	int efd;			/* written by transport_stop() */
	struct ring_ent ents[NENTS];
	atomic_uint held;		/* of ents, with the kernel */
};

struct transport {
	struct daemon *d;
	int fd;				/* the session's /dev/fuse */
	unsigned nqueues;
	unsigned nworkers;		/* PER_QUEUE per queue */
	cpu_set_t cpus;			/* where the daemon may run */
	struct worker *workers;
	atomic_bool stop;
	atomic_uint_fast64_t requests;	/* served through the rings */
	atomic_bool warned;
};

/* the entry this thread is serving, for the writev hook */
static __thread struct ring_ent *serving;

bool transport_uring_offered(const char **why)
{
	char c = 0;
	FILE *f = fopen(ENABLE_PARAM, "r");

	if (!f) {
		*why = "this kernel has no FUSE over io_uring";
		return false;
	}
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	if (c != 'Y' && c != '1') {
		*why = "FUSE over io_uring is off (" ENABLE_PARAM " is N)";
		return false;
	}
	*why = "";
	return true;
}

/* copy_out -- one part of a reply into the payload; region memory under
 * the SIGBUS guard.  0 or -EIO. */
static int copy_out(struct daemon *d, char *dst, const void *src, size_t len)
{
	struct region *r = d->fs->r;
	const char *p = src;

	if (r->base && p >= r->base && p < r->base + r->size)
		return region_read(r, (uint64_t)(p - r->base), dst, len);
	memcpy(dst, src, len);
	return 0;
}

/* answer_error -- a reply of err (negative) for the request in e */
static void answer_error(struct ring_ent *e, int err)
{
	struct fuse_out_header oh = {
		.len = sizeof(oh), .error = err, .unique = e->unique,
	};

	memcpy(e->hdr->in_out, &oh, sizeof(oh));
	e->hdr->ring_ent_in_out.payload_sz = 0;
	e->replied = true;
}

/* capture -- the reply to the request in e, into e's buffers */
static ssize_t capture(struct daemon *d, struct ring_ent *e,
		       const struct iovec *iov, int count)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	char *payload = e->buf + HEADROOM;
	size_t used = 0;
	int err = 0;

	for (int k = 1; k < count && !err; k++) {
		if (iov[k].iov_len > PAYLOAD_CAP - used) {
			err = -EIO;	/* never: replies fit max_read */
			break;
		}
		err = copy_out(d, payload + used, iov[k].iov_base,
			       iov[k].iov_len);
		used += iov[k].iov_len;
	}
	if (err) {
		answer_error(e, err);
	} else {
		memcpy(e->hdr->in_out, oh, sizeof(*oh));
		e->hdr->ring_ent_in_out.payload_sz = (uint32_t)used;
		e->replied = true;
	}
	return (ssize_t)oh->len;
}

/* hook_writev -- every message the session sends */
static ssize_t hook_writev(int fd, struct iovec *iov, int count,
			   void *userdata)
{
	struct ring_ent *e = serving;
	const struct fuse_out_header *out = iov[0].iov_base;

	if (e && !e->replied && out->unique == e->unique)
		return capture(userdata, e, iov, count);
	return writev(fd, iov, count);
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

/* prep_cmd -- an IORING_OP_URING_CMD on /dev/fuse */
static void prep_cmd(struct io_uring_sqe *sqe, int fd, uint32_t op,
		     unsigned qid, uint64_t commit_id, struct ring_ent *e,
		     uint64_t tag)
{
	struct daxfs_uring_cmd_req *req = (void *)sqe->cmd;

	memset(sqe, 0, 2 * sizeof(*sqe));	/* a 128-byte SQE */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	if (op == DAXFS_URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
	req->qid = (uint16_t)qid;
	req->commit_id = commit_id;
	io_uring_sqe_set_data64(sqe, tag);
}

/* submit_cmd -- queue op for e; false if the ring had no room (never:
 * it is sized for every entry's command and the stop poll) */
static bool submit_cmd(struct worker *w, uint32_t op, struct ring_ent *e)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	if (!sqe)
		return false;
	prep_cmd(sqe, w->t->fd, op, w->qid, e->unique, e,
		 (uint64_t)(e - w->ents) + 1);
	return true;
}

/* serve -- the request the kernel put in e, through libfuse */
static void serve(struct worker *w, struct ring_ent *e)
{
	struct transport *t = w->t;
	struct fuse_in_header in;
	uint32_t psz = e->hdr->ring_ent_in_out.payload_sz;
	char *payload = e->buf + HEADROOM, *start;
	size_t op_len;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->unique = e->hdr->ring_ent_in_out.commit_id;
	e->replied = false;
	if (in.len < sizeof(in) + (uint64_t)psz || psz > PAYLOAD_CAP ||
	    (op_len = in.len - sizeof(in) - psz) > DAXFS_URING_OP_IN_OUT_SZ) {
		syslog(LOG_ERR, "daxfs: io_uring request %llu has a bad "
		       "length (%u, payload %u)",
		       (unsigned long long)e->unique, in.len, psz);
		answer_error(e, -EIO);
		return;
	}
	/* as /dev/fuse delivers it: header, opcode header, payload */
	start = payload - op_len - sizeof(in);
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr->op_in, op_len);
	serving = e;
	fuse_session_process_buf(t->d->se, &(struct fuse_buf){
		.mem = start, .size = in.len,
	});
	serving = NULL;
	atomic_fetch_add_explicit(&t->requests, 1, memory_order_relaxed);
	if (!e->replied)
		answer_error(e, -EIO);
}

static void pin_to_cpu(unsigned cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* an offline CPU: run anywhere, the queue still works */
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* is_bulk -- a READ or WRITE big enough that moving data, not the round
 * trip, is its cost */
static bool is_bulk(const struct ring_ent *e)
{
	const struct fuse_in_header *in = (const void *)e->hdr->in_out;
	const struct fuse_read_in *rd = (const void *)e->hdr->op_in;

	if (in->opcode == FUSE_READ)
		return rd->size >= BULK_BYTES;
	if (in->opcode == FUSE_WRITE)
		return e->hdr->ring_ent_in_out.payload_sz >= BULK_BYTES;
	return false;
}

/*
 * place -- where the worker should run for the request in e.  Pinned to
 * its queue's CPU, a small request is answered where the application
 * sleeps, without crossing CPUs.  A stream of large ones is different:
 * the application keeps running (copying what came before, while the
 * kernel reads ahead), and a worker on the same CPU would wait for it and
 * then copy on that CPU too -- streaming 1 MiB reads ran at 3.1 GB/s
 * pinned against 4.4 free.  So while requests are large the worker may
 * run on any of the daemon's CPUs, and is pinned again by the next small
 * one.
 */
static void place(struct worker *w, struct ring_ent *e)
{
	bool bulk = is_bulk(e);

	if (bulk == w->roaming)
		return;
	w->roaming = bulk;
	if (bulk)
		pthread_setaffinity_np(pthread_self(), sizeof(w->t->cpus),
				       &w->t->cpus);
	else
		pin_to_cpu(w->qid);
}

static int ring_setup(struct worker *w)
{
	/* the kernel needs 128-byte SQEs for the command area; deferred
	 * task work, when the kernel has it, runs the copy into our
	 * buffers when we next wait, on this thread */
	static const unsigned flags[] = {
		IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
			IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN,
		IORING_SETUP_SQE128,
	};
	int ret = -EINVAL;

	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
		struct io_uring_params p = { .flags = flags[k] };

		ret = io_uring_queue_init_params(2 * NENTS + 4, &w->ring, &p);
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

static int ents_alloc(struct worker *w)
{
	for (unsigned k = 0; k < NENTS; k++) {
		struct ring_ent *e = &w->ents[k];

		/* aligned_alloc wants a multiple of the alignment */
		e->hdr = aligned_alloc(64, (sizeof(*e->hdr) + 63) & ~63ul);
		e->buf = aligned_alloc(4096, HEADROOM + PAYLOAD_CAP);
		if (!e->hdr || !e->buf)
			return -ENOMEM;
		memset(e->hdr, 0, sizeof(*e->hdr));
		e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
		e->iov[1] = (struct iovec){ e->buf + HEADROOM, PAYLOAD_CAP };
	}
	return 0;
}

static void ents_free(struct worker *w)
{
	for (unsigned k = 0; k < NENTS; k++) {
		free(w->ents[k].hdr);
		free(w->ents[k].buf);
		w->ents[k].hdr = NULL;
		w->ents[k].buf = NULL;
	}
}

/* set_state -- move e to st, keeping the worker's count of held entries */
static void set_state(struct worker *w, struct ring_ent *e,
		      enum ent_state st)
{
	if (e->state == ENT_HELD && st != ENT_HELD)
		atomic_fetch_sub(&w->held, 1);
	else if (e->state != ENT_HELD && st == ENT_HELD)
		atomic_fetch_add(&w->held, 1);
	e->state = st;
}

static void do_register(struct worker *w, struct ring_ent *e)
{
	set_state(w, e, submit_cmd(w, DAXFS_URING_CMD_REGISTER, e) ?
		  ENT_HELD : ENT_DEAD);
}

/*
 * completed -- the kernel ended e's command: a request in it (res 0), or
 * an error.  Returns true to retry registering later (INIT not answered).
 */
static bool completed(struct worker *w, struct ring_ent *e, int res)
{
	struct transport *t = w->t;

	if (res == 0) {
		place(w, e);
		serve(w, e);
		if (!submit_cmd(w, DAXFS_URING_CMD_COMMIT_AND_FETCH, e))
			set_state(w, e, ENT_DEAD);
		return false;
	}
	if (res == -EAGAIN) {
		set_state(w, e, ENT_IDLE);
		return true;
	}
	set_state(w, e, ENT_DEAD);
	/* ENOTCONN, ECONNABORTED, ECANCELED: the connection is going away;
	 * anything else means the kernel would not take the entry */
	if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED &&
	    !atomic_exchange(&t->warned, true))
		syslog(LOG_WARNING, "daxfs: %s: FUSE over io_uring refused "
		       "(%s); requests use /dev/fuse", t->d->mountpoint,
		       strerror(-res));
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct io_uring_sqe *sqe;
	bool going = true;

	pin_to_cpu(w->qid);
	/* the ring is made here: a single-issuer ring belongs to the
	 * thread that creates it */
	if (ring_setup(w)) {
		syslog(LOG_WARNING, "daxfs: %s: no io_uring for queue %u; its "
		       "requests use /dev/fuse", w->t->d->mountpoint, w->qid);
		return NULL;
	}
	w->have_ring = true;
	sqe = io_uring_get_sqe(&w->ring);
	io_uring_prep_poll_add(sqe, w->efd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_STOP);
	for (unsigned k = 0; k < NENTS; k++)
		do_register(w, &w->ents[k]);
	while (going && !atomic_load(&w->t->stop)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0, held = 0;
		bool retry = false;
		int ret = io_uring_submit_and_wait(&w->ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EBUSY)
			break;
		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);

			seen++;
			if (tag == TAG_STOP || tag > NENTS)
				going = false;
			else
				retry |= completed(w, &w->ents[tag - 1],
						   cqe->res);
		}
		io_uring_cq_advance(&w->ring, seen);
		if (retry && going) {
			struct timespec ts = { 0, 2000000 };	/* 2 ms */

			nanosleep(&ts, NULL);
			for (unsigned k = 0; k < NENTS; k++)
				if (w->ents[k].state == ENT_IDLE)
					do_register(w, &w->ents[k]);
		}
		for (unsigned k = 0; k < NENTS; k++)
			held += w->ents[k].state == ENT_HELD;
		if (!held)
			going = false;	/* nothing left to serve */
	}
	if (going && !atomic_load(&w->t->stop))
		syslog(LOG_WARNING, "daxfs: %s: io_uring queue %u stopped; "
		       "its requests wait for /dev/fuse", w->t->d->mountpoint,
		       w->qid);
	return NULL;
}

static void worker_destroy(struct worker *w)
{
	if (w->started) {
		uint64_t one = 1;

		if (write(w->efd, &one, sizeof(one)) < 0)
			syslog(LOG_WARNING, "daxfs: cannot wake a worker");
		pthread_join(w->thread, NULL);
	}
	/* closing the ring cancels the commands the kernel still holds;
	 * only then may their buffers go */
	if (w->have_ring)
		io_uring_queue_exit(&w->ring);
	for (unsigned k = 0; k < NENTS; k++)
		set_state(w, &w->ents[k], ENT_DEAD);
	ents_free(w);
	if (w->efd >= 0)
		close(w->efd);
}

/* possible_cpus -- how many queues the kernel makes: one per possible
 * CPU, numbered up to the highest in /sys/devices/system/cpu/possible */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	unsigned hi = 0, a, b;
	char sep;

	if (f) {
		/* "0-3,8-11": ranges and single CPUs, comma-separated */
		while (fscanf(f, "%u", &a) == 1) {
			b = a;
			if (fscanf(f, "%c", &sep) == 1 && sep == '-') {
				if (fscanf(f, "%u", &b) != 1)
					break;
				if (fscanf(f, "%c", &sep) != 1)
					sep = 0;
			}
			if (b + 1 > hi)
				hi = b + 1;
			if (sep != ',')
				break;
		}
		fclose(f);
	}
	if (hi)
		return hi;
	return ncpu > 0 ? (unsigned)ncpu : 1;
}

int transport_start(struct daemon *d)
{
	static const struct fuse_custom_io io = {
		.writev = hook_writev,
		.read = hook_read,
	};
	struct transport *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	t->d = d;
	t->fd = fuse_session_fd(d->se);
	t->nqueues = possible_cpus();
	if (sched_getaffinity(0, sizeof(t->cpus), &t->cpus)) {
		CPU_ZERO(&t->cpus);
		for (unsigned q = 0; q < t->nqueues && q < CPU_SETSIZE; q++)
			CPU_SET(q, &t->cpus);
	}
	t->nworkers = t->nqueues * PER_QUEUE;
	t->workers = calloc(t->nworkers, sizeof(*t->workers));
	if (!t->workers) {
		free(t);
		return -ENOMEM;
	}
	for (unsigned k = 0; k < t->nworkers; k++)
		t->workers[k].efd = -1;
	ret = fuse_session_custom_io(d->se, &io, t->fd);
	for (unsigned k = 0; k < t->nworkers && !ret; k++) {
		struct worker *w = &t->workers[k];

		w->t = t;
		w->qid = k / PER_QUEUE;
		w->efd = eventfd(0, EFD_CLOEXEC);
		if (w->efd < 0)
			ret = -errno;
		if (!ret)
			ret = ents_alloc(w);
		if (!ret)
			ret = -pthread_create(&w->thread, NULL, worker_main, w);
		w->started = !ret;
	}
	d->tp = t;
	if (ret) {
		transport_stop(d);
		return ret;
	}
	return 0;
}

void transport_stop(struct daemon *d)
{
	struct transport *t = d->tp;

	if (!t)
		return;
	atomic_store(&t->stop, true);
	for (unsigned k = 0; k < t->nworkers; k++)
		worker_destroy(&t->workers[k]);
	d->tp = NULL;
	free(t->workers);
	free(t);
}

void transport_stats(struct daemon *d, struct transport_stats *out)
{
	struct transport *t = d->tp;

	memset(out, 0, sizeof(*out));
	if (!t)
		return;
	/* the kernel uses the rings once every queue has an entry */
	out->uring = true;
	for (unsigned q = 0; q < t->nqueues; q++) {
		unsigned held = 0;

		for (unsigned k = 0; k < PER_QUEUE; k++)
			held += atomic_load(&t->workers[q * PER_QUEUE + k].held);
		out->uring &= held > 0;
		out->entries += held;
	}
	out->queues = t->nqueues;
	out->requests = atomic_load(&t->requests);
}
