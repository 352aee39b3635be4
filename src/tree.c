/*
 * tree.c - what every node type shares: the view of what never changes
 * but the mount's time, making nodes, releasing views, attributes from a
 * view, directory listings. The root's own type is in dir_root.c.
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "kind.h"
#include "progress.h"

int tree_progress_view(struct view *v, const uint64_t counts[3],
		       unsigned batches, unsigned running, int64_t started)
{
	struct progress p = {
	    .total = counts[0],
	    .done = counts[1] + counts[2],
	    .failed = counts[2],
	    .batches = batches,
	    .running = running,
	    .started = (double)started,
	    .now = (double)time(NULL),
	};

	v->owned = malloc(PROGRESS_LINE_MAX);
	if (!v->owned)
		return -ENOMEM;
	progress_line(&p, v->owned, PROGRESS_LINE_MAX);
	v->data = v->owned;
	v->len = strlen(v->owned);
	v->immutable = v->told = 0; /* its estimate moves with time */
	return 0;
}

int tree_mount_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	(void)op;
	(void)n;
	(void)mode;
	/* Not kept by the kernel although it never changes: a stat of the
	 * mount point must reach the daemon, to say ENOTCONN once it died. */
	v->mtime = tree->mount_time;
	return 0;
}

int tree_fixed_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = tree_mount_view(tree, op, n, mode, v);

	v->immutable = 1;
	return r;
}

void view_unkept_empty(struct view *v)
{
	v->immutable = v->told = 0;
	v->data = "";
	v->len = 0;
}

void view_outcome(struct view *v, char *line)
{
	v->immutable = v->told = 0;
	v->owned = line;
	v->data = line ? line : "";
	v->len = strlen(v->data);
}

int node_make(struct node *child, const struct node *parent,
	      const struct node_type *t, const char *name)
{
	size_t n = strlen(name);

	if (n > NODE_NAME_MAX)
		return -ENOENT;
	memset(child, 0, sizeof(*child));
	child->type = t;
	memcpy(child->id, parent->id, sizeof(child->id));
	memcpy(child->name, name, n + 1);
	return 0;
}

int node_make_object(struct node *child, const struct node *parent,
		     const struct node_type *t, const char *name)
{
	int r = node_make(child, parent, t, name);

	if (r == 0)
		memcpy(child->id, child->name, sizeof(child->id));
	return r;
}

void view_hold(struct view *v, void *obj, void (*unref)(void *obj))
{
	v->obj = obj;
	v->unref = unref;
}

void view_release(struct view *v)
{
	if (v->obj)
		v->unref(v->obj);
	cache_reader_close(v->reader);
	if (v->drop)
		v->drop(v->hold);
	free(v->owned);
	memset(v, 0, sizeof(*v));
}

/* Call fn(ctx, row, name) for each child name of type t's table, stopping
 * at the first nonzero result, which it returns. */
static int each_child(const struct node_type *t,
		      int (*fn)(void *ctx, const struct node_child *row,
				const char *name),
		      void *ctx)
{
	int r = 0;

	for (const struct node_child *c = t->children;
	     r == 0 && c && (c->name || c->kind); c++) {
		if (c->name)
			r = fn(ctx, c, c->name);
		for (size_t i = 0; r == 0 && !c->name && i < c->kind->nvalues;
		     i++) {
			const struct object_value *v = &c->kind->values[i];
			struct node_child one = {.name = v->name,
						 .type = c->type,
						 .present = v->present,
						 .hidden = c->hidden};

			r = fn(ctx, &one, one.name);
		}
	}
	return r;
}

struct child_find {
	const char *name;
	const struct node_type *type; /* of the child found */
};

static int match_child(void *ctx, const struct node_child *row,
		       const char *name)
{
	struct child_find *f = ctx;

	if (strcmp(f->name, name) != 0)
		return 0;
	f->type = row->type;
	return 1;
}

int tree_lookup(struct tree *tree, const struct node *dir, const char *name,
		struct node *child)
{
	struct child_find f = {name, NULL};

	if (each_child(dir->type, match_child, &f))
		return node_make(child, dir, f.type, name);
	if (dir->type->lookup)
		return dir->type->lookup(tree, dir, name, child);
	return -ENOENT; /* costs no request */
}

struct child_list {
	const struct view *v;
	struct dirlist *out;
};

static int list_child(void *ctx, const struct node_child *row, const char *name)
{
	struct child_list *l = ctx;

	if (row->hidden || (row->present && !row->present(l->v->obj, name)))
		return 0;
	return dirlist_add(l->out, name, row->type->mode & S_IFMT);
}

int tree_list(struct tree *tree, struct op *op, const struct node *dir,
	      struct dirlist *out, void **list)
{
	const struct node_type *t = dir->type;
	struct view v = {0};
	struct child_list l = {&v, out};
	int r = t->view(tree, op, dir, STORE_FRESH, &v);

	*list = NULL;
	if (r == 0)
		r = each_child(t, list_child, &l);
	if (r == 0 && t->readdir)
		r = t->readdir(tree, op, dir, &v, out);
	if (r == 0 && t->list_open)
		r = t->list_open(tree, op, dir, &v, list);
	view_release(&v);
	return r;
}

static int count_subdir(void *ctx, const struct node_child *row,
			const char *name)
{
	(void)name;
	*(unsigned *)ctx += S_ISDIR(row->type->mode);
	return 0;
}

void tree_stat(const struct tree *tree, const struct node *n,
	       const struct view *v, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = n->type->mode;
	st->st_uid = tree->uid;
	st->st_gid = tree->gid;
	st->st_mtime = st->st_ctime = st->st_atime = v->mtime;
	/* A file one may write (a staged input, a ctl) asks for large
	 * writes: cp writes in blocks of its st_blksize, and each write is a
	 * round trip to the daemon (1 GiB: 1.9 s in 128 KiB, 0.6 s in 1 MiB).
	 */
	st->st_blksize = n->type->mode & S_IWUSR ? TREE_WRITE_BLKSIZE : 4096;
	if (S_ISDIR(n->type->mode)) {
		unsigned subdirs = 0;

		each_child(n->type, count_subdir, &subdirs);
		st->st_nlink = 2 + subdirs;
	} else {
		st->st_nlink = 1;
		st->st_size = (off_t)v->len;
		st->st_blocks = (blkcnt_t)((v->len + 511) / 512);
	}
}

int dirlist_add(struct dirlist *l, const char *name, mode_t mode)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **names = realloc(l->names, cap * sizeof(*names));
		mode_t *modes;

		if (!names)
			return -ENOMEM;
		l->names = names;
		modes = realloc(l->modes, cap * sizeof(*modes));
		if (!modes)
			return -ENOMEM;
		l->modes = modes;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -ENOMEM;
	l->modes[l->n++] = mode;
	return 0;
}

void dirlist_free(struct dirlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->modes);
	memset(l, 0, sizeof(*l));
}

void open_read_slice(struct open_read *out, const char *data, size_t len,
		     size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= len)
		return;
	out->data = data + off;
	out->len = size < len - (size_t)off ? size : len - (size_t)off;
}

int tree_view_open(struct tree *tree, struct op *op, struct open_file *f,
		   int flags)
{
	(void)flags;
	return f->node.type->view(tree, op, &f->node, STORE_FRESH, &f->view);
}

int tree_view_read(struct tree *tree, struct op *op, struct open_file *f,
		   size_t size, off_t off, struct open_read *out)
{
	(void)tree, (void)op;
	open_read_slice(out, f->view.data, f->view.len, size, off);
	return 0;
}

const struct open_ops tree_view_ops = {
    .open = tree_view_open,
    .read = tree_view_read,
};

off_t open_file_at(const struct open_file *f, off_t off)
{
	return f->append ? 0 : off;
}
