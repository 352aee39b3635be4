/*
 * util.h - small helpers shared by every layer: a monotonic clock, a string
 * hash, white-space trimming, control-character scrubbing and the UTF-8
 * check.
 */
#ifndef KIMIFS_UTIL_H
#define KIMIFS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Seconds on the monotonic clock (never jumps with the wall clock). */
double util_now(void);

/* The seed of a hash that continues no other: FNV-1a's offset basis. */
#define UTIL_HASH_SEED 0xcbf29ce484222325ull

/*
 * FNV-1a (64 bits) of the n bytes at p, continuing from seed (UTIL_HASH_SEED
 * to start; a hash, to hash more bytes after those it covers). The one hash
 * of kimifs: its values are stable (a shortened result name holds one).
 */
uint64_t util_hash_bytes(const void *p, size_t n, uint64_t seed);

/* util_hash_bytes of the NUL-terminated string s, for hash tables of ids
 * and names. Its seed is its own (1469598103934665603, a digit short of
 * UTIL_HASH_SEED), kept so that its values stay what they were. */
size_t util_hash(const char *s);

/* s without white space (space, tab, CR, LF) at either end, trimmed in
 * place; returns a pointer into s. */
char *util_trim(char *s);

/* Replace every control character (below 0x20, and DEL) of s by a space,
 * so that text from a server stays one printable line. */
void util_scrub(char *s);

/* The length (1 to 4) of the well-formed UTF-8 character at s (n > 0 bytes
 * readable), or 0 when none starts there: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
size_t util_utf8_len(const char *s, size_t n);

/* Whether s (len bytes) is well-formed UTF-8 (util_utf8_len throughout). */
int util_utf8_valid(const char *s, size_t len);

/*
 * Make the buffer *buf (of *cap bytes; NULL and 0 at first) hold at least
 * need bytes: its size doubled from first (or from *cap) until it does.
 * 0, or -ENOMEM with *buf and *cap as they were.
 */
int util_grow(char **buf, size_t *cap, size_t need, size_t first);

/*
 * Write the reason of a failure, printf-style, into why (size bytes), its
 * control characters scrubbed (it may quote what a server or a user
 * wrote); returns r, so that `return util_reason(-EINVAL, why, size,
 * ...)` says why and fails at once.
 */
int util_reason(int r, char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
