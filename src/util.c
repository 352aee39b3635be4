/*
 * util.c - small helpers shared by every layer (see util.h).
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t util_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

size_t util_hash(const char *s)
{
	return (size_t)util_hash_bytes(s, strlen(s), 1469598103934665603ull);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

char *util_trim(char *s)
{
	char *e = s + strlen(s);

	while (is_space(*s))
		s++;
	while (e > s && is_space(e[-1]))
		*--e = '\0';
	return s;
}

void util_scrub(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

size_t util_utf8_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	/* The second byte's range shuts out overlong forms, surrogates and
	 * what lies past U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

int util_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t w;
		size_t k;

		/* ASCII, most text: a word at a time. */
		if (len - i >= sizeof(w)) {
			memcpy(&w, s + i, sizeof(w));
			if (!(w & 0x8080808080808080ULL)) {
				i += sizeof(w);
				continue;
			}
		}
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		k = util_utf8_len(s + i, len - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

int util_grow(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	char *grown;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	grown = realloc(*buf, ncap);
	if (!grown)
		return -ENOMEM;
	*buf = grown;
	*cap = ncap;
	return 0;
}

int util_reason(int r, char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	util_scrub(why);
	return r;
}
