/*
 * daemon.h -- the running daemon's state, shared by the FUSE handlers
 * (ops*.c), the unbind sequence (unbind.c) and main.
 */
#ifndef DAXFS_DAEMON_H
#define DAXFS_DAEMON_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alive.h"
#include "ctl.h"
#include "daxfs_i.h"
#include "mapping.h"

struct fuse_session;
struct transport;
struct unbind;

struct daemon {
	struct daxfs *fs;		/* freed by main after the loop */
	struct fuse_session *se;
	struct gate gate;
	struct mapping map;
	struct unbind *ub;
	struct transport *tp;		/* NULL: /dev/fuse only */
	char region[PATH_MAX];		/* as given on the command line */
	char mountpoint[PATH_MAX];
	uint64_t unbind_timeout_ms;
	double entry_timeout, attr_timeout;
	bool readonly;
	uint32_t owner_uid;		/* who mounted: may unbind */
	atomic_uint_fast64_t open_files;
};

/* unbind.c */
int unbind_start(struct daemon *d);
void unbind_stop(struct daemon *d);
int unbind_request(struct daemon *d, bool forced, const char *cause,
		   uint64_t timeout_ms);
void unbind_report(struct daemon *d, struct daxfs_ctl_report *out);
void unbind_reinvalidate(struct daemon *d, uint64_t ino);
uint64_t unbind_uring_ops(struct daemon *d);

/* ops.c */
extern const struct fuse_lowlevel_ops daxfs_ops;

#endif
