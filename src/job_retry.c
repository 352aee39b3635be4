/*
 * job_retry.c - a job's retry round (job_retry.h): which round, which
 * batches' failures, gathered into one scratch file, handed to the
 * creation engine; each round made or failed a line of MOUNT/events.
 */
#include "job_retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch_params.h"
#include "cache.h"
#include "cache_dir.h"
#include "events.h"
#include "job_create.h"
#include "jsonl_check.h"
#include "log.h"
#include "retry_input.h"
#include "store_jobs.h"
#include "submit.h"
#include "util.h"

/* The latest job round of j (a round whose batches name no batch they
 * retry), 0 for the first. */
static unsigned latest_job_round(const struct job *j)
{
	unsigned round = 0;

	for (size_t i = 0; i < j->nbatches; i++)
		if (!j->batches[i].tag.retries[0] &&
		    j->batches[i].tag.round > round)
			round = j->batches[i].tag.round;
	return round;
}

/* Whether a part of job round round (> 0) of j is missing: its batches
 * hold fewer parts than their "i/N" says. */
static int round_stopped(const struct job *j, unsigned round)
{
	unsigned parts = 0, found = 0, last = 0;

	/* Sorted by part then round: each part's batches of the round come
	 * in order of part. */
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct job_tag *t = &j->batches[i].tag;

		if (t->round != round || t->retries[0])
			continue;
		if (t->parts > parts)
			parts = t->parts;
		if (t->part != last)
			found++;
		last = t->part;
	}
	return found < parts;
}

int job_retry_plan(const struct job *j, struct job_retry_plan *plan, char *why,
		   size_t whylen)
{
	unsigned latest = latest_job_round(j);

	memset(plan, 0, sizeof(*plan));
	if (j->running)
		return util_reason(-EBUSY, why, whylen,
				   "%u batches of the job run", j->running);
	if (j->parts == 0 || j->found < j->parts)
		return util_reason(-EBUSY, why, whylen,
				   "the job is incomplete (%u of %u parts): "
				   "resume it first",
				   j->found, j->parts);
	plan->finish = latest > 0 && round_stopped(j, latest);
	plan->round = plan->finish ? latest : j->rounds;
	return 0;
}

/*
 * Append the requests without a success of the batches of j that round
 * sends again to fd, in j's order (by part, round, creation), each batch
 * with a deadline of its own: -o timeout and a second a MiB of the
 * largest input. The number of lines into *lines; 0, or -errno with why.
 */
static int gather(const struct job_retry *jr, struct op *op,
		  const struct job *j, unsigned round, int fd, long *lines,
		  char *why, size_t whylen)
{
	char *take = malloc(j->nbatches + 1);
	int r = take ? job_live(j, round, take) : -ENOMEM;

	*lines = 0;
	for (size_t i = 0; r == 0 && i < j->nbatches; i++) {
		const struct batch *b = j->batches[i].batch;
		char reason[512];
		long n;

		if (!take[i])
			continue;
		op->deadline =
		    util_now() +
		    submit_upload_bound(jr->create->submit, JSONL_MAX_BYTES);
		n = retry_input(jr->cache, jr->results, op, b, fd, reason,
				sizeof(reason));
		if (n < 0)
			r = util_reason((int)n, why, whylen, "batch %s: %s",
					b->id, reason);
		else
			*lines += n;
	}
	if (r == -ENOMEM)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	free(take);
	return r;
}

/* The parameters the round's batches are made like: those of the first
 * round's first batch (its endpoint, window and the user's metadata). 0,
 * or -errno with why. */
static int like_first(const struct job *j, struct batch_params *p, char *why,
		      size_t whylen)
{
	for (size_t i = 0; i < j->nbatches; i++)
		if (j->batches[i].tag.round == 0)
			return params_like(j->batches[i].batch, p, why, whylen);
	return util_reason(-ENOENT, why, whylen, "the job has no first round");
}

/* "round R made: N requests in P batches" of a round made into msg; the
 * batches made now into *made. */
static void say_made(const struct job_outcome *out, unsigned round, long lines,
		     size_t *made, char *msg, size_t msglen)
{
	*made = 0;
	for (size_t i = 0; i < out->nparts; i++)
		*made += out->parts[i].state == JOB_PART_MADE;
	if (*made < out->nparts)
		snprintf(msg, msglen,
			 "round %u finished: %ld requests in %zu batches, "
			 "%zu made now",
			 round, lines, out->nparts, *made);
	else
		snprintf(msg, msglen,
			 "round %u made: %ld requests in %zu batches", round,
			 lines, out->nparts);
}

/* Make or finish round plan of job j from the gathered requests in fd
 * (lines of them): 0 with the batches made now in *made, or -errno; msg
 * set either way. */
static int make_round(const struct job_retry *jr, struct op *op,
		      const struct job *j, const struct job_retry_plan *plan,
		      int fd, long lines, size_t *made, char *msg,
		      size_t msglen)
{
	struct batch_params like = {0};
	struct job_outcome out = {0};
	struct job_round rd = {.round = plan->round, .like = &like};
	struct stat st;
	int r = like_first(j, &like, msg, msglen);

	if (r == 0 && fstat(fd, &st) < 0)
		r = util_reason(-errno, msg, msglen,
				"the staged round cannot be read");
	if (r == 0)
		r = job_create_round(jr->create, op, j->name, &rd, fd,
				     (uint64_t)st.st_size, plan->finish, &out);
	if (r == 0)
		say_made(&out, plan->round, lines, made, msg, msglen);
	else if (out.why)
		snprintf(msg, msglen, "round %u: %s", plan->round, out.why);
	job_outcome_free(&out);
	params_free(&like);
	return r;
}

/*
 * The line of MOUNT/events of job name's round plan, once planned: the
 * batches made (none: nothing to retry, no line), or the failure r with
 * why, but a round found made elsewhere (-EEXIST: nothing sent).
 */
static void tell(const char *name, int planned,
		 const struct job_retry_plan *plan, int r, size_t made,
		 const char *why)
{
	if (!planned || r == -EEXIST || (r == 0 && made == 0))
		return;
	events_add(&(struct event){.kind = "round",
				   .job = name,
				   .round = plan->round,
				   .batches = (int64_t)made,
				   .error = r < 0 ? why : NULL});
}

int job_retry(const struct job_retry *jr, struct op *op, const char *name,
	      char *msg, size_t msglen)
{
	struct job_retry_plan plan = {0};
	char scratch[CACHE_TMP_NAME_MAX], text[600];
	struct api_error err = {0};
	struct job *j = NULL;
	long lines = 0;
	size_t made = 0;
	int fd = -1, planned = 0;
	int r = jobs_get(jr->jobs, op, name, STORE_FRESH, &j, &err);

	if (r == -ENOENT) {
		snprintf(msg, msglen, "no job %s", name);
		goto out;
	}
	if (r < 0) {
		api_error_text(&err, r, text, sizeof(text));
		snprintf(msg, msglen, "%s", text);
		goto out;
	}
	r = job_retry_plan(j, &plan, msg, msglen);
	if (r < 0)
		goto out;
	planned = 1;
	fd = cache_tmp_open(jr->cache->dirfd, CACHE_TMP_SCRATCH, NULL, scratch,
			    sizeof(scratch));
	if (fd < 0) {
		r = util_reason(fd, msg, msglen,
				"cannot stage the round in %s: %s",
				jr->cache->dir, strerror(-fd));
		goto out;
	}
	unlinkat(jr->cache->dirfd, scratch, 0); /* nothing left behind */
	r = gather(jr, op, j, plan.round, fd, &lines, msg, msglen);
	if (r == 0 && lines == 0)
		snprintf(msg, msglen, "nothing to retry");
	else if (r == 0)
		r = make_round(jr, op, j, &plan, fd, lines, &made, msg, msglen);
out:
	tell(name, planned, &plan, r, made, msg);
	if (fd >= 0)
		close(fd);
	job_unref(j);
	return r;
}
