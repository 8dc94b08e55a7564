/*
 * workers.c -- daxfs_loadgen's synchronous workers: mmap (stores and loads
 * through MAP_SHARED mappings, msync), rw (pread/pwrite/fsync) and open
 * (opens existing files and creates new ones), and the SIGBUS guard the
 * mmap worker runs its accesses under.
 *
 * Every worker runs until it has seen the failure an unbind causes (EIO,
 * ENXIO or SIGBUS) or is told to stop; then, once the daemon reports the
 * region released, it probes once more -- every probe must fail -- and
 * finishes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "loadgen.h"

__thread sigjmp_buf *volatile lg_guard_jb;

/* on_bus -- a guarded access faulted: jump back; otherwise die as usual */
static void on_bus(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = lg_guard_jb;

	(void)si;
	(void)uc;
	if (jb)
		siglongjmp(*jb, 1);
	signal(sig, SIG_DFL);	/* the access faults again, fatally */
}

void lg_guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

struct mfile {
	unsigned f;
	int fd;
	volatile uint64_t *p;
	bool dead;			/* faulted or failed: not touched again */
	unsigned writes, rr;
};

/* guarded_store -- write generation gen of block b of file f; false if
 * the mapping faulted */
static bool guarded_store(struct mfile *m, uint32_t b, uint32_t gen)
{
	sigjmp_buf jb;
	volatile uint64_t *p = m->p + (size_t)b * LG_WORDS;
	volatile bool ok = false;

	if (sigsetjmp(jb, 1) == 0) {
		lg_guard_jb = &jb;
		for (uint32_t i = 0; i < LG_WORDS; i++)
			p[i] = lg_word(m->f, b, i, gen);
		ok = true;
	}
	lg_guard_jb = NULL;
	return ok;
}

/* guarded_load -- copy block b out of the mapping; false if it faulted */
static bool guarded_load(struct mfile *m, uint32_t b, uint64_t *out)
{
	sigjmp_buf jb;
	volatile uint64_t *p = m->p + (size_t)b * LG_WORDS;
	volatile bool ok = false;

	if (sigsetjmp(jb, 1) == 0) {
		lg_guard_jb = &jb;
		for (uint32_t i = 0; i < LG_WORDS; i++)
			out[i] = p[i];
		ok = true;
	}
	lg_guard_jb = NULL;
	return ok;
}

/* check_block -- a block read back must be a valid stamp */
static void check_block(struct lg_worker *w, const void *buf, uint32_t f,
			uint32_t b)
{
	uint32_t lo, hi;

	if (lg_check(buf, f, b, &lo, &hi)) {
		atomic_fetch_add(&w->other, 1);
		atomic_store(&w->last_other, EBADMSG);
	}
}

/* ack_file -- everything the owner wrote to file f is now durable */
static void ack_file(struct lg_worker *w, unsigned f)
{
	struct lg *lg = w->lg;

	for (size_t k = w->own_start[f]; k < w->own_start[f + 1]; k++) {
		uint32_t g = w->own[k];

		if (lg->cur[g] > lg->ack[g]) {
			lg->ack[g] = lg->cur[g];
			atomic_fetch_add(&w->acked, 1);
		}
	}
}

static void mmap_step(struct lg_worker *w, struct mfile *m, uint64_t *seed,
		      uint64_t *buf)
{
	struct lg *lg = w->lg;
	size_t nmine = w->own_start[m->f + 1] - w->own_start[m->f];
	uint32_t b, g, gen;

	if (nmine && lg_rand(seed) % 3) {
		g = w->own[w->own_start[m->f] + m->rr++ % nmine];
		b = g % lg->bpf;
		gen = lg->cur[g] + 1;
		lg_busy(w);
		if (!guarded_store(m, b, gen)) {
			lg_idle(w);
			atomic_fetch_add(&w->ops, 1);
			atomic_fetch_add(&w->sigbus, 1);
			lg_fail(w);
			m->dead = true;
			return;
		}
		lg_idle(w);
		lg->cur[g] = gen;
		lg_count(w, 0);
		if (++m->writes % 16)
			return;
		lg_busy(w);
		if (msync((void *)m->p, lg->fsize, MS_SYNC)) {
			int e = errno;

			lg_idle(w);
			lg_count(w, e);
			m->dead = lg_is_failure(e);
			return;
		}
		lg_idle(w);
		lg_count(w, 0);
		ack_file(w, m->f);
		return;
	}
	b = (uint32_t)(lg_rand(seed) % lg->bpf);
	lg_busy(w);
	if (!guarded_load(m, b, buf)) {
		lg_idle(w);
		atomic_fetch_add(&w->ops, 1);
		atomic_fetch_add(&w->sigbus, 1);
		lg_fail(w);
		m->dead = true;
		return;
	}
	lg_idle(w);
	lg_count(w, 0);
	check_block(w, buf, m->f, b);
}

/* lg_mmap_worker -- map every file f with f % mmap_workers == index */
void *lg_mmap_worker(void *arg)
{
	struct lg_worker *w = arg;
	struct lg *lg = w->lg;
	unsigned n = 0, live;
	uint64_t seed = 0x6d6d6170ull + w->index, buf[LG_WORDS];
	struct mfile *mf = calloc(lg->nfiles, sizeof(*mf));

	if (!mf) {
		lg_reads_probed(lg);
		goto out;
	}
	for (unsigned f = w->index; f < lg->nfiles; f += lg->o.mmap_workers) {
		char path[4096];
		void *p;
		int fd;

		lg_path(lg, f, path, sizeof(path));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			lg_count(w, errno);
			continue;
		}
		p = mmap(NULL, lg->fsize, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		if (p == MAP_FAILED) {
			lg_count(w, errno);
			close(fd);
			continue;
		}
		mf[n].f = f;
		mf[n].fd = fd;
		mf[n].p = p;
		n++;
	}
	snprintf(w->note, sizeof(w->note), "%u files mapped", n);
	live = n;
	while (live && !atomic_load(&lg->stop)) {
		struct mfile *m = &mf[lg_rand(&seed) % n];

		if (m->dead)
			continue;
		mmap_step(w, m, &seed, buf);
		if (m->dead)
			live--;
	}
	if (atomic_load(&w->failed) && lg_wait_released(lg)) {
		/* every mapping must fault now: nothing can refill a page */
		for (unsigned k = 0; k < n; k++) {
			if (guarded_load(&mf[k], 0, buf))
				atomic_fetch_add(&w->probe_ok, 1);
			else
				atomic_fetch_add(&w->probe_fail, 1);
		}
	}
	lg_reads_probed(lg);
	for (unsigned k = 0; k < n; k++) {
		munmap((void *)mf[k].p, lg->fsize);
		close(mf[k].fd);
	}
	free(mf);
out:
	atomic_store(&w->done, true);
	return NULL;
}

/* probe -- one call after release: it must fail */
static void probe(struct lg_worker *w, bool succeeded)
{
	atomic_fetch_add(succeeded ? &w->probe_ok : &w->probe_fail, 1);
}

/* lg_rw_worker -- pwrite own blocks, pread any, fsync every 16 writes */
void *lg_rw_worker(void *arg)
{
	struct lg_worker *w = arg;
	struct lg *lg = w->lg;
	uint64_t seed = 0x7277ull + w->index, buf[LG_WORDS];
	int *fd = calloc(lg->nfiles, sizeof(int));
	bool *dirty = calloc(lg->nfiles, sizeof(bool));
	unsigned writes = 0;

	if (!fd || !dirty) {
		lg_reads_probed(lg);
		goto out;
	}
	for (unsigned f = 0; f < lg->nfiles; f++) {
		char path[4096];

		lg_path(lg, f, path, sizeof(path));
		fd[f] = open(path, O_RDWR | O_CLOEXEC);
		if (fd[f] < 0) {
			lg_count(w, errno);
			lg_reads_probed(lg);
			goto close;
		}
	}
	while (!atomic_load(&lg->stop) && !atomic_load(&w->failed)) {
		uint32_t g, f, b, gen;
		ssize_t r;

		if (w->nown && lg_rand(&seed) % 2) {
			g = w->own[lg_rand(&seed) % w->nown];
			f = g / lg->bpf;
			b = g % lg->bpf;
			gen = lg->cur[g] + 1;
			lg_fill(buf, f, b, gen);
			lg_busy(w);
			r = pwrite(fd[f], buf, LG_BS, (off_t)b * LG_BS);
			lg_idle(w);
			lg_count(w, r == LG_BS ? 0 : r < 0 ? errno : EIO);
			if (r != LG_BS)
				break;
			lg->cur[g] = gen;
			dirty[f] = true;
			if (++writes % 16)
				continue;
			for (f = 0; f < lg->nfiles; f++) {
				if (!dirty[f])
					continue;
				lg_busy(w);
				r = fsync(fd[f]);
				lg_idle(w);
				lg_count(w, r ? errno : 0);
				if (r)
					break;
				dirty[f] = false;
				ack_file(w, f);
			}
			continue;
		}
		f = (uint32_t)(lg_rand(&seed) % lg->nfiles);
		b = (uint32_t)(lg_rand(&seed) % lg->bpf);
		lg_busy(w);
		r = pread(fd[f], buf, LG_BS, (off_t)b * LG_BS);
		lg_idle(w);
		lg_count(w, r == LG_BS ? 0 : r < 0 ? errno : EIO);
		if (r == LG_BS)
			check_block(w, buf, f, b);
	}
	if (atomic_load(&w->failed) && lg_wait_released(lg))
		probe(w, pread(fd[0], buf, LG_BS, 0) >= 0);
	lg_reads_probed(lg);
	/* the write probe goes to the last block, which no read probe reads */
	if (atomic_load(&w->failed) && lg_wait_reads_probed(lg))
		probe(w, pwrite(fd[lg->nfiles - 1], buf, LG_BS,
				(off_t)(lg->bpf - 1) * LG_BS) >= 0);
close:
	for (unsigned f = 0; f < lg->nfiles; f++)
		if (fd[f] > 0)
			close(fd[f]);
out:
	free(fd);
	free(dirty);
	atomic_store(&w->done, true);
	return NULL;
}

/* try_open -- open an existing file and read from it; 0 or an errno */
static int try_open(struct lg *lg, unsigned f)
{
	char path[4096], c;
	int fd, e = 0;

	lg_path(lg, f, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (pread(fd, &c, 1, 0) < 0)
		e = errno;
	close(fd);
	return e;
}

/* try_create -- create, write, close and remove a new file */
static int try_create(struct lg *lg, struct lg_worker *w, uint64_t n)
{
	char path[4096], buf[LG_BS];
	int fd, e = 0;

	snprintf(path, sizeof(path), "%s/new-%s-%d-%llu", lg->o.dir, w->name,
		 (int)getpid(), (unsigned long long)n);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	memset(buf, 0x5a, sizeof(buf));
	if (write(fd, buf, sizeof(buf)) < 0)
		e = errno;
	if (close(fd) && !e)
		e = errno;
	if (unlink(path) && !e)
		e = errno;
	return e;
}

/* lg_open_worker -- open existing files and create new ones, in turn */
void *lg_open_worker(void *arg)
{
	struct lg_worker *w = arg;
	struct lg *lg = w->lg;
	uint64_t n = 0;

	while (!atomic_load(&lg->stop) && !atomic_load(&w->failed)) {
		int e;

		lg_busy(w);
		e = n % 2 ? try_create(lg, w, n) : try_open(lg, (unsigned)
				(n / 2 % lg->nfiles));
		lg_idle(w);
		lg_count(w, e);
		n++;
	}
	if (atomic_load(&w->failed) && lg_wait_released(lg)) {
		probe(w, try_open(lg, 0) == 0);
		probe(w, try_create(lg, w, n) == 0);
	}
	lg_reads_probed(lg);
	atomic_store(&w->done, true);
	return NULL;
}
