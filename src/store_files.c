/*
 * store_files.c - the store and listing of files (file_kind from the API,
 * store_api); the typed wrappers the tree calls; files/by-name/ derived
 * from the listing; the ids deleted through ctl, which are gone at once.
 */
#include "store_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_object.h"
int files_init(struct files *f, struct api *api, double ttl, double timeout,
	       unsigned page_size)
{
	int r = store_api_init(&f->store, &f->listing, &file_kind, api, ttl,
			       timeout, page_size);

	if (r < 0)
		return r;
	pthread_mutex_init(&f->lock, NULL);
	f->deleted = NULL;
	f->ndeleted = 0;
	return 0;
}

void files_destroy(struct files *f)
{
	store_api_destroy(&f->store, &f->listing);
	listing_free_ids(f->deleted, f->ndeleted);
	pthread_mutex_destroy(&f->lock);
}

static int is_deleted(struct files *f, const char *id)
{
	int yes = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; !yes && i < f->ndeleted; i++)
		yes = strcmp(f->deleted[i], id) == 0;
	pthread_mutex_unlock(&f->lock);
	return yes;
}

int files_forget(struct files *f, const char *id)
{
	char **d;
	char *copy = strdup(id);
	int r = -ENOMEM;

	if (!copy)
		return r;
	pthread_mutex_lock(&f->lock);
	d = realloc(f->deleted, (f->ndeleted + 1) * sizeof(*d));
	if (d) {
		f->deleted = d;
		f->deleted[f->ndeleted++] = copy;
		copy = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&f->lock);
	free(copy);
	return r;
}

int files_get(struct files *f, struct op *op, const char *id,
	      enum store_mode mode, struct file **out, struct api_error *err)
{
	void *obj = NULL;
	int r;

	*out = NULL;
	if (is_deleted(f, id))
		return -ENOENT;
	/* An id never seen (a batch's output.jsonl followed before files/
	 * was listed): the listing brings it and every other file in one
	 * request, where `cat batches/x/output.jsonl` would cost a retrieve
	 * each. A failed listing leaves it to the retrieve. */
	if (mode != STORE_FORCE && store_changes(&f->store, id) == 0) {
		char **ids;
		size_t n;

		if (listing_get(&f->listing, op, &ids, &n) == 0)
			listing_free_ids(ids, n);
	}
	r = store_get(&f->store, op, id, mode, &obj, err);
	*out = obj;
	return r;
}

int files_list(struct files *f, struct op *op, char ***ids, size_t *n)
{
	size_t kept = 0;
	int r = listing_get(&f->listing, op, ids, n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < *n; i++) {
		if (is_deleted(f, (*ids)[i]))
			free((*ids)[i]);
		else
			(*ids)[kept++] = (*ids)[i];
	}
	*n = kept;
	return 0;
}

/* The listed files' objects, as the listing left them in the store (no
 * request: STORE_ANY), in listing order; files gone meanwhile are left
 * out. Free with release_objects. */
static int listed_objects(struct files *f, struct op *op, struct file ***out,
			  size_t *nout)
{
	char **ids;
	size_t n, k = 0;
	struct file **objs;
	int r = files_list(f, op, &ids, &n);

	if (r < 0)
		return r;
	objs = calloc(n + 1, sizeof(*objs));
	if (!objs) {
		listing_free_ids(ids, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (files_get(f, op, ids[i], STORE_ANY, &objs[k], NULL) == 0)
			k++;
	listing_free_ids(ids, n);
	*out = objs;
	*nout = k;
	return 0;
}

static void release_objects(struct file **objs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		file_unref(objs[i]);
	free(objs);
}

int files_by_name(struct files *f, struct op *op, const char *name, char **id)
{
	struct file **objs, *best = NULL;
	size_t n;
	int r = listed_objects(f, op, &objs, &n);

	*id = NULL;
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (strcmp(objs[i]->filename, name) == 0 &&
		    (!best || objs[i]->created_at > best->created_at))
			best = objs[i];
	r = -ENOENT;
	if (best) {
		*id = strdup(best->id);
		r = *id ? 0 : -ENOMEM;
	}
	release_objects(objs, n);
	return r;
}

int files_names(struct files *f, struct op *op, char ***names, size_t *n)
{
	struct file **objs;
	size_t nobj, k = 0;
	char **out;
	int r = listed_objects(f, op, &objs, &nobj);

	if (r < 0)
		return r;
	out = calloc(nobj + 1, sizeof(*out));
	r = out ? 0 : -ENOMEM;
	/* Quadratic in the worst case; an account holds at most 1000
	 * files. */
	for (size_t i = 0; r == 0 && i < nobj; i++) {
		size_t j;

		if (!batch_name_safe(objs[i]->filename))
			continue;
		for (j = 0; j < k; j++)
			if (strcmp(out[j], objs[i]->filename) == 0)
				break;
		if (j < k)
			continue;
		out[k] = strdup(objs[i]->filename);
		if (!out[k])
			r = -ENOMEM;
		else
			k++;
	}
	release_objects(objs, nobj);
	if (r < 0) {
		listing_free_ids(out, k);
		return r;
	}
	*names = out;
	*n = k;
	return 0;
}
