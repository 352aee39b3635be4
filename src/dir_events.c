/*
 * dir_events.c - MOUNT/events (events.h): a file each open of which reads
 * the stream of changes from then on (after -o events_backlog lines), and
 * whose read waits, holding no thread, for the next line when there is
 * none yet (EAGAIN when non-blocking). Found by name, never listed, so
 * that grep -r, find and tar never wait on it. Each lookup of it is a node
 * of its own (per_lookup), whose id is the token of the reader its open
 * makes: fstat shows that reader's size, which grows as lines come, so
 * that tail -f, which reads what the size grew by, follows it. A read at
 * the end that an lseek to the end showed gives the end of file once
 * instead of waiting: tail reads a file of size 0 to its end before it
 * follows it, and cat, which never asks, waits.
 */
#include <errno.h>
#include <stdlib.h>

#include "events.h"
#include "opts.h"
#include "tree.h"

static uint64_t token_of(const struct node *n)
{
	return strtoull(n->id, NULL, 10);
}

/* The reader's size and the time of the last line; the kernel keeps
 * neither. */
static int events_view(struct tree *tree, struct op *op, const struct node *n,
		       enum store_mode mode, struct view *v)
{
	uint64_t size;
	time_t mtime = 0;
	int r = events_size(token_of(n), &size, &mtime);

	(void)op, (void)mode;
	if (r < 0)
		return r;
	v->len = (size_t)size;
	v->mtime = mtime ? mtime : tree->mount_time;
	return 0;
}

static int events_file_open(struct tree *tree, struct op *op,
			    struct open_file *f, int flags)
{
	struct events_reader *r;
	int err;

	(void)flags;
	err = events_open(token_of(&f->node), tree->opts->events_backlog, &r);
	if (err == 0)
		err = events_view(tree, op, &f->node, STORE_ANY, &f->view);
	if (err < 0) {
		events_close(r);
		return err;
	}
	f->state = r;
	return 0;
}

static int events_file_read(struct tree *tree, struct op *op,
			    struct open_file *f, size_t size, off_t off,
			    struct open_read *out)
{
	ssize_t n;

	(void)tree, (void)op;
	if (size == 0)
		return (int)events_read(f->state, NULL, 0, (uint64_t)off);
	out->owned = malloc(size);
	if (!out->owned)
		return -ENOMEM;
	n = events_read(f->state, out->owned, size, (uint64_t)off);
	if (n < 0)
		return (int)n;
	out->data = out->owned;
	out->len = (size_t)n;
	return 0;
}

static void events_file_release(struct open_file *f)
{
	events_close(f->state);
}

static void events_file_end_shown(struct open_file *f, uint64_t size)
{
	events_end_shown(f->state, size);
}

static const struct open_ops events_ops = {
    .open = events_file_open,
    .read = events_file_read,
    .release = events_file_release,
    .wake_add = events_wake_add,
    .wake_cancel = events_wake_cancel,
    .end_shown = events_file_end_shown,
};

const struct node_type type_events = {
    .what = "events",
    .mode = S_IFREG | 0444,
    .view = events_view,
    .open_ops = &events_ops,
    .per_lookup = 1,
};
