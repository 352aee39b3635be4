/*
 * dir_batches.c - the batches/ subtree: one directory per batch, its value
 * files, batch.json, request_counts/, metadata/, progress and ctl, each a
 * node type over the stored batch snapshot (store_batches.h). The entries of a
 * batch directory are its table of children (batch_children): batch.json
 * and a value file per value of the batch kind (kind.h), present when its
 * field is not null, each rendered from the snapshot when it is opened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_outcome.h"
#include "dir_results.h"
#include "job_tag.h"
#include "dir_stage.h"
#include "kind.h"
#include "listing.h"
#include "log.h"
#include "opts.h"
#include "stage.h"
#include "store_batches.h"
#include "submit.h"
#include "tree.h"
#include "util.h"

/*
 * Render file name of snapshot b into v (data and len, owned by v). 0, or
 * -ENOENT when b has no such file (a null field, a missing key), -ENOMEM.
 */
typedef int (*render_fn)(const struct batch *b, const char *name,
			 struct view *v);

static int show(const struct batch *b, enum batch_part part, const char *name,
		struct view *v)
{
	size_t len;
	int r = batch_render(b, part, name, &v->owned, &len);

	v->data = v->owned;
	v->len = len;
	return r;
}

/* batch.json and the value files, as the batch kind renders them. */
static int render_value(const struct batch *b, const char *name, struct view *v)
{
	size_t len;
	int r = kind_render(&batch_kind, b, name, &v->owned, &len);

	v->data = v->owned;
	v->len = len;
	return r;
}

static int render_count(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_COUNT, name, v);
}

static int render_meta(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_META, name, v);
}

static void unref_batch(void *obj)
{
	batch_unref(obj);
}

int batch_node_snapshot(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	struct api_error err;
	struct batch *b;
	int r = batches_get(tree->batches, op, n->id, mode, &b, &err);

	if (r < 0) {
		if (r != -ENOENT)
			log_err("batch %s: %s", n->id,
				api_error_message(&err, r));
		return r;
	}
	view_hold(v, b, unref_batch);
	v->mtime = (time_t)b->mtime;
	v->immutable = b->final;
	return 0;
}

const struct batch *view_batch(const struct view *v)
{
	return v->obj;
}

/* The snapshot of a node of batches/<id>/ itself: one the kernel may keep
 * for cache_ttl, being told of a change (fs_attach). */
static int batch_snapshot(struct tree *tree, struct op *op,
			  const struct node *n, enum store_mode mode,
			  struct view *v)
{
	int r = batch_node_snapshot(tree, op, n, mode, v);

	if (r == 0)
		v->told = !view_batch(v)->final; /* store hook: fs_attach */
	return r;
}

/*
 * A file of a batch: its bytes as render makes them from the snapshot. A
 * file the snapshot lacks may have appeared since: when the copy is older
 * than cache_ttl and not final, it is fetched again once before ENOENT.
 */
static int file_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, render_fn render, struct view *v)
{
	int r = batch_snapshot(tree, op, n, mode, v);

	if (r < 0)
		return r;
	r = render(view_batch(v), n->name, v);
	if (r == -ENOENT && !view_batch(v)->final && mode == STORE_ANY) {
		view_release(v);
		r = batch_snapshot(tree, op, n, STORE_FRESH, v);
		if (r == 0)
			r = render(view_batch(v), n->name, v);
	}
	if (r < 0)
		view_release(v);
	return r;
}

static int value_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return file_view(tree, op, n, mode, render_value, v);
}

static int count_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return file_view(tree, op, n, mode, render_count, v);
}

static int meta_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	return file_view(tree, op, n, mode, render_meta, v);
}

/* ctl reads the outcome of its last command. Opening it sends nothing: any
 * cached copy of the batch will do, whatever mode asks. */
static int ctl_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(tree, op, n, STORE_ANY, v);

	(void)mode;
	if (r < 0)
		return r;
	view_outcome(v, ctl_outcome(&tree->ctl->outcomes, n->id));
	return 0;
}

static ssize_t ctl_write_node(struct tree *tree, struct op *op,
			      struct open_file *f, const char *buf, size_t size,
			      off_t off, uint64_t owner)
{
	(void)owner;
	return ctl_write(tree->ctl, op, f->node.id, buf, size,
			 open_file_at(f, off));
}

static const struct open_ops ctl_ops = {
    .open = tree_view_open,
    .read = tree_view_read,
    .write = ctl_write_node,
};

static int dir_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	return batch_snapshot(tree, op, n, mode, v);
}

/* A batch directory carries its created_at. */
static int batch_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(tree, op, n, mode, v);

	if (r == 0)
		v->mtime = (time_t)view_batch(v)->created_at;
	return r;
}

/*
 * input.jsonl, output.jsonl, errors.jsonl: symlinks to the content of the
 * batch's file of that kind under files/, present when its id is set.
 */
static const struct {
	const char *name;
	const char *field; /* the value file holding the id */
} batch_links[] = {
    {"input.jsonl", "input_file_id"},
    {"output.jsonl", "output_file_id"},
    {"errors.jsonl", "error_file_id"},
};
#define NLINKS (sizeof(batch_links) / sizeof(batch_links[0]))

static const char *link_field(const char *name)
{
	for (size_t i = 0; i < NLINKS; i++)
		if (strcmp(batch_links[i].name, name) == 0)
			return batch_links[i].field;
	return NULL;
}

/* The target of link name of b into v (owned), or -ENOENT when the id is
 * not set (or cannot be a name). */
static int render_link(const struct batch *b, const char *name, struct view *v)
{
	const char *field = link_field(name);
	char id[BATCH_ID_MAX + 1];
	size_t len;

	if (!field || batch_file_id(b, field, id, sizeof(id)) < 0)
		return -ENOENT;
	len = strlen("../../files/") + strlen(id) + strlen("/content") + 1;
	v->owned = malloc(len);
	if (!v->owned)
		return -ENOMEM;
	snprintf(v->owned, len, "../../files/%s/content", id);
	v->data = v->owned;
	v->len = len - 1;
	return 0;
}

static int blink_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return file_view(tree, op, n, mode, render_link, v);
}

static const struct node_type type_blink = {
    .what = "batch file link",
    .mode = S_IFLNK | 0777,
    .view = blink_view,
};

static const struct node_type type_bvalue = {
    .what = "batch file",
    .mode = S_IFREG | 0444,
    .view = value_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_count = {
    .what = "request count",
    .mode = S_IFREG | 0444,
    .view = count_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_meta = {
    .what = "metadata value",
    .mode = S_IFREG | 0444,
    .view = meta_view,
    .open_ops = &tree_view_ops,
};

/* progress: the line of one batch (progress.h), 1 of 1 batch. */
static int progress_view(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(tree, op, n, mode, v);
	uint64_t c[3];

	if (r == 0)
		r = batch_counts(view_batch(v), c);
	if (r == 0)
		r = tree_progress_view(v, c, 1, !view_batch(v)->final,
				       view_batch(v)->created_at);
	if (r < 0 && v->obj)
		view_release(v);
	return r;
}

static const struct node_type type_bprogress = {
    .what = "batch progress",
    .mode = S_IFREG | 0444,
    .view = progress_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_ctl = {
    .what = "ctl",
    .mode = S_IFREG | 0600,
    .view = ctl_view,
    .open_ops = &ctl_ops,
};

/*
 * wait: a read blocks until the batch is final, then returns its status
 * and a newline (at once when it is final). Its size is 0 and it is never
 * kept by the kernel (direct_io, like the files of /proc): what a read
 * returns depends on when it is made, and cat reads to the end whatever
 * stat says. Opening it fetches the batch like any file (a fresh copy).
 */
static int wait_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(tree, op, n, mode, v);

	if (r == 0)
		view_unkept_empty(v);
	return r;
}

static int wait_text(const void *obj, char **text, size_t *len)
{
	const struct batch *b = obj;

	*len = strlen(b->status) + 1;
	*text = malloc(*len + 1);
	if (!*text)
		return -ENOMEM;
	snprintf(*text, *len + 1, "%s\n", b->status);
	return 0;
}

/* A read of wait: its text at once when the batch is final (any copy
 * will do), else -EAGAIN. */
static int wait_read(struct tree *tree, struct op *op, struct open_file *f,
		     size_t size, off_t off, struct open_read *out)
{
	struct view v = {0};
	size_t len = 0;
	int r = batch_snapshot(tree, op, &f->node, STORE_ANY, &v);

	if (r == 0)
		r = view_batch(&v)->final
			? wait_text(view_batch(&v), &out->owned, &len)
			: -EAGAIN;
	view_release(&v);
	if (r == 0)
		open_read_slice(out, out->owned, len, size, off);
	return r;
}

static const struct open_ops wait_ops = {
    .open = tree_view_open,
    .read = wait_read,
    .wait_text = wait_text,
};

static const struct node_type type_wait = {
    .what = "wait",
    .mode = S_IFREG | 0444,
    .view = wait_view,
    .open_ops = &wait_ops,
};

static int meta_lookup(struct tree *tree, const struct node *dir,
		       const char *name, struct node *child)
{
	(void)tree;
	return node_make(child, dir, &type_meta, name);
}

static int meta_readdir(struct tree *tree, struct op *op,
			const struct node *dir, const struct view *v,
			struct dirlist *out)
{
	char **keys = NULL;
	size_t n = 0;
	int r = batch_meta_keys(view_batch(v), &keys, &n);

	(void)tree, (void)op, (void)dir;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, keys[i], S_IFREG);
	batch_free_keys(keys, n);
	return r;
}

/* The request counts; any other name costs no request. */
static const struct node_child count_children[] = {
    {.name = "total", .type = &type_count},
    {.name = "completed", .type = &type_count},
    {.name = "failed", .type = &type_count},
    {0},
};

static const struct node_type type_counts = {
    .what = "request_counts directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .children = count_children,
};

static const struct node_type type_metadir = {
    .what = "metadata directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .lookup = meta_lookup,
    .readdir = meta_readdir,
};

static int link_present(const void *obj, const char *name)
{
	const char *field = link_field(name);
	char id[BATCH_ID_MAX + 1];

	return field && batch_file_id(obj, field, id, sizeof(id)) == 0;
}

/* The entries of a batch directory, in listing order: batch.json, the
 * value files whose field is not null, the links whose id is set. */
static const struct node_child batch_children[] = {
    {.kind = &batch_kind, .type = &type_bvalue},
    {.name = "input.jsonl", .type = &type_blink, .present = link_present},
    {.name = "output.jsonl", .type = &type_blink, .present = link_present},
    {.name = "errors.jsonl", .type = &type_blink, .present = link_present},
    {.name = "request_counts", .type = &type_counts},
    {.name = "metadata", .type = &type_metadir},
    {.name = "results", .type = &type_results},
    {.name = "usage", .type = &type_usage},
    {.name = "progress", .type = &type_bprogress},
    {.name = "ctl", .type = &type_ctl},
    /* Found by name but not listed: a tree walk (grep -r, find, cp -r,
     * tar, rsync) would otherwise block on every running batch. */
    {.name = "wait", .type = &type_wait, .hidden = 1},
    {0},
};

static const struct node_type type_batch = {
    .what = "batch directory",
    .mode = S_IFDIR | 0555,
    .view = batch_view,
    .children = batch_children,
};

/* ------------------------------------------------------------------ */
/* New batches: a file copied into batches/, and batches/new */

/* A file being written into batches/: staged (stage.h); on close it is
 * uploaded, then a batch is made of it, and the name is gone (the batch's
 * directory is there instead). */
static int bstaged_view(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	(void)op, (void)mode;
	return dir_stage_view(tree, STAGE_BATCHES, n, v);
}

/*
 * Create the batch of uploaded file f with the mount's completion window,
 * as part of op (given a deadline of its own). 0, or -errno when the
 * creation failed: f stays (logged with its id), so nothing is lost and
 * nothing need be uploaded again; -EIO when whether a batch was made is
 * unknown (logged so, never with advice to make another).
 */
static int create_from(struct tree *tree, struct op *op, const char *name,
		       const struct file *f)
{
	struct batch_params p;
	struct batch *b;
	char text[64 + BATCH_ID_MAX], why[512];
	int r;

	snprintf(text, sizeof(text), "input_file_id=%s", f->id);
	r = params_parse(text, strlen(text), tree->opts->completion_window, &p,
			 why, sizeof(why));
	if (r == 0) {
		op->deadline = util_now() + tree->opts->timeout;
		r = submit_create(tree->submit, op, &p, &b, why, sizeof(why));
		params_free(&p);
	} else {
		log_err("create batch from %s: %s", f->id, why);
	}
	if (r == -EINPROGRESS) {
		log_err("%s: uploaded as %s, which stays; whether a batch was "
			"made of it is unknown (look for %s in "
			"batches/*/input_file_id before making one)",
			name, f->id, f->id);
		return -EIO;
	}
	if (r < 0) {
		log_err("%s: uploaded as %s, which stays; no batch was made of "
			"it (batches/new can make one: input_file_id=%s)",
			name, f->id, f->id);
		return r;
	}
	stage_set_last(tree->stage, b->id);
	batch_unref(b);
	return 0;
}

static int bstaged_flush(struct tree *tree, struct op *op, struct open_file *o,
			 uint64_t owner)
{
	struct file *f;
	int r = stage_submit(tree->submit, op, o->state, owner, &f);

	if (r > 0)
		r = create_from(tree, op, stage_name(o->state), f);
	file_unref(f);
	return r;
}

static const struct open_ops bstaged_ops = {
    .open = dir_stage_open_busy,
    .write = dir_stage_write,
    .read = dir_stage_read,
    .resize = dir_stage_resize,
    .flush = bstaged_flush,
    .release = dir_stage_release,
};

static const struct node_type type_bstaged = {
    .what = "staged batch input",
    .mode = S_IFREG | 0600,
    .view = bstaged_view,
    .open_ops = &bstaged_ops,
};

/*
 * batches/new, a clone file: a write of parameters (batch_params.h) makes
 * a batch, and a read of the same open file then gives its id line at any
 * offset (the first read after the write is its start). Any other open
 * reads the id of the batch this mount made last ("" before any).
 */
struct new_open {
	pthread_mutex_t lock;	     /* guards the fields below */
	char line[BATCH_ID_MAX + 2]; /* what a read gives: an id line */
	int made;		     /* a batch was made through it */
	off_t base;		     /* offset of the first read after, or -1 */
};

/* "ID\n" of the batch made last into line, or "". */
static void last_line(struct tree *tree, char *line)
{
	char id[BATCH_ID_MAX + 1];

	stage_get_last(tree->stage, id);
	snprintf(line, BATCH_ID_MAX + 2, "%s%s", id, id[0] ? "\n" : "");
}

static int new_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	(void)op, (void)n, (void)mode;
	v->owned = malloc(BATCH_ID_MAX + 2);
	if (!v->owned)
		return -ENOMEM;
	last_line(tree, v->owned);
	v->data = v->owned;
	v->len = strlen(v->owned);
	v->mtime = tree->mount_time;
	return 0;
}

static int new_open(struct tree *tree, struct op *op, struct open_file *f,
		    int flags)
{
	struct new_open *o;
	int r = tree_view_open(tree, op, f, flags);

	if (r < 0)
		return r;
	o = calloc(1, sizeof(*o));
	if (!o) {
		view_release(&f->view);
		return -ENOMEM;
	}
	pthread_mutex_init(&o->lock, NULL);
	last_line(tree, o->line);
	o->base = -1;
	f->state = o;
	return 0;
}

/* One write is one set of parameters, checked before any request. */
static ssize_t new_write(struct tree *tree, struct op *op, struct open_file *f,
			 const char *buf, size_t size, off_t off,
			 uint64_t owner)
{
	struct new_open *o = f->state;
	struct batch_params p;
	struct batch *b;
	char why[512];
	int r;

	(void)off, (void)owner;
	if (size > PARAMS_TEXT_MAX) {
		log_err("batches/new: more than %d bytes in one write",
			PARAMS_TEXT_MAX);
		return -EINVAL;
	}
	r = params_parse(buf, size, tree->opts->completion_window, &p, why,
			 sizeof(why));
	if (r == 0 && strcmp(p.endpoint, PARAMS_ENDPOINT) != 0) {
		/* The one endpoint the Batch API documents. */
		snprintf(why, sizeof(why), "endpoint must be %s",
			 PARAMS_ENDPOINT);
		params_free(&p);
		r = -EINVAL;
	}
	/* 3 of the 16 pairs are kimifs's own (its jobs and retries). */
	if (r == 0 && (r = job_tag_user_ok(&p, why, sizeof(why))) < 0)
		params_free(&p);
	if (r == -EINVAL)
		log_err("batches/new: %s", why);
	if (r < 0)
		return r;
	r = submit_create(tree->submit, op, &p, &b, why, sizeof(why));
	params_free(&p);
	if (r == -EINPROGRESS)
		return -EIO; /* outcome unknown, logged so */
	if (r < 0)
		return r;
	stage_set_last(tree->stage, b->id);
	pthread_mutex_lock(&o->lock);
	snprintf(o->line, sizeof(o->line), "%s\n", b->id);
	o->made = 1;
	o->base = -1;
	pthread_mutex_unlock(&o->lock);
	batch_unref(b);
	return (ssize_t)size;
}

static int new_read(struct tree *tree, struct op *op, struct open_file *f,
		    size_t size, off_t off, struct open_read *out)
{
	struct new_open *o = f->state;
	off_t at;

	(void)tree, (void)op;
	pthread_mutex_lock(&o->lock);
	if (o->made && o->base < 0)
		o->base = off;
	at = o->made && off >= o->base ? off - o->base : off;
	out->owned = strdup(o->line);
	pthread_mutex_unlock(&o->lock);
	if (!out->owned)
		return -ENOMEM;
	open_read_slice(out, out->owned, strlen(out->owned), size, at);
	return 0;
}

static void new_release(struct open_file *f)
{
	struct new_open *o = f->state;

	pthread_mutex_destroy(&o->lock);
	free(o);
}

static const struct open_ops new_ops = {
    .open = new_open,
    .write = new_write,
    .read = new_read,
    .release = new_release,
};

static const struct node_type type_new = {
    .what = "batches/new",
    .mode = S_IFREG | 0600,
    .view = new_view,
    .open_ops = &new_ops,
};

/*
 * A new file in batches/ (cp, `cat >`): staged under its name; on close
 * uploaded and made a batch of. A name is that of a batch input file
 * (*.jsonl; else EINVAL, logged); one being written already is EBUSY.
 */
static int batches_create(struct tree *tree, const struct node *dir,
			  const char *name, struct node *child, void **state)
{
	return dir_stage_create(tree, STAGE_BATCHES, &type_bstaged, dir, name,
				child, state);
}

/* Names that cannot be batch ids are ENOENT at once, with no request; so
 * are the names of uploads (*.jsonl) unless one is being written. new is
 * there without being listed: batches/ lists the batches alone, so that a
 * glob over batches/ matches each batch once and nothing else. */
static int batches_lookup(struct tree *tree, const struct node *dir,
			  const char *name, struct node *child)
{
	int r;

	if (dir_stage_lookup(tree, STAGE_BATCHES, &type_bstaged, dir, name,
			     child, &r))
		return r;
	if (!batch_id_valid(name))
		return -ENOENT;
	return node_make_object(child, dir, &type_batch, name);
}

static int batches_readdir(struct tree *tree, struct op *op,
			   const struct node *dir, const struct view *v,
			   struct dirlist *out)
{
	char **ids;
	size_t n;
	int r = batches_list(tree->batches, op, &ids, &n);

	(void)dir, (void)v;
	if (r < 0)
		return r;
	r = dir_stage_readdir(tree, STAGE_BATCHES, ids, n, out);
	listing_free_ids(ids, n);
	return r;
}

/* new is there without being listed (batches_lookup). */
static const struct node_child batches_children[] = {
    {.name = "new", .type = &type_new, .hidden = 1},
    {0},
};

const struct node_type type_batches = {
    .what = "batches directory",
    .mode = S_IFDIR | 0755,
    .create = batches_create,
    .view = tree_fixed_view,
    .children = batches_children,
    .lookup = batches_lookup,
    .readdir = batches_readdir,
};
