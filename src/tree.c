/*
 * tree.c - the root of the tree and what every node type shares: making
 * nodes, releasing views, attributes from a view, directory listings.
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "kimifs.h"
#include "log.h"

int tree_mount_view(struct kimifs *k, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	(void)op;
	(void)n;
	(void)mode;
	/* Not kept by the kernel although it never changes: a stat of the
	 * mount point must reach the daemon, to say ENOTCONN once it died. */
	v->mtime = k->mount_time;
	return 0;
}

/* MOUNT/stats: the counters as JSON, one snapshot per open. */
static int stats_view(struct kimifs *k, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	int r = stats_json(&k->stats, &v->owned, &v->len);

	(void)op;
	(void)n;
	(void)mode;
	v->data = v->owned;
	v->mtime = time(NULL);
	return r;
}

static const struct node_type type_stats = {
    .what = "stats",
    .mode = S_IFREG | 0444,
    .view = stats_view,
};

/* MOUNT/log: the mount's recent log lines, one snapshot per open. */
static int log_view(struct kimifs *k, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = log_recent(&v->owned, &v->len);

	(void)k;
	(void)op;
	(void)n;
	(void)mode;
	v->data = v->owned;
	v->mtime = time(NULL);
	return r;
}

static const struct node_type type_log = {
    .what = "log",
    .mode = S_IFREG | 0444,
    .view = log_view,
};

/* MOUNT/ctl: reads the outcome of its last command; opening it sends
 * nothing. */
static int root_ctl_view(struct kimifs *k, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	(void)op;
	(void)n;
	(void)mode;
	v->owned = ctl_root_outcome(&k->ctl);
	v->data = v->owned ? v->owned : "";
	v->len = strlen(v->data);
	v->mtime = k->mount_time;
	return 0;
}

static int root_ctl_write(struct kimifs *k, struct op *op, const struct node *n,
			  const char *buf, size_t size, off_t off)
{
	(void)n;
	return ctl_root_write(k, op, buf, size, off);
}

static const struct node_type type_root_ctl = {
    .what = "ctl",
    .mode = S_IFREG | 0600,
    .flags = NT_WRITABLE,
    .view = root_ctl_view,
    .write = root_ctl_write,
};

/* The entries of the mount root, in listing order. */
static const struct {
	const char *name;
	const struct node_type *type;
} root_children[] = {
    {"batches", &type_batches}, {"files", &type_files}, {"ctl", &type_root_ctl},
    {"stats", &type_stats},	{"log", &type_log},
};
#define NROOT (sizeof(root_children) / sizeof(root_children[0]))

static int root_lookup(struct kimifs *k, const struct node *dir,
		       const char *name, struct node *child)
{
	(void)k;
	for (size_t i = 0; i < NROOT; i++)
		if (strcmp(name, root_children[i].name) == 0)
			return node_make(child, dir, root_children[i].type,
					 name);
	return -ENOENT;
}

static int root_readdir(struct kimifs *k, struct op *op, const struct node *dir,
			struct dirlist *out)
{
	int r = 0;

	(void)k;
	(void)op;
	(void)dir;
	for (size_t i = 0; r == 0 && i < NROOT; i++)
		r = dirlist_add(out, root_children[i].name,
				root_children[i].type->mode & S_IFMT);
	return r;
}

static const struct node_type type_root = {
    .what = "mount root",
    .mode = S_IFDIR | 0555,
    .subdirs = 2,
    .view = tree_mount_view,
    .lookup = root_lookup,
    .readdir = root_readdir,
};

void tree_root(struct node *out)
{
	memset(out, 0, sizeof(*out));
	out->type = &type_root;
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

void view_release(struct view *v)
{
	batch_unref(v->snap);
	cache_reader_close(v->reader);
	if (v->drop)
		v->drop(v->hold);
	free(v->owned);
	memset(v, 0, sizeof(*v));
}

void tree_stat(const struct kimifs *k, const struct node *n,
	       const struct view *v, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = n->type->mode;
	st->st_uid = k->uid;
	st->st_gid = k->gid;
	st->st_mtime = st->st_ctime = st->st_atime = v->mtime;
	st->st_blksize = 4096;
	if (S_ISDIR(n->type->mode)) {
		st->st_nlink = 2 + n->type->subdirs;
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
