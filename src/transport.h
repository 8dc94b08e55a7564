/*
 * transport.h -- how requests reach the daemon: /dev/fuse (libfuse's
 * loop) or, when the kernel offers it, FUSE over io_uring.
 */
#ifndef DAXFS_TRANSPORT_H
#define DAXFS_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

struct daemon;

/* -o transport= */
enum transport_mode {
	TRANSPORT_AUTO,		/* io_uring when the kernel offers it */
	TRANSPORT_URING,	/* io_uring, or refuse to mount */
	TRANSPORT_DEVFUSE,	/* /dev/fuse only */
};

/* does this kernel offer FUSE over io_uring now?  why not, if not */
bool transport_uring_offered(const char **why);

/*
 * transport_start -- after fuse_session_mount: hook the session's replies
 * and start two workers per CPU, each registering a ring entry with the
 * kernel once INIT has been answered.  Requests use /dev/fuse until every
 * CPU's queue has an entry.  0, or -errno (nothing started).
 */
int transport_start(struct daemon *d);

/* transport_stop -- after the session has ended: stop the workers */
void transport_stop(struct daemon *d);

/* what status shows */
struct transport_stats {
	bool uring;		/* requests go through io_uring */
	uint32_t queues;	/* CPUs with a queue */
	uint32_t entries;	/* ring entries registered with the kernel */
	uint64_t requests;	/* requests served through the rings */
};
void transport_stats(struct daemon *d, struct transport_stats *out);

#endif
