/*
 * uring.c -- daxfs_loadgen's io_uring worker: keeps --uring-depth reads,
 * writes and fsyncs in flight against the data files, half of them
 * IORING_OP_READ_FIXED / WRITE_FIXED on registered buffers, half plain
 * IORING_OP_READ / WRITE.
 *
 * Registered buffers are tried first in a MAP_SHARED mapping of a daxfs
 * file (half of them); kernels that refuse to pin file-backed memory for
 * io_uring (EFAULT or EOPNOTSUPP) get anonymous memory instead, and the
 * report says so.
 *
 * Acknowledgement: an FSYNC covers the writes that had completed when it
 * was submitted, so each FSYNC carries a snapshot of (block, generation)
 * taken then, and only its successful completion acknowledges them.  At
 * most one write per block is in flight, so a block's generations land in
 * order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <liburing.h>

#include "loadgen.h"

enum { OP_IDLE, OP_READ, OP_WRITE, OP_FSYNC, OP_NOP };

struct snap {
	size_t n;
	uint32_t *g, *gen;
};

struct slot {
	int op;
	unsigned f;
	uint32_t g, b, gen;
	struct snap *snap;
};

struct uw {
	struct lg_worker *w;
	struct lg *lg;
	struct io_uring ring;
	bool have_ring;
	unsigned depth, inflight, since_fsync, fcursor;
	struct slot *slots;
	char *bufs;			/* depth * LG_BS, registered */
	void *filebuf;			/* the daxfs-backed half, or NULL */
	int *fd;
	uint8_t *wbusy;			/* per block: a write is in flight */
	uint32_t *wdone;		/* per file: writes completed since fsync */
	uint8_t *fsbusy;		/* per file: an fsync is in flight */
	uint64_t seed;
	uint64_t tmp[LG_WORDS];
	char bufpath[4096];		/* the daxfs file behind filebuf */
};

static char *buf_of(struct uw *u, unsigned i)
{
	return u->bufs + (size_t)i * LG_BS;
}

/* setup_buffers -- register depth buffers, half daxfs-backed if allowed */
static int setup_buffers(struct uw *u)
{
	struct lg *lg = u->lg;
	size_t len = (size_t)u->depth * LG_BS, half = u->depth / 2;
	struct iovec *iov = calloc(u->depth, sizeof(*iov));
	char path[4096];
	void *anon;
	int fd, ret;

	if (!iov)
		return -ENOMEM;
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED) {
		free(iov);
		return -errno;
	}
	u->bufs = anon;
	snprintf(path, sizeof(path), "%s/uring-buf-%u", lg->o.dir,
		 u->w->index);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0 && half && ftruncate(fd, (off_t)(half * LG_BS)) == 0) {
		u->filebuf = mmap(NULL, half * LG_BS, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd, 0);
		if (u->filebuf == MAP_FAILED)
			u->filebuf = NULL;
		else
			memset(u->filebuf, 0, half * LG_BS);
	}
	if (fd >= 0)
		close(fd);
	ret = -1;
	if (u->filebuf) {
		for (unsigned i = 0; i < u->depth; i++) {
			iov[i].iov_base = i < half ?
				(char *)u->filebuf + (size_t)i * LG_BS :
				buf_of(u, i);
			iov[i].iov_len = LG_BS;
		}
		ret = io_uring_register_buffers(&u->ring, iov, u->depth);
		if (ret == 0) {
			snprintf(u->bufpath, sizeof(u->bufpath), "%s", path);
			snprintf(u->w->note, sizeof(u->w->note),
				 "%u of %u registered buffers in a daxfs "
				 "mapping", (unsigned)half, u->depth);
		} else {
			snprintf(u->w->note, sizeof(u->w->note),
				 "registering daxfs-backed buffers failed "
				 "(%s): anonymous memory instead",
				 strerror(-ret));
		}
	}
	if (ret) {
		if (u->filebuf)
			munmap(u->filebuf, half * LG_BS);
		u->filebuf = NULL;
		unlink(path);
		for (unsigned i = 0; i < u->depth; i++) {
			iov[i].iov_base = buf_of(u, i);
			iov[i].iov_len = LG_BS;
		}
		ret = io_uring_register_buffers(&u->ring, iov, u->depth);
		if (ret == 0 && !u->w->note[0])
			snprintf(u->w->note, sizeof(u->w->note),
				 "registered buffers in anonymous memory");
	}
	free(iov);
	return ret;
}

/* slot_buf -- the memory registered as buffer i */
static char *slot_buf(struct uw *u, unsigned i)
{
	if (u->filebuf && i < u->depth / 2)
		return (char *)u->filebuf + (size_t)i * LG_BS;
	return buf_of(u, i);
}

/* gcopy -- copy one block to or from a buffer that may live in a revoked
 * daxfs mapping; false if it faulted (counted as SIGBUS) */
static bool gcopy(struct uw *u, void *dst, const void *src)
{
	sigjmp_buf jb;
	volatile bool ok = false;

	if (sigsetjmp(jb, 1) == 0) {
		lg_guard_jb = &jb;
		memcpy(dst, src, LG_BS);
		ok = true;
	}
	lg_guard_jb = NULL;
	if (!ok) {
		atomic_fetch_add(&u->w->ops, 1);
		atomic_fetch_add(&u->w->sigbus, 1);
		lg_fail(u->w);
	}
	return ok;
}

/* take_snapshot -- this worker's blocks of f written since their ack */
static struct snap *take_snapshot(struct uw *u, unsigned f)
{
	struct lg_worker *w = u->w;
	struct lg *lg = u->lg;
	size_t n = w->own_start[f + 1] - w->own_start[f], k = 0;
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->g = calloc(n + 1, sizeof(uint32_t));
	s->gen = calloc(n + 1, sizeof(uint32_t));
	if (!s->g || !s->gen) {
		free(s->g);
		free(s->gen);
		free(s);
		return NULL;
	}
	for (size_t j = w->own_start[f]; j < w->own_start[f + 1]; j++) {
		uint32_t g = w->own[j];

		if (lg->cur[g] > lg->ack[g]) {
			s->g[k] = g;
			s->gen[k++] = lg->cur[g];
		}
	}
	s->n = k;
	return s;
}

static void free_snapshot(struct snap *s)
{
	if (!s)
		return;
	free(s->g);
	free(s->gen);
	free(s);
}

/* prep_fsync -- an fsync of a file that has completed writes, if due */
static bool prep_fsync(struct uw *u, struct io_uring_sqe *sqe, unsigned i)
{
	struct lg *lg = u->lg;

	if (u->since_fsync < 32)
		return false;
	for (unsigned k = 0; k < lg->nfiles; k++) {
		unsigned f = (u->fcursor + k) % lg->nfiles;

		if (!u->wdone[f] || u->fsbusy[f])
			continue;
		u->slots[i].snap = take_snapshot(u, f);
		if (!u->slots[i].snap)
			return false;
		u->fcursor = f + 1;
		u->since_fsync = 0;
		u->wdone[f] = 0;
		u->fsbusy[f] = 1;
		u->slots[i].op = OP_FSYNC;
		u->slots[i].f = f;
		io_uring_prep_fsync(sqe, u->fd[f], 0);
		return true;
	}
	return false;
}

/* prep_write -- a new generation of one of our blocks not in flight */
static bool prep_write(struct uw *u, struct io_uring_sqe *sqe, unsigned i)
{
	struct lg_worker *w = u->w;
	struct lg *lg = u->lg;
	struct slot *s = &u->slots[i];

	if (!w->nown)
		return false;
	for (int tries = 0; tries < 8; tries++) {
		uint32_t g = w->own[lg_rand(&u->seed) % w->nown];
		off_t off;

		if (u->wbusy[g])
			continue;
		u->wbusy[g] = 1;
		s->op = OP_WRITE;
		s->g = g;
		s->f = g / lg->bpf;
		s->b = g % lg->bpf;
		s->gen = lg->cur[g] + 1;
		lg_fill(u->tmp, s->f, s->b, s->gen);
		if (!gcopy(u, slot_buf(u, i), u->tmp)) {
			u->wbusy[g] = 0;
			s->op = OP_NOP;
			io_uring_prep_nop(sqe);
			return true;
		}
		off = (off_t)s->b * LG_BS;
		if (i % 2)
			io_uring_prep_write(sqe, u->fd[s->f], slot_buf(u, i),
					    LG_BS, (uint64_t)off);
		else
			io_uring_prep_write_fixed(sqe, u->fd[s->f],
						  slot_buf(u, i), LG_BS,
						  (uint64_t)off, (int)i);
		return true;
	}
	return false;
}

static void prep_read(struct uw *u, struct io_uring_sqe *sqe, unsigned i)
{
	struct lg *lg = u->lg;
	struct slot *s = &u->slots[i];
	off_t off;

	s->op = OP_READ;
	s->f = (unsigned)(lg_rand(&u->seed) % lg->nfiles);
	s->b = (uint32_t)(lg_rand(&u->seed) % lg->bpf);
	off = (off_t)s->b * LG_BS;
	if (i % 2)
		io_uring_prep_read(sqe, u->fd[s->f], slot_buf(u, i), LG_BS,
				   (uint64_t)off);
	else
		io_uring_prep_read_fixed(sqe, u->fd[s->f], slot_buf(u, i),
					 LG_BS, (uint64_t)off, (int)i);
}

/* fill -- put an operation in every idle slot */
static void fill(struct uw *u)
{
	for (unsigned i = 0; i < u->depth && u->inflight < u->depth; i++) {
		struct io_uring_sqe *sqe;

		if (u->slots[i].op != OP_IDLE)
			continue;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			break;
		if (!prep_fsync(u, sqe, i) &&
		    !(lg_rand(&u->seed) % 2 && prep_write(u, sqe, i)))
			prep_read(u, sqe, i);
		io_uring_sqe_set_data64(sqe, i);
		atomic_store(&u->w->slot_since[i], lg_now());
		u->inflight++;
	}
	io_uring_submit(&u->ring);
}

/* complete -- account for one completion */
static void complete(struct uw *u, unsigned i, int res)
{
	struct lg_worker *w = u->w;
	struct lg *lg = u->lg;
	struct slot *s = &u->slots[i];
	int err = res < 0 ? -res : 0;
	uint64_t since = atomic_exchange(&w->slot_since[i], 0);
	uint64_t took = since ? lg_now() - since : 0;

	if (took > atomic_load(&w->max_op_ns))
		atomic_store(&w->max_op_ns, took);
	if (s->op != OP_FSYNC && res >= 0 && res != (int)LG_BS)
		err = EMSGSIZE;		/* a short transfer */
	if (s->op != OP_NOP)
		lg_count(w, err);
	switch (s->op) {
	case OP_READ: {
		uint32_t lo, hi;

		if (!err && gcopy(u, u->tmp, slot_buf(u, i)) &&
		    lg_check(u->tmp, s->f, s->b, &lo, &hi)) {
			atomic_fetch_add(&w->other, 1);
			atomic_store(&w->last_other, EBADMSG);
		}
		break;
	}
	case OP_WRITE:
		u->wbusy[s->g] = 0;
		if (!err) {
			lg->cur[s->g] = s->gen;
			u->wdone[s->f]++;
			u->since_fsync++;
		}
		break;
	case OP_FSYNC:
		u->fsbusy[s->f] = 0;
		for (size_t k = 0; !err && s->snap && k < s->snap->n; k++) {
			uint32_t g = s->snap->g[k];

			if (s->snap->gen[k] > lg->ack[g]) {
				lg->ack[g] = s->snap->gen[k];
				atomic_fetch_add(&w->acked, 1);
			}
		}
		if (err)
			u->wdone[s->f]++;	/* still to be synced */
		free_snapshot(s->snap);
		s->snap = NULL;
		break;
	}
	s->op = OP_IDLE;
	u->inflight--;
}

/* reap -- wait up to 100 ms for completions and account for them all */
static void reap(struct uw *u)
{
	struct __kernel_timespec ts = { 0, 100000000 };
	struct io_uring_cqe *cqe;

	if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts))
		return;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		complete(u, (unsigned)io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(&u->ring, cqe);
	}
}

/* probe_one -- one operation after release; it must fail */
static bool probe_one(struct uw *u, unsigned id, int fd, off_t off)
{
	static const char *names[] = { "?", "READ_FIXED", "READ", "WRITE" };
	struct __kernel_timespec ts = { 10, 0 };
	struct lg_worker *w = u->w;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	struct io_uring_cqe *cqe;

	if (id == 1)
		io_uring_prep_read_fixed(sqe, fd, slot_buf(u, 0), LG_BS,
					 (uint64_t)off, 0);
	else if (id == 2)
		io_uring_prep_read(sqe, fd, slot_buf(u, 1), LG_BS,
				   (uint64_t)off);
	else
		io_uring_prep_write(sqe, fd, slot_buf(u, 1), LG_BS,
				    (uint64_t)off);
	io_uring_sqe_set_data64(sqe, id);
	io_uring_submit(&u->ring);
	if (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts)) {
		atomic_store(&w->hung, true);
		snprintf(w->note, sizeof(w->note), "a probe after release did "
			 "not complete in 10 s");
		return false;
	}
	atomic_fetch_add(cqe->res >= 0 ? &w->probe_ok : &w->probe_fail, 1);
	if (cqe->res >= 0) {
		size_t len = strlen(w->note);

		snprintf(w->note + len, sizeof(w->note) - len, "; probe %s "
			 "after release returned %d", names[id % 4], cqe->res);
	}
	io_uring_cqe_seen(&u->ring, cqe);
	return true;
}

/* probe -- after release: a fixed read and a plain read; then, once every
 * worker is past its read probes (see lg_wait_reads_probed), a write to
 * the last block, which no read probe touches */
static void probe(struct uw *u)
{
	struct lg *lg = u->lg;
	bool ok = probe_one(u, 1, u->fd[0], 0) && probe_one(u, 2, u->fd[0], 0);

	lg_reads_probed(lg);
	if (ok && lg_wait_reads_probed(lg))
		probe_one(u, 3, u->fd[lg->nfiles - 1],
			  (off_t)(lg->bpf - 1) * LG_BS);
}

static int uw_setup(struct uw *u)
{
	struct lg *lg = u->lg;
	int ret;

	u->slots = calloc(u->depth, sizeof(*u->slots));
	u->fd = calloc(lg->nfiles, sizeof(int));
	u->wbusy = calloc((size_t)lg->nfiles * lg->bpf, 1);
	u->wdone = calloc(lg->nfiles, sizeof(uint32_t));
	u->fsbusy = calloc(lg->nfiles, 1);
	u->w->slot_since = calloc(u->depth, sizeof(uint64_t));
	if (!u->slots || !u->fd || !u->wbusy || !u->wdone || !u->fsbusy ||
	    !u->w->slot_since)
		return -ENOMEM;
	u->w->nslots = u->depth;
	for (unsigned f = 0; f < lg->nfiles; f++) {
		char path[4096];

		lg_path(lg, f, path, sizeof(path));
		u->fd[f] = open(path, O_RDWR | O_CLOEXEC);
		if (u->fd[f] < 0)
			return -errno;
	}
	ret = io_uring_queue_init(u->depth + 4, &u->ring, 0);
	if (ret)
		return ret;
	u->have_ring = true;
	return setup_buffers(u);
}

void *lg_uring_worker(void *arg)
{
	struct lg_worker *w = arg;
	struct uw u;
	int ret;

	memset(&u, 0, sizeof(u));
	u.w = w;
	u.lg = w->lg;
	u.depth = w->lg->o.uring_depth;
	u.seed = 0x75726eull + w->index;
	ret = uw_setup(&u);
	if (ret) {
		lg_count(w, -ret);
		if (!lg_is_failure(-ret))
			snprintf(w->note, sizeof(w->note), "setup failed: %s",
				 strerror(-ret));
		lg_reads_probed(u.lg);
		goto out;
	}
	for (;;) {
		bool quit = atomic_load(&u.lg->stop) || atomic_load(&w->failed);

		if (!quit)
			fill(&u);
		else if (!u.inflight)
			break;
		reap(&u);
	}
	if (atomic_load(&w->failed) && lg_wait_released(u.lg)) {
		probe(&u);
	} else {
		lg_reads_probed(u.lg);
	}
out:
	if (u.have_ring)
		io_uring_queue_exit(&u.ring);
	if (u.filebuf) {
		munmap(u.filebuf, (size_t)(u.depth / 2) * LG_BS);
		unlink(u.bufpath);	/* fails after a release: harmless */
	}
	if (u.bufs)
		munmap(u.bufs, (size_t)u.depth * LG_BS);
	for (unsigned f = 0; u.fd && f < u.lg->nfiles; f++)
		if (u.fd[f] > 0)
			close(u.fd[f]);
	for (unsigned i = 0; u.slots && i < u.depth; i++)
		free_snapshot(u.slots[i].snap);
	free(u.slots);
	free(u.fd);
	free(u.wbusy);
	free(u.wdone);
	free(u.fsbusy);
	atomic_store(&w->done, true);
	return NULL;
}
