/*
 * hold.c -- daxfs_loadgen --phase hold: the direct check of what an
 * application sees after an unbind.
 *
 * Before the unbind it opens the first data file, maps it MAP_SHARED and
 * reads every page (so the kernel holds them mapped), prints "ready" and
 * waits for a line (or end of file) on standard input.  Then, the caller
 * having unbound the region, it checks, each on its own:
 *   a load from the mapping raises SIGBUS; so does a store;
 *   read(2) and write(2) on the descriptor opened before fail with EIO;
 *   open(2) of an existing file fails with ENXIO, both for a name the
 *   kernel caches and for one it must look up (DIR/untouched, which only
 *   prepare touched: run the hold phase after a remount); a create fails
 *   with ENXIO.
 * Exit 0 when every check passed, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loadgen.h"

struct check {
	const char *name, *want;
	char got[64];
};

static bool touch(volatile uint64_t *p, bool store)
{
	sigjmp_buf jb;
	volatile bool ok = false;

	if (sigsetjmp(jb, 1) == 0) {
		lg_guard_jb = &jb;
		if (store)
			p[1] = p[0];
		else
			(void)p[0];
		ok = true;
	}
	lg_guard_jb = NULL;
	return ok;
}

static void errname(char *out, size_t len, int r, int e)
{
	if (r >= 0)
		snprintf(out, len, "success");
	else
		snprintf(out, len, "%s", e == EIO ? "EIO" : e == ENXIO ?
			 "ENXIO" : e == ENOENT ? "ENOENT" : strerror(e));
}

static void open_check(struct check *c, const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	errname(c->got, sizeof(c->got), fd, errno);
	if (fd >= 0) {
		close(fd);
		if (flags & O_CREAT)
			unlink(path);
	}
}

int lg_hold(struct lg *lg)
{
	struct check c[8];
	char path[4096], buf[LG_BS], line[64];
	volatile uint64_t *p;
	int fd, r, n = 0, bad = 0;
	void *m;

	lg_path(lg, 0, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "daxfs_loadgen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	m = mmap(NULL, lg->fsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "daxfs_loadgen: mmap %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	p = m;
	for (uint64_t off = 0; off < lg->fsize; off += LG_BS)
		(void)p[off / 8];
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		line[0] = 0;

	c[n] = (struct check){ "mapped load", "SIGBUS", "" };
	snprintf(c[n++].got, sizeof(c[0].got), "%s",
		 touch(p, false) ? "success" : "SIGBUS");
	c[n] = (struct check){ "mapped store", "SIGBUS", "" };
	snprintf(c[n++].got, sizeof(c[0].got), "%s",
		 touch(p + LG_WORDS, true) ? "success" : "SIGBUS");
	c[n] = (struct check){ "read on a descriptor opened before", "EIO",
			       "" };
	r = (int)pread(fd, buf, sizeof(buf), 0);
	errname(c[n++].got, sizeof(c[0].got), r, errno);
	c[n] = (struct check){ "write on a descriptor opened before", "EIO",
			       "" };
	memset(buf, 0, sizeof(buf));
	r = (int)pwrite(fd, buf, sizeof(buf), LG_BS * 2);
	errname(c[n++].got, sizeof(c[0].got), r, errno);
	c[n] = (struct check){ "open of an existing file", "ENXIO", "" };
	lg_path(lg, lg->nfiles > 1 ? 1 : 0, path, sizeof(path));
	open_check(&c[n++], path, O_RDONLY);
	c[n] = (struct check){ "create of a new file", "ENXIO", "" };
	snprintf(path, sizeof(path), "%s/hold-new-%d", lg->o.dir,
		 (int)getpid());
	open_check(&c[n++], path, O_CREAT | O_EXCL | O_WRONLY);
	c[n] = (struct check){ "open of an existing file whose name the "
			       "kernel must look up", "ENXIO", "" };
	snprintf(path, sizeof(path), "%s/untouched", lg->o.dir);
	open_check(&c[n++], path, O_RDONLY);

	if (lg->o.json)
		printf("{\"phase\":\"hold\",\"checks\":[");
	for (int k = 0; k < n; k++) {
		bool ok = !strcmp(c[k].want, c[k].got);

		bad += !ok;
		if (lg->o.json)
			printf("%s{\"check\":\"%s\",\"want\":\"%s\","
			       "\"got\":\"%s\",\"ok\":%s}", k ? "," : "",
			       c[k].name, c[k].want, c[k].got,
			       ok ? "true" : "false");
		else
			printf("%s %s: want %s, got %s\n", ok ? "PASS" : "FAIL",
			       c[k].name, c[k].want, c[k].got);
	}
	if (lg->o.json)
		printf("],\"ok\":%s}\n", bad ? "false" : "true");
	munmap(m, lg->fsize);
	close(fd);
	return bad ? 1 : 0;
}
