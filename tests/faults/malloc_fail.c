/*
 * malloc_fail.c -- an LD_PRELOAD shim that makes allocations fail inside
 * a running daxfs daemon, for tests/test_faults.py.  No daemon change is
 * needed: malloc, calloc and realloc are wrapped.
 *
 *   DAXFS_FAULT_MALLOC=N     once armed, every Nth allocation fails
 *   DAXFS_FAULT_ARM=PATH     armed while PATH exists (polled every 10 ms),
 *                            so start-up and mounting run undisturbed;
 *                            PATH.on exists while the shim is armed, so a
 *                            test can wait for the change to take effect
 *   DAXFS_FAULT_SCOPE=exe    only allocations called from the daxfs
 *                            executable itself fail (default); "all" lets
 *                            libfuse's and the C library's fail too
 *
 * At exit it prints "malloc_fail: F of A allocations failed" to stderr
 * (A counts the allocations made while armed, in scope).  A process that
 * aborts prints where, first: "malloc_fail: abort at" and a backtrace.
 *
 * Not usable together with ASan or TSan, whose allocators must come
 * first; the tests skip those builds.
 */

#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

static unsigned long every;		/* 0: never fail */
static atomic_bool armed;
static bool scope_all;
static atomic_ulong seen, failed;
static const char *arm_path;
static char ack_path[4096];		/* arm_path + ".on" */

/* the executable's code, where "our" allocations are called from */
static struct {
	uintptr_t start, end;
} code[8];
static int ncode;

static int find_exe(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	/* the first object is the executable */
	for (int k = 0; k < info->dlpi_phnum && ncode < 8; k++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[k];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			code[ncode].start = info->dlpi_addr + ph->p_vaddr;
			code[ncode].end = code[ncode].start + ph->p_memsz;
			ncode++;
		}
	}
	return 1;
}

static bool from_exe(uintptr_t ra)
{
	for (int k = 0; k < ncode; k++)
		if (ra >= code[k].start && ra < code[k].end)
			return true;
	return false;
}

/* should_fail -- this allocation, called from ra, fails */
static bool should_fail(uintptr_t ra)
{
	if (!every || !atomic_load_explicit(&armed, memory_order_relaxed))
		return false;
	if (!scope_all && !from_exe(ra))
		return false;
	if ((atomic_fetch_add(&seen, 1) + 1) % every)
		return false;
	atomic_fetch_add(&failed, 1);
	return true;
}

void *malloc(size_t size)
{
	if (should_fail((uintptr_t)__builtin_return_address(0)))
		return NULL;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (should_fail((uintptr_t)__builtin_return_address(0)))
		return NULL;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	if (size && should_fail((uintptr_t)__builtin_return_address(0)))
		return NULL;
	return __libc_realloc(p, size);
}

static void *arm_poll(void *arg)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	(void)arg;
	for (;;) {
		bool now = access(arm_path, F_OK) == 0;

		/* the acknowledgement follows the state, never leads it */
		if (now != atomic_load(&armed)) {
			atomic_store(&armed, now);
			if (now)
				close(open(ack_path, O_WRONLY | O_CREAT, 0644));
			else
				unlink(ack_path);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void on_abort(int sig)
{
	void *frames[32];
	int n = backtrace(frames, 32);
	static const char msg[] = "malloc_fail: abort at\n";

	write(2, msg, sizeof(msg) - 1);
	backtrace_symbols_fd(frames, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

__attribute__((constructor)) static void setup(void)
{
	void *warm[2];
	const char *n = getenv("DAXFS_FAULT_MALLOC");
	const char *s = getenv("DAXFS_FAULT_SCOPE");
	pthread_t t;

	if (!n || !*n)
		return;
	every = strtoul(n, NULL, 0);
	backtrace(warm, 2);		/* loads what backtrace needs, now */
	signal(SIGABRT, on_abort);
	scope_all = s && !strcmp(s, "all");
	dl_iterate_phdr(find_exe, NULL);
	arm_path = getenv("DAXFS_FAULT_ARM");
	if (!arm_path || !*arm_path) {
		atomic_store(&armed, true);
		return;
	}
	snprintf(ack_path, sizeof(ack_path), "%s.on", arm_path);
	if (pthread_create(&t, NULL, arm_poll, NULL) == 0)
		pthread_detach(t);
}

__attribute__((destructor)) static void report(void)
{
	if (every)
		fprintf(stderr, "malloc_fail: %lu of %lu allocations failed\n",
			atomic_load(&failed), atomic_load(&seen));
}
