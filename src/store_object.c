/*
 * store_object.c - the API as a store's source, whatever the kind: a fetch
 * is api_get, a page api_list (its objects taken as they are), a stop
 * api_stop. What differs between kinds is their descriptors' (kind.h).
 * Also a store and its listing set up over it.
 */
#include "store_object.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fetch(void *ctx, const struct object_kind *kind, struct op *op,
		 const char *id, void **out, struct api_error *err)
{
	return api_get(ctx, op, kind, id, out, err);
}

/* Fill page with the objects, cursor and has_more of ap, taking them (ap
 * keeps nothing to free but its array): 0, or -ENOMEM with err. */
static int page_take(struct store_page *page, struct api_page *ap,
		     struct api_error *err)
{
	page->items = calloc(ap->nitems + 1, sizeof(*page->items));
	if (!page->items) {
		snprintf(err->message, sizeof(err->message), "%s",
			 strerror(ENOMEM));
		return -ENOMEM;
	}
	memcpy(page->items, ap->items, ap->nitems * sizeof(*page->items));
	page->nitems = ap->nitems;
	ap->nitems = 0; /* the references are the page's now */
	page->last_id = ap->last_id;
	ap->last_id = NULL;
	page->has_more = ap->has_more;
	return 0;
}

static int list_page(void *ctx, const struct object_kind *kind, struct op *op,
		     const char *after, unsigned limit, struct store_page *page,
		     struct api_error *err)
{
	struct api_page ap;
	int r = api_list(ctx, op, kind, after, limit, &ap, err);

	if (r == 0)
		r = page_take(page, &ap, err);
	api_page_free(&ap);
	return r;
}

static void stop(void *ctx)
{
	api_stop(ctx);
}

const struct store_source store_api = {
    .fetch = fetch,
    .list_page = list_page,
    .stop = stop,
};

int store_api_init(struct store *s, struct listing *l,
		   const struct object_kind *kind, struct api *api, double ttl,
		   double timeout, unsigned page_size)
{
	int r = store_init(s, kind, &store_api, api, ttl, timeout);

	if (r == 0)
		listing_init(l, s, page_size);
	return r;
}

void store_api_destroy(struct store *s, struct listing *l)
{
	listing_destroy(l);
	store_destroy(s);
}
