/*
 * store_batches.c - the batch kind of the object store: how a batch is
 * fetched, listed, ranked in its lifecycle, compared and weighed, and its
 * status changes logged; the typed wrappers the tree and ctl call; and
 * the policy that a stale copy of a listed batch is brought up to date by
 * refreshing the listing (one refresh shared by every reader) rather than by a
 * GET of its own.
 */
#include "store_batches.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int kind_fetch(void *ctx, struct op *op, const char *id, void **out,
		      struct api_error *err)
{
	struct batch *b = NULL;
	int r = api_get_batch(ctx, op, id, &b, err);

	*out = b;
	return r;
}

static void *kind_ref(void *obj)
{
	return batch_ref(obj);
}

static void kind_unref(void *obj)
{
	batch_unref(obj);
}

static const char *kind_id(const void *obj)
{
	const struct batch *b = obj;

	return b->id;
}

static int kind_final(const void *obj)
{
	const struct batch *b = obj;

	return b->final;
}

/* Where a batch's status stands in the lifecycle; 0 when it is not a known
 * one. The final states share the last stage. */
static int kind_rank(const void *obj)
{
	static const struct {
		const char *name;
		int stage;
	} stages[] = {
	    {"validating", 1}, {"in_progress", 2}, {"finalizing", 3},
	    {"cancelling", 4}, {"completed", 5},   {"failed", 5},
	    {"expired", 5},    {"cancelled", 5},
	};
	const struct batch *b = obj;

	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(b->status, stages[i].name) == 0)
			return stages[i].stage;
	return 0;
}

/* Two snapshots say the same when the server sent the same object. */
static int kind_same(const void *a, const void *b)
{
	const struct batch *x = a, *y = b;

	return x->json.len == y->json.len &&
	       memcmp(x->json.data, y->json.data, x->json.len) == 0;
}

/* One line per status change kimifs sees, from whichever request (a
 * wait's poll, a refresh, a listing, a cancel) brought it. */
static void kind_changed(const void *old, const void *obj)
{
	const struct batch *a = old, *b = obj;

	if (strcmp(a->status, b->status) != 0)
		log_info("batch %s: %s -> %s", b->id, a->status, b->status);
}

/* The bytes a snapshot holds, near enough: its JSON text (every file is
 * rendered from it when opened). */
static size_t kind_bytes(const void *obj)
{
	const struct batch *b = obj;

	return sizeof(*b) + strlen(b->id) + b->json.len;
}

static int kind_list_page(void *ctx, struct op *op, const char *after,
			  unsigned limit, struct store_page *page,
			  struct api_error *err)
{
	struct api_page ap;
	int r = api_list(ctx, op, &api_list_batch, after, limit, &ap, err);

	if (r == 0)
		r = store_page_take(page, &ap, err);
	api_page_free(&ap);
	return r;
}

static void kind_stop(void *ctx)
{
	api_stop(ctx);
}

const struct store_kind store_kind_batch = {
    .name = "batch",
    .plural = "batches",
    .fetch = kind_fetch,
    .ref = kind_ref,
    .unref = kind_unref,
    .id = kind_id,
    .final = kind_final,
    .rank = kind_rank,
    .same = kind_same,
    .changed = kind_changed,
    .list_page = kind_list_page,
    .id_valid = batch_id_valid,
    .bytes = kind_bytes,
    .stop = kind_stop,
};

int batches_init(struct batches *b, struct api *api, double ttl, double timeout,
		 unsigned page_size)
{
	int r = store_init(&b->store, &store_kind_batch, api, ttl, timeout);

	if (r < 0)
		return r;
	listing_init(&b->listing, &b->store, page_size);
	return 0;
}

void batches_destroy(struct batches *b)
{
	listing_destroy(&b->listing);
	store_destroy(&b->store);
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

void batches_put(struct batches *b, struct batch *obj, double sent)
{
	store_put(&b->store, obj, sent);
}

int batches_list(struct batches *b, struct op *op, char ***ids, size_t *n)
{
	return listing_get(&b->listing, op, ids, n);
}
