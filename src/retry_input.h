/*
 * retry_input.h - the requests of a final batch to send again: the lines of
 * its input file whose custom_id has no successful result in its output
 * file, as `retry` of a batch (ctl_retry.c) and a job's retry round
 * (job_retry.c) both gather them.
 */
#ifndef KIMIFS_RETRY_INPUT_H
#define KIMIFS_RETRY_INPUT_H

#include <stddef.h>

struct batch;
struct cache;
struct op;
struct results_cache;

/*
 * Append to out_fd (at its offset) the lines of final batch b's input file
 * (content_open from disk cache cache) whose custom_id has no success in
 * b's results (results_get from results: a line of the output file for that
 * id with a 2xx status_code), byte for byte, each ending in a newline, as
 * part of op. Returns the number of lines appended (0: none), or -errno
 * (-ENOENT: b has no input file; a download's failure; -EIO) with the
 * reason in why (whylen bytes).
 */
long retry_input(struct cache *cache, struct results_cache *results,
		 struct op *op, const struct batch *b, int out_fd, char *why,
		 size_t whylen);

#endif
