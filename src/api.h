/*
 * api.h - the Moonshot Batch API: its endpoints (api_*.c, the only code in
 * kimifs that knows URLs) over the HTTP client (http.h), answers turned
 * into snapshots. Every call is part of an operation (struct op, or
 * NULL), bounded in time (timeouts and retries included) and safe to make
 * from many threads at once.
 */
#ifndef KIMIFS_API_H
#define KIMIFS_API_H

#include <stddef.h>

#include "batch.h"
#include "batch_params.h"
#include "file.h"
#include "http.h"
#include "kind.h"
#include "opts.h"

/* The client: the HTTP layer under the endpoints. */
struct api {
	struct http http;
};

/* The longest id a list's cursor (`after`) may be. */
#define API_CURSOR_MAX BATCH_ID_MAX

/* One page of a list endpoint (api_list). */
struct api_page {
	void **items; /* parsed objects of the list's kind (struct batch *,
			 struct file *), one reference each; bad ones are
			 left out */
	size_t nitems;
	char *last_id; /* id of the page's last object, for the next `after` */
	int has_more;  /* false when the answer does not say */
	void (*unref)(void *obj); /* drops an item (api_page_free) */
};

/* The longest path of one object: kind->path, its escaped id, a suffix. */
#define API_PATH_MAX (BATCH_ID_MAX * 3 + 64)

/*
 * Make every call under way end at once (-EINTR) and every later call fail
 * the same way. Async-signal-safe: meant for the signal handler that
 * unmounts, so that a hung request cannot hold the exit up.
 */
void api_stop(struct api *api);

/* Set up a client for the options o (kept by pointer: they must outlive
 * it) and the API key (copied into the request headers), counting into
 * stats (or NULL; it must outlive the client); 0 or -errno. */
int api_init(struct api *api, const struct opts *o, const char *api_key,
	     struct stats *stats);
void api_destroy(struct api *api);

/*
 * Each call returns 0 on success or -errno on failure, with err filled in
 * (its class, enum api_fail, and message). The errno follows the table in
 * docs/filesystem.md: 400 EPERM, 401/403 EACCES, 404 ENOENT, 408 and
 * timeouts ETIMEDOUT, 429 EAGAIN, 5xx and malformed answers EIO, no
 * connection EHOSTUNREACH.
 */
/* GET kind->path/{id}: that object, one reference in *out. */
int api_get(struct api *api, struct op *op, const struct object_kind *kind,
	    const char *id, void **out, struct api_error *err);
int api_cancel_batch(struct api *api, struct op *op, const char *id,
		     struct batch **out, struct api_error *err);
/* POST /v1/batches with p: the new batch in *out. Never retried (a retry
 * after a lost answer could create a second batch). */
int api_create_batch(struct api *api, struct op *op,
		     const struct batch_params *p, struct batch **out,
		     struct api_error *err);
/*
 * GET kind->path?limit=N[&after=ID] (after may be NULL for the first
 * page): 0 with the page (free with api_page_free), or -errno with err
 * (-EIO when the answer is not a list).
 */
int api_list(struct api *api, struct op *op, const struct object_kind *kind,
	     const char *after, unsigned limit, struct api_page *page,
	     struct api_error *err);
void api_page_free(struct api_page *page);

/* The file endpoints (api_files.c), with the errno mapping above. */
/*
 * POST /v1/files, multipart: the file at path (streamed, never in memory)
 * as filename, with purpose. Sent once (never retried here: a retry after
 * a lost answer could leave two copies; the caller decides, see
 * submit.c). Bounded by op's deadline and by -o timeout without progress.
 */
int api_upload_file(struct api *api, struct op *op, const char *path,
		    const char *filename, const char *purpose,
		    struct file **out, struct api_error *err);
/* The same for length bytes of the open file fd from offset (a part of a
 * job's staged input; read with pread as it is sent): a file that ends
 * early fails the call (-EIO, API_FAIL_LOCAL). */
int api_upload_range(struct api *api, struct op *op, int fd, uint64_t offset,
		     uint64_t length, const char *filename, const char *purpose,
		     struct file **out, struct api_error *err);
/* DELETE /v1/files/{id}: 0 when the answer says it is deleted, or when a
 * retry gets a 404 (an earlier attempt, whose answer was lost, deleted
 * it); -ENOENT when the first attempt gets a 404 (it was already gone). */
int api_delete_file(struct api *api, struct op *op, const char *id,
		    struct api_error *err);
/*
 * GET /v1/files/{id}/content into fd (at its current offset; a retry
 * starts over there), calling on_sink(arg, bytes so far) as pieces land.
 * Bounded by op's deadline and by -o timeout without a byte (not by -o
 * timeout in all: contents may be large). 0 with the length in *len, when
 * the whole answer came (as long as its own Content-Length says), or
 * -errno with err.
 */
int api_download_file(struct api *api, struct op *op, const char *id, int fd,
		      void (*on_sink)(void *arg, size_t sunk), void *arg,
		      size_t *len, struct api_error *err);

/*
 * For the endpoints (api_*.c): "<kind->path>/<escaped id><suffix>" into
 * path (API_PATH_MAX bytes). 0, or -ENOMEM with err filled in.
 */
int api_object_path(const struct object_kind *kind, const char *id,
		    const char *suffix, char *path, struct api_error *err);

/*
 * For the endpoints (api_*.c): send rq, whose answer is one object of
 * kind, the one with id (any when id is NULL). 0 with one reference in
 * *out, or -errno with err (-EIO when the answer is not that object); a
 * failure is logged at debug level only (callers log it once, with what
 * they were doing).
 */
int api_object_call(struct api *api, const struct op *op,
		    const struct object_kind *kind,
		    const struct http_request *rq, const char *id, void **out,
		    struct api_error *err);

/*
 * For the endpoints (api_*.c): method on the path of kind's object id with
 * suffix (api_object_path), counted as stat, retried as -o retries says,
 * answered by that object: as api_object_call.
 */
int api_object_at(struct api *api, const struct op *op,
		  const struct object_kind *kind, enum http_method method,
		  enum stat_kind stat, const char *id, const char *suffix,
		  void **out, struct api_error *err);

/*
 * Parse the body of an answer of kind's list into page. Returns 0, or -EIO
 * with err filled in when the body is not a list. Used by api_list and the
 * start-up check; exposed for the fuzz targets.
 */
int api_parse_list(const struct object_kind *kind, const char *body, size_t len,
		   struct api_page *page, struct api_error *err);

/*
 * One cheap authenticated request (GET /v1/batches?limit=1, no retries), to
 * check the key and the URL before mounting. 0 when the answer is a batch
 * list; -EPROTO with err->message saying why when a 2xx answer is not one
 * (e.g. an HTML page: base_url is not the API); else the -errno above.
 */
int api_check(struct api *api, struct api_error *err);

#endif
