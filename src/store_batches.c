/*
 * store_batches.c - the batch kind of the object store: how a batch is
 * fetched, listed, ranked in its lifecycle, compared and weighed, and the
 * typed wrappers the tree and ctl call.
 */
#include "store_batches.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kind_fetch(void *ctx, struct api_op *op, const char *id, void **out,
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

static size_t bfile_bytes(const struct bfile *f)
{
	return f->name ? strlen(f->name) + f->len : 0;
}

/* The bytes a snapshot holds, near enough: its JSON text and its files. */
static size_t kind_bytes(const void *obj)
{
	const struct batch *b = obj;
	size_t n = sizeof(*b) + strlen(b->id) + b->json.len;

	for (size_t i = 0; i < b->nvalues; i++)
		n += bfile_bytes(&b->values[i]);
	for (size_t i = 0; i < 3; i++)
		n += bfile_bytes(&b->counts[i]);
	for (size_t i = 0; i < b->nmeta; i++)
		n += bfile_bytes(&b->meta[i]);
	return n;
}

/* One page of GET /v1/batches, its batches moved into page. */
static int kind_list_page(void *ctx, struct api_op *op, const char *after,
			  unsigned limit, struct store_page *page,
			  struct api_error *err)
{
	struct api_page ap;
	int r = api_list_batches(ctx, op, after, limit, &ap, err);

	if (r < 0)
		return r;
	page->items = calloc(ap.nitems + 1, sizeof(*page->items));
	if (!page->items) {
		snprintf(err->message, sizeof(err->message), "%s",
			 strerror(ENOMEM));
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ap.nitems; i++) {
		page->items[i] = ap.items[i];
		ap.items[i] = NULL;
	}
	page->nitems = ap.nitems;
	page->last_id = ap.last_id;
	ap.last_id = NULL;
	page->has_more = ap.has_more;
out:
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
    .list_page = kind_list_page,
    .id_valid = batch_id_valid,
    .bytes = kind_bytes,
    .stop = kind_stop,
};

int batches_init(struct batches *b, struct api *api, double ttl,
		 unsigned page_size)
{
	int r = store_init(&b->store, &store_kind_batch, api, ttl,
			   api->http.opts->timeout);

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

int batches_get(struct batches *b, struct api_op *op, const char *id,
		enum store_mode mode, struct batch **out, struct api_error *err)
{
	void *obj = NULL;
	int r = store_get(&b->store, op, id, mode, &obj, err);

	*out = obj;
	return r;
}

void batches_put(struct batches *b, struct batch *obj, double sent)
{
	store_put(&b->store, obj, sent);
}

int batches_list(struct batches *b, struct api_op *op, char ***ids, size_t *n)
{
	return listing_get(&b->listing, op, ids, n);
}
