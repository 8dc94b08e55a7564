/*
 * json.c -- a minimal streaming JSON writer for daxfsctl.
 */
#include <inttypes.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* key -- the comma and the "key": of the next item */
static void key(struct json *j, const char *k)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (k) {
		put_string(j->f, k);
		fputc(':', j->f);
	}
}

void json_obj_open(struct json *j, const char *k)
{
	key(j, k);
	fputc('{', j->f);
	j->first[++j->depth] = true;
}

void json_obj_close(struct json *j)
{
	j->depth--;
	fputc('}', j->f);
}

void json_arr_open(struct json *j, const char *k)
{
	key(j, k);
	fputc('[', j->f);
	j->first[++j->depth] = true;
}

void json_arr_close(struct json *j)
{
	j->depth--;
	fputc(']', j->f);
}

void json_str(struct json *j, const char *k, const char *v)
{
	key(j, k);
	put_string(j->f, v ? v : "");
}

void json_u64(struct json *j, const char *k, uint64_t v)
{
	key(j, k);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *k, int64_t v)
{
	key(j, k);
	fprintf(j->f, "%" PRId64, v);
}

void json_bool(struct json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *k)
{
	key(j, k);
	fputs("null", j->f);
}

void json_end(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
