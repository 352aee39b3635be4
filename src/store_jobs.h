/*
 * store_jobs.h - the jobs, found in the batch listing: a batch whose
 * metadata carries kimifs_job (job_tag.h) belongs to the job of that name,
 * so every mount of the account, on any machine or after a restart, shows
 * the same jobs. No request of its own: the names come from batches/'
 * listing and the stored copies of its batches (struct batches), a job's
 * snapshot (job.h) from its batches' copies in the mode asked.
 */
#ifndef KIMIFS_STORE_JOBS_H
#define KIMIFS_STORE_JOBS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api_error.h"
#include "job.h"
#include "store.h"

struct batches;
struct op;

/* One listed batch id and the job it is in (NULL: none). */
struct jobs_slot {
	char *id;
	char *job;
};

struct jobs_index; /* store_jobs.c */

struct jobs {
	struct batches *batches;
	pthread_mutex_t lock; /* guards the fields below */
	/* Each listed batch id seen so far and its job: a batch's keys never
	 * change, so each is read once (open addressing, by util_hash). */
	struct jobs_slot *slots;
	size_t cap, n;
	/* The jobs of the listing of version `version` (listing.h): their
	 * names and each one's ids, made again only when the listing
	 * changed. */
	struct jobs_index *index;
	uint64_t version;
};

/* Set up over batches (the mount's store and listing of batches). */
void jobs_init(struct jobs *j, struct batches *batches);
void jobs_destroy(struct jobs *j);

/*
 * The names of the jobs (batches_list: the listing, young or fetched
 * again), newest first (by their newest batch), each once: 0 with a
 * malloc'd array of malloc'd names (listing_free_ids), or the -errno of
 * the listing, -ENOMEM. Only batches with a kimifs key (struct batch's
 * tagged) are looked at; one whose keys are malformed is in no job, logged
 * once with the reason.
 */
int jobs_names(struct jobs *j, struct op *op, char ***names, size_t *n);

/*
 * The snapshot of job name: its listed batches read in mode (batches_get:
 * a STORE_FRESH read brings running batches up to date through one
 * listing refresh shared by all of them), made a job (job_make). 0 with
 * a reference in *out; -ENOENT when no listed batch has the name (no
 * request beyond the listing); another -errno with the reason in err
 * (may be NULL) when a batch cannot be read.
 */
int jobs_get(struct jobs *j, struct op *op, const char *name,
	     enum store_mode mode, struct job **out, struct api_error *err);

/*
 * jobs_names and jobs_get (in STORE_ANY mode) over the kept listing,
 * whatever its age, never fetched (-ENODATA when there is none yet): what
 * the mount has learned, at no request (but a batch whose copy was
 * dropped, fetched again). For a watcher such as job_auto.h.
 */
int jobs_names_kept(struct jobs *j, char ***names, size_t *n);
int jobs_get_kept(struct jobs *j, const char *name, struct job **out);

#endif
