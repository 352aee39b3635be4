/*
 * job_results.h - a job's merged results, as jobs/NAME/results/,
 * output.jsonl, errors.jsonl and usage/ show them: an index on disk made
 * from the results indexes of the job's batches (results_cache.h), one
 * batch at a time, so that its memory does not grow with the number of
 * requests. For each custom_id (by its name in results/) it keeps the
 * latest success (a 2xx line of an output file; the latest round's), else
 * the latest failure, and where that line lies in its batch's file; the
 * lines themselves stay in the disk cache's contents.
 *
 * An index is made for one snapshot of the job (job.h) and holds it: it
 * stays right while the job's batches and their files do not change, and
 * a snapshot with another batch or file gets a new one. The files of an
 * index are unlinked scratch files of the cache directory (nothing is left
 * behind), and at most JOB_RESULTS_KEPT indexes are kept, the least
 * recently used dropped first (held ones never). Once built, an index's
 * bytes on disk count in the disk cache's (cache_charge: -o cache_size
 * bounds them with the contents) until it is freed.
 *
 * On disk, per custom_id in order of first appearance (batches by round,
 * then part; within a batch its output file, then its error file): a
 * record of 40 bytes and its name; a hash table of 8 bytes a slot, at
 * most half full; and for each of output.jsonl and errors.jsonl a table
 * of 16 bytes a line (where the line starts in the stream, its record)
 * (job_index.h). In memory: the job snapshot, and while it is made one
 * batch's index and at most 16 MiB of the table's pages.
 * job_index_build.c makes an index, job_index.c reads it, job_results.c
 * keeps them.
 */
#ifndef KIMIFS_JOB_RESULTS_H
#define KIMIFS_JOB_RESULTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "op.h"
#include "results.h"

#define JOB_RESULTS_KEPT 8 /* indexes kept (five descriptors each) */

struct cache;
struct results_cache;
struct job_index;

/* The streams of a job: output.jsonl (one line per custom_id with a
 * success) and errors.jsonl (one per custom_id without). */
enum job_stream { JOB_OUTPUT, JOB_ERRORS, JOB_NSTREAMS };

/* One custom_id of a job: the line that stands for it. */
struct job_entry {
	uint64_t off;	/* the line's offset in its file */
	uint32_t len;	/* the line's length, without the newline */
	uint32_t batch; /* index of its batch in the job */
	uint8_t src;	/* enum results_source: its batch's output or error */
	uint8_t has_txt;
	uint8_t ok;   /* a success */
	uint64_t rec; /* its record: which custom_id of the index */
	char name[RESULTS_NAME_MAX + 1];
};

struct job_results {
	struct results_cache *results; /* the batches' indexes */
	struct cache *disk;	       /* contents, and where the index lives */
	pthread_mutex_t lock;	       /* guards the list and the indexes' */
	pthread_cond_t built;	       /* cache fields; a build ended */
	pthread_condattr_t condattr;
	struct job_index *head; /* most recently used first */
	size_t count;
	struct job_render *renders; /* renderings held */
	size_t render_bytes;	    /* their bytes (reserved, then real) */
};

/* Set up an empty cache of job indexes over the batches' indexes results
 * and the disk cache disk (neither owned; both outlive c). */
void job_results_init(struct job_results *c, struct results_cache *results,
		      struct cache *disk);
/* Frees every index; none may be held. */
void job_results_destroy(struct job_results *c);

/*
 * The merged results of job snapshot j: 0 with *out a held index
 * (job_index_release it), or with *out NULL when no batch of j has an
 * output or error file yet; or -errno (a batch's download or index failed,
 * the disk: -ENOSPC...; -EINTR, -ETIMEDOUT from op). The first caller for
 * a snapshot makes the index, concurrent callers wait for it within op.
 */
int job_results_get(struct job_results *c, struct op *op, struct job *j,
		    struct job_index **out);
void job_index_release(struct job_index *x);

/*
 * The rendering of entry e of held index x as .txt (txt 1) or .json
 * (results_render_txt, results_render_json), shared by every view of that
 * file while one holds it: 0 with *out held (job_render_release it), or
 * -errno: -ENOENT (no answer for a .txt), -EIO, -ENOMEM when the
 * renderings held would pass RESULTS_RENDER_BYTES (results_cache.h: the
 * same bound as a batch's, counted apart; reserved at the most a
 * rendering can take while it is made).
 */
struct job_render {
	const char *data;
	size_t len;
	/* The fields below are the cache's, under its lock. */
	struct job_results *cache;
	struct job_index *x; /* held */
	uint64_t rec;
	int txt;
	int refs;
	size_t bytes;
	char *buf;
	struct job_render *next;
};
int job_render_get(struct job_results *c, struct op *op, struct job_index *x,
		   const struct job_entry *e, int txt, struct job_render **out);
void job_render_release(struct job_render *rd);

/* The custom_ids of x, the bytes of a stream, the token sums (over every
 * line of every output file of the job: what it cost). */
uint64_t job_index_count(const struct job_index *x);
uint64_t job_index_size(const struct job_index *x, enum job_stream s);
int64_t job_index_usage(const struct job_index *x, int which);

/*
 * A reader of x's entries by position, for a listing: it reads records
 * and their names in runs of JOB_CURSOR_RUN, so that reading them in
 * order costs two preads a run. job_cursor_new gives NULL when out of
 * memory; it does not hold x.
 */
#define JOB_CURSOR_RUN 256
struct job_cursor;
struct job_cursor *job_cursor_new(const struct job_index *x);
void job_cursor_free(struct job_cursor *c);

/* Entry i (0 .. count - 1) of c's index into *e. 0, -ENOENT past the end,
 * or -errno (-EIO: a short read). */
int job_cursor_entry(struct job_cursor *c, uint64_t i, struct job_entry *e);

/* The entry whose name is base (blen bytes, no .json/.txt) into *e: 0,
 * -ENOENT, or -errno. */
int job_index_find(const struct job_index *x, const char *base, size_t blen,
		   struct job_entry *e);

/* The line of e into a new buffer *line (e->len bytes and a NUL), read
 * from its file's content (the disk cache; downloaded again if it was
 * evicted, within op). 0 or -errno. */
int job_index_line(const struct job_index *x, struct op *op,
		   const struct job_entry *e, char **line);

/*
 * Up to size bytes of stream s at off into a new buffer *out (*len bytes;
 * 0 at the end): each line as its file has it and a newline. 0 or -errno.
 */
int job_index_read(const struct job_index *x, struct op *op, enum job_stream s,
		   uint64_t off, size_t size, char **out, size_t *len);

#endif
