/*
 * job_auto.c - the automatic retry rounds of -o retry_rounds (job_auto.h):
 * a look at the jobs when the batch store changed (store_tick.h) that
 * makes the rounds that are due.
 */
#include "job_auto.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "job_ctl.h"
#include "job_retry.h"
#include "listing.h"
#include "log.h"
#include "store.h"
#include "store_jobs.h"
#include "store_tick.h"
#include "util.h"
/* Seconds before a job whose round failed (the server, the account's
 * room) is tried again though it did not change, at a look. */
#define AGAIN_AFTER 60.0

/* A job whose try made nothing, what it looked like then, and when it
 * may be tried again as it is (INFINITY: not). */
struct job_tried {
	char *name;
	size_t nbatches;
	int64_t mtime;
	double again;
};

/* Whether j is due a round of a: every batch ended, a request without a
 * success, and its next round (or the round that stopped halfway) within
 * a->rounds. */
static int due(const struct job_auto *a, const struct job *j,
	       struct job_retry_plan *plan)
{
	char why[128];

	return strcmp(j->status, "completed") != 0 &&
	       job_retry_plan(j, plan, why, sizeof(why)) == 0 &&
	       plan->round <= a->rounds;
}

/* The try of job name remembered, or NULL. */
static struct job_tried *tried_of(struct job_auto *a, const char *name)
{
	for (size_t i = 0; i < a->ntried; i++)
		if (strcmp(a->tried[i].name, name) == 0)
			return &a->tried[i];
	return NULL;
}

/* Remember that a try of j made nothing, to be tried again as it is after
 * `after` seconds (unless memory runs out: then at the next look); a->lock
 * held. */
static void remember(struct job_auto *a, const struct job *j, double after)
{
	struct job_tried *t = tried_of(a, j->name), *grown;

	if (!t) {
		grown = realloc(a->tried, (a->ntried + 1) * sizeof(*grown));
		if (!grown)
			return;
		a->tried = grown;
		t = &a->tried[a->ntried];
		if (!(t->name = strdup(j->name)))
			return;
		a->ntried++;
	}
	t->nbatches = j->nbatches;
	t->mtime = j->mtime;
	t->again = util_now() + after;
}

/* Whether a try of j as it is now made nothing already, and is not to be
 * made again yet (a->lock held). */
static int tried_already(struct job_auto *a, const struct job *j)
{
	const struct job_tried *t = tried_of(a, j->name);

	return t && t->nbatches == j->nbatches && t->mtime == j->mtime &&
	       util_now() < t->again;
}

/* tried_already, under a->lock. */
static int job_tried(struct job_auto *a, const struct job *j)
{
	int tried;

	pthread_mutex_lock(&a->lock);
	tried = tried_already(a, j);
	pthread_mutex_unlock(&a->lock);
	return tried;
}

int job_auto_due(struct job_auto *a, const struct job *j)
{
	struct job_retry_plan plan;

	return a && a->tick.started && !j->running && due(a, j, &plan) &&
	       !job_tried(a, j);
}

/* Make the round j is due (plan), unless a is stopping; log it. */
static void make(struct job_auto *a, const struct job *j,
		 const struct job_retry_plan *plan)
{
	char msg[1024];
	int r;

	pthread_mutex_lock(&a->lock);
	if (a->stop) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	op_start(&a->op, a->timeout);
	pthread_mutex_unlock(&a->lock);
	/* Another maker at work on it: the next look sees what it made. */
	if (job_ctl_claim(a->makers, j->name) < 0)
		return;
	log_info("job %s: %s retry round %u of %u by itself (-o "
		 "retry_rounds)",
		 j->name, plan->finish ? "finishing" : "making", plan->round,
		 a->rounds);
	r = job_retry(a->retry, &a->op, j->name, msg, sizeof(msg));
	job_ctl_release(a->makers, j->name);
	if (r == 0)
		log_info("job %s: %s", j->name, msg);
	else if (r == -EEXIST || r == -EBUSY)
		log_info("job %s: no round by itself: %s", j->name, msg);
	else
		log_err("job %s: retry round %u by itself failed: %s", j->name,
			plan->round, msg);
	/* What cannot change while the job does not is not tried again;
	 * a failure, after a while. */
	pthread_mutex_lock(&a->lock);
	if (r == -EEXIST || r == -EBUSY ||
	    (r == 0 && strcmp(msg, "nothing to retry") == 0))
		remember(a, j, INFINITY);
	else if (r < 0)
		remember(a, j, AGAIN_AFTER);
	pthread_mutex_unlock(&a->lock);
}

/* Look at every job of the kept listing once (a store_tick look). */
static int look(void *arg)
{
	struct job_auto *a = arg;
	char **names = NULL;
	size_t n = 0;

	if (jobs_names_kept(a->jobs, &names, &n) < 0)
		return 0; /* at the next change */
	for (size_t i = 0; i < n && !store_tick_stopping(&a->tick); i++) {
		struct job_retry_plan plan;
		struct job *j = NULL;

		if (jobs_get_kept(a->jobs, names[i], &j) == 0 &&
		    due(a, j, &plan) && !job_tried(a, j))
			make(a, j, &plan);
		job_unref(j);
	}
	listing_free_ids(names, n);
	return 0;
}

int job_auto_start(struct job_auto *a, const struct job_retry *retry,
		   struct job_ctl *makers, struct jobs *jobs,
		   struct store *store, unsigned rounds, double timeout)
{
	int r;

	memset(a, 0, sizeof(*a));
	if (rounds == 0)
		return 0;
	a->retry = retry;
	a->makers = makers;
	a->jobs = jobs;
	a->rounds = rounds;
	a->timeout = timeout;
	pthread_mutex_init(&a->lock, NULL);
	r = store_tick_start(&a->tick, store, look, a);
	if (r < 0) {
		log_err("-o retry_rounds: no thread for the rounds: %s",
			strerror(-r));
		pthread_mutex_destroy(&a->lock);
	}
	return r;
}

void job_auto_stop(struct job_auto *a)
{
	if (!a->tick.started)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = 1;
	op_interrupt(&a->op);
	pthread_mutex_unlock(&a->lock);
	store_tick_stop(&a->tick);
	for (size_t i = 0; i < a->ntried; i++)
		free(a->tried[i].name);
	free(a->tried);
	pthread_mutex_destroy(&a->lock);
}
