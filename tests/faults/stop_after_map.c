/*
 * stop_after_map.c -- an LD_PRELOAD shim that stops a daxfs tool right
 * after it has mapped its region, for tests/test_fsck.py: with the tool
 * stopped, the test makes the region vanish (truncates the file) and lets
 * it go on, so every access the tool makes afterwards meets a region that
 * is gone -- the SIGBUS guard's case, without racing the tool.
 *
 *   DAXFS_STOP_MAP_PATH=PATH   the first shared mapping of PATH's file
 *                              stops the process with SIGSTOP once made
 *
 * Built without sanitizers; in front of an ASan build it needs
 * ASAN_OPTIONS=verify_asan_link_order=0.
 */

#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

static struct stat target;
static bool have_target;
static atomic_bool stopped;

static void *stop_after(mmap_fn real, void *addr, size_t len, int prot,
			int flags, int fd, off_t off)
{
	void *p = real(addr, len, prot, flags, fd, off);
	struct stat st;

	if (p == MAP_FAILED || !have_target || fd < 0 ||
	    !(flags & MAP_SHARED) || atomic_load(&stopped))
		return p;
	if (fstat(fd, &st) || st.st_dev != target.st_dev ||
	    st.st_ino != target.st_ino)
		return p;
	atomic_store(&stopped, true);
	raise(SIGSTOP);
	return p;
}

/* resolve -- the C library's own function, looked up once */
static mmap_fn resolve(_Atomic(mmap_fn) *slot, const char *name)
{
	mmap_fn f = atomic_load(slot);

	if (!f) {
		f = (mmap_fn)dlsym(RTLD_NEXT, name);
		atomic_store(slot, f);
	}
	return f;
}

static _Atomic(mmap_fn) real_mmap, real_mmap64;

/* both symbols, by their link names: which one a library calls depends
 * on how it was built (_FILE_OFFSET_BITS), not on the C name */
void *shim_mmap(void *addr, size_t len, int prot, int flags, int fd,
		off_t off) __asm__("mmap");
void *shim_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off) __asm__("mmap64");

void *shim_mmap(void *addr, size_t len, int prot, int flags, int fd,
		off_t off)
{
	return stop_after(resolve(&real_mmap, "mmap"), addr, len, prot,
			  flags, fd, off);
}

void *shim_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	return stop_after(resolve(&real_mmap64, "mmap64"), addr, len, prot,
			  flags, fd, off);
}

__attribute__((constructor)) static void setup(void)
{
	const char *path = getenv("DAXFS_STOP_MAP_PATH");

	have_target = path && *path && stat(path, &target) == 0;
}
