/*
 * api_pager.h - a walk over the pages of a list endpoint (api_list), for
 * the searches that look through the newest objects of a kind: bounded by
 * a page count, each object handed to a visitor that may end the walk.
 */
#ifndef KIMIFS_API_PAGER_H
#define KIMIFS_API_PAGER_H

#include "api.h"

/*
 * Walk kind's list, newest first, as part of op: at most max_pages pages
 * of limit objects, each object of a page handed to visit(obj, ctx) (obj
 * borrowed for the call; take a reference to keep it). The walk ends after
 * a page where visit returned non-zero for any object (the rest of that
 * page is still visited), at a page that has no more after it (has_more
 * false, or no cursor), or after max_pages pages. Returns 0, or the -errno
 * of the page that could not be read, with err filled in (what was visited
 * before stays visited).
 */
int api_list_each(struct api *api, struct op *op,
		  const struct object_kind *kind, unsigned limit,
		  unsigned max_pages, int (*visit)(void *obj, void *ctx),
		  void *ctx, struct api_error *err);

#endif
