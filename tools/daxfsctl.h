/*
 * daxfsctl.h -- what the daxfsctl subcommand files share.
 */
#ifndef DAXFSCTL_H
#define DAXFSCTL_H

#include <stddef.h>

struct ctl_mount {
	char source[4096];
	char mountpoint[4096];
	char options[512];
};

int cmd_fsck(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_unbind(int argc, char **argv);

struct option;
int ctl_bad_option(const char *cmd, char **argv, const struct option *lo,
		   int exit_code);
/* daxfs mounts from /proc/mounts; returns the count (*out malloc'd) */
int ctl_list_mounts(struct ctl_mount **out);
/* the mountpoint of a region, "" if not mounted */
void ctl_find_mount(const char *region, char *out, size_t len);

#endif
