/*
 * fsck_cmd.c -- daxfsctl fsck: the command line over fsck_run().
 *
 * Owns: the options, the output (one line per problem and a summary, or
 * one JSON object) and the exit status, which follows e2fsck: 0 no
 * errors, 1 errors corrected, 4 errors left uncorrected, 8 operational
 * error, 16 usage error.  Must never: print anything but the one-line
 * reason on an operational or usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daxfs_i.h"
#include "daxfsctl.h"
#include "fsck.h"
#include "json.h"

#define FSCK_OK		0
#define FSCK_CORRECTED	1
#define FSCK_UNCORRECTED 4
#define FSCK_ERROR	8
#define FSCK_USAGE	16

static const char fsck_help[] =
"Usage: daxfsctl fsck [--repair] [--json] REGION\n"
"\n"
"Check a daxfs region and, with --repair, fix what is wrong.  Checking\n"
"takes a shared lock (it works beside a read-only mount); repairing takes\n"
"the region for itself.  Neither works while a daemon has it mounted\n"
"read-write.  A committed journal transaction is checked as if it had\n"
"been replayed; --repair replays it.  Unconnected files and directories\n"
"are put in /lost+found as '#INODE'.\n"
"\n"
"  -r, --repair   fix the problems found\n"
"  -j, --json     print one JSON object instead of lines\n"
"  -h, --help     show this help\n"
"\n"
"Exit status: 0 no errors, 1 errors were corrected, 4 errors were left\n"
"uncorrected, 8 operational error, 16 usage error.\n";

/* what one run found, kept for --json */
struct out {
	const char *spec;
	bool json;
	struct item {
		char *msg;
		char *detail;		/* NULL if none */
		enum fsck_status st;
		bool note;
	} *v;
	size_t n, cap;
	bool oom;
};

/* keep -- remember a problem or note for the JSON object */
static void keep(struct out *o, const char *msg, const char *detail,
		 enum fsck_status st, bool note)
{
	struct item *it;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		struct item *v = realloc(o->v, cap * sizeof(*v));

		if (!v) {
			o->oom = true;
			return;
		}
		o->v = v;
		o->cap = cap;
	}
	it = &o->v[o->n];
	it->msg = strdup(msg);
	it->detail = (detail && st != FSCK_FOUND) ? strdup(detail) : NULL;
	it->st = st;
	it->note = note;
	if (!it->msg || (detail && st != FSCK_FOUND && !it->detail)) {
		free(it->msg);
		free(it->detail);
		o->oom = true;
		return;
	}
	o->n++;
}

/* on_problem -- one line per problem (or kept for --json) */
static void on_problem(void *arg, const char *msg, enum fsck_status st,
		       const char *detail)
{
	struct out *o = arg;

	if (o->json) {
		keep(o, msg, detail, st, false);
		return;
	}
	if (st == FSCK_FOUND)
		printf("daxfsctl fsck: %s: %s\n", o->spec, msg);
	else if (st == FSCK_FIXED)
		printf("daxfsctl fsck: %s: %s (fixed%s%s)\n", o->spec, msg,
		       detail ? ": " : "", detail ? detail : "");
	else
		printf("daxfsctl fsck: %s: %s (not fixed: %s)\n", o->spec,
		       msg, detail ? detail : "unknown reason");
}

/* on_note -- one line per note (or kept for --json) */
static void on_note(void *arg, const char *msg)
{
	struct out *o = arg;

	if (o->json)
		keep(o, msg, NULL, FSCK_FOUND, true);
	else
		printf("daxfsctl fsck: %s: note: %s\n", o->spec, msg);
}

/* exit_status -- e2fsck's statuses for a run that completed */
static int exit_status(const struct fsck_result *res)
{
	if (res->errors == 0)
		return FSCK_OK;
	if (res->fixed == res->errors)
		return FSCK_CORRECTED;
	return FSCK_UNCORRECTED;
}

/* print_json -- the whole run as one JSON object */
static void print_json(const struct out *o, const struct fsck_result *res,
		       bool repair, int status)
{
	struct json j;

	json_init(&j, stdout);
	json_obj_open(&j, NULL);
	json_str(&j, "region", o->spec);
	json_bool(&j, "repair", repair);
	json_bool(&j, "clean", res->errors == 0);
	json_u64(&j, "errors", res->errors);
	json_u64(&j, "fixed", res->fixed);
	json_u64(&j, "inodes", res->inodes);
	json_u64(&j, "data_bytes", FS_BLOCK_OFF(res->data_blocks));
	json_u64(&j, "used_bytes", FS_BLOCK_OFF(res->used_data_blocks));
	json_bool(&j, "marked_clean", res->marked_clean);
	json_i64(&j, "exit_status", status);
	json_arr_open(&j, "notes");
	for (size_t k = 0; k < o->n; k++)
		if (o->v[k].note)
			json_str(&j, NULL, o->v[k].msg);
	json_arr_close(&j);
	json_arr_open(&j, "problems");
	for (size_t k = 0; k < o->n; k++) {
		if (o->v[k].note)
			continue;
		json_obj_open(&j, NULL);
		json_str(&j, "message", o->v[k].msg);
		json_bool(&j, "fixed", o->v[k].st == FSCK_FIXED);
		if (o->v[k].detail)
			json_str(&j, "detail", o->v[k].detail);
		else
			json_null(&j, "detail");
		json_obj_close(&j);
	}
	json_arr_close(&j);
	json_obj_close(&j);
	json_end(&j);
}

/* print_summary -- the last line: clean, or how many errors */
static void print_summary(const struct out *o, const struct fsck_result *res,
			  bool repair)
{
	char used[32], total[32];

	if (res->errors == 0) {
		printf("daxfsctl fsck: %s: clean, %llu inodes, %s used of %s\n",
		       o->spec, (unsigned long long)res->inodes,
		       format_size(FS_BLOCK_OFF(res->used_data_blocks), used,
				   sizeof(used)),
		       format_size(FS_BLOCK_OFF(res->data_blocks), total,
				   sizeof(total)));
	} else if (repair) {
		printf("daxfsctl fsck: %s: %llu error%s, %llu fixed%s\n",
		       o->spec, (unsigned long long)res->errors,
		       res->errors == 1 ? "" : "s",
		       (unsigned long long)res->fixed,
		       res->fixed == res->errors ? "" :
		       "; the rest could not be repaired");
	} else {
		printf("daxfsctl fsck: %s: %llu error%s, 0 fixed; run "
		       "'daxfsctl fsck --repair %s'\n", o->spec,
		       (unsigned long long)res->errors,
		       res->errors == 1 ? "" : "s", o->spec);
	}
}

/* usage -- a usage error: one line, exit 16 */
static int usage(const char *what)
{
	fprintf(stderr, "daxfsctl fsck: %s; see 'daxfsctl fsck --help'\n",
		what);
	return FSCK_USAGE;
}

/* cmd_fsck -- daxfsctl fsck [--repair] [--json] REGION */
int cmd_fsck(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_opts fo = { 0 };
	struct fsck_result res;
	struct out o = { 0 };
	int c, ret, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "rjh", lo, NULL)) != -1) {
		switch (c) {
		case 'r': fo.repair = true; break;
		case 'j': o.json = true; break;
		case 'h': fputs(fsck_help, stdout); return FSCK_OK;
		default: return ctl_bad_option("fsck", argv, lo, FSCK_USAGE);
		}
	}
	if (optind != argc - 1)
		return usage(optind >= argc ? "no region given" :
			     "too many arguments");
	o.spec = argv[optind];
	fo.problem = on_problem;
	fo.note = on_note;
	fo.arg = &o;
	ret = fsck_run(o.spec, &fo, &res);
	fflush(stdout);
	if (ret) {
		fprintf(stderr, "daxfsctl fsck: %s: %s\n", o.spec,
			daxfs_errmsg(ret));
		status = FSCK_ERROR;
	} else if (o.oom) {
		fprintf(stderr, "daxfsctl fsck: %s: out of memory\n", o.spec);
		status = FSCK_ERROR;
	} else {
		status = exit_status(&res);
		if (o.json)
			print_json(&o, &res, fo.repair, status);
		else
			print_summary(&o, &res, fo.repair);
	}
	for (size_t k = 0; k < o.n; k++) {
		free(o.v[k].msg);
		free(o.v[k].detail);
	}
	free(o.v);
	return status;
}
