/*
 * store_jobs.c - the jobs found in the batch listing (store_jobs.h): a map
 * of the listed batch ids to their jobs, filled as ids are first listed,
 * and the snapshots of jobs made from their batches' stored copies.
 */
#include "store_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_batches.h"
#include "util.h"

void jobs_init(struct jobs *j, struct batches *batches)
{
	memset(j, 0, sizeof(*j));
	j->batches = batches;
	pthread_mutex_init(&j->lock, NULL);
}

void jobs_destroy(struct jobs *j)
{
	for (size_t i = 0; i < j->cap; i++) {
		free(j->slots[i].id);
		free(j->slots[i].job);
	}
	free(j->slots);
	pthread_mutex_destroy(&j->lock);
}

/* The slot of id in the map (its id NULL when id is not there). Under
 * the lock; the map has a free slot. */
static struct jobs_slot *slot_of(struct jobs *j, const char *id)
{
	size_t i = util_hash(id) & (j->cap - 1);

	while (j->slots[i].id && strcmp(j->slots[i].id, id) != 0)
		i = (i + 1) & (j->cap - 1);
	return &j->slots[i];
}

/* Room in the map for one more id (load under a half). Under the lock.
 * 0 or -ENOMEM. */
static int grow(struct jobs *j)
{
	struct jobs_slot *old = j->slots;
	size_t cap = j->cap;

	if ((j->n + 1) * 2 <= j->cap)
		return 0;
	j->cap = cap ? cap * 2 : 64;
	j->slots = calloc(j->cap, sizeof(*j->slots));
	if (!j->slots) {
		j->slots = old;
		j->cap = cap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		if (old[i].id)
			*slot_of(j, old[i].id) = old[i];
	free(old);
	return 0;
}

/*
 * The job of listed batch id, read from its stored copy when first seen:
 * into name (JOB_NAME_MAX + 1 bytes, "" for none). 0, or -errno when its
 * copy cannot be had now (it is then tried again at the next listing).
 */
static int job_of(struct jobs *j, struct op *op, const char *id, char *name)
{
	struct job_tag t;
	struct batch *b;
	struct jobs_slot *s;
	char why[256];
	int r, known;

	pthread_mutex_lock(&j->lock);
	s = j->cap ? slot_of(j, id) : NULL;
	known = s && s->id;
	if (known)
		snprintf(name, JOB_NAME_MAX + 1, "%s", s->job ? s->job : "");
	pthread_mutex_unlock(&j->lock);
	if (known)
		return 0;
	r = batches_get(j->batches, op, id, STORE_ANY, &b, NULL);
	if (r < 0)
		return r;
	name[0] = '\0';
	if (b->tagged) {
		r = job_tag_of(b, &t, why, sizeof(why));
		if (r == -EINVAL)
			log_warn("batch %s: in no job: %s", id, why);
		if (r == 1)
			memcpy(name, t.job, sizeof(t.job));
	}
	batch_unref(b);
	if (r == -ENOMEM)
		return r;
	pthread_mutex_lock(&j->lock);
	r = grow(j);
	if (r == 0 && !(s = slot_of(j, id))->id) {
		s->id = strdup(id);
		s->job = name[0] ? strdup(name) : NULL;
		if (!s->id || (name[0] && !s->job)) {
			free(s->id);
			free(s->job);
			s->id = s->job = NULL;
			r = -ENOMEM;
		} else {
			j->n++;
		}
	}
	pthread_mutex_unlock(&j->lock);
	return r;
}

/* A job name and where it was first listed. */
struct seen {
	char *name;
	size_t at;
};

static int by_name(const void *pa, const void *pb)
{
	const struct seen *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : (a->at < b->at ? -1 : a->at > b->at);
}

static int by_at(const void *pa, const void *pb)
{
	const struct seen *a = pa, *b = pb;

	return a->at < b->at ? -1 : a->at > b->at;
}

int jobs_names(struct jobs *j, struct op *op, char ***names, size_t *n)
{
	char **ids = NULL, name[JOB_NAME_MAX + 1];
	struct seen *seen = NULL;
	size_t nids = 0, ns = 0, out = 0;
	int r = batches_list(j->batches, op, &ids, &nids);

	*names = NULL;
	*n = 0;
	if (r < 0)
		return r;
	seen = calloc(nids + 1, sizeof(*seen));
	if (!seen) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nids; i++) {
		int e = job_of(j, op, ids[i], name);

		if (e == -ENOMEM || e == -EINTR || e == -ETIMEDOUT) {
			r = e;
			goto out;
		}
		if (e < 0 || !name[0])
			continue;
		seen[ns].at = i;
		if (!(seen[ns++].name = strdup(name))) {
			r = -ENOMEM;
			goto out;
		}
	}
	/* Each name once, where its newest batch was listed. */
	qsort(seen, ns, sizeof(*seen), by_name);
	for (size_t i = 0; i < ns; i++) {
		if (out && strcmp(seen[out - 1].name, seen[i].name) == 0) {
			free(seen[i].name);
			continue;
		}
		seen[out++] = seen[i];
	}
	ns = out;
	qsort(seen, ns, sizeof(*seen), by_at);
	*names = malloc((ns + 1) * sizeof(**names));
	if (!*names) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ns; i++) {
		(*names)[i] = seen[i].name;
		seen[i].name = NULL;
	}
	*n = ns;
out:
	for (size_t i = 0; seen && i < ns; i++)
		free(seen[i].name);
	free(seen);
	listing_free_ids(ids, nids);
	return r;
}

/* The listed ids of job name into *mine (borrowed from ids). 0 or
 * -errno. */
static int ids_of(struct jobs *j, struct op *op, const char *name, char **ids,
		  size_t nids, const char ***mine, size_t *n)
{
	char job[JOB_NAME_MAX + 1];

	*n = 0;
	*mine = malloc((nids + 1) * sizeof(**mine));
	if (!*mine)
		return -ENOMEM;
	for (size_t i = 0; i < nids; i++) {
		int r = job_of(j, op, ids[i], job);

		if (r == -ENOMEM || r == -EINTR || r == -ETIMEDOUT)
			return r;
		if (r == 0 && strcmp(job, name) == 0)
			(*mine)[(*n)++] = ids[i];
	}
	return 0;
}

int jobs_get(struct jobs *j, struct op *op, const char *name,
	     enum store_mode mode, struct job **out, struct api_error *err)
{
	char **ids = NULL, why[256];
	const char **mine = NULL;
	struct batch **bs = NULL;
	struct job_tag *ts = NULL;
	size_t nids = 0, n = 0, got = 0;
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!job_name_valid(name))
		return -ENOENT;
	r = batches_list(j->batches, op, &ids, &nids);
	if (r == 0)
		r = ids_of(j, op, name, ids, nids, &mine, &n);
	if (r < 0)
		goto out;
	if (n == 0) {
		r = -ENOENT;
		goto out;
	}
	bs = calloc(n, sizeof(*bs));
	ts = calloc(n, sizeof(*ts));
	if (!bs || !ts) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = batches_get(j->batches, op, mine[i], mode, &bs[got], err);
		if (r == -ENOENT)
			continue; /* gone since the listing */
		if (r < 0)
			goto out;
		if (job_tag_of(bs[got], &ts[got], why, sizeof(why)) == 1 &&
		    strcmp(ts[got].job, name) == 0)
			got++;
		else
			batch_unref(bs[got]);
	}
	r = job_make(name, bs, ts, got, out);
out:
	for (size_t i = 0; bs && i < got; i++)
		batch_unref(bs[i]);
	free(bs);
	free(ts);
	free(mine);
	listing_free_ids(ids, nids);
	return r;
}
