/*
 * jsonl_scan.h - one line of a batch input file read as one JSON object,
 * strictly (RFC 8259), without building a tree: where the members the
 * rules of batch input read stand (custom_id, method, url, body and
 * body.model), and whether an object holds a key twice. Memory: 8 bytes
 * per key of the objects open at once, whatever the values hold (a tree of
 * a line of small values costs 40 times the line). Pure.
 */
#ifndef KIMIFS_JSONL_SCAN_H
#define KIMIFS_JSONL_SCAN_H

#include <stddef.h>

#define JSONL_SCAN_DEPTH 1000 /* nesting, at most (as cJSON) */

/* The text of one JSON value (or a key's string token) in the line: at
 * offset at, len bytes; len 0 when absent. */
struct jsonl_span {
	size_t at;
	size_t len;
};

struct jsonl_scan {
	/* The values of the top-level members (the first of each name). */
	struct jsonl_span id, method, url, body;
	struct jsonl_span model; /* of body's member "model", when an object */
	/* A key met twice in one object, or len 0: of the first object
	 * to close that has one, the first key in the line that repeats
	 * an earlier one. */
	struct jsonl_span twice;
};

/*
 * Scan line (len bytes, no newline) as one JSON object with white space
 * around it. 0 with what was found in *out (a key twice is no error here:
 * out->twice), -EINVAL when it is not one JSON object (any syntax error,
 * nesting past JSONL_SCAN_DEPTH, text after it), -ENOMEM.
 */
int jsonl_scan(const char *line, size_t len, struct jsonl_scan *out);

/*
 * The text of the string token at span (its quotes included), decoded
 * when it holds an escape: a pointer into line (*own NULL) or a copy
 * (*own, to free); its length in *tlen. A string that decodes to a NUL
 * character is kept as its token text (never cut short). NULL when out of
 * memory.
 */
const char *jsonl_scan_text(const char *line, struct jsonl_span span,
			    char **own, size_t *tlen);

#endif
