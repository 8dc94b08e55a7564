/*
 * daxfs_crashsim -- crash consistency of daxfs at every persist point.
 *
 * A small file region is formatted and mounted in this process; a region
 * tracer records every store, flush and drain the filesystem makes while
 * a seeded random workload runs through namei.h.  After each operation
 * returns, the whole tree is dumped: that dump is the model "after op k".
 * The operation's trace is then replayed through a persistence model, and
 * at every drain the images a crash could leave are rebuilt on a scratch
 * region, checked with fsck, mounted (which replays the journal), dumped
 * and compared with the model.
 *
 * What a crash can leave (trace.c).  A store is durable once a flush
 * covering its bytes has been followed by a drain; a non-temporal store
 * once a drain follows.  Until then each 8-byte word may hold any value
 * it took since it was last durable (only aligned 8-byte stores are
 * failure atomic).  At every drain point these images are checked:
 *   - "durable": exactly what the drain made durable (a crash right after
 *     it, nothing else written back);
 *   - "all": every store so far written back (a crash just before the
 *     drain, with the caches fully written back);
 *   - --partials N more, each a random part of the pending stores: a
 *     prefix cut at 8-byte granularity, cache lines or single words
 *     written back at random moments, or all stores but one.
 *
 * Every "remount" operation (--remount-pct) unmounts cleanly under the
 * tracer -- its evictions, data sync and superblock update are crash
 * points too -- and mounts again; the mount itself is not traced (it
 * persists all it writes before it returns), and a crash during the
 * recovery of a crash is left to tests/unit/test_journal.c.
 *
 * How an image is judged.  With a = the operations that had returned
 * before the drain (the drain belongs to operation a+1):
 *   1. fsck (check mode) reports no error; a committed journal
 *      transaction waiting for replay, an orphan, an unclean state or a
 *      superblock copy caught mid-update are only notes;
 *   2. it mounts (replaying the journal, freeing orphans);
 *   3. its dump equals model[a] or model[a+1] -- the operation in flight
 *      appears entirely or not at all -- path by path: inode number,
 *      type, mode, uid, gid, link count, device number, size, contents
 *      (files) or target (symlinks), and every xattr.  Times are not
 *      compared (daxfs, like every filesystem, keeps them lazily);
 *   4. every file that has blocks past its end of file is extended
 *      over them (truncate, a write beyond the end, or fallocate) and
 *      the bytes uncovered must read zero: a crash must not let data a
 *      file no longer holds come back;
 *   5. unmounted cleanly, fsck reports neither error nor note: nothing
 *      leaked (the bitmap's free count equals total minus owned).
 * Identical images are judged once; a failure found on an image built
 * page by page (check.c) is confirmed on a fully copied one.  At the end
 * the work region itself, unmounted, must pass fsck without a note.
 *
 * The data rule.  Namespace and attribute operations are atomic and
 * durable when they return: each commits a journal transaction first.
 * File data is durable only once fsync returns (POSIX promises nothing
 * about unsynced data), so a file written since its last fsync is
 * "unsynced" in the model: its size must be one it had since that fsync,
 * and each byte must be what one of the versions since then held at that
 * offset (or zero where a version was shorter).  Everything else about
 * it (inode, mode, owner, links, xattrs, its name) is exact.  A file is
 * exact from its creation and after each fsync of it; truncate and
 * fallocate (modes 0 and KEEP_SIZE) are atomic and durable, so they keep
 * an exact file exact; a hole punch in flight may show a mix of before
 * and after, and is exact once it returned.  The workload fsyncs most
 * data operations right after them, so most contents are checked exactly.
 *
 * A dump of the live filesystem must not store to the region (the tracer
 * counts anything it sees during one), and the live filesystem must never
 * hold non-zero bytes past a file's end.
 *
 * --break makes the recording lie about what the filesystem did (drops
 * the drain that fences each journal commit, or every flush of the inode
 * table): the tool must then report failures, which proves it can.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "crashsim.h"

#define MiB (1ULL << 20)

static char work_path[128], img_path[128];

static void cleanup(void)
{
	if (work_path[0])
		unlink(work_path);
	if (img_path[0])
		unlink(img_path);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* provided by the sanitizer runtimes only; NULL in a plain build */
extern void __sanitizer_set_death_callback(void (*cb)(void))
	__attribute__((weak));

static void die(const char *what, int ret)
{
	fprintf(stderr, "daxfs_crashsim: %s: %s\n", what,
		daxfs_errmsg(ret));
	exit(2);
}

static double now_s(void)
{
	return (double)now_ns() / 1e9;
}

/* ---- the replay --------------------------------------------------------- */

static void drain_point(struct sim *s)
{
	static const enum vkind partial[] = { V_PREFIX, V_LINE, V_WORD,
					      V_DROP1 };
	struct overlay ov = { 0 };

	s->drains++;
	if (pm_pending(s->pm)) {
		/* a crash just before the drain completes */
		pm_variant(s->pm, V_ALL, &s->g, &ov);
		check_image(s, &ov, &s->prev, &s->cur, true);
		for (uint32_t k = 0; k < s->o.partials; k++) {
			enum vkind kind = partial[(k + s->drains) %
						  ARRAY_SIZE(partial)];

			pm_variant(s->pm, kind, &s->g, &ov);
			check_image(s, &ov, &s->prev, &s->cur, true);
		}
	}
	pm_drain(s->pm);
	pm_variant(s->pm, V_DURABLE, &s->g, &ov);
	check_image(s, &ov, &s->prev, &s->cur, true);
	overlay_free(&ov);
}

/* area -- which part of the region an offset lies in, for --trace-op */
static const char *area(const struct sim *s, uint64_t off)
{
	const struct daxfs *fs = s->fs;

	if (off < DAXFS_BLOCK_SIZE)
		return "superblock";
	if (off >= FS_BLOCK_OFF(fs->sb.bitmap_start) &&
	    off < FS_BLOCK_OFF(fs->sb.bitmap_start + fs->sb.bitmap_blocks))
		return "bitmap";
	if (off >= fs->jsb_off && off < fs->log_off)
		return "journal sb";
	if (off >= fs->log_off && off < fs->log_off + fs->log_len)
		return "journal log";
	if (off >= fs->itable_off &&
	    off < fs->itable_off + fs->ninodes * DAXFS_INODE_SIZE)
		return "inode table";
	return "data";
}

static void print_event(const struct sim *s, const struct ev *e)
{
	static const char *const kind[] = { "store", "flush", "drain" };

	if (e->kind == EV_DRAIN) {
		printf("    drain (#%" PRIu64 ")\n", s->drains + 1);
		return;
	}
	printf("    %s%s %#" PRIx64 "+%" PRIu64 " (%s", kind[e->kind],
	       e->nt ? "(nt)" : "", e->off, e->len, area(s, e->off));
	if (e->off >= s->fs->itable_off &&
	    e->off < s->fs->itable_off + s->fs->ninodes * DAXFS_INODE_SIZE)
		printf(" ino %" PRIu64, (e->off - s->fs->itable_off) /
		       DAXFS_INODE_SIZE);
	else if (!strcmp(area(s, e->off), "data"))
		printf(" block %" PRIu64, e->off >> DAXFS_BLOCK_SHIFT);
	printf(")\n");
}

/* replay -- the events of one operation through the persistence model */
static void replay(struct sim *s)
{
	for (size_t k = 0; k < s->tr.n; k++) {
		const struct ev *e = &s->tr.v[k];

		if (s->o.trace_op == s->op)
			print_event(s, e);

		switch (e->kind) {
		case EV_STORE:
			pm_store(s->pm, e->off, s->tr.arena + e->data, e->len,
				 e->nt);
			break;
		case EV_FLUSH:
			pm_flush(s->pm, e->off, e->len);
			break;
		default:
			drain_point(s);
			break;
		}
	}
	trace_reset(&s->tr);
}

/* coverage -- which on-region structures the live filesystem reached */
static void coverage(struct sim *s, const struct dump *d)
{
	pthread_rwlock_rdlock(&s->fs->meta_lock);
	for (uint32_t k = 0; k < d->n; k++) {
		struct inode *i;

		if (inode_get(s->fs, d->v[k].ino, &i))
			continue;
		s->cov.ext_array += i->d.ext_block != 0;
		s->cov.xattr_block += i->d.xattr_block != 0;
		s->cov.big_dir += inode_is_dir(i) &&
				  i->d.size > DAXFS_BLOCK_SIZE;
		s->cov.block_link += inode_is_lnk(i) &&
				     !(i->d.flags & DAXFS_IF_INLINE);
		s->cov.hard_link += !inode_is_dir(i) && i->d.nlink > 1;
		s->cov.max_ext = MAX(s->cov.max_ext, i->d.nextents);
	}
	pthread_rwlock_unlock(&s->fs->meta_lock);
	s->cov.max_entries = MAX(s->cov.max_entries, d->n);
}

static void take_model(struct sim *s, struct model *m)
{
	struct sbuf err = { 0 };

	s->tr.paused = true;
	if (dump_fs(s->fs, &m->d, &err)) {
		fprintf(stderr, "daxfs_crashsim: dumping the live filesystem "
			"after op %" PRIu64 ": %s", s->op, err.s);
		exit(2);
	}
	coverage(s, &m->d);
	s->tr.paused = false;
	sb_free(&err);
	if (m->d.tail_bad && !s->tail_live++)
		printf("FAIL: after op %" PRIu64 " [%s] the live filesystem's "
		       "inode %" PRIu64 " has non-zero data past its end of "
		       "file (byte %" PRIu64 ")\n", s->op, s->desc,
		       m->d.tail_bad, m->d.tail_off);
}

/*
 * remount -- an operation of its own: let go of every reference, unmount
 * cleanly (traced: its evictions, data sync and superblock update are
 * crash points like any other) and mount again.  The mount is not
 * traced; it persists all it writes before it returns, so what it wrote
 * is taken as durable once the unmount's events are replayed.
 */
static void remount(struct sim *s, struct workload *wl)
{
	struct mount_opts mo = { .readonly = false };
	int fd, ret;

	wl_release(wl, s->desc, sizeof(s->desc));
	ret = fs_unmount(s->fs, true);
	if (ret)
		die("unmounting the work region", ret);
	ret = fs_mount(work_path, &mo, &s->fs);
	if (ret)
		die("mounting the work region again", ret);
	s->mounted_img = xmalloc(s->o.size);
	fd = open(work_path, O_RDONLY);
	if (fd < 0 || pread(fd, s->mounted_img, s->o.size, 0) !=
	    (ssize_t)s->o.size)
		die("reading the region", -errno);
	close(fd);
	trace_attach(&s->tr, s->fs->r, &s->rt);
	wl_remounted(wl, s->fs);
	s->remounts++;
}

/* ---- setup -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: daxfs_crashsim [--seed N] [--ops N] [--partials N] [--long]\n"
"                      [--size SIZE] [--cacheline] [--fsync-pct P]\n"
"                      [--max-file SIZE] [--remount-pct P]\n"
"                      [--show N] [--keep DIR] [--trace-op K] [--verbose]\n"
"Runs a seeded random workload on an in-process daxfs, rebuilds the\n"
"region as a crash at every drain could leave it, and checks each image\n"
"with fsck, a mount and a comparison with the state before or after the\n"
"operation in flight.  Exit status 0: all images consistent; 1: some\n"
"were not; 2: the tool itself failed.\n"
"  --seed N       the workload and the variants (default: from the clock)\n"
"  --ops N        operations (default 200; --long: 3000)\n"
"  --partials N   random partial images per drain point (default 3)\n"
"  --size SIZE    region size (default 32M)\n"
"  --cacheline    force cache-line granularity (non-temporal data path)\n"
"  --fsync-pct P  chance of an fsync after a data operation (default 60)\n"
"  --max-file SIZE  the largest file the workload makes (default 512k)\n"
"  --remount-pct P  chance of an unmount and mount as the next operation\n"
"                 (default 2)\n"
"  --show N       failures reported in full (default 5)\n"
"  --keep DIR     save each reported failing image in DIR\n"
"  --trace-op K   print the stores, flushes and drains of operation K\n"
"  --verbose      print each operation (and let daxfs log to syslog)\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "partials", required_argument, NULL, 'p' },
		{ "long", no_argument, NULL, 'L' },
		{ "size", required_argument, NULL, 'S' },
		{ "cacheline", no_argument, NULL, 'c' },
		{ "fsync-pct", required_argument, NULL, 'f' },
		{ "max-file", required_argument, NULL, 'm' },
		{ "remount-pct", required_argument, NULL, 'r' },
		{ "show", required_argument, NULL, 'w' },
		{ "keep", required_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "break", required_argument, NULL, 'B' },	/* hidden */
		{ "no-probe", no_argument, NULL, 'P' },		/* hidden */
		{ "trace-op", required_argument, NULL, 'T' },
		{ "verify-restore", no_argument, NULL, 'V' },	/* hidden */
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool ops_set = false, is_long = false;
	int c;

	*o = (struct opts){ .ops = 200, .size = 32 * MiB, .partials = 3,
			    .fsync_pct = 60, .show = 5, .max_file = 512 << 10,
			    .remount_pct = 2 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->seed = strtoull(optarg, NULL, 0);
			o->seed_set = true;
			break;
		case 'n':
			o->ops = strtoull(optarg, NULL, 0);
			ops_set = true;
			break;
		case 'p':
			o->partials = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'L':
			is_long = true;
			break;
		case 'S':
			if (parse_size(optarg, &o->size) ||
			    o->size < DAXFS_MIN_REGION) {
				fprintf(stderr, "daxfs_crashsim: --size %s: "
					"not a size of at least 16M\n", optarg);
				exit(2);
			}
			break;
		case 'c':
			o->cacheline = true;
			break;
		case 'f':
			o->fsync_pct = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o->remount_pct = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			if (parse_size(optarg, &o->max_file) ||
			    o->max_file < DAXFS_BLOCK_SIZE) {
				fprintf(stderr, "daxfs_crashsim: --max-file %s: "
					"not a size of at least 4k\n", optarg);
				exit(2);
			}
			break;
		case 'w':
			o->show = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'k':
			o->keep = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'B':
			if (!strcmp(optarg, "commit-fence"))
				o->brk = BRK_COMMIT_FENCE;
			else if (!strcmp(optarg, "inode-flush"))
				o->brk = BRK_INODE_FLUSH;
			else {
				fprintf(stderr, "daxfs_crashsim: --break %s: "
					"commit-fence or inode-flush\n",
					optarg);
				exit(2);
			}
			break;
		case 'P':
			o->no_probe = true;
			break;
		case 'T':
			o->trace_op = strtoull(optarg, NULL, 0);
			break;
		case 'V':
			o->verify_restore = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (is_long && !ops_set)
		o->ops = 3000;
	if (!o->seed_set)
		o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

/* setup -- format and mount the work region; map the scratch region */
static void setup(struct sim *s)
{
	struct mkfs_opts mk = { .label = "crashsim" };
	struct mount_opts mo = { .readonly = false };
	struct region *r;
	uint8_t *init;
	int fd, ret;

	snprintf(work_path, sizeof(work_path), "/dev/shm/daxfs-crash-%d-work",
		 (int)getpid());
	snprintf(img_path, sizeof(img_path), "/dev/shm/daxfs-crash-%d-img",
		 (int)getpid());
	atexit(cleanup);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGFPE, on_signal);
	signal(SIGILL, on_signal);
	unlink(work_path);
	ret = region_open(work_path, REGION_CREATE, s->o.size, &r);
	if (ret)
		die(work_path, ret);
	ret = daxfs_mkfs(r, &mk);
	if (ret)
		die("mkfs", ret);
	region_close(r);
	ret = fs_mount(work_path, &mo, &s->fs);
	if (ret)
		die("mount", ret);

	/* the initial image: everything mkfs and mount wrote is durable */
	init = xmalloc(s->o.size);
	fd = open(work_path, O_RDONLY);
	if (fd < 0 || pread(fd, init, s->o.size, 0) != (ssize_t)s->o.size)
		die("reading the region", -errno);
	close(fd);
	s->pm = pm_new(init, s->o.size);
	free(init);

	s->img_path = img_path;
	fd = open(img_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)s->o.size))
		die(img_path, -errno);
	s->scratch = mmap(NULL, s->o.size, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, 0);
	if (s->scratch == MAP_FAILED)
		die("mapping the scratch region", -errno);
	close(fd);
	s->cand = xmalloc(s->o.size / 4096);
	s->since_full = UINT64_MAX / 2;	/* the first image: a full copy */

	s->tr.brk = s->o.brk;
	s->tr.log_lo = s->fs->log_off;
	s->tr.log_hi = s->fs->log_off + s->fs->log_len;
	s->tr.it_lo = s->fs->itable_off;
	s->tr.it_hi = s->fs->itable_off + s->fs->ninodes * DAXFS_INODE_SIZE;
}

int main(int argc, char **argv)
{
	struct sim s = { 0 };
	struct workload *wl;
	struct wl_opts wo;
	double t0 = now_s();
	uint64_t final_fail;

	parse(argc, argv, &s.o);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (s.o.cacheline)
		setenv("PMEM2_FORCE_GRANULARITY", "CACHE_LINE", 1);
	if (!s.o.verbose)
		setlogmask(LOG_MASK(LOG_EMERG));
	printf("daxfs_crashsim: seed %" PRIu64 " (replay with --seed %" PRIu64
	       "), %" PRIu64 " ops, %u partial images per drain%s%s%s\n",
	       s.o.seed, s.o.seed, s.o.ops, s.o.partials,
	       s.o.cacheline ? ", cache-line granularity" : "",
	       s.o.brk ? ", BROKEN on purpose: " : "",
	       s.o.brk == BRK_COMMIT_FENCE ? "commit-fence" :
	       s.o.brk == BRK_INODE_FLUSH ? "inode-flush" : "");
	setup(&s);
	if (s.o.cacheline && !s.fs->r->cacheline)
		printf("daxfs_crashsim: note: cache-line granularity was "
		       "asked for but the mapping has page granularity\n");
	s.g.s = mix64(s.o.seed ^ 0x5eed);
	s.rg.s = mix64(s.o.seed ^ 0x3e3);
	wo = (struct wl_opts){ .seed = s.o.seed, .max_file = s.o.max_file,
			       .fsync_pct = s.o.fsync_pct };
	wl = wl_new(s.fs, &wo);

	take_model(&s, &s.cur);
	trace_attach(&s.tr, s.fs->r, &s.rt);
	for (s.op = 1; s.op <= s.o.ops; s.op++) {
		snprintf(s.prev_desc, sizeof(s.prev_desc), "%s", s.desc);
		model_free(&s.prev);
		s.prev = s.cur;
		memset(&s.cur, 0, sizeof(s.cur));
		if (rng_below(&s.rg, 1000) < s.o.remount_pct * 10)
			remount(&s, wl);
		else
			wl_step(wl, &s.prev, s.desc, sizeof(s.desc));
		take_model(&s, &s.cur);
		wl_versions(wl, &s.prev, &s.cur);
		s.cov.unsynced += s.cur.nvs;
		s.cov.orphans += wl_orphans(wl);
		if (s.o.verbose)
			printf("op %" PRIu64 ": %s (%zu events, %u unsynced)\n",
			       s.op, s.desc, s.tr.n, s.cur.nvs);
		replay(&s);
		if (s.mounted_img) {
			pm_absorb(s.pm, s.mounted_img);
			free(s.mounted_img);
			s.mounted_img = NULL;
		}
		if (s.op % 100 == 0 && !s.o.verbose)
			printf("  ... op %" PRIu64 ": %" PRIu64 " drains, %"
			       PRIu64 " images checked, %" PRIu64
			       " failures, %.0f s\n", s.op, s.drains,
			       s.checked, s.failures, now_s() - t0);
	}
	s.op--;

	/* after the last operation: what is durable, and everything */
	final_fail = s.failures;
	{
		struct overlay ov = { 0 };

		pm_variant(s.pm, V_ALL, &s.g, &ov);
		check_image(&s, &ov, &s.cur, &s.cur, false);
		pm_variant(s.pm, V_DURABLE, &s.g, &ov);
		check_image(&s, &ov, &s.cur, &s.cur, false);
		overlay_free(&ov);
	}
	final_fail = s.failures - final_fail;

	s.fs->r->tracer = NULL;
	if (s.tr.stray)
		printf("FAIL: %" PRIu64 " stores, flushes or drains happened "
		       "while dumping the live filesystem (a dump must not "
		       "change the region)\n", s.tr.stray);
	wl_free(wl);			/* lets go of kept references */
	if (fs_unmount(s.fs, true)) {
		printf("FAIL: unmounting the work region failed\n");
		s.tool_errors++;
	} else {
		struct sbuf why = { 0 };

		/* the work region itself, cleanly unmounted */
		if (fsck_image(work_path, &why, true, "of the work region")) {
			printf("FAIL: %s", why.s);
			s.failures++;
		}
		sb_free(&why);
	}
	model_free(&s.prev);
	model_free(&s.cur);
	pm_free(s.pm);
	munmap(s.scratch, s.o.size);

	printf("daxfs_crashsim: %" PRIu64 " ops, %" PRIu64 " drain points, %"
	       PRIu64 " crash images (%" PRIu64 " distinct checked), %" PRIu64
	       " failures%s; %.1f s (%.1f s checking)\n", s.o.ops, s.drains,
	       s.generated, s.checked, s.failures,
	       final_fail ? " (some after the last op)" : "",
	       now_s() - t0, s.t_check);
	printf("daxfs_crashsim: %" PRIu64 " remounts\n", s.remounts);
	printf("daxfs_crashsim: coverage (inode-states summed over the ops): "
	       "external extent arrays %" PRIu64 " (most extents %u), xattr "
	       "blocks %" PRIu64 ", multi-block directories %" PRIu64
	       ", symlinks with a block %" PRIu64 ", hard-linked files %"
	       PRIu64 ", unsynced files %" PRIu64 ", open orphans %" PRIu64
	       "; at most %u paths\n", s.cov.ext_array, s.cov.max_ext,
	       s.cov.xattr_block, s.cov.big_dir, s.cov.block_link,
	       s.cov.hard_link, s.cov.unsynced, s.cov.orphans,
	       s.cov.max_entries);
	if (s.o.brk)
		printf("daxfs_crashsim: --break dropped %" PRIu64 " events\n",
		       s.tr.dropped);
	trace_free(&s.tr);
	free(s.seen);
	free(s.cand);
	free(s.prev_w);
	if (s.failures || s.tail_live || s.tr.stray || s.tool_errors) {
		printf("daxfs_crashsim: FAILED (seed %" PRIu64 ")\n", s.o.seed);
		return 1;
	}
	printf("daxfs_crashsim: OK\n");
	return 0;
}
