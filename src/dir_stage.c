/*
 * dir_stage.c - the node type of a staged file (see dir_stage.h): the
 * tree's side of stage.c, which knows nothing of nodes.
 */
#include "dir_stage.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>

#include "kimifs.h"

int dir_stage_view(struct kimifs *k, enum stage_dir dir, const struct node *n,
		   struct view *v)
{
	uint64_t size;

	if (stage_stat(&k->stage, dir, n->name, &size, &v->mtime) < 0) {
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

int dir_stage_list(struct kimifs *k, enum stage_dir dir, struct dirlist *out)
{
	return stage_each(&k->stage, dir, add_regular, out);
}

int dir_stage_open_busy(struct kimifs *k, const struct node *n, int flags,
			void **state)
{
	(void)k, (void)n, (void)flags, (void)state;
	return -EBUSY;
}

ssize_t dir_stage_write(struct kimifs *k, struct op *op, void *state,
			const char *buf, size_t size, off_t off, uint64_t owner)
{
	(void)k, (void)op;
	return stage_write(state, buf, size, off, owner);
}

ssize_t dir_stage_read(void *state, char *buf, size_t size, off_t off)
{
	return stage_read(state, buf, size, off);
}

int dir_stage_resize(void *state, uint64_t size)
{
	return stage_resize(state, size);
}

void dir_stage_release(void *state)
{
	stage_release(state);
}

int dir_stage_create(struct kimifs *k, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, void **state)
{
	struct staged *st;
	int r = stage_check_name(name);

	if (r == 0)
		r = node_make(child, dir, t, name);
	if (r == 0)
		r = stage_create(&k->stage, which, name, &st);
	if (r == 0)
		*state = st;
	return r;
}

int dir_stage_lookup(struct kimifs *k, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, int *r)
{
	uint64_t size;
	time_t mtime;

	if (!stage_upload_name(name))
		return 0;
	*r = stage_stat(&k->stage, which, name, &size, &mtime)
		 ? -ENOENT
		 : node_make(child, dir, t, name);
	return 1;
}

int dir_stage_readdir(struct kimifs *k, enum stage_dir which, char **ids,
		      size_t n, struct dirlist *out)
{
	int r = dir_stage_list(k, which, out);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = dirlist_add(out, ids[i], S_IFDIR);
	return r;
}
