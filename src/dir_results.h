/*
 * dir_results.h - the results/ and usage/ directories of a batch
 * (dir_results.c), for the batch directory's table in dir_batches.c.
 */
#ifndef KIMIFS_DIR_RESULTS_H
#define KIMIFS_DIR_RESULTS_H

#include "tree.h"

extern const struct node_type type_results; /* batches/<id>/results/ */
extern const struct node_type type_usage;   /* batches/<id>/usage/ */

/* The child called name of a results/ directory, a file of type t: a name
 * that cannot be a result (results_split) is -ENOENT at once, with no
 * request. */
int dir_results_child(const struct node *dir, const char *name,
		      const struct node_type *t, struct node *child);

#endif
