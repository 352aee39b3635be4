/*
 * job_watch.c - the job lines of MOUNT/events (job_watch.h): a look at the
 * jobs when the batch store changed, and the status each job had at the
 * last look.
 */
#include "job_watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "job.h"
#include "listing.h"
#include "log.h"
#include "store_jobs.h"

/* A job's status at a look (status: a constant of job.c). */
struct job_seen {
	char *name;
	const char *status;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct job_seen *)a)->name,
		      ((const struct job_seen *)b)->name);
}

/* What w knows of job name from the last look, or NULL. */
static const struct job_seen *seen_of(const struct job_watch *w,
				      const char *name)
{
	struct job_seen key = {.name = (char *)name};

	return w->nknown ? bsearch(&key, w->known, w->nknown, sizeof(*w->known),
				   by_name)
			 : NULL;
}

static void forget(struct job_seen *known, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(known[i].name);
	free(known);
}

void job_watch_init(struct job_watch *w, struct jobs *jobs)
{
	memset(w, 0, sizeof(*w));
	w->jobs = jobs;
}

/* The line of job j when its status is not the one of was (NULL: a job
 * not seen before). */
static void tell(const struct job *j, const struct job_seen *was)
{
	if (was && strcmp(was->status, j->status) == 0)
		return;
	events_add(&(struct event){.kind = "job",
				   .name = j->name,
				   .status = j->status,
				   .was = was ? was->status : NULL});
}

int job_watch_look(struct job_watch *w)
{
	struct job_seen *now;
	char **names = NULL;
	size_t n = 0, k = 0;
	int r = jobs_names_kept(w->jobs, &names, &n);

	if (r < 0)
		return r;
	now = calloc(n ? n : 1, sizeof(*now));
	if (!now) {
		listing_free_ids(names, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct job_seen *was = seen_of(w, names[i]);
		struct job *j = NULL;

		if (jobs_get_kept(w->jobs, names[i], &j) == 0) {
			if (w->looked)
				tell(j, was);
			now[k].status = j->status;
		} else if (was) {
			now[k].status = was->status; /* as it was, for now */
		} else {
			continue; /* its batches unread: at a later look */
		}
		now[k++].name = names[i]; /* taken */
		names[i] = NULL;
		job_unref(j);
	}
	listing_free_ids(names, n);
	qsort(now, k, sizeof(*now), by_name);
	forget(w->known, w->nknown);
	w->known = now;
	w->nknown = k;
	w->looked = 1;
	return 0;
}

/* job_watch_look as a store_tick look. */
static int look(void *arg)
{
	return job_watch_look(arg);
}

int job_watch_start(struct job_watch *w, struct store *store)
{
	int r = store_tick_start(&w->tick, store, look, w);

	if (r < 0)
		log_err("MOUNT/events: no thread to watch the jobs (no job "
			"lines): %s",
			strerror(-r));
	return r;
}

void job_watch_stop(struct job_watch *w)
{
	store_tick_stop(&w->tick);
	forget(w->known, w->nknown);
	w->known = NULL;
	w->nknown = 0;
}
