/*
 * ctl.h -- the control channel between daxfsctl and a running daxfs:
 * ioctls on the mount's root directory.  They bypass the liveness gate, so
 * status keeps answering while the region is revoked, drained and
 * released.  Shared by the daemon and daxfsctl; the layout is fixed-width.
 */
#ifndef DAXFS_CTL_H
#define DAXFS_CTL_H

#include <stdint.h>
#include <sys/ioctl.h>

#define DAXFS_CTL_VERSION 3

/*
 * Where an unbind is.  While it runs, the report's figures are the ones
 * so far: the current phase's milliseconds and counts still grow.
 */
enum daxfs_unbind_phase {
	DAXFS_PHASE_NONE,
	DAXFS_PHASE_REVOKING,
	DAXFS_PHASE_DRAINING,
	DAXFS_PHASE_RELEASING,
	DAXFS_PHASE_DONE,
};

struct daxfs_ctl_report {
	uint32_t valid;			/* an unbind has run (or is running) */
	uint32_t forced;		/* the region vanished under us */
	uint32_t timed_out;		/* the drain hit unbind_timeout */
	uint32_t error;			/* errno of a failed step, or 0 */
	uint32_t phase;			/* enum daxfs_unbind_phase */
	uint32_t reserved;
	uint64_t inodes_revoked;
	uint64_t requests_drained;
	uint64_t requests_refused;
	uint64_t bytes_written_back;
	uint64_t bytes_lost;
	uint64_t uring_cancelled;
	uint64_t ms_revoke;
	uint64_t ms_drain;
	uint64_t ms_release;
	uint64_t ms_total;
	uint64_t started_unix_ms;
	char cause[128];
	char holders[1024];
};

struct daxfs_ctl_status {
	uint32_t version;
	uint32_t state;			/* enum gate_state */
	uint64_t pid;
	char region[512];
	char kind[16];			/* "file" or "devdax" */
	char mountpoint[512];
	uint64_t open_files;
	uint64_t inflight;
	uint64_t uring_ops;
	uint64_t page_users;
	uint32_t uring;			/* requests come through io_uring */
	uint32_t ring_queues;		/* one per CPU */
	uint64_t ring_entries;		/* registered with the kernel */
	uint64_t ring_requests;		/* served through the rings */
	uint64_t size_bytes;
	uint64_t free_bytes;
	uint64_t inodes_used;
	uint64_t inodes_free;
	uint64_t unbind_timeout_ms;
	uint32_t readonly;
	uint32_t fs_error;
	/* the requests in flight: "read on inode 12 for 3 ms; ..." */
	char inside[1024];
	struct daxfs_ctl_report report;
};

struct daxfs_ctl_unbind {
	uint32_t timeout_ms;		/* 0: the mount's unbind_timeout */
	uint32_t flags;
};

#define DAXFS_IOC_STATUS _IOR('X', 0xd1, struct daxfs_ctl_status)
#define DAXFS_IOC_UNBIND _IOW('X', 0xd2, struct daxfs_ctl_unbind)

#endif
