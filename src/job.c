/*
 * job.c - the snapshot of a job made from the snapshots of its batches
 * (job.h): their order, the parts, the status rule and the counts.
 */
#include "job.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stages of a batch that runs, earliest first. */
static const char *const stages[] = {"validating", "in_progress", "finalizing",
				     "cancelling"};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

/* The reasons of a final job with requests left, in the order of the
 * rule: the first that a batch of the latest round has wins. */
static const char *const reasons[] = {"failed", "expired", "cancelled"};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

static const char JOB_COMPLETED[] = "completed";
static const char JOB_INCOMPLETE[] = "incomplete";
static const char JOB_WITH_FAILURES[] = "completed_with_failures";

static int by_place(const void *pa, const void *pb)
{
	const struct job_batch *a = pa, *b = pb;

	if (a->tag.part != b->tag.part)
		return a->tag.part < b->tag.part ? -1 : 1;
	if (a->tag.round != b->tag.round)
		return a->tag.round < b->tag.round ? -1 : 1;
	if (a->batch->created_at != b->batch->created_at)
		return a->batch->created_at < b->batch->created_at ? -1 : 1;
	return strcmp(a->batch->id, b->batch->id);
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int job_live(const struct job *j, unsigned round, char *live)
{
	const char **named = malloc((j->nbatches + 1) * sizeof(*named));
	unsigned from = 0;
	size_t n = 0;

	if (!named)
		return -ENOMEM;
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct job_tag *t = &j->batches[i].tag;

		if (t->round >= round)
			continue;
		if (t->retries[0])
			named[n++] = t->retries;
		else if (t->round > from)
			from = t->round;
	}
	qsort(named, n, sizeof(*named), by_string);
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct job_tag *t = &j->batches[i].tag;
		const char *id = j->batches[i].batch->id;

		live[i] =
		    t->round < round && t->round >= from &&
		    !(n && bsearch(&id, named, n, sizeof(*named), by_string));
	}
	free(named);
	return 0;
}

/* Mark the batches of j that a later round supersedes: those not live
 * before any round (job_live). 0 or -ENOMEM. */
static int mark_superseded(struct job *j)
{
	char *live = malloc(j->nbatches + 1);
	int r = live ? job_live(j, UINT_MAX, live) : -ENOMEM;

	for (size_t i = 0; r == 0 && i < j->nbatches; i++)
		j->batches[i].superseded = !live[i];
	free(live);
	return r;
}

/* The earliest stage among the batches of j that run, or NULL when none
 * runs. A status kimifs does not know counts as the earliest. */
static const char *running_status(const struct job *j)
{
	const char *status = NULL;
	size_t best = NSTAGES;

	for (size_t i = 0; i < j->nbatches; i++) {
		const struct batch *b = j->batches[i].batch;
		size_t s = 0;

		if (b->final)
			continue;
		while (s < NSTAGES && strcmp(b->status, stages[s]) != 0)
			s++;
		if (s == NSTAGES)
			return b->status; /* unknown: earliest */
		if (s < best) {
			best = s;
			status = stages[s];
		}
	}
	return status;
}

/* Whether a request of j is left without a success: a count says so, or a
 * batch no round supersedes ended other than completed. */
static int left_over(const struct job *j)
{
	if (j->failed || j->pending)
		return 1;
	for (size_t i = 0; i < j->nbatches; i++)
		if (!j->batches[i].superseded &&
		    strcmp(j->batches[i].batch->status, JOB_COMPLETED) != 0)
			return 1;
	return 0;
}

/* The status of a job whose batches are all final (job.h). */
static const char *final_status(const struct job *j)
{
	for (unsigned p = 1; p <= j->parts; p++)
		if (!job_has_part(j, p))
			return JOB_INCOMPLETE;
	if (j->parts == 0)
		return JOB_INCOMPLETE;
	if (!left_over(j))
		return JOB_COMPLETED;
	for (size_t r = 0; r < NREASONS; r++)
		for (size_t i = 0; i < j->nbatches; i++)
			if (j->batches[i].tag.round + 1 == j->rounds &&
			    strcmp(j->batches[i].batch->status, reasons[r]) ==
				0)
				return reasons[r];
	return JOB_WITH_FAILURES;
}

/* Parts, rounds, times and counts of j from its batches. 0 or -ENOMEM. */
static int summarize(struct job *j)
{
	uint64_t c[3];
	int r = 0;

	j->created_at = INT64_MAX;
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct job_batch *jb = &j->batches[i];
		const struct batch *b = jb->batch;

		if (jb->tag.round == 0 && jb->tag.parts > j->parts)
			j->parts = jb->tag.parts;
		if (jb->tag.round + 1 > j->rounds)
			j->rounds = jb->tag.round + 1;
		if (!b->final)
			j->running++;
		if (b->created_at < j->created_at)
			j->created_at = b->created_at;
		if (b->mtime > j->mtime)
			j->mtime = b->mtime;
		if ((r = batch_counts(b, c)) < 0)
			return r;
		if (jb->tag.round == 0)
			j->total += c[0];
		j->completed += c[1];
		if (!jb->superseded)
			j->failed += c[2];
	}
	for (unsigned p = 1; p <= j->parts; p++)
		j->found += job_has_part(j, p);
	j->pending = j->completed + j->failed < j->total
			 ? j->total - j->completed - j->failed
			 : 0;
	return 0;
}

int job_make(const char *name, struct batch *const *b, const struct job_tag *t,
	     size_t n, struct job **out)
{
	struct job *j;
	int r;

	*out = NULL;
	if (n == 0)
		return -ENOENT;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->batches = calloc(n, sizeof(*j->batches));
	if (!j->batches) {
		free(j);
		return -ENOMEM;
	}
	j->refs = 1;
	snprintf(j->name, sizeof(j->name), "%s", name);
	for (size_t i = 0; i < n; i++) {
		j->batches[i].batch = batch_ref(b[i]);
		j->batches[i].tag = t[i];
	}
	j->nbatches = n;
	qsort(j->batches, n, sizeof(*j->batches), by_place);
	r = mark_superseded(j);
	if (r == 0)
		r = summarize(j);
	if (r < 0) {
		job_unref(j);
		return r;
	}
	j->status = running_status(j);
	if (!j->status)
		j->status = final_status(j);
	*out = j;
	return 0;
}

struct job *job_ref(struct job *j)
{
	__atomic_add_fetch(&j->refs, 1, __ATOMIC_RELAXED);
	return j;
}

void job_unref(struct job *j)
{
	if (!j || __atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < j->nbatches; i++)
		batch_unref(j->batches[i].batch);
	free(j->batches);
	free(j);
}

int job_has_part(const struct job *j, unsigned part)
{
	for (size_t i = 0; i < j->nbatches; i++)
		if (j->batches[i].tag.round == 0 &&
		    j->batches[i].tag.part == part)
			return 1;
	return 0;
}

/* Whether batches i and k of j have the same part and round. */
static int same_place(const struct job *j, size_t i, size_t k)
{
	return j->batches[i].tag.part == j->batches[k].tag.part &&
	       j->batches[i].tag.round == j->batches[k].tag.round;
}

int job_batch_name(const struct job *j, size_t i, char *out, size_t size)
{
	const struct job_batch *jb = &j->batches[i];
	int shared = (i > 0 && same_place(j, i, i - 1)) ||
		     (i + 1 < j->nbatches && same_place(j, i, i + 1));
	char round[32] = "";
	int len;

	if (jb->tag.round)
		snprintf(round, sizeof(round), ".retry-%u", jb->tag.round);
	len = snprintf(out, size, "part-%04u%s%s%s", jb->tag.part, round,
		       shared ? "." : "", shared ? jb->batch->id : "");
	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

int job_batch_find(const struct job *j, const char *name, size_t *i)
{
	char have[JOB_LINK_MAX];

	for (size_t k = 0; k < j->nbatches; k++)
		if (job_batch_name(j, k, have, sizeof(have)) == 0 &&
		    strcmp(have, name) == 0) {
			*i = k;
			return 0;
		}
	return -ENOENT;
}
