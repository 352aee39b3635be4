/*
 * util.h - small helpers shared by every layer: a monotonic clock, a string
 * hash, white-space trimming, control-character scrubbing and the UTF-8
 * check.
 */
#ifndef KIMIFS_UTIL_H
#define KIMIFS_UTIL_H

#include <stddef.h>

/* Seconds on the monotonic clock (never jumps with the wall clock). */
double util_now(void);

/* FNV-1a of the NUL-terminated string s. */
size_t util_hash(const char *s);

/* s without white space (space, tab, CR, LF) at either end, trimmed in
 * place; returns a pointer into s. */
char *util_trim(char *s);

/* Replace every control character (below 0x20, and DEL) of s by a space,
 * so that text from a server stays one printable line. */
void util_scrub(char *s);

/* Whether s (len bytes) is well-formed UTF-8: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
int util_utf8_valid(const char *s, size_t len);

#endif
