/*
 * daxfsctl.c -- the daxfs administration tool: mkfs, fsck, info, list,
 * status and unbind.  Also installed as mkfs.daxfs, which behaves as
 * "daxfsctl mkfs".
 *
 * Every error a person can cause is one line naming the thing and the
 * reason; usage errors exit 2, failures 1 (fsck has its own statuses).
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <daxctl/libdaxctl.h>

#include "daxfs_i.h"
#include "daxfsctl.h"
#include "json.h"

static const char *prog = "daxfsctl";

/* usage_error -- a usage error: one line, exit 2 */
static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	/* mkfs.daxfs is the mkfs command under another name */
	if (strcmp(prog, "daxfsctl"))
		cmd = NULL;
	fprintf(stderr, "%s%s%s: ", prog, cmd ? " " : "", cmd ? cmd : "");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see '%s%s%s --help'\n", prog, cmd ? " " : "",
		cmd ? cmd : "");
	return 2;
}

/* find_option -- the entry of lo a typed option names, or NULL */
static const struct option *find_option(const struct option *lo,
					const char *typed)
{
	for (; lo->name; lo++)
		if (typed[1] == '-' ? !strcmp(typed + 2, lo->name) :
		    typed[1] == lo->val && !typed[2])
			return lo;
	return NULL;
}

/* ctl_bad_option -- report what getopt rejected, in one line, naming
 * the option as it was typed and what is wrong with it */
int ctl_bad_option(const char *cmd, char **argv, const struct option *lo,
		   int exit_code)
{
	const char *typed = argv[optind - 1];
	char o[3] = { '-', (char)optopt, 0 };
	const struct option *known;
	bool has_value = false;
	char name[128];

	if (!strncmp(typed, "--", 2)) {
		/* "--label" missing its value, or "--json=1" */
		has_value = strchr(typed, '=') != NULL;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(typed, "="),
			 typed);
		typed = name;
	} else if (optopt) {
		typed = o;
	}
	known = find_option(lo, typed);
	if (known && known->has_arg == required_argument && !has_value)
		usage_error(cmd, "option '%s' needs a value", typed);
	else if (known && known->has_arg == no_argument && has_value)
		usage_error(cmd, "option '%s' takes no value", typed);
	else
		usage_error(cmd, "unknown option '%s'", typed);
	return exit_code;
}

static const char mkfs_help[] =
"Usage: daxfsctl mkfs [--size SIZE] [--label LABEL] [--inodes N] [--force] REGION\n"
"\n"
"Format REGION as a daxfs filesystem.\n"
"\n"
"REGION is /dev/daxX.Y, a bare device name daxX.Y, or a path to a regular\n"
"file (a file region, typically on /dev/shm).\n"
"\n"
"  -s, --size SIZE     size to format; K, M, G and T suffixes are binary.\n"
"                      A missing file is created with this size and an\n"
"                      existing file is resized to it.  Default: all of it.\n"
"  -L, --label LABEL   a label of up to 63 bytes\n"
"  -N, --inodes N      inode slots (default: one per 16 KiB of region)\n"
"  -f, --force         overwrite a region that already holds daxfs\n"
"  -h, --help          show this help\n"
"  -V, --version       show the version\n";

static int cmd_mkfs(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' },
		{ "label", required_argument, NULL, 'L' },
		{ "inodes", required_argument, NULL, 'N' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct mkfs_opts o = { 0 };
	struct region *r = NULL;
	const char *spec;
	uint64_t min;
	bool force = false, created = false;
	struct stat st;
	char a[32], b[32];
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:L:N:fhV", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &o.size) || !o.size)
				return usage_error("mkfs", "invalid size '%s' "
						   "(use e.g. 1G or 512M)",
						   optarg);
			break;
		case 'L':
			if (strlen(optarg) >= DAXFS_LABEL_MAX)
				return usage_error("mkfs", "label '%s' is "
						   "longer than 63 bytes",
						   optarg);
			o.label = optarg;
			break;
		case 'N':
			if (parse_size(optarg, &o.ninodes) || o.ninodes < 16)
				return usage_error("mkfs", "invalid inode count "
						   "'%s'", optarg);
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			/* mkfs.daxfs shows its own name */
			if (strcmp(prog, "daxfsctl"))
				printf("Usage: %s%s", prog,
				       strstr(mkfs_help, " [--size"));
			else
				fputs(mkfs_help, stdout);
			return 0;
		case 'V':
			printf("%s %s (format %d.%d)\n", prog, DAXFS_VERSION,
			       DAXFS_VERSION_MAJOR, DAXFS_VERSION_MINOR);
			return 0;
		default:
			return ctl_bad_option("mkfs", argv, lo, 2);
		}
	}
	if (optind != argc - 1)
		return usage_error("mkfs", "%s", optind >= argc ?
				   "no region given" : "too many arguments");
	spec = argv[optind];
	if (o.ninodes)
		o.ninodes++;		/* slot 0 is never used */
	min = super_min_size(2ULL << 20, o.ninodes);
	if (o.size && o.size < min && !region_spec_is_devdax(spec)) {
		fprintf(stderr, "%s: %s: size %s is too small%s; the minimum "
			"is %s\n", prog, spec, format_size(o.size, a, sizeof(a)),
			o.ninodes ? " for that many inodes" : "",
			format_size(min, b, sizeof(b)));
		return 1;
	}
	if (stat(spec, &st) && errno == ENOENT && !region_spec_is_devdax(spec)) {
		if (!o.size) {
			fprintf(stderr, "%s: %s: no such file; give --size to "
				"create a file region\n", prog, spec);
			return 1;
		}
		created = true;
	}
	/*
	 * An existing region is looked at before anything changes it: a
	 * refused mkfs must not have resized (truncated) the file.
	 */
	if (!created) {
		ret = region_open(spec, 0, 0, &r);
		if (ret) {
			fprintf(stderr, "%s: %s: %s\n", prog, spec,
				daxfs_errmsg(ret));
			return 1;
		}
		if (!force && super_has_magic(r)) {
			fprintf(stderr, "%s: %s: already holds a daxfs "
				"filesystem; use --force to overwrite it\n",
				prog, spec);
			region_close(r);
			return 1;
		}
		if (o.size && r->kind == REGION_KIND_FILE && o.size != r->size) {
			/* reopen to resize, still refusing a mounted one */
			region_close(r);
			r = NULL;
		}
	}
	if (!r) {
		ret = region_open(spec, REGION_CREATE, o.size, &r);
		if (ret) {
			fprintf(stderr, "%s: %s: %s\n", prog, spec,
				daxfs_errmsg(ret));
			if (created)
				unlink(spec);
			return 1;
		}
	}
	o.uid = getuid();
	o.gid = getgid();
	ret = daxfs_mkfs(r, &o);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", prog, spec, daxfs_errmsg(ret));
		region_close(r);
		if (created)
			unlink(spec);
		return 1;
	} else {
		struct daxfs_dsb sb;
		bool backup;

		super_read(r, &sb, &backup);
		printf("%s: formatted %s: %s, %llu inodes, data aligned to "
		       "%s\n", prog, spec,
		       format_size(sb.region_size, a, sizeof(a)),
		       (unsigned long long)(sb.ninodes - 1),
		       format_size(sb.data_align, b, sizeof(b)));
	}
	region_close(r);
	return 0;
}

static const char info_help[] =
"Usage: daxfsctl info [--json] REGION\n"
"\n"
"Show the superblock, geometry and usage of a daxfs region.  Works on a\n"
"mounted region too (the figures are then a snapshot).\n"
"\n"
"  -j, --json   print one JSON object\n"
"  -h, --help   show this help\n";

static void uuid_str(const uint8_t *u, char *out)
{
	sprintf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		"%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
		u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		u[15]);
}

/* count_used_inodes -- scan the inode table */
static int count_used_inodes(struct region *r, const struct daxfs_dsb *sb,
			     uint64_t *used)
{
	struct daxfs_dinode d[64];
	int ret = 0;

	*used = 0;
	for (uint64_t i = 0; i < sb->ninodes && !ret; i += 64) {
		uint64_t n = MIN(64, sb->ninodes - i);
		uint64_t off = FS_BLOCK_OFF(sb->itable_start) +
			       i * DAXFS_INODE_SIZE;
		uint64_t next = region_next_data(r, off,
				FS_BLOCK_OFF(sb->itable_start) +
				sb->ninodes * DAXFS_INODE_SIZE);

		/* holes in a sparse file region are unused slots */
		if (next >= off + 64 * DAXFS_INODE_SIZE) {
			i = ALIGN_DOWN((next - FS_BLOCK_OFF(sb->itable_start)) /
				       DAXFS_INODE_SIZE, 64) - 64;
			continue;
		}
		ret = region_read(r, FS_BLOCK_OFF(sb->itable_start) +
				  i * DAXFS_INODE_SIZE, d,
				  n * DAXFS_INODE_SIZE);
		for (uint64_t k = 0; k < n; k++)
			if (d[k].mode && i + k)
				(*used)++;
	}
	return ret;
}

static int count_free_blocks(struct region *r, const struct daxfs_dsb *sb,
			     uint64_t *free_blocks)
{
	uint64_t words = DIV_ROUND_UP(sb->nblocks, 64), n = 0;
	uint64_t *map = malloc(words * 8);
	int ret;

	if (!map)
		return -ENOMEM;
	ret = region_read(r, FS_BLOCK_OFF(sb->bitmap_start), map, words * 8);
	for (uint64_t b = 0; !ret && b < sb->nblocks; b++)
		n += !(map[b / 64] & (1ULL << (b % 64)));
	free(map);
	*free_blocks = n;
	return ret;
}

static const char *time_str(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t)
		return "never";
	localtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
	return buf;
}

static int cmd_info(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daxfs_dsb sb;
	struct region *r;
	bool json = false, backup;
	uint64_t used_inodes, free_blocks, jseq = 0;
	char uuid[40], mnt[PATH_MAX] = "";
	int c, ret, pending, holder;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(info_help, stdout); return 0;
		default: return ctl_bad_option("info", argv, lo, 2);
		}
	}
	if (optind != argc - 1)
		return usage_error("info", "%s", optind >= argc ?
				   "no region given" : "too many arguments");
	ret = region_open(argv[optind], REGION_RDONLY | REGION_NOLOCK, 0, &r);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			daxfs_errmsg(ret));
		return 1;
	}
	ret = super_read(r, &sb, &backup);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind],
			daxfs_errmsg(ret));
		region_close(r);
		return 1;
	}
	pending = journal_recover(r, &sb, false, &jseq);
	if (pending < 0 || count_used_inodes(r, &sb, &used_inodes) ||
	    count_free_blocks(r, &sb, &free_blocks)) {
		fprintf(stderr, "%s: %s: cannot read the metadata: %s\n", prog,
			argv[optind], daxfs_errmsg(pending < 0 ? pending : -EIO));
		region_close(r);
		return 1;
	}
	holder = region_lock_holder(r->path);
	ctl_find_mount(r->path, mnt, sizeof(mnt));
	uuid_str(sb.uuid, uuid);
	char label[DAXFS_LABEL_MAX + 1];

	memcpy(label, sb.label, DAXFS_LABEL_MAX);
	label[DAXFS_LABEL_MAX] = 0;
	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_open(&j, NULL);
		json_str(&j, "region", r->path);
		json_str(&j, "kind", r->kind == REGION_KIND_DEVDAX ? "devdax" :
			 "file");
		json_str(&j, "label", label);
		json_str(&j, "uuid", uuid);
		json_u64(&j, "version_major", sb.version_major);
		json_u64(&j, "version_minor", sb.version_minor);
		json_str(&j, "state", sb.state == DAXFS_STATE_CLEAN ?
			 "clean" : "mounted");
		json_bool(&j, "backup_superblock_used", backup);
		json_u64(&j, "size", sb.region_size);
		json_u64(&j, "block_size", sb.block_size);
		json_u64(&j, "data_align", sb.data_align);
		json_u64(&j, "blocks", sb.nblocks);
		json_u64(&j, "data_blocks", sb.nblocks - sb.data_start - 1);
		json_u64(&j, "free_blocks", free_blocks);
		json_u64(&j, "used_data_blocks",
			 sb.nblocks - sb.data_start - 1 - free_blocks);
		json_u64(&j, "inodes", sb.ninodes - 1);
		json_u64(&j, "used_inodes", used_inodes);
		json_u64(&j, "free_inodes", sb.ninodes - 1 - used_inodes);
		json_u64(&j, "journal_bytes", FS_BLOCK_OFF(sb.journal_blocks));
		json_bool(&j, "journal_pending", pending > 0);
		json_u64(&j, "mount_count", sb.mount_count);
		json_u64(&j, "mkfs_time", sb.mkfs_time);
		json_u64(&j, "mount_time", sb.mount_time);
		json_u64(&j, "write_time", sb.write_time);
		if (holder > 0)
			json_i64(&j, "in_use_by_pid", holder);
		else
			json_null(&j, "in_use_by_pid");
		if (mnt[0])
			json_str(&j, "mountpoint", mnt);
		else
			json_null(&j, "mountpoint");
		json_obj_open(&j, "layout");
		json_u64(&j, "bitmap_start", sb.bitmap_start);
		json_u64(&j, "bitmap_blocks", sb.bitmap_blocks);
		json_u64(&j, "journal_start", sb.journal_start);
		json_u64(&j, "journal_blocks", sb.journal_blocks);
		json_u64(&j, "itable_start", sb.itable_start);
		json_u64(&j, "itable_blocks", sb.itable_blocks);
		json_u64(&j, "data_start", sb.data_start);
		json_u64(&j, "backup_block", sb.backup_block);
		json_obj_close(&j);
		json_obj_close(&j);
		json_end(&j);
	} else {
		char s1[32], s2[32], s3[32], t[64];
		uint64_t data = sb.nblocks - sb.data_start - 1;

		printf("region:       %s (%s)\n", r->path,
		       r->kind == REGION_KIND_DEVDAX ? "device-DAX" :
		       "file region");
		printf("label:        %s\n", label[0] ? label : "(none)");
		printf("uuid:         %s\n", uuid);
		printf("version:      %u.%u\n", sb.version_major,
		       sb.version_minor);
		printf("state:        %s%s\n", sb.state == DAXFS_STATE_CLEAN ?
		       "clean" : holder > 0 ? "mounted" :
		       "not cleanly unmounted",
		       backup ? " (primary superblock damaged; backup used)" :
		       "");
		if (holder > 0)
			printf("in use by:    pid %d%s%s\n", holder,
			       mnt[0] ? ", mounted at " : "", mnt);
		printf("size:         %s (%llu bytes)\n",
		       format_size(sb.region_size, s1, sizeof(s1)),
		       (unsigned long long)sb.region_size);
		printf("block size:   %u, data aligned to %s\n", sb.block_size,
		       format_size(sb.data_align, s1, sizeof(s1)));
		printf("data:         %s used of %s, %s free (%.1f%%)\n",
		       format_size(FS_BLOCK_OFF(data - free_blocks), s1,
				   sizeof(s1)),
		       format_size(FS_BLOCK_OFF(data), s2, sizeof(s2)),
		       format_size(FS_BLOCK_OFF(free_blocks), s3, sizeof(s3)),
		       data ? 100.0 * (double)free_blocks / (double)data : 0);
		printf("inodes:       %llu used of %llu\n",
		       (unsigned long long)used_inodes,
		       (unsigned long long)(sb.ninodes - 1));
		printf("journal:      %s%s\n",
		       format_size(FS_BLOCK_OFF(sb.journal_blocks), s1,
				   sizeof(s1)),
		       pending > 0 ? ", one committed transaction to replay" :
		       ", empty");
		printf("mounts:       %u\n", sb.mount_count);
		printf("created:      %s\n", time_str(sb.mkfs_time, t,
						       sizeof(t)));
		printf("last mount:   %s\n", time_str(sb.mount_time, t,
						       sizeof(t)));
		printf("last write:   %s\n", time_str(sb.write_time, t,
						       sizeof(t)));
	}
	region_close(r);
	return 0;
}

static const char list_help[] =
"Usage: daxfsctl list [--json]\n"
"\n"
"List the device-DAX devices libdaxctl sees and the daxfs filesystems\n"
"mounted on this system.  --json prints one JSON array ([] when there is\n"
"nothing), each element with \"type\": \"device\" or \"mount\".\n"
"\n"
"  -j, --json   print JSON\n"
"  -h, --help   show this help\n";

static void quiet_log(struct daxctl_ctx *ctx, int pri, const char *file,
		      int line, const char *fn, const char *fmt, va_list ap)
{
	(void)ctx; (void)pri; (void)file; (void)line; (void)fn; (void)fmt;
	(void)ap;
}

static int cmd_list(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daxctl_ctx *ctx = NULL;
	struct daxctl_region *reg;
	struct daxctl_dev *dev;
	struct ctl_mount *m = NULL;
	struct json j;
	bool json = false;
	int c, ndev = 0, nm;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(list_help, stdout); return 0;
		default: return ctl_bad_option("list", argv, lo, 2);
		}
	}
	if (optind != argc)
		return usage_error("list", "%s", "takes no arguments");
	if (json) {
		json_init(&j, stdout);
		json_arr_open(&j, NULL);
	}
	if (daxctl_new(&ctx) == 0) {
		daxctl_set_log_fn(ctx, quiet_log);
		daxctl_region_foreach(ctx, reg) {
			daxctl_dev_foreach(reg, dev) {
				const char *name = daxctl_dev_get_devname(dev);
				bool en = daxctl_dev_is_enabled(dev);
				char s[32];

				ndev++;
				if (json) {
					json_obj_open(&j, NULL);
					json_str(&j, "type", "device");
					json_str(&j, "name", name);
					json_u64(&j, "size",
						 daxctl_dev_get_size(dev));
					json_u64(&j, "align",
						 daxctl_dev_get_align(dev));
					json_bool(&j, "enabled", en);
					json_obj_close(&j);
				} else {
					printf("device  %-10s %10s  align %lu  "
					       "%s\n", name,
					       format_size(daxctl_dev_get_size(
						       dev), s, sizeof(s)),
					       daxctl_dev_get_align(dev),
					       en ? "enabled" : "disabled");
				}
			}
		}
		daxctl_unref(ctx);
	}
	nm = ctl_list_mounts(&m);
	for (int k = 0; k < nm; k++) {
		if (json) {
			json_obj_open(&j, NULL);
			json_str(&j, "type", "mount");
			json_str(&j, "source", m[k].source);
			json_str(&j, "mountpoint", m[k].mountpoint);
			json_str(&j, "options", m[k].options);
			json_obj_close(&j);
		} else {
			printf("mount   %s on %s (%s)\n", m[k].source,
			       m[k].mountpoint, m[k].options);
		}
	}
	free(m);
	if (json) {
		json_arr_close(&j);
		json_end(&j);
	} else {
		if (!ndev)
			printf("no device-DAX devices\n");
		if (nm <= 0)
			printf("no daxfs mounts\n");
	}
	return 0;
}

static const char main_help[] =
"Usage: daxfsctl COMMAND [OPTIONS] ...\n"
"\n"
"Administer daxfs, the FUSE filesystem for device-DAX memory.\n"
"\n"
"Commands:\n"
"  mkfs [--size SIZE] [--label L] [--inodes N] [--force] REGION\n"
"                              format a region\n"
"  fsck [--repair] [--json] REGION\n"
"                              check (and repair) a region\n"
"  info [--json] REGION        superblock, geometry and usage\n"
"  list [--json]               device-DAX devices and daxfs mounts\n"
"  status [--json] MOUNTPOINT  state of a running daxfs\n"
"  unbind [--timeout SECONDS] [--json] MOUNTPOINT\n"
"                              revoke, drain and release a mount's region\n"
"  help, -h, --help            this help\n"
"  -V, --version               the version\n"
"\n"
"'daxfsctl COMMAND --help' describes each command.\n";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "mkfs", cmd_mkfs },
	{ "fsck", cmd_fsck },
	{ "info", cmd_info },
	{ "list", cmd_list },
	{ "status", cmd_status },
	{ "unbind", cmd_unbind },
};

int main(int argc, char **argv)
{
	char *base = basename(argv[0]);

	if (!strcmp(base, "mkfs.daxfs")) {
		prog = "mkfs.daxfs";
		return cmd_mkfs(argc, argv);
	}
	if (argc < 2) {
		fputs(main_help, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		fputs(main_help, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("daxfsctl %s (format %d.%d)\n", DAXFS_VERSION,
		       DAXFS_VERSION_MAJOR, DAXFS_VERSION_MINOR);
		return 0;
	}
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if (!strcmp(argv[1], cmds[k].name))
			return cmds[k].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown %s '%s'; see 'daxfsctl --help'\n",
		prog, argv[1][0] == '-' ? "option" : "command", argv[1]);
	return 2;
}
