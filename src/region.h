/*
 * region.h -- the region: finding it, mapping it, and every access to it.
 *
 * region.c is the only code that stores to a region.  Every load and store
 * here runs under the SIGBUS guard, so a region that vanishes (a devdax
 * device unbound, a file region truncated) turns into -EIO for the caller
 * instead of killing the process.  The rest of daxfs never dereferences
 * region memory itself, with one exception: read replies hand the kernel a
 * pointer into the region (region_ptr), and the kernel turns a vanished
 * page into EIO for the reader on its own.
 */
#ifndef DAXFS_REGION_H
#define DAXFS_REGION_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum region_kind {
	REGION_KIND_FILE,		/* a regular file standing in */
	REGION_KIND_DEVDAX,		/* /dev/daxX.Y */
};

/* region_open flags */
#define REGION_RDONLY	0x1u	/* map read-only */
#define REGION_CREATE	0x2u	/* file region: create/resize to size */
#define REGION_NOLOCK	0x4u	/* take no lock (info on a mounted region) */
#define REGION_SHARED	0x8u	/* a shared lock (fsck without --repair) */

/* region state: ok until the backing memory goes away or is unmapped */
enum region_state {
	REGION_OK = 0,
	REGION_VANISHED,		/* accesses fault; still mapped */
	REGION_UNMAPPED,		/* released by region_unmap() */
};

/*
 * An optional observer of every store, flush and drain, for the
 * crash-consistency tests.  `nt` says the store bypassed the cache (it is
 * durable at the next drain without a flush).
 */
struct region_tracer {
	void (*store)(void *arg, uint64_t off, const void *src, uint64_t len,
		      bool nt);
	void (*flush)(void *arg, uint64_t off, uint64_t len);
	void (*drain)(void *arg);
	void *arg;
};

struct region {
	char path[PATH_MAX];		/* what was opened */
	char name[64];			/* devdax: "dax0.0"; file: "" */
	enum region_kind kind;
	int fd;				/* closed by region_close() */
	dev_t st_dev;			/* identity of the backing file */
	ino_t st_ino;
	dev_t rdev;			/* devdax: the char device */
	uint64_t size;			/* bytes mapped */
	uint64_t align;			/* device alignment in bytes */
	bool readonly;
	bool cacheline;			/* stores persist with cache flushes */
	bool released;			/* region_release() ran */
	bool memory_backed;		/* tmpfs/hugetlbfs file: a store is as
					 * durable as it gets, msync is moot */
	char *base;			/* owned by map, unmapped by region_unmap */
	atomic_int state;		/* enum region_state */

	void (*on_vanish)(struct region *r, void *arg);
	void *on_vanish_arg;
	struct region_tracer *tracer;

	/* libpmem2 objects, private to region.c */
	void *p2_src, *p2_map;
	void *memcpy_fn, *memset_fn, *flush_fn, *drain_fn;
};

int region_open(const char *spec, unsigned flags, uint64_t size,
		struct region **out);
void region_unmap(struct region *r);
int region_release(struct region *r);
void region_close(struct region *r);

/* guarded access; -EIO once the region has vanished or was unmapped,
 * -EUCLEAN for a range outside the region (a corrupt pointer) */
int region_read(struct region *r, uint64_t off, void *dst, uint64_t len);
int region_write(struct region *r, uint64_t off, const void *src,
		 uint64_t len);
int region_zero(struct region *r, uint64_t off, uint64_t len);
int region_flush(struct region *r, uint64_t off, uint64_t len);
int region_drain(struct region *r);
int region_persist(struct region *r, uint64_t off, uint64_t len);

/* the data path: copy with deferred durability, made durable by
 * region_data_sync() (a drain, or msync on page granularity) */
int region_data_write(struct region *r, uint64_t off, const void *src,
		      uint64_t len);
int region_data_zero(struct region *r, uint64_t off, uint64_t len);
int region_data_sync(struct region *r, uint64_t off, uint64_t len);

/* skip a file region's holes when scanning */
uint64_t region_next_data(struct region *r, uint64_t off, uint64_t end);

/* a pointer for the kernel to copy from; NULL outside or when gone */
const void *region_ptr(struct region *r, uint64_t off, uint64_t len);

static inline bool region_range_ok(const struct region *r, uint64_t off,
				   uint64_t len)
{
	return off <= r->size && len <= r->size - off;
}

static inline bool region_alive(struct region *r)
{
	return atomic_load_explicit(&r->state, memory_order_acquire) ==
	       REGION_OK;
}

/* mark vanished (idempotent) and tell the owner */
void region_mark_vanished(struct region *r);
/* file region: has the backing file shrunk or been deleted? */
bool region_backing_gone(struct region *r);

/* who holds the region's lock: a pid, 0 if nobody, -errno */
int region_lock_holder(const char *spec);

/* backends (region_file.c, region_devdax.c) */
int region_file_open(struct region *r, const char *path, unsigned flags,
		     uint64_t size);
int region_devdax_resolve(const char *spec, char *path, size_t pathlen,
			  char *name, size_t namelen, uint64_t *size,
			  uint64_t *align);
bool region_spec_is_devdax(const char *spec);
int region_devdax_check(struct region *r);

#endif
