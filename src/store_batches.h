/*
 * store_batches.h - batches in the object store: the store of batch
 * snapshots by id (batch_kind) and the listing of batches/, from the API
 * (store_api), with typed getters for the tree and ctl.
 */
#ifndef KIMIFS_STORE_BATCHES_H
#define KIMIFS_STORE_BATCHES_H

#include <stddef.h>

#include "api.h"
#include "batch.h"
#include "listing.h"
#include "store.h"

struct batches {
	struct store store;	/* struct batch snapshots by id */
	struct listing listing; /* the ids of batches/ */
};

/* Set up the store and the listing over api, copies fresh for ttl
 * seconds, a fetch bounded by timeout seconds; 0 or -ENOMEM. */
int batches_init(struct batches *b, struct api *api, double ttl, double timeout,
		 unsigned page_size);
void batches_destroy(struct batches *b);

/*
 * store_get for a batch: 0 with a new reference in *out, or -errno with
 * the reason in err (may be NULL). A STORE_FRESH read of a copy that is
 * stale, not final, and in the kept listing refreshes the listing instead
 * of fetching the batch alone (listing_refresh: one refresh at a time,
 * shared by every reader that asked before it ended); when that refresh
 * fails for a passing reason the stale copy serves. Ids never listed, and
 * every read with cache_ttl 0, are fetched on their own.
 */
int batches_get(struct batches *b, struct op *op, const char *id,
		enum store_mode mode, struct batch **out,
		struct api_error *err);

/* store_put of a batch the server just returned to a request sent at sent
 * (store_clock(&b->store)). Takes no reference of obj. */
void batches_put(struct batches *b, struct batch *obj, double sent);

/* listing_get of batches/: the ids of every batch, newest first. */
int batches_list(struct batches *b, struct op *op, char ***ids, size_t *n);

/* The kept listing of batches/, whatever its age, never fetched: 0 with
 * its ids, or -ENODATA when there is none yet, -ENOMEM. */
int batches_list_kept(struct batches *b, char ***ids, size_t *n);

/* A full listing of batches/ begun now (MOUNT/ctl "refresh"): 0 or the
 * -errno of the listing. */
int batches_refresh(struct batches *b, struct op *op);

/* The newest batches brought into the listing now (its pages up to the
 * batches it holds already, as a refresh of an old listing does): 0 or
 * the -errno of the listing. */
int batches_newest(struct batches *b, struct op *op);

#endif
