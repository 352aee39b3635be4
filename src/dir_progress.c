/*
 * dir_progress.c - MOUNT/progress: the progress line (progress.h) of every
 * running job and of every running batch in no job, for watch(1):
 *
 *   job    questions  [#######.....] 58%  5,812/10,000 done, ...
 *   batch  batch_abc  [##..........] 17%  170/1,000 done, ...
 *
 * A batch of a job has no line of its own: its job's line counts it.
 * Sorted by the estimate of time left, those without one last, then by
 * name; "nothing running" when nothing runs. Made from batches/' listing
 * (young, or fetched again; a stat takes the kept one) and its batches'
 * copies: no request per batch.
 * Memory: the listing's ids, and one entry (about 80 bytes) per running
 * line; at most PROGRESS_ROOT_MAX lines are shown, then how many more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job_tag.h"
#include "listing.h"
#include "progress.h"
#include "store_batches.h"
#include "store_jobs.h"
#include "tree.h"

#define PROGRESS_ROOT_MAX 1000 /* lines shown */

/* One running job or loose batch. */
struct entry {
	const char *what; /* "job", "batch" */
	char *name;
	struct progress p;
	double left; /* progress_left */
};

struct entries {
	struct entry *e;
	size_t n, cap;
};

static void entries_free(struct entries *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
}

/* Append what name with p to l; 0 or -ENOMEM. */
static int entries_add(struct entries *l, const char *what, const char *name,
		       const struct progress *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct entry *e = realloc(l->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	l->e[l->n].name = strdup(name);
	if (!l->e[l->n].name)
		return -ENOMEM;
	l->e[l->n].what = what;
	l->e[l->n].p = *p;
	l->e[l->n].left = progress_left(p);
	l->n++;
	return 0;
}

/* What ends first first; no estimate last; then by name, then kind. */
static int by_left(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c;

	if ((a->left < 0) != (b->left < 0))
		return a->left < 0 ? 1 : -1;
	if (a->left != b->left && a->left >= 0)
		return a->left < b->left ? -1 : 1;
	c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->what, b->what);
}

static int by_name(const void *pa, const void *pb)
{
	return strcmp(*(char *const *)pa, *(char *const *)pb);
}

/* The running job called name into l (nothing if it runs no more). */
static int add_job(struct tree *tree, const char *name, double now,
		   struct entries *l)
{
	struct job *j;
	struct progress p;
	int r = jobs_get_kept(tree->jobs, name, &j);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	p = (struct progress){
	    .total = j->total,
	    .done = j->completed + j->failed,
	    .failed = j->failed,
	    .batches = (unsigned)j->nbatches,
	    .running = j->running,
	    .started = (double)j->created_at,
	    .now = now,
	};
	r = j->running ? entries_add(l, "job", name, &p) : 0;
	job_unref(j);
	return r;
}

/* Listed batch id into l when it runs and is in no job, else its job's
 * name into jobs (*njobs of them, room for every id) when it runs. */
static int add_batch(struct tree *tree, struct op *op, const char *id,
		     double now, struct entries *l, char **jobs, size_t *njobs)
{
	struct batch *b;
	struct job_tag t;
	char why[256];
	struct progress p = {.batches = 1, .running = 1, .now = now};
	uint64_t c[3];
	int r = batches_get(tree->batches, op, id, STORE_ANY, &b, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (b->final)
		goto out;
	if (b->tagged && job_tag_of(b, &t, why, sizeof(why)) == 1) {
		jobs[*njobs] = strdup(t.job);
		r = jobs[*njobs] ? 0 : -ENOMEM;
		*njobs += r == 0;
		goto out;
	}
	r = batch_counts(b, c);
	if (r < 0)
		goto out;
	p.total = c[0];
	p.done = c[1] + c[2];
	p.failed = c[2];
	p.started = (double)b->created_at;
	r = entries_add(l, "batch", id, &p);
out:
	batch_unref(b);
	return r;
}

/* The running jobs and loose batches of the listing ids[0..n) into l. */
static int gather(struct tree *tree, struct op *op, char **ids, size_t n,
		  struct entries *l)
{
	char **jobs = calloc(n + 1, sizeof(*jobs));
	size_t njobs = 0;
	double now = (double)time(NULL);
	int r = jobs ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < n; i++)
		r = add_batch(tree, op, ids[i], now, l, jobs, &njobs);
	if (r == 0)
		qsort(jobs, njobs, sizeof(*jobs), by_name);
	for (size_t i = 0; r == 0 && i < njobs; i++)
		if (i == 0 || strcmp(jobs[i - 1], jobs[i]) != 0)
			r = add_job(tree, jobs[i], now, l);
	for (size_t i = 0; jobs && i < njobs; i++)
		free(jobs[i]);
	free(jobs);
	return r;
}

/* The text of l, sorted, into a malloc'd *out of *len bytes. */
static int render(struct entries *l, char **out, size_t *len)
{
	size_t shown = l->n < PROGRESS_ROOT_MAX ? l->n : PROGRESS_ROOT_MAX;
	size_t width = 0, cap, o = 0;
	char line[PROGRESS_LINE_MAX];
	char *s;

	if (l->n)
		qsort(l->e, l->n, sizeof(*l->e), by_left);
	for (size_t i = 0; i < shown; i++)
		if (strlen(l->e[i].name) > width)
			width = strlen(l->e[i].name);
	cap = shown * (width + PROGRESS_LINE_MAX + 16) + 64;
	s = malloc(cap);
	if (!s)
		return -ENOMEM;
	if (l->n == 0)
		o = (size_t)snprintf(s, cap, "nothing running\n");
	for (size_t i = 0; i < shown; i++) {
		progress_line(&l->e[i].p, line, sizeof(line));
		o += (size_t)snprintf(s + o, cap - o, "%-5s  %-*s  %s",
				      l->e[i].what, (int)width, l->e[i].name,
				      line);
	}
	if (l->n > shown)
		o += (size_t)snprintf(s + o, cap - o, "and %zu more running\n",
				      l->n - shown);
	*out = s;
	*len = o;
	return 0;
}

static int progress_view(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	struct entries l = {0};
	char **ids = NULL;
	size_t nids = 0;
	int r;

	(void)n;
	/* A lookup or a stat (STORE_ANY) takes the kept listing: only an
	 * open brings it up to date, as ls batches/ would. */
	r = mode == STORE_ANY ? batches_list_kept(tree->batches, &ids, &nids)
			      : -ENODATA;
	if (r == -ENODATA)
		r = batches_list(tree->batches, op, &ids, &nids);
	if (r < 0)
		return r;
	r = gather(tree, op, ids, nids, &l);
	if (r == 0)
		r = render(&l, &v->owned, &v->len);
	entries_free(&l);
	listing_free_ids(ids, nids);
	v->data = v->owned;
	v->mtime = time(NULL);
	return r;
}

const struct node_type type_progress = {
    .what = "progress",
    .mode = S_IFREG | 0444,
    .view = progress_view,
    .open_ops = &tree_view_ops,
};
