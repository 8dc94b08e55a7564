/*
 * loadgen.c -- daxfs_loadgen: load for unbind tests, and the check that
 * nothing acknowledged was lost.
 *
 *   daxfs_loadgen --dir DIR --phase prepare|run|verify|hold [options]
 *
 * prepare  creates --files files of --size bytes in DIR, every 4 KiB block
 *          stamped with generation 1 (see loadgen.h), fsynced, and a
 *          manifest DIR/loadgen.manifest that the other phases read.
 * run      starts the workers (mmap, io_uring, rw, open) and runs until
 *          every worker has seen the failure an unbind causes, a signal
 *          (SIGTERM, SIGINT) or --duration; then prints a per-worker
 *          report and writes the acknowledged generation of every block to
 *          --state.  A watchdog calls an operation outstanding longer than
 *          --hang-timeout hung.
 * verify   reads every block back: each must be a valid stamp no older
 *          than the generation --state says was acknowledged.
 * hold     see hold.c.
 *
 * Exit status: 0 ok, 1 verification failed, a hang, or an error; 2 usage.
 * Nothing is written outside DIR except --state and --ready.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alive.h"
#include "ctl.h"
#include "loadgen.h"


static const char usage[] =
"Usage: daxfs_loadgen --dir DIR --phase prepare|run|verify|hold [options]\n"
"\n"
"  --files N            files to create (prepare; default 64)\n"
"  --size BYTES         bytes per file, K/M/G allowed (prepare; default 1M)\n"
"  --mmap-workers N     threads storing and loading through MAP_SHARED\n"
"                       mappings of the files, msync'ing (default 2)\n"
"  --uring-workers N    threads keeping io_uring reads, writes and fsyncs\n"
"                       in flight (default 1)\n"
"  --uring-depth N      operations each io_uring worker keeps in flight\n"
"                       (default 256)\n"
"  --rw-workers N       threads doing pread/pwrite/fsync (default 1)\n"
"  --open-workers N     threads opening and creating files (default 1)\n"
"  --duration S         stop after S seconds (default: when every worker\n"
"                       has seen the failure, or on SIGTERM/SIGINT)\n"
"  --hang-timeout S     an operation outstanding this long is a hang\n"
"                       (default 30)\n"
"  --state FILE         run: write acknowledged generations; verify: read\n"
"  --ready FILE         run: create FILE once every worker is under way\n"
"  --json               print one JSON object instead of text\n"
"  -h, --help           show this help\n"
"\n"
"Exit status: 0 ok, 1 verification failed, a hang or an error, 2 usage.\n";

static int usage_err(const char *what, const char *arg)
{
	fprintf(stderr, "daxfs_loadgen: %s%s%s; see 'daxfs_loadgen --help'\n",
		what, arg ? " " : "", arg ? arg : "");
	return 2;
}

uint64_t lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lg_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t lg_word(uint32_t f, uint32_t b, uint32_t i, uint32_t gen)
{
	uint64_t k = (uint64_t)f * 0x9e3779b97f4a7c15ull ^
		     ((uint64_t)b + 1) * 0xc2b2ae3d27d4eb4full ^
		     ((uint64_t)i + 1) * 0x165667b19e3779f9ull ^
		     (uint64_t)gen * 0xd6e8feb86659fd93ull;

	return (uint64_t)gen << 32 | (lg_rand(&k) >> 32);
}

void lg_fill(void *buf, uint32_t f, uint32_t b, uint32_t gen)
{
	uint64_t *w = buf;

	for (uint32_t i = 0; i < LG_WORDS; i++)
		w[i] = lg_word(f, b, i, gen);
}

/* lg_check -- invalid words in a block; min and max generation of the
 * valid ones */
unsigned lg_check(const void *buf, uint32_t f, uint32_t b, uint32_t *min_gen,
		  uint32_t *max_gen)
{
	const uint64_t *w = buf;
	unsigned bad = 0;

	*min_gen = UINT32_MAX;
	*max_gen = 0;
	for (uint32_t i = 0; i < LG_WORDS; i++) {
		uint32_t gen = (uint32_t)(w[i] >> 32);

		if (!gen || lg_word(f, b, i, gen) != w[i]) {
			bad++;
			continue;
		}
		if (gen < *min_gen)
			*min_gen = gen;
		if (gen > *max_gen)
			*max_gen = gen;
	}
	return bad;
}

void lg_path(const struct lg *lg, unsigned f, char *out, size_t len)
{
	snprintf(out, len, "%s/f%04u.dat", lg->o.dir, f);
}

bool lg_is_failure(int err)
{
	return err == EIO || err == ENXIO;
}

void lg_fail(struct lg_worker *w)
{
	uint64_t zero = 0;

	atomic_compare_exchange_strong(&w->first_fail_ns, &zero, lg_now());
	atomic_store(&w->failed, true);
}

void lg_count(struct lg_worker *w, int err)
{
	atomic_fetch_add(&w->ops, 1);
	if (!err) {
		atomic_fetch_add(&w->ok, 1);
		return;
	}
	if (err == EIO)
		atomic_fetch_add(&w->eio, 1);
	else if (err == ENXIO)
		atomic_fetch_add(&w->enxio, 1);
	else {
		atomic_fetch_add(&w->other, 1);
		atomic_store(&w->last_other, err);
	}
	if (lg_is_failure(err))
		lg_fail(w);
}

void lg_idle(struct lg_worker *w)
{
	uint64_t t = atomic_exchange(&w->busy_since, 0);

	if (t && lg_now() - t > atomic_load(&w->max_op_ns))
		atomic_store(&w->max_op_ns, lg_now() - t);
}

/* lg_wait_released -- poll the daemon until it reports the region
 * released (at most 60 s); false if it cannot be asked */
bool lg_wait_released(struct lg *lg)
{
	uint64_t end = lg_now() + 60000000000ull;
	struct timespec ts = { 0, 5000000 };

	if (lg->rootfd < 0)
		return true;	/* not a daxfs mount: probe right away */
	while (lg_now() < end) {
		struct daxfs_ctl_status st;

		if (ioctl(lg->rootfd, DAXFS_IOC_STATUS, &st))
			return false;
		if (st.state == GATE_RELEASED)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/*
 * lg_reads_probed, lg_wait_reads_probed -- write probes wait until every
 * worker is past its read probes.  A write(2) on FUSE puts its data in the
 * page cache, marked up to date, before the daemon answers; a read or a
 * page fault racing with a write that is about to fail can see that data,
 * and would count as a read that succeeded after the release.
 */
void lg_reads_probed(struct lg *lg)
{
	atomic_fetch_sub(&lg->reading, 1);
}

bool lg_wait_reads_probed(struct lg *lg)
{
	uint64_t end = lg_now() + 30000000000ull;
	struct timespec ts = { 0, 2000000 };

	while (atomic_load(&lg->reading)) {
		if (lg_now() > end)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/* find_root -- the daxfs mount root above dir, opened for status */
static int find_root(const char *dir)
{
	char p[PATH_MAX], parent[PATH_MAX];
	struct daxfs_ctl_status st;
	struct stat a, b;
	int fd;

	if (!realpath(dir, p) || stat(p, &a))
		return -1;
	while (strcmp(p, "/")) {
		snprintf(parent, sizeof(parent), "%s", p);
		dirname(parent);
		if (stat(parent, &b) || b.st_dev != a.st_dev)
			break;
		snprintf(p, sizeof(p), "%s", parent);
	}
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && ioctl(fd, DAXFS_IOC_STATUS, &st)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || !v)
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned *out, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "phase", required_argument, NULL, 'p' },
		{ "files", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "mmap-workers", required_argument, NULL, 'm' },
		{ "uring-workers", required_argument, NULL, 'u' },
		{ "uring-depth", required_argument, NULL, 'q' },
		{ "rw-workers", required_argument, NULL, 'r' },
		{ "open-workers", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 't' },
		{ "hang-timeout", required_argument, NULL, 'H' },
		{ "state", required_argument, NULL, 'S' },
		{ "ready", required_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->files = 64;
	o->size = 1 << 20;
	o->mmap_workers = 2;
	o->uring_workers = 1;
	o->uring_depth = 256;
	o->rw_workers = 1;
	o->open_workers = 1;
	o->hang_s = 30;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'd': o->dir = optarg; break;
		case 'p': o->phase = optarg; break;
		case 'S': o->state = optarg; break;
		case 'R': o->ready = optarg; break;
		case 'j': o->json = true; break;
		case 'h': fputs(usage, stdout); exit(0);
		case 's':
			if (parse_size(optarg, &o->size) ||
			    o->size % LG_BS || o->size > (1ull << 36))
				return usage_err("--size must be a positive "
					"multiple of 4096 up to 64G, not",
					optarg);
			break;
		case 'n': case 'm': case 'u': case 'q': case 'r': case 'o': {
			unsigned *v = c == 'n' ? &o->files : c == 'm' ?
				&o->mmap_workers : c == 'u' ? &o->uring_workers :
				c == 'q' ? &o->uring_depth : c == 'r' ?
				&o->rw_workers : &o->open_workers;

			if (parse_uint(optarg, v, c == 'q' ? 4096 : 100000))
				return usage_err("not a valid count:", optarg);
			break;
		}
		case 't': case 'H': {
			double v = strtod(optarg, &end);

			if (end == optarg || *end || v < 0 || v > 86400)
				return usage_err("not a number of seconds:",
						 optarg);
			*(c == 't' ? &o->duration : &o->hang_s) = v;
			break;
		}
		default:
			return usage_err("unknown or incomplete option",
					 argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_err("unexpected argument", argv[optind]);
	if (!o->dir)
		return usage_err("--dir is required", NULL);
	if (!o->phase || (strcmp(o->phase, "prepare") &&
			  strcmp(o->phase, "run") && strcmp(o->phase, "verify") &&
			  strcmp(o->phase, "hold")))
		return usage_err("--phase must be prepare, run, verify or "
				 "hold", NULL);
	if (!o->files || o->files > 100000)
		return usage_err("--files must be 1 to 100000", NULL);
	if (o->uring_depth < 4)
		return usage_err("--uring-depth must be at least 4", NULL);
	return 0;
}

/* manifest -- read (or with `write`, write) DIR/loadgen.manifest */
static int manifest(struct lg *lg, bool write)
{
	char path[PATH_MAX];
	unsigned files;
	unsigned long long size;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", lg->o.dir, LG_MANIFEST);
	f = fopen(path, write ? "w" : "r");
	if (!f) {
		fprintf(stderr, "daxfs_loadgen: %s: %s%s\n", path,
			strerror(errno), write ? "" :
			"; run --phase prepare first");
		return -1;
	}
	if (write) {
		fprintf(f, "daxfs-loadgen 1 files %u size %llu\n",
			lg->o.files, (unsigned long long)lg->o.size);
		ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	} else {
		ok = fscanf(f, "daxfs-loadgen 1 files %u size %llu", &files,
			    &size) == 2 && files && size && size % LG_BS == 0;
		lg->o.files = files;
		lg->o.size = size;
	}
	if (fclose(f))
		ok = 0;
	if (!ok) {
		fprintf(stderr, "daxfs_loadgen: %s: cannot %s it\n", path,
			write ? "write" : "parse");
		return -1;
	}
	lg->nfiles = lg->o.files;
	lg->fsize = lg->o.size;
	lg->bpf = (unsigned)(lg->fsize / LG_BS);
	return 0;
}

static int prepare(struct lg *lg)
{
	size_t chunk = 256 * LG_BS;
	char *buf = malloc(chunk), path[PATH_MAX];
	int dfd;

	if (!buf)
		return 1;
	if (mkdir(lg->o.dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "daxfs_loadgen: %s: %s\n", lg->o.dir,
			strerror(errno));
		free(buf);
		return 1;
	}
	lg->nfiles = lg->o.files;
	lg->fsize = lg->o.size;
	lg->bpf = (unsigned)(lg->fsize / LG_BS);
	for (unsigned f = 0; f < lg->nfiles; f++) {
		int fd;

		lg_path(lg, f, path, sizeof(path));
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			goto err;
		for (uint32_t b = 0; b < lg->bpf; b += 256) {
			uint32_t n = lg->bpf - b < 256 ? lg->bpf - b : 256;

			for (uint32_t k = 0; k < n; k++)
				lg_fill(buf + (size_t)k * LG_BS, f, b + k, 1);
			if (pwrite(fd, buf, (size_t)n * LG_BS,
				   (off_t)b * LG_BS) != (ssize_t)n * LG_BS) {
				close(fd);
				goto err;
			}
		}
		if (fsync(fd)) {
			close(fd);
			goto err;
		}
		close(fd);
	}
	free(buf);
	buf = NULL;
	/* a file the run never touches: after a remount its name is in no
	 * cache, so opening it makes the kernel send a LOOKUP (hold.c) */
	snprintf(path, sizeof(path), "%s/untouched", lg->o.dir);
	dfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (dfd < 0 || write(dfd, "untouched\n", 10) != 10 || fsync(dfd)) {
		if (dfd >= 0)
			close(dfd);
		goto err;
	}
	close(dfd);
	if (manifest(lg, true))
		return 1;
	dfd = open(lg->o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		fprintf(stderr, "daxfs_loadgen: fsync %s: %s\n", lg->o.dir,
			strerror(errno));
		return 1;
	}
	close(dfd);
	if (lg->o.json)
		printf("{\"phase\":\"prepare\",\"files\":%u,\"size\":%llu,"
		       "\"ok\":true}\n", lg->nfiles,
		       (unsigned long long)lg->fsize);
	else
		printf("prepared %u files of %llu bytes in %s (generation 1, "
		       "fsynced)\n", lg->nfiles, (unsigned long long)lg->fsize,
		       lg->o.dir);
	return 0;
err:
	fprintf(stderr, "daxfs_loadgen: %s: %s\n", path, strerror(errno));
	free(buf);
	return 1;
}

/* state_load -- acknowledged generations from --state (or 1 each) */
static int state_load(struct lg *lg)
{
	size_t n = (size_t)lg->nfiles * lg->bpf;
	unsigned files, f, b, gen;
	unsigned long long size;
	char line[128];
	FILE *fp;

	for (size_t g = 0; g < n; g++)
		lg->ack[g] = 1;		/* prepare fsynced generation 1 */
	if (!lg->o.state)
		return 0;
	fp = fopen(lg->o.state, "r");
	if (!fp)
		return errno == ENOENT && !strcmp(lg->o.phase, "run") ? 0 : -1;
	if (!fgets(line, sizeof(line), fp) || strncmp(line, LG_STATE_MAGIC,
						      strlen(LG_STATE_MAGIC)) ||
	    fscanf(fp, "files %u size %llu\n", &files, &size) != 2 ||
	    files != lg->nfiles || size != lg->fsize) {
		fclose(fp);
		errno = EINVAL;
		return -1;
	}
	while (fscanf(fp, "ack %u %u %u\n", &f, &b, &gen) == 3)
		if (f < lg->nfiles && b < lg->bpf)
			lg->ack[(size_t)f * lg->bpf + b] = gen;
	fclose(fp);
	return 0;
}

static int state_save(struct lg *lg)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int ok;

	if (!lg->o.state)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", lg->o.state);
	fp = fopen(tmp, "w");
	if (!fp)
		return -1;
	fprintf(fp, "%s\nfiles %u size %llu\n", LG_STATE_MAGIC, lg->nfiles,
		(unsigned long long)lg->fsize);
	for (unsigned f = 0; f < lg->nfiles; f++)
		for (unsigned b = 0; b < lg->bpf; b++) {
			uint32_t a = lg->ack[(size_t)f * lg->bpf + b];

			if (a > 1)
				fprintf(fp, "ack %u %u %u\n", f, b, a);
		}
	ok = fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	ok = fclose(fp) == 0 && ok;
	return ok && rename(tmp, lg->o.state) == 0 ? 0 : -1;
}

/* read_file -- the whole data file f, or NULL (errno set) */
static uint64_t *read_file(struct lg *lg, unsigned f)
{
	char path[PATH_MAX];
	uint64_t *buf = malloc(lg->fsize);
	struct stat st;
	int fd;

	lg_path(lg, f, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0)
		goto err;
	if (fstat(fd, &st))
		goto err;
	if ((uint64_t)st.st_size != lg->fsize) {
		errno = EFBIG;
		goto err;
	}
	for (uint64_t off = 0; off < lg->fsize;) {
		ssize_t r = pread(fd, (char *)buf + off, lg->fsize - off,
				  (off_t)off);

		if (r <= 0) {
			if (r == 0)
				errno = ENODATA;
			goto err;
		}
		off += (uint64_t)r;
	}
	close(fd);
	return buf;
err:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int verify(struct lg *lg)
{
	uint64_t invalid = 0, stale = 0, acked = 0, unreadable = 0;
	char examples[1024] = "";
	size_t used = 0;

	if (state_load(lg)) {
		fprintf(stderr, "daxfs_loadgen: %s: cannot read the state: "
			"%s\n", lg->o.state, strerror(errno));
		return 1;
	}
	for (unsigned f = 0; f < lg->nfiles; f++) {
		uint64_t *buf = read_file(lg, f);

		if (!buf) {
			unreadable++;
			if (used + 100 < sizeof(examples))
				used += (size_t)snprintf(examples + used,
					sizeof(examples) - used, "%sfile %u: "
					"%s", used ? "; " : "", f,
					strerror(errno));
			continue;
		}
		for (unsigned b = 0; b < lg->bpf; b++) {
			uint32_t lo, hi, want = lg->ack[(size_t)f * lg->bpf + b];
			unsigned bad = lg_check(buf + (size_t)b * LG_WORDS, f, b,
						&lo, &hi);
			const char *why = bad ? "invalid stamp" :
					  lo < want ? "older than acknowledged" :
					  NULL;

			acked += want > 1;
			invalid += bad != 0;
			stale += !bad && lo < want;
			if (why && used + 100 < sizeof(examples))
				used += (size_t)snprintf(examples + used,
					sizeof(examples) - used, "%sfile %u "
					"block %u: %s (%u bad words, generations "
					"%u..%u, acknowledged %u)",
					used ? "; " : "", f, b, why, bad,
					bad == LG_WORDS ? 0 : lo, hi, want);
		}
		free(buf);
	}
	bool ok = !invalid && !stale && !unreadable;

	if (lg->o.json)
		printf("{\"phase\":\"verify\",\"ok\":%s,\"files\":%u,"
		       "\"blocks\":%llu,\"acknowledged_blocks\":%llu,"
		       "\"invalid_blocks\":%llu,\"stale_blocks\":%llu,"
		       "\"unreadable_files\":%llu,\"examples\":\"%s\"}\n",
		       ok ? "true" : "false", lg->nfiles,
		       (unsigned long long)lg->nfiles * lg->bpf,
		       (unsigned long long)acked, (unsigned long long)invalid,
		       (unsigned long long)stale,
		       (unsigned long long)unreadable, examples);
	else
		printf("verify %s: %u files, %llu blocks (%llu acknowledged "
		       "after prepare): %llu invalid, %llu older than "
		       "acknowledged, %llu files unreadable%s%s\n",
		       ok ? "ok" : "FAILED", lg->nfiles,
		       (unsigned long long)lg->nfiles * lg->bpf,
		       (unsigned long long)acked, (unsigned long long)invalid,
		       (unsigned long long)stale,
		       (unsigned long long)unreadable, used ? "\n  " : "",
		       examples);
	return ok ? 0 : 1;
}

/* scan_start -- before run: where every block is now */
static uint64_t scan_start(struct lg *lg)
{
	uint64_t invalid = 0;

	for (unsigned f = 0; f < lg->nfiles; f++) {
		uint64_t *buf = read_file(lg, f);

		for (unsigned b = 0; b < lg->bpf; b++) {
			size_t g = (size_t)f * lg->bpf + b;
			uint32_t lo, hi;

			if (!buf || lg_check(buf + (size_t)b * LG_WORDS, f, b,
					     &lo, &hi)) {
				invalid++;
				hi = 0;
			}
			lg->cur[g] = hi > lg->ack[g] ? hi : lg->ack[g];
		}
		free(buf);
	}
	return invalid;
}

int main(int argc, char **argv)
{
	static struct lg lg;	/* static: reachable for LeakSanitizer */
	int ret;

	memset(&lg, 0, sizeof(lg));
	lg.rootfd = -1;
	ret = parse_args(argc, argv, &lg.o);
	if (ret)
		return ret;
	lg_guard_install();
	if (!strcmp(lg.o.phase, "prepare"))
		return prepare(&lg);
	if (manifest(&lg, false))
		return 1;
	if (!strcmp(lg.o.phase, "hold"))
		return lg_hold(&lg);
	lg.cur = calloc((size_t)lg.nfiles * lg.bpf, sizeof(uint32_t));
	lg.ack = calloc((size_t)lg.nfiles * lg.bpf, sizeof(uint32_t));
	if (!lg.cur || !lg.ack)
		return 1;
	if (!strcmp(lg.o.phase, "verify"))
		return verify(&lg);
	if (state_load(&lg)) {
		fprintf(stderr, "daxfs_loadgen: %s: cannot read the state: "
			"%s\n", lg.o.state, strerror(errno));
		return 1;
	}
	if (scan_start(&lg))
		fprintf(stderr, "daxfs_loadgen: warning: some blocks hold no "
			"valid stamp before the run\n");
	lg.rootfd = find_root(lg.o.dir);
	if (lg.rootfd < 0)
		fprintf(stderr, "daxfs_loadgen: note: %s is not on a daxfs "
			"mount; probes after a failure will not wait for the "
			"release\n", lg.o.dir);
	ret = lg_run(&lg);
	if (state_save(&lg))
		fprintf(stderr, "daxfs_loadgen: %s: cannot write the state: "
			"%s\n", lg.o.state, strerror(errno));
	if (atomic_load(&lg.hung)) {
		/* a worker is stuck in a system call: do not wait for it */
		fflush(stdout);
		_exit(1);
	}
	return ret;
}
