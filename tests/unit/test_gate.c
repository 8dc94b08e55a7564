/*
 * test_gate.c -- the liveness gate (src/alive.c) under contention: many
 * threads enter and leave the gate while another sets DRAINING and drains.
 * After gate_drain() returns 0 no thread may be inside, and no thread may
 * get in once it has seen the store of DRAINING complete.  Threads come
 * and go between rounds, so slots are reused.  Meant to run under
 * ThreadSanitizer (-DDAXFS_TSAN=ON) too, where any data race in the gate
 * is a failure.
 *
 * "test_gate starvation" keeps the refused workers knocking (100 us apart)
 * after DRAINING, as applications retrying a failed call do.  It found two
 * faults, both fixed in src/alive.c: gate_enter() counted a refused
 * request in flight for an instant before backing out, so a drain that
 * needs every counter at zero in one sweep could be held up; and
 * gate_drain() looked a second time after its loop had seen zero, so such
 * an instant turned a finished drain into -ETIMEDOUT with nobody named
 * (it failed every run under TSan, at a random round).  ctest runs both
 * modes.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "alive.h"
#include "testlib.h"

#define ROUNDS		150
#define WORKERS		6

struct shared {
	struct gate g;
	atomic_bool stop;		/* workers leave their loop */
	atomic_bool set_done;		/* gate_set(DRAINING) has returned */
	atomic_long inside;		/* workers between enter and exit */
	atomic_long late;		/* got in after seeing set_done */
	atomic_long entered, refused;
	atomic_int wrong_errno;
	enum gate_use use;
	bool keep_knocking;		/* refused workers never give up */
	uint64_t worst_ms;		/* the longest drain */
};

static void *worker(void *arg)
{
	struct shared *sh = arg;
	unsigned n = 0;

	while (!atomic_load(&sh->stop)) {
		bool after = atomic_load(&sh->set_done);
		int r = gate_enter(&sh->g, sh->use, 15, n);

		if (r) {
			if (r != EIO && r != ENXIO)
				atomic_store(&sh->wrong_errno, r);
			atomic_fetch_add(&sh->refused, 1);
			/* refused for good: this worker is done (unless
			 * "starvation" asked them to keep trying) */
			if (after && !sh->keep_knocking)
				break;
			usleep(100);
			continue;
		}
		if (after)
			atomic_fetch_add(&sh->late, 1);
		atomic_fetch_add(&sh->inside, 1);
		atomic_fetch_add(&sh->entered, 1);
		/* a short request: sometimes long enough to be drained */
		for (volatile unsigned k = 0; k < (n % 7) * 50; k++)
			;
		if (n % 13 == 0)
			sched_yield();
		atomic_fetch_sub(&sh->inside, 1);
		gate_exit(&sh->g);
		n++;
	}
	return NULL;
}

/* round -- start workers, let them run, drain, check, stop them */
static void round_once(struct shared *sh, unsigned r)
{
	pthread_t t[WORKERS];
	char holders[256];
	uint64_t t0, ms;
	long in;
	int ret;

	atomic_store(&sh->stop, false);
	atomic_store(&sh->set_done, false);
	gate_set(&sh->g, GATE_LIVE);
	for (int k = 0; k < WORKERS; k++)
		CHECK_EQ(pthread_create(&t[k], NULL, worker, sh), 0);
	/* let them get going */
	while (atomic_load(&sh->entered) < (long)(r + 1) * 50)
		sched_yield();
	if (r % 3 == 0) {
		/* revoking first: USE_READ is refused, WRITEBACK not */
		gate_set(&sh->g, GATE_REVOKING);
		sched_yield();
	}
	gate_set(&sh->g, GATE_DRAINING);
	atomic_store(&sh->set_done, true);
	holders[0] = '\0';
	t0 = now_ns();
	ret = gate_drain(&sh->g, 10000, holders, sizeof(holders));
	ms = (now_ns() - t0) / 1000000;
	sh->worst_ms = MAX(sh->worst_ms, ms);
	if (ms > 100)
		printf("round %u: the drain took %llu ms with %ld inside\n",
		       r, (unsigned long long)ms, atomic_load(&sh->inside));
	CHECK_MSG(ret == 0, "round %u: drain %d; inside %ld; holders: %s", r,
		  ret, atomic_load(&sh->inside), holders);
	in = atomic_load(&sh->inside);
	CHECK_MSG(in == 0, "round %u: %ld threads inside after the drain",
		  r, in);
	/* (gate_inflight() may read 1 here: a refused enter counts itself
	 * for an instant before it backs out) */
	/* and it stays that way while they keep knocking */
	for (int k = 0; k < 200; k++) {
		CHECK_EQ(atomic_load(&sh->inside), 0);
		sched_yield();
	}
	atomic_store(&sh->stop, true);
	for (int k = 0; k < WORKERS; k++)
		CHECK_EQ(pthread_join(t[k], NULL), 0);
	CHECK_EQ(atomic_load(&sh->late), 0);
	CHECK_EQ(atomic_load(&sh->wrong_errno), 0);
}

/* test_drain_timeout -- a request that stays inside is named */
static void *holder(void *arg)
{
	struct shared *sh = arg;

	CHECK_EQ(gate_enter(&sh->g, USE_WRITE, 16, 4242), 0);
	atomic_fetch_add(&sh->inside, 1);
	while (!atomic_load(&sh->stop))
		sched_yield();
	atomic_fetch_sub(&sh->inside, 1);
	gate_exit(&sh->g);
	return NULL;
}

static void test_drain_timeout(struct shared *sh)
{
	char holders[256] = "";
	pthread_t t;

	atomic_store(&sh->stop, false);
	gate_set(&sh->g, GATE_LIVE);
	CHECK_EQ(pthread_create(&t, NULL, holder, sh), 0);
	while (!atomic_load(&sh->inside))
		sched_yield();
	gate_set(&sh->g, GATE_DRAINING);
	CHECK_ERR(gate_drain(&sh->g, 50, holders, sizeof(holders)),
		  -ETIMEDOUT);
	CHECK_MSG(strstr(holders, "write on inode 4242"), "holders: '%s'",
		  holders);
	CHECK_EQ(gate_enter(&sh->g, USE_NEW, 35, 1), ENXIO);
	CHECK_EQ(gate_enter(&sh->g, USE_READ, 15, 1), EIO);
	atomic_store(&sh->stop, true);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_OK(gate_drain(&sh->g, 5000, holders, sizeof(holders)));
}

int main(int argc, char **argv)
{
	static struct shared sh;

	tl_init("test_gate");
	CHECK_OK(gate_init(&sh.g));
	sh.keep_knocking = argc > 1 && !strcmp(argv[1], "starvation");
	for (unsigned r = 0; r < ROUNDS; r++) {
		sh.use = (r % 2) ? USE_READ : USE_WRITEBACK;
		round_once(&sh, r);
	}
	printf("gate: %u rounds, %ld requests entered, %ld refused, the "
	       "longest drain %llu ms\n", ROUNDS, atomic_load(&sh.entered),
	       atomic_load(&sh.refused), (unsigned long long)sh.worst_ms);
	test_drain_timeout(&sh);
	gate_destroy(&sh.g);
	printf("PASS\n");
	return 0;
}
