/*
 * dir_root.c - the mount root's node type and its own files: stats (the
 * counters as JSON), log (the recent log lines) and ctl (`refresh`: a full
 * listing), beside progress (dir_progress.c), events (dir_events.c),
 * batches/ (dir_batches.c), files/ (dir_files.c) and jobs/ (dir_jobs.c), all
 * named in one table of children.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "log.h"
#include "stats.h"
#include "tree.h"

/* A text made anew at each open (stats, log): r, the outcome of making it
 * into v->owned, and v shows it as of now. */
static int fresh_view(int r, struct view *v)
{
	v->data = v->owned;
	v->mtime = time(NULL);
	return r;
}

/* MOUNT/stats: the counters as JSON, one snapshot per open. */
static int stats_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	(void)op, (void)n, (void)mode;
	return fresh_view(stats_json(tree->stats, &v->owned, &v->len), v);
}

static const struct node_type type_stats = {
    .what = "stats",
    .mode = S_IFREG | 0444,
    .view = stats_view,
    .open_ops = &tree_view_ops,
};

/* MOUNT/log: the mount's recent log lines, one snapshot per open. */
static int log_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	(void)tree, (void)op, (void)n, (void)mode;
	return fresh_view(log_recent(&v->owned, &v->len), v);
}

static const struct node_type type_log = {
    .what = "log",
    .mode = S_IFREG | 0444,
    .view = log_view,
    .open_ops = &tree_view_ops,
};

/* MOUNT/ctl: reads the outcome of its last command; opening it sends
 * nothing. */
static int root_ctl_view(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	(void)op;
	(void)n;
	(void)mode;
	view_outcome(v, ctl_root_outcome(tree->ctl));
	v->mtime = tree->mount_time;
	return 0;
}

static ssize_t root_ctl_write(struct tree *tree, struct op *op,
			      struct open_file *f, const char *buf, size_t size,
			      off_t off, uint64_t owner)
{
	(void)owner;
	return ctl_root_write(tree->ctl, op, buf, size, open_file_at(f, off));
}

static const struct open_ops root_ctl_ops = {
    .open = tree_view_open,
    .read = tree_view_read,
    .write = root_ctl_write,
};

static const struct node_type type_root_ctl = {
    .what = "ctl",
    .mode = S_IFREG | 0600,
    .view = root_ctl_view,
    .open_ops = &root_ctl_ops,
};

/* The entries of the mount root, in listing order. */
static const struct node_child root_children[] = {
    {.name = "batches", .type = &type_batches},
    {.name = "files", .type = &type_files},
    {.name = "jobs", .type = &type_jobs},
    {.name = "ctl", .type = &type_root_ctl},
    {.name = "stats", .type = &type_stats},
    {.name = "log", .type = &type_log},
    {.name = "progress", .type = &type_progress},
    {.name = "events", .type = &type_events, .hidden = 1},
    {0},
};

static const struct node_type type_root = {
    .what = "mount root",
    .mode = S_IFDIR | 0555,
    .view = tree_mount_view,
    .children = root_children,
};

void tree_root(struct node *out)
{
	memset(out, 0, sizeof(*out));
	out->type = &type_root;
}
