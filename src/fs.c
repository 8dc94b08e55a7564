/*
 * fs.c -- a mounted filesystem: bringing one up from a region (superblock,
 * journal recovery, free space, inode map, orphans) and taking it down
 * cleanly.
 *
 * Owns: struct daxfs.  Must never: mark a region clean while a change is
 * still in memory only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "daxfs_i.h"

/* fs_mark_error -- a change could not be made durable: refuse the rest */
void fs_mark_error(struct daxfs *fs, int err, const char *what)
{
	if (!atomic_exchange(&fs->error, true))
		syslog(LOG_ERR, "daxfs: %s failed (%s); refusing further "
		       "changes", what, strerror(-err));
}

static void fs_free(struct daxfs *fs)
{
	icache_free(fs);
	journal_free(fs);
	alloc_free_all(fs);
	free(fs->imap);
	free(fs->orphans);
	pthread_rwlock_destroy(&fs->meta_lock);
	pthread_mutex_destroy(&fs->icache_lock);
	free(fs);
}

/*
 * fs_mount -- open and check a region and bring its filesystem up.
 * Errors are one sentence in daxfs_errmsg().
 */
int fs_mount(const char *spec, const struct mount_opts *o, struct daxfs **out)
{
	struct daxfs *fs;
	struct inode *root;
	uint64_t seq = 0;
	int ret;

	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	pthread_rwlock_init(&fs->meta_lock, NULL);
	pthread_mutex_init(&fs->icache_lock, NULL);
	fs->readonly = o->readonly;
	ret = region_open(spec, o->readonly ? REGION_RDONLY : 0, 0, &fs->r);
	if (ret) {
		pthread_rwlock_destroy(&fs->meta_lock);
		pthread_mutex_destroy(&fs->icache_lock);
		free(fs);
		return ret;
	}
	ret = super_read(fs->r, &fs->sb, &fs->used_backup_sb);
	if (ret)
		goto err;
	if (!o->readonly &&
	    (fs->sb.feat_ro_compat & ~DAXFS_FEATURE_RO_COMPAT_SUPP)) {
		daxfs_seterr("region uses features this daxfs can only read; "
			     "mount it with -o ro");
		ret = -EROFS;
		goto err;
	}
	fs->nblocks = fs->sb.nblocks;
	fs->data_start = fs->sb.data_start;
	fs->ninodes = fs->sb.ninodes;
	fs->align_blocks = fs->sb.data_align >> DAXFS_BLOCK_SHIFT;
	fs->itable_off = FS_BLOCK_OFF(fs->sb.itable_start);
	fs->bitmap_off = FS_BLOCK_OFF(fs->sb.bitmap_start);

	ret = journal_recover(fs->r, &fs->sb, !o->readonly, &seq);
	if (ret < 0)
		goto err;
	if (ret > 0 && o->readonly) {
		daxfs_seterr("journal holds a committed transaction; mount "
			     "read-write once (or run 'daxfsctl fsck "
			     "--repair') to replay it");
		ret = -EROFS;
		goto err;
	}
	if (ret > 0)
		syslog(LOG_INFO, "daxfs: %s: replayed journal transaction "
		       "%llu", spec, (unsigned long long)seq);
	ret = journal_init_fs(fs);
	if (!ret)
		ret = alloc_init(fs);
	if (!ret)
		ret = imap_init(fs);
	if (!ret)
		ret = icache_init(fs);
	if (ret)
		goto err;
	ret = inode_get(fs, DAXFS_ROOT_INO, &root);
	if (!ret && !inode_is_dir(root)) {
		daxfs_seterr("root inode is not a directory");
		ret = -EUCLEAN;
	}
	if (ret) {
		if (ret == -ENOENT) {
			daxfs_seterr("root directory is missing");
			ret = -EUCLEAN;
		}
		goto err;
	}
	if (fs->sb.state != DAXFS_STATE_CLEAN)
		syslog(LOG_WARNING, "daxfs: %s: was not unmounted cleanly; the "
		       "journal keeps metadata consistent after a crash, but "
		       "if the region itself lost data (it was cut or "
		       "overwritten) run 'daxfsctl fsck'", spec);
	if (fs->used_backup_sb)
		syslog(LOG_WARNING, "daxfs: %s: primary superblock damaged; "
		       "using the backup%s", spec, o->readonly ? "" :
		       " (mounting read-write rewrites both)");
	if (!o->readonly) {
		pthread_rwlock_wrlock(&fs->meta_lock);
		ret = inode_scan_orphans(fs);
		pthread_rwlock_unlock(&fs->meta_lock);
		if (ret)
			goto err;
		fs->sb.state = DAXFS_STATE_MOUNTED;
		fs->sb.mount_count++;
		fs->sb.mount_time = (uint64_t)time(NULL);
		ret = super_write(fs->r, &fs->sb);
		if (ret)
			goto err;
		fs->used_backup_sb = false;	/* both copies rewritten */
	}
	*out = fs;
	return 0;

err:
	region_close(fs->r);
	fs->r = NULL;
	fs_free(fs);
	return ret;
}

/* fs_sync -- every cached inode's lazy changes and all data durable */
int fs_sync(struct daxfs *fs)
{
	int ret = 0;

	if (fs->readonly || !region_alive(fs->r))
		return fs->readonly ? 0 : -EIO;
	ret = region_data_sync(fs->r, FS_BLOCK_OFF(fs->data_start),
			       FS_BLOCK_OFF(fs->nblocks - 1 - fs->data_start));
	pthread_rwlock_wrlock(&fs->meta_lock);
	for (uint64_t h = 0; h < fs->ihash_size && !ret; h++) {
		for (struct inode *i = fs->ihash[h]; i && !ret; i = i->hnext)
			ret = inode_flush_locked(fs, i);
	}
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/*
 * fs_quiesce -- everything durable and the region marked clean, while the
 * filesystem stays up in memory (the unbind sequence, before release).
 * Unlinked inodes still held by the kernel stay as orphans; the next
 * mount frees them.
 */
int fs_quiesce(struct daxfs *fs)
{
	int ret;

	if (fs->readonly || atomic_load(&fs->error))
		return 0;
	ret = fs_sync(fs);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&fs->meta_lock);
	fs->sb.state = DAXFS_STATE_CLEAN;
	fs->sb.free_blocks = fs->alloc.free;
	fs->sb.free_inodes = fs->free_inodes;
	fs->sb.write_time = (uint64_t)time(NULL);
	ret = super_write(fs->r, &fs->sb);
	pthread_rwlock_unlock(&fs->meta_lock);
	return ret;
}

/*
 * fs_unmount -- write everything back, free unlinked inodes, mark the
 * region clean and (with release_region) unmap and close it.  The region
 * is marked clean only when every step before succeeded.
 */
int fs_unmount(struct daxfs *fs, bool release_region)
{
	int ret = 0;

	if (!fs->readonly && region_alive(fs->r) &&
	    !atomic_load(&fs->error)) {
		pthread_rwlock_wrlock(&fs->meta_lock);
		for (uint64_t h = 0; h < fs->ihash_size; h++) {
			struct inode *i = fs->ihash[h], *n;

			for (; i; i = n) {
				n = i->hnext;
				i->nlookup = 0;
				atomic_store(&i->nopen, 0);
				if (i->d.nlink == 0 || i->dirty) {
					int r = inode_evict_locked(fs, i);

					ret = ret ? ret : r;
				}
			}
		}
		pthread_rwlock_unlock(&fs->meta_lock);
		if (!ret)
			ret = region_data_sync(fs->r,
					FS_BLOCK_OFF(fs->data_start),
					FS_BLOCK_OFF(fs->nblocks - 1 -
						     fs->data_start));
		if (!ret && !atomic_load(&fs->error)) {
			fs->sb.state = DAXFS_STATE_CLEAN;
			fs->sb.free_blocks = fs->alloc.free;
			fs->sb.free_inodes = fs->free_inodes;
			fs->sb.write_time = (uint64_t)time(NULL);
			ret = super_write(fs->r, &fs->sb);
		}
	}
	if (release_region) {
		region_close(fs->r);
		fs->r = NULL;
		fs_free(fs);
	}
	return ret;
}
