/*
 * dir_job_results.c - a job's merged results: jobs/NAME/results/ (one
 * <name>.json per custom_id with a result and one <name>.txt per success
 * with an answer, named as in a batch's results/), output.jsonl and
 * errors.jsonl (streamed from the lines' files), and usage/, each a node
 * type over the job's snapshot and its index on disk (job_results.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_job_results.h"
#include "dir_results.h"
#include "job_results.h"
#include "log.h"
#include "results_cache.h"

/* The merged results of n's job as of v (NULL when it has no file yet),
 * logged when they cannot be had. */
static int index_of(struct tree *tree, struct op *op, const struct node *n,
		    const struct view *v, struct job_index **x)
{
	/* v holds the job: the index takes a reference of its own. */
	int r = job_results_get(tree->job_results, op, v->obj, x);

	if (r < 0 && r != -EINTR)
		log_err("job %s: results: %s", n->id, strerror(-r));
	return r;
}

static void drop_index(void *hold)
{
	job_index_release(hold);
}

/* The entry a file of results/ stands for in x (*txt set), or -ENOENT. */
static int entry_of(const struct job_index *x, const char *name,
		    struct job_entry *e, int *txt)
{
	size_t blen;
	int r = x ? results_split(name, &blen, txt) : -ENOENT;

	if (r == 0)
		r = job_index_find(x, name, blen, e);
	if (r == 0 && *txt && !e->has_txt)
		r = -ENOENT;
	return r;
}

/*
 * The index of n's job and the entry of n in it (into v, *x, *e). The
 * job's copy is as fresh as the batch listing (jobs_get reads it again
 * when older than cache_ttl), so a running batch's new file is seen
 * without a fetch of its own.
 */
static int result_entry(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v,
			struct job_index **x, struct job_entry *e, int *txt)
{
	int r = job_node_snapshot(tree, op, n, mode, v);

	*x = NULL;
	if (r == 0)
		r = index_of(tree, op, n, v, x);
	if (r == 0)
		r = entry_of(*x, n->name, e, txt);
	if (r < 0) {
		job_index_release(*x);
		*x = NULL;
	}
	return r;
}

static void drop_render(void *hold)
{
	job_render_release(hold);
}

/* A file of results/: its entry's line rendered as a batch's, shared by
 * every view of it while one holds it (job_render_get). */
static int result_view(struct tree *tree, struct op *op, const struct node *n,
		       enum store_mode mode, struct view *v)
{
	struct job_render *rd = NULL;
	struct job_index *x;
	struct job_entry e;
	int txt, r = result_entry(tree, op, n, mode, v, &x, &e, &txt);

	if (r == 0)
		r = job_render_get(tree->job_results, op, x, &e, txt, &rd);
	if (r == -ENOMEM)
		log_err("job %s: result %s: the results open pass %u MiB; "
			"close some",
			n->id, n->name, RESULTS_RENDER_BYTES >> 20);
	else if (r < 0 && r != -ENOENT && r != -EINTR)
		log_err("job %s: result %s: %s", n->id, n->name, strerror(-r));
	if (r == 0) {
		v->data = rd->data;
		v->len = rd->len;
		v->drop = drop_render;
		v->hold = rd;
	}
	job_index_release(x);
	if (r < 0)
		view_release(v);
	return r;
}

static const struct node_type type_jresult = {
    .what = "job result",
    .mode = S_IFREG | 0444,
    .view = result_view,
    .open_ops = &tree_view_ops,
};

static int results_lookup(struct tree *tree, const struct node *dir,
			  const char *name, struct node *child)
{
	(void)tree;
	return dir_results_child(dir, name, &type_jresult, child);
}

/* The listing an open results/ holds: the job's index, read by position;
 * the entry last read, for its .txt next. */
struct jlisting {
	struct job_index *x;
	pthread_mutex_t lock; /* guards cur, at and e */
	struct job_cursor *cur;
	uint64_t at; /* the entry in e + 1, 0 for none */
	struct job_entry e;
};

static int results_list_open(struct tree *tree, struct op *op,
			     const struct node *dir, const struct view *v,
			     void **list)
{
	struct jlisting *l = calloc(1, sizeof(*l));
	int r = l ? index_of(tree, op, dir, v, &l->x) : -ENOMEM;

	if (r == 0 && l->x) {
		l->cur = job_cursor_new(l->x);
		if (!l->cur)
			r = -ENOMEM;
	}
	if (r < 0) {
		if (l)
			job_index_release(l->x);
		free(l);
		return r;
	}
	pthread_mutex_init(&l->lock, NULL);
	*list = l;
	return 0;
}

_Static_assert(RESULTS_NAME_MAX + sizeof(".json") <= NODE_NAME_MAX + 1,
	       "a result's name fits a node's");

/* Position 2i is entry i's .json, 2i + 1 its .txt when it has one. */
static int results_list_at(const void *list, size_t pos, char *name,
			   mode_t *mode)
{
	/* The listing is the caller's own (list_open made it): only the
	 * entry read last changes, under its lock. */
	struct jlisting *l = (struct jlisting *)list;
	uint64_t i = pos / 2;
	int r = 0;

	if (!l->x || i >= job_index_count(l->x))
		return -ENOENT;
	pthread_mutex_lock(&l->lock);
	if (l->at != i + 1) {
		l->at = 0;
		r = job_cursor_entry(l->cur, i, &l->e);
		if (r == 0)
			l->at = i + 1;
	}
	if (r == 0 && pos % 2 && !l->e.has_txt)
		r = 0;
	else if (r == 0) {
		size_t n = strlen(l->e.name);

		/* At most RESULTS_NAME_MAX and ".json": it fits. */
		memcpy(name, l->e.name, n);
		strcpy(name + n, pos % 2 ? ".txt" : ".json");
		*mode = S_IFREG;
		r = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

static void results_list_close(void *list)
{
	struct jlisting *l = list;

	job_cursor_free(l->cur);
	job_index_release(l->x);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

const struct node_type type_jresults = {
    .what = "job results directory",
    .mode = S_IFDIR | 0555,
    .view = job_node_snapshot,
    .lookup = results_lookup,
    .list_open = results_list_open,
    .list_at = results_list_at,
    .list_close = results_list_close,
};

/* ---- output.jsonl, errors.jsonl ---------------------------------------- */

static enum job_stream stream_of(const struct node *n)
{
	return strcmp(n->name, "errors.jsonl") == 0 ? JOB_ERRORS : JOB_OUTPUT;
}

/* A stream's size is its lines' and newlines' (0 before any file); its
 * view holds the index that its reads read. */
static int stream_view(struct tree *tree, struct op *op, const struct node *n,
		       enum store_mode mode, struct view *v)
{
	struct job_index *x = NULL;
	int r = job_node_snapshot(tree, op, n, mode, v);

	if (r == 0)
		r = index_of(tree, op, n, v, &x);
	if (r < 0) {
		view_release(v);
		return r;
	}
	if (x) {
		v->len = (size_t)job_index_size(x, stream_of(n));
		v->drop = drop_index;
		v->hold = x;
	}
	return 0;
}

/* A read: the lines that hold the range, from their files. */
static int stream_read(struct tree *tree, struct op *op, struct open_file *f,
		       size_t size, off_t off, struct open_read *out)
{
	size_t len = 0;
	int r;

	(void)tree;
	if (!f->view.hold || off < 0)
		return 0;
	r = job_index_read(f->view.hold, op, stream_of(&f->node), (uint64_t)off,
			   size, &out->owned, &len);
	if (r < 0 && r != -EINTR)
		log_err("job %s: %s: %s", f->node.id, f->node.name,
			strerror(-r));
	out->data = out->owned;
	out->len = len;
	return r;
}

static const struct open_ops stream_ops = {
    .open = tree_view_open,
    .read = stream_read,
};

const struct node_type type_jstream = {
    .what = "job results stream",
    .mode = S_IFREG | 0444,
    .view = stream_view,
    .open_ops = &stream_ops,
};

/* ---- usage/ ------------------------------------------------------------ */

/* A sum over every output file of the job (0 before any). */
static int usage_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	struct job_index *x = NULL;
	int i = results_usage_index(n->name),
	    r = job_node_snapshot(tree, op, n, mode, v);

	if (r == 0)
		r = index_of(tree, op, n, v, &x);
	if (r == 0 && i < 0)
		r = -ENOENT;
	if (r == 0) {
		v->owned = malloc(24);
		r = v->owned ? 0 : -ENOMEM;
	}
	if (r == 0) {
		v->len = (size_t)snprintf(v->owned, 24, "%" PRId64 "\n",
					  x ? job_index_usage(x, i) : 0);
		v->data = v->owned;
	}
	job_index_release(x);
	if (r < 0)
		view_release(v);
	return r;
}

static const struct node_type type_jusage_file = {
    .what = "job usage",
    .mode = S_IFREG | 0444,
    .view = usage_view,
    .open_ops = &tree_view_ops,
};

static const struct node_child usage_children[] = {
    {.name = "prompt_tokens", .type = &type_jusage_file},
    {.name = "completion_tokens", .type = &type_jusage_file},
    {.name = "total_tokens", .type = &type_jusage_file},
    {0},
};

_Static_assert(sizeof(usage_children) / sizeof(usage_children[0]) ==
		   USAGE_N + 1,
	       "one usage file per sum");

const struct node_type type_jusage = {
    .what = "job usage directory",
    .mode = S_IFDIR | 0555,
    .view = job_node_snapshot,
    .children = usage_children,
};
