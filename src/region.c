/*
 * region.c -- open, lock and map a region, and every access to it.
 *
 * Owns: the region's file descriptor and lock, the libpmem2 mapping, the
 * SIGBUS guard.  Must never: store to the region outside the functions
 * below, or let a fault inside the region kill the process.
 *
 * The guard.  A vanished region (a devdax device unbound, a file region
 * truncated) makes loads and stores raise SIGBUS.  Each access arms a
 * per-thread jump buffer with sigsetjmp(jb, 0) -- the cheap form that does
 * not save the signal mask; SA_NODEFER keeps SIGBUS unblocked inside the
 * handler so nothing needs restoring -- and the handler jumps back when the
 * faulting address lies in a registered region.  Any other SIGBUS gets the
 * default action.  The pointer to the jump buffer is volatile: without it
 * gcc at -O2 may drop the store that arms the guard.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <unistd.h>

#include <pthread.h>

#include <libpmem2.h>

#include "format.h"
#include "region.h"
#include "util.h"

#define FILE_REGION_ALIGN	(2ULL << 20)
#define MAX_GUARDED		16

static __thread sigjmp_buf *volatile guard_jb;

/* address ranges the handler may recover from; written under guard_mutex,
 * read lock-free by the handler */
static struct {
	_Atomic uintptr_t start, end;
} ranges[MAX_GUARDED];
static pthread_mutex_t guard_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

/* the handlers we replaced, for faults that are not ours */
static struct sigaction old_bus, old_segv;
static atomic_bool segv_installed;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	sigjmp_buf *jb = guard_jb;

	(void)uc;
	if (jb) {
		for (int i = 0; i < MAX_GUARDED; i++) {
			uintptr_t s = atomic_load_explicit(&ranges[i].start,
						memory_order_relaxed);
			uintptr_t e = atomic_load_explicit(&ranges[i].end,
						memory_order_relaxed);
			if (s && a >= s && a < e)
				siglongjmp(*jb, 1);
		}
	}
	/* not a region access: put back whoever handled this before us and
	 * return; the access faults again and gets what it would have */
	sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
}

static void install(int sig, struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, old);
}

static void guard_install(void)
{
	install(SIGBUS, &old_bus);
}

static void guard_register(struct region *r)
{
	pthread_mutex_lock(&guard_mutex);
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (!atomic_load(&ranges[i].start)) {
			atomic_store(&ranges[i].end,
				     (uintptr_t)r->base + r->size);
			atomic_store(&ranges[i].start, (uintptr_t)r->base);
			break;
		}
	}
	pthread_mutex_unlock(&guard_mutex);
}

static void guard_unregister(struct region *r)
{
	pthread_mutex_lock(&guard_mutex);
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (atomic_load(&ranges[i].start) == (uintptr_t)r->base) {
			atomic_store(&ranges[i].start, 0);
			atomic_store(&ranges[i].end, 0);
		}
	}
	pthread_mutex_unlock(&guard_mutex);
}

enum gop { G_READ, G_WRITE, G_SET, G_FLUSH };

/* guarded -- one access under the SIGBUS guard; -EIO if it faulted */
static int guarded(struct region *r, enum gop op, void *dst, const void *src,
		   uint64_t len, int c, unsigned pflags)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 0)) {
		guard_jb = NULL;
		region_mark_vanished(r);
		return -EIO;
	}
	guard_jb = &jb;
	atomic_signal_fence(memory_order_seq_cst);
	switch (op) {
	case G_READ:
		memcpy(dst, src, len);
		break;
	case G_WRITE:
		((pmem2_memcpy_fn)r->memcpy_fn)(dst, src, len, pflags);
		break;
	case G_SET:
		((pmem2_memset_fn)r->memset_fn)(dst, c, len, pflags);
		break;
	case G_FLUSH:
		((pmem2_flush_fn)r->flush_fn)(dst, len);
		break;
	}
	atomic_signal_fence(memory_order_seq_cst);
	guard_jb = NULL;
	return 0;
}

static int check(struct region *r, uint64_t off, uint64_t len, bool store)
{
	if (!region_alive(r))
		return -EIO;
	if (!region_range_ok(r, off, len))
		return -EUCLEAN;
	if (store && r->readonly)
		return -EROFS;
	return 0;
}

/*
 * populate -- map the pages of a large read before copying them.  A
 * page fault per 4 KiB (or per small fault-around batch) on the region's
 * mapping is slow in a virtual machine; MADV_POPULATE_READ maps the whole
 * range in one call (a range past a cut region file fails with EFAULT,
 * and the guarded copy then reports the vanished region).
 */
#define POPULATE_MIN (64u << 10)

static void populate(struct region *r, uint64_t off, uint64_t len)
{
#ifdef MADV_POPULATE_READ
	uint64_t start = off & ~(uint64_t)4095;

	(void)madvise(r->base + start, off + len - start, MADV_POPULATE_READ);
#else
	(void)r;
	(void)off;
	(void)len;
#endif
}

/* region_read -- copy len bytes at off out of the region */
int region_read(struct region *r, uint64_t off, void *dst, uint64_t len)
{
	int ret = check(r, off, len, false);

	if (ret || !len)
		return ret;
	if (len >= POPULATE_MIN)
		populate(r, off, len);
	return guarded(r, G_READ, dst, r->base + off, len, 0, 0);
}

/* region_write -- store without durability; flush/drain (or persist) later */
int region_write(struct region *r, uint64_t off, const void *src,
		 uint64_t len)
{
	int ret = check(r, off, len, true);

	if (ret || !len)
		return ret;
	if (r->tracer)
		r->tracer->store(r->tracer->arg, off, src, len, false);
	return guarded(r, G_WRITE, r->base + off, src, len, 0,
		       PMEM2_F_MEM_NOFLUSH | PMEM2_F_MEM_TEMPORAL);
}

/* region_zero -- like region_write with zeroes */
int region_zero(struct region *r, uint64_t off, uint64_t len)
{
	int ret = check(r, off, len, true);

	if (ret || !len)
		return ret;
	if (r->tracer) {
		static const char z[4096];

		for (uint64_t d = 0; d < len; d += sizeof(z))
			r->tracer->store(r->tracer->arg, off + d, z,
					 MIN(sizeof(z), len - d), false);
	}
	return guarded(r, G_SET, r->base + off, NULL, len, 0,
		       PMEM2_F_MEM_NOFLUSH | PMEM2_F_MEM_TEMPORAL);
}

/*
 * region_flush -- write back the cache lines (or pages) of a range.  A
 * memory-backed file region (tmpfs, hugetlbfs) on page granularity has
 * nothing to write back to: its page cache is the storage, and msync
 * there only costs a system call.  The tracer still sees the flush.
 */
int region_flush(struct region *r, uint64_t off, uint64_t len)
{
	int ret = check(r, off, len, true);

	if (ret || !len)
		return ret;
	if (r->tracer)
		r->tracer->flush(r->tracer->arg, off, len);
	if (r->memory_backed && !r->cacheline)
		return 0;
	return guarded(r, G_FLUSH, r->base + off, NULL, len, 0, 0);
}

/* region_drain -- wait for every flush issued so far to reach the media */
int region_drain(struct region *r)
{
	if (!region_alive(r))
		return -EIO;
	if (r->tracer)
		r->tracer->drain(r->tracer->arg);
	((pmem2_drain_fn)r->drain_fn)();
	return 0;
}

/* region_persist -- flush and drain one range */
int region_persist(struct region *r, uint64_t off, uint64_t len)
{
	int ret = region_flush(r, off, len);

	return ret ? ret : region_drain(r);
}

/*
 * region_data_write -- the file data path.  On cache-line granularity the
 * copy is flushed as it goes (non-temporal for large copies) and only the
 * drain is left for region_data_sync(); on page granularity nothing is
 * flushed and region_data_sync() msyncs the range.
 */
int region_data_write(struct region *r, uint64_t off, const void *src,
		      uint64_t len)
{
	int ret = check(r, off, len, true);

	if (ret || !len)
		return ret;
	if (r->tracer)
		r->tracer->store(r->tracer->arg, off, src, len, r->cacheline);
	return guarded(r, G_WRITE, r->base + off, src, len, 0,
		       r->cacheline ? PMEM2_F_MEM_NODRAIN :
				      PMEM2_F_MEM_NOFLUSH);
}

int region_data_zero(struct region *r, uint64_t off, uint64_t len)
{
	int ret = check(r, off, len, true);

	if (ret || !len)
		return ret;
	if (r->tracer) {
		static const char z[4096];

		for (uint64_t d = 0; d < len; d += sizeof(z))
			r->tracer->store(r->tracer->arg, off + d, z,
					 MIN(sizeof(z), len - d),
					 r->cacheline);
	}
	return guarded(r, G_SET, r->base + off, NULL, len, 0,
		       r->cacheline ? PMEM2_F_MEM_NODRAIN :
				      PMEM2_F_MEM_NOFLUSH);
}

/* region_data_sync -- make earlier region_data_write()s in range durable */
int region_data_sync(struct region *r, uint64_t off, uint64_t len)
{
	if (r->cacheline)
		return region_drain(r);
	return region_persist(r, off, len);
}

/*
 * region_next_data -- the first offset at or after off that may hold
 * anything but zeroes (end when none).  A file region answers from its
 * holes (SEEK_DATA), so scanning a big sparse region does not read -- and
 * on tmpfs allocate -- gigabytes of zeroes; a device answers off.
 */
uint64_t region_next_data(struct region *r, uint64_t off, uint64_t end)
{
	off_t d;

	if (r->kind != REGION_KIND_FILE || r->fd < 0 || off >= end)
		return off;
	d = lseek(r->fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? end : off;
	return MIN((uint64_t)d, end);
}

/* region_ptr -- where the kernel may copy a read reply from */
const void *region_ptr(struct region *r, uint64_t off, uint64_t len)
{
	if (check(r, off, len, false))
		return NULL;
	return r->base + off;
}

/* region_mark_vanished -- the backing memory is gone; tell the owner once */
void region_mark_vanished(struct region *r)
{
	int expect = REGION_OK;

	if (atomic_compare_exchange_strong(&r->state, &expect,
					   REGION_VANISHED) &&
	    r->on_vanish)
		r->on_vanish(r, r->on_vanish_arg);
}

/* region_backing_gone -- has the backing file or device gone away? */
bool region_backing_gone(struct region *r)
{
	struct stat st;

	if (atomic_load(&r->state) == REGION_VANISHED)
		return true;
	if (r->kind == REGION_KIND_DEVDAX)
		return region_devdax_check(r) != 0;
	if (fstat(r->fd, &st))
		return true;
	return st.st_nlink == 0 || (uint64_t)st.st_size < r->size;
}

static const char *kind_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFDIR: return "is a directory";
	case S_IFBLK: return "is a block device";
	case S_IFCHR: return "is a character device that is not device-DAX";
	case S_IFIFO: return "is a fifo";
	case S_IFSOCK: return "is a socket";
	case S_IFLNK: return "is a symbolic link";
	default: return "is not a regular file";
	}
}

/* region_lock -- the one-holder rule; the loser learns who holds it */
static int region_lock(struct region *r, unsigned flags)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = (flags & (REGION_SHARED | REGION_RDONLY)) ? F_RDLCK :
								F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(r->fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EAGAIN && errno != EACCES) {
		daxfs_seterr("cannot lock the region: %s", strerror(errno));
		return -errno;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(r->fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		daxfs_seterr("region is in use by pid %d", (int)fl.l_pid);
	else
		daxfs_seterr("region is in use by another process");
	return -EBUSY;
}

/* region_lock_holder -- pid holding spec's lock, 0 if none, or -errno */
int region_lock_holder(const char *spec)
{
	struct flock fl;
	int fd = open(spec, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	ret = fcntl(fd, F_GETLK, &fl) ? -errno :
	      fl.l_type == F_UNLCK ? 0 : (int)fl.l_pid;
	close(fd);
	return ret;
}

/* open_file -- a regular file region, created or resized when asked */
static int open_file(struct region *r, const char *path, unsigned flags)
{
	struct stat st;
	int oflags = (flags & REGION_RDONLY) ? O_RDONLY : O_RDWR;

	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			daxfs_seterr("%s; a region is /dev/daxX.Y, daxX.Y or "
				     "a regular file", kind_of(st.st_mode));
			return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		}
	} else if (errno != ENOENT || !(flags & REGION_CREATE)) {
		int e = errno;

		daxfs_seterr("%s", e == ENOENT ? "no such file or device" :
			     strerror(e));
		return -e;
	} else {
		oflags |= O_CREAT | O_EXCL;
	}
	r->fd = open(path, oflags | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		int e = errno;

		daxfs_seterr("cannot open: %s", strerror(e));
		return -e;
	}
	r->kind = REGION_KIND_FILE;
	r->align = FILE_REGION_ALIGN;
	snprintf(r->path, sizeof(r->path), "%s", path);
	return 0;
}

static int open_devdax(struct region *r, const char *spec, unsigned flags)
{
	uint64_t size, align;
	struct stat st;
	int ret;

	ret = region_devdax_resolve(spec, r->path, sizeof(r->path), r->name,
				    sizeof(r->name), &size, &align);
	if (ret)
		return ret;
	r->fd = open(r->path, ((flags & REGION_RDONLY) ? O_RDONLY : O_RDWR) |
		     O_CLOEXEC);
	if (r->fd < 0) {
		int e = errno;

		daxfs_seterr("cannot open %s: %s", r->path, strerror(e));
		return -e;
	}
	if (fstat(r->fd, &st) == 0)
		r->rdev = st.st_rdev;
	r->kind = REGION_KIND_DEVDAX;
	r->size = size;
	r->align = align ? align : FILE_REGION_ALIGN;
	return 0;
}

static int map_region(struct region *r, unsigned flags)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	struct pmem2_map *map = NULL;
	size_t align = 4096;
	int ret;

	if (pmem2_config_new(&cfg))
		goto err_pmem2;
	if (pmem2_source_from_fd(&src, r->fd))
		goto err_cfg;
	pmem2_source_alignment(src, &align);
	/* PAGE is the weakest requirement: it accepts every kind of region,
	 * and the granularity we got decides how we make stores durable */
	pmem2_config_set_required_store_granularity(cfg,
						    PMEM2_GRANULARITY_PAGE);
	if (flags & REGION_RDONLY)
		pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	r->size = ALIGN_DOWN(r->size, MAX(align, (size_t)4096));
	if (r->size < DAXFS_BLOCK_SIZE) {
		daxfs_seterr("is empty or smaller than one block");
		ret = -EINVAL;
		goto err_src;
	}
	pmem2_config_set_length(cfg, r->size);
	if (pmem2_map_new(&map, cfg, src))
		goto err_src_pmem2;
	r->base = pmem2_map_get_address(map);
	r->cacheline = pmem2_map_get_store_granularity(map) !=
		       PMEM2_GRANULARITY_PAGE;
	r->memcpy_fn = (void *)pmem2_get_memcpy_fn(map);
	r->memset_fn = (void *)pmem2_get_memset_fn(map);
	r->flush_fn = (void *)pmem2_get_flush_fn(map);
	r->drain_fn = (void *)pmem2_get_drain_fn(map);
	r->p2_src = src;
	r->p2_map = map;
	if (r->kind == REGION_KIND_FILE) {
		struct statfs sfs;

		r->memory_backed = fstatfs(r->fd, &sfs) == 0 &&
				   (sfs.f_type == TMPFS_MAGIC ||
				    sfs.f_type == HUGETLBFS_MAGIC);
	}
	pmem2_config_delete(&cfg);
	guard_register(r);
	atomic_store(&r->state, REGION_OK);
	return 0;

err_src_pmem2:
	daxfs_seterr("cannot map: %s", pmem2_errormsg());
	ret = -ENXIO;
err_src:
	pmem2_source_delete(&src);
	pmem2_config_delete(&cfg);
	return ret;
err_cfg:
	pmem2_config_delete(&cfg);
err_pmem2:
	daxfs_seterr("cannot map: %s", pmem2_errormsg());
	return -ENXIO;
}

/*
 * region_open -- find, lock and map a region.
 *
 * spec is /dev/daxX.Y, a bare daxX.Y, or a path to a regular file.  With
 * REGION_CREATE and a size, a missing file is created and an existing one
 * resized (after the lock is held, so a mounted region is never resized).
 */
int region_open(const char *spec, unsigned flags, uint64_t size,
		struct region **out)
{
	struct region *r;
	struct stat st;
	int ret;

	daxfs_clearerr();
	pthread_once(&guard_once, guard_install);
	if (!spec || !*spec) {
		daxfs_seterr("no region given");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	atomic_init(&r->state, REGION_UNMAPPED);
	r->readonly = flags & REGION_RDONLY;

	if (region_spec_is_devdax(spec))
		ret = open_devdax(r, spec, flags);
	else
		ret = open_file(r, spec, flags);
	if (ret)
		goto err_free;
	if (fstat(r->fd, &st)) {
		ret = -errno;
		goto err_close;
	}
	r->st_dev = st.st_dev;
	r->st_ino = st.st_ino;

	if (!(flags & REGION_NOLOCK)) {
		ret = region_lock(r, flags);
		if (ret)
			goto err_close;
	}

	if (r->kind == REGION_KIND_FILE) {
		if ((flags & REGION_CREATE) && size &&
		    (uint64_t)st.st_size != size) {
			if (ftruncate(r->fd, (off_t)size)) {
				ret = -errno;
				daxfs_seterr("cannot size the file to %llu "
					     "bytes: %s",
					     (unsigned long long)size,
					     strerror(errno));
				goto err_close;
			}
			st.st_size = (off_t)size;
		}
		r->size = (uint64_t)st.st_size;
	} else if (size) {
		if (size > r->size) {
			daxfs_seterr("device is only %llu bytes",
				     (unsigned long long)r->size);
			ret = -ENOSPC;
			goto err_close;
		}
		r->size = size;
	}

	ret = map_region(r, flags);
	if (ret)
		goto err_close;
	*out = r;
	return 0;

err_close:
	close(r->fd);
err_free:
	free(r);
	return ret;
}

/*
 * region_release -- let go of the device (or file) now, while the address
 * range stays reserved: the mapping is replaced by an inaccessible one, so
 * a straggler that passed its state check before the release faults with
 * SIGSEGV inside a guarded range and gets -EIO instead of touching memory
 * that something else was mapped into.  Closing the descriptor drops the
 * region's lock.  The reservation goes with region_close().
 */
int region_release(struct region *r)
{
	int ret = 0;

	atomic_store_explicit(&r->state, REGION_UNMAPPED,
			      memory_order_seq_cst);
	if (r->base && !r->released) {
		if (!atomic_exchange(&segv_installed, true))
			install(SIGSEGV, &old_segv);
		if (mmap(r->base, r->size, PROT_NONE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS |
			 MAP_NORESERVE, -1, 0) == MAP_FAILED)
			ret = -errno;
		r->released = true;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	return ret;
}

/* region_unmap -- release the mapping; callers have drained every user */
void region_unmap(struct region *r)
{
	struct pmem2_map *map = r->p2_map;
	struct pmem2_source *src = r->p2_src;

	if (!map)
		return;
	atomic_store_explicit(&r->state, REGION_UNMAPPED,
			      memory_order_release);
	guard_unregister(r);
	pmem2_map_delete(&map);
	pmem2_source_delete(&src);
	r->p2_map = NULL;
	r->p2_src = NULL;
	r->base = NULL;
}

/* region_close -- unmap, drop the lock, close and free */
void region_close(struct region *r)
{
	if (!r)
		return;
	region_unmap(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}
