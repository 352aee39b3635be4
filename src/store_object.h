/*
 * store_object.h - the API as the source of a store (store.h): any kind of
 * object (its descriptor, kind.h) fetched with api_get and listed with
 * api_list, the client as the source's context; a store and its listing
 * set up over it.
 */
#ifndef KIMIFS_STORE_OBJECT_H
#define KIMIFS_STORE_OBJECT_H

#include "api.h"
#include "listing.h"
#include "store.h"

/* The source of every store of API objects (ctx: the struct api). */
extern const struct store_source store_api;

/* Set up s, a store of kind's objects from api (store_api), copies fresh
 * for ttl seconds, a fetch bounded by timeout seconds, and l, its listing
 * by pages of page_size: 0 or -ENOMEM (nothing to tear down). */
int store_api_init(struct store *s, struct listing *l,
		   const struct object_kind *kind, struct api *api, double ttl,
		   double timeout, unsigned page_size);
/* Tear down what store_api_init set up: the listing, then the store. */
void store_api_destroy(struct store *s, struct listing *l);

#endif
