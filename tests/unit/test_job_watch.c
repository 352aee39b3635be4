/*
 * test_job_watch.c - unit tests of the job lines of MOUNT/events
 * (job_watch.c), over the real API client, batch store and jobs, and an
 * HTTP stub (http_stub.h): no look before a listing; the first look
 * records the jobs without a line; a job's line once its status changes
 * (not when only one of its batches did), once; a new job's line without
 * "was"; no request of its own; and the thread's line about a second
 * after the batch line that caused it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fake_batch_json.h"
#include "events_lines.h"
#include "http_stub.h"
#include "job_watch.h"
#include "op.h"
#include "store_batches.h"
#include "store_jobs.h"
#include "util.h"

static struct http_stub stub;

#define NO_REQUESTS() http_stub_requests(&stub, NULL, 0)

/* The account's batches, newest first; the list shows from `listed`. */
static struct {
	const char *id;
	char status[32];
	const char *meta;
} account[] = {
    {"n1", "validating", "{\"kimifs_job\":\"n\",\"kimifs_part\":\"1/1\"}"},
    {"x1", "in_progress", "{\"project\":\"x\"}"},
    {"c1", "completed", "{\"kimifs_job\":\"c\",\"kimifs_part\":\"1/1\"}"},
    {"a2", "in_progress", "{\"kimifs_job\":\"a\",\"kimifs_part\":\"2/2\"}"},
    {"a1", "in_progress", "{\"kimifs_job\":\"a\",\"kimifs_part\":\"1/2\"}"},
};
#define NACCOUNT (sizeof(account) / sizeof(account[0]))
static size_t listed = 1;
static pthread_mutex_t account_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_status(size_t i, const char *status)
{
	pthread_mutex_lock(&account_lock);
	snprintf(account[i].status, sizeof(account[i].status), "%s", status);
	pthread_mutex_unlock(&account_lock);
}

/* BatchObject i as JSON, appended to out at o. */
static size_t batch_text(size_t i, char *out, size_t o, size_t size)
{
	int final = strcmp(account[i].status, "completed") == 0;

	return fake_batch_json(out, o, size, account[i].id, account[i].status,
			       account[i].meta, (int)(NACCOUNT - i) * 10,
			       final ? 2 : 1);
}

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	size_t size = 8192, o;

	(void)ctx, (void)body, (void)len;
	if (strcmp(method, "GET") != 0 ||
	    strncmp(target, "/v1/batches?", 12) != 0 ||
	    !(*reply = malloc(size)))
		return 404;
	pthread_mutex_lock(&account_lock);
	o = (size_t)snprintf(*reply, size, "{\"object\":\"list\",\"data\":[");
	for (size_t i = listed; i < NACCOUNT; i++) {
		o = batch_text(i, *reply, o, size);
		if (i + 1 < NACCOUNT)
			(*reply)[o++] = ',';
	}
	snprintf(*reply + o, size - o, "],\"has_more\":false}");
	pthread_mutex_unlock(&account_lock);
	return 200;
}

static void refresh(struct batches *b)
{
	struct op op;

	op_start(&op, 5);
	CHECK(batches_refresh(b, &op) == 0);
	http_stub_set(&stub, answer, NULL); /* the listing: forgotten */
}

static void test_looks(struct job_watch *w, struct batches *b,
		       struct events_reader *r, uint64_t *at)
{
	/* Nothing listed yet: no look, and no request to make one. */
	CHECK(job_watch_look(w) == -ENODATA);
	CHECK(NO_REQUESTS());
	/* The first look records a and c without a line. */
	refresh(b);
	CHECK(job_watch_look(w) == 0);
	CHECK(events_lines_are(r, at, ""));
	/* One of a's batches ends: its batch line, a still runs. */
	set_status(4, "completed");
	refresh(b);
	CHECK(job_watch_look(w) == 0);
	CHECK(NO_REQUESTS());
	CHECK(events_lines_are(r, at,
			       "{\"kind\":\"batch\",\"id\":\"a1\",\"status\":"
			       "\"completed\",\"was\":\"in_progress\","
			       "\"job\":\"a\"}\n"));
	/* The other ends: a's line once, after the batch's. */
	set_status(3, "completed");
	refresh(b);
	CHECK(job_watch_look(w) == 0);
	CHECK(job_watch_look(w) == 0);
	CHECK(NO_REQUESTS());
	CHECK(events_lines_are(
	    r, at,
	    "{\"kind\":\"batch\",\"id\":\"a2\",\"status\":\"completed\","
	    "\"was\":\"in_progress\",\"job\":\"a\"}\n"
	    "{\"kind\":\"job\",\"name\":\"a\",\"status\":\"completed\","
	    "\"was\":\"in_progress\"}\n"));
	/* A job first seen after the first look: no "was". */
	listed = 0;
	refresh(b);
	CHECK(job_watch_look(w) == 0);
	CHECK(events_lines_are(r, at,
			       "{\"kind\":\"job\",\"name\":\"n\",\"status\":"
			       "\"validating\"}\n"));
}

/* The thread: a job's line comes about a second after its batch's. */
static void test_thread(struct job_watch *w, struct batches *b,
			struct events_reader *r, uint64_t *at)
{
	char buf[1024];
	double until;
	ssize_t n = 0;

	CHECK(job_watch_start(w, &b->store) == 0);
	set_status(0, "in_progress");
	refresh(b);
	CHECK(events_lines_are(r, at,
			       "{\"kind\":\"batch\",\"id\":\"n1\",\"status\":"
			       "\"in_progress\",\"was\":\"validating\","
			       "\"job\":\"n\"}\n"));
	until = util_now() + 2.5;
	while (util_now() < until &&
	       (n = events_read(r, buf, 0, *at)) == -EAGAIN) {
		struct timespec ts = {0, 20 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	CHECK(n == 0);
	CHECK(events_lines_are(r, at,
			       "{\"kind\":\"job\",\"name\":\"n\",\"status\":"
			       "\"in_progress\",\"was\":\"validating\"}\n"));
	CHECK(NO_REQUESTS());
	job_watch_stop(w);
}

int main(void)
{
	struct events_reader *r;
	struct job_watch w;
	struct batches batches;
	struct jobs jobs;
	struct opts o;
	struct api api;
	uint64_t at = 0;

	if (http_stub_api(&stub, answer, NULL, &o, &api) < 0)
		return 1;
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	jobs_init(&jobs, &batches);
	job_watch_init(&w, &jobs);
	CHECK(events_open(1, 0, &r) == 0);

	test_looks(&w, &batches, r, &at);
	test_thread(&w, &batches, r, &at);

	events_close(r);
	events_forget();
	jobs_destroy(&jobs);
	batches_destroy(&batches);
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
	return check_done("test_job_watch");
}
