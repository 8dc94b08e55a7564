/*
 * alive.c -- the liveness gate ("block new, drain old").
 *
 * Every request that is about to use the region enters the gate and
 * leaves it when it has replied.  Entering increments the calling thread's
 * own counter (no shared cache line, no lock) and then reads the state;
 * the unbind sequence stores the new state and then sums the counters.
 * (A request that an earlier look at the state already refuses never
 * touches its counter; that look is only a shortcut, the argument below
 * does not rest on it.)
 *
 * Why nothing can slip past a drain: both sides use sequentially
 * consistent operations -- the entering thread's increment then its load
 * of the state, the drainer's store of the state then its loads of the
 * counters.  In the single total order of those operations either the
 * increment comes before the store, so the drainer's later sum sees it and
 * waits for the matching exit, or the store comes first, so the entering
 * thread reads the new state and backs out.  The slot list is walked under
 * slots_lock, which a thread also takes to publish its slot before its
 * first increment, so a drain never misses a slot that was counted.
 *
 * Owns: struct gate.  Must never: block on the hot path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alive.h"
#include "util.h"

static __thread struct gate_slot *my_slot;

static void slot_release(void *p)
{
	struct gate_slot *s = p;

	atomic_store(&s->in_use, false);
}

int gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	atomic_init(&g->state, GATE_LIVE);
	pthread_mutex_init(&g->slots_lock, NULL);
	return -pthread_key_create(&g->key, slot_release);
}

/*
 * gate_destroy -- free the slots.  libfuse lets idle worker threads exit
 * detached, so one may still be running slot_release() when the session
 * is over: a slot is freed only once its release has been seen (acquire
 * pairs with the destructor's store), after a short wait.  A slot still
 * in use then belongs to a thread that is not done with it; it is kept,
 * on gate_orphans, so that thread writes to live memory.
 */
static struct gate_slot *gate_orphans;

void gate_destroy(struct gate *g)
{
	struct timespec ts = { 0, 1000000 };	/* 1 ms */
	struct gate_slot *s, *n;
	bool busy = true;

	pthread_key_delete(g->key);	/* no destructor starts from now on */
	if (my_slot && my_slot != &g->spare)
		atomic_store_explicit(&my_slot->in_use, false,
				      memory_order_relaxed);
	my_slot = NULL;
	for (int k = 0; k < 200 && busy; k++) {
		busy = false;
		for (s = g->slots; s; s = s->next)
			busy |= atomic_load_explicit(&s->in_use,
						     memory_order_acquire);
		if (busy)
			nanosleep(&ts, NULL);
	}
	for (s = g->slots; s; s = n) {
		n = s->next;
		if (atomic_load_explicit(&s->in_use, memory_order_acquire)) {
			s->next = gate_orphans;
			gate_orphans = s;
		} else {
			free(s);
		}
	}
	g->slots = NULL;
	pthread_mutex_destroy(&g->slots_lock);
}

/* slot -- this thread's slot: a free one reused, or a new one */
static struct gate_slot *slot(struct gate *g)
{
	struct gate_slot *s;

	if (my_slot)
		return my_slot;
	pthread_mutex_lock(&g->slots_lock);
	for (s = g->slots; s; s = s->next) {
		bool f = false;

		if (atomic_compare_exchange_strong(&s->in_use, &f, true))
			break;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s) {
			atomic_init(&s->in_use, true);
			s->next = g->slots;
			g->slots = s;
		}
	}
	pthread_mutex_unlock(&g->slots_lock);
	if (!s) {
		/* no memory for 64 bytes: count this thread on the shared
		 * slot for the rest of its life rather than die; the
		 * request itself will meet the shortage and answer ENOMEM */
		my_slot = &g->spare;
		return my_slot;
	}
	pthread_setspecific(g->key, s);
	my_slot = s;
	return s;
}

static bool allowed(int state, enum gate_use use)
{
	switch (state) {
	case GATE_LIVE:
		return true;
	case GATE_REVOKING:
		return use == USE_WRITEBACK || use == USE_META_READ ||
		       use == USE_INTERNAL;
	default:
		return false;
	}
}

/*
 * gate_enter -- may this request use the region?  0, or the errno to
 * reply with: ENXIO for new users (as a dead device answers), EIO for
 * everything else.  A refused LOOKUP counts as a new user: it is the first
 * step of every open and create whose name the kernel no longer caches,
 * and answering it EIO would turn that open's ENXIO into EIO.
 */
int gate_enter(struct gate *g, enum gate_use use, unsigned opcode,
	       uint64_t ino)
{
	int st = atomic_load_explicit(&g->state, memory_order_acquire);
	struct gate_slot *s;

	/* a request the state already refuses stays off the counters: a
	 * drain needs them all at zero in one sweep, and refused requests
	 * retried in a loop would otherwise keep one of them raised */
	if (!allowed(st, use))
		goto refuse;
	s = slot(g);
	atomic_fetch_add_explicit(&s->inflight, 1, memory_order_seq_cst);
	st = atomic_load_explicit(&g->state, memory_order_seq_cst);
	if (allowed(st, use)) {
		atomic_store_explicit(&s->opcode, opcode,
				      memory_order_relaxed);
		atomic_store_explicit(&s->ino, ino, memory_order_relaxed);
		atomic_store_explicit(&s->since_ns, now_ns(),
				      memory_order_relaxed);
		return 0;
	}
	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
refuse:
	atomic_fetch_add_explicit(&g->refused, 1, memory_order_relaxed);
	return use == USE_NEW || opcode == GATE_OP_LOOKUP ? ENXIO : EIO;
}

/* gate_exit -- the request has replied and no longer uses the region */
void gate_exit(struct gate *g)
{
	struct gate_slot *s = my_slot;

	atomic_fetch_add_explicit(&g->completed, 1, memory_order_relaxed);
	/* release: everything the request did with the region happens
	 * before a drainer that reads zero goes on to unmap it */
	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
}

void gate_set(struct gate *g, enum gate_state st)
{
	atomic_store_explicit(&g->state, st, memory_order_seq_cst);
}

/* gate_inflight -- requests inside the gate now */
uint64_t gate_inflight(struct gate *g)
{
	uint64_t n = 0;

	pthread_mutex_lock(&g->slots_lock);
	for (struct gate_slot *s = g->slots; s; s = s->next)
		n += (uint64_t)atomic_load_explicit(&s->inflight,
						    memory_order_seq_cst);
	n += (uint64_t)atomic_load_explicit(&g->spare.inflight,
					    memory_order_seq_cst);
	pthread_mutex_unlock(&g->slots_lock);
	return n;
}

static const char *opname(unsigned op)
{
	static const char *names[] = {
		[1] = "lookup", [3] = "getattr", [4] = "setattr",
		[5] = "readlink", [6] = "symlink", [8] = "mknod",
		[9] = "mkdir", [10] = "unlink", [11] = "rmdir",
		[12] = "rename", [13] = "link", [14] = "open",
		[15] = "read", [16] = "write", [17] = "statfs",
		[18] = "release", [20] = "fsync", [21] = "setxattr",
		[22] = "getxattr", [23] = "listxattr", [24] = "removexattr",
		[25] = "flush", [27] = "opendir", [28] = "readdir",
		[29] = "releasedir", [30] = "fsyncdir", [35] = "create",
		[39] = "ioctl", [43] = "fallocate", [44] = "readdirplus",
		[45] = "rename2", [46] = "lseek", [47] = "copy_file_range",
	};

	return op < ARRAY_SIZE(names) && names[op] ? names[op] : "request";
}

/* holder_add -- append what slot s is doing, if anything, to holders */
static size_t holder_add(struct gate_slot *s, char *holders, size_t len,
			 size_t used)
{
	long n = atomic_load(&s->inflight);
	uint64_t age = (now_ns() - atomic_load(&s->since_ns)) / 1000000ull;

	if (n <= 0 || used + 64 >= len)
		return used;
	used += (size_t)snprintf(holders + used, len - used,
				 "%s%s on inode %llu for %llu ms",
				 used ? "; " : "",
				 opname(atomic_load(&s->opcode)),
				 (unsigned long long)atomic_load(&s->ino),
				 (unsigned long long)age);
	return MIN(used, len - 1);
}

/*
 * gate_holders -- who is inside the gate now, as "write on inode 12 for
 * 40 ms; ...", for status and for a drain that timed out.  len > 0.
 */
void gate_holders(struct gate *g, char *holders, size_t len)
{
	size_t used = 0;

	holders[0] = '\0';
	pthread_mutex_lock(&g->slots_lock);
	for (struct gate_slot *s = g->slots; s; s = s->next)
		used = holder_add(s, holders, len, used);
	holder_add(&g->spare, holders, len, used);
	pthread_mutex_unlock(&g->slots_lock);
}

/*
 * gate_drain -- wait until no request is inside the gate, at most
 * timeout_ms.  The caller has set GATE_DRAINING.  On timeout, -ETIMEDOUT
 * and `holders` lists who is still inside.
 */
int gate_drain(struct gate *g, uint64_t timeout_ms, char *holders,
	       size_t len)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	struct timespec ts = { 0, 200000 };	/* 0.2 ms */

	/* one sweep that reads zero is the answer: a second look could
	 * catch a refused request counting itself for an instant and call
	 * a finished drain a timeout */
	while (gate_inflight(g)) {
		if (now_ns() >= deadline) {
			if (holders && len)
				gate_holders(g, holders, len);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
		if (ts.tv_nsec < 10000000)
			ts.tv_nsec *= 2;
	}
	return 0;
}

const char *gate_state_name(int s)
{
	switch (s) {
	case GATE_LIVE: return "live";
	case GATE_REVOKING: return "revoking";
	case GATE_DRAINING: return "draining";
	case GATE_RELEASED: return "released";
	}
	return "unknown";
}
