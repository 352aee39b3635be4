/*
 * results.h - the results of a batch as batches/<id>/results/ and usage/
 * show them: an index built in one pass over the content of the batch's
 * output and error files (JSONL), the rule that turns a custom_id into a
 * file name, and the rendering of one result line. Pure: no I/O, no lock;
 * bad lines are logged (a bounded number per file) and skipped. A line is
 * read in its text, with no tree of it: indexing and rendering one line
 * takes memory in proportion to its size at most, whatever its nesting.
 *
 * The index keeps, per request, where its line lies in its file (offset
 * and length), never a copy of the line: the caller keeps the file and
 * reads the line back to render it.
 */
#ifndef KIMIFS_RESULTS_H
#define KIMIFS_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#define RESULTS_NAME_MAX 240 /* bytes of a name before .json/.txt */
/* Longer lines are skipped: 32 bytes for each token of the largest context
 * window a Moonshot model has (262,144 tokens), past any answer the API
 * gives, and a bound on what one line costs to index and render. */
#define RESULTS_LINE_MAX    (8u << 20)
#define RESULTS_MAX_ENTRIES 1000000	/* further requests are skipped */
#define RESULTS_LOG_MAX	    10		/* bad lines logged per file */
#define RESULTS_PRETTY_MAX  (16u << 20) /* larger renderings: the line as is */

enum results_source { RESULTS_OUTPUT, RESULTS_ERROR };
enum { USAGE_PROMPT, USAGE_COMPLETION, USAGE_TOTAL, USAGE_N };

/* One request with a result. 24 bytes. */
struct result {
	uint64_t off;	   /* its line's offset in its file */
	uint32_t len;	   /* the line's length, without the newline */
	uint32_t name;	   /* offset of its name in the names blob */
	uint8_t src;	   /* enum results_source */
	uint8_t has_txt;   /* a 2xx answer with choices[0].message.content */
	uint8_t shortened; /* the name was shortened; the id follows it */
	uint8_t ok;	   /* a success: a 2xx answer of the output file */
};

struct results {
	struct result *e; /* in order of first appearance */
	size_t n, cap;
	char *names; /* NUL-terminated names (a shortened one: then the id) */
	size_t names_len, names_cap;
	uint32_t *slots; /* open addressing by name: entry index + 1, 0 free */
	size_t nslots;
	int64_t usage[USAGE_N]; /* sums over the output file's lines */
	size_t bad;		/* lines skipped */
	size_t dups;		/* lines that replaced an earlier one */
};

/* One file being added, line by line: where we are, for the log. */
struct results_pass {
	enum results_source src;
	const char *label;
	size_t lineno;
	size_t logged, bad;
};

/* Names of the usage files, in listing order (USAGE_*). */
extern const char *const results_usage_names[USAGE_N];

/* The USAGE_* of a usage file's name, or -1. */
int results_usage_index(const char *name);

/* A new, empty index, or NULL when out of memory. */
struct results *results_new(void);
void results_free(struct results *r);

/*
 * Add every line of one file (buf, len bytes; need not end in a newline) of
 * source src to r, in one pass. A later line with the custom_id of an
 * earlier one replaces it (logged). Lines that are not a JSON object with a
 * string custom_id (a lone surrogate escape in it is its three bytes
 * ED A0 80 ... , which the name escapes), longer than RESULTS_LINE_MAX, past
 * RESULTS_MAX_ENTRIES or otherwise bad are skipped and logged with their line
 * number (at most RESULTS_LOG_MAX per call, then one line with the count);
 * blank lines are ignored. Usage sums count the output file's lines. label
 * names the file in the log. Returns 0, or -ENOMEM (r then holds what was
 * added). Linear in len.
 */
int results_add(struct results *r, enum results_source src, const char *buf,
		size_t len, const char *label);

/*
 * results_add in steps, for a file read piece by piece: begin a pass, add
 * each line (len bytes at offset off of the file, without its newline; a
 * line longer than RESULTS_LINE_MAX is skipped and logged without reading
 * line, which may then be NULL), end the pass (the count of lines not
 * logged). results_add_line returns 0 or -ENOMEM.
 */
void results_pass_begin(struct results_pass *ps, enum results_source src,
			const char *label);
int results_add_line(struct results *r, struct results_pass *ps,
		     const char *line, size_t len, uint64_t off);
void results_pass_end(const struct results_pass *ps);

/* The entry whose name is base (blen bytes, without .json/.txt), or NULL. */
const struct result *results_find(const struct results *r, const char *base,
				  size_t blen);

/* The name of entry e (without .json/.txt). */
const char *results_name(const struct results *r, const struct result *e);

/* Bytes of memory r holds (for the bound on kept indexes). */
size_t results_bytes(const struct results *r);

/*
 * The file name of a custom_id (id, len bytes, may hold NUL) into out
 * (RESULTS_NAME_MAX + 1 bytes), NUL-terminated; returns its length. The
 * rule (docs/filesystem.md): bytes '%', '/', NUL, below 0x20, 0x7f and
 * bytes that are not part of valid UTF-8 are written %XX (upper-case hex);
 * the ids "." and ".." become %2E and %2E%2E, the empty id "%". A name
 * longer than RESULTS_NAME_MAX keeps its first whole characters or escapes
 * up to 222 bytes and ends in "%~" and 16 lower-case hex digits of a 64-bit
 * FNV-1a hash of the id (salt 0; salt n > 0, used when two different long
 * ids meet on one name, hashes n more bytes). Sets *shortened.
 */
size_t results_escape(const char *id, size_t len, unsigned salt, char *out,
		      int *shortened);

/*
 * Whether base (blen bytes) is a name results_escape can give, so that a
 * lookup of any other name is answered at once. 1 or 0.
 */
int results_name_possible(const char *base, size_t blen);

/*
 * Split a file name of results/ into its base and kind: 0 with *blen and
 * *txt (1 for .txt, 0 for .json) set, or -ENOENT when it ends in neither or
 * its base cannot be a name.
 */
int results_split(const char *name, size_t *blen, int *txt);

/*
 * Render a result line (as results_add accepted it) into a new buffer:
 * .json is the line pretty-printed (two-space indent, every string and
 * number as the server wrote it, a final newline; the line as is plus a
 * newline when that would pass 8 times the line plus 4 KiB, or
 * RESULTS_PRETTY_MAX: lines nested deep), .txt the content of
 * choices[0].message.content and a newline (-ENOENT when the line is no
 * successful chat completion; a lone surrogate escape in it is U+FFFD). The
 * .json of a line is at most 8 times the line plus 4 KiB, the .txt at most
 * the line plus 1 byte. 0 with *out (free it) and *outlen, or
 * -errno (-EIO: the line is not JSON).
 */
int results_render_json(const char *line, size_t len, char **out,
			size_t *outlen);
/* The most bytes the rendering of a line of len bytes can take, as .txt
 * (txt 1) or .json. */
size_t results_render_bound(size_t len, int txt);
int results_render_txt(const char *line, size_t len, char **out,
		       size_t *outlen);

#endif
