/*
 * content.c - the complete content of a server file (content.h), for the
 * parts of the tree that read a whole file at once: a reader of the disk
 * cache (cache.h) waited on until the content is complete.
 */
#include "content.h"

#include <errno.h>

#include "cache.h"
#include "file.h"

int content_open(struct cache *c, struct op *op, const char *file_id, int *fd)
{
	struct cache_reader *r;
	int err;

	*fd = -1;
	if (!file_id_valid(file_id))
		return -ENOENT;
	err = cache_reader_open(c, file_id, -1, &r);
	if (err < 0)
		return err;
	err = cache_reader_wait(r, op, fd);
	cache_reader_close(r);
	return err;
}
