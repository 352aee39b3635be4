/*
 * api_list.c - the list endpoints, whatever they list (GET /v1/batches,
 * GET /v1/files): one page asked for after a cursor, the answer checked to
 * be a list, each object parsed by its kind (its descriptor, kind.h) and the
 * malformed ones left out with one log line per page.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

static int parse_page(const struct object_kind *kind, const cJSON *root,
		      struct api_page *page, struct api_error *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "has_more");
	const cJSON *item;
	char why[256], first[256] = "";
	size_t bad = 0;

	if (!cJSON_IsArray(data) ||
	    (more && !cJSON_IsBool(more) &&
	     !(kind->null_more && cJSON_IsNull(more)))) {
		http_error(err, -EIO, "malformed %s list: %s", kind->name,
			   cJSON_IsArray(data) ? "has_more is not a boolean"
					       : "data is not an array");
		return -EIO;
	}
	page->has_more = cJSON_IsTrue(more);
	page->items =
	    calloc((size_t)cJSON_GetArraySize(data) + 1, sizeof(*page->items));
	if (!page->items)
		return -ENOMEM;
	cJSON_ArrayForEach (item, data) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
		void *obj;

		/* An id holding a NUL is no string: never a cursor. */
		if (cJSON_IsString(id)) {
			free(page->last_id);
			page->last_id = strdup(id->valuestring);
		}
		if (kind->parse(item, &obj, why, sizeof(why)) < 0) {
			if (!bad++)
				snprintf(first, sizeof(first), "%s", why);
			continue;
		}
		page->items[page->nitems++] = obj;
	}
	/* One line per page, however many objects are broken. */
	if (bad == 1)
		log_warn("%s list: left out a malformed %s: %s", kind->name,
			 kind->name, first);
	else if (bad > 1)
		log_warn("%s list: left out %zu malformed %s; the first: %s",
			 kind->name, bad, kind->plural, first);
	return 0;
}

static int parse_root(const struct object_kind *kind, const cJSON *root,
		      struct api_page *page, struct api_error *err)
{
	int r = root ? parse_page(kind, root, page, err) : -EIO;

	if (r < 0)
		api_page_free(page);
	return r;
}

int api_parse_list(const struct object_kind *kind, const char *body, size_t len,
		   struct api_page *page, struct api_error *err)
{
	struct http_answer ans = {(char *)body, len, 0, 200};
	cJSON *root;
	int r;

	memset(page, 0, sizeof(*page));
	page->unref = kind->unref;
	memset(err, 0, sizeof(*err));
	root = http_json(&ans, err);
	r = parse_root(kind, root, page, err);
	cJSON_Delete(root);
	return r;
}

int api_list(struct api *api, struct op *op, const struct object_kind *kind,
	     const char *after, unsigned limit, struct api_page *page,
	     struct api_error *err)
{
	char path[API_CURSOR_MAX * 3 + 64];
	char *esc = NULL;
	struct http_request rq = {.method = HTTP_GET,
				  .kind = STAT_LIST,
				  .path = path,
				  .sink_fd = -1,
				  .retries = -1};
	struct http_answer ans = {0};
	cJSON *root = NULL;
	int r;

	memset(page, 0, sizeof(*page));
	page->unref = kind->unref;
	memset(err, 0, sizeof(*err));
	if (after) {
		esc = curl_easy_escape(NULL, after, 0);
		if (!esc)
			return http_error(err, -ENOMEM, "out of memory");
	}
	snprintf(path, sizeof(path), "%s?limit=%u%s%.*s", kind->path, limit,
		 esc ? "&after=" : "", API_CURSOR_MAX * 3, esc ? esc : "");
	curl_free(esc);
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r == 0) {
		root = http_json(&ans, err);
		r = parse_root(kind, root, page, err);
	}
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

void api_page_free(struct api_page *page)
{
	for (size_t i = 0; i < page->nitems; i++)
		if (page->unref)
			page->unref(page->items[i]);
	free(page->items);
	free(page->last_id);
	memset(page, 0, sizeof(*page));
}
