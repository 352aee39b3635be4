/*
 * api_files.c - the file endpoints of the API beyond those every kind has
 * (api_get, api_list): upload, delete and content (POST /v1/files, DELETE
 * /v1/files/{id}, GET /v1/files/{id}/content), uploads answered by
 * FileObject snapshots, contents written to a descriptor as they come.
 * Each upload and deletion, made or failed, is a line of MOUNT/events.
 */
#include <errno.h>
#include <string.h>

#include "api.h"
#include "events.h"
#include "log.h"

/* A content is raw bytes: the server answers text/plain or
 * application/octet-stream, and an error object as JSON. */
#define CONTENT_ACCEPT "application/octet-stream, text/plain, */*;q=0.1"

int api_delete_file(struct api *api, struct op *op, const char *id,
		    struct api_error *err)
{
	char path[API_PATH_MAX];
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
	if (api_object_path(&file_kind, id, "", path, err) < 0)
		return -ENOMEM;
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r == -ENOENT && err->attempts > 1) {
		/* An earlier attempt deleted it and its answer was lost. */
		log_info("DELETE %s: 404 to a retry: deleted by an earlier "
			 "attempt",
			 path);
		memset(err, 0, sizeof(*err));
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	deleted =
	    root ? cJSON_GetObjectItemCaseSensitive(root, "deleted") : NULL;
	if (!cJSON_IsTrue(deleted)) {
		if (root)
			http_error(err, -EIO,
				   "the answer does not say deleted");
		r = -EIO;
	}
out:
	events_add(
	    &(struct event){.kind = "delete",
			    .file = id,
			    .error = r < 0 ? api_error_message(err, r) : NULL});
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

int api_download_file(struct api *api, struct op *op, const char *id, int fd,
		      void (*on_sink)(void *arg, size_t sunk), void *arg,
		      size_t *len, struct api_error *err)
{
	char path[API_PATH_MAX];
	struct http_request rq = {.method = HTTP_GET,
				  .kind = STAT_CONTENT,
				  .path = path,
				  .sink_fd = fd,
				  .on_sink = on_sink,
				  .sink_arg = arg,
				  .stall_bound = 1,
				  .accept = CONTENT_ACCEPT,
				  .retries = -1};
	struct http_answer ans = {0};
	int r;

	*len = 0;
	memset(err, 0, sizeof(*err));
	if (api_object_path(&file_kind, id, "/content", path, err) < 0)
		return -ENOMEM;
	r = http_call(&api->http, op, &rq, &ans, err);
	if (r == 0)
		*len = ans.sunk;
	http_answer_free(&ans);
	return r;
}

/* POST /v1/files of the file field file, with purpose; its line of
 * MOUNT/events. */
static int upload(struct api *api, struct op *op, const struct http_part *file,
		  const char *purpose, struct file **out, struct api_error *err)
{
	const struct http_part parts[] = {
	    {.name = "purpose", .value = purpose},
	    *file,
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
	void *obj = NULL;
	struct file *f;
	int r;

	memset(err, 0, sizeof(*err));
	r = api_object_call(api, op, &file_kind, &rq, NULL, &obj, err);
	*out = f = obj;
	if (r == 0)
		events_add(&(struct event){.kind = "upload",
					   .file = f->id,
					   .name = file->filename,
					   .bytes = f->bytes});
	else
		events_add(&(struct event){.kind = "upload",
					   .name = file->filename,
					   .error = api_error_message(err, r)});
	return r;
}

int api_upload_file(struct api *api, struct op *op, const char *path,
		    const char *filename, const char *purpose,
		    struct file **out, struct api_error *err)
{
	const struct http_part file = {
	    .name = "file", .path = path, .filename = filename};

	return upload(api, op, &file, purpose, out, err);
}

int api_upload_range(struct api *api, struct op *op, int fd, uint64_t offset,
		     uint64_t length, const char *filename, const char *purpose,
		     struct file **out, struct api_error *err)
{
	const struct http_range range = {fd, offset, length};
	const struct http_part file = {
	    .name = "file", .filename = filename, .range = &range};

	return upload(api, op, &file, purpose, out, err);
}
