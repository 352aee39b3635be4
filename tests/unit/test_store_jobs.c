/*
 * test_store_jobs.c - unit tests of the jobs found in the batch listing,
 * over the real API client and an HTTP stub (http_stub.h): the names,
 * newest first, each once, untagged batches and malformed keys in no job;
 * a job's snapshot from its listed batches in the mode asked; a name that
 * is no job costs no request beyond the listing.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fake_batch_json.h"
#include "http_stub.h"
#include "listing.h"
#include "op.h"
#include "opts.h"
#include "store_batches.h"
#include "store_jobs.h"

static struct http_stub stub;

#define REQUESTS(...) HTTP_STUB_REQUESTS(&stub, __VA_ARGS__)
#define NO_REQUESTS() http_stub_requests(&stub, NULL, 0)

/* The account's batches, newest first: id, status, metadata. */
static const struct {
	const char *id, *status, *meta;
} account[] = {
    {"b6", "completed", "{\"kimifs_job\":\"n\",\"kimifs_part\":\"1/1\"}"},
    {"b5", "completed", "{\"kimifs_job\":\"p\",\"kimifs_part\":\"1/1\"}"},
    {"b4", "completed", "{\"project\":\"x\"}"},
    {"b3", "in_progress", "{\"kimifs_job\":\"q\",\"kimifs_part\":\"2/2\"}"},
    {"b2", "completed", "{\"kimifs_job\":\"q\",\"kimifs_part\":\"0/2\"}"},
    {"b1", "completed", "{\"kimifs_job\":\"q\",\"kimifs_part\":\"1/2\"}"},
};
#define NACCOUNT (sizeof(account) / sizeof(account[0]))

/* The first batch of account the list shows (b6 is made later). */
static const size_t listed_from = 1;

/* BatchObject i as JSON, appended to out at o. */
static size_t batch_text(size_t i, char *out, size_t o, size_t size)
{
	int final = strcmp(account[i].status, "in_progress") != 0;

	return fake_batch_json(out, o, size, account[i].id, account[i].status,
			       account[i].meta, (int)(NACCOUNT - i) * 10,
			       final ? 2 : 1);
}

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	size_t size = 8192, o = 0;

	(void)ctx, (void)body, (void)len;
	if (strcmp(method, "GET") != 0 || !(*reply = malloc(size)))
		return 404;
	if (strncmp(target, "/v1/batches?", 12) == 0) {
		o += (size_t)snprintf(*reply, size,
				      "{\"object\":\"list\","
				      "\"data\":[");
		for (size_t i = listed_from; i < NACCOUNT; i++) {
			o = batch_text(i, *reply, o, size);
			if (i + 1 < NACCOUNT)
				(*reply)[o++] = ',';
		}
		snprintf(*reply + o, size - o,
			 "],\"first_id\":\"%s\",\"last_id\":\"b1\","
			 "\"has_more\":false}",
			 account[listed_from].id);
		return 200;
	}
	for (size_t i = 0; i < NACCOUNT; i++)
		if (strncmp(target, "/v1/batches/", 12) == 0 &&
		    strcmp(target + 12, account[i].id) == 0) {
			batch_text(i, *reply, 0, size);
			return 200;
		}
	free(*reply);
	*reply = NULL;
	return 404;
}

static void test_names(struct jobs *j)
{
	char **names;
	size_t n;
	struct op op;

	op_start(&op, 5);
	CHECK(jobs_names(j, &op, &names, &n) == 0);
	CHECK(n == 2 && strcmp(names[0], "p") == 0 &&
	      strcmp(names[1], "q") == 0);
	listing_free_ids(names, n);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	/* The listing is young: nothing sent. */
	CHECK(jobs_names(j, &op, &names, &n) == 0 && n == 2);
	listing_free_ids(names, n);
	CHECK(NO_REQUESTS());
	/* A batch this mount made joins the kept listing: the jobs are
	 * found again, the new batch read once. */
	CHECK(listing_add(&j->batches->listing, "b6") == 0);
	CHECK(jobs_names(j, &op, &names, &n) == 0);
	CHECK(n == 3 && strcmp(names[0], "n") == 0 &&
	      strcmp(names[1], "p") == 0 && strcmp(names[2], "q") == 0);
	listing_free_ids(names, n);
	CHECK(REQUESTS("GET /v1/batches/b6"));
	CHECK(jobs_names(j, &op, &names, &n) == 0 && n == 3);
	listing_free_ids(names, n);
	CHECK(NO_REQUESTS());
}

static void test_get(struct jobs *j)
{
	struct job *job;
	struct op op;

	op_start(&op, 5);
	CHECK(jobs_get(j, &op, "nope", STORE_ANY, &job, NULL) == -ENOENT);
	CHECK(!job);
	CHECK(jobs_get(j, &op, "bad/name", STORE_ANY, &job, NULL) == -ENOENT);
	CHECK(NO_REQUESTS());
	CHECK(jobs_get(j, &op, "q", STORE_ANY, &job, NULL) == 0);
	CHECK(NO_REQUESTS());
	/* b2's keys are malformed: not in q. */
	CHECK(job && job->nbatches == 2 && job->parts == 2 && job->found == 2 &&
	      strcmp(job->status, "in_progress") == 0);
	CHECK(job && job->total == 4 && job->completed == 3 &&
	      job->pending == 1);
	job_unref(job);
	/* Forced: the running batch is fetched; the final one is not. */
	CHECK(jobs_get(j, &op, "q", STORE_FORCE, &job, NULL) == 0);
	CHECK(REQUESTS("GET /v1/batches/b3"));
	job_unref(job);
	CHECK(jobs_get(j, &op, "p", STORE_ANY, &job, NULL) == 0);
	CHECK(job && strcmp(job->status, "completed") == 0);
	job_unref(job);
}

int main(void)
{
	struct opts o;
	struct api api;
	struct batches batches;
	struct jobs jobs;

	if (http_stub_api(&stub, answer, NULL, &o, &api) < 0)
		return 1;
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	jobs_init(&jobs, &batches);

	test_names(&jobs);
	test_get(&jobs);

	jobs_destroy(&jobs);
	batches_destroy(&batches);
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
	return check_done("test_store_jobs");
}
