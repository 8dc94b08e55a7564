/*
 * loadgen.h -- daxfs_loadgen's shared state: the block stamp, the workers
 * and their counters, the SIGBUS guard.  Private to tests/unbind.
 *
 * The stamp.  Every 4 KiB block of a data file is 512 little 64-bit
 * words; word i of block b of file f at generation g is
 *   (g << 32) | check(f, b, i, g)
 * so every word says on its own which generation it belongs to and where
 * it must live.  A block that a write or a page writeback tore part-way
 * holds words of two generations, each still valid; "acknowledged =>
 * present" then means: every word's generation is at least the
 * acknowledged one.  An all-zero word (generation 0) is never valid.
 *
 * Ownership.  Each block has exactly one writer (owner_of()), so a block's
 * generation only grows and the per-block arrays need no lock: cur[] and
 * ack[] of a block are touched by its owner only, and read by main after
 * the owner has finished.
 */
#ifndef DAXFS_LOADGEN_H
#define DAXFS_LOADGEN_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#define LG_BS		4096u
#define LG_WORDS	(LG_BS / 8)
#define LG_MANIFEST	"loadgen.manifest"
#define LG_STATE_MAGIC	"daxfs-loadgen-state 1"

enum lg_kind { K_MMAP, K_URING, K_RW, K_OPEN };

/* a worker's outcome counters; written by the worker, read by everyone */
struct lg_worker {
	struct lg *lg;
	enum lg_kind kind;
	unsigned index;			/* among workers of its kind */
	char name[16];
	pthread_t thread;
	atomic_uint_fast64_t ops, ok, eio, enxio, sigbus, other, acked;
	atomic_uint_fast64_t probe_ok, probe_fail;
	atomic_int last_other;		/* errno of the last "other" error */
	atomic_bool failed;		/* saw EIO, ENXIO or SIGBUS */
	atomic_bool done;		/* the thread has finished */
	atomic_bool hung;
	atomic_uint_fast64_t first_fail_ns;
	atomic_uint_fast64_t busy_since;	/* a blocking call began; 0 idle */
	atomic_uint_fast64_t max_op_ns;
	/* io_uring workers: when each slot's operation was submitted */
	_Atomic uint64_t *slot_since;
	unsigned nslots;
	/* blocks this worker writes: global block numbers, by file */
	uint32_t *own;
	size_t nown;
	size_t *own_start;		/* nfiles + 1 offsets into own[] */
	char note[160];			/* shown in the report */
};

struct lg_opts {
	const char *dir, *state, *ready, *phase;
	unsigned files, mmap_workers, uring_workers, uring_depth;
	unsigned rw_workers, open_workers;
	uint64_t size;
	double duration, hang_s;
	bool json;
};

struct lg {
	struct lg_opts o;
	/* from the manifest (or set by prepare) */
	unsigned nfiles, bpf;		/* files, 4 KiB blocks per file */
	uint64_t fsize;
	int rootfd;			/* the mount root, for status; or -1 */
	uint32_t *cur;			/* per block: last write that completed */
	uint32_t *ack;			/* per block: acknowledged generation */
	struct lg_worker *w;
	unsigned nw;
	atomic_bool stop;
	atomic_bool hung;
	atomic_uint reading;		/* workers not yet past their read probes */
	uint64_t t0;
};

/* the stamp, paths, randomness (loadgen.c) */
uint64_t lg_now(void);
uint64_t lg_word(uint32_t f, uint32_t b, uint32_t i, uint32_t gen);
void lg_fill(void *buf, uint32_t f, uint32_t b, uint32_t gen);
unsigned lg_check(const void *buf, uint32_t f, uint32_t b,
		  uint32_t *min_gen, uint32_t *max_gen);
void lg_path(const struct lg *lg, unsigned f, char *out, size_t len);
uint64_t lg_rand(uint64_t *s);

/* counting outcomes (loadgen.c) */
void lg_count(struct lg_worker *w, int err);	/* 0 or an errno */
void lg_fail(struct lg_worker *w);
bool lg_is_failure(int err);
bool lg_wait_released(struct lg *lg);
static inline void lg_busy(struct lg_worker *w)
{
	atomic_store(&w->busy_since, lg_now());
}
void lg_idle(struct lg_worker *w);
void lg_reads_probed(struct lg *lg);
bool lg_wait_reads_probed(struct lg *lg);

/* the SIGBUS guard (workers.c): arm around mapped accesses */
extern __thread sigjmp_buf *volatile lg_guard_jb;
void lg_guard_install(void);

/* the run (run.c) and its workers (workers.c, uring.c) */
int lg_run(struct lg *lg);
void *lg_mmap_worker(void *arg);
void *lg_rw_worker(void *arg);
void *lg_open_worker(void *arg);
void *lg_uring_worker(void *arg);

/* the hold phase (hold.c) */
int lg_hold(struct lg *lg);

#endif
