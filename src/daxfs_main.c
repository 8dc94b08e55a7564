/*
 * daxfs_main.c -- the daemon: command line and -o options, mounting,
 * daemonizing, signals and the request loop.
 *
 *   daxfs [-f] [-d] [-s] [-o OPTIONS] REGION MOUNTPOINT
 *
 * This is exactly what mount.fuse3 runs for "mount -t fuse.daxfs REGION
 * MOUNTPOINT -o OPTIONS", so mount(8) and fstab work unchanged.
 *
 * Order matters: the region is opened, checked and locked, and the
 * filesystem mounted, by the process that will serve it -- a POSIX lock
 * does not survive fork -- so when daxfs goes to the background it forks
 * first and the parent waits for the child's verdict on a pipe, which lets
 * every error reach the terminal as one line and the exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "ops_i.h"
#include "transport.h"

struct options {
	bool foreground, debug, single, readonly, allow_other;
	bool allow_root;
	long read_ahead_kb;		/* the mount's readahead window */
	long max_dirty_ratio;		/* its share of dirty page cache, % */
	char *region, *mountpoint;
	double unbind_timeout;
	double entry_timeout, attr_timeout;
	enum transport_mode transport;
	char kernel_opts[1024];		/* passed through to the mount */
};

static const char usage[] =
"Usage: daxfs [-f] [-d] [-s] [-o OPTIONS] REGION MOUNTPOINT\n"
"\n"
"Mount the daxfs filesystem in REGION at MOUNTPOINT.  REGION is\n"
"/dev/daxX.Y, a bare device name daxX.Y, or a regular file formatted with\n"
"'daxfsctl mkfs'.  Also run as: mount -t fuse.daxfs REGION MOUNTPOINT\n"
"\n"
"Options:\n"
"  -f                   stay in the foreground\n"
"  -d                   foreground, with FUSE protocol debugging on stderr\n"
"  -s                   serve requests on one thread\n"
"  -o OPTIONS           comma-separated mount options:\n"
"     unbind_timeout=SECONDS  how long an unbind waits for in-flight\n"
"                             requests before releasing the region\n"
"                             (default 10)\n"
"     entry_timeout=SECONDS   how long the kernel may cache names\n"
"                             (default 60: every change passes through\n"
"                             this mount, so its caches stay true)\n"
"     attr_timeout=SECONDS    how long the kernel may cache attributes\n"
"                             (default 60)\n"
"     read_ahead_kb=KIB       the kernel's readahead window for this\n"
"                             mount (default 1024; FUSE starts at 128)\n"
"     max_dirty_ratio=PERCENT how much of the system's dirty page cache\n"
"                             mapped writes to this mount may use before\n"
"                             writers are throttled (default 20; FUSE\n"
"                             starts at 1)\n"
"     transport=auto|io_uring|devfuse\n"
"                             how requests reach the daemon: io_uring\n"
"                             serves each CPU's requests on that CPU\n"
"                             (needs the fuse module's enable_uring);\n"
"                             auto, the default, uses it when the kernel\n"
"                             offers it and /dev/fuse otherwise\n"
"     ro, rw                  read-only or read-write (default rw)\n"
"     allow_other             let other users use the mount\n"
"     allow_root              let root use the mount\n"
"     dev, nodev, suid, nosuid, exec, noexec, atime, noatime,\n"
"     sync, async, dirsync\n"
"                             the usual meanings, handled by the kernel\n"
"     relatime, norelatime, strictatime, diratime, nodiratime,\n"
"     lazytime, nolazytime\n"
"                             accepted and ignored: daxfs does not update\n"
"                             access times on reads\n"
"     default_permissions     always on: the kernel checks permissions\n"
"     fsname=NAME, subtype=NAME\n"
"                             ignored: the mount shows REGION and\n"
"                             fuse.daxfs\n"
"     defaults, auto, noauto, nofail, _netdev, user, users, nouser,\n"
"     owner, group, x-*, comment=*\n"
"                             fstab options for mount(8); ignored here\n"
"  -h, --help           show this help\n"
"  -V, --version        show the version\n"
"\n"
"Permissions are checked by the kernel (default_permissions).  Stop the\n"
"daemon with umount MOUNTPOINT (or SIGTERM): it writes everything back,\n"
"marks the region clean and exits 0.  'daxfsctl unbind MOUNTPOINT'\n"
"revokes every mapping, drains in-flight I/O and releases the region.\n";

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "daxfs: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see 'daxfs --help'\n");
	return 1;
}

static int add_kernel_opt(struct options *o, const char *opt)
{
	size_t have = strlen(o->kernel_opts);

	if (have + strlen(opt) + 2 >= sizeof(o->kernel_opts))
		return bad("too many options at '%s'", opt);
	snprintf(o->kernel_opts + have, sizeof(o->kernel_opts) - have, "%s%s",
		 have ? "," : "", opt);
	return 0;
}

static bool seconds(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < 0 || v > 86400)
		return false;
	*out = v;
	return true;
}

/* in_list -- is s one of the NULL-terminated list's words? */
static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

/* parse_one -- one -o option */
static int parse_one(struct options *o, char *opt)
{
	/* what libfuse passes on to the kernel mount */
	static const char *const kernel[] = {
		"dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime",
		"noatime", "sync", "async", "dirsync", NULL,
	};
	/* fstab and mount(8) options, and access-time variants: daxfs never
	 * updates access times on reads, so they change nothing */
	static const char *const ignored[] = {
		"defaults", "auto", "noauto", "nofail", "_netdev", "user",
		"users", "nouser", "owner", "group", "default_permissions",
		"relatime", "norelatime", "strictatime", "nodiratime",
		"diratime", "lazytime", "nolazytime", NULL,
	};
	/* ours that take a value (the branches below) */
	static const char *const valued[] = {
		"unbind_timeout", "entry_timeout", "attr_timeout",
		"read_ahead_kb", "max_dirty_ratio", "transport", "fsname",
		"subtype", NULL,
	};
	char *v = strchr(opt, '=');

	if (!*opt)
		return 0;
	if (v) {
		*v++ = '\0';
		if (!strcmp(opt, "unbind_timeout")) {
			if (!seconds(v, &o->unbind_timeout))
				return bad("unbind_timeout=%s is not a number "
					   "of seconds", v);
			return 0;
		}
		if (!strcmp(opt, "entry_timeout") ||
		    !strcmp(opt, "attr_timeout")) {
			if (!seconds(v, opt[0] == 'e' ? &o->entry_timeout :
				     &o->attr_timeout))
				return bad("%s is not a number of seconds", v);
			return 0;
		}
		if (!strcmp(opt, "transport")) {
			if (!strcmp(v, "auto"))
				o->transport = TRANSPORT_AUTO;
			else if (!strcmp(v, "io_uring"))
				o->transport = TRANSPORT_URING;
			else if (!strcmp(v, "devfuse"))
				o->transport = TRANSPORT_DEVFUSE;
			else
				return bad("transport=%s is not one of auto, "
					   "io_uring, devfuse", v);
			return 0;
		}
		if (!strcmp(opt, "read_ahead_kb") ||
		    !strcmp(opt, "max_dirty_ratio")) {
			bool ra = opt[0] == 'r';
			char *end;
			long n = strtol(v, &end, 10);

			if (end == v || *end || n < 1 ||
			    n > (ra ? 65536 : 100))
				return bad(ra ? "read_ahead_kb=%s is not a "
					   "number of KiB from 1 to 65536" :
					   "max_dirty_ratio=%s is not a "
					   "percentage from 1 to 100", v);
			*(ra ? &o->read_ahead_kb : &o->max_dirty_ratio) = n;
			return 0;
		}
		if (!strcmp(opt, "comment") || !strncmp(opt, "x-", 2) ||
		    !strcmp(opt, "fsname") || !strcmp(opt, "subtype"))
			return 0;
		v[-1] = '=';
		return bad("unknown mount option '%s'", opt);
	}
	if (in_list(valued, opt))
		return bad("mount option '%s' needs a value", opt);
	if (!strcmp(opt, "ro")) {
		o->readonly = true;
		return 0;
	}
	if (!strcmp(opt, "rw")) {
		o->readonly = false;
		return 0;
	}
	if (!strcmp(opt, "allow_other")) {
		o->allow_other = true;
		return 0;
	}
	if (!strcmp(opt, "allow_root")) {
		o->allow_root = true;
		return 0;
	}
	if (!strncmp(opt, "x-", 2))
		return 0;
	if (in_list(ignored, opt))
		return 0;
	if (in_list(kernel, opt))
		return add_kernel_opt(o, opt);
	return bad("unknown mount option '%s'", opt);
}

static int parse_opts(struct options *o, const char *list)
{
	char *copy = strdup(list), *p = copy, *start = copy;
	int ret = 0;

	if (!copy)
		return 1;
	/* split on unescaped commas; "\," is a literal comma */
	for (char *w = copy;; p++) {
		if (*p == '\\' && p[1]) {
			*w++ = *++p;
			continue;
		}
		if (*p == ',' || !*p) {
			bool end = !*p;

			*w = '\0';
			ret = parse_one(o, start);
			if (ret || end)
				break;
			start = w = p + 1;
			continue;
		}
		*w++ = *p;
	}
	free(copy);
	return ret;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	o->unbind_timeout = 10;
	o->entry_timeout = 60;
	o->attr_timeout = 60;
	o->read_ahead_kb = 1024;
	o->max_dirty_ratio = 20;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "fdso:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'f': o->foreground = true; break;
		case 'd': o->foreground = o->debug = true; break;
		case 's': o->single = true; break;
		case 'o':
			ret = parse_opts(o, optarg);
			if (ret)
				return ret;
			break;
		case 'h': fputs(usage, stdout); exit(0);
		case 'V':
			printf("daxfs %s (format %d.%d, FUSE %d.%d)\n",
			       DAXFS_VERSION, DAXFS_VERSION_MAJOR,
			       DAXFS_VERSION_MINOR, FUSE_MAJOR_VERSION,
			       FUSE_MINOR_VERSION);
			exit(0);
		default: {
			char s[3] = { '-', (char)optopt, 0 };

			return bad(optopt == 'o' ? "-o needs a list of options"
				   : "unknown option '%s'",
				   optopt ? s : argv[optind - 1]);
		}
		}
	}
	if (argc - optind != 2)
		return bad("%s", argc - optind < 2 ?
			   "needs REGION and MOUNTPOINT" : "too many arguments");
	o->region = argv[optind];
	o->mountpoint = argv[optind + 1];
	return 0;
}

/* check_mountpoint -- a one-line reason instead of libfuse's */
static int check_mountpoint(const char *mp)
{
	struct stat st;

	if (stat(mp, &st)) {
		fprintf(stderr, "daxfs: %s: mount point %s\n", mp,
			errno == ENOENT ? "does not exist" : strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "daxfs: %s: mount point is not a directory\n",
			mp);
		return 1;
	}
	return 0;
}

/* background -- fork; the parent exits with what the child reports */
static int background(int *notify_fd)
{
	int p[2];
	pid_t pid;
	char status = 1;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;	/* the child died before reporting */
		_exit(status);
	}
	close(p[0]);
	*notify_fd = p[1];
	return 0;
}

static void notify(int *fd, char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1)
		syslog(LOG_WARNING, "daxfs: cannot report to the parent");
	close(*fd);
	*fd = -1;
}

static void detach(void)
{
	int null = open("/dev/null", O_RDWR);

	setsid();
	if (chdir("/"))
		syslog(LOG_WARNING, "daxfs: chdir /: %s", strerror(errno));
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

/*
 * tune_bdi -- the kernel gives every FUSE mount a 128 KiB readahead window
 * (whatever max_readahead we ask for) and a strict 1% share of dirty page
 * cache, to protect against daemons that cannot be trusted to write back.
 * daxfs serves reads from memory and is run by root: raise both through
 * the mount's backing device in sysfs, found in our own mountinfo (a stat
 * of the mount point would be a request to ourselves).  Best effort.
 */
static void tune_bdi(const char *mountpoint, const struct options *o)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], dev[32] = "", path[128];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096], fstype[64], maj_min[32];

		/* id parent maj:min root mountpoint opts ... - fstype ... */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", maj_min, mp) != 2)
			continue;
		if (strcmp(mp, mountpoint) || !strstr(line, " - fuse.daxfs "))
			continue;
		if (sscanf(strstr(line, " - ") + 3, "%63s", fstype) == 1)
			str_copy(dev, sizeof(dev), maj_min);
	}
	fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%ld\n", o->read_ahead_kb);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/max_ratio", dev);
	if ((f = fopen(path, "w"))) {
		fprintf(f, "%ld\n", o->max_dirty_ratio);
		fclose(f);
	}
}

static struct fuse_session *new_session(struct options *o, struct daemon *d)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	char opt[PATH_MAX + 64];

	fuse_opt_add_arg(&args, "daxfs");
	if (o->debug)
		fuse_opt_add_arg(&args, "-d");
	snprintf(opt, sizeof(opt), "-osubtype=daxfs,default_permissions%s%s%s",
		 o->readonly ? ",ro" : "", o->allow_other ? ",allow_other" : "",
		 o->allow_root ? ",allow_root" : "");
	fuse_opt_add_arg(&args, opt);
	if (o->kernel_opts[0]) {
		snprintf(opt, sizeof(opt), "-o%s", o->kernel_opts);
		fuse_opt_add_arg(&args, opt);
	}
	/* the region path may hold commas: escape them for the -o list */
	{
		char *list = NULL;
		char fsname[PATH_MAX + 16];

		snprintf(fsname, sizeof(fsname), "fsname=%s", o->region);
		if (fuse_opt_add_opt_escaped(&list, fsname) == 0) {
			snprintf(opt, sizeof(opt), "-o%s", list);
			fuse_opt_add_arg(&args, opt);
		}
		free(list);
	}
	se = fuse_session_new(&args, &daxfs_ops, sizeof(daxfs_ops), d);
	fuse_opt_free_args(&args);
	return se;
}

int main(int argc, char **argv)
{
	struct options o;
	struct daemon d;
	struct mount_opts mo;
	int notify_fd = -1, ret;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	/* worker threads come and go: few malloc arenas keep memory down,
	 * and a fixed mmap threshold gives each worker's 1 MiB request
	 * buffer back to the system when the worker exits (glibc would
	 * otherwise raise the threshold after the first such free and keep
	 * later buffers in an arena, touched and resident) */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret;
	if (check_mountpoint(o.mountpoint))
		return 1;
	if (o.transport != TRANSPORT_DEVFUSE) {
		const char *why;
		bool offered = transport_uring_offered(&why);

		if (!offered && o.transport == TRANSPORT_URING) {
			fprintf(stderr, "daxfs: transport=io_uring: %s\n", why);
			return 1;
		}
		if (!offered)
			o.transport = TRANSPORT_DEVFUSE;
	}
	if (!o.foreground && background(&notify_fd)) {
		fprintf(stderr, "daxfs: cannot go to the background: %s\n",
			strerror(errno));
		return 1;
	}
	openlog("daxfs", LOG_PID | (o.foreground ? LOG_PERROR : 0),
		LOG_DAEMON);
	if (!realpath(o.mountpoint, d.mountpoint))
		snprintf(d.mountpoint, sizeof(d.mountpoint), "%s",
			 o.mountpoint);
	snprintf(d.region, sizeof(d.region), "%s", o.region);
	d.unbind_timeout_ms = (uint64_t)(o.unbind_timeout * 1000);
	d.entry_timeout = o.entry_timeout;
	d.attr_timeout = o.attr_timeout;
	d.readonly = o.readonly;
	d.owner_uid = getuid();

	mo.readonly = o.readonly;
	ret = fs_mount(o.region, &mo, &d.fs);
	if (ret) {
		fprintf(stderr, "daxfs: %s: %s\n", o.region,
			daxfs_errmsg(ret));
		notify(&notify_fd, 1);
		return 1;
	}
	if (d.fs->orphans_freed)
		syslog(LOG_INFO, "daxfs: %s: freed %llu orphaned inodes",
		       o.region, (unsigned long long)d.fs->orphans_freed);
	if (gate_init(&d.gate) || mapping_init(&d.map))
		goto err_fs;
	d.se = new_session(&o, &d);
	if (!d.se) {
		fprintf(stderr, "daxfs: %s: cannot start a FUSE session\n",
			o.mountpoint);
		goto err_fs;
	}
	if (fuse_set_signal_handlers(d.se))
		goto err_session;
	if (fuse_session_mount(d.se, o.mountpoint)) {
		fprintf(stderr, "daxfs: %s: cannot mount (is /dev/fuse "
			"available and are you allowed to mount?)\n",
			o.mountpoint);
		goto err_signals;
	}
	tune_bdi(d.mountpoint, &o);
	if (o.transport != TRANSPORT_DEVFUSE) {
		ret = transport_start(&d);
		if (ret) {
			fprintf(stderr, "daxfs: cannot start FUSE over io_uring: "
				"%s\n", strerror(-ret));
			goto err_unmount;
		}
	}
	ret = unbind_start(&d);
	if (ret) {
		fprintf(stderr, "daxfs: cannot start the unbind watcher: %s\n",
			strerror(-ret));
		goto err_unmount;
	}
	notify(&notify_fd, 0);
	if (!o.foreground)
		detach();

	if (o.single) {
		ret = fuse_session_loop(d.se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();

		/* a few idle workers are enough on the machines daxfs runs
		 * on; each keeps a 1 MiB request buffer */
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_idle_threads(cfg, 4);
		fuse_loop_cfg_set_max_threads(cfg, 32);
		ret = fuse_session_loop_mt(d.se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	unbind_stop(&d);
	fuse_session_unmount(d.se);
	/* the connection is gone: every ring entry has been ended */
	transport_stop(&d);
	/* keep libfuse's handlers until the region is clean: a SIGTERM now
	 * (systemd at shutdown) only sets a flag instead of killing us
	 * half way through writing it back */
	ret = fs_unmount(d.fs, true);
	if (ret)
		syslog(LOG_ERR, "daxfs: %s: unmount: %s", o.region,
		       daxfs_errmsg(ret));
	fuse_remove_signal_handlers(d.se);
	fuse_session_destroy(d.se);
	d.se = NULL;
	mapping_destroy(&d.map);
	gate_destroy(&d.gate);
	closelog();
	return ret ? 1 : 0;

err_unmount:
	fuse_session_unmount(d.se);
	transport_stop(&d);
err_signals:
	fuse_remove_signal_handlers(d.se);
err_session:
	fuse_session_destroy(d.se);
err_fs:
	fs_unmount(d.fs, true);
	notify(&notify_fd, 1);
	return 1;
}
