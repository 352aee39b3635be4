/*
 * dir_batches.c - the batches/ subtree: one directory per batch, its value
 * files, batch.json, request_counts/, metadata/ and ctl, each a node type
 * over the stored batch snapshot (store_batches.h). The files of a batch
 * directory are the table batch_files: a name and the function that renders
 * it from the snapshot when it is opened (batch_render).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_results.h"
#include "kimifs.h"
#include "log.h"
#include "tree.h"

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

static int render_json(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_JSON, name, v);
}

static int render_value(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_VALUE, name, v);
}

static int render_count(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_COUNT, name, v);
}

static int render_meta(const struct batch *b, const char *name, struct view *v)
{
	return show(b, BATCH_META, name, v);
}

/* Whether file name (rendered by render) exists in b, without rendering
 * it: batch.json always, a value file when its field is not null. */
static int file_exists(const struct batch *b, const char *name,
		       render_fn render)
{
	return render != render_value || batch_has_value(b, name);
}

/* The read-only files of a batch directory, in listing order. */
static const struct {
	const char *name;
	render_fn render;
} batch_files[] = {
    {"batch.json", render_json},	 {"status", render_value},
    {"endpoint", render_value},		 {"input_file_id", render_value},
    {"output_file_id", render_value},	 {"error_file_id", render_value},
    {"completion_window", render_value}, {"created_at", render_value},
    {"in_progress_at", render_value},	 {"expires_at", render_value},
    {"finalizing_at", render_value},	 {"completed_at", render_value},
    {"failed_at", render_value},	 {"cancelling_at", render_value},
    {"cancelled_at", render_value},
};
#define NFILES (sizeof(batch_files) / sizeof(batch_files[0]))

static render_fn file_render(const char *name)
{
	for (size_t i = 0; i < NFILES; i++)
		if (strcmp(batch_files[i].name, name) == 0)
			return batch_files[i].render;
	return NULL;
}

/*
 * The snapshot of n's batch in mode, into v with the batch's event time.
 * A 404 is the everyday answer to a name probe and is not logged; other
 * failures are, once.
 */
static int batch_snapshot(struct kimifs *k, struct api_op *op,
			  const struct node *n, enum store_mode mode,
			  struct view *v)
{
	struct api_error err;
	int r = batches_get(&k->batches, op, n->id, mode, &v->snap, &err);

	if (r < 0) {
		if (r != -ENOENT)
			log_err("batch %s: %s", n->id,
				err.message[0] ? err.message : strerror(-r));
		return r;
	}
	v->mtime = (time_t)v->snap->mtime;
	v->immutable = v->snap->final;
	v->told = !v->snap->final; /* store hook: fs_attach */
	return 0;
}

/*
 * A file of a batch: its bytes as render makes them from the snapshot. A
 * file the snapshot lacks may have appeared since: when the copy is older
 * than cache_ttl and not final, it is fetched again once before ENOENT.
 */
static int file_view(struct kimifs *k, struct api_op *op, const struct node *n,
		     enum store_mode mode, render_fn render, struct view *v)
{
	int r = batch_snapshot(k, op, n, mode, v);

	if (r < 0)
		return r;
	r = render(v->snap, n->name, v);
	if (r == -ENOENT && !v->snap->final && mode == STORE_ANY) {
		view_release(v);
		r = batch_snapshot(k, op, n, STORE_FRESH, v);
		if (r == 0)
			r = render(v->snap, n->name, v);
	}
	if (r < 0)
		view_release(v);
	return r;
}

static int bfile_view(struct kimifs *k, struct api_op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	render_fn render = file_render(n->name);

	return render ? file_view(k, op, n, mode, render, v) : -ENOENT;
}

static int count_view(struct kimifs *k, struct api_op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return file_view(k, op, n, mode, render_count, v);
}

static int meta_view(struct kimifs *k, struct api_op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	return file_view(k, op, n, mode, render_meta, v);
}

/* ctl reads the outcome of its last command. Opening it sends nothing: any
 * cached copy of the batch will do, whatever mode asks. */
static int ctl_view(struct kimifs *k, struct api_op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(k, op, n, STORE_ANY, v);

	(void)mode;
	if (r < 0)
		return r;
	/* The outcome changes with each command, untold. */
	v->immutable = v->told = 0;
	v->owned = ctl_outcome(&k->ctl, n->id);
	v->data = v->owned ? v->owned : "";
	v->len = strlen(v->data);
	return 0;
}

static int ctl_write_node(struct kimifs *k, struct api_op *op,
			  const struct node *n, const char *buf, size_t size,
			  off_t off)
{
	return ctl_write(k, op, n->id, buf, size, off);
}

static int dir_view(struct kimifs *k, struct api_op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	return batch_snapshot(k, op, n, mode, v);
}

/* A batch directory carries its created_at. */
static int batch_view(struct kimifs *k, struct api_op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(k, op, n, mode, v);

	if (r == 0)
		v->mtime = (time_t)v->snap->created_at;
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

static int blink_view(struct kimifs *k, struct api_op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return file_view(k, op, n, mode, render_link, v);
}

static const struct node_type type_blink = {
    .what = "batch file link",
    .mode = S_IFLNK | 0777,
    .view = blink_view,
};

static const struct node_type type_bfile = {
    .what = "batch file",
    .mode = S_IFREG | 0444,
    .view = bfile_view,
};

static const struct node_type type_count = {
    .what = "request count",
    .mode = S_IFREG | 0444,
    .view = count_view,
};

static const struct node_type type_meta = {
    .what = "metadata value",
    .mode = S_IFREG | 0444,
    .view = meta_view,
};

static const struct node_type type_ctl = {
    .what = "ctl",
    .mode = S_IFREG | 0600,
    .flags = NT_WRITABLE,
    .view = ctl_view,
    .write = ctl_write_node,
};

/*
 * wait: a read blocks until the batch is final, then returns its status
 * and a newline (at once when it is final). Its size is 0 and it is never
 * kept by the kernel (direct_io, like the files of /proc): what a read
 * returns depends on when it is made, and cat reads to the end whatever
 * stat says. Opening it fetches the batch like any file (a fresh copy).
 */
static int wait_view(struct kimifs *k, struct api_op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	int r = batch_snapshot(k, op, n, mode, v);

	if (r < 0)
		return r;
	v->immutable = v->told = 0;
	v->data = "";
	v->len = 0;
	return 0;
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

static int wait_ready(struct kimifs *k, struct api_op *op, const struct node *n,
		      char **text, size_t *len)
{
	struct view v = {0};
	int r = batch_snapshot(k, op, n, STORE_ANY, &v);

	*text = NULL;
	*len = 0;
	if (r == 0)
		r = v.snap->final ? wait_text(v.snap, text, len) : -EAGAIN;
	view_release(&v);
	return r;
}

static const struct node_type type_wait = {
    .what = "wait",
    .mode = S_IFREG | 0444,
    .view = wait_view,
    .wait_ready = wait_ready,
    .wait_text = wait_text,
};

static int counts_lookup(struct kimifs *k, const struct node *dir,
			 const char *name, struct node *child)
{
	(void)k;
	if (strcmp(name, "total") != 0 && strcmp(name, "completed") != 0 &&
	    strcmp(name, "failed") != 0)
		return -ENOENT; /* costs no request */
	return node_make(child, dir, &type_count, name);
}

static int counts_readdir(struct kimifs *k, struct api_op *op,
			  const struct node *dir, struct dirlist *out)
{
	struct view v = {0};
	static const char *const counts[] = {"total", "completed", "failed"};
	int r = dir_view(k, op, dir, STORE_FRESH, &v);

	for (int i = 0; r == 0 && i < 3; i++)
		r = dirlist_add(out, counts[i], S_IFREG);
	view_release(&v);
	return r;
}

static int meta_lookup(struct kimifs *k, const struct node *dir,
		       const char *name, struct node *child)
{
	(void)k;
	return node_make(child, dir, &type_meta, name);
}

static int meta_readdir(struct kimifs *k, struct api_op *op,
			const struct node *dir, struct dirlist *out)
{
	struct view v = {0};
	char **keys = NULL;
	size_t n = 0;
	int r = dir_view(k, op, dir, STORE_FRESH, &v);

	if (r == 0)
		r = batch_meta_keys(v.snap, &keys, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, keys[i], S_IFREG);
	batch_free_keys(keys, n);
	view_release(&v);
	return r;
}

static const struct node_type type_counts = {
    .what = "request_counts directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .lookup = counts_lookup,
    .readdir = counts_readdir,
};

static const struct node_type type_metadir = {
    .what = "metadata directory",
    .mode = S_IFDIR | 0555,
    .view = dir_view,
    .lookup = meta_lookup,
    .readdir = meta_readdir,
};

static int batch_lookup(struct kimifs *k, const struct node *dir,
			const char *name, struct node *child)
{
	const struct node_type *t = NULL;

	(void)k;
	if (strcmp(name, "request_counts") == 0)
		t = &type_counts;
	else if (strcmp(name, "metadata") == 0)
		t = &type_metadir;
	else if (strcmp(name, "results") == 0)
		t = &type_results;
	else if (strcmp(name, "usage") == 0)
		t = &type_usage;
	else if (strcmp(name, "ctl") == 0)
		t = &type_ctl;
	else if (strcmp(name, "wait") == 0)
		t = &type_wait;
	else if (file_render(name))
		t = &type_bfile;
	else if (link_field(name))
		t = &type_blink;
	return t ? node_make(child, dir, t, name) : -ENOENT;
}

static int batch_readdir(struct kimifs *k, struct api_op *op,
			 const struct node *dir, struct dirlist *out)
{
	struct view v = {0};
	int r = dir_view(k, op, dir, STORE_FRESH, &v);

	for (size_t i = 0; r == 0 && i < NFILES; i++)
		if (file_exists(v.snap, batch_files[i].name,
				batch_files[i].render))
			r = dirlist_add(out, batch_files[i].name, S_IFREG);
	for (size_t i = 0; r == 0 && i < NLINKS; i++) {
		struct view f = {0};

		if (render_link(v.snap, batch_links[i].name, &f) == 0)
			r = dirlist_add(out, batch_links[i].name, S_IFLNK);
		view_release(&f);
	}
	if (r == 0)
		r = dirlist_add(out, "request_counts", S_IFDIR);
	if (r == 0)
		r = dirlist_add(out, "metadata", S_IFDIR);
	if (r == 0)
		r = dirlist_add(out, "results", S_IFDIR);
	if (r == 0)
		r = dirlist_add(out, "usage", S_IFDIR);
	if (r == 0)
		r = dirlist_add(out, "ctl", S_IFREG);
	/* wait is found by name but not listed: a tree walk (grep -r, find,
	 * cp -r, tar, rsync) would otherwise block on every running batch. */
	view_release(&v);
	return r;
}

static const struct node_type type_batch = {
    .what = "batch directory",
    .mode = S_IFDIR | 0555,
    .subdirs = 4,
    .view = batch_view,
    .lookup = batch_lookup,
    .readdir = batch_readdir,
};

/* Names that cannot be batch ids are ENOENT at once, with no request. */
static int batches_lookup(struct kimifs *k, const struct node *dir,
			  const char *name, struct node *child)
{
	int r;

	(void)k;
	if (!batch_id_valid(name))
		return -ENOENT;
	r = node_make(child, dir, &type_batch, name);
	if (r == 0)
		memcpy(child->id, child->name, sizeof(child->id));
	return r;
}

static int batches_readdir(struct kimifs *k, struct api_op *op,
			   const struct node *dir, struct dirlist *out)
{
	char **ids;
	size_t n;
	int r = batches_list(&k->batches, op, &ids, &n);

	(void)dir;
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, ids[i], S_IFDIR);
	listing_free_ids(ids, n);
	return r;
}

/* batches/ itself never changes (its entries do): the kernel keeps its
 * entry and attributes, so a path through it costs no lookup. */
static int batches_view(struct kimifs *k, struct api_op *op,
			const struct node *n, enum store_mode mode,
			struct view *v)
{
	int r = tree_mount_view(k, op, n, mode, v);

	v->immutable = 1;
	return r;
}

const struct node_type type_batches = {
    .what = "batches directory",
    .mode = S_IFDIR | 0555,
    .view = batches_view,
    .lookup = batches_lookup,
    .readdir = batches_readdir,
};
