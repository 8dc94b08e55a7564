/*
 * alive.h -- the liveness gate: one state read with acquire semantics
 * wherever a new use of the region begins, and per-thread in-flight
 * counters that the unbind sequence drains.
 */
#ifndef DAXFS_ALIVE_H
#define DAXFS_ALIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gate_state {
	GATE_LIVE = 0,
	GATE_REVOKING,		/* no new users; writeback still accepted */
	GATE_DRAINING,		/* nobody enters; waiting for zero */
	GATE_RELEASED,		/* the region is gone from this process */
};

/* what a request is about to do with the region */
enum gate_use {
	USE_NEW,		/* open, create, mknod, mkdir, symlink, link */
	USE_READ,		/* read, and page faults through it */
	USE_WRITE,		/* a write(2) from an application */
	USE_WRITEBACK,		/* a dirty page the kernel writes back */
	USE_META_READ,		/* lookup, getattr, readdir, getxattr, ... */
	USE_META_WRITE,		/* setattr, unlink, rename, setxattr, ... */
	USE_INTERNAL,		/* release, forget: the daemon's own work */
};

/* the FUSE opcode of LOOKUP (FUSE_LOOKUP in linux/fuse.h) */
#define GATE_OP_LOOKUP 1

/* one per worker thread, reused after the thread exits */
struct gate_slot {
	atomic_long inflight;		/* owned by its thread */
	atomic_uint opcode;		/* what it is doing, for reports */
	atomic_uint_fast64_t ino;
	atomic_uint_fast64_t since_ns;
	atomic_bool in_use;
	struct gate_slot *next;		/* gate.slots_lock */
};

struct gate {
	atomic_int state;		/* enum gate_state */
	pthread_mutex_t slots_lock;	/* guards the slot list */
	struct gate_slot *slots;
	/* shared by the threads whose own slot could not be allocated:
	 * slower (one contended cache line), never wrong; not on the list,
	 * gate_inflight() adds it in */
	struct gate_slot spare;
	pthread_key_t key;
	/* accounting for the unbind report */
	atomic_uint_fast64_t writeback_bytes;	/* accepted while revoking */
	atomic_uint_fast64_t lost_bytes;	/* refused or failed writeback */
	atomic_uint_fast64_t completed;		/* requests finished */
	atomic_uint_fast64_t refused;		/* requests turned away */
};

int gate_init(struct gate *g);
void gate_destroy(struct gate *g);
int gate_enter(struct gate *g, enum gate_use use, unsigned opcode,
	       uint64_t ino);
void gate_exit(struct gate *g);
void gate_set(struct gate *g, enum gate_state s);
uint64_t gate_inflight(struct gate *g);
void gate_holders(struct gate *g, char *holders, size_t len);
int gate_drain(struct gate *g, uint64_t timeout_ms, char *holders,
	       size_t len);
const char *gate_state_name(int s);

static inline int gate_state(struct gate *g)
{
	return atomic_load_explicit(&g->state, memory_order_acquire);
}

#endif
