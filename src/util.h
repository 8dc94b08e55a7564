/*
 * util.h -- small helpers shared by the daemon, daxfsctl and the tests:
 * the per-thread error sentence, size parsing and formatting, time.
 */
#ifndef DAXFS_UTIL_H
#define DAXFS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN_UP(n, a) (((n) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(n, a) ((n) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Functions that fail return -errno and may leave a sentence for a person
 * here (per thread): "not a daxfs region (bad magic)".  The caller prefixes
 * the program and the thing it names.
 */
void daxfs_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *daxfs_errmsg(int err);
void daxfs_clearerr(void);

/* "1G", "512M", "4096", "16k": 0 or -EINVAL / -ERANGE */
int parse_size(const char *s, uint64_t *out);
/* "1.5 GiB" style, into buf */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* str_copy -- copy a string, truncating to fit, always terminated */
void str_copy(char *dst, size_t len, const char *src);

/* mem_is_zero -- are the n bytes at p all zero? */
bool mem_is_zero(const void *p, size_t n);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
