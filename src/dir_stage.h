/*
 * dir_stage.h - the node type of a file being written into files/ or
 * batches/ (stage.h), as both directories' types use it: its view, its
 * open file operations but the flush (each directory's own), and the
 * staged names of a directory in its listing.
 */
#ifndef KIMIFS_DIR_STAGE_H
#define KIMIFS_DIR_STAGE_H

#include <stdint.h>
#include <sys/types.h>

#include "stage.h"
#include "tree.h"

struct op;

/*
 * The view of staged name n->name in dir: its size so far (the mode comes
 * from the type); empty once unstaged, for the fstat of a descriptor still
 * open (lookups of the name are ENOENT by then). Always 0.
 */
int dir_stage_view(struct tree *tree, enum stage_dir dir, const struct node *n,
		   struct view *v);

/* Add the staged names of dir to out (as regular files). 0 or -ENOMEM. */
int dir_stage_list(struct tree *tree, enum stage_dir dir, struct dirlist *out);

/*
 * What files/ and batches/ share as directories of uploads (which: the
 * stage's directory; t: the node type of a staged name there):
 * - dir_stage_create: a new name, checked (stage_check_name: EINVAL) and
 *   staged (EBUSY when it is being written), a node of type t whose open
 *   file is its writer's (*state). 0 or -errno.
 * - dir_stage_lookup: 1 when name is an upload's name, with *r 0 and child
 *   a node of type t when it is being written, else -ENOENT (no request);
 *   0 when name is not an upload's.
 * - dir_stage_readdir: the staged names, then the n ids (directories).
 */
int dir_stage_create(struct tree *tree, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, void **state);
int dir_stage_lookup(struct tree *tree, enum stage_dir which,
		     const struct node_type *t, const struct node *dir,
		     const char *name, struct node *child, int *r);
int dir_stage_readdir(struct tree *tree, enum stage_dir which, char **ids,
		      size_t n, struct dirlist *out);

/* The open file operations of a staged file but the flush: a second
 * open is -EBUSY (a staged file has one writer, made by the create); the
 * writer's write, read, resize and release of its staged file. */
int dir_stage_open_busy(struct tree *tree, struct op *op, struct open_file *f,
			int flags);
ssize_t dir_stage_write(struct tree *tree, struct op *op, struct open_file *f,
			const char *buf, size_t size, off_t off,
			uint64_t owner);
int dir_stage_read(struct tree *tree, struct op *op, struct open_file *f,
		   size_t size, off_t off, struct open_read *out);
int dir_stage_resize(struct open_file *f, uint64_t size);
void dir_stage_release(struct open_file *f);

#endif
