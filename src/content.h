/* content.h - the complete content of a server file, from the disk cache. */
#ifndef KIMIFS_CONTENT_H
#define KIMIFS_CONTENT_H

struct cache;
struct op;

/* Open the complete content of file id for reading, downloading it into
 * disk cache c first when it is not there (concurrent callers share one
 * download; bounded by op's deadline; -EINTR when op is interrupted).
 * Returns 0 with a new descriptor in *fd (O_RDONLY, the caller closes it;
 * it stays readable even if the cache entry is evicted meanwhile), or
 * -errno (-ENOENT: no such file on the server). */
int content_open(struct cache *c, struct op *op, const char *file_id, int *fd);

#endif
