/*
 * api_pager.c - the walk over a list's pages (api_pager.h): api_list asked
 * page after page with the last page's cursor, until the visitor, the
 * list or the page count ends it.
 */
#include "api_pager.h"

#include <stdlib.h>
#include <string.h>

int api_list_each(struct api *api, struct op *op,
		  const struct object_kind *kind, unsigned limit,
		  unsigned max_pages, int (*visit)(void *obj, void *ctx),
		  void *ctx, struct api_error *err)
{
	struct api_page page;
	char *after = NULL;
	int r = 0, stop = 0;

	memset(err, 0, sizeof(*err));
	for (unsigned pages = 0; pages < max_pages && !stop; pages++) {
		r = api_list(api, op, kind, after, limit, &page, err);
		free(after);
		after = NULL;
		if (r < 0)
			break;
		for (size_t i = 0; i < page.nitems; i++)
			stop |= visit(page.items[i], ctx) != 0;
		if (page.has_more && page.last_id)
			after = strdup(page.last_id);
		api_page_free(&page);
		if (!after)
			break;
	}
	free(after);
	return r;
}
