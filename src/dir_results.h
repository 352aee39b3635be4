/*
 * dir_results.h - the results/ and usage/ directories of a batch
 * (dir_results.c), for the batch directory's table in dir_batches.c.
 */
#ifndef KIMIFS_DIR_RESULTS_H
#define KIMIFS_DIR_RESULTS_H

#include "tree.h"

extern const struct node_type type_results; /* batches/<id>/results/ */
extern const struct node_type type_usage;   /* batches/<id>/usage/ */

#endif
