/*
 * fuzz_common.h -- what the daxfs fuzz targets share: regions in memfds
 * (nothing left on /dev/shm when a target dies), real template images
 * (mkfs plus a populated tree, built through the metadata API at start-up),
 * the byte ranges of a template that hold metadata, and the input layout
 * that lays fuzzed bytes over those ranges.
 *
 * Every target is a libFuzzer target (LLVMFuzzerTestOneInput).  Seeds come
 * from the targets themselves: run one with FUZZ_WRITE_SEEDS=DIR and it
 * writes the inputs that reproduce its templates into DIR and exits.
 */
#ifndef DAXFS_FUZZ_COMMON_H
#define DAXFS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daxfs_i.h"
#include "fsck.h"
#include "namei.h"

#define FZ_REGION_SIZE	(16ULL << 20)	/* the smallest mkfs lays out */
#define FZ_NINODES	256
#define FZ_MAX_RANGES	96

/* input flags, the first byte of every input */
#define FZ_FIX_CRC	0x01u	/* reseal what the input damaged */

/* what a range of a template holds */
enum fz_kind {
	FZ_SB, FZ_JSB, FZ_LOG, FZ_BITMAP, FZ_ITABLE, FZ_DIRBLK, FZ_EXTARR,
	FZ_XATTR, FZ_SYMLINK,
};

struct fz_range {
	uint64_t off, len;
	enum fz_kind kind;
	uint64_t ino;			/* owner, for per-inode structures */
};

/* a file region held in a memfd, with our own view of it */
struct fz_region {
	int fd;
	char spec[64];			/* /proc/self/fd/N */
	uint8_t *map;			/* MAP_SHARED view */
	uint64_t size;
};

/* template images */
enum fz_variant {
	FZ_CLEAN,			/* populated, cleanly unmounted */
	FZ_PENDING,			/* crashed with a rename in the log */
	FZ_ORPHAN,			/* crashed with an open unlinked file */
	FZ_NVARIANTS,
};

struct fz_image {
	uint8_t *bytes;			/* FZ_REGION_SIZE bytes */
	struct daxfs_dsb sb;
	struct fz_range ranges[FZ_MAX_RANGES];
	unsigned nranges;
	uint64_t total;			/* sum of range lengths */
	/* inodes of the populated tree */
	uint64_t ino_a, ino_d, ino_frag, ino_e, ino_big, ino_long;
};

/* the libFuzzer entry points every target defines */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* how often the code under test wrote to syslog (a damaged structure
 * skipped, a failure logged); the messages themselves are dropped */
extern unsigned fz_syslog_calls;

void fz_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
#define FZ_ASSERT(c) do { if (!(c)) fz_fail("%s:%d: %s", __FILE__,	\
					     __LINE__, #c); } while (0)

/* regions */
void fz_region_new(struct fz_region *rg, uint64_t size);
/* the region's contents become an image's (which must not change after
 * it was first loaded: its non-zero pages are found once) */
void fz_region_load(struct fz_region *rg, const uint8_t *bytes);

/* templates: built once per process; fz_templates()[variant] */
const struct fz_image *fz_templates(void);

/* lay input bytes over an image's ranges in dst (a full image) */
void fz_apply(const struct fz_image *img, uint8_t *dst, const uint8_t *in,
	      size_t len);
/* the bytes of an image's ranges, concatenated (a seed); returns len */
size_t fz_extract(const struct fz_image *img, const uint8_t *src,
		  uint8_t *out, size_t cap);
/* reseal every structure in the ranges whose checksum no longer matches */
void fz_fix_crcs(const struct fz_image *img, uint8_t *dst);

/* reseal helpers for single structures */
void fz_seal_sb(struct daxfs_dsb *sb);
void fz_seal_jsb(struct daxfs_jsb *j);
void fz_seal_tx(uint8_t *log, uint64_t cap);
void fz_seal_dirents(uint8_t *blk, size_t len);
void fz_seal_xattr(uint8_t *blk);

/* seeds: when FUZZ_WRITE_SEEDS is set, write and exit from init */
const char *fz_seed_dir(void);
void fz_write_seed(const char *dir, const char *name, const uint8_t *buf,
		   size_t len);

/* walk a mounted filesystem and change a little of it (bounded) */
void fz_walk(struct daxfs *fs, unsigned budget);
void fz_modify(struct daxfs *fs, const uint8_t *in, size_t len);

/* fsck check, repair, check; the invariants of repair */
void fz_fsck_cycle(const char *spec);

/*
 * A filesystem kept mounted for the life of a target, put back to its
 * mounted state (region, allocator, journal sequence, error flag) before
 * each input.  Targets work on an inode of their own that is not in the
 * cache; it lives in slot FZ_FAKE_INO of the inode table.
 */
#define FZ_FAKE_INO 200

struct fz_live {
	struct fz_region rg;
	struct daxfs *fs;
	uint8_t *base;			/* the region as mounted */
	struct alloc saved;
	uint64_t jseq;
};

void fz_live_init(struct fz_live *l, const struct fz_image *img);
void fz_live_reset(struct fz_live *l);
/* the allocator's counters and maps must agree, and nothing be left
 * reserved once a transaction has ended */
void fz_live_check_alloc(struct fz_live *l);
/* set bits of the committed (and in-use) map; recount the free blocks */
void fz_live_mark(struct fz_live *l, uint64_t start, uint64_t len);
void fz_live_recount(struct fz_live *l);

/* a fake geometry-only filesystem for the pure checkers */
void fz_geo(struct daxfs *fs, struct region *r, const struct daxfs_dsb *sb);

#endif
