/*
 * mkfiles.c -- many files, fast, for tests/test_limits.py: Python's
 * per-call overhead would dominate a million creates.
 *
 *   daxfs_mkfiles create DIR N [PER_DIR]   create N empty files
 *   daxfs_mkfiles count DIR                count entries, recursively
 *   daxfs_mkfiles remove DIR N [PER_DIR]   unlink what create made
 *
 * Files are DIR/f0000000.. or, with PER_DIR, DIR/d0000/f0000000.. with
 * PER_DIR files in each subdirectory.  Prints one JSON object: the count
 * done, the seconds it took, and the errno that stopped it (0 if none).
 * Exits 0 when everything was done, 1 when an error stopped it, 2 on
 * usage errors.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int report(const char *what, unsigned long done, double t0, int err)
{
	printf("{\"op\": \"%s\", \"done\": %lu, \"seconds\": %.3f, "
	       "\"errno\": %d, \"error\": \"%s\"}\n", what, done, now() - t0,
	       err, err ? strerror(err) : "");
	return err ? 1 : 0;
}

/* dir_for -- the directory descriptor for file k (opening, creating) */
static int dir_for(int top, unsigned long k, unsigned long per, int *cur,
		   unsigned long *cur_idx, int create)
{
	char name[32];
	unsigned long d;

	if (!per)
		return top;
	d = k / per;
	if (*cur >= 0 && *cur_idx == d)
		return *cur;
	if (*cur >= 0)
		close(*cur);
	snprintf(name, sizeof(name), "d%04lu", d);
	if (create && mkdirat(top, name, 0755) && errno != EEXIST)
		return -1;
	*cur = openat(top, name, O_RDONLY | O_DIRECTORY);
	*cur_idx = d;
	return *cur;
}

static int create(const char *dir, unsigned long n, unsigned long per)
{
	int top = open(dir, O_RDONLY | O_DIRECTORY), cur = -1;
	unsigned long k, cur_idx = 0;
	double t0 = now();
	char name[32];
	int err = 0;

	if (top < 0)
		return report("create", 0, t0, errno);
	for (k = 0; k < n; k++) {
		int d = dir_for(top, k, per, &cur, &cur_idx, 1), fd;

		if (d < 0) {
			err = errno;
			break;
		}
		snprintf(name, sizeof(name), "f%07lu", k);
		fd = openat(d, name, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0) {
			err = errno;
			break;
		}
		close(fd);
	}
	return report("create", k, t0, err);
}

static int remove_all(const char *dir, unsigned long n, unsigned long per)
{
	int top = open(dir, O_RDONLY | O_DIRECTORY), cur = -1;
	unsigned long k, cur_idx = 0;
	double t0 = now();
	char name[32];
	int err = 0;

	if (top < 0)
		return report("remove", 0, t0, errno);
	for (k = 0; k < n; k++) {
		int d = dir_for(top, k, per, &cur, &cur_idx, 0);

		if (d < 0) {
			err = errno;
			break;
		}
		snprintf(name, sizeof(name), "f%07lu", k);
		if (unlinkat(d, name, 0)) {
			err = errno;
			break;
		}
		if (per && (k + 1) % per == 0) {
			close(cur);
			cur = -1;
			snprintf(name, sizeof(name), "d%04lu", k / per);
			if (unlinkat(top, name, AT_REMOVEDIR)) {
				err = errno;
				break;
			}
		}
	}
	return report("remove", k, t0, err);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* count_in -- entries under directory fd (closed here), recursively */
static long count_in(int fd, int *err)
{
	/* one buffer per level: the loop below recurses mid-buffer */
	uint64_t *buf = malloc(1 << 16);
	long total = 0;

	if (!buf) {
		*err = ENOMEM;
		close(fd);
		return 0;
	}

	for (;;) {
		long nread = syscall(SYS_getdents64, fd, buf, 1 << 16);

		if (nread < 0) {
			*err = errno;
			break;
		}
		if (nread == 0)
			break;
		for (long pos = 0; pos < nread;) {
			struct linux_dirent64 *d = (void *)((char *)buf + pos);

			pos += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			total++;
			if (d->d_type == DT_DIR) {
				int sub = openat(fd, d->d_name,
						 O_RDONLY | O_DIRECTORY);

				if (sub < 0) {
					*err = errno;
					continue;
				}
				total += count_in(sub, err);
			}
		}
	}
	free(buf);
	close(fd);
	return total;
}

int main(int argc, char **argv)
{
	unsigned long n = 0, per = 0;

	if (argc >= 4) {
		n = strtoul(argv[3], NULL, 0);
		per = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "create"))
		return create(argv[2], n, per);
	if (argc >= 4 && !strcmp(argv[1], "remove"))
		return remove_all(argv[2], n, per);
	if (argc == 3 && !strcmp(argv[1], "count")) {
		double t0 = now();
		int err = 0, fd = open(argv[2], O_RDONLY | O_DIRECTORY);
		long c = fd < 0 ? 0 : count_in(fd, &err);

		return report("count", (unsigned long)c, t0,
			      fd < 0 ? errno : err);
	}
	fprintf(stderr, "usage: daxfs_mkfiles create|remove DIR N [PER_DIR] "
		"| count DIR\n");
	return 2;
}
