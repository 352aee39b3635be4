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
struct kimifs;

/*
 * The view of staged name n->name in dir: its size so far (the mode comes
 * from the type); empty once unstaged, for the fstat of a descriptor still
 * open (lookups of the name are ENOENT by then). Always 0.
 */
int dir_stage_view(struct kimifs *k, enum stage_dir dir, const struct node *n,
		   struct view *v);

/* Add the staged names of dir to out (as regular files). 0 or -ENOMEM. */
int dir_stage_list(struct kimifs *k, enum stage_dir dir, struct dirlist *out);

/* A second open of a staged name: -EBUSY (a staged file has one writer). */
int dir_stage_open_busy(struct kimifs *k, const struct node *n, int flags,
			void **state);
/* The writer's write, read, resize and release of its staged file. */
ssize_t dir_stage_write(struct kimifs *k, struct op *op, void *state,
			const char *buf, size_t size, off_t off,
			uint64_t owner);
ssize_t dir_stage_read(void *state, char *buf, size_t size, off_t off);
int dir_stage_resize(void *state, uint64_t size);
void dir_stage_release(void *state);

#endif
