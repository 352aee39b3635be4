/*
 * cache.h - the object cache: batch snapshots by id, how old they are, and
 * the listing of batches/. It decides when an object must be fetched again
 * (cache_ttl, final states never) and makes concurrent readers share one
 * fetch. It asks the API client for objects and knows nothing of HTTP or
 * FUSE. No lock is held across a network call.
 */
#ifndef KIMIFS_CACHE_H
#define KIMIFS_CACHE_H

#include <pthread.h>
#include <stddef.h>

#include "api.h"
#include "batch.h"

struct cache_entry;

struct cache {
	struct api *api;
	double ttl; /* seconds a fetched object or listing stays fresh */
	unsigned page_size; /* limit for each list page */

	pthread_mutex_t lock;	/* guards every field below */
	pthread_cond_t changed; /* broadcast whenever a fetch ends */
	struct cache_entry **buckets;
	size_t nbuckets;
	size_t nentries;
	size_t inserts; /* since the last sweep of dead entries */

	char **listing; /* ids of batches/, newest first */
	size_t nlisting;
	int listing_valid;
	int list_inflight;
	double listed_at;  /* when the listing was fetched */
	double list_tried; /* when the last listing fetch ended */
	int list_err;	   /* its result */
};

enum cache_mode {
	CACHE_ANY,   /* any cached copy; fetch only when there is none */
	CACHE_FRESH, /* a copy younger than ttl (final objects: any) */
	CACHE_FORCE, /* fetch now (final objects: the cached copy) */
};

int cache_init(struct cache *c, struct api *api, double ttl,
	       unsigned page_size);
void cache_destroy(struct cache *c);

/*
 * Get batch id as mode asks, fetching it when needed; concurrent callers
 * share one fetch. Returns 0 with a new reference in *out, -ENOENT when the
 * server says there is no such batch (remembered for ttl), or another -errno
 * from the API, with the reason in err when err is not NULL. When a fetch in
 * CACHE_ANY or CACHE_FRESH mode fails for a passing reason and a copy
 * exists, the copy is served and the failure logged; CACHE_FORCE reports
 * the failure instead. Failures returned are the caller's to log.
 */
int cache_get(struct cache *c, const char *id, enum cache_mode mode,
	      struct batch **out, struct api_error *err);

/*
 * The ids of batches/, newest first: the cached listing while younger than
 * ttl, otherwise every page fetched again, refreshing each listed object in
 * the cache. Unsafe and repeated ids are left out; a cursor that repeats
 * ends the listing. Returns 0 with a malloc'd array in *ids (free with
 * cache_list_free), or -errno when no listing can be had.
 */
int cache_list(struct cache *c, char ***ids, size_t *n);
void cache_list_free(char **ids, size_t n);

/* Store an object the server just returned (e.g. from a cancel). */
void cache_put(struct cache *c, struct batch *b);

/* The outcome line of the last ctl command on batch id: set it, or get a
 * malloc'd copy (NULL when there is none). */
int cache_set_outcome(struct cache *c, const char *id, const char *text);
char *cache_outcome(struct cache *c, const char *id);

#endif
