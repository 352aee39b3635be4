/*
 * dir_files.c - the files/ subtree: one directory per file of the account
 * (file.json, its value files, content, ctl), and by-name/, a symlink per
 * filename to the newest file of that name. Each is a node type over the
 * stored FileObject snapshot (store_files.h); content reads through the
 * disk cache (cache.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "ctl_outcome.h"
#include "dir_stage.h"
#include "file_ctl.h"
#include "kind.h"
#include "listing.h"
#include "log.h"
#include "stage.h"
#include "store_files.h"
#include "submit.h"
#include "tree.h"

#define BY_NAME FILES_BY_NAME

static void unref_file(void *obj)
{
	file_unref(obj);
}

/*
 * The snapshot of n's file in mode, held by v, with v's time its
 * created_at. A 404 is the everyday answer to a name probe and is not
 * logged; other failures are, once.
 */
static int file_snapshot(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	struct api_error err = {0};
	struct file *f;
	int r = files_get(tree->files, op, n->id, mode, &f, &err);

	if (r < 0) {
		if (r != -ENOENT)
			log_err("file %s: %s", n->id,
				api_error_message(&err, r));
		return r;
	}
	view_hold(v, f, unref_file);
	v->mtime = (time_t)f->created_at;
	return 0;
}

/* The file that a view filled by file_snapshot holds. */
static const struct file *view_file(const struct view *v)
{
	return v->obj;
}

static int fdir_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	return file_snapshot(tree, op, n, mode, v);
}

/* file.json and the value files, as the file kind renders them. */
static int fvalue_view(struct tree *tree, struct op *op, const struct node *n,
		       enum store_mode mode, struct view *v)
{
	int r = file_snapshot(tree, op, n, mode, v);

	if (r == 0)
		r = kind_render(&file_kind, view_file(v), n->name, &v->owned,
				&v->len);
	if (r < 0) {
		view_release(v);
		return r;
	}
	v->data = v->owned;
	return 0;
}

/*
 * content: its size is the FileObject's bytes until the content is on disk
 * complete, then the real one. stat sends nothing for a file kimifs has a
 * copy of; open attaches a reader of the disk cache (starting the download
 * when the content is not there).
 */
static int content_view(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	uint64_t size;
	int r = file_snapshot(tree, op, n, mode, v);

	if (r < 0)
		return r;
	v->len = (size_t)view_file(v)->bytes;
	if (cache_real_size(tree->cache, n->id, &size))
		v->len = (size_t)size;
	return 0;
}

static int content_open(struct tree *tree, struct op *op, struct open_file *f,
			int flags)
{
	struct view *v = &f->view;
	int r = tree_view_open(tree, op, f, flags);

	if (r == 0)
		r = cache_reader_open(tree->cache, f->node.id, (int64_t)v->len,
				      &v->reader);
	if (r < 0) {
		view_release(v);
		return r;
	}
	if (cache_reader_complete(v->reader)) {
		/* Exact and never changing: the kernel may keep its pages. */
		v->len = (size_t)cache_reader_size(v->reader);
		v->immutable = 1;
	}
	return 0;
}

/* A read of the content: the range asked for once it is there (a
 * download under way is waited on only that far; at the deadline, what
 * came), spliced from the disk cache's file. */
static int content_read(struct tree *tree, struct op *op, struct open_file *f,
			size_t size, off_t off, struct open_read *out)
{
	(void)tree;
	out->pos = off;
	return cache_reader_read(f->view.reader, op, size, off, &out->fd,
				 &out->len);
}

static const struct open_ops content_ops = {
    .open = content_open,
    .read = content_read,
};

static int fctl_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	int r = file_snapshot(tree, op, n, STORE_ANY, v);

	(void)mode;
	if (r < 0)
		return r;
	v->owned = ctl_outcome(&tree->file_ctl->outcomes, n->id);
	v->data = v->owned ? v->owned : "";
	v->len = strlen(v->data);
	return 0;
}

static ssize_t fctl_write(struct tree *tree, struct op *op, struct open_file *f,
			  const char *buf, size_t size, off_t off,
			  uint64_t owner)
{
	(void)owner;
	return file_ctl_write(tree->file_ctl, op, f->node.id, buf, size,
			      open_file_at(f, off));
}

static const struct open_ops fctl_ops = {
    .open = tree_view_open,
    .read = tree_view_read,
    .write = fctl_write,
};

static const struct node_type type_fvalue = {
    .what = "file value",
    .mode = S_IFREG | 0444,
    .view = fvalue_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_content = {
    .what = "file content",
    .mode = S_IFREG | 0444,
    .view = content_view,
    .open_ops = &content_ops,
};

static const struct node_type type_fctl = {
    .what = "file ctl",
    .mode = S_IFREG | 0600,
    .view = fctl_view,
    .open_ops = &fctl_ops,
};

/* The entries of a file directory, in listing order: file.json, the value
 * files the FileObject has, content and ctl. */
static const struct node_child file_children[] = {
    {.kind = &file_kind, .type = &type_fvalue},
    {.name = "content", .type = &type_content},
    {.name = "ctl", .type = &type_fctl},
    {0},
};

static const struct node_type type_file = {
    .what = "file directory",
    .mode = S_IFDIR | 0555,
    .view = fdir_view,
    .children = file_children,
};

/* by-name/<filename>: "../<id>" of the newest file of that name. */
static int namelink_view(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	char *id = NULL;
	int r = files_by_name(tree->files, op, n->name, &id);
	size_t len;

	(void)mode;
	if (r < 0)
		return r;
	len = strlen(id) + 4;
	v->owned = malloc(len);
	if (!v->owned) {
		free(id);
		return -ENOMEM;
	}
	snprintf(v->owned, len, "../%s", id);
	free(id);
	v->data = v->owned;
	v->len = strlen(v->owned);
	v->mtime = tree->mount_time;
	return 0;
}

static const struct node_type type_namelink = {
    .what = "by-name link",
    .mode = S_IFLNK | 0777,
    .view = namelink_view,
};

static int byname_lookup(struct tree *tree, const struct node *dir,
			 const char *name, struct node *child)
{
	(void)tree;
	if (!batch_name_safe(name))
		return -ENOENT;
	return node_make(child, dir, &type_namelink, name);
}

static int byname_readdir(struct tree *tree, struct op *op,
			  const struct node *dir, const struct view *v,
			  struct dirlist *out)
{
	char **names;
	size_t n;
	int r = files_names(tree->files, op, &names, &n);

	(void)dir, (void)v;
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, names[i], S_IFLNK);
	listing_free_ids(names, n);
	return r;
}

static const struct node_type type_byname = {
    .what = "by-name directory",
    .mode = S_IFDIR | 0555,
    .view = tree_mount_view,
    .lookup = byname_lookup,
    .readdir = byname_readdir,
};

/* A file being written into files/: staged (stage.h), uploaded on close
 * and then gone (it is files/<id>/ from then on). */
static int fstaged_view(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	(void)op, (void)mode;
	return dir_stage_view(tree, STAGE_FILES, n, v);
}

static int fstaged_flush(struct tree *tree, struct op *op, struct open_file *o,
			 uint64_t owner)
{
	struct file *f;
	int r = stage_submit(tree->submit, op, o->state, owner, &f);

	file_unref(f);
	return r < 0 ? r : 0;
}

static const struct open_ops fstaged_ops = {
    .open = dir_stage_open_busy,
    .write = dir_stage_write,
    .read = dir_stage_read,
    .resize = dir_stage_resize,
    .flush = fstaged_flush,
    .release = dir_stage_release,
};

static const struct node_type type_fstaged = {
    .what = "staged file",
    .mode = S_IFREG | 0600,
    .view = fstaged_view,
    .open_ops = &fstaged_ops,
};

/* Names that cannot be file ids are ENOENT at once, with no request; so
 * are the names of uploads (*.jsonl) unless one is being written. */
static int files_lookup(struct tree *tree, const struct node *dir,
			const char *name, struct node *child)
{
	int r;

	if (dir_stage_lookup(tree, STAGE_FILES, &type_fstaged, dir, name, child,
			     &r))
		return r;
	if (!file_id_valid(name))
		return -ENOENT;
	return node_make_object(child, dir, &type_file, name);
}

static int files_readdir(struct tree *tree, struct op *op,
			 const struct node *dir, const struct view *v,
			 struct dirlist *out)
{
	char **ids;
	size_t n;
	int r = files_list(tree->files, op, &ids, &n);

	(void)dir, (void)v;
	if (r < 0)
		return r;
	r = dir_stage_readdir(tree, STAGE_FILES, ids, n, out);
	listing_free_ids(ids, n);
	return r;
}

/*
 * A new file in files/ (cp, `cat >`, tee): staged under its name, checked
 * and uploaded when it is closed. A name is that of a batch input file
 * (*.jsonl; else EINVAL, logged); one being written already is EBUSY.
 */
static int files_create(struct tree *tree, const struct node *dir,
			const char *name, struct node *child, void **state)
{
	return dir_stage_create(tree, STAGE_FILES, &type_fstaged, dir, name,
				child, state);
}

static const struct node_child files_children[] = {
    {.name = BY_NAME, .type = &type_byname},
    {0},
};

const struct node_type type_files = {
    .what = "files directory",
    .mode = S_IFDIR | 0755,
    .create = files_create,
    .view = tree_mount_view,
    .children = files_children,
    .lookup = files_lookup,
    .readdir = files_readdir,
};
