/*
 * json_token.h - the tokens of JSON text read strictly (RFC 8259) where
 * they stand, without a tree and without copying: white space, strings
 * (JSON's escapes only, no raw control character), numbers and the three
 * literals. The one lexer of kimifs: the upload check (jsonl_scan), the
 * results index (results) and the pretty-printer (json_print) read JSON
 * through it, and decode a string token with it. Pure; each function is
 * linear in the token it reads.
 *
 * A position is an index into the text s of n bytes. A function that reads
 * a token returns the index just past it, or 0 when no such token starts
 * at i (no token ends at 0, so 0 is never a valid end).
 */
#ifndef KIMIFS_JSON_TOKEN_H
#define KIMIFS_JSON_TOKEN_H

#include <stddef.h>

/* Deepest nesting of arrays and objects any reader here accepts (cJSON's
 * own bound). */
#define JSON_DEPTH_LIMIT 1000

/* Flags of json_string_end. */
enum {
	/* Refuse a UTF-16 surrogate escape that is not half of a pair
	 * (\ud800 alone, or a low one first), as cJSON does; valid JSON
	 * otherwise. */
	JSON_NO_LONE_SURROGATE = 1,
};

/* The first index from i on that is not JSON white space (space, tab, CR,
 * LF), or n. Inline: every reader calls it between any two tokens. */
static inline size_t json_skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n &&
	       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The length of the run of plain string bytes (none of '"', '\\' and the
 * controls below 0x20) that starts s (n bytes): read a word at a time, the
 * bulk of a JSON text's strings. */
size_t json_plain_run(const char *s, size_t n);

/* The end of the string token whose opening quote is s[i]. Bytes from 0x80
 * up are taken as they are (UTF-8 is checked elsewhere, if at all). */
size_t json_string_end(const char *s, size_t n, size_t i, unsigned flags);

/* The end of the number at s[i]:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
size_t json_number_end(const char *s, size_t n, size_t i);

/* The end of the scalar at s[i]: a string (read with flags), a number,
 * true, false or null. */
size_t json_scalar_end(const char *s, size_t n, size_t i, unsigned flags);

/* What a lone surrogate escape (\\ud800 with no partner, valid JSON)
 * decodes to. */
enum json_lone {
	/* Its own three bytes (ED A0 80, not valid UTF-8: a result name
	 * escapes them, so two such ids stay apart). */
	JSON_LONE_KEEP,
	/* U+FFFD, for text to show. */
	JSON_LONE_FFFD,
};

/*
 * Decode the string token tok (tlen bytes, quotes included, one that
 * json_string_end read) into a new buffer *out of *len bytes, which may
 * hold NUL (one byte more is allocated and set to NUL). 0 or -ENOMEM.
 */
int json_string_decode(const char *tok, size_t tlen, enum json_lone lone,
		       char **out, size_t *len);

#endif
