/*
 * fuse_uring_abi.h -- the FUSE-over-io_uring part of the kernel's FUSE
 * protocol (7.42 and later).  Debian 12's <linux/fuse.h> stops at 7.38,
 * so the structures the kernel shares with us are defined here, with
 * their layout checked.  Private to transport.c.
 */
#ifndef DAXFS_FUSE_URING_ABI_H
#define DAXFS_FUSE_URING_ABI_H

#include <stddef.h>
#include <stdint.h>

/* the INIT flag the kernel sets when it offers io_uring (informational) */
#define DAXFS_FUSE_OVER_IO_URING	(1ULL << 41)

#define DAXFS_URING_IN_OUT_HEADER_SZ	128
#define DAXFS_URING_OP_IN_OUT_SZ	128

/* the kernel's view of one ring entry; it writes, we read, and back */
struct daxfs_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;		/* the request's unique; quote it back */
	uint32_t payload_sz;		/* bytes used in the payload buffer */
	uint32_t padding;
	uint64_t reserved;
};

/*
 * The header buffer of a ring entry (iovec 0).  A request arrives as its
 * fuse_in_header in in_out, its first argument (the per-opcode header,
 * possibly empty) in op_in, and the remaining arguments in the payload
 * buffer (iovec 1).  A reply goes back as its fuse_out_header in in_out
 * and everything after it in the payload buffer.
 */
struct daxfs_uring_req_header {
	char in_out[DAXFS_URING_IN_OUT_HEADER_SZ];
	char op_in[DAXFS_URING_OP_IN_OUT_SZ];
	struct daxfs_uring_ent_in_out ring_ent_in_out;
};

/* the sub-commands of IORING_OP_URING_CMD on /dev/fuse */
enum {
	DAXFS_URING_CMD_REGISTER = 1,		/* hand the kernel an entry */
	DAXFS_URING_CMD_COMMIT_AND_FETCH = 2,	/* reply, then wait again */
};

/* the command area of a 128-byte SQE */
struct daxfs_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;				/* the queue: a CPU number */
	uint8_t padding[6];
};

_Static_assert(sizeof(struct daxfs_uring_ent_in_out) == 32,
	       "fuse_uring_ent_in_out is 32 bytes");
_Static_assert(sizeof(struct daxfs_uring_req_header) == 288,
	       "fuse_uring_req_header is 288 bytes");
_Static_assert(offsetof(struct daxfs_uring_req_header, ring_ent_in_out) ==
	       256, "ring_ent_in_out follows the two 128-byte areas");
_Static_assert(sizeof(struct daxfs_uring_cmd_req) == 24,
	       "fuse_uring_cmd_req fits the SQE128 command area");

#endif
