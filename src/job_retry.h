/*
 * job_retry.h - a job's retry round: every request of the job without a
 * success sent again as one new round R (the latest round + 1). For each
 * batch of the job that no later round supersedes, the lines of its input
 * without a successful result (retry_input.h) are gathered into one file
 * of the cache directory, then cut, uploaded and made batches by the
 * creation engine (job_create_round: NAME.rR.part-0001-of-0002.jsonl,
 * kimifs_job, kimifs_part, kimifs_retry "R"), with the completion window,
 * endpoint and user's metadata of the job's first round. A round that
 * stopped halfway is finished the same way, never a part twice. No tree:
 * the caller (the job's ctl, the automatic rounds of job_auto.h) shows the
 * outcome.
 */
#ifndef KIMIFS_JOB_RETRY_H
#define KIMIFS_JOB_RETRY_H

#include <stddef.h>

#include "job.h"

struct cache;
struct job_create;
struct jobs;
struct op;
struct results_cache;

/* What a retry round uses (none owned; all outlive it). */
struct job_retry {
	struct jobs *jobs;		 /* the job's snapshot */
	const struct job_create *create; /* the round's split and parts */
	struct cache *cache;		 /* the inputs; the round's staging */
	struct results_cache *results;	 /* which requests succeeded */
};

/* The round a retry of a job makes. */
struct job_retry_plan {
	unsigned round; /* the round to make, or to finish */
	int finish;	/* 1: round stopped halfway (a part of it missing) */
};

/*
 * The round a retry of snapshot j would make: 0 with *plan set, or
 * -EBUSY with the reason in why (whylen bytes) while a batch of j runs or
 * when a part of its first round is missing (a creation to resume first).
 * Pure.
 */
int job_retry_plan(const struct job *j, struct job_retry_plan *plan, char *why,
		   size_t whylen);

/*
 * Retry job name as part of op (its deadline set for each step: each
 * batch's gathering, then the round's parts as job_create_round sets it):
 * the job read fresh (jobs_get), planned (job_retry_plan: -EBUSY), its
 * requests without a success gathered into a scratch file of the cache
 * directory (unlinked at once: memory bounded by the longest line and a
 * batch's results index, whatever the job's size), then made round
 * plan.round by job_create_round (a new round: the batch listing read
 * fresh right before, and a round found made by another mount is -EEXIST,
 * nothing sent; a round that stopped: its missing parts). Returns 0 with
 * "round R made: N requests in P batches" (or "round R finished: ...,
 * M made now") or "nothing to retry" (nothing
 * sent) in msg (msglen bytes), or -errno with the reason in msg: -ENOENT
 * (no such job), -EBUSY, -EEXIST, -EDQUOT (no room: nothing sent), the
 * failure of a download, an upload or a creation (the parts made before
 * it stay: a retry finishes the round). A round made, or one planned that
 * failed (but -EEXIST), adds its line to MOUNT/events
 * ({"kind":"round","job":name,"round":R,"batches":N}, or "error" in place
 * of "batches"); nothing to retry, none.
 */
int job_retry(const struct job_retry *jr, struct op *op, const char *name,
	      char *msg, size_t msglen);

#endif
