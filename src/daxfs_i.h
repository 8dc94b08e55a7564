/*
 * daxfs_i.h -- private in-memory structures and the interfaces between
 * the metadata modules.  Not installed; nothing outside src/ and the unit
 * tests includes it.
 *
 * Lock order (take left before right, never the reverse):
 *
 *     inode->io_lock  ->  fs->meta_lock  ->  fs->icache_lock
 *
 * fs->meta_lock (rwlock) guards every metadata structure in memory: the
 * dinode copies, directory indexes, the allocator, the inode map and the
 * journal.  Shared for lookups and attribute reads, exclusive for any
 * change, which is always one journal transaction at a time.
 *
 * inode->io_lock (rwlock) guards a regular file's data against truncation
 * and its extent list: reads and mmap faults take it shared, writes,
 * truncate, fallocate and copy_file_range exclusive.  A file's size and
 * extents change only with io_lock and meta_lock both held exclusive, so
 * either lock held shared is enough to read them.
 *
 * fs->icache_lock (mutex) guards the inode hash and lookup counts.  An
 * inode is removed from the hash only with meta_lock exclusive, so a
 * pointer found under meta_lock, or one the kernel holds a lookup
 * reference to, stays valid for the length of the request.
 */
#ifndef DAXFS_I_H
#define DAXFS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "format.h"
#include "region.h"
#include "util.h"

struct daxfs;
struct tx;

/* an extent in memory: file blocks [lblk, lblk+len) at region blocks pblk */
struct extent {
	uint64_t lblk;
	uint64_t pblk;
	uint64_t len;
};

/* one directory entry, indexed by name and by slot */
struct dentry {
	struct dentry *hnext;
	uint64_t ino;
	uint32_t slot;			/* first slot in the directory */
	uint32_t hash;
	uint8_t type;			/* DT_* */
	uint8_t nslots;
	uint8_t name_len;
	char name[];			/* NUL-terminated */
};

/* a directory's in-memory index; protected by meta_lock */
struct dir_index {
	struct dentry **buckets;
	uint32_t nbuckets;
	uint32_t count;			/* entries, not counting . and .. */
	struct dentry **slots;		/* per slot: entry starting there */
	uint32_t nslots;		/* slots the directory's blocks hold */
	uint32_t free_hint;		/* a block likely to have room */
};

struct inode {
	uint64_t ino;
	struct inode *hnext;		/* icache_lock */
	uint64_t nlookup;		/* kernel references; icache_lock */
	atomic_uint nopen;		/* open handles */
	pthread_rwlock_t io_lock;	/* see the lock order above */
	struct daxfs_dinode d;		/* current contents; meta_lock */
	bool dirty;			/* d newer than the region; meta_lock */
	bool in_tx;			/* queued in the open tx; meta_lock */
	bool ext_loaded;		/* meta_lock; see the lock order */
	struct extent *ext;		/* sorted by lblk; see lock order */
	uint32_t next, ext_cap;
	struct dir_index *dir;		/* directories; meta_lock */
	/* mapping.c: has the kernel been allowed to cache pages? */
	atomic_bool cached;
	atomic_uint_fast64_t dirty_bytes; /* written since the last sync */
};

static inline bool inode_is_dir(const struct inode *i)
{
	return (i->d.mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR;
}

static inline bool inode_is_reg(const struct inode *i)
{
	return (i->d.mode & DAXFS_S_IFMT) == DAXFS_S_IFREG;
}

static inline bool inode_is_lnk(const struct inode *i)
{
	return (i->d.mode & DAXFS_S_IFMT) == DAXFS_S_IFLNK;
}

/* the allocator's state; protected by meta_lock */
struct alloc {
	uint64_t *committed;		/* mirrors the on-region bitmap */
	uint64_t *inuse;		/* committed + reserved by writers */
	uint64_t nwords;
	uint32_t *chunk_free;		/* free blocks per aligned chunk */
	uint64_t nchunks;
	uint64_t chunk_blocks;		/* data_align / block size */
	uint64_t free;			/* blocks free in inuse */
	uint64_t cursor_small;		/* next chunk to try for small */
	uint64_t cursor_big;		/* next chunk to try for big */
};

struct tx_range {
	uint64_t start, len;
};

/* the one open transaction; protected by meta_lock held exclusive */
struct tx {
	struct daxfs *fs;
	uint8_t *buf;			/* records, ready for the log */
	uint64_t len, cap;
	uint32_t nrec;
	struct inode **inodes;		/* dinodes emitted at commit */
	uint32_t ninodes, inodes_cap;
	struct tx_range *allocs;	/* reserved blocks made durable */
	uint32_t nallocs, allocs_cap;
	struct tx_range *frees;		/* blocks released at commit */
	uint32_t nfrees, frees_cap;
	int err;			/* first error; commit refuses */
	bool open;
};

/* counters kept for statfs, info and status; meta_lock */
struct fs_stats {
	uint64_t tx_commits;
	uint64_t tx_bytes;
};

struct daxfs {
	struct region *r;
	struct daxfs_dsb sb;		/* meta_lock */
	bool readonly;
	bool used_backup_sb;		/* primary was bad at mount */
	atomic_bool error;		/* a commit failed: refuse changes */

	/* geometry, fixed at mount */
	uint64_t nblocks, data_start, ninodes, align_blocks;
	uint64_t itable_off, bitmap_off, jsb_off, log_off, log_len;

	pthread_rwlock_t meta_lock;
	struct alloc alloc;
	struct tx tx;
	uint64_t jseq;			/* next tx sequence; meta_lock */
	struct fs_stats stats;

	/* inode map: bit set = slot in use; meta_lock */
	uint64_t *imap;
	uint64_t free_inodes;
	uint64_t ino_hint;

	pthread_mutex_t icache_lock;
	struct inode **ihash;		/* icache_lock */
	uint64_t ihash_size, icount;

	uint64_t *orphans;		/* found by imap_init, mount only */
	uint64_t norphans;
	uint64_t orphans_freed;		/* at mount */
};

#define FS_BLOCK_OFF(b) ((uint64_t)(b) << DAXFS_BLOCK_SHIFT)

/* super.c */
struct mkfs_opts {
	uint64_t size;			/* 0 = the whole region */
	uint64_t ninodes;		/* 0 = one per 16 KiB */
	const char *label;
	uint32_t uid, gid;		/* owner of the root directory */
};
void super_set_crc(struct daxfs_dsb *sb);
int super_check(const struct daxfs_dsb *sb, uint64_t region_size);
int super_read(struct region *r, struct daxfs_dsb *sb, bool *used_backup);
int super_write(struct region *r, struct daxfs_dsb *sb);
int super_geometry(uint64_t size, uint64_t align, uint64_t ninodes,
		   struct daxfs_dsb *sb);
uint64_t super_min_size(uint64_t align, uint64_t ninodes);
int daxfs_mkfs(struct region *r, const struct mkfs_opts *o);
bool super_has_magic(struct region *r);

/* journal.c */
int journal_recover(struct region *r, const struct daxfs_dsb *sb,
		    bool apply, uint64_t *replayed_seq);
int journal_init_fs(struct daxfs *fs);
struct tx *tx_begin(struct daxfs *fs);
int tx_write(struct tx *tx, uint64_t off, const void *src, uint64_t len);
int tx_zero(struct tx *tx, uint64_t off, uint64_t len);
void tx_dirty_inode(struct tx *tx, struct inode *ino);
int tx_commit(struct tx *tx);
void tx_abort(struct tx *tx);
uint64_t tx_room(const struct tx *tx);
void journal_free(struct daxfs *fs);
uint32_t jsb_crc(const struct daxfs_jsb *j);
bool jsb_untear(struct daxfs_jsb *j);
bool jrec_ok(const struct daxfs_dsb *sb, uint64_t off, uint64_t len);

/* alloc.c */
#define ALLOC_BIG	0x1u		/* prefer whole aligned chunks */
int alloc_init(struct daxfs *fs);
void alloc_free_all(struct daxfs *fs);
int alloc_reserve(struct daxfs *fs, uint64_t goal, uint64_t want,
		  unsigned flags, struct tx_range *out);
void alloc_unreserve(struct daxfs *fs, uint64_t start, uint64_t len);
void alloc_commit(struct daxfs *fs, uint64_t start, uint64_t len,
		  bool allocate);
void alloc_release(struct daxfs *fs, uint64_t start, uint64_t len);
int tx_alloc(struct tx *tx, uint64_t start, uint64_t len);
int tx_free(struct tx *tx, uint64_t start, uint64_t len);
/* bitmaps of blocks: the allocator's, the region's, fsck's */
static inline bool bitmap_test(const uint64_t *map, uint64_t b)
{
	return map[b / 64] & (1ULL << (b % 64));
}
void bitmap_set(uint64_t *map, uint64_t start, uint64_t len, bool on);

/* inode.c */
int inode_check(const struct daxfs_dinode *d, uint64_t ino,
		const struct daxfs *fs);
void dinode_set_crc(struct daxfs_dinode *d);
int icache_init(struct daxfs *fs);
void icache_free(struct daxfs *fs);
struct inode *inode_find(struct daxfs *fs, uint64_t ino);
int inode_get(struct daxfs *fs, uint64_t ino, struct inode **out);
void inode_ref(struct daxfs *fs, struct inode *i, uint64_t n);
int inode_forget(struct daxfs *fs, uint64_t ino, uint64_t n, bool evict);
int inode_alloc(struct daxfs *fs, struct tx *tx, uint32_t mode,
		uint32_t uid, uint32_t gid, struct inode **out);
void inode_unalloc(struct daxfs *fs, struct inode *i);
int inode_reload_locked(struct daxfs *fs, struct inode *i);
int inode_release_blocks(struct daxfs *fs, struct inode *i);
int inode_evict_locked(struct daxfs *fs, struct inode *i);
int inode_close_locked(struct daxfs *fs, uint64_t ino);
int inode_flush_locked(struct daxfs *fs, struct inode *i);
void inode_stat(const struct daxfs *fs, const struct inode *i,
		struct stat *st);
#define TOUCH_A 0x1u
#define TOUCH_M 0x2u
#define TOUCH_C 0x4u
void inode_touch(struct inode *i, unsigned what);
int imap_init(struct daxfs *fs);
int inode_scan_orphans(struct daxfs *fs);

/* extent.c */
int ext_array_check(const struct daxfs_dextarray *h,
		    const struct daxfs_dinode *d, uint64_t ino, uint32_t n);
int ext_load(struct daxfs *fs, struct inode *i);
void ext_unload(struct inode *i);
bool ext_lookup(const struct inode *i, uint64_t lblk, uint64_t *pblk,
		uint64_t *len);
int ext_insert(struct daxfs *fs, struct tx *tx, struct inode *i,
	       uint64_t lblk, uint64_t pblk, uint64_t len);
int ext_punch(struct daxfs *fs, struct tx *tx, struct inode *i,
	      uint64_t lblk, uint64_t len, uint64_t budget, bool *done);
int ext_sync(struct daxfs *fs, struct tx *tx, struct inode *i);
int ext_read_fs(const struct daxfs *fs, const struct daxfs_dinode *d,
		uint64_t ino, struct extent **out, uint32_t *n);
uint64_t ext_max_len(void);
uint64_t ext_last_pblk(const struct inode *i, uint64_t lblk);

/* file.c */
int file_truncate(struct daxfs *fs, struct inode *i, uint64_t size);
int file_punch(struct daxfs *fs, struct inode *i, uint64_t off,
	       uint64_t len);
int file_allocate(struct daxfs *fs, struct inode *i, uint64_t off,
		  uint64_t len, bool keep_size);
int file_sync(struct daxfs *fs, struct inode *i, bool data_only);
int file_sync_data_locked(struct daxfs *fs, struct inode *i);
int file_read_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		    void *buf, uint64_t len);
int file_write_bytes(struct daxfs *fs, struct inode *i, uint64_t off,
		     const void *buf, uint64_t len);

/* dir.c */
int dir_load(struct daxfs *fs, struct inode *dir);
void dir_unload(struct inode *dir);
struct dentry *dir_lookup(struct inode *dir, const char *name, size_t len);
struct dentry *dir_next(struct inode *dir, uint32_t *slot);
int dir_add(struct daxfs *fs, struct tx *tx, struct inode *dir,
	    const char *name, size_t len, uint64_t ino, uint32_t mode);
int dir_remove(struct daxfs *fs, struct tx *tx, struct inode *dir,
	       struct dentry *de);
int dir_retarget(struct daxfs *fs, struct tx *tx, struct inode *dir,
		 struct dentry *de, uint64_t ino, uint32_t mode);
uint8_t mode_to_dtype(uint32_t mode);
int dirent_check(const struct daxfs_ddirent *de, const char *name);

/* xattr.c */
int xattr_get(struct daxfs *fs, struct inode *i, const char *name,
	      void *value, size_t size);
int xattr_list(struct daxfs *fs, struct inode *i, char *buf, size_t size);
int xattr_set(struct daxfs *fs, struct inode *i, const char *name,
	      const void *value, size_t size, int flags);
int xattr_remove(struct daxfs *fs, struct inode *i, const char *name);
int xattr_block_check(const void *blk, uint64_t ino);

/* fs.c */
struct mount_opts {
	bool readonly;
};
int fs_mount(const char *spec, const struct mount_opts *o,
	     struct daxfs **out);
int fs_unmount(struct daxfs *fs, bool release_region);
int fs_sync(struct daxfs *fs);
int fs_quiesce(struct daxfs *fs);
void fs_mark_error(struct daxfs *fs, int err, const char *what);
void fs_now(uint64_t *sec, uint32_t *nsec);

#endif
