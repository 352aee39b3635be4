/*
 * json_print.h - JSON text checked and pretty-printed token by token,
 * without a tree: every string and number kept as written, only the white
 * space between tokens made anew. The one printer of kimifs's .json files:
 * batch.json and file.json (from cJSON's compact text, laid out as
 * cJSON_Print lays out, with two spaces for its tabs) and a result's .json
 * (every item on a line of its own). Pure; linear in the text and in what
 * is printed.
 */
#ifndef KIMIFS_JSON_PRINT_H
#define KIMIFS_JSON_PRINT_H

#include <stddef.h>

#include "json_token.h"

/* Where the line breaks go; indentation is two spaces a level, a level
 * being any array or object the token is in. */
enum json_layout {
	/* Each object member and each array item on a line of its own;
	 * empty ones as {} and []. */
	JSON_LAYOUT_LINES,
	/* cJSON_Print's: each object member on a line of its own, an
	 * array's items on one line after ", ", an empty object as a brace
	 * on each of two lines. */
	JSON_LAYOUT_CJSON,
	/* No white space at all. */
	JSON_LAYOUT_COMPACT,
};

struct json_print {
	enum json_layout layout;
	unsigned depth_max; /* deeper nesting is no JSON here (at most
			       JSON_DEPTH_LIMIT) */
	unsigned flags;	    /* of json_string_end */
	/* Bounds on indentation (0: none): past one, the text is printed
	 * JSON_LAYOUT_COMPACT instead, so that deep nesting never prints as
	 * many times the text's size. */
	unsigned flat_depth; /* a value inside more arrays and objects */
	unsigned flat_mean;  /* an object's member or closing brace
				indented more levels than this on average
				(JSON_LAYOUT_CJSON's lines) */
	size_t max;	     /* bytes printed at most (0: no bound) */
};

/*
 * Whether s (n bytes) is exactly one JSON value with white space around it,
 * nested at most opt->depth_max deep, its strings read with opt->flags:
 * 0 or -EIO.
 */
int json_check(const char *s, size_t n, const struct json_print *opt);

/*
 * Whether opt's bounds on indentation make s print compact: 1 or 0, -EIO
 * when s is no JSON (as json_check).
 */
int json_print_flat(const char *s, size_t n, const struct json_print *opt);

/*
 * s (n bytes) pretty-printed as opt says, newline-terminated, into a new
 * NUL-terminated buffer *out of *outlen bytes (the NUL not counted).
 * 0; -EIO when s is no JSON (as json_check), -EFBIG when it would print to
 * more than opt->max bytes, -ENOMEM. *out is untouched on error.
 */
int json_pretty(const char *s, size_t n, const struct json_print *opt,
		char **out, size_t *outlen);

#endif
