/*
 * mapping.c -- the set of inodes whose pages the kernel may cache (every
 * regular file that was opened and is still known to the kernel), and
 * their revocation.
 *
 * Revoking an inode is fuse_lowlevel_notify_inval_inode(se, ino, 0, 0):
 * the kernel unmaps its pages from every process, writes dirty ones back
 * to us first (as WRITE requests, which the gate still accepts while
 * revoking) and drops them; the next access faults, the READ is refused,
 * and the application gets SIGBUS.  The call blocks until those WRITEs are
 * answered, so it must run on a thread that does not serve requests (the
 * unbind thread), and never with a lock a request handler could need.
 *
 * Owns: struct mapping.  Must never: call into the kernel with m->lock
 * held.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "mapping.h"

int mapping_init(struct mapping *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->cap = 256;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	return m->slots ? 0 : -ENOMEM;
}

void mapping_destroy(struct mapping *m)
{
	free(m->slots);
	m->slots = NULL;
	pthread_mutex_destroy(&m->lock);
}

static uint64_t hash(uint64_t ino, uint64_t cap)
{
	return (ino * 0x9e3779b97f4a7c15ULL) >> 17 & (cap - 1);
}

/* insert_locked -- add ino to the table (room guaranteed) */
static void insert_locked(uint64_t *slots, uint64_t cap, uint64_t ino)
{
	uint64_t h = hash(ino, cap);

	while (slots[h] && slots[h] != ino)
		h = (h + 1) & (cap - 1);
	slots[h] = ino;
}

/* mapping_add -- ino was opened; its pages may be cached from now on */
void mapping_add(struct mapping *m, uint64_t ino)
{
	uint64_t h;

	pthread_mutex_lock(&m->lock);
	h = hash(ino, m->cap);
	while (m->slots[h] && m->slots[h] != ino)
		h = (h + 1) & (m->cap - 1);
	if (!m->slots[h]) {
		if ((m->count + 1) * 2 > m->cap) {
			uint64_t nc = m->cap * 2, *ns = calloc(nc, sizeof(*ns));

			if (ns) {
				for (uint64_t k = 0; k < m->cap; k++)
					if (m->slots[k])
						insert_locked(ns, nc,
							      m->slots[k]);
				free(m->slots);
				m->slots = ns;
				m->cap = nc;
			}
		}
		insert_locked(m->slots, m->cap, ino);
		m->count++;
	}
	pthread_mutex_unlock(&m->lock);
}

/* mapping_remove -- the kernel forgot ino, and with it its pages */
void mapping_remove(struct mapping *m, uint64_t ino)
{
	uint64_t h, j;

	pthread_mutex_lock(&m->lock);
	h = hash(ino, m->cap);
	while (m->slots[h] && m->slots[h] != ino)
		h = (h + 1) & (m->cap - 1);
	if (m->slots[h]) {
		/* backward-shift deletion keeps probe chains intact */
		m->slots[h] = 0;
		m->count--;
		for (j = (h + 1) & (m->cap - 1); m->slots[j];
		     j = (j + 1) & (m->cap - 1)) {
			uint64_t v = m->slots[j];

			m->slots[j] = 0;
			insert_locked(m->slots, m->cap, v);
		}
	}
	pthread_mutex_unlock(&m->lock);
}

uint64_t mapping_count(struct mapping *m)
{
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/*
 * mapping_revoke -- invalidate every tracked inode's pages in the kernel.
 * *revoked counts, as it goes, the inodes the kernel still knew.  An
 * inode leaves the set once its pages are gone: with reads refused they
 * cannot come back, so the set's size is the count of inodes still to
 * revoke.  Returns 0, or the first error other than "the kernel no longer
 * knows it" (that inode stays in the set).
 */
int mapping_revoke(struct mapping *m, struct fuse_session *se,
		   atomic_uint_fast64_t *revoked)
{
	uint64_t *snap, n = 0;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	snap = malloc((m->count + 1) * sizeof(*snap));
	if (snap)
		for (uint64_t k = 0; k < m->cap; k++)
			if (m->slots[k])
				snap[n++] = m->slots[k];
	pthread_mutex_unlock(&m->lock);
	if (!snap)
		return -ENOMEM;
	for (uint64_t k = 0; k < n; k++) {
		int r = fuse_lowlevel_notify_inval_inode(se, snap[k], 0, 0);

		if (r == 0)
			atomic_fetch_add(revoked, 1);
		if (r == 0 || r == -ENOENT)
			mapping_remove(m, snap[k]);
		else if (!ret)
			ret = r;
	}
	free(snap);
	return ret;
}
