/*
 * api_batches.c - the batch endpoints of the API beyond those every kind
 * has (api_get, api_list): cancel and create (POST /v1/batches/{id}/cancel,
 * POST /v1/batches), their answers turned into batch snapshots, each
 * cancel and creation, made or failed, a line of MOUNT/events; and the
 * start-up check.
 */
#include <errno.h>
#include <stdlib.h>

#include "api.h"
#include "events.h"
#include "job_tag.h"

int api_cancel_batch(struct api *api, struct op *op, const char *id,
		     struct batch **out, struct api_error *err)
{
	void *obj;
	int r = api_object_at(api, op, &batch_kind, HTTP_POST, STAT_CANCEL, id,
			      "/cancel", &obj, err);

	*out = obj;
	events_add(
	    &(struct event){.kind = "cancel",
			    .id = id,
			    .status = r == 0 ? (*out)->status : NULL,
			    .error = r < 0 ? api_error_message(err, r) : NULL});
	return r;
}

int api_create_batch(struct api *api, struct op *op,
		     const struct batch_params *p, struct batch **out,
		     struct api_error *err)
{
	struct http_request rq = {.method = HTTP_POST,
				  .kind = STAT_CREATE,
				  .path = "/v1/batches",
				  .sink_fd = -1,
				  .retries = -1,
				  .no_retry = 1};
	cJSON *body = params_json(p);
	char *json = body ? cJSON_PrintUnformatted(body) : NULL;
	void *obj = NULL;
	int r;

	*out = NULL;
	cJSON_Delete(body);
	if (!json)
		return http_error(err, -ENOMEM, "out of memory");
	rq.json = json;
	r = api_object_call(api, op, &batch_kind, &rq, NULL, &obj, err);
	*out = obj;
	free(json);
	if (r == 0)
		events_add(&(struct event){.kind = "create",
					   .id = (*out)->id,
					   .file = p->input_file_id,
					   .job = job_tag_job(p)});
	else
		events_add(&(struct event){.kind = "create",
					   .file = p->input_file_id,
					   .error = api_error_message(err, r)});
	return r;
}

/*
 * GET /v1/batches?limit=1 once, without retries, and check that the answer
 * is a batch list, so that a wrong base_url answering 200 (an HTML page, a
 * proxy's JSON) is refused at mount time rather than failing every call
 * after it. -EPROTO when the answer is not a batch list.
 */
int api_check(struct api *api, struct api_error *err)
{
	/* One request, no retries: a wrong URL or key fails at once. */
	struct http_request rq = {.method = HTTP_GET,
				  .kind = STAT_LIST,
				  .path = "/v1/batches?limit=1",
				  .sink_fd = -1,
				  .no_retry = 1};
	struct http_answer ans;
	struct api_page page;
	int r = http_call(&api->http, NULL, &rq, &ans, err);

	if (r == 0) {
		r = api_parse_list(&batch_kind, ans.data ? ans.data : "",
				   ans.len, &page, err);
		if (r == 0)
			api_page_free(&page);
		else if (r == -EIO)
			r = -EPROTO;
	}
	http_answer_free(&ans);
	return r;
}
