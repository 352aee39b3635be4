/*
 * job_ctl.h - the commands of a job's ctl file (jobs/NAME/ctl): a table of
 * words, each with its handler, which takes the job's name, the operation
 * and what it uses (struct job_ctl, never the mount) and returns 0 or
 * -errno with its outcome message. cancel, refresh, clean, resume and retry
 * are here (job_ctl.c); another command is one more row of the table.
 */
#ifndef KIMIFS_JOB_CTL_H
#define KIMIFS_JOB_CTL_H

#include <stddef.h>
#include <sys/types.h>

#include "ctl_outcome.h"

struct api;
struct batches;
struct file_ctl;
struct job_create;
struct job_keep;
struct job_retry;
struct jobs;
struct op;

/* What the commands of jobs use (none owned; all outlive it), and the
 * outcome line of each job's last command (its own, by job name). */
struct job_ctl {
	struct ctl_outcomes outcomes;
	struct api *api;
	struct batches *batches; /* cancel, refresh: the jobs' batches */
	struct jobs *jobs;	 /* the jobs' snapshots */
	struct file_ctl *files;	 /* clean: the deletes of input files */
	const struct job_create *create; /* resume: the missing parts */
	struct job_keep *keep;		 /* resume: the kept inputs */
	/* retry: a new round (job_retry.h); NULL until set after
	 * job_ctl_init: retry is then ENOTSUP. */
	const struct job_retry *retry;
};

/* Set up c over what it uses; job_ctl_destroy frees the outcome lines. */
void job_ctl_init(struct job_ctl *c, struct api *api, struct batches *batches,
		  struct jobs *jobs, struct file_ctl *files,
		  const struct job_create *create, struct job_keep *keep);
void job_ctl_destroy(struct job_ctl *c);

/*
 * One command of a job's ctl: run on job name as part of op, with what c
 * holds. 0, or -errno (the write's errno); msg (len bytes) says what came
 * of it either way, for the outcome line ("cancel: ok: <msg>", "cancel:
 * failed: <msg>").
 */
typedef int job_cmd_fn(struct job_ctl *c, struct op *op, const char *name,
		       char *msg, size_t len);

struct job_cmd {
	const char *word;
	job_cmd_fn *run;
};

/*
 * Run one command written to job name's ctl: buf (size bytes) at offset
 * off, exactly one word of the table with white space around it (else
 * -EINVAL, logged, nothing sent). Returns size, or the command's -errno.
 * Records and logs the outcome line.
 */
int job_ctl_write(struct job_ctl *c, struct op *op, const char *name,
		  const char *buf, size_t size, off_t off);

/* Claim the making of job name's parts (a resume, or a cp into jobs/): 0
 * when this caller may make them, -EBUSY while another does in this mount,
 * or -ENOMEM; job_ctl_release lets a claim go. So no part is made twice by
 * two makers at once. */
int job_ctl_claim(struct job_ctl *c, const char *name);
void job_ctl_release(struct job_ctl *c, const char *name);

/* A malloc'd copy of the outcome line of job name's last command since
 * the mount, or NULL. */
char *job_ctl_outcome(struct job_ctl *c, const char *name);

#endif
