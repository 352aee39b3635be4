/*
 * job_keep.h - the inputs of jobs whose creation stopped halfway, kept in
 * the cache directory (its subdirectory jobs/, as NAME.jsonl) until every
 * part of the job exists, so that `resume` makes the missing parts from
 * them, and a mount restarted with the same cache directory finds them by
 * the job's name. A kept input is the staged file itself, linked under its
 * new name: keeping it costs no copy and no room of the disk. It is
 * outside -o cache_size (never evicted: what the user wrote is not lost
 * silently), bounded by a job's staged bound (10 GB) and the disk.
 */
#ifndef KIMIFS_JOB_KEEP_H
#define KIMIFS_JOB_KEEP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* The subdirectory of the cache directory that holds them. */
#define JOB_KEEP_DIR "jobs"

struct job_keep_name;

struct job_keep {
	pthread_mutex_t lock;	     /* guards names */
	struct job_keep_name *names; /* the jobs with a kept input */
	const char *dir;	     /* the cache directory (for the log) */
	int dirfd;		     /* the cache directory, open */
};

/* Set up over the cache directory dir, open as dirfd (neither owned),
 * with the names of the inputs kept there already (by an earlier mount):
 * 0, or -ENOMEM. */
int job_keep_init(struct job_keep *k, const char *dir, int dirfd);
void job_keep_destroy(struct job_keep *k);

/*
 * Keep the file at path (a staged input, on the cache directory's disk) as
 * the input of job name, in place of any kept before: linked, not copied.
 * 0, or -errno (logged).
 */
int job_keep_put(struct job_keep *k, const char *name, const char *path);

/* The kept input of job name, open for reading, with its size: 0 with
 * *fd (the caller closes it), -ENOENT when there is none, or -errno. */
int job_keep_open(struct job_keep *k, const char *name, int *fd,
		  uint64_t *size);

/* Whether job name has a kept input (no I/O). */
int job_keep_has(struct job_keep *k, const char *name);

/* Remove the kept input of job name, when there is one (listed or not:
 * another mount of the same cache directory may have kept it): 1 when one
 * was removed, else 0. */
int job_keep_drop(struct job_keep *k, const char *name);

#endif
