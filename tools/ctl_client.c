/*
 * ctl_client.c -- daxfsctl status and unbind: asking a running daxfs
 * through ioctls on its mount root (see src/ctl.h).  Both keep working
 * while the daemon's gate is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alive.h"
#include "ctl.h"
#include "daxfsctl.h"
#include "json.h"
#include "util.h"

/* open_mount -- the mount root of a daxfs, or -1 after one line */
static int open_mount(const char *cmd, const char *mp)
{
	struct ctl_mount *m;
	char want[4096], have[4096];
	int n = ctl_list_mounts(&m), fd;
	bool found = false;

	if (!realpath(mp, want)) {
		fprintf(stderr, "daxfsctl %s: %s: %s\n", cmd, mp,
			strerror(errno));
		free(m);
		return -1;
	}
	for (int k = 0; k < n && !found; k++)
		found = realpath(m[k].mountpoint, have) && !strcmp(have, want);
	free(m);
	if (!found) {
		fprintf(stderr, "daxfsctl %s: %s: not a daxfs mount point\n",
			cmd, mp);
		return -1;
	}
	fd = open(want, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "daxfsctl %s: %s: cannot open: %s\n", cmd, mp,
			strerror(errno));
	return fd;
}

static int get_status(const char *cmd, int fd, const char *mp,
		      struct daxfs_ctl_status *st)
{
	if (ioctl(fd, DAXFS_IOC_STATUS, st)) {
		fprintf(stderr, "daxfsctl %s: %s: the daemon does not answer: "
			"%s\n", cmd, mp, strerror(errno));
		return -1;
	}
	if (st->version != DAXFS_CTL_VERSION) {
		fprintf(stderr, "daxfsctl %s: %s: daemon speaks control "
			"version %u, this daxfsctl %u\n", cmd, mp, st->version,
			DAXFS_CTL_VERSION);
		return -1;
	}
	return 0;
}

static const char *phase_name(uint32_t phase)
{
	switch (phase) {
	case DAXFS_PHASE_REVOKING: return "revoking";
	case DAXFS_PHASE_DRAINING: return "draining";
	case DAXFS_PHASE_RELEASING: return "releasing";
	case DAXFS_PHASE_DONE: return "done";
	}
	return "starting";
}

static void report_json(struct json *j, const struct daxfs_ctl_report *r)
{
	if (!r->valid) {
		json_null(j, "unbind");
		return;
	}
	json_obj_open(j, "unbind");
	json_str(j, "phase", phase_name(r->phase));
	json_bool(j, "in_progress", r->phase != DAXFS_PHASE_DONE);
	json_bool(j, "forced", r->forced);
	json_str(j, "cause", r->cause);
	json_bool(j, "timed_out", r->timed_out);
	json_i64(j, "error", r->error);
	json_u64(j, "inodes_revoked", r->inodes_revoked);
	json_u64(j, "requests_drained", r->requests_drained);
	json_u64(j, "requests_refused", r->requests_refused);
	json_u64(j, "bytes_written_back", r->bytes_written_back);
	json_u64(j, "bytes_lost", r->bytes_lost);
	json_u64(j, "uring_cancelled", r->uring_cancelled);
	json_u64(j, "ms_revoke", r->ms_revoke);
	json_u64(j, "ms_drain", r->ms_drain);
	json_u64(j, "ms_release", r->ms_release);
	json_u64(j, "ms_total", r->ms_total);
	json_u64(j, "started_unix_ms", r->started_unix_ms);
	json_str(j, "holders", r->holders);
	json_obj_close(j);
}

static void status_json(const struct daxfs_ctl_status *st)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_open(&j, NULL);
	json_str(&j, "mountpoint", st->mountpoint);
	json_str(&j, "region", st->region);
	json_str(&j, "kind", st->kind);
	json_str(&j, "state", gate_state_name((int)st->state));
	json_u64(&j, "pid", st->pid);
	json_u64(&j, "open_files", st->open_files);
	json_u64(&j, "inflight", st->inflight);
	json_str(&j, "inside", st->inside);
	json_u64(&j, "uring_ops", st->uring_ops);
	json_u64(&j, "page_users", st->page_users);
	json_str(&j, "transport", st->uring ? "io_uring" : "devfuse");
	json_u64(&j, "ring_queues", st->ring_queues);
	json_u64(&j, "ring_entries", st->ring_entries);
	json_u64(&j, "ring_requests", st->ring_requests);
	json_u64(&j, "size_bytes", st->size_bytes);
	json_u64(&j, "free_bytes", st->free_bytes);
	json_u64(&j, "inodes_used", st->inodes_used);
	json_u64(&j, "inodes_free", st->inodes_free);
	json_u64(&j, "unbind_timeout_ms", st->unbind_timeout_ms);
	json_bool(&j, "readonly", st->readonly);
	json_bool(&j, "error", st->fs_error);
	report_json(&j, &st->report);
	json_obj_close(&j);
	json_end(&j);
}

/*
 * report_text -- the unbind report.  While the unbind runs, phases done
 * show their figures, the current one what it has done so far, the
 * phases ahead nothing.
 */
static void report_text(const struct daxfs_ctl_report *r)
{
	bool done = r->phase == DAXFS_PHASE_DONE;
	const char *sofar = done ? "" : " so far";
	char a[32], b[32];

	if (!r->valid)
		return;
	printf("unbind:       %s (%s)%s%s\n", r->forced ? "forced" : "orderly",
	       r->cause, done ? "" : ", in progress: ",
	       done ? "" : phase_name(r->phase));
	if (r->phase == DAXFS_PHASE_REVOKING)
		printf("  revoking:   %llu inodes in %llu ms so far\n",
		       (unsigned long long)r->inodes_revoked,
		       (unsigned long long)r->ms_revoke);
	else if (r->phase > DAXFS_PHASE_REVOKING)
		printf("  revoked:    %llu inodes in %llu ms\n",
		       (unsigned long long)r->inodes_revoked,
		       (unsigned long long)r->ms_revoke);
	if (r->phase == DAXFS_PHASE_DRAINING)
		printf("  draining:   %llu requests done in %llu ms so far\n",
		       (unsigned long long)r->requests_drained,
		       (unsigned long long)r->ms_drain);
	else if (r->phase > DAXFS_PHASE_DRAINING)
		printf("  drained:    %llu requests in %llu ms (%llu io_uring "
		       "ops cancelled)\n",
		       (unsigned long long)r->requests_drained,
		       (unsigned long long)r->ms_drain,
		       (unsigned long long)r->uring_cancelled);
	if (r->phase == DAXFS_PHASE_RELEASING)
		printf("  releasing:  for %llu ms so far\n",
		       (unsigned long long)r->ms_release);
	else if (done)
		printf("  released:   in %llu ms, %llu ms in all\n",
		       (unsigned long long)r->ms_release,
		       (unsigned long long)r->ms_total);
	printf("  refused:    %llu requests%s\n",
	       (unsigned long long)r->requests_refused, sofar);
	printf("  data:       %s written back, %s lost%s\n",
	       format_size(r->bytes_written_back, a, sizeof(a)),
	       format_size(r->bytes_lost, b, sizeof(b)), sofar);
	if (r->timed_out)
		printf("  timed out:  still inside: %s\n", r->holders);
	if (r->error)
		printf("  error:      %s\n", strerror((int)r->error));
}

static void status_text(const struct daxfs_ctl_status *st)
{
	char a[32], b[32];

	printf("mountpoint:   %s\n", st->mountpoint);
	printf("region:       %s (%s)\n", st->region,
	       !strcmp(st->kind, "devdax") ? "device-DAX" : "file region");
	printf("state:        %s%s%s\n", gate_state_name((int)st->state),
	       st->readonly ? ", read-only" : "",
	       st->fs_error ? ", refusing changes after an error" : "");
	printf("daemon:       pid %llu\n", (unsigned long long)st->pid);
	printf("open files:   %llu\n", (unsigned long long)st->open_files);
	printf("in flight:    %llu requests%s%s\n",
	       (unsigned long long)st->inflight, st->inside[0] ? ": " : "",
	       st->inside);
	printf("io_uring:     %llu operations of the daemon's own\n",
	       (unsigned long long)st->uring_ops);
	printf("page users:   %llu inodes with pages the kernel may cache\n",
	       (unsigned long long)st->page_users);
	if (st->uring)
		printf("transport:    io_uring, %u queues, %llu ring entries, "
		       "%llu requests served\n", st->ring_queues,
		       (unsigned long long)st->ring_entries,
		       (unsigned long long)st->ring_requests);
	else
		printf("transport:    /dev/fuse\n");
	printf("space:        %s free of %s\n",
	       format_size(st->free_bytes, a, sizeof(a)),
	       format_size(st->size_bytes, b, sizeof(b)));
	printf("inodes:       %llu used, %llu free\n",
	       (unsigned long long)st->inodes_used,
	       (unsigned long long)st->inodes_free);
	printf("unbind after: %.1f s at most\n",
	       (double)st->unbind_timeout_ms / 1000.0);
	report_text(&st->report);
}

static const char status_help[] =
"Usage: daxfsctl status [--json] MOUNTPOINT\n"
"\n"
"Show the state of the daxfs daemon serving MOUNTPOINT: live, revoking,\n"
"draining or released; open files, requests in flight and what they are\n"
"doing, the daemon's own io_uring operations, inodes whose pages the\n"
"kernel may cache, and the report of the last unbind.  Answers in every\n"
"state, including after the region was released.\n"
"\n"
"  -j, --json   print one JSON object\n"
"  -h, --help   show this help\n";

int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daxfs_ctl_status st;
	bool json = false;
	int c, fd;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(status_help, stdout); return 0;
		default: return ctl_bad_option("status", argv, lo, 2);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "daxfsctl status: %s; see 'daxfsctl status "
			"--help'\n", optind >= argc ? "no mount point given" :
			"too many arguments");
		return 2;
	}
	fd = open_mount("status", argv[optind]);
	if (fd < 0)
		return 1;
	if (get_status("status", fd, argv[optind], &st)) {
		close(fd);
		return 1;
	}
	close(fd);
	if (json)
		status_json(&st);
	else
		status_text(&st);
	return 0;
}

static const char unbind_help[] =
"Usage: daxfsctl unbind [--timeout SECONDS] [--json] MOUNTPOINT\n"
"\n"
"Release the region under MOUNTPOINT in order: refuse new opens (ENXIO)\n"
"and reads (EIO), revoke every mapping applications hold (dirty pages are\n"
"written back first; a later access raises SIGBUS), wait for requests in\n"
"flight, then persist, mark the region clean and let go of it.  Returns\n"
"when the region is released and prints what happened.  The mount stays\n"
"until it is unmounted; every operation on it fails meanwhile.\n"
"\n"
"  -t, --timeout SECONDS  how long to wait for requests in flight\n"
"                         (default: the mount's unbind_timeout)\n"
"  -j, --json             print the report as one JSON object\n"
"  -h, --help             show this help\n"
"\n"
"Exit status: 0 released, 1 error, 3 released after the wait timed out.\n";

int cmd_unbind(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daxfs_ctl_unbind u = { 0, 0 };
	struct daxfs_ctl_status st;
	bool json = false;
	double tmo = -1;
	uint64_t deadline;
	int c, fd;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "t:jh", lo, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;

			tmo = strtod(optarg, &end);
			if (end == optarg || *end || tmo <= 0 || tmo > 3600) {
				fprintf(stderr, "daxfsctl unbind: invalid "
					"timeout '%s' (seconds, 0 < t <= "
					"3600); see 'daxfsctl unbind --help'"
					"\n", optarg);
				return 2;
			}
			u.timeout_ms = (uint32_t)(tmo * 1000);
			if (!u.timeout_ms)
				u.timeout_ms = 1;
			break;
		}
		case 'j': json = true; break;
		case 'h': fputs(unbind_help, stdout); return 0;
		default: return ctl_bad_option("unbind", argv, lo, 2);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "daxfsctl unbind: %s; see 'daxfsctl unbind "
			"--help'\n", optind >= argc ? "no mount point given" :
			"too many arguments");
		return 2;
	}
	fd = open_mount("unbind", argv[optind]);
	if (fd < 0)
		return 1;
	if (ioctl(fd, DAXFS_IOC_UNBIND, &u) && errno != EALREADY) {
		fprintf(stderr, "daxfsctl unbind: %s: %s\n", argv[optind],
			errno == EPERM ? "only root or the user who mounted "
			"it may unbind" : strerror(errno));
		close(fd);
		return 1;
	}
	if (get_status("unbind", fd, argv[optind], &st)) {
		close(fd);
		return 1;
	}
	deadline = now_ns() + (st.unbind_timeout_ms + 60000ull +
			       (uint64_t)u.timeout_ms) * 1000000ull;
	while (st.state != GATE_RELEASED && now_ns() < deadline) {
		struct timespec ts = { 0, 2000000 };

		nanosleep(&ts, NULL);
		if (get_status("unbind", fd, argv[optind], &st)) {
			close(fd);
			return 1;
		}
	}
	close(fd);
	if (st.state != GATE_RELEASED) {
		fprintf(stderr, "daxfsctl unbind: %s: not released yet (state "
			"%s); see 'daxfsctl status'\n", argv[optind],
			gate_state_name((int)st.state));
		return 1;
	}
	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_obj_open(&j, NULL);
		json_str(&j, "mountpoint", st.mountpoint);
		json_str(&j, "region", st.region);
		json_str(&j, "state", gate_state_name((int)st.state));
		report_json(&j, &st.report);
		json_obj_close(&j);
		json_end(&j);
	} else {
		printf("%s: region %s released\n", st.mountpoint, st.region);
		report_text(&st.report);
	}
	return st.report.timed_out ? 3 : 0;
}
