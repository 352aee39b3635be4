/*
 * http.c - HTTP calls with libcurl (see http.h): a pool of easy handles,
 * one attempt per curl_easy_perform, the retry loop around it, and the
 * mapping of failures to -errno and a class (tables of statuses and
 * errnos) with the server's message kept.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util.h"

#define MAX_IDLE 16
/* Seconds a retry must have left, after its wait, to be worth sending. */
#define RETRY_MIN_BUDGET 0.25

static const char *const method_names[] = {"GET", "POST", "DELETE"};

/* Whether the calls of op must end now: kimifs is stopping, or op was
 * interrupted. */
static int aborted(const struct http *h, const struct op *op)
{
	return h->stopping || (op && op->interrupted);
}

/* One attempt's answer as it arrives. */
struct response {
	CURL *curl;
	int sink_fd;	   /* >= 0: a 2xx body goes there */
	int sink_failed;   /* the errno of a failed write to sink_fd, or 0 */
	int source_failed; /* the errno of a failed read of a range sent */
	struct http_answer *ans;
	size_t cap;
	int too_big;
	const struct http *h;
	const struct op *op; /* for the progress hook */
	void (*on_sink)(void *arg, size_t sunk);
	void *sink_arg;
};

/* Sleep for seconds, in short steps, returning early once aborted. */
static void sleep_for(const struct http *h, const struct op *op, double seconds)
{
	double end = util_now() + seconds;

	while (!aborted(h, op)) {
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
	const struct response *r = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return aborted(r->h, r->op);
}

void http_stop(struct http *h)
{
	h->stopping = 1;
}

/* Write all of p to fd; 0 or -errno (-EIO when nothing could be written). */
static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct response *r = ud;
	struct http_answer *a = r->ans;
	size_t add = size * n;
	long status = 0;

	if (r->sink_fd >= 0) {
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			int e = write_all(r->sink_fd, p, add);

			if (e < 0) {
				r->sink_failed = -e;
				return 0;
			}
			a->sunk += add;
			if (r->on_sink)
				r->on_sink(r->sink_arg, a->sunk);
			return add;
		}
	}
	if (a->len + add > HTTP_MAX_BODY) {
		r->too_big = 1;
		return 0;
	}
	if (util_grow(&a->data, &r->cap, a->len + add + 1, 4096) < 0)
		return 0;
	memcpy(a->data + a->len, p, add);
	a->len += add;
	a->data[a->len] = '\0';
	return add;
}

void http_answer_free(struct http_answer *ans)
{
	free(ans->data);
	memset(ans, 0, sizeof(*ans));
}

/* Free a header list, leaving no copy of the key in freed memory. */
static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

int http_init(struct http *h, const struct opts *o, const char *api_key)
{
	char *auth;
	size_t n;

	memset(h, 0, sizeof(*h));
	h->opts = o;
	n = strlen("Authorization: Bearer ") + strlen(api_key) + 1;
	auth = malloc(n);
	if (!auth)
		return -ENOMEM;
	snprintf(auth, n, "Authorization: Bearer %s", api_key);
	/* Built once; each request adds its own Accept (request_headers). */
	h->headers = curl_slist_append(NULL, auth);
	explicit_bzero(auth, n);
	free(auth);
	if (!h->headers)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	return 0;
}

void http_destroy(struct http *h)
{
	for (size_t i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	free_headers(h->headers);
	pthread_mutex_destroy(&h->lock);
	memset(h, 0, sizeof(*h));
}

static CURL *handle_get(struct http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->nidle > 0)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->lock);
	return c ? c : curl_easy_init();
}

/* Give a handle back for reuse; its live connections stay cached. */
static void handle_put(struct http *h, CURL *c)
{
	curl_easy_reset(c);
	pthread_mutex_lock(&h->lock);
	if (!h->idle)
		h->idle = calloc(MAX_IDLE, sizeof(*h->idle));
	if (h->idle && h->nidle < MAX_IDLE) {
		h->idle[h->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* What an error status means: its errno and its class. */
static const struct status_kind {
	long lo, hi;
	int err;
	enum api_fail fail;
} status_kinds[] = {
    {400, 400, EPERM, API_FAIL_REFUSED},
    {401, 401, EACCES, API_FAIL_DENIED},
    {403, 403, EACCES, API_FAIL_DENIED},
    {404, 404, ENOENT, API_FAIL_NOT_FOUND},
    {408, 408, ETIMEDOUT, API_FAIL_TIMED_OUT},
    {409, 409, EPERM, API_FAIL_REFUSED},
    {422, 422, EPERM, API_FAIL_REFUSED},
    {429, 429, EAGAIN, API_FAIL_THROTTLED},
    {500, 999, EIO, API_FAIL_SERVER_DOWN},
};

/* Any other status: an answer kimifs cannot use. */
static const struct status_kind other_status = {0, 0, EIO, API_FAIL_BAD_ANSWER};

static const struct status_kind *status_kind(long status)
{
	for (size_t i = 0; i < sizeof(status_kinds) / sizeof(*status_kinds);
	     i++)
		if (status >= status_kinds[i].lo &&
		    status <= status_kinds[i].hi)
			return &status_kinds[i];
	return &other_status;
}

static int status_errno(long status)
{
	return status_kind(status)->err;
}

/* The class of a failure that came with no error status. */
static const struct {
	int err;
	enum api_fail fail;
} errno_kinds[] = {
    {ETIMEDOUT, API_FAIL_TIMED_OUT},
    {EHOSTUNREACH, API_FAIL_UNREACHABLE},
    {EINTR, API_FAIL_INTERRUPTED},
    {ENOMEM, API_FAIL_LOCAL},
};

/* The class of a call's failure r, with err and resp (the last attempt's). */
static enum api_fail classify(int r, const struct api_error *err,
			      const struct response *resp)
{
	if (err->http_status)
		return status_kind(err->http_status)->fail;
	if (resp->sink_failed || resp->source_failed)
		return API_FAIL_LOCAL;
	if (resp->too_big)
		return API_FAIL_BAD_ANSWER;
	for (size_t i = 0; i < sizeof(errno_kinds) / sizeof(*errno_kinds); i++)
		if (r == -errno_kinds[i].err)
			return errno_kinds[i].fail;
	return API_FAIL_NETWORK;
}

int http_error(struct api_error *err, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->http_status = 0;
	err->fail = r == -ENOMEM ? API_FAIL_LOCAL : API_FAIL_BAD_ANSWER;
	return r;
}

/* Fill err->message from an error body: the server's error.message when
 * the body is an error object, otherwise a printable excerpt. */
static void message_from_body(const struct http_answer *a, long status,
			      struct api_error *err)
{
	size_t nuls;
	/* A message holding a NUL is no string (json_parse): the excerpt
	 * below shows it whole instead of cut short. */
	cJSON *root = a->data ? json_parse(a->data, a->len, &nuls) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
	size_t i, o = 0;

	if (cJSON_IsString(m)) {
		snprintf(err->message, sizeof(err->message), "%s",
			 m->valuestring);
		/* One line, no terminal escapes: it ends up in ctl and logs. */
		util_scrub(err->message);
	} else if (a->len > 0) {
		for (i = 0; i < a->len && o < 200; i++)
			if (a->data[i] >= 0x20 && a->data[i] < 0x7f)
				err->message[o++] = a->data[i];
		err->message[o] = '\0';
	} else {
		snprintf(err->message, sizeof(err->message), "HTTP %ld",
			 status);
	}
	cJSON_Delete(root);
}

/* Count how an attempt on c ended, and the bytes it moved. */
static void count_attempt(struct stats *st, CURL *c, CURLcode rc)
{
	curl_off_t down = 0, up = 0;
	long status = 0;

	if (!st)
		return;
	curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
	STAT_ADD(st, bytes_down, (uint64_t)(down > 0 ? down : 0));
	STAT_ADD(st, bytes_up, (uint64_t)(up > 0 ? up : 0));
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OPERATION_TIMEDOUT || status == 408)
		STAT_ADD(st, timeouts, 1);
	if (status == 429)
		STAT_ADD(st, throttled, 1);
	if (rc != CURLE_OK)
		STAT_ADD(st, responses[STAT_NETWORK], 1);
	else if (status >= 500)
		STAT_ADD(st, responses[STAT_5XX], 1);
	else if (status >= 400)
		STAT_ADD(st, responses[STAT_4XX], 1);
	else if (status >= 200 && status < 300)
		STAT_ADD(st, responses[STAT_2XX], 1);
}

/* Where a range being sent stands (make_form); freed by libcurl. */
struct range_read {
	struct http_range range;
	uint64_t pos; /* bytes of the range sent so far */
	int *failed;  /* set to the errno when the file cannot be read */
};

/* libcurl's read callback of a range: the next bytes, 0 at its end, or an
 * abort when the file cannot be read or ends early. */
static size_t range_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct range_read *rr = arg;
	uint64_t left = rr->range.length - rr->pos;
	size_t want = size * nitems;
	ssize_t got;

	if (left == 0)
		return 0;
	if (want > left)
		want = (size_t)left;
	do
		got = pread(rr->range.fd, buf, want,
			    (off_t)(rr->range.offset + rr->pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		*rr->failed = got < 0 ? errno : ENODATA; /* ended early */
		return CURL_READFUNC_ABORT;
	}
	rr->pos += (uint64_t)got;
	return (size_t)got;
}

/* libcurl's seek callback of a range (a resend starts over). */
static int range_seek(void *arg, curl_off_t offset, int origin)
{
	struct range_read *rr = arg;

	if (origin != SEEK_SET || offset < 0 ||
	    (uint64_t)offset > rr->range.length)
		return CURL_SEEKFUNC_CANTSEEK;
	rr->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* The file field p of a form from a range of an open file, a failed read
 * told in *failed: 0, or -1. */
static int range_part(curl_mimepart *part, const struct http_range *range,
		      int *failed)
{
	struct range_read *rr = calloc(1, sizeof(*rr));

	if (!rr)
		return -1;
	rr->range = *range;
	rr->failed = failed;
	if (curl_mime_data_cb(part, (curl_off_t)range->length, range_read,
			      range_seek, free, rr) != CURLE_OK) {
		free(rr);
		return -1;
	}
	return 0;
}

/* The body of rq as a multipart form, or NULL (out of memory); a failed
 * read of a range it sends is told in *failed. */
static curl_mime *make_form(CURL *c, const struct http_request *rq, int *failed)
{
	curl_mime *form = curl_mime_init(c);

	for (size_t i = 0; form && i < rq->nparts; i++) {
		const struct http_part *p = &rq->parts[i];
		curl_mimepart *part = curl_mime_addpart(form);

		if (!part || curl_mime_name(part, p->name) != CURLE_OK ||
		    (p->value &&
		     curl_mime_data(part, p->value, CURL_ZERO_TERMINATED) !=
			 CURLE_OK) ||
		    (p->path &&
		     curl_mime_filedata(part, p->path) != CURLE_OK) ||
		    (p->range && range_part(part, p->range, failed) < 0) ||
		    (p->filename &&
		     curl_mime_filename(part, p->filename) != CURLE_OK)) {
			curl_mime_free(form);
			return NULL;
		}
	}
	return form;
}

/*
 * The headers of rq: the shared ones (the key), the Accept that fits its
 * answer, and a JSON body's Content-Type. NULL when out of memory; free
 * with free_headers (the key is copied in).
 */
static struct curl_slist *request_headers(const struct http *h,
					  const struct http_request *rq)
{
	char accept[128];
	struct curl_slist *l = NULL, *t;

	snprintf(accept, sizeof(accept), "Accept: %s",
		 rq->accept ? rq->accept : "application/json");
	for (const struct curl_slist *p = h->headers; p; p = p->next) {
		t = curl_slist_append(l, p->data);
		if (!t)
			goto fail;
		l = t;
	}
	t = curl_slist_append(l, accept);
	if (!t)
		goto fail;
	l = t;
	if (rq->method == HTTP_POST && !rq->parts && rq->json) {
		t = curl_slist_append(l, "Content-Type: application/json");
		if (!t)
			goto fail;
		l = t;
	}
	return l;
fail:
	free_headers(l);
	return NULL;
}

/*
 * One attempt of rq at url within budget_ms. 0 with a 2xx answer in r->ans,
 * else -errno with err filled in; *retry_after is the server's Retry-After
 * in seconds, or -1.
 */
static int attempt(struct http *h, const struct op *op,
		   const struct http_request *rq, const char *url,
		   long budget_ms, struct response *r, double *retry_after,
		   struct api_error *err)
{
	long connect_ms = (long)(h->opts->connect_timeout * 1000);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = request_headers(h, rq);
	curl_mime *form = NULL;
	curl_off_t ra = -1;
	CURL *c = headers ? handle_get(h) : NULL;
	CURLcode rc;

	*retry_after = -1;
	if (!c) {
		free_headers(headers);
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -ENOMEM;
	}
	r->curl = c;
	r->h = h;
	r->op = op;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kimifs/" KIMIFS_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, budget_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 connect_ms < budget_ms ? connect_ms : budget_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	if (rq->stall_bound) {
		long stall = (long)ceil(h->opts->timeout);

		/* Fewer, larger writes to the sink. */
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
				 stall > 0 ? stall : 1);
	}
	/* libcurl sends a request again by itself when a reused connection
	 * closes before any answer: a request sent once (an upload, a
	 * creation) takes a connection of its own, so what reached the
	 * server is never sent twice; so does a DELETE, whose every retry
	 * must be ours: a 404 to it follows an attempt that may have deleted
	 * (api_delete_file). */
	if (rq->no_retry || rq->method == HTTP_DELETE)
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	if (h->opts->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (rq->method == HTTP_DELETE)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	if (rq->method == HTTP_POST && rq->parts) {
		form = make_form(c, rq, &r->source_failed);
		if (!form) {
			handle_put(h, c);
			free_headers(headers);
			snprintf(err->message, sizeof(err->message),
				 "out of memory");
			return -ENOMEM;
		}
		curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
	} else if (rq->method == HTTP_POST) {
		const char *body = rq->json ? rq->json : "";

		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	rc = curl_easy_perform(c);
	count_attempt(h->stats, c, rc);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->ans->status);
		curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra);
		/* libcurl says 0 when there is no Retry-After: back off then.
		 */
		if (ra > 0)
			*retry_after = (double)ra;
	}
	handle_put(h, c);
	curl_mime_free(form);
	free_headers(headers);

	if (rc == CURLE_OK) {
		long status = r->ans->status;

		if (status >= 200 && status < 300)
			return 0;
		err->http_status = (int)status;
		message_from_body(r->ans, status, err);
		return -status_errno(status);
	}
	err->http_status = 0;
	if (r->source_failed) {
		snprintf(err->message, sizeof(err->message),
			 "cannot read the file being sent: %s",
			 r->source_failed == ENODATA
			     ? "it ended early"
			     : strerror(r->source_failed));
		return -EIO;
	}
	if (r->sink_failed)
		snprintf(err->message, sizeof(err->message),
			 "cannot write the answer down: %s",
			 strerror(r->sink_failed));
	else
		snprintf(err->message, sizeof(err->message), "%s",
			 r->too_big  ? "answer too large"
			 : errbuf[0] ? errbuf
				     : curl_easy_strerror(rc));
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
		snprintf(err->message, sizeof(err->message), "%s",
			 h->stopping ? "kimifs is stopping" : "interrupted");
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
	if (resp->too_big || resp->sink_failed || resp->source_failed)
		return 0;
	if (r == -EAGAIN || r == -EHOSTUNREACH || r == -ETIMEDOUT)
		return 1;
	return r == -EIO && (err->http_status == 0 || err->http_status >= 500);
}

/* Start an attempt's answer afresh (and the sink where it started). */
static void response_reset(struct response *r, off_t sink_start)
{
	http_answer_free(r->ans);
	r->cap = 0;
	r->too_big = 0;
	r->sink_failed = 0;
	r->source_failed = 0;
	if (r->sink_fd >= 0 && sink_start >= 0 &&
	    (lseek(r->sink_fd, sink_start, SEEK_SET) < 0 ||
	     ftruncate(r->sink_fd, sink_start) < 0))
		r->sink_failed = errno ? errno : EIO;
}

/* Seconds before the deadline within which a time-out is the bound's. */
#define BOUND_SLACK 0.05

/* Whether an attempt that ended r (err) was cut short by the call's
 * deadline rather than ended by an answer or a failure of its own. */
static int cut_by_bound(int r, const struct api_error *err, double deadline)
{
	return r == -ETIMEDOUT && !err->http_status &&
	       deadline - util_now() < BOUND_SLACK;
}

/* Make err the error answer prev (sent as attempt `attempts`); returns the
 * errno it maps to. */
static int answer_errno(const struct api_error *prev, struct api_error *err,
			unsigned attempts)
{
	*err = *prev;
	err->attempts = attempts;
	return -status_errno(prev->http_status);
}

int http_call(struct http *h, const struct op *op,
	      const struct http_request *rq, struct http_answer *ans,
	      struct api_error *err)
{
	const char *method = method_names[rq->method];
	double start = util_now();
	double deadline = start + h->opts->timeout;
	unsigned retries = rq->no_retry	     ? 0
			   : rq->retries < 0 ? h->opts->retries
					     : (unsigned)rq->retries;
	unsigned seed = (unsigned)(start * 1e6) ^ (unsigned)(size_t)ans;
	size_t urllen = strlen(h->opts->base_url) + strlen(rq->path) + 1;
	struct response resp = {.sink_fd = rq->sink_fd,
				.ans = ans,
				.on_sink = rq->on_sink,
				.sink_arg = rq->sink_arg};
	off_t sink_start =
	    rq->sink_fd >= 0 ? lseek(rq->sink_fd, 0, SEEK_CUR) : -1;
	char *url = malloc(urllen);
	struct api_error answered = {0}; /* the last error answer, if any */
	int r = -ETIMEDOUT;

	memset(err, 0, sizeof(*err));
	memset(ans, 0, sizeof(*ans));
	if (!url)
		return http_error(err, -ENOMEM, "out of memory");
	snprintf(url, urllen, "%s%s", h->opts->base_url, rq->path);
	if (op && (op->deadline < deadline || rq->stall_bound))
		deadline = op->deadline;
	for (unsigned n = 0;; n++) {
		long budget = (long)((deadline - util_now()) * 1000);
		double retry_after, delay;

		if (aborted(h, op)) {
			snprintf(err->message, sizeof(err->message), "%s",
				 h->stopping ? "kimifs is stopping"
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
				 h->opts->timeout);
			r = -ETIMEDOUT;
			break;
		}
		response_reset(&resp, sink_start);
		STAT_ADD(h->stats, requests[rq->kind], 1);
		if (n > 0)
			STAT_ADD(h->stats, retries, 1);
		r = attempt(h, op, rq, url, budget, &resp, &retry_after, err);
		err->attempts = n + 1;
		if (r < 0 && err->http_status)
			answered = *err;
		else if (cut_by_bound(r, err, deadline) && answered.http_status)
			/* The server's last word, not the bound's. */
			r = answer_errno(&answered, err, n + 1);
		/* -o debug_http: one line per request, no header, no body. */
		if (h->opts->debug_http || log_debug_enabled())
			log_msg(h->opts->debug_http ? LOG_INFO : LOG_DEBUG,
				"http: %s %s -> %ld (%.0f ms)", method,
				rq->path, ans->status,
				(util_now() - start) * 1000);
		if (r == 0 || !retryable(r, err, &resp) || n >= retries ||
		    aborted(h, op))
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
				  method, rq->path, delay);
			break;
		}
		log_warn("%s %s failed (%d %s); retrying in %.1f s", method,
			 rq->path, err->http_status, err->message, delay);
		sleep_for(h, op, delay);
		/* A loaded machine may oversleep: the same rule again. */
		if (deadline - util_now() < RETRY_MIN_BUDGET) {
			log_debug("%s %s: no time left for a retry; giving "
				  "up with the last error",
				  method, rq->path);
			break;
		}
	}
	free(url);
	if (r < 0) {
		err->fail = classify(r, err, &resp);
		http_answer_free(ans);
	}
	return r;
}

cJSON *http_json(const struct http_answer *ans, struct api_error *err)
{
	size_t nuls;
	cJSON *root = json_parse(ans->data ? ans->data : "", ans->len, &nuls);
	const cJSON *e;

	if (!root) {
		http_error(err, -EIO, "malformed JSON in the answer");
		return NULL;
	}
	if (nuls)
		log_warn("answer has %zu JSON string%s holding a NUL character "
			 "(\\u0000); not shown",
			 nuls, nuls == 1 ? "" : "s");
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(e)) {
		/* A 2xx whose body is an error object is still an error. */
		message_from_body(ans, 0, err);
		err->fail = API_FAIL_BAD_ANSWER;
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}
