/*
 * mapping.h -- which inodes the kernel may hold pages of, and revoking
 * them all.
 */
#ifndef DAXFS_MAPPING_H
#define DAXFS_MAPPING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct fuse_session;

struct mapping {
	pthread_mutex_t lock;		/* guards everything below */
	uint64_t *slots;		/* open addressing; 0 = empty */
	uint64_t cap, count;
};

int mapping_init(struct mapping *m);
void mapping_destroy(struct mapping *m);
void mapping_add(struct mapping *m, uint64_t ino);
void mapping_remove(struct mapping *m, uint64_t ino);
uint64_t mapping_count(struct mapping *m);
int mapping_revoke(struct mapping *m, struct fuse_session *se,
		   atomic_uint_fast64_t *revoked);

#endif
