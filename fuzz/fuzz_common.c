/*
 * fuzz_common.c -- regions in memfds, the template images, the mapping of
 * fuzzed input onto an image's metadata, and the walk, change and fsck
 * cycles the image-level targets share.  See fuzz_common.h.
 *
 * Must never: let a target's finding go unreported.  Anything that breaks
 * an invariant calls fz_fail(), which aborts, so libFuzzer saves the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz_common.h"

#define BS DAXFS_BLOCK_SIZE

/* The metadata code logs damaged structures to syslog; a fuzzer finds a
 * damaged structure thousands of times a second.  These definitions take
 * the place of the C library's in the fuzz binaries only. */
unsigned fz_syslog_calls;

void syslog(int pri, const char *fmt, ...)
{
	(void)pri;
	(void)fmt;
	fz_syslog_calls++;
}

void __syslog_chk(int pri, int flag, const char *fmt, ...);
void __syslog_chk(int pri, int flag, const char *fmt, ...)
{
	(void)pri;
	(void)flag;
	(void)fmt;
	fz_syslog_calls++;
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("daxfs fuzz: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* fz_region_new -- a zeroed memfd of size bytes and our view of it */
void fz_region_new(struct fz_region *rg, uint64_t size)
{
	rg->fd = memfd_create("daxfs-fuzz", MFD_CLOEXEC);
	if (rg->fd < 0 || ftruncate(rg->fd, (off_t)size))
		fz_fail("memfd: %s", strerror(errno));
	rg->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, rg->fd,
		       0);
	if (rg->map == MAP_FAILED)
		fz_fail("mmap: %s", strerror(errno));
	rg->size = size;
	snprintf(rg->spec, sizeof(rg->spec), "/proc/self/fd/%d", rg->fd);
}

/* the pages of an image that are not all zero, found once per image */
static struct {
	const uint8_t *bytes;
	uint32_t *pages, n;
} nonzero[16];

static const uint32_t *nonzero_pages(const uint8_t *bytes, uint64_t size,
				     uint32_t *n)
{
	unsigned k;

	for (k = 0; k < ARRAY_SIZE(nonzero) && nonzero[k].bytes; k++)
		if (nonzero[k].bytes == bytes)
			goto found;
	if (k == ARRAY_SIZE(nonzero))
		fz_fail("too many images");
	nonzero[k].bytes = bytes;
	nonzero[k].pages = malloc((size / BS) * sizeof(uint32_t));
	FZ_ASSERT(nonzero[k].pages);
	for (uint64_t pg = 0; pg < size / BS; pg++) {
		const uint64_t *w = (const void *)(bytes + pg * BS);

		for (unsigned x = 0; x < BS / 8; x++) {
			if (w[x]) {
				nonzero[k].pages[nonzero[k].n++] = (uint32_t)pg;
				break;
			}
		}
	}
found:
	*n = nonzero[k].n;
	return nonzero[k].pages;
}

/* fz_region_load -- punch the whole region, then copy the pages of the
 * image that hold anything: a few hundred KiB instead of megabytes.  The
 * image must not change after its first load. */
void fz_region_load(struct fz_region *rg, const uint8_t *bytes)
{
	uint32_t n;
	const uint32_t *pages = nonzero_pages(bytes, rg->size, &n);

	if (fallocate(rg->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		      (off_t)rg->size))
		memset(rg->map, 0, rg->size);
	for (uint32_t k = 0; k < n; k++)
		memcpy(rg->map + (uint64_t)pages[k] * BS,
		       bytes + (uint64_t)pages[k] * BS, BS);
}

/* ---- CRCs ---------------------------------------------------------- */

void fz_seal_sb(struct daxfs_dsb *sb)
{
	super_set_crc(sb);
}

void fz_seal_jsb(struct daxfs_jsb *j)
{
	j->crc = crc32c(0, j, offsetof(struct daxfs_jsb, crc));
}

/* fz_seal_tx -- reseal the transaction at the head of a log of cap bytes */
void fz_seal_tx(uint8_t *log, uint64_t cap)
{
	struct daxfs_jtx h;

	memcpy(&h, log, sizeof(h));
	if (h.magic != DAXFS_TX_MAGIC || h.len > cap - sizeof(h))
		return;
	h.crc = 0;
	h.crc = crc32c(crc32c(0, &h, sizeof(h)), log + sizeof(h), h.len);
	memcpy(log, &h, sizeof(h));
}

/* fz_seal_dirents -- reseal every entry that fits where it stands */
void fz_seal_dirents(uint8_t *blk, size_t len)
{
	size_t nslots = len / DAXFS_SLOT_SIZE;

	for (size_t s = 0; s < nslots;) {
		struct daxfs_ddirent h;
		uint32_t crc;
		size_t span;

		memcpy(&h, blk + s * DAXFS_SLOT_SIZE, sizeof(h));
		span = DAXFS_DIRENT_SLOTS(h.name_len);
		if (!h.ino || !h.name_len || s + span > nslots) {
			s++;
			continue;
		}
		h.crc = 0;
		crc = crc32c(0, &h, sizeof(h));
		h.crc = crc32c(crc, blk + s * DAXFS_SLOT_SIZE + sizeof(h),
			       h.name_len);
		memcpy(blk + s * DAXFS_SLOT_SIZE, &h, sizeof(h));
		s += span;
	}
}

void fz_seal_xattr(uint8_t *blk)
{
	struct daxfs_dxattrblk h;

	memcpy(&h, blk, sizeof(h));
	if (h.used > DAXFS_XATTR_SPACE)
		return;
	h.crc = 0;
	h.crc = crc32c(crc32c(0, &h, sizeof(h)), blk + sizeof(h), h.used);
	memcpy(blk, &h, sizeof(h));
}

/* ---- templates ----------------------------------------------------- */

static const struct fs_cred root_cred = { 0, 0 };

#define OK(expr) do {							\
	int _r = (expr);						\
	if (_r < 0)							\
		fz_fail("template: %s: %d (%s)", #expr, _r,		\
			daxfs_errmsg(_r));				\
} while (0)

static uint64_t mk(struct daxfs *fs, uint64_t parent, const char *name,
		   uint32_t mode, uint64_t rdev)
{
	struct inode *i;
	uint64_t ino;

	if ((mode & DAXFS_S_IFMT) == DAXFS_S_IFDIR)
		OK(fs_mkdir(fs, parent, name, mode & 07777, &root_cred, &i));
	else
		OK(fs_mknod(fs, parent, name, mode, rdev, &root_cred, &i));
	ino = i->ino;
	inode_forget(fs, ino, 1, true);
	return ino;
}

static void wr(struct daxfs *fs, uint64_t ino, uint64_t off, uint8_t fill,
	       size_t len)
{
	uint8_t *b = malloc(len);

	if (!b)
		fz_fail("out of memory");
	memset(b, fill, len);
	OK(fs_write(fs, ino, off, b, len));
	free(b);
}

static void ln(struct daxfs *fs, uint64_t ino, uint64_t parent,
	       const char *name)
{
	struct inode *i;

	OK(fs_link(fs, ino, parent, name, &i));
	inode_forget(fs, ino, 1, true);
}

static uint64_t sym(struct daxfs *fs, uint64_t parent, const char *name,
		    const char *target)
{
	struct inode *i;
	uint64_t ino;

	OK(fs_symlink(fs, parent, name, target, &root_cred, &i));
	ino = i->ino;
	inode_forget(fs, ino, 1, true);
	return ino;
}

/* big_name -- entry k of "big": its number padded to 1..255 bytes */
static const char *big_name(unsigned k, char *name)
{
	unsigned len = 1 + (k * 37) % DAXFS_NAME_MAX;
	unsigned p = (unsigned)snprintf(name, DAXFS_NAME_MAX + 1, "%u", k);

	if (len < p)
		len = p;
	memset(name + p, '-', len - p);
	name[len] = '\0';
	return name;
}

/* populate -- the tree every template starts from: every kind of object
 * and every on-region structure, small enough to fuzz */
static void populate(struct daxfs *fs, struct fz_image *img)
{
	char name[DAXFS_NAME_MAX + 1], longt[201];

	img->ino_a = mk(fs, DAXFS_ROOT_INO, "a", DAXFS_S_IFREG | 0644, 0);
	wr(fs, img->ino_a, 0, 'a', 12000);
	OK(fs_setxattr(fs, img->ino_a, "user.color", "blue", 4, 0));
	OK(fs_setxattr(fs, img->ino_a, "user.n", "\1\2", 2, 0));
	OK(fs_setxattr(fs, img->ino_a, "trusted.empty", "", 0, 0));
	img->ino_d = mk(fs, DAXFS_ROOT_INO, "d", DAXFS_S_IFDIR | 0755, 0);
	/* eight one-block extents with holes between: an external array */
	img->ino_frag = mk(fs, img->ino_d, "frag", DAXFS_S_IFREG | 0600, 0);
	for (unsigned k = 0; k < 8; k++)
		wr(fs, img->ino_frag, (uint64_t)k * 2 * BS, (uint8_t)k, BS);
	img->ino_e = mk(fs, img->ino_d, "e", DAXFS_S_IFDIR | 0700, 0);
	mk(fs, img->ino_e, "empty", DAXFS_S_IFREG | 0644, 0);
	sym(fs, DAXFS_ROOT_INO, "s", "a");
	memset(longt, 0, sizeof(longt));
	for (unsigned k = 0; k < 100; k++)
		memcpy(longt + 2 * k, "x/", 2);
	img->ino_long = sym(fs, DAXFS_ROOT_INO, "long", longt);
	mk(fs, DAXFS_ROOT_INO, "null", DAXFS_S_IFCHR | 0600, makedev(1, 3));
	mk(fs, img->ino_d, "fifo", DAXFS_S_IFIFO | 0600, 0);
	ln(fs, img->ino_a, img->ino_d, "a-again");
	/* a directory of two blocks: names of every length class, links to
	 * one file, one removed to leave a hole */
	img->ino_big = mk(fs, DAXFS_ROOT_INO, "big", DAXFS_S_IFDIR | 0755, 0);
	for (unsigned k = 0; k < 40; k++)
		ln(fs, img->ino_a, img->ino_big, big_name(k, name));
	OK(fs_unlink(fs, img->ino_big, big_name(7, name)));
}

/* jsb_off -- region offset of the journal superblock */
static uint64_t jsb_off(const struct daxfs_dsb *sb)
{
	return FS_BLOCK_OFF(sb->journal_start);
}

static void add_range(struct fz_image *img, uint64_t off, uint64_t len,
		      enum fz_kind kind, uint64_t ino)
{
	if (img->nranges == FZ_MAX_RANGES)
		fz_fail("too many ranges");
	img->ranges[img->nranges++] = (struct fz_range){ off, len, kind, ino };
	img->total += len;
}

/* find_ranges -- the metadata of a (sane) template image */
static void find_ranges(struct fz_image *img)
{
	const struct daxfs_dsb *sb = &img->sb;
	const uint8_t *b = img->bytes;
	uint64_t itab = FS_BLOCK_OFF(sb->itable_start);
	const uint64_t ninodes_fuzzed = 24;

	img->nranges = 0;
	img->total = 0;
	add_range(img, 0, DAXFS_SB_SIZE, FZ_SB, 0);
	add_range(img, jsb_off(sb), sizeof(struct daxfs_jsb), FZ_JSB, 0);
	add_range(img, FS_BLOCK_OFF(sb->bitmap_start),
		  DIV_ROUND_UP(sb->nblocks, 8), FZ_BITMAP, 0);
	add_range(img, itab, ninodes_fuzzed * DAXFS_INODE_SIZE, FZ_ITABLE, 0);
	add_range(img, jsb_off(sb) + BS, 2048, FZ_LOG, 0);
	for (uint64_t ino = 1; ino < ninodes_fuzzed; ino++) {
		struct daxfs_dinode d;
		struct daxfs_dextent x[DAXFS_INLINE_EXTENTS];
		uint32_t type;

		memcpy(&d, b + itab + ino * DAXFS_INODE_SIZE, sizeof(d));
		if (!d.mode)
			continue;
		type = d.mode & DAXFS_S_IFMT;
		if (d.ext_block)
			add_range(img, FS_BLOCK_OFF(d.ext_block), 512,
				  FZ_EXTARR, ino);
		if (d.xattr_block)
			add_range(img, FS_BLOCK_OFF(d.xattr_block), 256,
				  FZ_XATTR, ino);
		if (d.ext_block || (d.flags & DAXFS_IF_INLINE))
			continue;
		memcpy(x, d.inl, sizeof(x));
		for (uint32_t k = 0; k < d.nextents && k < 5; k++) {
			for (uint64_t n = 0; n < x[k].len && n < 4; n++) {
				uint64_t off = FS_BLOCK_OFF(x[k].pblk + n);

				if (type == DAXFS_S_IFDIR)
					add_range(img, off, 1024, FZ_DIRBLK,
						  ino);
				else if (type == DAXFS_S_IFLNK)
					add_range(img, off, 256, FZ_SYMLINK,
						  ino);
			}
		}
	}
	add_range(img, FS_BLOCK_OFF(sb->backup_block), DAXFS_SB_SIZE, FZ_SB,
		  0);
}

static void snapshot(struct fz_image *img, const struct fz_region *rg)
{
	img->bytes = malloc(FZ_REGION_SIZE);
	if (!img->bytes)
		fz_fail("out of memory");
	memcpy(img->bytes, rg->map, FZ_REGION_SIZE);
	memcpy(&img->sb, img->bytes, sizeof(img->sb));
	find_ranges(img);
}

static struct fz_image templates[FZ_NVARIANTS];

static void build(void)
{
	struct mkfs_opts mo = { .ninodes = FZ_NINODES, .label = "fuzz" };
	struct mount_opts o = { .readonly = false };
	struct fz_region rg;
	struct region *r;
	struct daxfs *fs;
	struct daxfs_jsb saved;
	struct inode *i;
	uint64_t ino;

	fz_region_new(&rg, FZ_REGION_SIZE);
	OK(region_open(rg.spec, 0, 0, &r));
	OK(daxfs_mkfs(r, &mo));
	region_close(r);
	OK(fs_mount(rg.spec, &o, &fs));
	populate(fs, &templates[FZ_CLEAN]);
	OK(fs_unmount(fs, true));
	snapshot(&templates[FZ_CLEAN], &rg);

	/* a crash with a rename committed but not retired: the journal
	 * superblock as it was before the rename's transaction */
	OK(fs_mount(rg.spec, &o, &fs));
	memcpy(&saved, rg.map + jsb_off(&fs->sb), sizeof(saved));
	OK(fs_rename(fs, DAXFS_ROOT_INO, "s", templates[FZ_CLEAN].ino_d, "s2",
		     0));
	memcpy(rg.map + jsb_off(&fs->sb), &saved, sizeof(saved));
	templates[FZ_PENDING] = templates[FZ_CLEAN];
	snapshot(&templates[FZ_PENDING], &rg);
	memcpy(rg.map + jsb_off(&fs->sb), &saved, sizeof(saved));
	fs_unmount(fs, true);

	/* a crash while an unlinked file was still open */
	fz_region_load(&rg, templates[FZ_CLEAN].bytes);
	OK(fs_mount(rg.spec, &o, &fs));
	OK(fs_mknod(fs, templates[FZ_CLEAN].ino_d, "gone",
		    DAXFS_S_IFREG | 0644, 0, &root_cred, &i));
	ino = i->ino;
	wr(fs, ino, 0, 'g', 3 * BS);
	OK(fs_unlink(fs, templates[FZ_CLEAN].ino_d, "gone"));
	templates[FZ_ORPHAN] = templates[FZ_CLEAN];
	snapshot(&templates[FZ_ORPHAN], &rg);
	inode_forget(fs, ino, 1, true);
	fs_unmount(fs, true);

	munmap(rg.map, rg.size);
	close(rg.fd);
}

const struct fz_image *fz_templates(void)
{
	if (!templates[FZ_CLEAN].bytes)
		build();
	return templates;
}

/* ---- input over ranges --------------------------------------------- */

void fz_apply(const struct fz_image *img, uint8_t *dst, const uint8_t *in,
	      size_t len)
{
	size_t pos = 0;

	for (unsigned k = 0; k < img->nranges && pos < len; k++) {
		const struct fz_range *x = &img->ranges[k];
		size_t n = MIN(x->len, len - pos);

		memcpy(dst + x->off, in + pos, n);
		pos += n;
	}
}

size_t fz_extract(const struct fz_image *img, const uint8_t *src,
		  uint8_t *out, size_t cap)
{
	size_t pos = 0;

	for (unsigned k = 0; k < img->nranges; k++) {
		const struct fz_range *x = &img->ranges[k];
		size_t n = MIN(x->len, cap - pos);

		memcpy(out + pos, src + x->off, n);
		pos += n;
	}
	return pos;
}

void fz_fix_crcs(const struct fz_image *img, uint8_t *dst)
{
	const struct daxfs_dsb *tsb = &img->sb;

	for (unsigned k = 0; k < img->nranges; k++) {
		const struct fz_range *x = &img->ranges[k];
		uint8_t *p = dst + x->off;

		switch (x->kind) {
		case FZ_SB: {
			struct daxfs_dsb sb;

			memcpy(&sb, p, sizeof(sb));
			fz_seal_sb(&sb);
			memcpy(p, &sb, sizeof(sb));
			break;
		}
		case FZ_JSB: {
			struct daxfs_jsb j;

			memcpy(&j, p, sizeof(j));
			fz_seal_jsb(&j);
			memcpy(p, &j, sizeof(j));
			break;
		}
		case FZ_LOG:
			fz_seal_tx(p, FS_BLOCK_OFF(tsb->journal_blocks - 1));
			break;
		case FZ_ITABLE:
			for (uint64_t o = 0; o < x->len;
			     o += DAXFS_INODE_SIZE) {
				struct daxfs_dinode d;
				static const struct daxfs_dinode zero;

				memcpy(&d, p + o, sizeof(d));
				if (!memcmp(&d, &zero, sizeof(d)))
					continue;
				dinode_set_crc(&d);
				memcpy(p + o, &d, sizeof(d));
			}
			break;
		case FZ_DIRBLK:
			fz_seal_dirents(p, BS);
			break;
		case FZ_XATTR:
			fz_seal_xattr(p);
			break;
		default:
			break;
		}
	}
}

/* ---- seeds --------------------------------------------------------- */

const char *fz_seed_dir(void)
{
	const char *d = getenv("FUZZ_WRITE_SEEDS");

	return d && *d ? d : NULL;
}

void fz_write_seed(const char *dir, const char *name, const uint8_t *buf,
		   size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		fz_fail("cannot write %s: %s", path, strerror(errno));
}

/* ---- walking a mounted filesystem ---------------------------------- */

struct walk {
	struct daxfs *fs;
	unsigned budget;		/* entries still to visit */
	uint64_t seen[64];		/* directories on the way down */
	unsigned depth;
};

static void visit_file(struct daxfs *fs, struct inode *i)
{
	static uint8_t buf[4 * BS];
	uint64_t size = i->d.size;
	int n;

	n = fs_read(fs, i->ino, 0, buf, sizeof(buf));
	FZ_ASSERT(n < 0 || (uint64_t)n <= sizeof(buf));
	if (size > 1)
		fs_read(fs, i->ino, size - 1, buf, 2);
	fs_read(fs, i->ino, size + BS, buf, 16);
}

static void visit_xattrs(struct daxfs *fs, uint64_t ino)
{
	char list[1024], val[512];
	int n = fs_listxattr(fs, ino, list, sizeof(list));

	FZ_ASSERT(n < (int)sizeof(list) + 1);
	if (n <= 0)
		return;
	FZ_ASSERT(list[n - 1] == '\0');
	for (int p = 0; p < n; p += (int)strlen(list + p) + 1) {
		int v = fs_getxattr(fs, ino, list + p, val, sizeof(val));

		FZ_ASSERT(v < 0 || v <= (int)sizeof(val));
		fs_getxattr(fs, ino, list + p, NULL, 0);
	}
	fs_listxattr(fs, ino, NULL, 0);
	fs_getxattr(fs, ino, "user.none", val, sizeof(val));
}

static void walk_dir(struct walk *w, uint64_t dino)
{
	struct { char name[DAXFS_NAME_MAX + 1]; } *names;
	struct inode *dir;
	struct dentry *de;
	uint32_t slot = 0;
	unsigned n = 0, cap = 32;

	for (unsigned k = 0; k < w->depth; k++)
		if (w->seen[k] == dino)
			return;			/* a loop: the kernel's worry */
	if (w->depth == ARRAY_SIZE(w->seen) || !w->budget)
		return;
	if (fs_dir_lock(w->fs, dino, &dir))
		return;
	names = malloc(cap * sizeof(*names));
	while (names && n < cap && (de = dir_next(dir, &slot))) {
		FZ_ASSERT(de->name_len >= 1 && strlen(de->name) ==
			  de->name_len);
		FZ_ASSERT(dir_lookup(dir, de->name, de->name_len) == de);
		FZ_ASSERT(de->slot == slot);
		memcpy(names[n++].name, de->name, de->name_len + 1u);
		slot++;
	}
	fs_dir_unlock(w->fs);
	w->seen[w->depth++] = dino;
	for (unsigned k = 0; k < n && w->budget; k++, w->budget--) {
		struct inode *i;
		struct stat st;
		char link[DAXFS_SYMLINK_MAX + 1];

		if (fs_lookup(w->fs, dino, names[k].name, &i))
			continue;
		fs_getattr(w->fs, i->ino, &st);
		switch (st.st_mode & S_IFMT) {
		case S_IFDIR:
			walk_dir(w, i->ino);
			break;
		case S_IFREG:
			visit_file(w->fs, i);
			break;
		case S_IFLNK: {
			int len = fs_readlink(w->fs, i->ino, link,
					      sizeof(link));

			FZ_ASSERT(len < 0 || (len <= DAXFS_SYMLINK_MAX &&
					      link[len] == '\0'));
			break;
		}
		}
		visit_xattrs(w->fs, i->ino);
		inode_forget(w->fs, i->ino, 1, true);
	}
	w->depth--;
	free(names);
}

void fz_walk(struct daxfs *fs, unsigned budget)
{
	struct walk w = { .fs = fs, .budget = budget };
	struct inode *i;

	visit_xattrs(fs, DAXFS_ROOT_INO);
	walk_dir(&w, DAXFS_ROOT_INO);
	if (!fs_lookup(fs, DAXFS_ROOT_INO, "..", &i))
		inode_forget(fs, i->ino, 1, true);
}

/* fz_modify -- a few changes steered by the input: creates, writes,
 * xattrs, renames, truncates and removals over whatever is there */
void fz_modify(struct daxfs *fs, const uint8_t *in, size_t len)
{
	static const char *names[] = { "a", "d", "s", "big", "long", "null",
				       "new", "nd", "frag", "e", "a-again",
				       "fifo" };
	static uint8_t buf[3 * BS];
	uint64_t dirs[4] = { DAXFS_ROOT_INO, 0, 0, 0 };
	struct inode *i;
	unsigned ndirs = 1;

	memset(buf, 0x5a, sizeof(buf));
	if (!fs_lookup(fs, DAXFS_ROOT_INO, "d", &i)) {
		dirs[ndirs++] = i->ino;
		inode_forget(fs, i->ino, 1, true);
	}
	if (!fs_lookup(fs, DAXFS_ROOT_INO, "big", &i)) {
		dirs[ndirs++] = i->ino;
		inode_forget(fs, i->ino, 1, true);
	}
	for (size_t p = 0; p + 4 <= len && p < 64; p += 4) {
		uint64_t dir = dirs[in[p + 1] % ndirs];
		uint64_t dir2 = dirs[in[p + 2] % ndirs];
		const char *nm = names[in[p + 2] % ARRAY_SIZE(names)];
		const char *nm2 = names[in[p + 3] % ARRAY_SIZE(names)];
		uint64_t off = (uint64_t)in[p + 3] * 1531;

		switch (in[p] % 10) {
		case 0:
			if (!fs_mknod(fs, dir, nm, DAXFS_S_IFREG | 0644, 0,
				      &root_cred, &i))
				inode_forget(fs, i->ino, 1, true);
			break;
		case 1:
			if (!fs_mkdir(fs, dir, nm, 0755, &root_cred, &i))
				inode_forget(fs, i->ino, 1, true);
			break;
		case 2:
		case 3:
			if (!fs_lookup(fs, dir, nm, &i)) {
				fs_write(fs, i->ino, off, buf,
					 1 + in[p + 1] * 40u);
				inode_forget(fs, i->ino, 1, true);
			}
			break;
		case 4:
			fs_unlink(fs, dir, nm);
			break;
		case 5:
			fs_rmdir(fs, dir, nm);
			break;
		case 6:
			fs_rename(fs, dir, nm, dir2, nm2, in[p + 1] & 3);
			break;
		case 7:
			if (!fs_lookup(fs, dir, nm, &i)) {
				fs_setxattr(fs, i->ino, "user.fz", buf,
					    in[p + 3], 0);
				fs_removexattr(fs, i->ino, "user.color");
				inode_forget(fs, i->ino, 1, true);
			}
			break;
		case 8:
			if (!fs_lookup(fs, dir, nm, &i)) {
				struct fs_setattr a = {
					.valid = SETATTR_SIZE,
					.size = off,
				};

				fs_setattr(fs, i->ino, &a, NULL);
				inode_forget(fs, i->ino, 1, true);
			}
			break;
		case 9:
			if (!fs_link(fs, in[p + 3] % 24, dir, nm2, &i))
				inode_forget(fs, i->ino, 1, true);
			break;
		}
	}
}

/* ---- fsck ---------------------------------------------------------- */

struct fsck_count {
	uint64_t problems;
};

static void count_problem(void *arg, const char *msg, enum fsck_status st,
			  const char *detail)
{
	struct fsck_count *c = arg;

	FZ_ASSERT(msg && *msg);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fsck: %s [%s%s%s]\n", msg,
			st == FSCK_FIXED ? "fixed" : st == FSCK_UNFIXED ?
			"unfixed" : "found", detail ? ": " : "",
			detail ? detail : "");
	c->problems++;
}

/*
 * fz_fsck_cycle -- check, repair, check.  A repair that says it fixed
 * everything must leave a region the next check finds clean and that
 * mounts; a check must never change the region.
 */
void fz_fsck_cycle(const char *spec)
{
	struct fsck_count cnt = { 0 };
	struct fsck_opts o = { .problem = count_problem, .arg = &cnt };
	struct fsck_result res, rep;
	struct mount_opts mo = { .readonly = false };
	struct daxfs *fs;
	int ret;

	ret = fsck_run(spec, &o, &res);
	FZ_ASSERT(ret <= 0);
	FZ_ASSERT(ret != 0 || res.errors == cnt.problems);
	if (ret)
		return;			/* not a daxfs region we can check */
	o.repair = true;
	cnt.problems = 0;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "-- repair\n");
	ret = fsck_run(spec, &o, &rep);
	FZ_ASSERT(ret <= 0);
	if (ret || rep.fixed != rep.errors)
		return;			/* it said what it could not fix */
	o.repair = false;
	cnt.problems = 0;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "-- check again\n");
	ret = fsck_run(spec, &o, &res);
	if (ret || res.errors)
		fz_fail("fsck --repair fixed %llu problems and reported "
			"none unfixed, but a second check then %s (%llu "
			"problems)", (unsigned long long)rep.fixed,
			ret ? daxfs_errmsg(ret) : "found more",
			(unsigned long long)res.errors);
	ret = fs_mount(spec, &mo, &fs);
	if (ret)
		fz_fail("a region fsck calls clean does not mount: %s",
			daxfs_errmsg(ret));
	fz_walk(fs, 256);
	ret = fs_unmount(fs, true);
	FZ_ASSERT(ret == 0);
}

void fz_geo(struct daxfs *fs, struct region *r, const struct daxfs_dsb *sb)
{
	memset(fs, 0, sizeof(*fs));
	fs->r = r;
	fs->sb = *sb;
	fs->nblocks = sb->nblocks;
	fs->data_start = sb->data_start;
	fs->ninodes = sb->ninodes;
	fs->align_blocks = sb->data_align >> DAXFS_BLOCK_SHIFT;
	fs->itable_off = FS_BLOCK_OFF(sb->itable_start);
	fs->bitmap_off = FS_BLOCK_OFF(sb->bitmap_start);
}

/* ---- a filesystem kept mounted ------------------------------------- */

void fz_live_init(struct fz_live *l, const struct fz_image *img)
{
	struct mount_opts o = { .readonly = false };
	struct alloc *a;
	int ret;

	fz_region_new(&l->rg, FZ_REGION_SIZE);
	fz_region_load(&l->rg, img->bytes);
	ret = fs_mount(l->rg.spec, &o, &l->fs);
	if (ret)
		fz_fail("fs_mount: %s", daxfs_errmsg(ret));
	l->base = malloc(FZ_REGION_SIZE);
	FZ_ASSERT(l->base);
	memcpy(l->base, l->rg.map, FZ_REGION_SIZE);
	l->jseq = l->fs->jseq;
	a = &l->fs->alloc;
	l->saved = *a;
	l->saved.committed = malloc(a->nwords * 8);
	l->saved.inuse = malloc(a->nwords * 8);
	l->saved.chunk_free = malloc(a->nchunks * sizeof(uint32_t));
	FZ_ASSERT(l->saved.committed && l->saved.inuse &&
		  l->saved.chunk_free);
	memcpy(l->saved.committed, a->committed, a->nwords * 8);
	memcpy(l->saved.inuse, a->inuse, a->nwords * 8);
	memcpy(l->saved.chunk_free, a->chunk_free,
	       a->nchunks * sizeof(uint32_t));
}

void fz_live_reset(struct fz_live *l)
{
	struct alloc *a = &l->fs->alloc;

	fz_region_load(&l->rg, l->base);
	l->fs->jseq = l->jseq;
	memcpy(a->committed, l->saved.committed, a->nwords * 8);
	memcpy(a->inuse, l->saved.inuse, a->nwords * 8);
	memcpy(a->chunk_free, l->saved.chunk_free,
	       a->nchunks * sizeof(uint32_t));
	a->free = l->saved.free;
	a->cursor_small = l->saved.cursor_small;
	a->cursor_big = l->saved.cursor_big;
	atomic_store(&l->fs->error, false);
}

/* recount -- the allocator's counters from its in-use map */
static uint64_t recount(struct daxfs *fs, uint32_t *chunks)
{
	struct alloc *a = &fs->alloc;
	uint64_t total = 0;

	for (uint64_t c = 0; c < a->nchunks; c++) {
		uint64_t s = c * a->chunk_blocks;
		uint64_t e = MIN(s + a->chunk_blocks, fs->nblocks);
		uint32_t f = 0;

		for (uint64_t b = s; b < e; b++)
			f += !bitmap_test(a->inuse, b);
		chunks[c] = f;
		total += f;
	}
	return total;
}

void fz_live_recount(struct fz_live *l)
{
	l->fs->alloc.free = recount(l->fs, l->fs->alloc.chunk_free);
}

void fz_live_mark(struct fz_live *l, uint64_t start, uint64_t len)
{
	struct alloc *a = &l->fs->alloc;

	for (uint64_t b = start; b < start + len; b++) {
		a->committed[b / 64] |= 1ULL << (b % 64);
		a->inuse[b / 64] |= 1ULL << (b % 64);
	}
}

void fz_live_check_alloc(struct fz_live *l)
{
	struct alloc *a = &l->fs->alloc;
	uint32_t chunks[64];

	FZ_ASSERT(a->nchunks <= ARRAY_SIZE(chunks));
	FZ_ASSERT(recount(l->fs, chunks) == a->free);
	FZ_ASSERT(!memcmp(chunks, a->chunk_free, a->nchunks * 4));
	FZ_ASSERT(!memcmp(a->inuse, a->committed, a->nwords * 8));
}
