/*
 * job.h - a job as kimifs shows it under jobs/NAME/: an immutable,
 * reference-counted snapshot made from the snapshots of the batches that
 * carry its name in their metadata (job_tag.h), with what the tree needs
 * without looking at the batches again: the batches in order, the parts of
 * the first round and which exist, the rounds, the status, the request
 * counts and the times. Pure: no I/O.
 *
 * The status, while any batch is not final: the earliest stage among those
 * that run (validating < in_progress < finalizing < cancelling). Once
 * every batch is final: `incomplete` when a part of round 0 does not exist
 * (a creation that stopped halfway); else `completed` when no request is
 * left without a success; else the reason of the latest round's batches:
 * `failed` if any failed, else `expired` if any expired, else `cancelled`
 * if any cancelled, else `completed_with_failures`.
 *
 * The counts, over custom_ids, from the batches' request_counts: total is
 * the sum of round 0's totals; completed the sum of every batch's
 * completed (a retry holds only requests without a success); failed the
 * sum of the failed of the batches no later round supersedes (a job round
 * R, kimifs_retry "R", supersedes every batch of the rounds before R; a
 * batch's retry "R batch_x" supersedes batch_x); pending = total -
 * completed - failed, never below 0.
 */
#ifndef KIMIFS_JOB_H
#define KIMIFS_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "job_tag.h"

/* The longest name of a batch under jobs/NAME/batches/, with its NUL. */
#define JOB_LINK_MAX (32 + BATCH_ID_MAX)

/* One batch of a job, with its tag. */
struct job_batch {
	struct batch *batch; /* a reference */
	struct job_tag tag;
	int superseded; /* a later round retries its requests */
};

struct job {
	int refs; /* atomic; freed when it drops to zero */
	char name[JOB_NAME_MAX + 1];
	struct job_batch *batches; /* by part, round, created_at, id */
	size_t nbatches;
	unsigned parts;	    /* N of round 0's "i/N" (the largest), 0: none */
	unsigned found;	    /* parts of round 0 that exist, of parts */
	unsigned rounds;    /* the latest round + 1 */
	unsigned running;   /* batches not final */
	const char *status; /* a constant, without newline */
	uint64_t total, completed, failed, pending;
	int64_t created_at; /* the earliest batch's */
	int64_t mtime;	    /* the latest of the batches' */
};

/*
 * Make the job called name from batches b[0..n) with their tags t[0..n)
 * (job_tag_of; each t[i].job is name): 0 with one reference in *out, which
 * holds a reference of each batch, or -ENOENT when n is 0, -ENOMEM.
 * b and t are left unchanged.
 */
int job_make(const char *name, struct batch *const *b, const struct job_tag *t,
	     size_t n, struct job **out);

struct job *job_ref(struct job *j);
void job_unref(struct job *j); /* NULL is allowed */

/*
 * Mark in live[i] (j->nbatches bytes) whether batch i of j is live before
 * round `round`: of a round before it, and superseded by no round before
 * it (neither a job round after its own nor a batch retry that names it).
 * The live batches before a new round are those whose requests without a
 * success it sends again; those before UINT_MAX, the ones no round
 * supersedes. 0 or -ENOMEM.
 */
int job_live(const struct job *j, unsigned round, char *live);

/* Whether part (1..parts) of round 0 exists. */
int job_has_part(const struct job *j, unsigned part);

/*
 * The name of batch i of j under jobs/NAME/batches/, into out (size
 * bytes): part-0003 for round 0, part-0003.retry-1 for round 1, so that ls
 * sorts them by part then round; two batches of the same part and round
 * get their ids after it (part-0003.retry-1.batch_x). 0 or -ENAMETOOLONG.
 */
int job_batch_name(const struct job *j, size_t i, char *out, size_t size);

/* The index of the batch called name (job_batch_name) in j, or -ENOENT. */
int job_batch_find(const struct job *j, const char *name, size_t *i);

#endif
