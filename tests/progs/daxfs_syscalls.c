/*
 * daxfs_syscalls -- syscall-level checks on a mounted daxfs that Python
 * cannot express directly (UTIME_OMIT, getxattr into a short buffer, the
 * raw d_type of readdir).  Driven from tests/test_ops.py.
 *
 *   daxfs_syscalls utimens FILE     utimensat with explicit times,
 *                                   UTIME_NOW and UTIME_OMIT
 *   daxfs_syscalls xattr-erange FILE
 *                                   getxattr/listxattr into a buffer that
 *                                   is too small give ERANGE
 *   daxfs_syscalls ls DIR           every entry readdir returns, one per
 *                                   line: NAME<TAB>D_TYPE<TAB>D_INO
 *   daxfs_syscalls seekdir DIR      telldir/seekdir positions survive
 *                                   unlinks around them (removes entries)
 *
 * Exit status: 0 pass, 1 fail (the reason on stderr), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

static int ts_eq(struct timespec a, time_t sec, long nsec)
{
	return a.tv_sec == sec && a.tv_nsec == nsec;
}

/* near_now -- is t within a few seconds of the clock? */
static int near_now(struct timespec t)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return t.tv_sec >= now.tv_sec - 5 && t.tv_sec <= now.tv_sec + 1;
}

static int set_times(int dirfd, const char *path, long a_sec, long a_nsec,
		     long m_sec, long m_nsec)
{
	struct timespec ts[2] = {
		{ a_sec, a_nsec },
		{ m_sec, m_nsec },
	};

	return utimensat(dirfd, path, ts, 0);
}

static int stat_of(const char *path, struct stat *st)
{
	if (stat(path, st)) {
		fail("stat %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* utimens -- explicit times, then each combination of NOW and OMIT */
static int cmd_utimens(const char *path)
{
	struct stat st, before;
	int fd;

	if (set_times(AT_FDCWD, path, 1000, 111, 2000, 222))
		return fail("utimensat explicit: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!ts_eq(st.st_atim, 1000, 111) || !ts_eq(st.st_mtim, 2000, 222))
		fail("explicit: atime %ld.%09ld mtime %ld.%09ld",
		     (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
		     (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

	/* atime omitted: only mtime changes, ctime moves to now */
	before = st;
	if (set_times(AT_FDCWD, path, 0, UTIME_OMIT, 3000, 333))
		return fail("utimensat OMIT,explicit: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!ts_eq(st.st_atim, 1000, 111))
		fail("atime OMIT changed atime to %ld.%09ld",
		     (long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	if (!ts_eq(st.st_mtim, 3000, 333))
		fail("atime OMIT: mtime %ld.%09ld, want 3000.000000333",
		     (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (!near_now(st.st_ctim))
		fail("a time change did not set ctime to now (%ld)",
		     (long)st.st_ctim.tv_sec);
	(void)before;

	/* mtime omitted, through a file descriptor (futimens) */
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("open %s: %s", path, strerror(errno)), 1;
	{
		struct timespec ts[2] = { { 4000, 444 }, { 0, UTIME_OMIT } };

		if (futimens(fd, ts))
			fail("futimens explicit,OMIT: %s", strerror(errno));
	}
	if (fstat(fd, &st))
		return fail("fstat: %s", strerror(errno)), 1;
	if (!ts_eq(st.st_atim, 4000, 444) || !ts_eq(st.st_mtim, 3000, 333))
		fail("mtime OMIT: atime %ld.%09ld mtime %ld.%09ld",
		     (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
		     (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	close(fd);

	/* NOW for one, OMIT for the other */
	if (set_times(AT_FDCWD, path, 0, UTIME_NOW, 0, UTIME_OMIT))
		return fail("utimensat NOW,OMIT: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!near_now(st.st_atim))
		fail("atime NOW gave %ld", (long)st.st_atim.tv_sec);
	if (!ts_eq(st.st_mtim, 3000, 333))
		fail("mtime OMIT (with atime NOW) changed mtime to %ld.%09ld",
		     (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

	if (set_times(AT_FDCWD, path, 5000, 555, 0, UTIME_NOW))
		return fail("utimensat explicit,NOW: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!ts_eq(st.st_atim, 5000, 555))
		fail("atime explicit (with mtime NOW): %ld.%09ld",
		     (long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	if (!near_now(st.st_mtim))
		fail("mtime NOW gave %ld", (long)st.st_mtim.tv_sec);

	/* both omitted: nothing changes, not even ctime */
	before = st;
	usleep(20000);
	if (set_times(AT_FDCWD, path, 0, UTIME_OMIT, 0, UTIME_OMIT))
		return fail("utimensat OMIT,OMIT: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!ts_eq(st.st_atim, before.st_atim.tv_sec,
		   before.st_atim.tv_nsec) ||
	    !ts_eq(st.st_mtim, before.st_mtim.tv_sec,
		   before.st_mtim.tv_nsec) ||
	    !ts_eq(st.st_ctim, before.st_ctim.tv_sec,
		   before.st_ctim.tv_nsec))
		fail("OMIT,OMIT changed a time");

	/* NULL times: both now */
	if (utimensat(AT_FDCWD, path, NULL, 0))
		return fail("utimensat NULL: %s", strerror(errno)), 1;
	if (stat_of(path, &st))
		return 1;
	if (!near_now(st.st_atim) || !near_now(st.st_mtim))
		fail("utimensat NULL: atime %ld mtime %ld",
		     (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
	return failures ? 1 : 0;
}

/* xattr-erange -- short buffers give ERANGE, size 0 gives the size */
static int cmd_xattr_erange(const char *path)
{
	static const char val[] = "0123456789";
	char small[4], big[256];
	ssize_t n;

	if (setxattr(path, "user.erange", val, 10, 0))
		return fail("setxattr: %s", strerror(errno)), 1;
	if (setxattr(path, "user.second", "x", 1, 0))
		return fail("setxattr: %s", strerror(errno)), 1;
	n = getxattr(path, "user.erange", NULL, 0);
	if (n != 10)
		fail("getxattr size probe: %zd (%s), want 10", n,
		     n < 0 ? strerror(errno) : "");
	errno = 0;
	n = getxattr(path, "user.erange", small, sizeof(small));
	if (n != -1 || errno != ERANGE)
		fail("getxattr into 4 bytes: %zd (%s), want ERANGE", n,
		     strerror(errno));
	n = getxattr(path, "user.erange", big, 10);
	if (n != 10 || memcmp(big, val, 10))
		fail("getxattr into exactly 10 bytes: %zd", n);
	/* "user.erange\0user.second\0" is 24 bytes */
	n = listxattr(path, NULL, 0);
	if (n != 24)
		fail("listxattr size probe: %zd, want 24", n);
	errno = 0;
	n = listxattr(path, small, sizeof(small));
	if (n != -1 || errno != ERANGE)
		fail("listxattr into 4 bytes: %zd (%s), want ERANGE", n,
		     strerror(errno));
	n = listxattr(path, big, 24);
	if (n != 24)
		fail("listxattr into exactly 24 bytes: %zd (%s)", n,
		     n < 0 ? strerror(errno) : "");
	return failures ? 1 : 0;
}

/* ls -- what readdir returns, unfiltered */
static int cmd_ls(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return fail("opendir %s: %s", path, strerror(errno)), 1;
	errno = 0;
	while ((de = readdir(d)))
		printf("%s\t%u\t%llu\n", de->d_name, (unsigned)de->d_type,
		       (unsigned long long)de->d_ino);
	if (errno)
		fail("readdir %s: %s", path, strerror(errno));
	closedir(d);
	return failures ? 1 : 0;
}

/*
 * seekdir -- readdir positions stay valid while entries come and go: list
 * DIR remembering telldir() before each entry, remove every entry before
 * the middle and every fifth after it, seekdir() back to the middle and
 * read on: exactly the surviving entries from the middle on come back.
 */
static int cmd_seekdir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **names = NULL;
	long *pos = NULL;
	size_t n = 0, cap = 0, mid, k, got;
	int dfd;

	if (!d)
		return fail("opendir %s: %s", path, strerror(errno)), 1;
	dfd = dirfd(d);
	for (;;) {
		long p = telldir(d);

		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			pos = realloc(pos, cap * sizeof(*pos));
			if (!names || !pos)
				return fail("out of memory"), 1;
		}
		names[n] = strdup(de->d_name);
		pos[n++] = p;
	}
	if (errno)
		return fail("readdir: %s", strerror(errno)), 1;
	if (n < 20)
		return fail("only %zu entries in %s", n, path), 1;
	mid = n / 2;
	for (k = 0; k < n; k++) {
		if (k < mid || (k > mid && k % 5 == 0)) {
			if (unlinkat(dfd, names[k], 0))
				return fail("unlink %s: %s", names[k],
					    strerror(errno)), 1;
			free(names[k]);
			names[k] = NULL;
		}
	}
	seekdir(d, pos[mid]);
	k = mid;
	got = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		while (k < n && !names[k])
			k++;
		if (k >= n) {
			fail("after seekdir: extra entry %s", de->d_name);
			break;
		}
		if (strcmp(de->d_name, names[k])) {
			fail("after seekdir: %s where %s was expected",
			     de->d_name, names[k]);
			break;
		}
		k++;
		got++;
	}
	while (k < n && !names[k])
		k++;
	if (k != n)
		fail("after seekdir: stopped early, %s missing", names[k]);
	/* rewinddir: exactly the survivors */
	rewinddir(d);
	got = 0;
	while ((de = readdir(d)))
		got++;
	for (k = 0, cap = 0; k < n; k++)
		cap += names[k] != NULL;
	if (got != cap + 2)
		fail("after rewinddir: %zu entries, want %zu", got, cap + 2);
	for (k = 0; k < n; k++)
		free(names[k]);
	free(names);
	free(pos);
	closedir(d);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "utimens"))
		return cmd_utimens(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "xattr-erange"))
		return cmd_xattr_erange(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "ls"))
		return cmd_ls(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "seekdir"))
		return cmd_seekdir(argv[2]);
	fprintf(stderr, "usage: daxfs_syscalls "
		"utimens|xattr-erange|ls|seekdir PATH\n");
	return 2;
}
