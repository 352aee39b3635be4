/*
 * api_files.c - the file endpoints of the API: retrieve, list, delete and
 * content (GET /v1/files/{id}, GET /v1/files, DELETE /v1/files/{id}, GET
 * /v1/files/{id}/content), their answers turned into FileObject snapshots
 * and list pages, contents written to a descriptor as they come.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

/* "/v1/files/<escaped id><suffix>" into path; 0 or -ENOMEM. */
static int file_path(char *path, size_t size, const char *id,
		     const char *suffix)
{
	char *esc = curl_easy_escape(NULL, id, 0);

	if (!esc)
		return -ENOMEM;
	snprintf(path, size, "/v1/files/%.*s%s", FILE_ID_MAX * 3, esc, suffix);
	curl_free(esc);
	return 0;
}

int api_get_file(struct api *api, struct api_op *op, const char *id,
		 struct file **out, struct api_error *err)
{
	char path[FILE_ID_MAX * 3 + 64], why[256];
	struct http_request rq = {.method = HTTP_GET,
				  .kind = STAT_RETRIEVE,
				  .path = path,
				  .sink_fd = -1,
				  .retries = -1};
	struct http_answer ans = {0};
	cJSON *root = NULL;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (file_path(path, sizeof(path), id, "") < 0) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	if (!root) {
		r = -EIO;
		goto out;
	}
	r = file_from_json(root, out, why, sizeof(why));
	if (r < 0) {
		snprintf(err->message, sizeof(err->message),
			 "malformed file: %s", why);
		goto out;
	}
	if (strcmp((*out)->id, id) != 0) {
		snprintf(err->message, sizeof(err->message),
			 "asked for one file, got another");
		file_unref(*out);
		*out = NULL;
		r = -EIO;
	}
out:
	if (r < 0)
		log_debug("%s: %d %s", path, err->http_status, err->message);
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

static int parse_files(const cJSON *root, struct api_file_page *page,
		       struct api_error *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "has_more");
	const cJSON *item;
	char why[256], first[256] = "";
	size_t bad = 0;

	if (!cJSON_IsArray(data) ||
	    (more && !cJSON_IsBool(more) && !cJSON_IsNull(more))) {
		snprintf(err->message, sizeof(err->message),
			 "malformed file list: %s",
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
		struct file *f;

		if (cJSON_IsString(id)) {
			free(page->last_id);
			page->last_id = strdup(id->valuestring);
		}
		if (file_from_json(item, &f, why, sizeof(why)) < 0) {
			if (!bad++)
				snprintf(first, sizeof(first), "%s", why);
			continue;
		}
		page->items[page->nitems++] = f;
	}
	if (bad)
		log_warn("file list: left out %zu malformed file%s; the first: "
			 "%s",
			 bad, bad == 1 ? "" : "s", first);
	return 0;
}

int api_list_files(struct api *api, struct api_op *op, const char *after,
		   unsigned limit, struct api_file_page *page,
		   struct api_error *err)
{
	char path[FILE_ID_MAX * 3 + 64];
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
	if (after) {
		esc = curl_easy_escape(NULL, after, 0);
		if (!esc)
			return -ENOMEM;
	}
	snprintf(path, sizeof(path), "/v1/files?limit=%u%s%.*s", limit,
		 esc ? "&after=" : "", FILE_ID_MAX * 3, esc ? esc : "");
	curl_free(esc);
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	r = root ? parse_files(root, page, err) : -EIO;
out:
	if (r < 0)
		api_file_page_free(page);
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

void api_file_page_free(struct api_file_page *page)
{
	for (size_t i = 0; i < page->nitems; i++)
		file_unref(page->items[i]);
	free(page->items);
	free(page->last_id);
	memset(page, 0, sizeof(*page));
}

int api_delete_file(struct api *api, struct api_op *op, const char *id,
		    struct api_error *err)
{
	char path[FILE_ID_MAX * 3 + 64];
	struct http_request rq = {.method = HTTP_DELETE,
				  .kind = STAT_DELETE,
				  .path = path,
				  .sink_fd = -1,
				  .retries = -1};
	struct http_answer ans = {0};
	const cJSON *deleted;
	cJSON *root = NULL;
	int r;

	memset(err, 0, sizeof(*err));
	if (file_path(path, sizeof(path), id, "") < 0) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	deleted =
	    root ? cJSON_GetObjectItemCaseSensitive(root, "deleted") : NULL;
	if (!cJSON_IsTrue(deleted)) {
		if (root)
			snprintf(err->message, sizeof(err->message),
				 "the answer does not say deleted");
		r = -EIO;
	}
out:
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

int api_download_file(struct api *api, struct api_op *op, const char *id,
		      int fd, void (*on_sink)(void *arg, size_t sunk),
		      void *arg, size_t *len, struct api_error *err)
{
	char path[FILE_ID_MAX * 3 + 64];
	struct http_request rq = {.method = HTTP_GET,
				  .kind = STAT_CONTENT,
				  .path = path,
				  .sink_fd = fd,
				  .on_sink = on_sink,
				  .sink_arg = arg,
				  .stall_bound = 1,
				  .retries = -1};
	struct http_answer ans = {0};
	int r;

	*len = 0;
	memset(err, 0, sizeof(*err));
	if (file_path(path, sizeof(path), id, "/content") < 0) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r == 0)
		*len = ans.sunk;
	http_answer_free(&ans);
	return r;
}

int api_upload_file(struct api *api, struct api_op *op, const char *path,
		    const char *filename, const char *purpose,
		    struct file **out, struct api_error *err)
{
	const struct http_part parts[] = {
	    {.name = "purpose", .value = purpose},
	    {.name = "file", .path = path, .filename = filename},
	};
	struct http_request rq = {.method = HTTP_POST,
				  .kind = STAT_UPLOAD,
				  .path = "/v1/files",
				  .parts = parts,
				  .nparts = 2,
				  .sink_fd = -1,
				  .stall_bound = 1,
				  .retries = 0,
				  .no_retry = 1};
	struct http_answer ans = {0};
	char why[256];
	cJSON *root = NULL;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	if (!root) {
		r = -EIO;
		goto out;
	}
	r = file_from_json(root, out, why, sizeof(why));
	if (r < 0)
		snprintf(err->message, sizeof(err->message),
			 "malformed file: %s", why);
out:
	if (r < 0)
		log_debug("POST /v1/files: %d %s", err->http_status,
			  err->message);
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}
