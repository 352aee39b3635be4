/*
 * job_index.h - the layout on disk of a job's merged results
 * (job_results.h), shared by the files that make it (job_index_build.c),
 * read it (job_index.c) and keep it (job_results.c); internal to the
 * disk layer.
 *
 * Per custom_id, in order of first appearance: a record (struct jrec) in
 * F_RECS and its name, NUL-terminated, in F_NAMES (in the same order); a
 * hash table of struct jslot in F_SLOTS, at most half full, placed by the
 * low bits of the name's hash; and per stream a table of struct jspan in
 * F_SPANS + s, one per line. Each a scratch file of the cache directory,
 * unlinked.
 */
#ifndef KIMIFS_JOB_INDEX_H
#define KIMIFS_JOB_INDEX_H

#include <stdint.h>

#include "job_results.h"

/* One custom_id on disk. 40 bytes. */
struct jrec {
	uint64_t hash; /* of its name */
	uint64_t name; /* offset of its name (NUL-terminated) in F_NAMES */
	uint64_t off;
	uint32_t len;
	uint32_t batch;
	uint8_t src, has_txt, ok, pad[5];
};

/* A slot of the hash table: the high half of its name's hash (the low
 * bits place it), its record + 1, 0 when free. 8 bytes. */
struct jslot {
	uint32_t hash;
	uint32_t rec;
};

#define SLOT_HASH(h) ((uint32_t)((h) >> 32))
#define MAX_RECORDS  UINT32_MAX

/* A line of a stream: where it starts there, its record. 16 bytes. */
struct jspan {
	uint64_t start;
	uint64_t rec;
};

enum { F_RECS, F_NAMES, F_SLOTS, F_SPANS, F_NFILES = F_SPANS + JOB_NSTREAMS };

struct job_index {
	struct job *job; /* the snapshot it stands for (a reference) */
	int fd[F_NFILES];
	uint64_t n, nslots;
	uint64_t durable; /* records whose record and name are on disk */
	uint64_t lines[JOB_NSTREAMS], size[JOB_NSTREAMS];
	int64_t usage[USAGE_N];
	uint64_t charged; /* its files' bytes, counted in the disk cache */
	/* The fields below are the cache's, under its lock. */
	struct job_results *cache;
	uint64_t sig; /* of the job's name, batches and their files */
	int refs;
	int building;
	int linked;
	struct job_index *prev, *next;
};

struct frame; /* a page of the table kept by a build (job_index_build.c) */

/* pread n bytes at off, all of them: 0, or -errno (-EIO: the file ends
 * first). */
int job_pread(int fd, void *buf, size_t n, uint64_t off);

/* Record i of x into *rec. 0 or -errno. */
int job_rec_read(const struct job_index *x, uint64_t i, struct jrec *rec);

/* The slot of name (hash h) in x's table: holding its record (*rec
 * read), or the free one where it goes (*rec untouched); through the
 * frames fr of a build, or (fr NULL) from the file. 0, -EAGAIN when a
 * record of the same hash is not on disk yet (the builder's buffers hold
 * it: flush them and ask again), or -errno. job_index_build.c. */
int job_slot_find(const struct job_index *x, struct frame *fr, const char *name,
		  uint64_t h, uint64_t *at, struct jslot *slot,
		  struct jrec *rec);

/* Record i of c's index, read with its run when not in c: *rec points
 * into c. 0, -ENOENT past the end, or -errno. job_index.c. */
int job_cursor_rec(struct job_cursor *c, uint64_t i, const struct jrec **rec);

/* The file of batch bi of x's job, source src, open in *fd (the disk
 * cache: downloaded again if it was evicted, within op). job_index.c. */
int job_file_open(const struct job_index *x, struct op *op, uint32_t bi,
		  uint8_t src, int *fd);

/*
 * Make the index of x->job into x (its fds, counts and sums) from the
 * batches' indexes of results, its files scratch files of disk. 0 or
 * -errno (-EINTR: op was interrupted between two batches; the caller logs
 * a failure). job_index_build.c.
 */
int job_index_build(struct job_index *x, struct op *op,
		    struct results_cache *results, struct cache *disk);

#endif
