/*
 * job_auto.h - `-o retry_rounds=N`: a job whose batches have all ended and
 * that still has requests without a success gets up to N retry rounds
 * (job_retry.h) by itself, one at a time, each logged. The count is the
 * rounds in the job's metadata (kimifs_retry), so a remount does not start
 * over and a job already at N gets none.
 *
 * One thread of its own, so no FUSE request waits on a round. It sends no
 * request of its own while nothing changes: once a second it compares the
 * batch store's change stamp (store_changes) with the last one it saw, and
 * only when the mount has learned something (a listing, a read, the poll
 * of a wait) looks at the jobs of the kept listing and their stored copies
 * (jobs_names_kept, jobs_get_kept). A job due a round is read fresh and
 * made its round by job_retry, whose fresh listing right before creating
 * keeps two mounts from making the same round (what remains: two mounts
 * that both pass that listing before either's first part is made; see
 * docs/filesystem.md). A try that made nothing (nothing to retry, a round
 * found made) is not tried again until the job changes; one that failed
 * (the server, the account's room), not for a minute unless it changes.
 */
#ifndef KIMIFS_JOB_AUTO_H
#define KIMIFS_JOB_AUTO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "store_tick.h"

struct job;
struct job_ctl;
struct job_retry;
struct jobs;
struct store;

struct job_tried; /* job_auto.c */

struct job_auto {
	const struct job_retry *retry; /* the rounds */
	struct job_ctl *makers;	       /* the claims of jobs' parts */
	struct jobs *jobs;	       /* the jobs the mount knows */
	unsigned rounds;	       /* -o retry_rounds */
	double timeout;		       /* -o timeout: a round's first step */
	struct store_tick tick;	       /* the thread that looks */
	pthread_mutex_t lock;	       /* guards stop, op and tried */
	int stop;
	struct op op; /* the round under way: interrupted at stop */
	/* Under lock (job_auto_due reads them): */
	struct job_tried *tried; /* tries that made nothing, by job */
	size_t ntried;
};

/*
 * Start the thread of a over what it uses (none owned; all outlive
 * job_auto_stop; each round is claimed in makers, job_ctl_claim, so that
 * a cp, a resume or a retry of the job in this mount is not at work on it
 * at the same time), for rounds (-o retry_rounds; 0: no thread) and
 * timeout. 0, or -errno (nothing started; logged).
 */
int job_auto_start(struct job_auto *a, const struct job_retry *retry,
		   struct job_ctl *makers, struct jobs *jobs,
		   struct store *store, unsigned rounds, double timeout);

/*
 * Whether a (NULL: none) will make a round of j by itself: every batch of
 * j ended, a request is without a success, the round is within
 * -o retry_rounds, and no try of j as it is now made nothing or failed.
 * A job's wait waits for that round too. No request.
 */
int job_auto_due(struct job_auto *a, const struct job *j);

/* Stop the thread, interrupting a round under way (its parts made stay: a
 * later retry finishes the round), and free what it holds. Safe after a
 * failed start or none. */
void job_auto_stop(struct job_auto *a);

#endif
