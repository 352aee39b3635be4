/*
 * cache.h - the disk cache of file contents. A file's content never
 * changes, so it is downloaded at most once and kept on disk under its id
 * (mode 0600) in a directory tagged as kimifs's (CACHEDIR.TAG), up to a
 * byte cap, least recently used first out; the order survives a remount
 * (each use touches the file's mtime). Nothing but what kimifs made is
 * ever removed, and no directory's mode is changed. A download is written to a
 * temporary name and renamed only when the whole answer came, so nothing cut
 * short is ever served as whole; a failed one leaves nothing and the next open
 * tries again. Readers of a file being downloaded share the one download and
 * each read waits only for the bytes it asks for. The cache knows nothing of
 * HTTP or FUSE: it downloads through a function it is given.
 */
#ifndef KIMIFS_CACHE_H
#define KIMIFS_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api_error.h"
#include "op.h"
#include "stats.h"

/* Download file id into fd, calling on_sink(arg, bytes so far) as it
 * lands; 0 with the length in *len, or -errno with err (api.h). */
typedef int (*cache_download_fn)(void *ctx, struct op *op, const char *id,
				 int fd, void (*on_sink)(void *, size_t),
				 void *arg, size_t *len, struct api_error *err);

struct cache_entry;
struct download;
struct cache_reader;

struct cache {
	char *dir;	 /* where the contents live */
	int private_dir; /* a temporary directory of this mount only */
	int dirfd;	 /* dir, open */
	uint64_t cap;	 /* bytes the cache may hold */
	cache_download_fn download;
	void *ctx;
	struct stats *stats; /* disk hits, misses and bytes; or NULL */

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t idle;  /* signalled when a download thread ends */
	struct cache_entry *newest, *oldest; /* complete contents, LRU */
	uint64_t used;			     /* their bytes */
	struct download *downloads;	     /* under way */
	unsigned threads;		     /* download threads running */
	int stopping;
};

/*
 * Set up the cache in dir (NULL: $XDG_CACHE_HOME/kimifs, else
 * ~/.cache/kimifs; a link to a directory is followed), holding at most
 * cap bytes. A missing dir is made (mode 0700, parents too) and tagged
 * with CACHEDIR.TAG; an empty one is tagged, its mode kept (logged when
 * others may enter it); one with kimifs's tag is used as it is. A
 * non-empty one without the tag, or another user's, is refused, nothing
 * in it touched; the default one is also taken (and tagged) when it holds
 * only what an earlier kimifs made there (0600 files named by ids, its
 * temporary files). What an earlier mount left is kept (temporary files
 * of processes that ended are removed, logged with what they were). When
 * the default directory cannot be had, a private temporary one is used
 * for this mount (logged). 0, or -1 with one line in why (whylen bytes).
 */
int cache_init(struct cache *c, const char *dir, uint64_t cap,
	       cache_download_fn download, void *ctx, char *why, size_t whylen);

/* End the downloads under way, wait for their threads, free the rest (a
 * private directory is removed). Readers must be closed first. */
void cache_destroy(struct cache *c);

/*
 * Open the content of file id for reading: from the disk, or from the
 * download of it (started now when none is under way; its length per the
 * FileObject is expected, -1 when unknown: a mismatch is logged). A
 * content on disk whose size is not the one kimifs knew, or (found on disk
 * at start) not expected, is logged, removed and downloaded again;
 * otherwise it sends nothing. 0 with *out, or -errno (-ENOMEM,
 * -EINTR when kimifs is stopping, or the error of making the file).
 */
int cache_reader_open(struct cache *c, const char *id, int64_t expected,
		      struct cache_reader **out);
void cache_reader_close(struct cache_reader *r);

/* Whether r reads a complete content (then cache_reader_size is exact). */
int cache_reader_complete(const struct cache_reader *r);
uint64_t cache_reader_size(const struct cache_reader *r);

/*
 * The bytes of r at off, up to size: waits (within op's deadline, or until
 * op is interrupted) until the range is there or the content ends; at the
 * deadline, the bytes at off that came by then, if any. 0 with a
 * descriptor in *fd (r's own; do not close) from which *n bytes at off can
 * be read (0 at the end), or -errno: the download's failure (its errno,
 * e.g. -EIO, -ETIMEDOUT), -ETIMEDOUT, -EINTR.
 */
int cache_reader_read(struct cache_reader *r, struct op *op, size_t size,
		      off_t off, int *fd, size_t *n);

/*
 * Wait until r's content is complete (within op's deadline, -EINTR when op
 * is interrupted), then give a new O_RDONLY descriptor of it in *fd. 0 or
 * -errno (the download's failure included).
 */
int cache_reader_wait(struct cache_reader *r, struct op *op, int *fd);

/*
 * Count bytes that are not contents (a job's merged results index,
 * job_results.h: scratch files of the cache directory) in what the cache
 * holds, or (bytes < 0) no longer: the least recently used contents go
 * until the cap holds again, or none is left. MOUNT/stats's disk bytes
 * count them.
 */
void cache_charge(struct cache *c, int64_t bytes);

/* Remove file id's content from the disk (the file was deleted), and
 * keep a download of it under way from staying; readers keep what they
 * have open. */
void cache_forget(struct cache *c, const char *id);

/* The exact size of file id's content when it is kept on disk and known
 * whole (downloaded by this mount, or checked against its FileObject's
 * bytes when opened): 1 with *size, or 0. Sends nothing. */
int cache_size_of(struct cache *c, const char *id, uint64_t *size);

/* The same, also for a download whose whole answer has come and is not
 * kept yet (what stat shows from then on). */
int cache_real_size(struct cache *c, const char *id, uint64_t *size);

#endif
