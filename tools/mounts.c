/*
 * mounts.c -- daxfs mounts as /proc/mounts lists them ("REGION MOUNTPOINT
 * fuse.daxfs ..."), for list, info and status.
 */
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daxfsctl.h"

int ctl_list_mounts(struct ctl_mount **out)
{
	FILE *f = setmntent("/proc/mounts", "r");
	struct ctl_mount *v = NULL;
	struct mntent *m;
	int n = 0;

	*out = NULL;
	if (!f)
		return 0;
	while ((m = getmntent(f))) {
		struct ctl_mount *nv;

		if (strcmp(m->mnt_type, "fuse.daxfs"))
			continue;
		nv = realloc(v, (size_t)(n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		snprintf(v[n].source, sizeof(v[n].source), "%s", m->mnt_fsname);
		snprintf(v[n].mountpoint, sizeof(v[n].mountpoint), "%s",
			 m->mnt_dir);
		snprintf(v[n].options, sizeof(v[n].options), "%s",
			 m->mnt_opts);
		n++;
	}
	endmntent(f);
	*out = v;
	return n;
}

void ctl_find_mount(const char *region, char *out, size_t len)
{
	struct ctl_mount *m;
	int n = ctl_list_mounts(&m);
	char want[4096], have[4096];

	out[0] = '\0';
	if (!realpath(region, want))
		snprintf(want, sizeof(want), "%s", region);
	for (int k = 0; k < n; k++) {
		if (!realpath(m[k].source, have))
			snprintf(have, sizeof(have), "%s", m[k].source);
		if (!strcmp(have, want)) {
			snprintf(out, len, "%s", m[k].mountpoint);
			break;
		}
	}
	free(m);
}
