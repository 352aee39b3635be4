/*
 * dir_job_results.h - a job's merged results/, output.jsonl and
 * errors.jsonl, and usage/ (dir_job_results.c), for the job directory's
 * table in dir_jobs.c.
 */
#ifndef KIMIFS_DIR_JOB_RESULTS_H
#define KIMIFS_DIR_JOB_RESULTS_H

#include "tree.h"

extern const struct node_type type_jresults; /* jobs/NAME/results/ */
extern const struct node_type type_jstream;  /* output.jsonl, errors.jsonl */
extern const struct node_type type_jusage;   /* jobs/NAME/usage/ */

#endif
