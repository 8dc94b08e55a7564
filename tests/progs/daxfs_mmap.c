/*
 * daxfs_mmap -- memory-mapping checks on a mounted daxfs, driven from
 * tests/test_mmap.py.  Each subcommand creates FILE itself.
 *
 *   daxfs_mmap sigbus FILE     touching a mapping past end-of-file raises
 *                              SIGBUS; the tail of the last page reads 0;
 *                              extending and shrinking move the boundary
 *   daxfs_mmap private FILE    MAP_PRIVATE stores stay private
 *   daxfs_mmap shared2 FILE    two processes, each with its own
 *                              MAP_SHARED mapping, see each other's stores
 *   daxfs_mmap coherent FILE   write() shows in a mapping, a store shows
 *                              in read(), with and without msync
 *
 * Exit status: 0 pass, 1 fail (the reason on stderr), 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static long page;

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

/* make_file -- FILE with size bytes of c */
static int make_file(const char *path, size_t size, char c)
{
	char *buf = malloc(size ? size : 1);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || !buf) {
		fail("create %s: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	memset(buf, c, size);
	if (size && pwrite(fd, buf, size, 0) != (ssize_t)size) {
		fail("pwrite %s: %s", path, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(buf);
	return fd;
}

static sigjmp_buf jb;
static volatile sig_atomic_t got_sigbus;

static void on_sigbus(int sig)
{
	(void)sig;
	got_sigbus = 1;
	siglongjmp(jb, 1);
}

/* probe -- read one byte; 1 if it raised SIGBUS, 0 if not (*out set) */
static int probe(volatile const char *p, char *out)
{
	got_sigbus = 0;
	if (sigsetjmp(jb, 1) == 0)
		*out = *p;
	return got_sigbus ? 1 : 0;
}

static int cmd_sigbus(const char *path)
{
	struct sigaction sa;
	char *p, c;
	int fd = make_file(path, 100, 'a');

	if (fd < 0)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL))
		return fail("sigaction: %s", strerror(errno)), 1;
	p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap: %s", strerror(errno)), 1;
	if (probe(p + 99, &c) || c != 'a')
		fail("the last byte of the file did not read back");
	if (probe(p + 100, &c) || c != 0)
		fail("past EOF inside the last page: SIGBUS or not zero");
	if (probe(p + page - 1, &c) || c != 0)
		fail("end of the last page: SIGBUS or not zero");
	if (!probe(p + page, &c))
		fail("a page wholly past EOF did not raise SIGBUS");
	if (!probe(p + 2 * page + 17, &c))
		fail("two pages past EOF did not raise SIGBUS");

	/* grow: the second page becomes readable, as zeroes */
	if (ftruncate(fd, 2 * page))
		return fail("ftruncate up: %s", strerror(errno)), 1;
	if (probe(p + page + 5, &c) || c != 0)
		fail("after growing, page 2 raised SIGBUS or is not zero");
	if (!probe(p + 2 * page, &c))
		fail("after growing to 2 pages, page 3 did not raise SIGBUS");

	/* shrink: the second page raises SIGBUS again */
	if (ftruncate(fd, 10))
		return fail("ftruncate down: %s", strerror(errno)), 1;
	if (!probe(p + page, &c))
		fail("after shrinking, page 2 did not raise SIGBUS");
	if (probe(p + 50, &c) || c != 0)
		fail("after shrinking to 10 bytes, byte 50 is not zero");
	if (probe(p + 9, &c) || c != 'a')
		fail("after shrinking to 10 bytes, byte 9 changed");
	munmap(p, 3 * page);
	close(fd);
	return failures ? 1 : 0;
}

static int all_are(const char *buf, size_t n, char c)
{
	for (size_t k = 0; k < n; k++)
		if (buf[k] != c)
			return 0;
	return 1;
}

static int cmd_private(const char *path)
{
	char *priv, *shared, *buf = malloc(2 * page);
	int fd = make_file(path, 2 * page, 'x');

	if (fd < 0 || !buf)
		return 1;
	priv = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd,
		    0);
	shared = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		return fail("mmap: %s", strerror(errno)), 1;
	memset(priv, 'P', page);
	if (!all_are(priv, page, 'P'))
		fail("the private mapping lost its own store");
	if (!all_are(shared, 2 * page, 'x'))
		fail("a MAP_PRIVATE store showed in a MAP_SHARED mapping");
	if (msync(priv, 2 * page, MS_SYNC))
		fail("msync of the private mapping: %s", strerror(errno));
	if (pread(fd, buf, 2 * page, 0) != 2 * page)
		return fail("pread: %s", strerror(errno)), 1;
	if (!all_are(buf, 2 * page, 'x'))
		fail("a MAP_PRIVATE store reached the file");
	if (fsync(fd))
		fail("fsync: %s", strerror(errno));
	munmap(priv, 2 * page);
	munmap(shared, 2 * page);
	close(fd);
	/* and a fresh open after the mapping is gone */
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, buf, 2 * page, 0) != 2 * page)
		return fail("reopen: %s", strerror(errno)), 1;
	if (!all_are(buf, 2 * page, 'x'))
		fail("after munmap, the file holds the private store");
	close(fd);
	free(buf);
	return failures ? 1 : 0;
}

/* wait_byte / send_byte -- lockstep between the two processes */
static int wait_byte(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static void send_byte(int fd)
{
	if (write(fd, "x", 1) != 1)
		fail("pipe write: %s", strerror(errno));
}

static int cmd_shared2(const char *path)
{
	static const char hello[] = "stored by the parent";
	static const char reply[] = "stored by the child";
	int to_child[2], to_parent[2], fd, status;
	pid_t pid;
	char *p;

	fd = make_file(path, 2 * page, 0);
	if (fd < 0)
		return 1;
	close(fd);
	if (pipe(to_child) || pipe(to_parent))
		return fail("pipe: %s", strerror(errno)), 1;
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno)), 1;
	/* each process opens and maps the file on its own */
	fd = open(path, O_RDWR);
	if (fd < 0) {
		fail("open: %s", strerror(errno));
		if (pid == 0)
			_exit(1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		if (pid == 0)
			_exit(1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	if (pid == 0) {
		if (wait_byte(to_child[0]))
			_exit(1);
		if (memcmp(p + 10, hello, sizeof(hello)))
			fail("the child does not see the parent's store");
		memcpy(p + page + 20, reply, sizeof(reply));
		send_byte(to_parent[1]);
		_exit(failures ? 1 : 0);
	}
	memcpy(p + 10, hello, sizeof(hello));
	send_byte(to_child[1]);
	if (wait_byte(to_parent[0]))
		fail("the child went away");
	else if (memcmp(p + page + 20, reply, sizeof(reply)))
		fail("the parent does not see the child's store");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		fail("the child failed (status 0x%x)", status);
	/* the stores are file contents too */
	if (msync(p, 2 * page, MS_SYNC))
		fail("msync: %s", strerror(errno));
	{
		char buf[64];

		if (pread(fd, buf, sizeof(reply), page + 20) !=
		    (ssize_t)sizeof(reply) || memcmp(buf, reply, sizeof(reply)))
			fail("read() does not see the child's store");
	}
	munmap(p, 2 * page);
	close(fd);
	return failures ? 1 : 0;
}

static int cmd_coherent(const char *path)
{
	char buf[64], *p, *q;
	int fd = make_file(path, 2 * page, '.'), fd2;

	if (fd < 0)
		return 1;
	p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return fail("mmap: %s", strerror(errno)), 1;
	/* fault the pages in first, so the test is about a live mapping */
	if (p[0] != '.' || p[page] != '.')
		fail("the mapping does not show the file");

	/* write() then load through the existing mapping */
	if (pwrite(fd, "written", 7, 100) != 7)
		fail("pwrite: %s", strerror(errno));
	if (memcmp(p + 100, "written", 7))
		fail("a write() did not show in the existing mapping");
	/* through another descriptor, too */
	fd2 = open(path, O_RDWR);
	if (fd2 < 0 || pwrite(fd2, "other fd", 8, page + 100) != 8)
		fail("pwrite through a second fd: %s", strerror(errno));
	if (memcmp(p + page + 100, "other fd", 8))
		fail("a write() through another fd did not show in the "
		     "mapping");

	/* store then read(), no msync */
	memcpy(p + 1000, "stored", 6);
	if (pread(fd, buf, 6, 1000) != 6 || memcmp(buf, "stored", 6))
		fail("a store did not show in read() without msync");
	if (pread(fd2, buf, 6, 1000) != 6 || memcmp(buf, "stored", 6))
		fail("a store did not show in read() on another fd");

	/* store, msync, read() */
	memcpy(p + page + 2000, "synced", 6);
	if (msync(p, 2 * page, MS_SYNC))
		fail("msync: %s", strerror(errno));
	if (pread(fd, buf, 6, page + 2000) != 6 || memcmp(buf, "synced", 6))
		fail("a store did not show in read() after msync");

	/* a second mapping of the same file sees the first one's stores */
	q = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd2, 0);
	if (q == MAP_FAILED)
		fail("second mmap: %s", strerror(errno));
	else {
		if (memcmp(q + 1000, "stored", 6) ||
		    memcmp(q + page + 2000, "synced", 6) ||
		    memcmp(q + 100, "written", 7))
			fail("a second mapping does not agree with the first");
		munmap(q, 2 * page);
	}

	/* a write() that grows the file, seen by a mapping of the new page */
	if (pwrite(fd, "grown", 5, 2 * page + 3) != 5)
		fail("pwrite to grow: %s", strerror(errno));
	q = mmap(NULL, 3 * page, PROT_READ, MAP_SHARED, fd, 0);
	if (q == MAP_FAILED)
		fail("mmap after growing: %s", strerror(errno));
	else {
		if (memcmp(q + 2 * page + 3, "grown", 5) ||
		    q[2 * page] != 0)
			fail("the grown page does not read back in a mapping");
		munmap(q, 3 * page);
	}
	munmap(p, 2 * page);
	if (fd2 >= 0)
		close(fd2);
	close(fd);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	page = sysconf(_SC_PAGESIZE);
	if (argc != 3)
		goto usage;
	if (!strcmp(argv[1], "sigbus"))
		return cmd_sigbus(argv[2]);
	if (!strcmp(argv[1], "private"))
		return cmd_private(argv[2]);
	if (!strcmp(argv[1], "shared2"))
		return cmd_shared2(argv[2]);
	if (!strcmp(argv[1], "coherent"))
		return cmd_coherent(argv[2]);
usage:
	fprintf(stderr, "usage: daxfs_mmap sigbus|private|shared2|coherent "
		"FILE\n");
	return 2;
}
