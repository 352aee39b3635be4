/*
 * batch_params.h - the parameters of a new batch (POST /v1/batches), as a
 * user writes them to batches/new: words `key=value` separated by white
 * space, checked against the documented limits before any request. Pure.
 */
#ifndef KIMIFS_BATCH_PARAMS_H
#define KIMIFS_BATCH_PARAMS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define PARAMS_META_MAX	      16    /* metadata pairs a batch may carry */
#define PARAMS_META_KEY_MAX   64    /* characters of a metadata key */
#define PARAMS_META_VALUE_MAX 512   /* characters of a metadata value */
#define PARAMS_TEXT_MAX	      16384 /* bytes of one write to batches/new */
#define PARAMS_ENDPOINT	      "/v1/chat/completions"

struct batch_params {
	char *input_file_id;
	char *endpoint;		 /* PARAMS_ENDPOINT unless given */
	char *completion_window; /* the default unless given */
	size_t nmeta;
	struct {
		char *key;
		char *value;
	} meta[PARAMS_META_MAX];
};

/*
 * Hours of a completion window such as "24h" or "3d" (a whole number
 * without sign or leading zero, then h or d): 12 to 168 (12h to 7d), or
 * -EINVAL for anything else ("012h" too).
 */
int params_window_hours(const char *window);

/*
 * Parse text (len bytes; words separated by white space or newlines):
 * `input_file_id=ID` (required), `completion_window=W` (else window),
 * `endpoint=/v1/...` (else PARAMS_ENDPOINT), `metadata.KEY=VALUE`. A value
 * may be written in double quotes to hold white space (`\"` and `\\`
 * inside). Every word must be UTF-8 text. Returns 0 with p filled (free
 * with params_free), or -EINVAL with the reason in why (whylen bytes) and
 * p empty, or -ENOMEM.
 */
int params_parse(const char *text, size_t len, const char *window,
		 struct batch_params *p, char *why, size_t whylen);

struct batch;

/*
 * The parameters of a new batch like b (a retry of it, or another round of
 * its job): b's endpoint, completion window and metadata pairs with string
 * values, as the server holds them (kimifs's keys included: job_tag_write
 * replaces them), and no input file. 0 with p filled (free with
 * params_free), or -EIO (b's JSON has no endpoint or window) / -ENOMEM,
 * with the reason in why and p empty.
 */
int params_like(const struct batch *b, struct batch_params *p, char *why,
		size_t whylen);

/* A copy of p into *out: 0, or -ENOMEM with out empty. */
int params_copy(const struct batch_params *p, struct batch_params *out);

/* The JSON body of POST /v1/batches for p (NULL when memory ran out). */
cJSON *params_json(const struct batch_params *p);

void params_free(struct batch_params *p);

#endif
