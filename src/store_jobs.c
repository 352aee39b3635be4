/*
 * store_jobs.c - the jobs found in the batch listing (store_jobs.h): a map
 * of the listed batch ids to their jobs, filled as ids are first listed;
 * an index of the jobs' names and ids, made again only when the listing
 * changed; and the snapshots of jobs made from their batches' copies.
 */
#include "store_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "log.h"
#include "store_batches.h"
#include "util.h"

/* One listed batch of a job. */
struct jobs_entry {
	char *job;
	char *id;
	size_t at; /* its place in the listing, newest first */
};

/* The jobs of one listing: entries by job then place, the names in the
 * order of their newest batch (borrowed from entries). */
struct jobs_index {
	struct jobs_entry *entries;
	size_t n;
	const char **names;
	size_t nnames;
};

static void index_free(struct jobs_index *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n; i++) {
		free(x->entries[i].job);
		free(x->entries[i].id);
	}
	free(x->entries);
	free(x->names);
	free(x);
}

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
	index_free(j->index);
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

static int by_job(const void *pa, const void *pb)
{
	const struct jobs_entry *a = pa, *b = pb;
	int c = strcmp(a->job, b->job);

	return c ? c : (a->at < b->at ? -1 : a->at > b->at);
}

static int by_place(const void *pa, const void *pb)
{
	const struct jobs_entry *a = *(const struct jobs_entry *const *)pa;
	const struct jobs_entry *b = *(const struct jobs_entry *const *)pb;

	return a->at < b->at ? -1 : a->at > b->at;
}

/* The names of x from its entries: the first of each job's run is its
 * newest batch. 0 or -ENOMEM. */
static int index_names(struct jobs_index *x)
{
	const struct jobs_entry **first = malloc((x->n + 1) * sizeof(*first));
	size_t n = 0;

	x->names = malloc((x->n + 1) * sizeof(*x->names));
	if (!first || !x->names) {
		free(first);
		return -ENOMEM;
	}
	for (size_t i = 0; i < x->n; i++)
		if (i == 0 || strcmp(x->entries[i - 1].job, x->entries[i].job))
			first[n++] = &x->entries[i];
	qsort(first, n, sizeof(*first), by_place);
	for (size_t i = 0; i < n; i++)
		x->names[i] = first[i]->job;
	x->nnames = n;
	free(first);
	return 0;
}

/* The index of the listed ids (n of them): 0 with *out, or -errno (an
 * interrupted or timed-out read of a batch, -ENOMEM). A batch whose copy
 * cannot be had now is left out. */
static int index_make(struct jobs *j, struct op *op, char **ids, size_t n,
		      struct jobs_index **out)
{
	struct jobs_index *x = calloc(1, sizeof(*x));
	char name[JOB_NAME_MAX + 1];
	int r = 0;

	*out = NULL;
	if (!x || !(x->entries = calloc(n + 1, sizeof(*x->entries)))) {
		free(x);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct jobs_entry *e = &x->entries[x->n];
		int e_r = job_of(j, op, ids[i], name);

		if (e_r == -ENOMEM || e_r == -EINTR || e_r == -ETIMEDOUT) {
			r = e_r;
			break;
		}
		if (e_r < 0 || !name[0])
			continue;
		e->job = strdup(name);
		e->id = strdup(ids[i]);
		e->at = i;
		x->n++;
		if (!e->job || !e->id) {
			r = -ENOMEM;
			break;
		}
	}
	if (r == 0) {
		qsort(x->entries, x->n, sizeof(*x->entries), by_job);
		r = index_names(x);
	}
	if (r < 0) {
		index_free(x);
		return r;
	}
	*out = x;
	return 0;
}

/*
 * Bring j's index up to the listing (listing_get_since: the listing young,
 * or fetched again; with kept, the kept listing whatever its age, never
 * fetched), made again only when the listing changed. Returns 0 with
 * j->lock held (the index then is the listing's), or -errno without.
 */
static int index_lock(struct jobs *j, struct op *op, int kept)
{
	struct jobs_index *x = NULL;
	uint64_t version;
	char **ids = NULL;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&j->lock);
	version = j->version;
	pthread_mutex_unlock(&j->lock);
	r = kept ? listing_kept_since(&j->batches->listing, &version, &ids, &n)
		 : listing_get_since(&j->batches->listing, op, &version, &ids,
				     &n);
	if (r == 0 && ids)
		r = index_make(j, op, ids, n, &x);
	listing_free_ids(ids, n);
	if (r < 0)
		return r;
	pthread_mutex_lock(&j->lock);
	if (x && version > j->version) {
		index_free(j->index);
		j->index = x;
		j->version = version;
	} else {
		index_free(x); /* another caller made a newer one */
	}
	return 0;
}

static const char *name_at(const struct jobs_index *x, size_t i)
{
	return x->names[i];
}

static const char *id_at(const struct jobs_index *x, size_t i)
{
	return x->entries[i].id;
}

/*
 * Copies of the n strings at(x, from + i) of j's index into *out (*nout),
 * then j->lock, held by index_lock, let go. 0, or -ENOMEM with nothing in
 * *out.
 */
static int copy_unlock(struct jobs *j,
		       const char *(*at)(const struct jobs_index *, size_t),
		       size_t from, size_t n, char ***out, size_t *nout)
{
	size_t k = 0;
	int r = 0;

	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		r = -ENOMEM;
	for (; r == 0 && k < n; k++)
		if (!((*out)[k] = strdup(at(j->index, from + k))))
			r = -ENOMEM;
	pthread_mutex_unlock(&j->lock);
	if (r < 0) {
		listing_free_ids(*out, k);
		*out = NULL;
		k = 0;
	}
	*nout = k;
	return r;
}

/* jobs_names, of the kept listing with kept. */
static int names_of(struct jobs *j, struct op *op, int kept, char ***names,
		    size_t *n)
{
	int r = index_lock(j, op, kept);

	*names = NULL;
	*n = 0;
	if (r < 0)
		return r;
	return copy_unlock(j, name_at, 0, j->index ? j->index->nnames : 0,
			   names, n);
}

/* The listed ids of job name, newest first, copied into *ids (*n). 0 or
 * -errno. */
static int ids_of(struct jobs *j, struct op *op, int kept, const char *name,
		  char ***ids, size_t *n)
{
	const struct jobs_index *x;
	size_t lo = 0, hi;
	int r = index_lock(j, op, kept);

	*ids = NULL;
	*n = 0;
	if (r < 0)
		return r;
	x = j->index;
	hi = x ? x->n : 0;
	while (lo < hi) { /* the first entry of name */
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(x->entries[mid].job, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; x && hi < x->n && !strcmp(x->entries[hi].job, name);)
		hi++;
	return copy_unlock(j, id_at, lo, hi - lo, ids, n);
}

int jobs_names(struct jobs *j, struct op *op, char ***names, size_t *n)
{
	return names_of(j, op, 0, names, n);
}

int jobs_names_kept(struct jobs *j, char ***names, size_t *n)
{
	return names_of(j, NULL, 1, names, n);
}

/* jobs_get, of the kept listing with kept. */
static int get(struct jobs *j, struct op *op, const char *name,
	       enum store_mode mode, int kept, struct job **out,
	       struct api_error *err)
{
	char **ids = NULL, why[256];
	struct batch **bs = NULL;
	struct job_tag *ts = NULL;
	size_t n = 0, got = 0;
	int r;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!job_name_valid(name))
		return -ENOENT;
	r = ids_of(j, op, kept, name, &ids, &n);
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
		r = batches_get(j->batches, op, ids[i], mode, &bs[got], err);
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
	listing_free_ids(ids, n);
	return r;
}

int jobs_get(struct jobs *j, struct op *op, const char *name,
	     enum store_mode mode, struct job **out, struct api_error *err)
{
	return get(j, op, name, mode, 0, out, err);
}

int jobs_get_kept(struct jobs *j, const char *name, struct job **out)
{
	return get(j, NULL, name, STORE_ANY, 1, out, NULL);
}
