/*
 * api.c - HTTP calls to the Batch API with libcurl: a pool of easy handles
 * (connections are kept alive), one deadline per call that covers every
 * retry, exponential backoff with jitter that honours Retry-After, and the
 * mapping of failures to errno with the server's message kept.
 */
#include "api.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#ifndef KIMIFS_VERSION
#define KIMIFS_VERSION "dev"
#endif

#define MAX_BODY (16u << 20) /* larger answers are refused, not buffered */
#define MAX_IDLE 16
/* Seconds a retry must have left, after its wait, to be worth sending. */
#define RETRY_MIN_BUDGET 0.25

/* What a transfer's progress hook looks at: the client and the op. */
struct xfer {
	const struct api *api;
	const struct api_op *op; /* or NULL */
};

/* Whether the calls of op must end now: kimifs is stopping, or op was
 * interrupted. */
static int aborted(const struct api *api, const struct api_op *op)
{
	return api->stopping || (op && op->interrupted);
}

struct response {
	char *data;
	size_t len;
	size_t cap;
	int too_big;
};

/* Sleep for seconds, in short steps, returning early once aborted. */
static void sleep_for(const struct api *api, const struct api_op *op,
		      double seconds)
{
	double end = util_now() + seconds;

	while (!aborted(api, op)) {
		double left = end - util_now();
		struct timespec ts;

		if (left <= 0)
			return;
		if (left > 0.05)
			left = 0.05;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
}

/* libcurl's progress hook: a non-zero answer aborts the transfer. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	const struct xfer *x = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return aborted(x->api, x->op);
}

void api_stop(struct api *api)
{
	api->stopping = 1;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct response *r = ud;
	size_t add = size * n;

	if (r->len + add > MAX_BODY) {
		r->too_big = 1;
		return 0;
	}
	if (r->len + add + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *d;

		while (cap < r->len + add + 1)
			cap *= 2;
		d = realloc(r->data, cap);
		if (!d)
			return 0;
		r->data = d;
		r->cap = cap;
	}
	memcpy(r->data + r->len, p, add);
	r->len += add;
	r->data[r->len] = '\0';
	return add;
}

static void response_reset(struct response *r)
{
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* Free a header list, leaving no copy of the key in freed memory. */
static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		memset(p->data, 0, strlen(p->data));
	curl_slist_free_all(l);
}

int api_init(struct api *api, const struct opts *o, const char *api_key)
{
	struct curl_slist *h2;
	char *auth;
	size_t n;

	memset(api, 0, sizeof(*api));
	api->opts = o;
	n = strlen("Authorization: Bearer ") + strlen(api_key) + 1;
	auth = malloc(n);
	if (auth) {
		snprintf(auth, n, "Authorization: Bearer %s", api_key);
		/* Built once: every request sends the same headers. */
		api->headers = curl_slist_append(NULL, auth);
		explicit_bzero(auth, n);
		free(auth);
	}
	h2 = api->headers
		 ? curl_slist_append(api->headers, "Accept: application/json")
		 : NULL;
	if (!h2) {
		free_headers(api->headers);
		return -ENOMEM;
	}
	api->headers = h2;
	api->timeout_ms = (long)(o->timeout * 1000);
	api->connect_timeout_ms = (long)(o->connect_timeout * 1000);
	pthread_mutex_init(&api->lock, NULL);
	return 0;
}

void api_destroy(struct api *api)
{
	for (size_t i = 0; i < api->nidle; i++)
		curl_easy_cleanup(api->idle[i]);
	free(api->idle);
	free_headers(api->headers);
	pthread_mutex_destroy(&api->lock);
	memset(api, 0, sizeof(*api));
}

static CURL *handle_get(struct api *api)
{
	CURL *h = NULL;

	pthread_mutex_lock(&api->lock);
	if (api->nidle > 0)
		h = api->idle[--api->nidle];
	pthread_mutex_unlock(&api->lock);
	return h ? h : curl_easy_init();
}

/* Give a handle back for reuse; its live connections stay cached. */
static void handle_put(struct api *api, CURL *h)
{
	curl_easy_reset(h);
	pthread_mutex_lock(&api->lock);
	if (!api->idle)
		api->idle = calloc(MAX_IDLE, sizeof(*api->idle));
	if (api->idle && api->nidle < MAX_IDLE) {
		api->idle[api->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&api->lock);
	if (h)
		curl_easy_cleanup(h);
}

static int status_errno(long status)
{
	if (status == 400 || status == 409 || status == 422)
		return EPERM;
	if (status == 401 || status == 403)
		return EACCES;
	if (status == 404)
		return ENOENT;
	if (status == 408)
		return ETIMEDOUT;
	if (status == 429)
		return EAGAIN;
	return EIO;
}

void api_op_begin(const struct api *api, struct api_op *op)
{
	op->deadline = util_now() + api->timeout_ms / 1000.0;
	op->interrupted = 0;
}

void api_op_interrupt(struct api_op *op)
{
	op->interrupted = 1;
}

int api_error_transient(int err)
{
	return err == -ETIMEDOUT || err == -EAGAIN || err == -EIO ||
	       err == -EHOSTUNREACH;
}

/* Fill err->message from an error body: the server's error.message when
 * the body is an error object, otherwise a printable excerpt. */
static void message_from_body(const struct response *r, long status,
			      struct api_error *err)
{
	size_t nuls;
	/* A message holding a NUL is no string (batch_json_parse): the
	 * excerpt below shows it whole instead of cut short. */
	cJSON *root = r->data ? batch_json_parse(r->data, r->len, &nuls) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
	size_t i, o = 0;

	if (cJSON_IsString(m)) {
		snprintf(err->message, sizeof(err->message), "%s",
			 m->valuestring);
		/* One line, no terminal escapes: it ends up in ctl and logs. */
		for (char *p = err->message; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	} else if (r->len > 0) {
		for (i = 0; i < r->len && o < 200; i++)
			if (r->data[i] >= 0x20 && r->data[i] < 0x7f)
				err->message[o++] = r->data[i];
		err->message[o] = '\0';
	} else {
		snprintf(err->message, sizeof(err->message), "HTTP %ld",
			 status);
	}
	cJSON_Delete(root);
}

static int attempt(struct api *api, const struct api_op *op, const char *method,
		   const char *url, long budget_ms, struct response *resp,
		   long *status, double *retry_after, struct api_error *err)
{
	struct xfer x = {api, op};
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_off_t ra = -1;
	CURL *h = handle_get(api);
	CURLcode rc;

	*status = 0;
	*retry_after = -1;
	if (!h) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, api->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kimifs/" KIMIFS_VERSION);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, budget_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 api->connect_timeout_ms < budget_ms
			     ? api->connect_timeout_ms
			     : budget_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	if (api->opts->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
		curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra);
		/* libcurl says 0 when there is no Retry-After: back off then.
		 */
		if (ra > 0)
			*retry_after = (double)ra;
	}
	handle_put(api, h);

	if (rc == CURLE_OK) {
		if (*status >= 200 && *status < 300)
			return 0;
		err->http_status = (int)*status;
		message_from_body(resp, *status, err);
		return -status_errno(*status);
	}
	err->http_status = 0;
	snprintf(err->message, sizeof(err->message), "%s",
		 resp->too_big ? "answer too large"
		 : errbuf[0]   ? errbuf
			       : curl_easy_strerror(rc));
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		snprintf(err->message, sizeof(err->message), "%s",
			 api->stopping ? "kimifs is stopping" : "interrupted");
		return -EINTR;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return -EHOSTUNREACH;
	default:
		return -EIO;
	}
}

/* Whether a failed attempt is worth another try. */
static int retryable(int r, const struct api_error *err,
		     const struct response *resp)
{
	if (resp->too_big)
		return 0;
	if (r == -EAGAIN || r == -EHOSTUNREACH || r == -ETIMEDOUT)
		return 1;
	return r == -EIO && (err->http_status == 0 || err->http_status >= 500);
}

/*
 * Run one API call: method on path (which starts with /v1/ and is already
 * escaped). On success returns 0 with the answer in resp; on failure returns
 * -errno with err filled in. Retryable failures are tried again up to
 * retries times; the whole call, retries and backoff included, ends within
 * the configured timeout (or the operation's deadline, if sooner).
 *
 * When the deadline, not the retry count, ends the retries, the caller gets
 * the error of the last attempt (EAGAIN after 429s, EIO after 5xx, with the
 * server's message): a retry is only sent when, after its wait, at least
 * RETRY_MIN_BUDGET is left for it, so a doomed attempt cut off by the
 * deadline never turns that error into ETIMEDOUT. ETIMEDOUT means that an
 * attempt itself timed out, or that no time was left for a first one.
 */
static int request(struct api *api, const struct api_op *op, const char *method,
		   const char *path, unsigned retries, struct response *resp,
		   struct api_error *err)
{
	double start = util_now();
	double deadline = start + api->timeout_ms / 1000.0;
	unsigned seed = (unsigned)(start * 1e6) ^ (unsigned)(size_t)resp;
	size_t urllen = strlen(api->opts->base_url) + strlen(path) + 1;
	char *url = malloc(urllen);
	int r = -ETIMEDOUT;

	memset(err, 0, sizeof(*err));
	memset(resp, 0, sizeof(*resp));
	if (!url) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	snprintf(url, urllen, "%s%s", api->opts->base_url, path);
	if (op && op->deadline < deadline)
		deadline = op->deadline;
	for (unsigned n = 0;; n++) {
		long budget = (long)((deadline - util_now()) * 1000);
		double retry_after, delay;
		long status;

		if (aborted(api, op)) {
			snprintf(err->message, sizeof(err->message), "%s",
				 api->stopping ? "kimifs is stopping"
					       : "interrupted");
			r = -EINTR;
			break;
		}
		if (budget <= 0) {
			/* Only before the first attempt (retries stop before
			 * their wait, below): the operation's earlier calls
			 * used its whole bound. */
			snprintf(err->message, sizeof(err->message),
				 "no time left within the bound of %g s",
				 api->timeout_ms / 1000.0);
			r = -ETIMEDOUT;
			break;
		}
		response_reset(resp);
		r = attempt(api, op, method, url, budget, resp, &status,
			    &retry_after, err);
		log_debug("%s %s -> %ld (%.0f ms)", method, path, status,
			  (util_now() - start) * 1000);
		if (r == 0 || !retryable(r, err, resp) || n >= retries ||
		    aborted(api, op))
			break;
		/* Full jitter on an exponential step, unless the server said
		 * when to come back. */
		delay = retry_after >= 0
			    ? retry_after
			    : fmin(0.2 * pow(2, n), 5.0) *
				  (0.5 + 0.5 * rand_r(&seed) / RAND_MAX);
		if (util_now() + delay + RETRY_MIN_BUDGET > deadline) {
			log_debug("%s %s: no time for a retry in %.1f s; "
				  "giving up with the last error",
				  method, path, delay);
			break;
		}
		log_warn("%s %s failed (%d %s); retrying in %.1f s", method,
			 path, err->http_status, err->message, delay);
		sleep_for(api, op, delay);
		/* A loaded machine may oversleep: the same rule again. */
		if (deadline - util_now() < RETRY_MIN_BUDGET) {
			log_debug("%s %s: no time left for a retry; giving "
				  "up with the last error",
				  method, path);
			break;
		}
	}
	free(url);
	if (r < 0)
		response_reset(resp);
	return r;
}

/*
 * Parse a 2xx answer as JSON; -EIO with a message when it is not. Strings
 * holding a NUL character are marked (batch_json_parse), so that no id, key
 * or value is ever taken cut short at the NUL; they are logged here, once
 * per answer, and what they hold is left out further on.
 */
static cJSON *parse_answer(const struct response *resp, struct api_error *err)
{
	size_t nuls;
	cJSON *root =
	    batch_json_parse(resp->data ? resp->data : "", resp->len, &nuls);
	const cJSON *e;

	if (!root) {
		snprintf(err->message, sizeof(err->message),
			 "malformed JSON in the answer");
		return NULL;
	}
	if (nuls)
		log_warn("answer has %zu JSON string%s holding a NUL character "
			 "(\\u0000); not shown",
			 nuls, nuls == 1 ? "" : "s");
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(e)) {
		/* A 2xx whose body is an error object is still an error. */
		message_from_body(resp, 0, err);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* GET or POST a path that answers one BatchObject, for batch id. */
static int batch_call(struct api *api, const struct api_op *op,
		      const char *method, const char *id, const char *suffix,
		      struct batch **out, struct api_error *err)
{
	char path[BATCH_ID_MAX * 3 + 64];
	char why[256];
	struct response resp;
	char *esc = curl_easy_escape(NULL, id, 0);
	cJSON *root = NULL;
	int r;

	*out = NULL;
	if (!esc) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "/v1/batches/%.*s%s", BATCH_ID_MAX * 3,
		 esc, suffix);
	curl_free(esc);
	r = request(api, op, method, path, api->opts->retries, &resp, err);
	if (r < 0)
		goto out;
	root = parse_answer(&resp, err);
	if (!root) {
		r = -EIO;
		goto out;
	}
	r = batch_from_json(root, out, why, sizeof(why));
	if (r < 0) {
		snprintf(err->message, sizeof(err->message),
			 "malformed batch: %s", why);
		goto out;
	}
	if (strcmp((*out)->id, id) != 0) {
		snprintf(err->message, sizeof(err->message),
			 "asked for one batch, got another");
		batch_unref(*out);
		*out = NULL;
		r = -EIO;
	}
out:
	/* Callers log failures once, with what they were doing. */
	if (r < 0)
		log_debug("%s %s: %d %s", method, path, err->http_status,
			  err->message);
	cJSON_Delete(root);
	response_reset(&resp);
	return r;
}

int api_get_batch(struct api *api, struct api_op *op, const char *id,
		  struct batch **out, struct api_error *err)
{
	return batch_call(api, op, "GET", id, "", out, err);
}

int api_cancel_batch(struct api *api, struct api_op *op, const char *id,
		     struct batch **out, struct api_error *err)
{
	return batch_call(api, op, "POST", id, "/cancel", out, err);
}

static int parse_page(const cJSON *root, struct api_page *page,
		      struct api_error *err)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "has_more");
	const cJSON *item;
	char why[256], first[256] = "";
	size_t bad = 0;

	if (!cJSON_IsArray(data) || (more && !cJSON_IsBool(more))) {
		snprintf(err->message, sizeof(err->message),
			 "malformed list: %s",
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
		struct batch *b;

		/* An id holding a NUL is no string: never a cursor. */
		if (cJSON_IsString(id)) {
			free(page->last_id);
			page->last_id = strdup(id->valuestring);
		}
		if (batch_from_json(item, &b, why, sizeof(why)) < 0) {
			if (!bad++)
				snprintf(first, sizeof(first), "%s", why);
			continue;
		}
		page->items[page->nitems++] = b;
	}
	/* One line per page, however many objects are broken. */
	if (bad == 1)
		log_warn("list: left out a malformed batch: %s", first);
	else if (bad > 1)
		log_warn("list: left out %zu malformed batches; the first: %s",
			 bad, first);
	return 0;
}

int api_parse_list(const char *body, size_t len, struct api_page *page,
		   struct api_error *err)
{
	struct response resp = {(char *)body, len, len, 0};
	cJSON *root;
	int r;

	memset(page, 0, sizeof(*page));
	memset(err, 0, sizeof(*err));
	root = parse_answer(&resp, err);
	r = root ? parse_page(root, page, err) : -EIO;
	if (r < 0)
		api_page_free(page);
	cJSON_Delete(root);
	return r;
}

int api_list_batches(struct api *api, struct api_op *op, const char *after,
		     unsigned limit, struct api_page *page,
		     struct api_error *err)
{
	char path[BATCH_ID_MAX * 3 + 64];
	char *esc = NULL;
	struct response resp;
	int r;

	memset(page, 0, sizeof(*page));
	if (after) {
		esc = curl_easy_escape(NULL, after, 0);
		if (!esc)
			return -ENOMEM;
	}
	snprintf(path, sizeof(path), "/v1/batches?limit=%u%s%.*s", limit,
		 esc ? "&after=" : "", BATCH_ID_MAX * 3, esc ? esc : "");
	curl_free(esc);
	r = request(api, op, "GET", path, api->opts->retries, &resp, err);
	if (r == 0)
		r = api_parse_list(resp.data ? resp.data : "", resp.len, page,
				   err);
	response_reset(&resp);
	return r;
}

void api_page_free(struct api_page *page)
{
	for (size_t i = 0; i < page->nitems; i++)
		batch_unref(page->items[i]);
	free(page->items);
	free(page->last_id);
	memset(page, 0, sizeof(*page));
}

/*
 * GET /v1/batches?limit=1 once, without retries, and check that the answer
 * is a batch list, so that a wrong base_url answering 200 (an HTML page, a
 * proxy's JSON) is refused at mount time rather than failing every call
 * after it. -EPROTO when the answer is not a batch list.
 */
int api_check(struct api *api, struct api_error *err)
{
	struct response resp;
	struct api_page page;
	int r = request(api, NULL, "GET", "/v1/batches?limit=1", 0, &resp, err);

	if (r == 0) {
		r = api_parse_list(resp.data ? resp.data : "", resp.len, &page,
				   err);
		if (r == 0)
			api_page_free(&page);
		else if (r == -EIO)
			r = -EPROTO;
	}
	response_reset(&resp);
	return r;
}
