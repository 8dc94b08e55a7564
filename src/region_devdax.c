/*
 * region_devdax.c -- the device-DAX back end of the region: naming a
 * device, asking libdaxctl for its size and alignment, and telling whether
 * it is still bound to its driver.
 *
 * Owns: nothing after return.  Must never: map or store; region.c does.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <daxctl/libdaxctl.h>

#include "region.h"
#include "util.h"

/* is_dax_name -- "daxN.M" */
static bool is_dax_name(const char *s)
{
	unsigned a, b;
	int n = 0;

	return sscanf(s, "dax%u.%u%n", &a, &b, &n) == 2 && s[n] == '\0';
}

/* region_spec_is_devdax -- does spec name a device-DAX device? */
bool region_spec_is_devdax(const char *spec)
{
	char link[PATH_MAX], sys[128];
	struct stat st;
	ssize_t n;

	if (is_dax_name(spec))
		return true;
	if (!strncmp(spec, "/dev/", 5) && is_dax_name(spec + 5))
		return true;
	if (stat(spec, &st) || !S_ISCHR(st.st_mode))
		return false;
	/* a char device under another name: ask sysfs what it is */
	snprintf(sys, sizeof(sys), "/sys/dev/char/%u:%u/subsystem",
		 major(st.st_rdev), minor(st.st_rdev));
	n = readlink(sys, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	return !strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link,
		       "dax");
}

static void quiet_log(struct daxctl_ctx *ctx, int pri, const char *file,
		      int line, const char *fn, const char *fmt, va_list ap)
{
	(void)ctx; (void)pri; (void)file; (void)line; (void)fn; (void)fmt;
	(void)ap;
}

/* dax_basename -- "dax0.0" from any of the accepted spellings */
static int dax_basename(const char *spec, char *name, size_t len)
{
	char link[PATH_MAX], sys[128];
	struct stat st;
	ssize_t n;

	if (is_dax_name(spec)) {
		snprintf(name, len, "%s", spec);
		return 0;
	}
	if (!strncmp(spec, "/dev/", 5) && is_dax_name(spec + 5)) {
		snprintf(name, len, "%s", spec + 5);
		return 0;
	}
	if (stat(spec, &st))
		return -errno;
	snprintf(sys, sizeof(sys), "/sys/dev/char/%u:%u",
		 major(st.st_rdev), minor(st.st_rdev));
	n = readlink(sys, link, sizeof(link) - 1);
	if (n <= 0)
		return -ENODEV;
	link[n] = '\0';
	snprintf(name, len, "%s", strrchr(link, '/') ? strrchr(link, '/') + 1 :
		 link);
	return 0;
}

/*
 * region_devdax_resolve -- find a device-DAX device through libdaxctl.
 * Fills its /dev path, its name, its size and its alignment.
 */
int region_devdax_resolve(const char *spec, char *path, size_t pathlen,
			  char *name, size_t namelen, uint64_t *size,
			  uint64_t *align)
{
	struct daxctl_ctx *ctx;
	struct daxctl_region *reg;
	struct daxctl_dev *dev;
	int ret = -ENODEV, seen = 0;

	if (dax_basename(spec, name, namelen)) {
		daxfs_seterr("no such device");
		return -ENOENT;
	}
	if (daxctl_new(&ctx)) {
		daxfs_seterr("libdaxctl could not start");
		return -ENODEV;
	}
	daxctl_set_log_fn(ctx, quiet_log);
	daxctl_region_foreach(ctx, reg) {
		daxctl_dev_foreach(reg, dev) {
			seen++;
			if (strcmp(daxctl_dev_get_devname(dev), name))
				continue;
			if (!daxctl_dev_is_enabled(dev)) {
				daxfs_seterr("device-DAX device %s is "
					     "disabled; enable it with "
					     "'daxctl enable-device %s'",
					     name, name);
				ret = -ENXIO;
			} else if (daxctl_dev_get_memory(dev) &&
				   daxctl_memory_is_online(
					daxctl_dev_get_memory(dev)) > 0) {
				daxfs_seterr("device-DAX device %s is in "
					     "system-ram mode; reconfigure it "
					     "with 'daxctl reconfigure-device "
					     "-m devdax %s'", name, name);
				ret = -EBUSY;
			} else {
				*size = daxctl_dev_get_size(dev);
				*align = daxctl_dev_get_align(dev);
				snprintf(path, pathlen, "/dev/%s", name);
				ret = 0;
			}
			goto out;
		}
	}
	if (seen)
		daxfs_seterr("no device-DAX device named %s (libdaxctl sees "
			     "%d other%s)", name, seen, seen == 1 ? "" : "s");
	else
		daxfs_seterr("no device-DAX device named %s (libdaxctl sees "
			     "no devices on this system)", name);
out:
	daxctl_unref(ctx);
	return ret;
}

/* region_devdax_check -- 0 while the device is bound to its driver */
int region_devdax_check(struct region *r)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "/sys/bus/dax/devices/%s/driver", r->name);
	if (lstat(p, &st))
		return -ENODEV;
	snprintf(p, sizeof(p), "/dev/%s", r->name);
	if (stat(p, &st) || st.st_rdev != r->rdev)
		return -ENODEV;
	return 0;
}
