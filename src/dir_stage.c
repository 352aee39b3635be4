/*
 * dir_stage.c - the node type of a staged file (see dir_stage.h): the
 * tree's side of stage.c, which knows nothing of nodes.
 */
#include "dir_stage.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

int dir_stage_view(struct tree *tree, enum stage_dir dir, const struct node *n,
		   struct view *v)
{
	uint64_t size;

	if (stage_stat(tree->stage, dir, n->name, &size, &v->mtime) < 0) {
		/* Unstaged since: only the inode of a descriptor still open
		 * gets here (lookups of the name are ENOENT), and its fstat
		 * must not fail; it is empty now. */
		v->len = 0;
		v->mtime = time(NULL);
		return 0;
	}
	v->len = (size_t)size;
	return 0;
}

static int add_regular(void *ctx, const char *name)
{
	return dirlist_add(ctx, name, S_IFREG);
}

int dir_stage_list(struct tree *tree, enum stage_dir dir, struct dirlist *out)
{
	return stage_each(tree->stage, dir, add_regular, out);
}

int dir_stage_open_busy(struct tree *tree, struct op *op, struct open_file *f,
			int flags)
{
	(void)tree, (void)op, (void)f, (void)flags;
	return -EBUSY;
}

ssize_t dir_stage_write(struct tree *tree, struct op *op, struct open_file *f,
			const char *buf, size_t size, off_t off, uint64_t owner)
{
	(void)tree, (void)op;
	return stage_write(f->state, buf, size, off, owner);
}

int dir_stage_read(struct tree *tree, struct op *op, struct open_file *f,
		   size_t size, off_t off, struct open_read *out)
{
	ssize_t n;

	(void)tree, (void)op;
	out->owned = malloc(size ? size : 1);
	if (!out->owned)
		return -ENOMEM;
	n = stage_read(f->state, out->owned, size, off);
	if (n < 0)
		return (int)n;
	out->data = out->owned;
	out->len = (size_t)n;
	return 0;
}

int dir_stage_resize(struct open_file *f, uint64_t size)
{
	return stage_resize(f->state, size);
}

void dir_stage_release(struct open_file *f)
{
	stage_release(f->state);
}

int dir_stage_create(struct tree *tree, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, void **state)
{
	struct staged *st;
	int r = stage_check_name(name);

	if (r == 0)
		r = node_make(child, dir, t, name);
	if (r == 0)
		r = stage_create(tree->stage, which, name, &st);
	if (r == 0)
		*state = st;
	return r;
}

int dir_stage_lookup(struct tree *tree, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, int *r)
{
	uint64_t size;
	time_t mtime;

	if (!stage_upload_name(name))
		return 0;
	*r = stage_stat(tree->stage, which, name, &size, &mtime)
		 ? -ENOENT
		 : node_make(child, dir, t, name);
	return 1;
}

int dir_stage_readdir(struct tree *tree, enum stage_dir which, char **ids,
		      size_t n, struct dirlist *out)
{
	int r = dir_stage_list(tree, which, out);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, ids[i], S_IFDIR);
	return r;
}
