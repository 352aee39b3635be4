/*
 * job_watch.h - the job lines of MOUNT/events: a job's status is derived
 * from its batches (job.h), so nothing tells when it changes; this watch
 * notices, with no request of its own. Its thread (store_tick.h) looks,
 * once a second when the batch store changed, at every job of the kept
 * listing and its stored copies (jobs_names_kept, jobs_get_kept) and adds
 * a line for each job whose status differs from the last one seen:
 *
 *   {"kind":"job","name":"q","status":"completed","was":"in_progress"}
 *
 * (no "was" for a job first seen after the first look). The first look
 * records the jobs the mount finds without a line, so a mount starts with
 * no flood. A line comes at most about a second after the batch line that
 * changed the job.
 *
 * A thread of its own rather than job_auto's look (job_auto.h): a round
 * made there holds its thread for as long as its uploads and creations
 * take, and job lines must not wait for it; this one runs on every mount,
 * job_auto's only with -o retry_rounds.
 */
#ifndef KIMIFS_JOB_WATCH_H
#define KIMIFS_JOB_WATCH_H

#include <stddef.h>

#include "store_tick.h"

struct jobs;
struct store;

struct job_seen; /* job_watch.c */

struct job_watch {
	struct jobs *jobs;	/* the jobs the mount knows */
	struct store_tick tick; /* the thread that looks */
	/* The looking thread's own: */
	int looked;		/* the first look was made */
	struct job_seen *known; /* each job's last status, by name */
	size_t nknown;
};

/* Set up w over jobs (not owned; it outlives w), with no thread:
 * job_watch_look looks. */
void job_watch_init(struct job_watch *w, struct jobs *jobs);

/*
 * Look once: every job of the kept listing, a line for each whose status
 * changed (none at the first look). 0, or -errno when the jobs cannot be
 * listed (-ENODATA: no listing yet; that look is not the first).
 * Called by one thread at a time.
 */
int job_watch_look(struct job_watch *w);

/* Start w's thread (after job_watch_init) over store, whose change stamp
 * says when to look (the batches'; it outlives the thread): 0, or -errno
 * (logged; no job lines then). */
int job_watch_start(struct job_watch *w, struct store *store);

/* Stop the thread (when started) and free what w holds. */
void job_watch_stop(struct job_watch *w);

#endif
