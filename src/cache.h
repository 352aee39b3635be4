/*
 * cache.h - the object cache: batch snapshots by id, how old they are, and
 * the listing of batches/. It decides when an object must be fetched again
 * (cache_ttl, final states never), makes concurrent readers share one
 * fetch, never lets an older answer replace a newer one, and bounds what a
 * listing may hold. It asks the API client for objects and knows nothing
 * of HTTP or FUSE. No lock is held across a network call.
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

	/* Fetches of ids with no snapshot (names never seen) go one at a
	 * time: the probe (see cache_get). */
	int probe_inflight;
	int probe_err;		    /* the last probe found the server down:
				       its -errno; 0 once anything answers */
	int probe_last;		    /* the result of the last probe */
	struct api_error probe_why; /* its reason */
	double probe_ended;	    /* when the last probe ended */
	int probe_threads;	    /* probes running in the background */
};

enum cache_mode {
	CACHE_ANY,   /* any cached copy; fetch only when there is none */
	CACHE_FRESH, /* a copy younger than ttl (final objects: any) */
	CACHE_FORCE, /* fetch now (final objects: the cached copy) */
};

int cache_init(struct cache *c, struct api *api, double ttl,
	       unsigned page_size);
void cache_destroy(struct cache *c);

/* The clock the cache stamps requests with (monotonic seconds): take it
 * just before sending a request whose answer goes to cache_put. */
double cache_clock(void);

/*
 * Get batch id as mode asks, fetching it when needed; concurrent callers
 * share one fetch. Returns 0 with a new reference in *out, -ENOENT when the
 * server says there is no such batch (remembered for ttl), or another -errno
 * from the API, with the reason in err when err is not NULL. When a fetch in
 * CACHE_ANY or CACHE_FRESH mode fails for a passing reason and a copy
 * exists, the copy is served and the failure logged; CACHE_FORCE reports
 * the failure instead, also when it shared a fetch that another reader
 * started. *out is the newest snapshot the cache holds, which is not the
 * fetched one when that answer was older (see cache_put).
 *
 * An id with no snapshot (a name never seen, or a 404 older than ttl) is
 * fetched by one probe at a time in CACHE_ANY and CACHE_FRESH mode: a
 * caller waits for the probe under way, and when the last probe failed for
 * a passing reason less than its own duration ago, gets that failure at
 * once, without a request. Waits end by the API timeout (-ETIMEDOUT).
 */
int cache_get(struct cache *c, const char *id, enum cache_mode mode,
	      struct batch **out, struct api_error *err);

/*
 * The ids of batches/, newest first: the cached listing while younger than
 * ttl, otherwise every page fetched again, refreshing each listed object in
 * the cache (as cache_put does, with the time of its page). Unsafe and
 * repeated ids are left out (logged once per listing); a cursor that
 * repeats ends the listing. A listing that passes CACHE_LIST_MAX_BATCHES
 * batches, CACHE_LIST_MAX_BYTES of objects or as many pages fails with
 * -EIO and a logged reason. Returns 0 with a malloc'd array in *ids (free
 * with cache_list_free), or -errno when no listing can be had; when a fetch
 * fails for a passing reason (-EIO included) the previous listing is served.
 */
int cache_list(struct cache *c, char ***ids, size_t *n);
void cache_list_free(char **ids, size_t n);

#define CACHE_LIST_MAX_BATCHES 200000
#define CACHE_LIST_MAX_BYTES   (1024UL << 20)

/*
 * Store an object the server just returned (e.g. from a cancel) to a
 * request sent at `sent` (cache_clock()), if it is newer than the cached
 * snapshot: yes when its request was sent after the cached snapshot's was
 * answered; no when it was answered before that one was sent; when the two
 * requests overlapped, only when its status is later in the lifecycle
 * (validating < in_progress < finalizing < completed, failed, expired;
 * validating, in_progress, finalizing < cancelling < cancelled). The
 * listing and cache_get apply the same rule. Takes no reference of b.
 */
void cache_put(struct cache *c, struct batch *b, double sent);

/* The outcome line of the last ctl command on batch id: set it, or get a
 * malloc'd copy (NULL when there is none). */
int cache_set_outcome(struct cache *c, const char *id, const char *text);
char *cache_outcome(struct cache *c, const char *id);

#endif
