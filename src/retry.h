/*
 * retry.h - what `echo retry > batches/<id>/ctl` sends again: the lines of
 * a batch's input file whose request has no successful result, copied byte
 * for byte, and the name of the new input file. Pure (reads and writes
 * descriptors it is given).
 */
#ifndef KIMIFS_RETRY_H
#define KIMIFS_RETRY_H

#include <stddef.h>

/* Whether the request custom_id has a successful result (ctx: the
 * caller's index). */
typedef int (*retry_succeeded_fn)(void *ctx, const char *custom_id);

/*
 * Copy to out_fd every line of in_fd (read from its start) whose custom_id
 * has no successful result per succeeded(ctx, id); lines that are not a
 * request with a string custom_id are left out. Each copied line ends in a
 * newline. Returns the number of lines copied (0: nothing to retry), or
 * -errno (the write's own, e.g. -ENOSPC on a full disk; -EIO on a read
 * failure; -ENOMEM).
 */
long retry_lines(int in_fd, int out_fd, retry_succeeded_fn succeeded,
		 void *ctx);

/*
 * The name of the retry input made from input file name: "q.jsonl" gives
 * "q.retry-1.jsonl", "q.retry-1.jsonl" gives "q.retry-2.jsonl"; a name
 * without .jsonl gets the suffix and .jsonl. Written to out (size bytes);
 * 0, or -ENAMETOOLONG.
 */
int retry_name(const char *name, char *out, size_t size);

#endif
