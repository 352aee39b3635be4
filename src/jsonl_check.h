/*
 * jsonl_check.h - the local check of a batch input file before any byte of
 * it is sent: the documented rules of the Batch API (a .jsonl name, not
 * empty, at most 100 MiB, UTF-8, one request object per line with a unique
 * custom_id, POST to /v1/chat/completions, one model for the whole file),
 * and strict JSON: only JSON white space (space, tab, LF, CR) between
 * lines and tokens, no key twice in one object. Fed in chunks, so the file
 * is never whole in memory: each custom_id is kept as a fixed-size hash,
 * and a hash met twice is confirmed by reading the earlier line back
 * through the reader the caller gives (jsonl_check_source), so a collision
 * never refuses a valid file. No I/O of its own.
 */
#ifndef KIMIFS_JSONL_CHECK_H
#define KIMIFS_JSONL_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JSONL_MAX_BYTES	   (100UL << 20) /* the API's limit for batch input */
#define JSONL_MAX_LINE	   (32UL << 20)	 /* one request line, at most */
#define JSONL_MAX_PROBLEMS 10		 /* problems written in the report */
#define JSONL_ENDPOINT	   "/v1/chat/completions"

/* The shortest line that meets every rule: no file of n bytes holds more
 * than n / (its length + a newline) + 1 valid requests. */
#define JSONL_MIN_REQUEST                                                      \
	"{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":"                    \
	"\"/v1/chat/completions\",\"body\":{\"model\":\"\"}}"

/* Read len bytes of the file at offset off into buf, as pread(2): the
 * bytes read, 0 at the end, or -errno. */
typedef ssize_t (*jsonl_pread_fn)(void *ctx, char *buf, size_t len,
				  uint64_t off);

struct jsonl_seen; /* custom_ids met so far */

/* Told each custom_id met in spill mode: its hash (util_hash), where its
 * string token starts in the file and its line. 0, or -errno (the check
 * then ends with it). */
typedef int (*jsonl_spill_fn)(void *ctx, uint64_t hash, uint64_t off,
			      uint64_t line);

struct jsonl_check {
	char name[256];	    /* the file's name, for the report */
	uint64_t bytes;	    /* fed so far */
	uint64_t max_bytes; /* the file's limit: JSONL_MAX_BYTES, or none */
	size_t lineno;	    /* lines completed so far */
	size_t requests;    /* request lines (non-blank) */
	size_t blank_at;    /* first of the blank lines pending, or 0 */
	size_t nproblems;   /* all problems found, also those not written */
	char *report;	    /* the first JSONL_MAX_PROBLEMS, one per line */
	size_t rlen;
	char *model; /* the model of the first line that has one */
	size_t model_line;
	char *buf; /* the line being fed */
	size_t blen;
	size_t bcap;
	int overlong;	   /* the current line passed JSONL_MAX_LINE */
	int last;	   /* the line ended with the file, not a newline */
	uint64_t line_off; /* where the current line starts in the file */
	size_t pending;	   /* bytes of it fed so far */
	struct jsonl_seen *seen;
	uint64_t size;	      /* the file's size, when told (0: not known) */
	jsonl_pread_fn pread; /* reads earlier lines back, or NULL */
	void *pread_ctx;
	jsonl_spill_fn spill; /* spill mode: ids go here, not to seen */
	void *spill_ctx;
	int eof;   /* the last line was ended (jsonl_check_eof) */
	int oom;   /* memory ran out: the check cannot say yes */
	int ioerr; /* an earlier line could not be read back: -errno */
};

/* Start checking a file called name (only its last path component is
 * shown). Never fails; errors surface in jsonl_check_end. */
void jsonl_check_init(struct jsonl_check *c, const char *name);

/*
 * Tell the check the whole file's size (so that the table of custom_ids is
 * made once, at the size the most valid requests in size bytes need:
 * about 16 bytes per JSONL_MIN_REQUEST-long line, 27 MiB for 100 MiB) and
 * how to read earlier lines back (to confirm a repeated id's hash by reading
 * its token back; without a reader, equal 64-bit hashes count as equal ids).
 * Before the first feed. A size over JSONL_MAX_BYTES refuses the file for that
 * alone: the caller need not feed it.
 */
void jsonl_check_source(struct jsonl_check *c, uint64_t size,
			jsonl_pread_fn pread, void *ctx);

/*
 * Check a job's input instead of one batch's: no limit on the whole file's
 * size, and every custom_id goes to spill rather than to a table in memory
 * (the caller finds repeats across the whole file with bounded memory:
 * idsort.h, then tells each with jsonl_check_repeat). Before the first
 * feed, after jsonl_check_source.
 */
void jsonl_check_spill(struct jsonl_check *c, jsonl_spill_fn spill, void *ctx);

/* Feed the next len bytes of the file. */
void jsonl_check_feed(struct jsonl_check *c, const char *buf, size_t len);

/* End of the file's bytes: a last line without its newline is checked
 * (and its id spilled). jsonl_check_end does it when not done. */
void jsonl_check_eof(struct jsonl_check *c);

/*
 * Whether the custom_id tokens that start at offsets a and b are the same
 * string, read back through the reader: 1 or 0, or -errno when one cannot
 * be read.
 */
int jsonl_check_same_id(struct jsonl_check *c, uint64_t a, uint64_t b);

/* A repeat found in spill mode: line's custom_id (its token at off)
 * repeats line first, a problem of the file. */
void jsonl_check_repeat(struct jsonl_check *c, uint64_t line, uint64_t first,
			uint64_t off);

/*
 * End of file: 0 when the file may be uploaded, -EINVAL when it breaks a
 * rule (the reasons in jsonl_check_report; a file over JSONL_MAX_BYTES has
 * that reason alone), -ENOMEM when memory ran out, the reader's -errno when
 * an earlier line could not be read back.
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
