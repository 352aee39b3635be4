/*
 * json_token.c - the JSON lexer: white space, strings, numbers and
 * literals read in place, and a string token decoded (see json_token.h).
 */
#include "json_token.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BYTES_01 0x0101010101010101ULL
#define BYTES_80 0x8080808080808080ULL

/* Nonzero when a byte of w is below n (n at most 0x80): bytes from 0x80 up
 * never count. Exact as a truth value; which byte, not (a borrow). */
static uint64_t word_has_below(uint64_t w, unsigned n)
{
	return (w - BYTES_01 * n) & ~w & BYTES_80;
}

/* Nonzero when a byte of w is c. */
static uint64_t word_has(uint64_t w, unsigned char c)
{
	return word_has_below(w ^ (BYTES_01 * c), 1);
}

static int is_plain(unsigned char c)
{
	return c >= 0x20 && c != '"' && c != '\\';
}

size_t json_plain_run(const char *s, size_t n)
{
	size_t i = 0;
	uint64_t w;

	for (; n - i >= sizeof(w); i += sizeof(w)) {
		memcpy(&w, s + i, sizeof(w));
		if (word_has_below(w, 0x20) | word_has(w, '"') |
		    word_has(w, '\\'))
			break;
	}
	while (i < n && is_plain((unsigned char)s[i]))
		i++;
	return i;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code (0 to 0xffff) of the 4 hex digits at p (4 bytes readable), or
 * -1 when one of them is no hex digit. */
static long hex4(const char *p)
{
	long u = 0;

	for (int k = 0; k < 4; k++) {
		int v = hex_value(p[k]);

		if (v < 0)
			return -1;
		u = u * 16 + v;
	}
	return u;
}

/* The end of the \u escape at s[i] (its backslash; the 'u' checked) and
 * what may follow it: a low surrogate escape after a high one. 0 when the
 * digits are bad, or, with JSON_NO_LONE_SURROGATE, a surrogate is alone. */
static size_t u_escape_end(const char *s, size_t n, size_t i, unsigned flags)
{
	long u, low;

	if (n - i < 6 || (u = hex4(s + i + 2)) < 0)
		return 0;
	i += 6;
	if (!(flags & JSON_NO_LONE_SURROGATE) || u < 0xd800 || u > 0xdfff)
		return i;
	/* UTF-16 surrogates come in pairs, high then low. */
	if (u >= 0xdc00 || n - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
		return 0;
	low = hex4(s + i + 2);
	return low >= 0xdc00 && low <= 0xdfff ? i + 6 : 0;
}

size_t json_string_end(const char *s, size_t n, size_t i, unsigned flags)
{
	if (i >= n || s[i] != '"')
		return 0;
	for (i++; i < n;) {
		unsigned char c;

		i += json_plain_run(s + i, n - i);
		if (i >= n)
			break;
		c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (i + 1 >= n)
			return 0;
		c = (unsigned char)s[i + 1];
		if (c == 'u')
			i = u_escape_end(s, n, i, flags);
		else if (c && strchr("\"\\/bfnrt", c))
			i += 2;
		else
			return 0;
		if (!i)
			return 0;
	}
	return 0;
}

static size_t digits_end(const char *s, size_t n, size_t i)
{
	while (i < n && is_digit(s[i]))
		i++;
	return i;
}

size_t json_number_end(const char *s, size_t n, size_t i)
{
	size_t j;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if ((j = digits_end(s, n, i)) > i)
		i = j;
	else
		return 0;
	if (i < n && s[i] == '.') {
		if ((j = digits_end(s, n, i + 1)) == i + 1)
			return 0;
		i = j;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if ((j = digits_end(s, n, i)) == i)
			return 0;
		i = j;
	}
	return i;
}

size_t json_scalar_end(const char *s, size_t n, size_t i, unsigned flags)
{
	static const struct {
		const char *word;
		size_t len;
	} literals[] = {{"true", 4}, {"false", 5}, {"null", 4}};

	if (i >= n)
		return 0;
	if (s[i] == '"')
		return json_string_end(s, n, i, flags);
	if (s[i] == '-' || is_digit(s[i]))
		return json_number_end(s, n, i);
	for (size_t k = 0; k < sizeof(literals) / sizeof(literals[0]); k++)
		if (n - i >= literals[k].len &&
		    memcmp(s + i, literals[k].word, literals[k].len) == 0)
			return i + literals[k].len;
	return 0;
}

/* Code point c as UTF-8 at d + *k (*k moved past it). */
static void put_utf8(unsigned long c, char *d, size_t *k)
{
	if (c < 0x80) {
		d[(*k)++] = (char)c;
	} else if (c < 0x800) {
		d[(*k)++] = (char)(0xc0 | (c >> 6));
		d[(*k)++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		d[(*k)++] = (char)(0xe0 | (c >> 12));
		d[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		d[(*k)++] = (char)(0x80 | (c & 0x3f));
	} else {
		d[(*k)++] = (char)(0xf0 | (c >> 18));
		d[(*k)++] = (char)(0x80 | ((c >> 12) & 0x3f));
		d[(*k)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		d[(*k)++] = (char)(0x80 | (c & 0x3f));
	}
}

int json_string_decode(const char *tok, size_t tlen, enum json_lone lone,
		       char **out, size_t *len)
{
	char *d = malloc(tlen + 1);
	size_t k = 0;

	if (!d)
		return -ENOMEM;
	for (size_t i = 1; i + 1 < tlen; i++) {
		unsigned long c, lo;

		if (tok[i] != '\\') {
			d[k++] = tok[i];
			continue;
		}
		i++;
		if (tok[i] != 'u') {
			static const char from[] = "\"\\/bfnrt",
					  to[] = "\"\\/\b\f\n\r\t";

			d[k++] = to[strchr(from, tok[i]) - from];
			continue;
		}
		c = (unsigned long)hex4(tok + i + 1);
		i += 4;
		if (c >= 0xd800 && c <= 0xdbff && i + 6 < tlen &&
		    tok[i + 1] == '\\' && tok[i + 2] == 'u' &&
		    (lo = (unsigned long)hex4(tok + i + 3)) >= 0xdc00 &&
		    lo <= 0xdfff) {
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 6;
		} else if (c >= 0xd800 && c <= 0xdfff &&
			   lone == JSON_LONE_FFFD) {
			c = 0xfffd;
		}
		put_utf8(c, d, &k);
	}
	d[k] = '\0';
	*out = d;
	*len = k;
	return 0;
}
