/*
 * journal.c -- crash-consistent metadata updates.
 *
 * Every metadata change is one transaction: the records (byte ranges with
 * their new contents) are collected in memory, written to the log and
 * persisted (the commit point), applied in place and persisted, and then
 * retired by advancing the journal superblock's sequence number.  The
 * protocol and why it is safe are described with struct daxfs_jsb in
 * format.h.  A crash before the commit point leaves the old state (the
 * CRC over header and records fails, or the sequence number does not
 * match); a crash after it is replayed at mount.
 *
 * Dinodes and free-space bitmap words are not copied into the record
 * buffer when they change but when the transaction commits, from their
 * in-memory versions: an inode touched five times in one transaction is
 * logged once.
 *
 * Owns: fs->tx and the log area.  Must never: let a record reach the
 * region before its transaction has committed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs_i.h"

#define REC_HDR sizeof(struct daxfs_jrec)

/* jsb_crc -- the checksum a journal superblock should carry */
uint32_t jsb_crc(const struct daxfs_jsb *j)
{
	return crc32c(0, j, offsetof(struct daxfs_jsb, crc));
}

/*
 * jsb_untear -- a crash while jsb_advance() stores the journal superblock
 * can persist the new seq without the new crc, or the reverse: they are
 * different 8-byte words, and only aligned 8-byte stores are failure
 * atomic.  Either way the transaction in the log had been applied in full
 * (the apply is drained before the advance begins) and the log still
 * holds it, so taking the older sequence number is safe: recovery replays
 * that transaction, which changes nothing, and seals a new jsb.  False when
 * neither reading matches: the jsb is damaged, not torn.  fsck uses it too.
 */
bool jsb_untear(struct daxfs_jsb *j)
{
	struct daxfs_jsb t = *j;

	t.seq = j->seq - 1;		/* new seq, old crc */
	if (jsb_crc(&t) == j->crc) {
		*j = t;
		return true;
	}
	t.seq = j->seq + 1;		/* old seq, new crc */
	if (jsb_crc(&t) == j->crc) {
		j->crc = jsb_crc(j);
		return true;
	}
	return false;
}

static int jsb_read(struct region *r, uint64_t off, struct daxfs_jsb *j)
{
	int ret = region_read(r, off, j, sizeof(*j));

	if (ret)
		return ret;
	if (j->magic == DAXFS_JSB_MAGIC && jsb_crc(j) != j->crc)
		jsb_untear(j);
	/* reserved bytes must be zero (format.h), as fsck requires: a
	 * journal superblock the mount trusted but fsck called damaged
	 * would have fsck --repair discard a transaction the mount replays */
	if (j->magic != DAXFS_JSB_MAGIC || jsb_crc(j) != j->crc ||
	    !mem_is_zero(j->reserved, sizeof(j->reserved))) {
		daxfs_seterr("journal superblock is damaged");
		return -EUCLEAN;
	}
	return 0;
}

static int jsb_advance(struct region *r, uint64_t off, struct daxfs_jsb *j)
{
	int ret;

	j->seq++;
	j->crc = crc32c(0, j, offsetof(struct daxfs_jsb, crc));
	ret = region_write(r, off, j, sizeof(*j));
	return ret ? ret : region_persist(r, off, sizeof(*j));
}

/* jrec_ok -- may a record write here?  Never over the superblocks or the
 * journal itself, never outside the formatted region.  fsck judges the
 * records it finds by the same rule. */
bool jrec_ok(const struct daxfs_dsb *sb, uint64_t off, uint64_t len)
{
	uint64_t jlo = FS_BLOCK_OFF(sb->journal_start);
	uint64_t jhi = FS_BLOCK_OFF(sb->journal_start + sb->journal_blocks);

	if (off < DAXFS_BLOCK_SIZE || len == 0 || len > sb->region_size ||
	    off > sb->region_size - len)
		return false;
	if (off + len > FS_BLOCK_OFF(sb->backup_block))
		return false;
	return off + len <= jlo || off >= jhi;
}

/*
 * journal_recover -- replay a committed but unretired transaction.
 * With apply false only says whether one is pending.  Returns 1 when a
 * transaction was (or would be) replayed, 0 when none, -errno.
 */
int journal_recover(struct region *r, const struct daxfs_dsb *sb,
		    bool apply, uint64_t *replayed_seq)
{
	uint64_t joff = FS_BLOCK_OFF(sb->journal_start);
	uint64_t loff = joff + DAXFS_BLOCK_SIZE;
	uint64_t lcap = FS_BLOCK_OFF(sb->journal_blocks - 1);
	struct daxfs_jsb j;
	struct daxfs_jtx h;
	uint8_t *buf;
	uint32_t crc, want;
	uint64_t pos;
	int ret;

	ret = jsb_read(r, joff, &j);
	if (ret)
		return ret;
	if (j.log_start != sb->journal_start + 1 ||
	    j.log_blocks != sb->journal_blocks - 1) {
		daxfs_seterr("journal superblock disagrees with the "
			     "superblock");
		return -EUCLEAN;
	}
	ret = region_read(r, loff, &h, sizeof(h));
	if (ret)
		return ret;
	if (h.magic != DAXFS_TX_MAGIC || h.seq != j.seq ||
	    h.len > lcap - sizeof(h) || h.nrec == 0)
		return 0;		/* nothing committed since the last */
	buf = malloc(h.len ? h.len : 1);
	if (!buf)
		return -ENOMEM;
	ret = region_read(r, loff + sizeof(h), buf, h.len);
	if (ret)
		goto out;
	want = h.crc;
	h.crc = 0;
	crc = crc32c(0, &h, sizeof(h));
	crc = crc32c(crc, buf, h.len);
	if (crc != want) {
		ret = 0;		/* torn: the commit never completed */
		goto out;
	}
	/* a sealed transaction must be well formed; check all before any */
	pos = 0;
	for (uint32_t n = 0; n < h.nrec; n++) {
		struct daxfs_jrec rec;

		if (h.len - pos < REC_HDR) {
			ret = -EUCLEAN;
			break;
		}
		memcpy(&rec, buf + pos, REC_HDR);
		pos += REC_HDR;
		if (ALIGN_UP((uint64_t)rec.len, 8) > h.len - pos ||
		    !jrec_ok(sb, rec.off, rec.len)) {
			ret = -EUCLEAN;
			break;
		}
		pos += ALIGN_UP(rec.len, 8);
	}
	if (ret || pos != h.len) {
		daxfs_seterr("journal transaction %llu is malformed",
			     (unsigned long long)h.seq);
		ret = -EUCLEAN;
		goto out;
	}
	if (replayed_seq)
		*replayed_seq = h.seq;
	ret = 1;
	if (!apply)
		goto out;
	pos = 0;
	for (uint32_t n = 0; n < h.nrec && ret > 0; n++) {
		struct daxfs_jrec rec;

		memcpy(&rec, buf + pos, REC_HDR);
		pos += REC_HDR;
		if (region_write(r, rec.off, buf + pos, rec.len) ||
		    region_flush(r, rec.off, rec.len))
			ret = -EIO;
		pos += ALIGN_UP(rec.len, 8);
	}
	if (ret > 0 && region_drain(r))
		ret = -EIO;
	if (ret > 0 && jsb_advance(r, joff, &j))
		ret = -EIO;
out:
	free(buf);
	return ret;
}

/* journal_init_fs -- after recovery: where the log is, what seq is next */
int journal_init_fs(struct daxfs *fs)
{
	struct daxfs_jsb j;
	int ret;

	fs->jsb_off = FS_BLOCK_OFF(fs->sb.journal_start);
	fs->log_off = fs->jsb_off + DAXFS_BLOCK_SIZE;
	fs->log_len = FS_BLOCK_OFF(fs->sb.journal_blocks - 1);
	ret = jsb_read(fs->r, fs->jsb_off, &j);
	if (ret)
		return ret;
	fs->jseq = j.seq;
	memset(&fs->tx, 0, sizeof(fs->tx));
	fs->tx.fs = fs;
	return 0;
}

void journal_free(struct daxfs *fs)
{
	free(fs->tx.buf);
	free(fs->tx.inodes);
	free(fs->tx.allocs);
	free(fs->tx.frees);
	memset(&fs->tx, 0, sizeof(fs->tx));
}

/* tx_begin -- open the transaction; the caller holds meta_lock exclusive */
struct tx *tx_begin(struct daxfs *fs)
{
	struct tx *tx = &fs->tx;

	tx->len = 0;
	tx->nrec = 0;
	tx->ninodes = 0;
	tx->nallocs = 0;
	tx->nfrees = 0;
	tx->err = atomic_load(&fs->error) ? -EROFS : 0;
	tx->open = true;
	return tx;
}

/* tx_room -- bytes of records that still fit, keeping room for the
 * inodes and bitmap words commit will add */
uint64_t tx_room(const struct tx *tx)
{
	uint64_t used = sizeof(struct daxfs_jtx) + tx->len +
			(tx->ninodes + 4) * (REC_HDR + DAXFS_INODE_SIZE) +
			(tx->nallocs + tx->nfrees) * (REC_HDR + 64);

	return used >= tx->fs->log_len ? 0 : tx->fs->log_len - used;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	void *n;
	uint32_t c;

	if (need <= *cap)
		return 0;
	c = *cap ? *cap * 2 : 16;
	while (c < need)
		c *= 2;
	n = realloc(*p, c * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

/* tx_reserve -- room for one record of len bytes; returns its data */
static uint8_t *tx_reserve(struct tx *tx, uint64_t off, uint64_t len)
{
	uint64_t need = REC_HDR + ALIGN_UP(len, 8);
	struct daxfs_jrec rec = { .off = off, .len = (uint32_t)len };
	uint8_t *p;

	if (tx->err)
		return NULL;
	if (len > UINT32_MAX || tx->len + need + sizeof(struct daxfs_jtx) >
	    tx->fs->log_len) {
		tx->err = -ENOSPC;
		return NULL;
	}
	if (tx->len + need > tx->cap) {
		uint64_t c = tx->cap ? tx->cap : 64 << 10;
		uint8_t *n;

		while (c < tx->len + need)
			c *= 2;
		n = realloc(tx->buf, c);
		if (!n) {
			tx->err = -ENOMEM;
			return NULL;
		}
		tx->buf = n;
		tx->cap = c;
	}
	p = tx->buf + tx->len;
	memcpy(p, &rec, REC_HDR);
	memset(p + REC_HDR + len, 0, ALIGN_UP(len, 8) - len);
	tx->len += need;
	tx->nrec++;
	return p + REC_HDR;
}

/* tx_write -- log new contents for [off, off+len).  Nothing to log for
 * len 0: recovery refuses empty records as malformed */
int tx_write(struct tx *tx, uint64_t off, const void *src, uint64_t len)
{
	uint8_t *p = len ? tx_reserve(tx, off, len) : NULL;

	if (!len)
		return tx->err;

	if (!p)
		return tx->err;
	memcpy(p, src, len);
	return 0;
}

/* tx_zero -- log zeroes for [off, off+len) */
int tx_zero(struct tx *tx, uint64_t off, uint64_t len)
{
	uint8_t *p = len ? tx_reserve(tx, off, len) : NULL;

	if (!len)
		return tx->err;

	if (!p)
		return tx->err;
	memset(p, 0, len);
	return 0;
}

/* tx_dirty_inode -- log i's dinode as it stands at commit */
void tx_dirty_inode(struct tx *tx, struct inode *i)
{
	if (i->in_tx)
		return;
	if (grow((void **)&tx->inodes, &tx->inodes_cap, tx->ninodes + 1,
		 sizeof(*tx->inodes))) {
		tx->err = -ENOMEM;
		return;
	}
	tx->inodes[tx->ninodes++] = i;
	i->in_tx = true;
	i->dirty = true;
}

static int range_add(struct tx *tx, struct tx_range **v, uint32_t *n,
		     uint32_t *cap, uint64_t start, uint64_t len)
{
	if (grow((void **)v, cap, *n + 1, sizeof(**v))) {
		tx->err = -ENOMEM;
		return -ENOMEM;
	}
	(*v)[*n].start = start;
	(*v)[*n].len = len;
	(*n)++;
	return 0;
}

/* tx_alloc -- blocks reserved with alloc_reserve() become owned at commit */
int tx_alloc(struct tx *tx, uint64_t start, uint64_t len)
{
	return range_add(tx, &tx->allocs, &tx->nallocs, &tx->allocs_cap,
			 start, len);
}

/*
 * tx_unalloc -- free blocks this transaction allocated itself (an extent
 * array replaced twice in one transaction).  They were never durable, so
 * they leave the transaction and go straight back to the pool.  False if
 * the range is not inside one of the transaction's allocations.
 */
static bool tx_unalloc(struct tx *tx, uint64_t start, uint64_t len)
{
	for (uint32_t n = 0; n < tx->nallocs; n++) {
		struct tx_range *a = &tx->allocs[n];
		uint64_t aend = a->start + a->len, end = start + len;

		if (start < a->start || end > aend)
			continue;
		if (start == a->start && end == aend) {
			*a = tx->allocs[--tx->nallocs];
		} else if (start == a->start) {
			a->start = end;
			a->len = aend - end;
		} else if (end == aend) {
			a->len = start - a->start;
		} else {
			if (range_add(tx, &tx->allocs, &tx->nallocs,
				      &tx->allocs_cap, end, aend - end))
				return true;	/* tx->err says why */
			a = &tx->allocs[n];	/* range_add may move it */
			a->len = start - a->start;
		}
		alloc_unreserve(tx->fs, start, len);
		return true;
	}
	return false;
}

/* tx_free -- blocks become free at commit (and reusable after it) */
int tx_free(struct tx *tx, uint64_t start, uint64_t len)
{
	struct daxfs *fs = tx->fs;

	if (start < fs->data_start || len == 0 || start >= fs->nblocks - 1 ||
	    len > fs->nblocks - 1 - start) {
		tx->err = -EUCLEAN;
		return tx->err;
	}
	if (!bitmap_test(fs->alloc.committed, start) &&
	    tx_unalloc(tx, start, len))
		return tx->err;
	for (uint64_t b = start; b < start + len; b++) {
		if (!bitmap_test(fs->alloc.committed, b)) {
			tx->err = -EUCLEAN;	/* a double free: corrupt */
			return tx->err;
		}
	}
	return range_add(tx, &tx->frees, &tx->nfrees, &tx->frees_cap, start,
			 len);
}

/* emit_words -- log the committed bitmap words covering a block range */
static void emit_words(struct tx *tx, uint64_t start, uint64_t len)
{
	struct daxfs *fs = tx->fs;
	uint64_t w0 = start / 64, w1 = (start + len - 1) / 64;

	tx_write(tx, fs->bitmap_off + w0 * 8, &fs->alloc.committed[w0],
		 (w1 - w0 + 1) * 8);
}

/* tx_unwind -- forget the open transaction's in-memory effects that are
 * not yet durable: reservations go back to the free pool */
static void tx_unwind(struct tx *tx)
{
	for (uint32_t n = 0; n < tx->nallocs; n++)
		alloc_unreserve(tx->fs, tx->allocs[n].start,
				tx->allocs[n].len);
	for (uint32_t n = 0; n < tx->ninodes; n++)
		tx->inodes[n]->in_tx = false;
	tx->open = false;
}

/* tx_abort -- drop the transaction; nothing of it reaches the region */
void tx_abort(struct tx *tx)
{
	if (tx->open)
		tx_unwind(tx);
}

/*
 * tx_commit -- make the transaction durable and apply it.  On failure
 * nothing was applied; after a failure past the commit point the
 * filesystem refuses further changes (mount replays the log).
 */
int tx_commit(struct tx *tx)
{
	struct daxfs *fs = tx->fs;
	struct region *r = fs->r;
	struct daxfs_jtx h;
	struct daxfs_jsb j;
	uint64_t pos;
	int ret;

	if (!tx->open)
		return -EINVAL;
	for (uint32_t n = 0; n < tx->ninodes && !tx->err; n++) {
		struct inode *i = tx->inodes[n];

		dinode_set_crc(&i->d);
		tx_write(tx, fs->itable_off + i->ino * DAXFS_INODE_SIZE, &i->d,
			 sizeof(i->d));
	}
	if (tx->err) {
		/* the caller changed memory for a transaction that cannot
		 * be made durable: refuse further changes rather than let
		 * memory and region drift apart */
		ret = tx->err;
		tx_unwind(tx);
		fs_mark_error(fs, ret, "building a transaction");
		return ret;
	}
	for (uint32_t n = 0; n < tx->nallocs; n++)
		alloc_commit(fs, tx->allocs[n].start, tx->allocs[n].len, true);
	for (uint32_t n = 0; n < tx->nfrees && !tx->err; n++) {
		/* the same blocks freed twice in this transaction: tx_free
		 * checked each against the committed map, which had not
		 * changed yet; releasing them twice would count them twice */
		for (uint64_t b = tx->frees[n].start;
		     b < tx->frees[n].start + tx->frees[n].len; b++) {
			if (!bitmap_test(fs->alloc.committed, b)) {
				tx->err = -EUCLEAN;
				break;
			}
		}
		if (!tx->err)
			alloc_commit(fs, tx->frees[n].start,
				     tx->frees[n].len, false);
	}
	for (uint32_t n = 0; n < tx->nallocs; n++)
		emit_words(tx, tx->allocs[n].start, tx->allocs[n].len);
	for (uint32_t n = 0; n < tx->nfrees; n++)
		emit_words(tx, tx->frees[n].start, tx->frees[n].len);
	if (tx->err) {
		/* the committed map now disagrees with the region: undo */
		for (uint32_t n = 0; n < tx->nallocs; n++)
			alloc_commit(fs, tx->allocs[n].start,
				     tx->allocs[n].len, false);
		for (uint32_t n = 0; n < tx->nfrees; n++)
			alloc_commit(fs, tx->frees[n].start,
				     tx->frees[n].len, true);
		ret = tx->err;
		tx_unwind(tx);
		fs_mark_error(fs, ret, "building a transaction");
		return ret;
	}
	if (tx->nrec == 0) {
		tx->open = false;
		return 0;
	}

	/*
	 * 1. the commit point.  The records are durable before the header
	 * that seals them is written: the header's CRC alone cannot tell a
	 * torn log, because data followed by its own crc32c (every dinode
	 * record) leaves a crc32c over it unchanged whatever the data, so a
	 * log still holding an older transaction's dinodes where the new
	 * ones belong would pass the check.
	 */
	memset(&h, 0, sizeof(h));
	h.magic = DAXFS_TX_MAGIC;
	h.seq = fs->jseq;
	h.nrec = tx->nrec;
	h.len = (uint32_t)tx->len;
	h.crc = crc32c(crc32c(0, &h, sizeof(h)), tx->buf, tx->len);
	ret = region_write(r, fs->log_off + sizeof(h), tx->buf, tx->len);
	if (!ret)
		ret = region_persist(r, fs->log_off + sizeof(h), tx->len);
	if (!ret)
		ret = region_write(r, fs->log_off, &h, sizeof(h));
	if (!ret)
		ret = region_persist(r, fs->log_off, sizeof(h));
	if (ret)
		goto fail;

	/* 2. apply in place */
	pos = 0;
	for (uint32_t n = 0; n < tx->nrec && !ret; n++) {
		struct daxfs_jrec rec;

		memcpy(&rec, tx->buf + pos, REC_HDR);
		pos += REC_HDR;
		ret = region_write(r, rec.off, tx->buf + pos, rec.len);
		if (!ret)
			ret = region_flush(r, rec.off, rec.len);
		pos += ALIGN_UP(rec.len, 8);
	}
	if (!ret)
		ret = region_drain(r);
	/* 3. retire */
	if (!ret)
		ret = jsb_read(r, fs->jsb_off, &j);
	if (!ret)
		ret = jsb_advance(r, fs->jsb_off, &j);
	if (ret)
		goto fail;
	fs->jseq++;
	fs->stats.tx_commits++;
	fs->stats.tx_bytes += tx->len;
	for (uint32_t n = 0; n < tx->ninodes; n++) {
		tx->inodes[n]->in_tx = false;
		tx->inodes[n]->dirty = false;
	}
	for (uint32_t n = 0; n < tx->nfrees; n++)
		alloc_release(fs, tx->frees[n].start, tx->frees[n].len);
	tx->open = false;
	return 0;

fail:
	/* past the point of no return in memory: stop changing anything */
	fs_mark_error(fs, ret, "journal commit");
	for (uint32_t n = 0; n < tx->ninodes; n++)
		tx->inodes[n]->in_tx = false;
	tx->open = false;
	return ret;
}
