/*
 * mmapbench.c -- the workloads of bench/run that fio does not cover:
 * shared mappings, metadata phases, and the load held across an unbind.
 *
 *   mmapbench seqread FILE               read all of FILE through a
 *                                        MAP_SHARED mapping
 *   mmapbench randread FILE SECONDS      4 KiB copies out of random pages
 *   mmapbench randwrite FILE SECONDS     4 KiB stores into random pages,
 *                                        then msync(MS_SYNC) (timed)
 *   mmapbench meta DIR N [--drop]        create, stat, readdir, unlink N
 *                                        files; --drop empties the kernel's
 *                                        caches before the stat phase
 *   mmapbench create DIR N               create N empty files and keep them
 *   mmapbench unbindload DIR N           N files, each mapped MAP_SHARED
 *                                        with a dirtied page, and N reader
 *                                        threads issuing O_DIRECT reads of
 *                                        N other files;
 *                                        prints "ready" once all are going
 *                                        and exits when the reads fail
 *
 * Each command prints one line of JSON on stdout and exits 0, or prints a
 * one-line reason on stderr and exits 1.  It measures; it never judges.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define CHUNK (64u << 10)	/* seqread copies this much at a time */
#define MiB (1u << 20)

static const char *prog = "mmapbench";

static void die(const char *what, const char *arg, int err)
{
	fprintf(stderr, "%s: %s%s%s%s%s\n", prog, what, arg ? " " : "",
		arg ? arg : "", err ? ": " : "", err ? strerror(err) : "");
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* rng_next -- xorshift64*, enough to scatter page numbers */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* map_file -- map all of path MAP_SHARED; returns the length in *len */
static char *map_file(const char *path, bool writable, size_t *len)
{
	struct stat st;
	int fd = open(path, writable ? O_RDWR : O_RDONLY);
	char *p;

	if (fd < 0)
		die("cannot open", path, errno);
	if (fstat(fd, &st))
		die("cannot stat", path, errno);
	if (st.st_size < (off_t)PAGE)
		die("file is smaller than a page:", path, 0);
	*len = (size_t)st.st_size & ~(size_t)(PAGE - 1);
	p = mmap(NULL, *len, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("cannot map", path, errno);
	close(fd);
	return p;
}

/* cmd_seqread -- stream the whole mapping through a small buffer */
static int cmd_seqread(const char *path)
{
	static char buf[CHUNK];
	size_t len, off;
	char *p = map_file(path, false, &len);
	double t0 = now(), t;

	for (off = 0; off + CHUNK <= len; off += CHUNK) {
		memcpy(buf, p + off, CHUNK);
		__asm__ volatile("" : : "r"(buf) : "memory");
	}
	if (off < len)
		memcpy(buf, p + off, len - off);
	t = now() - t0;
	munmap(p, len);
	printf("{\"bytes\":%zu,\"secs\":%.6f,\"gbps\":%.4f}\n", len, t,
	       (double)len / t / 1e9);
	return 0;
}

/* cmd_random -- random 4 KiB reads or writes for a while */
static int cmd_random(const char *path, double secs, bool write)
{
	static char buf[PAGE];
	size_t len, pages;
	char *p = map_file(path, write, &len);
	uint64_t seed = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid(), ops = 0;
	double t0 = now(), tsync = 0, t;

	memset(buf, 0x5a, sizeof(buf));
	pages = len / PAGE;
	for (;;) {
		for (int k = 0; k < 256; k++) {
			char *pg = p + (rng_next(&seed) % pages) * PAGE;

			if (write) {
				buf[0] = (char)ops;
				memcpy(pg, buf, PAGE);
			} else {
				memcpy(buf, pg, PAGE);
				__asm__ volatile("" : : "r"(buf) : "memory");
			}
			ops++;
		}
		if (now() - t0 >= secs)
			break;
	}
	if (write) {
		double ts = now();

		if (msync(p, len, MS_SYNC))
			die("msync failed on", path, errno);
		tsync = now() - ts;
	}
	t = now() - t0;
	munmap(p, len);
	printf("{\"ops\":%llu,\"secs\":%.6f,\"msync_secs\":%.6f,"
	       "\"ops_per_s\":%.1f}\n", (unsigned long long)ops, t, tsync,
	       (double)ops / t);
	return 0;
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd < 0 || write(fd, "3\n", 2) != 2)
		die("cannot write /proc/sys/vm/drop_caches (root?)", NULL,
		    errno);
	close(fd);
}

static void name_of(char *out, size_t n, const char *dir, unsigned long k)
{
	snprintf(out, n, "%s/f%07lu", dir, k);
}

/* phase_create -- N empty files, opened with O_CREAT|O_EXCL and closed */
static double phase_create(const char *dir, unsigned long n)
{
	char path[4096];
	double t0 = now();

	for (unsigned long k = 0; k < n; k++) {
		int fd;

		name_of(path, sizeof(path), dir, k);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die("cannot create", path, errno);
		close(fd);
	}
	return now() - t0;
}

static int cmd_meta(const char *dir, unsigned long n, bool drop)
{
	char path[4096];
	struct stat st;
	double tc, ts, tr, tu, t0;
	unsigned long entries = 0, passes = 0;

	if (mkdir(dir, 0755) && errno != EEXIST)
		die("cannot make", dir, errno);
	tc = phase_create(dir, n);
	if (drop)
		drop_caches();

	t0 = now();
	for (unsigned long k = 0; k < n; k++) {
		name_of(path, sizeof(path), dir, k);
		if (stat(path, &st))
			die("cannot stat", path, errno);
	}
	ts = now() - t0;

	/* one pass of 10,000 names is a few ms: repeat for a stabler rate */
	t0 = now();
	do {
		DIR *dp = opendir(dir);
		struct dirent *de;

		if (!dp)
			die("cannot open", dir, errno);
		while ((de = readdir(dp)))
			entries++;
		closedir(dp);
		passes++;
		tr = now() - t0;
	} while (passes < 3 || tr < 0.25);

	t0 = now();
	for (unsigned long k = 0; k < n; k++) {
		name_of(path, sizeof(path), dir, k);
		if (unlink(path))
			die("cannot unlink", path, errno);
	}
	tu = now() - t0;
	rmdir(dir);
	printf("{\"files\":%lu,\"create\":%.1f,\"stat\":%.1f,\"readdir\":%.1f,"
	       "\"unlink\":%.1f,\"readdir_passes\":%lu}\n", n, n / tc, n / ts,
	       entries / tr, n / tu, passes);
	return 0;
}

static int cmd_create(const char *dir, unsigned long n)
{
	double t;

	if (mkdir(dir, 0755) && errno != EEXIST)
		die("cannot make", dir, errno);
	t = phase_create(dir, n);
	printf("{\"files\":%lu,\"secs\":%.3f,\"create\":%.1f}\n", n, t, n / t);
	return 0;
}

/*
 * The unbind load.  N mapped files of 1 MiB, each with one dirty page in a
 * MAP_SHARED mapping, and N other files of 1 MiB that N threads re-read
 * with O_DIRECT, so that every read is a request to the filesystem.  The
 * readers use files of their own because a direct read on FUSE writes back
 * the dirty pages of its file first.
 */
struct reader {
	pthread_t tid;
	int fd;
	atomic_ulong reads;
	atomic_int err;		/* errno that ended the loop */
};

static atomic_bool stop;

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	void *buf;

	if (posix_memalign(&buf, PAGE, MiB)) {
		atomic_store(&r->err, ENOMEM);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		ssize_t got = pread(r->fd, buf, MiB, 0);

		if (got < 0) {
			atomic_store(&r->err, errno);
			break;
		}
		atomic_fetch_add(&r->reads, 1);
	}
	free(buf);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

static int cmd_unbindload(const char *dir, unsigned long n)
{
	struct reader *rd = calloc(n, sizeof(*rd));
	char **maps = calloc(n, sizeof(*maps));
	char path[4096], *data = malloc(MiB);
	unsigned long reads = 0, errs = 0, ended = 0;
	char errnames[256] = "";
	double t0;

	if (!rd || !maps || !data)
		die("out of memory", NULL, ENOMEM);
	memset(data, 0xa5, MiB);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (mkdir(dir, 0755) && errno != EEXIST)
		die("cannot make", dir, errno);
	for (unsigned long k = 0; k < n; k++) {
		int fd;

		snprintf(path, sizeof(path), "%s/m%04lu", dir, k);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die("cannot create", path, errno);
		if (pwrite(fd, data, MiB, 0) != (ssize_t)MiB)
			die("cannot write", path, errno);
		maps[k] = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, 0);
		if (maps[k] == MAP_FAILED)
			die("cannot map", path, errno);
		close(fd);

		snprintf(path, sizeof(path), "%s/r%04lu", dir, k);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || pwrite(fd, data, MiB, 0) != (ssize_t)MiB)
			die("cannot write", path, errno);
		close(fd);
		rd[k].fd = open(path, O_RDONLY | O_DIRECT);
		if (rd[k].fd < 0)
			die("cannot open O_DIRECT", path, errno);
	}
	for (unsigned long k = 0; k < n; k++)
		if (pthread_create(&rd[k].tid, NULL, reader_main, &rd[k]))
			die("cannot start a reader thread", NULL, EAGAIN);
	/* ready once every reader has finished a read: all are looping */
	t0 = now();
	for (unsigned long k = 0; k < n; k++)
		while (atomic_load(&rd[k].reads) == 0 &&
		       atomic_load(&rd[k].err) == 0) {
			if (now() - t0 > 10)
				die("readers did not start within 10 s", NULL,
				    0);
			usleep(1000);
		}
	/* dirty one page of each mapping; closing a FUSE file writes its
	 * dirty pages back, so this comes after the last close */
	for (unsigned long k = 0; k < n; k++)
		maps[k][PAGE * (k % (MiB / PAGE))] = 1;
	printf("ready\n");
	fflush(stdout);

	for (unsigned long k = 0; k < n; k++) {
		pthread_join(rd[k].tid, NULL);
		reads += atomic_load(&rd[k].reads);
		if (atomic_load(&rd[k].err)) {
			const char *name = strerrorname_np(rd[k].err);

			errs++;
			if (!name)
				name = "E?";
			if (!strstr(errnames, name) && strlen(errnames) < 200) {
				strcat(errnames, errnames[0] ? "," : "");
				strcat(errnames, name);
			}
		} else {
			ended++;
		}
		close(rd[k].fd);
	}
	/* the mappings are revoked: unmap them without touching them */
	for (unsigned long k = 0; k < n; k++)
		munmap(maps[k], MiB);
	printf("{\"files\":%lu,\"reads\":%lu,\"readers_failed\":%lu,"
	       "\"readers_stopped\":%lu,\"errors\":\"%s\"}\n", n, reads, errs,
	       ended, errnames);
	free(rd);
	free(maps);
	free(data);
	return 0;
}

static unsigned long count_arg(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0 || v > 10000000)
		die("not a count:", s, 0);
	return v;
}

static double secs_arg(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v <= 0 || v > 3600)
		die("not a number of seconds:", s, 0);
	return v;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "seqread") && argc == 3)
		return cmd_seqread(argv[2]);
	if (!strcmp(cmd, "randread") && argc == 4)
		return cmd_random(argv[2], secs_arg(argv[3]), false);
	if (!strcmp(cmd, "randwrite") && argc == 4)
		return cmd_random(argv[2], secs_arg(argv[3]), true);
	if (!strcmp(cmd, "meta") && (argc == 4 || argc == 5)) {
		bool drop = argc == 5 && !strcmp(argv[4], "--drop");

		if (argc == 5 && !drop)
			die("unknown option", argv[4], 0);
		return cmd_meta(argv[2], count_arg(argv[3]), drop);
	}
	if (!strcmp(cmd, "create") && argc == 4)
		return cmd_create(argv[2], count_arg(argv[3]));
	if (!strcmp(cmd, "unbindload") && argc == 4)
		return cmd_unbindload(argv[2], count_arg(argv[3]));
	fprintf(stderr, "usage: %s seqread FILE | randread FILE SECONDS | "
		"randwrite FILE SECONDS | meta DIR N [--drop] | "
		"create DIR N | unbindload DIR N\n", prog);
	return 2;
}
