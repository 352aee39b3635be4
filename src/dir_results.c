/*
 * dir_results.c - batches/<id>/results/ and usage/: one <name>.json per
 * request with a result and one <name>.txt per successful chat completion,
 * and the token sums, each a node type over the batch snapshot and the
 * index of its output and error files (results_cache.h). Names that cannot
 * be results cost no request.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_results.h"
#include "log.h"
#include "results_cache.h"

/*
 * The snapshot of n's batch (into v) and its results (*set, NULL when it
 * has no file yet). When want says the node is not there and the copy may
 * be older than the output file (not final, any copy asked for), the batch
 * is fetched again once.
 */
static int
results_view(struct tree *tree, struct op *op, const struct node *n,
	     enum store_mode mode, struct view *v, struct results_set **set,
	     int (*want)(const struct node *, const struct results_set *))
{
	int r = batch_node_snapshot(tree, op, n, mode, v);

	*set = NULL;
	if (r == 0)
		r = results_get(tree->results, op, view_batch(v), set);
	if (r == 0 && !want(n, *set) && !view_batch(v)->final &&
	    mode == STORE_ANY) {
		results_release(tree->results, *set);
		view_release(v);
		r = batch_node_snapshot(tree, op, n, STORE_FRESH, v);
		if (r == 0)
			r = results_get(tree->results, op, view_batch(v), set);
	}
	if (r < 0)
		view_release(v);
	return r;
}

/* The entry a file of results/ stands for, or NULL. */
static const struct result *entry_of(const struct node *n,
				     const struct results_set *set)
{
	const struct result *e;
	size_t blen;
	int txt;

	if (!set || results_split(n->name, &blen, &txt) < 0)
		return NULL;
	e = results_find(set->ix, n->name, blen);
	return e && (!txt || e->has_txt) ? e : NULL;
}

static int want_entry(const struct node *n, const struct results_set *set)
{
	return entry_of(n, set) != NULL;
}

static void drop_render(void *hold)
{
	results_render_release(hold);
}

/* A file of results/ shows the rendering of its entry that every open and
 * stat of it shares (results_render_get). */
static int result_view(struct tree *tree, struct op *op, const struct node *n,
		       enum store_mode mode, struct view *v)
{
	struct results_set *set;
	struct results_render *rd = NULL;
	const struct result *e;
	size_t blen;
	int txt, r = results_view(tree, op, n, mode, v, &set, want_entry);

	if (r < 0)
		return r;
	e = entry_of(n, set);
	r = e ? results_split(n->name, &blen, &txt) : -ENOENT;
	if (r == 0)
		r = results_render_get(op, tree->results, set, e, txt, &rd);
	if (r == -ENOMEM)
		log_err("batch %s: result %s: the results open pass %u MiB; "
			"close some",
			n->id, n->name, RESULTS_RENDER_BYTES >> 20);
	else if (r < 0 && r != -ENOENT && r != -EINTR)
		log_err("batch %s: result %s: %s", n->id, n->name,
			strerror(-r));
	if (r == 0) {
		v->data = rd->data;
		v->len = rd->len;
		v->drop = drop_render;
		v->hold = rd;
	}
	results_release(tree->results, set);
	if (r < 0)
		view_release(v);
	return r;
}

static const struct node_type type_result = {
    .what = "result",
    .mode = S_IFREG | 0444,
    .view = result_view,
    .open_ops = &tree_view_ops,
};

static int dir_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	return batch_node_snapshot(tree, op, n, mode, v);
}

int dir_results_child(const struct node *dir, const char *name,
		      const struct node_type *t, struct node *child)
{
	size_t blen;
	int txt;

	if (results_split(name, &blen, &txt) < 0)
		return -ENOENT;
	return node_make(child, dir, t, name);
}

static int results_lookup(struct tree *tree, const struct node *dir,
			  const char *name, struct node *child)
{
	(void)tree;
	return dir_results_child(dir, name, &type_result, child);
}

/* The listing of results/ an open directory holds: the batch's index,
 * shared and never changed, read by position. */
struct results_listing {
	struct results_cache *cache;
	struct results_set *set;
};

static int results_list_open(struct tree *tree, struct op *op,
			     const struct node *dir, const struct view *v,
			     void **list)
{
	struct results_listing *l = calloc(1, sizeof(*l));
	int r = l ? 0 : -ENOMEM;

	(void)dir;
	if (r == 0)
		r = results_get(tree->results, op, view_batch(v), &l->set);
	if (r < 0) {
		free(l);
		return r;
	}
	l->cache = tree->results;
	*list = l;
	return 0;
}

/* Position 2i is entry i's .json, 2i + 1 its .txt when it has one. */
static int results_list_at(const void *list, size_t pos, char *name,
			   mode_t *mode)
{
	const struct results_listing *l = list;
	const struct result *e;

	if (!l->set || pos / 2 >= l->set->ix->n)
		return -ENOENT;
	e = &l->set->ix->e[pos / 2];
	if (pos % 2 && !e->has_txt)
		return 0;
	snprintf(name, NODE_NAME_MAX + 1, "%s%s", results_name(l->set->ix, e),
		 pos % 2 ? ".txt" : ".json");
	*mode = S_IFREG;
	return 1;
}

static void results_list_close(void *list)
{
	struct results_listing *l = list;

	results_release(l->cache, l->set);
	free(l);
}

const struct node_type type_results = {
    .what = "results directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .lookup = results_lookup,
    .list_open = results_list_open,
    .list_at = results_list_at,
    .list_close = results_list_close,
};

/* usage/ shows sums once the batch is final and its output file came. */
static int usage_shown(const struct batch *b, const struct results_set *set)
{
	return b->final && set && set->fd[RESULTS_OUTPUT] >= 0;
}

static int usage_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	struct results_set *set = NULL;
	int i = results_usage_index(n->name),
	    r = batch_node_snapshot(tree, op, n, mode, v);

	/* A copy that is not final may be older than the batch's end. */
	if (r == 0 && !view_batch(v)->final && mode == STORE_ANY) {
		view_release(v);
		r = batch_node_snapshot(tree, op, n, STORE_FRESH, v);
	}
	if (r == 0 && i >= 0 && view_batch(v)->final)
		r = results_get(tree->results, op, view_batch(v), &set);
	if (r == 0 && (i < 0 || !usage_shown(view_batch(v), set)))
		r = -ENOENT;
	if (r == 0) {
		v->owned = malloc(24);
		if (!v->owned)
			r = -ENOMEM;
	}
	if (r == 0) {
		v->len = (size_t)snprintf(v->owned, 24, "%" PRId64 "\n",
					  set->ix->usage[i]);
		v->data = v->owned;
	}
	results_release(tree->results, set);
	if (r < 0)
		view_release(v);
	return r;
}

static const struct node_type type_usage_file = {
    .what = "usage",
    .mode = S_IFREG | 0444,
    .view = usage_view,
    .open_ops = &tree_view_ops,
};

static int usage_lookup(struct tree *tree, const struct node *dir,
			const char *name, struct node *child)
{
	(void)tree;
	if (results_usage_index(name) < 0)
		return -ENOENT; /* costs no request */
	return node_make(child, dir, &type_usage_file, name);
}

static int usage_readdir(struct tree *tree, struct op *op,
			 const struct node *dir, const struct view *v,
			 struct dirlist *out)
{
	const struct batch *b = view_batch(v);
	struct results_set *set = NULL;
	int r = 0;

	(void)dir;
	if (b->final)
		r = results_get(tree->results, op, b, &set);
	for (int i = 0; r == 0 && usage_shown(b, set) && i < USAGE_N; i++)
		r = dirlist_add(out, results_usage_names[i], S_IFREG);
	results_release(tree->results, set);
	return r;
}

const struct node_type type_usage = {
    .what = "usage directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .lookup = usage_lookup,
    .readdir = usage_readdir,
};
