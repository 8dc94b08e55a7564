/*
 * run.c -- daxfs_loadgen --phase run: start the workers, give every block
 * one writer, watch for hangs, stop, and report per worker.
 *
 * The main thread never touches the data files: it waits for signals
 * (blocked in every thread, taken here with sigtimedwait), runs the
 * watchdog every 50 ms and decides when the run is over.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

static const char *kind_name(enum lg_kind k)
{
	switch (k) {
	case K_MMAP: return "mmap";
	case K_URING: return "uring";
	case K_RW: return "rw";
	case K_OPEN: return "open";
	}
	return "?";
}

/* owner_of -- which worker writes block b of file f (see loadgen.h) */
static int owner_of(struct lg *lg, unsigned f, unsigned b)
{
	unsigned m = lg->o.mmap_workers, u = lg->o.uring_workers;
	unsigned r = lg->o.rw_workers, n = (m ? 1 : 0) + u + r, k;

	if (!n)
		return -1;
	k = b % n;
	if (m) {
		if (k == 0)
			return (int)(f % m);
		k--;
	}
	return (int)(m + k);	/* uring workers, then rw workers */
}

static int assign_blocks(struct lg *lg)
{
	size_t *count = calloc(lg->nw, sizeof(size_t));

	if (!count)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < lg->nw; k++) {
			struct lg_worker *w = &lg->w[k];

			if (pass == 0)
				continue;
			w->own = calloc(count[k] + 1, sizeof(uint32_t));
			w->own_start = calloc(lg->nfiles + 1, sizeof(size_t));
			if (!w->own || !w->own_start)
				return -1;
		}
		for (unsigned f = 0; f < lg->nfiles; f++) {
			for (unsigned k = 0; pass && k < lg->nw; k++)
				lg->w[k].own_start[f] = lg->w[k].nown;
			for (unsigned b = 0; b < lg->bpf; b++) {
				int o = owner_of(lg, f, b);

				if (o < 0)
					continue;
				if (pass == 0)
					count[o]++;
				else
					lg->w[o].own[lg->w[o].nown++] =
						f * lg->bpf + b;
			}
		}
		for (unsigned k = 0; pass && k < lg->nw; k++)
			lg->w[k].own_start[lg->nfiles] = lg->w[k].nown;
	}
	free(count);
	return 0;
}

static int make_workers(struct lg *lg)
{
	unsigned n[4] = { lg->o.mmap_workers, lg->o.uring_workers,
			  lg->o.rw_workers, lg->o.open_workers };
	unsigned k = 0;

	lg->nw = n[0] + n[1] + n[2] + n[3];
	lg->w = calloc(lg->nw ? lg->nw : 1, sizeof(*lg->w));
	if (!lg->w)
		return -1;
	for (int kind = 0; kind < 4; kind++)
		for (unsigned i = 0; i < n[kind]; i++, k++) {
			lg->w[k].lg = lg;
			lg->w[k].kind = (enum lg_kind)kind;
			lg->w[k].index = i;
			snprintf(lg->w[k].name, sizeof(lg->w[k].name), "%s%u",
				 kind_name((enum lg_kind)kind), i);
		}
	return assign_blocks(lg);
}

/* watchdog -- an operation outstanding longer than the bound is a hang */
static void watchdog(struct lg *lg)
{
	uint64_t now = lg_now(), bound = (uint64_t)(lg->o.hang_s * 1e9);

	for (unsigned k = 0; k < lg->nw; k++) {
		struct lg_worker *w = &lg->w[k];
		uint64_t t = atomic_load(&w->busy_since);

		for (unsigned i = 0; !atomic_load(&w->done) && i < w->nslots;
		     i++) {
			uint64_t s = atomic_load(&w->slot_since[i]);

			if (s && (!t || s < t))
				t = s;
		}
		if (t && now > t && now - t > bound &&
		    !atomic_exchange(&w->hung, true)) {
			atomic_store(&lg->hung, true);
			fprintf(stderr, "daxfs_loadgen: %s: an operation has "
				"been outstanding for more than %.0f s: hung\n",
				w->name, lg->o.hang_s);
		}
		if (atomic_load(&w->hung))
			atomic_store(&lg->hung, true);
	}
}

static bool all(struct lg *lg, bool ready_test)
{
	for (unsigned k = 0; k < lg->nw; k++) {
		struct lg_worker *w = &lg->w[k];
		bool done = atomic_load(&w->done);

		if (ready_test ? !(done || atomic_load(&w->ok) >= 4) : !done)
			return false;
	}
	return true;
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "";
	case EBADMSG: return "EBADMSG (content not a valid stamp)";
	case EMSGSIZE: return "EMSGSIZE (short transfer)";
	default: return strerror(e);
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar((unsigned char)*s < 0x20 ? ' ' : *s);
	}
	putchar('"');
}

#define U(x) ((unsigned long long)atomic_load(&(x)))

/* report -- per worker, text or one JSON object */
static void report(struct lg *lg, uint64_t ms, bool all_failed)
{
	uint64_t acked = 0, probe_ok = 0;

	for (size_t g = 0; g < (size_t)lg->nfiles * lg->bpf; g++)
		acked += lg->ack[g] > 1;
	for (unsigned k = 0; k < lg->nw; k++)
		probe_ok += atomic_load(&lg->w[k].probe_ok);
	if (lg->o.json) {
		printf("{\"phase\":\"run\",\"ok\":%s,\"hung\":%s,\"ms\":%llu,"
		       "\"all_failed\":%s,\"probe_ok\":%llu,"
		       "\"acknowledged_blocks\":%llu,\"blocks\":%llu,"
		       "\"workers\":[", atomic_load(&lg->hung) ? "false" :
		       "true", atomic_load(&lg->hung) ? "true" : "false",
		       (unsigned long long)ms, all_failed ? "true" : "false",
		       (unsigned long long)probe_ok, (unsigned long long)acked,
		       (unsigned long long)lg->nfiles * lg->bpf);
		for (unsigned k = 0; k < lg->nw; k++) {
			struct lg_worker *w = &lg->w[k];
			uint64_t ff = atomic_load(&w->first_fail_ns);

			printf("%s{\"name\":\"%s\",\"kind\":\"%s\",\"ops\":%llu,"
			       "\"ok\":%llu,\"eio\":%llu,\"enxio\":%llu,"
			       "\"sigbus\":%llu,\"other\":%llu,"
			       "\"last_other\":", k ? "," : "", w->name,
			       kind_name(w->kind), U(w->ops), U(w->ok),
			       U(w->eio), U(w->enxio), U(w->sigbus),
			       U(w->other));
			json_str(errno_name(atomic_load(&w->last_other)));
			printf(",\"failed\":%s,\"first_failure_ms\":%lld,"
			       "\"probe_ok\":%llu,\"probe_fail\":%llu,"
			       "\"acked\":%llu,\"max_op_ms\":%llu,"
			       "\"hung\":%s,\"done\":%s,\"note\":",
			       atomic_load(&w->failed) ? "true" : "false",
			       ff ? (long long)((ff - lg->t0) / 1000000) : -1LL,
			       U(w->probe_ok), U(w->probe_fail), U(w->acked),
			       U(w->max_op_ns) / 1000000,
			       atomic_load(&w->hung) ? "true" : "false",
			       atomic_load(&w->done) ? "true" : "false");
			json_str(w->note);
			putchar('}');
		}
		printf("]}\n");
		fflush(stdout);
		return;
	}
	printf("%-7s %9s %9s %7s %7s %7s %6s %6s %7s %7s %s\n", "worker",
	       "ops", "ok", "EIO", "ENXIO", "SIGBUS", "other", "probe",
	       "acked", "max ms", "state");
	for (unsigned k = 0; k < lg->nw; k++) {
		struct lg_worker *w = &lg->w[k];

		printf("%-7s %9llu %9llu %7llu %7llu %7llu %6llu %3llu/%-2llu "
		       "%7llu %7llu %s%s%s%s%s\n", w->name, U(w->ops), U(w->ok),
		       U(w->eio), U(w->enxio), U(w->sigbus), U(w->other),
		       U(w->probe_fail), U(w->probe_ok) + U(w->probe_fail),
		       U(w->acked), U(w->max_op_ns) / 1000000,
		       atomic_load(&w->hung) ? "HUNG" :
		       atomic_load(&w->failed) ? "failed" : "no failure",
		       w->note[0] ? "; " : "", w->note,
		       atomic_load(&w->last_other) ? "; last other error: " : "",
		       errno_name(atomic_load(&w->last_other)));
	}
	printf("run %s in %llu ms: %s; %llu of %llu blocks acknowledged past "
	       "generation 1; %llu probes after release succeeded\n",
	       atomic_load(&lg->hung) ? "HUNG" : "ended",
	       (unsigned long long)ms, all_failed ? "every worker saw the "
	       "failure" : "not every worker saw a failure",
	       (unsigned long long)acked,
	       (unsigned long long)lg->nfiles * lg->bpf,
	       (unsigned long long)probe_ok);
	fflush(stdout);
}

static void write_ready(struct lg *lg)
{
	int fd = open(lg->o.ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0644);

	if (fd < 0 || write(fd, "ready\n", 6) != 6)
		fprintf(stderr, "daxfs_loadgen: %s: %s\n", lg->o.ready,
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* lg_run -- 0 when the run ended without a hang */
int lg_run(struct lg *lg)
{
	static void *(*fn[])(void *) = { lg_mmap_worker, lg_uring_worker,
					  lg_rw_worker, lg_open_worker };
	struct timespec tick = { 0, 50000000 };
	uint64_t stop_at = 0, end;
	bool ready = !lg->o.ready, all_failed = true;
	sigset_t set;

	if (make_workers(lg)) {
		fprintf(stderr, "daxfs_loadgen: out of memory\n");
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	lg->t0 = lg_now();
	atomic_store(&lg->reading, lg->nw);
	end = lg->o.duration > 0 ? lg->t0 + (uint64_t)(lg->o.duration * 1e9) :
	      0;
	for (unsigned k = 0; k < lg->nw; k++)
		if (pthread_create(&lg->w[k].thread, NULL,
				   fn[lg->w[k].kind], &lg->w[k])) {
			fprintf(stderr, "daxfs_loadgen: cannot start a "
				"thread\n");
			_exit(1);
		}
	for (;;) {
		uint64_t now;

		if (sigtimedwait(&set, NULL, &tick) > 0 && !stop_at)
			atomic_store(&lg->stop, true);
		now = lg_now();
		if (end && now >= end)
			atomic_store(&lg->stop, true);
		if (atomic_load(&lg->stop) && !stop_at)
			stop_at = now;
		watchdog(lg);
		if (!ready && all(lg, true)) {
			write_ready(lg);
			ready = true;
		}
		if (all(lg, false) || atomic_load(&lg->hung))
			break;
		/* told to stop: give the workers the hang bound to finish */
		if (stop_at && now - stop_at > (uint64_t)(lg->o.hang_s * 1e9)) {
			for (unsigned k = 0; k < lg->nw; k++)
				if (!atomic_load(&lg->w[k].done))
					atomic_store(&lg->w[k].hung, true);
			atomic_store(&lg->hung, true);
			break;
		}
	}
	atomic_store(&lg->stop, true);
	for (unsigned k = 0; k < lg->nw; k++) {
		if (!atomic_load(&lg->w[k].failed))
			all_failed = false;
		if (atomic_load(&lg->w[k].done))
			pthread_join(lg->w[k].thread, NULL);
	}
	report(lg, (lg_now() - lg->t0) / 1000000, all_failed && lg->nw);
	return atomic_load(&lg->hung) ? 1 : 0;
}
