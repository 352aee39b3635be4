/*
 * test_job.c - unit tests of a job's snapshot: its batches in order, the
 * parts of round 0, the status rule (running stages, incomplete,
 * completed, the reason of the latest round), the counts across a job
 * round and a batch retry, the names of its batches/ links, the job
 * kind's value files, and the round a retry of it makes (job_retry_plan).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "job.h"
#include "job_retry.h"
#include "kind.h"

#define MAXB 16

/* The batches of the job being made, with their tags. */
static struct batch *bs[MAXB];
static struct job_tag ts[MAXB];
static size_t nb;

/* Add batch id of job q: status, counts (total, completed, failed),
 * created_at, and its kimifs keys (part "i/N", retry or NULL). */
static void add(const char *id, const char *status, int total, int ok, int bad,
		int created, const char *part, const char *retry)
{
	char text[1024], meta[256], why[256];
	cJSON *obj;
	int r;

	snprintf(meta, sizeof(meta),
		 "{\"kimifs_job\":\"q\",\"kimifs_part\":\"%s\"%s%s%s}", part,
		 retry ? ",\"kimifs_retry\":\"" : "", retry ? retry : "",
		 retry ? "\"" : "");
	snprintf(text, sizeof(text),
		 "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		 "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
		 "\"completion_window\":\"24h\",\"status\":\"%s\","
		 "\"created_at\":%d,\"metadata\":%s,"
		 "\"request_counts\":{\"total\":%d,\"completed\":%d,"
		 "\"failed\":%d}}",
		 id, status, created, meta, total, ok, bad);
	obj = cJSON_Parse(text);
	r = batch_from_json(obj, &bs[nb], why, sizeof(why));
	CHECK(r == 0);
	cJSON_Delete(obj);
	if (r < 0)
		return;
	CHECK(job_tag_of(bs[nb], &ts[nb], why, sizeof(why)) == 1);
	nb++;
}

static void clear(void)
{
	for (size_t i = 0; i < nb; i++)
		batch_unref(bs[i]);
	nb = 0;
}

/* The job of the batches added so far (then cleared). */
static struct job *make(void)
{
	struct job *j = NULL;

	CHECK(job_make("q", bs, ts, nb, &j) == 0);
	clear();
	return j;
}

static int status_is(const char *want)
{
	struct job *j = make();
	int ok = j && strcmp(j->status, want) == 0;

	if (j && !ok)
		fprintf(stderr, "status %s, want %s\n", j->status, want);
	job_unref(j);
	return ok;
}

static void test_running(void)
{
	add("b1", "completed", 2, 2, 0, 10, "1/3", NULL);
	add("b2", "in_progress", 2, 1, 0, 11, "2/3", NULL);
	add("b3", "finalizing", 2, 2, 0, 12, "3/3", NULL);
	CHECK(status_is("in_progress"));
	add("b1", "cancelling", 2, 2, 0, 10, "1/2", NULL);
	add("b2", "validating", 2, 0, 0, 11, "2/2", NULL);
	CHECK(status_is("validating"));
	/* A part missing does not matter while one runs. */
	add("b2", "finalizing", 2, 0, 0, 11, "2/2", NULL);
	CHECK(status_is("finalizing"));
}

static void test_final(void)
{
	add("b1", "completed", 2, 2, 0, 10, "1/2", NULL);
	add("b2", "completed", 3, 3, 0, 11, "2/2", NULL);
	CHECK(status_is("completed"));
	/* Part 2 of 3 never made. */
	add("b1", "completed", 2, 2, 0, 10, "1/3", NULL);
	add("b3", "completed", 3, 3, 0, 11, "3/3", NULL);
	CHECK(status_is("incomplete"));
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "completed", 3, 3, 0, 11, "2/2", NULL);
	CHECK(status_is("completed_with_failures"));
	add("b1", "expired", 2, 1, 0, 10, "1/2", NULL);
	add("b2", "cancelled", 3, 1, 0, 11, "2/2", NULL);
	CHECK(status_is("expired"));
	add("b1", "failed", 0, 0, 0, 10, "1/2", NULL);
	add("b2", "cancelled", 3, 1, 0, 11, "2/2", NULL);
	CHECK(status_is("failed"));
	add("b1", "expired", 2, 1, 0, 10, "1/2", NULL);
	add("b2", "failed", 3, 0, 0, 11, "2/2", NULL);
	CHECK(status_is("failed"));
	add("b1", "cancelled", 2, 2, 0, 10, "1/1", NULL);
	CHECK(status_is("cancelled"));
	/* A batch that failed its validation counts nothing, and is still
	 * requests left without a success. */
	add("b1", "failed", 0, 0, 0, 10, "1/2", NULL);
	add("b2", "completed", 3, 3, 0, 11, "2/2", NULL);
	CHECK(status_is("failed"));
	/* Only the latest round gives the reason. */
	add("b1", "expired", 4, 1, 0, 10, "1/1", NULL);
	add("r1", "completed", 3, 2, 1, 20, "1/1", "1");
	CHECK(status_is("completed_with_failures"));
}

static void test_counts(void)
{
	struct job *j;

	/* Round 0: 2 parts, 10 requests, 3 failed; a batch retry of part 1
	 * (its 2 failures: 1 succeeds), then a job round 2 of what is left
	 * (2 requests: both succeed). */
	add("b1", "completed", 4, 2, 2, 10, "1/2", NULL);
	add("b2", "completed", 6, 5, 1, 11, "2/2", NULL);
	add("x1", "completed", 2, 1, 1, 20, "1/2", "1 b1");
	CHECK(status_is("completed_with_failures"));
	add("b1", "completed", 4, 2, 2, 10, "1/2", NULL);
	add("b2", "completed", 6, 5, 1, 11, "2/2", NULL);
	add("x1", "completed", 2, 1, 1, 20, "1/2", "1 b1");
	j = make();
	CHECK(j->total == 10 && j->completed == 8 && j->failed == 2 &&
	      j->pending == 0);
	CHECK(j->batches[0].superseded && !j->batches[1].superseded &&
	      !j->batches[2].superseded);
	job_unref(j);
	add("b1", "completed", 4, 2, 2, 10, "1/2", NULL);
	add("b2", "completed", 6, 5, 1, 11, "2/2", NULL);
	add("x1", "completed", 2, 1, 1, 20, "1/2", "1 b1");
	add("r2", "in_progress", 2, 1, 0, 30, "1/1", "2");
	j = make();
	CHECK(strcmp(j->status, "in_progress") == 0);
	CHECK(j->total == 10 && j->completed == 9 && j->failed == 0 &&
	      j->pending == 1);
	CHECK(j->rounds == 3 && j->parts == 2 && j->found == 2 &&
	      j->running == 1);
	CHECK(j->created_at == 10);
	job_unref(j);
	add("b1", "completed", 4, 2, 2, 10, "1/2", NULL);
	add("b2", "completed", 6, 5, 1, 11, "2/2", NULL);
	add("x1", "completed", 2, 1, 1, 20, "1/2", "1 b1");
	add("r2", "completed", 2, 2, 0, 30, "1/1", "2");
	CHECK(status_is("completed"));
	/* Never below 0 (counts a hostile server sent). */
	add("b1", "completed", 1, 3, 2, 10, "1/1", NULL);
	j = make();
	CHECK(j->pending == 0);
	job_unref(j);
}

static void test_order_and_names(void)
{
	char name[JOB_LINK_MAX];
	struct job *j;
	size_t i;

	add("r2", "completed", 2, 2, 0, 30, "1/1", "2");
	add("b3", "completed", 1, 1, 0, 12, "3/3", NULL);
	add("x1", "completed", 2, 1, 1, 20, "1/3", "1 b1");
	add("b1", "completed", 4, 2, 2, 10, "1/3", NULL);
	add("b2b", "completed", 1, 1, 0, 13, "2/3", NULL);
	add("b2a", "completed", 1, 1, 0, 11, "2/3", NULL);
	j = make();
	{
		static const char *const want[] = {
		    "part-0001",     "part-0001.retry-1", "part-0001.retry-2",
		    "part-0002.b2a", "part-0002.b2b",	  "part-0003",
		};

		CHECK(j->nbatches == 6);
		for (i = 0; i < j->nbatches && i < 6; i++) {
			CHECK(job_batch_name(j, i, name, sizeof(name)) == 0);
			CHECK(strcmp(name, want[i]) == 0);
		}
	}
	CHECK(job_batch_find(j, "part-0001.retry-2", &i) == 0 &&
	      strcmp(j->batches[i].batch->id, "r2") == 0);
	CHECK(job_batch_find(j, "part-0002", &i) == -ENOENT);
	CHECK(job_has_part(j, 2) && !job_has_part(j, 4));
	CHECK(job_batch_name(j, 0, name, 5) == -ENAMETOOLONG);
	job_unref(j);
	CHECK(job_make("q", bs, ts, 0, &j) == -ENOENT && !j);
}

static void test_kind(void)
{
	struct job *j;
	char *text;
	size_t len;

	add("b1", "completed", 2, 2, 0, 10, "1/2", NULL);
	j = make();
	CHECK(kind_render(&job_kind, j, "status", &text, &len) == 0);
	CHECK(strcmp(text, "incomplete\n") == 0 && len == 11);
	free(text);
	CHECK(kind_render(&job_kind, j, "parts", &text, &len) == 0);
	CHECK(strcmp(text, "2\n") == 0);
	free(text);
	CHECK(kind_render(&job_kind, j, "created_at", &text, &len) == 0);
	CHECK(strcmp(text, "10\n") == 0);
	free(text);
	CHECK(kind_render(&job_kind, j, "nope", &text, &len) == -ENOENT);
	CHECK(strcmp(job_kind.id(j), "q") == 0 && !job_kind.final(j));
	CHECK(job_kind.same(j, j));
	job_unref(j);
}

/* The plan of a retry of the batches added so far: its result, with the
 * round and whether it finishes one in *plan. */
static int plan_of(struct job_retry_plan *plan)
{
	struct job *j = make();
	char why[256] = "";
	int r = j ? job_retry_plan(j, plan, why, sizeof(why)) : -ENOMEM;

	if (r == -EBUSY)
		CHECK(why[0] != '\0');
	job_unref(j);
	return r;
}

static void test_retry_plan(void)
{
	struct job_retry_plan p;

	/* A batch runs, or a part of round 0 is missing: EBUSY. */
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "in_progress", 3, 1, 0, 11, "2/2", NULL);
	CHECK(plan_of(&p) == -EBUSY);
	add("b1", "completed", 2, 1, 1, 10, "1/3", NULL);
	add("b3", "completed", 3, 3, 0, 11, "3/3", NULL);
	CHECK(plan_of(&p) == -EBUSY);
	/* All ended: round 1, then the round after the latest. */
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "expired", 3, 1, 0, 11, "2/2", NULL);
	CHECK(plan_of(&p) == 0 && p.round == 1 && !p.finish);
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "completed", 3, 3, 0, 11, "2/2", NULL);
	add("x1", "completed", 1, 0, 1, 12, "1/1", "1 b1");
	add("r2", "completed", 1, 0, 1, 13, "1/1", "2");
	CHECK(plan_of(&p) == 0 && p.round == 3 && !p.finish);
	/* Round 2 of 2 parts stopped after its first: finish round 2. */
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "completed", 3, 1, 2, 11, "2/2", NULL);
	add("r1", "completed", 3, 0, 3, 12, "1/1", "1");
	add("r2", "completed", 2, 0, 2, 13, "1/2", "2");
	CHECK(plan_of(&p) == 0 && p.round == 2 && p.finish);
	/* Its part 2 there too: round 3. */
	add("b1", "completed", 2, 1, 1, 10, "1/2", NULL);
	add("b2", "completed", 3, 1, 2, 11, "2/2", NULL);
	add("r1", "completed", 3, 0, 3, 12, "1/1", "1");
	add("r2", "completed", 2, 0, 2, 13, "1/2", "2");
	add("r3", "completed", 1, 0, 1, 14, "2/2", "2");
	CHECK(plan_of(&p) == 0 && p.round == 3 && !p.finish);
}

int main(void)
{
	test_running();
	test_final();
	test_counts();
	test_order_and_names();
	test_kind();
	test_retry_plan();
	return check_done("test_job");
}
