/*
 * store_object.h - the API as the source of a store (store.h): any kind of
 * object (its descriptor, kind.h) fetched with api_get and listed with
 * api_list, the client as the source's context.
 */
#ifndef KIMIFS_STORE_OBJECT_H
#define KIMIFS_STORE_OBJECT_H

#include "api.h"
#include "store.h"

/* The source of every store of API objects (ctx: the struct api). */
extern const struct store_source store_api;

#endif
