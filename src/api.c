/*
 * api.c - the API client as the rest of kimifs sees it: its set-up and
 * tear-down over the HTTP client, and the call of an endpoint that answers
 * one object, shared by the kinds. The endpoints are in api_*.c, what a
 * failure means in api_error.c.
 */
#include "api.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int api_init(struct api *api, const struct opts *o, const char *api_key,
	     struct stats *stats)
{
	int r = http_init(&api->http, o, api_key);

	if (r == 0)
		api->http.stats = stats;
	return r;
}

void api_destroy(struct api *api)
{
	http_destroy(&api->http);
}

void api_stop(struct api *api)
{
	http_stop(&api->http);
}

int api_object_path(const struct object_kind *kind, const char *id,
		    const char *suffix, char *path, struct api_error *err)
{
	char *esc = curl_easy_escape(NULL, id, 0);

	if (!esc)
		return http_error(err, -ENOMEM, "out of memory");
	snprintf(path, API_PATH_MAX, "%s/%.*s%s", kind->path, kind->id_max * 3,
		 esc, suffix);
	curl_free(esc);
	return 0;
}

int api_object_call(struct api *api, const struct op *op,
		    const struct object_kind *kind,
		    const struct http_request *rq, const char *id, void **out,
		    struct api_error *err)
{
	char why[256];
	struct http_answer ans;
	cJSON *root = NULL;
	int r;

	*out = NULL;
	r = http_call(&api->http, op, rq, &ans, err);
	if (r < 0)
		goto out;
	root = http_json(&ans, err);
	if (!root) {
		r = -EIO;
		goto out;
	}
	r = kind->parse(root, out, why, sizeof(why));
	if (r < 0) {
		http_error(err, -EIO, "malformed %s: %s", kind->name, why);
		goto out;
	}
	if (id && strcmp(kind->id(*out), id) != 0) {
		r = http_error(err, -EIO, "asked for one %s, got another",
			       kind->name);
		kind->unref(*out);
		*out = NULL;
	}
out:
	if (r < 0)
		log_debug("%s: %d %s", rq->path, err->http_status,
			  err->message);
	cJSON_Delete(root);
	http_answer_free(&ans);
	return r;
}

int api_object_at(struct api *api, const struct op *op,
		  const struct object_kind *kind, enum http_method method,
		  enum stat_kind stat, const char *id, const char *suffix,
		  void **out, struct api_error *err)
{
	char path[API_PATH_MAX];
	struct http_request rq = {.method = method,
				  .kind = stat,
				  .path = path,
				  .sink_fd = -1,
				  .retries = -1};

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (api_object_path(kind, id, suffix, path, err) < 0)
		return -ENOMEM;
	return api_object_call(api, op, kind, &rq, id, out, err);
}

int api_get(struct api *api, struct op *op, const struct object_kind *kind,
	    const char *id, void **out, struct api_error *err)
{
	return api_object_at(api, op, kind, HTTP_GET, STAT_RETRIEVE, id, "",
			     out, err);
}
