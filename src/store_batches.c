/*
 * store_batches.c - the store and listing of batches (batch_kind from the
 * API, store_api); the typed wrappers the tree and ctl call; and the
 * policy that a stale copy of a listed batch is brought up to date by
 * refreshing the listing (one refresh shared by every reader) rather than
 * by a GET of its own.
 */
#include "store_batches.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_object.h"

int batches_init(struct batches *b, struct api *api, double ttl, double timeout,
		 unsigned page_size)
{
	return store_api_init(&b->store, &b->listing, &batch_kind, api, ttl,
			      timeout, page_size);
}

void batches_destroy(struct batches *b)
{
	store_api_destroy(&b->store, &b->listing);
}

/*
 * Bring the copy of id up to date through the listing when a STORE_FRESH
 * read would fetch it and the kept listing holds it (ttl > 0: with 0 every
 * open asks, and one GET is the cheapest question). Returns the mode the
 * store is then asked in: STORE_FRESH (after a refresh the copy is fresh;
 * if the refresh did not bring it, or failed for good, a GET follows),
 * STORE_ANY (the refresh failed for a passing reason: the stale copy
 * serves), or -EINTR.
 */
static int refresh_listed(struct batches *b, struct op *op, const char *id)
{
	int r;

	if (b->store.ttl <= 0 || !store_stale(&b->store, id) ||
	    !listing_has(&b->listing, id))
		return STORE_FRESH;
	r = listing_refresh(&b->listing, op, store_clock(&b->store), 0);
	if (r == -EINTR)
		return r;
	if (r < 0 && api_error_transient(r)) {
		log_warn("batch %s: listing refresh failed (%s); serving the "
			 "cached copy",
			 id, strerror(-r));
		STAT_ADD(b->store.stats, stale_served, 1);
		return STORE_ANY;
	}
	return STORE_FRESH;
}

int batches_get(struct batches *b, struct op *op, const char *id,
		enum store_mode mode, struct batch **out, struct api_error *err)
{
	void *obj = NULL;
	int r = 0;

	*out = NULL;
	if (mode == STORE_FRESH)
		r = refresh_listed(b, op, id);
	if (r < 0) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->message, sizeof(err->message),
				 "interrupted");
		}
		return r;
	}
	if (mode == STORE_FRESH)
		mode = (enum store_mode)r;
	r = store_get(&b->store, op, id, mode, &obj, err);
	*out = obj;
	return r;
}

int batches_refresh(struct batches *b, struct op *op)
{
	return listing_refresh(&b->listing, op, store_clock(&b->store), 1);
}

int batches_newest(struct batches *b, struct op *op)
{
	return listing_refresh(&b->listing, op, store_clock(&b->store), 0);
}

void batches_put(struct batches *b, struct batch *obj, double sent)
{
	store_put(&b->store, obj, sent);
}

int batches_list(struct batches *b, struct op *op, char ***ids, size_t *n)
{
	return listing_get(&b->listing, op, ids, n);
}

int batches_list_kept(struct batches *b, char ***ids, size_t *n)
{
	uint64_t version = 0;

	return listing_kept_since(&b->listing, &version, ids, n);
}
