/*
 * results_cache.h - the results indexes kimifs keeps in memory: one per
 * batch and pair of (output, error) file ids, built once from the files'
 * content (content.h) and kept with the open content files, most recently
 * used first, within a bound on their memory and their number. File ids
 * name immutable contents, so an index never goes stale: a batch whose
 * output file appears or changes gets a new one.
 */
#ifndef KIMIFS_RESULTS_CACHE_H
#define KIMIFS_RESULTS_CACHE_H

#include <pthread.h>
#include <stddef.h>

#include "batch.h"
#include "op.h"
#include "results.h"

#define RESULTS_CACHE_BYTES (64u << 20) /* memory of the indexes kept */
#define RESULTS_CACHE_COUNT 64		/* indexes kept (two fds each) */
/* Memory of the renderings of result files, held or kept: what open files
 * hold counts, and an open past it is refused (ENOMEM). */
#define RESULTS_RENDER_BYTES (64u << 20)
#define RESULTS_RENDER_KEPT  32 /* renderings kept that nobody holds */

struct cache;

/* One built index and its files, held by reference. */
struct results_set {
	struct results *ix;
	int fd[2]; /* content of the output and error file, or -1 */
	/* The fields below are the cache's, under its lock. */
	char *key; /* "batch\noutput id\nerror id" */
	int refs;
	int building; /* the first caller is downloading and indexing */
	int failed;   /* -errno: the build failed, the set is dropped */
	int linked;   /* in the cache's list */
	size_t bytes;
	struct results_set *prev, *next;
};

/*
 * The rendering of one file of results/ (an entry of a set, as .json or
 * .txt), shared by every open file and stat of it. While held it holds its
 * set; kept unheld, it goes with its set.
 */
struct results_render {
	const char *data; /* the file's bytes */
	size_t len;
	/* The fields below are the cache's, under its lock. */
	struct results_cache *cache;
	struct results_set *set;
	size_t entry; /* index of the entry in set->ix */
	int txt;
	int refs;
	int building;
	int failed;   /* -errno: out of the list's lookups, freed when let go */
	size_t bytes; /* counted in the cache: reserved, then len */
	char *buf;
	struct results_render *prev, *next;
};

struct results_cache {
	struct cache *disk;   /* where the result files are downloaded */
	pthread_mutex_t lock; /* guards the list and the sets' cache fields */
	pthread_cond_t built; /* a build ended */
	pthread_condattr_t condattr;
	struct results_set *head; /* most recently used first */
	size_t bytes, count;
	struct results_render *renders; /* most recently used first */
	size_t render_bytes, render_kept;
};

/* Set up an empty cache of indexes whose files come from disk cache disk
 * (not owned; it outlives c). */
void results_cache_init(struct results_cache *c, struct cache *disk);
/* Frees every set; none may be held. */
void results_cache_destroy(struct results_cache *c);

/*
 * The results of snapshot b: 0 with *out a held set (results_release it), or
 * with *out NULL when b has neither an output nor an error file yet; or
 * -errno (a failed download; -EINTR, -ETIMEDOUT from op). The first caller
 * for a set downloads and indexes its files, concurrent callers wait for it
 * within op's deadline; a file the server no longer has (404) counts as
 * empty and is logged.
 */
int results_get(struct results_cache *c, struct op *op, const struct batch *b,
		struct results_set **out);
/* Let go of a set results_get gave. */
void results_release(struct results_cache *c, struct results_set *s);

/* The line of entry e of s into a new buffer *line (e->len bytes). 0 or
 * -errno (-EIO when the file is shorter than the index says). */
int results_line(const struct results_set *s, const struct result *e,
		 char **line);

/*
 * The rendering of entry e of held set s as .txt (txt 1) or .json: 0 with
 * *out held (results_render_release it), or -errno: -ENOENT (no answer for a
 * .txt), -EIO (the line is not what the index read), -ENOMEM (the
 * renderings held would pass RESULTS_RENDER_BYTES; logged), -EINTR or
 * -ETIMEDOUT waiting for another caller's rendering of it within op. The
 * first caller renders, within a reservation of the most it can take.
 */
int results_render_get(struct op *op, struct results_cache *c,
		       struct results_set *s, const struct result *e, int txt,
		       struct results_render **out);
void results_render_release(struct results_render *rd);

#endif
