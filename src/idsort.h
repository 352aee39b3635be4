/*
 * idsort.h - finding the custom_ids that repeat in an input of any size
 * with a bounded memory: each id is a record (its 64-bit hash, where its
 * token starts, its line); records are sorted in runs of a fixed count in
 * memory, each run written to a scratch file the caller gives, and the
 * runs merged, so equal hashes come together whatever the input's size.
 * Equal hashes are confirmed by the caller (the tokens read back), so a
 * collision never makes a repeat. Memory: the run buffer (mem bytes) and
 * one read buffer per run during the merge, within the same bound.
 */
#ifndef KIMIFS_IDSORT_H
#define KIMIFS_IDSORT_H

#include <stddef.h>
#include <stdint.h>

struct idsort_rec {
	uint64_t hash;
	uint64_t off;  /* where the id's token starts in the input */
	uint64_t line; /* its line, from 1 */
};

struct idsort {
	int fd;			/* the scratch file: runs, one after another */
	struct idsort_rec *buf; /* the run being filled */
	size_t cap;		/* records a run holds */
	size_t n;		/* records in the run being filled */
	uint64_t *runs;		/* where each run written ends, in records */
	size_t nruns;
	size_t runs_cap;
	uint64_t total; /* records added */
	size_t mem;	/* the bound in bytes */
};

/* Start with the scratch file fd (open read-write, empty; not closed
 * here) and at most mem bytes of memory (at least 64 KiB are used). 0 or
 * -ENOMEM. */
int idsort_init(struct idsort *s, int fd, size_t mem);

/* One id: 0, or -errno (the scratch file cannot be written). */
int idsort_add(struct idsort *s, uint64_t hash, uint64_t off, uint64_t line);

/*
 * Every repeat, in order of hash: for each id whose hash was met on an
 * earlier line, same(ctx, off of the earlier, off of this) says whether the
 * two tokens are the same id (1, 0, or -errno), and when they are,
 * found(ctx, this line, the first line of that id, this off) is told (0 to
 * go on, else stops with its value). A record is compared with the first of
 * each distinct id of its hash (collisions make more than one). 0, or the
 * first -errno.
 */
int idsort_repeats(struct idsort *s,
		   int (*same)(void *ctx, uint64_t a, uint64_t b),
		   int (*found)(void *ctx, uint64_t line, uint64_t first,
				uint64_t off),
		   void *ctx);

void idsort_free(struct idsort *s);

#endif
