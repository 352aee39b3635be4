/*
 * jsonl_check.h - the local check of a batch input file before any byte of
 * it is sent: the documented rules of the Batch API (a .jsonl name, not
 * empty, at most 100 MiB, UTF-8, one request object per line with a unique
 * custom_id, POST to /v1/chat/completions, one model for the whole file).
 * Fed in chunks, so the file is never whole in memory; pure (no I/O).
 */
#ifndef KIMIFS_JSONL_CHECK_H
#define KIMIFS_JSONL_CHECK_H

#include <stddef.h>

#define JSONL_MAX_BYTES	   (100UL << 20) /* the API's limit for batch input */
#define JSONL_MAX_LINE	   (32UL << 20)	 /* one request line, at most */
#define JSONL_MAX_PROBLEMS 10		 /* problems written in the report */
#define JSONL_ENDPOINT	   "/v1/chat/completions"

struct jsonl_seen; /* custom_ids met so far */

struct jsonl_check {
	char name[256];	  /* the file's name, for the report */
	size_t bytes;	  /* fed so far */
	size_t lineno;	  /* lines completed so far */
	size_t requests;  /* request lines (non-blank) */
	size_t blank_at;  /* first of the blank lines pending, or 0 */
	size_t nproblems; /* all problems found, also those not written */
	char *report;	  /* the first JSONL_MAX_PROBLEMS, one per line */
	size_t rlen;
	char *model; /* the model of the first line that has one */
	size_t model_line;
	char *buf; /* the line being fed */
	size_t blen;
	size_t bcap;
	int overlong; /* the current line passed JSONL_MAX_LINE */
	struct jsonl_seen *seen;
	int oom; /* memory ran out: the check cannot say yes */
};

/* Start checking a file called name (only its last path component is
 * shown). Never fails; errors surface in jsonl_check_end. */
void jsonl_check_init(struct jsonl_check *c, const char *name);

/* Feed the next len bytes of the file. */
void jsonl_check_feed(struct jsonl_check *c, const char *buf, size_t len);

/*
 * End of file: 0 when the file may be uploaded, -EINVAL when it breaks a
 * rule (the reasons in jsonl_check_report), -ENOMEM when memory ran out.
 */
int jsonl_check_end(struct jsonl_check *c);

/* The problems found, each "name:LINE: reason" or "name: reason" and a
 * newline; the first JSONL_MAX_PROBLEMS, then how many more. Never NULL. */
const char *jsonl_check_report(const struct jsonl_check *c);

void jsonl_check_free(struct jsonl_check *c);

/*
 * Why name (one path component) cannot be a batch input file's, or NULL
 * when it can. Beyond the API's rule (a stem and the .jsonl extension), a
 * name must reach the server's file list as it is written, so that an
 * upload whose answer was lost is found there by name: libcurl sends " and
 * CR or LF percent-encoded, a multipart parser reads \ as an escape, the
 * file list is JSON (UTF-8 only), and leading white space is trimmed. So
 * control characters, ", \, bytes that are not UTF-8 and leading white
 * space are refused. Pure.
 */
const char *jsonl_name_problem(const char *name);

#endif
