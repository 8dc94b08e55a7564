/*
 * testlib.h -- what every daxfs unit test shares: assertions that print
 * file:line and the values and exit 1, the skip convention (exit 77 with a
 * reason), a seeded random generator whose seed is printed so a failure
 * can be replayed, and file regions on /dev/shm that are removed at exit
 * whatever happened (a failed CHECK, abort(), a crash, a sanitizer report).
 *
 * Each test program is one main() calling test cases in turn; a case that
 * fails ends the program.  Header-only: every function is static.
 */
#ifndef DAXFS_TESTLIB_H
#define DAXFS_TESTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daxfs_i.h"

#define TL_SKIP 77
#define TL_UNUSED __attribute__((unused))

/* ---- assertions ------------------------------------------------------ */

static void tl_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4), unused));

/* tl_fail -- report a failed check and end the test */
static void tl_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	exit(1);
}

#define CHECK(cond) do {						\
	if (!(cond))							\
		tl_fail(__FILE__, __LINE__, "%s", #cond);		\
} while (0)

static void tl_fail_msg(const char *file, int line, const char *cond,
			const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5), unused));

/* tl_fail_msg -- a failed check with an explanation */
static void tl_fail_msg(const char *file, int line, const char *cond,
			const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: FAIL: %s: ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	exit(1);
}

#define CHECK_MSG(cond, ...) do {					\
	if (!(cond))							\
		tl_fail_msg(__FILE__, __LINE__, #cond, __VA_ARGS__);	\
} while (0)

/* values are compared as 64-bit two's complement: -5 equals (uint64_t)-5 */
#define CHECK_EQ(a, b) do {						\
	uint64_t _tl_a = (uint64_t)(a), _tl_b = (uint64_t)(b);	\
	if (_tl_a != _tl_b)						\
		tl_fail(__FILE__, __LINE__,				\
			"%s == %s: %" PRId64 " (%#" PRIx64 ") != %"	\
			PRId64 " (%#" PRIx64 ")", #a, #b,		\
			(int64_t)_tl_a, _tl_a, (int64_t)_tl_b, _tl_b);	\
} while (0)

#define CHECK_NE(a, b) do {						\
	uint64_t _tl_a = (uint64_t)(a), _tl_b = (uint64_t)(b);	\
	if (_tl_a == _tl_b)						\
		tl_fail(__FILE__, __LINE__,				\
			"%s != %s: both %" PRId64 " (%#" PRIx64 ")",	\
			#a, #b, (int64_t)_tl_a, _tl_a);			\
} while (0)

/* an int-returning call that must succeed; shows the daxfs sentence */
#define CHECK_OK(expr) do {						\
	int _tl_r = (expr);						\
	if (_tl_r != 0)							\
		tl_fail(__FILE__, __LINE__, "%s returned %d (%s)",	\
			#expr, _tl_r, daxfs_errmsg(_tl_r));		\
} while (0)

/* an int-returning call that must fail with exactly err (a -errno) */
#define CHECK_ERR(expr, err) do {					\
	int _tl_r = (expr), _tl_e = (err);				\
	if (_tl_r != _tl_e)						\
		tl_fail(__FILE__, __LINE__,				\
			"%s returned %d (%s), expected %d (%s)", #expr,	\
			_tl_r, strerror(_tl_r < 0 ? -_tl_r : _tl_r),	\
			_tl_e, strerror(-_tl_e));			\
} while (0)

#define CHECK_MEM(a, b, n) do {						\
	const uint8_t *_tl_p = (const void *)(a);			\
	const uint8_t *_tl_q = (const void *)(b);			\
	size_t _tl_n = (n);						\
	for (size_t _tl_i = 0; _tl_i < _tl_n; _tl_i++)			\
		if (_tl_p[_tl_i] != _tl_q[_tl_i])			\
			tl_fail(__FILE__, __LINE__,			\
				"%s and %s differ at byte %zu of %zu: "	\
				"%#x != %#x", #a, #b, _tl_i, _tl_n,	\
				_tl_p[_tl_i], _tl_q[_tl_i]);		\
} while (0)

/* skip the whole program with a reason */
static void tl_skip(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2), unused));

/* tl_skip -- this program cannot run here; say why and exit 77 */
static void tl_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(TL_SKIP);
}

/* ---- random numbers -------------------------------------------------- */

static uint64_t tl_rng_state;

/* tl_rand -- xorshift64*: fast, and the same sequence for the same seed */
static inline uint64_t tl_rand(void)
{
	uint64_t x = tl_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tl_rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* tl_rand_below -- uniform enough in [0, n); n > 0 */
static inline uint64_t tl_rand_below(uint64_t n)
{
	return tl_rand() % n;
}

/* tl_rand_range -- in [lo, hi] */
static inline uint64_t tl_rand_range(uint64_t lo, uint64_t hi)
{
	return lo + tl_rand_below(hi - lo + 1);
}

/* tl_fill_random -- random bytes */
static inline void tl_fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = tl_rand();

		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = tl_rand();

		memcpy(p, &v, len);
	}
}

/* ---- cleanup of regions at exit -------------------------------------- */

#define TL_MAX_PATHS 32

static char tl_paths[TL_MAX_PATHS][128];
static volatile sig_atomic_t tl_npaths;
static const char *tl_name = "test";

/* tl_cleanup -- remove every region this program created */
static void tl_cleanup(void)
{
	for (int k = 0; k < tl_npaths; k++)
		if (tl_paths[k][0])
			unlink(tl_paths[k]);
}

/* tl_on_signal -- a crash: remove the regions, then die of the signal */
static void tl_on_signal(int sig)
{
	tl_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* provided by the sanitizer runtimes only; NULL in a plain build */
extern void __sanitizer_set_death_callback(void (*cb)(void))
	__attribute__((weak));

/*
 * tl_init -- call first: names the program for its region files, seeds
 * the generator (DAXFS_TEST_SEED, or the clock) and installs the cleanup.
 */
static TL_UNUSED void tl_init(const char *name)
{
	const char *s = getenv("DAXFS_TEST_SEED");
	uint64_t seed;

	tl_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (s && *s)
		seed = strtoull(s, NULL, 0);
	else
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!seed)
		seed = 1;
	tl_rng_state = seed;
	printf("%s: seed %" PRIu64 " (replay with DAXFS_TEST_SEED=%" PRIu64
	       ")\n", name, seed, seed);
	atexit(tl_cleanup);
	if (__sanitizer_set_death_callback) {
		__sanitizer_set_death_callback(tl_cleanup);
	} else {
		signal(SIGSEGV, tl_on_signal);
		signal(SIGFPE, tl_on_signal);
		signal(SIGILL, tl_on_signal);
	}
	signal(SIGABRT, tl_on_signal);
	signal(SIGINT, tl_on_signal);
	signal(SIGTERM, tl_on_signal);
	signal(SIGHUP, tl_on_signal);
	signal(SIGPIPE, tl_on_signal);
	if (access("/dev/shm", W_OK))
		tl_skip("/dev/shm is not writable (%s); file regions live "
			"there", strerror(errno));
}

/* tl_region_path -- a fresh, unique path for a region file; removed at
 * exit.  The file is not created. */
static TL_UNUSED const char *tl_region_path(const char *what)
{
	int k = tl_npaths;

	CHECK(k < TL_MAX_PATHS);
	snprintf(tl_paths[k], sizeof(tl_paths[k]),
		 "/dev/shm/daxfs-unit-%s-%s-%d-%d", tl_name, what,
		 (int)getpid(), k);
	unlink(tl_paths[k]);
	tl_npaths = k + 1;
	return tl_paths[k];
}

/* tl_mkfs -- create and format a file region of size bytes */
static TL_UNUSED void tl_mkfs(const char *path, uint64_t size,
			      uint64_t ninodes)
{
	struct mkfs_opts o = { .size = 0, .ninodes = ninodes,
			       .label = "unit", .uid = 0, .gid = 0 };
	struct region *r;

	CHECK_OK(region_open(path, REGION_CREATE, size, &r));
	CHECK_EQ(r->size, size);
	CHECK_OK(daxfs_mkfs(r, &o));
	region_close(r);
}

/* tl_mount -- mount a formatted file region read-write */
static TL_UNUSED struct daxfs *tl_mount(const char *path)
{
	struct mount_opts o = { .readonly = false };
	struct daxfs *fs = NULL;

	CHECK_OK(fs_mount(path, &o, &fs));
	CHECK(fs != NULL);
	return fs;
}

/* tl_remount -- unmount cleanly and mount again */
static TL_UNUSED struct daxfs *tl_remount(struct daxfs *fs,
					  const char *path)
{
	CHECK_OK(fs_unmount(fs, true));
	return tl_mount(path);
}

/* tl_lock -- meta_lock exclusive, as changes require */
static inline void tl_lock(struct daxfs *fs)
{
	CHECK_OK(pthread_rwlock_wrlock(&fs->meta_lock));
}

/* tl_unlock -- release meta_lock */
static inline void tl_unlock(struct daxfs *fs)
{
	CHECK_OK(pthread_rwlock_unlock(&fs->meta_lock));
}

/* tl_new_inode -- a fresh committed inode of the given mode; directories
 * get the root as parent */
static TL_UNUSED struct inode *tl_new_inode(struct daxfs *fs, uint32_t mode)
{
	struct inode *i = NULL;
	struct tx *tx;

	tl_lock(fs);
	tx = tx_begin(fs);
	CHECK_OK(inode_alloc(fs, tx, mode, 0, 0, &i));
	if ((mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR)
		i->d.parent = DAXFS_ROOT_INO;
	CHECK_OK(tx_commit(tx));
	tl_unlock(fs);
	return i;
}

/* tl_get_inode -- the inode ino of a mounted filesystem */
static TL_UNUSED struct inode *tl_get_inode(struct daxfs *fs, uint64_t ino)
{
	struct inode *i = NULL;

	CHECK_OK(inode_get(fs, ino, &i));
	return i;
}

/* tl_delete_inode -- unlink-and-evict: frees the inode and its blocks */
static TL_UNUSED void tl_delete_inode(struct daxfs *fs, struct inode *i)
{
	tl_lock(fs);
	i->d.nlink = 0;
	i->nlookup = 0;
	atomic_store(&i->nopen, 0);
	CHECK_OK(inode_evict_locked(fs, i));
	tl_unlock(fs);
}

/* tl_count_free -- free blocks in a block bitmap over [0, nblocks) */
static TL_UNUSED uint64_t tl_count_free(const uint64_t *map,
					uint64_t nblocks)
{
	uint64_t n = 0;

	for (uint64_t b = 0; b < nblocks; b++)
		n += !(map[b / 64] & (1ULL << (b % 64)));
	return n;
}

#endif /* DAXFS_TESTLIB_H */
