/*
 * kimifs.h - the one state struct of a kimifs mount: the wiring that main
 * sets up and the FUSE glue uses. The node types of the tree see only the
 * part of it they use (struct tree, tree.h).
 */
#ifndef KIMIFS_H
#define KIMIFS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "api.h"
#include "fs_wait.h"
#include "cache.h"
#include "ctl.h"
#include "file_ctl.h"
#include "inode.h"
#include "job_auto.h"
#include "job_create.h"
#include "job_retry.h"
#include "job_ctl.h"
#include "job_keep.h"
#include "job_results.h"
#include "job_watch.h"
#include "opts.h"
#include "results_cache.h"
#include "stage.h"
#include "submit.h"
#include "store_batches.h"
#include "store_files.h"
#include "store_jobs.h"
#include "tree.h"
#include "watch.h"

struct handle; /* an open file or directory (fs.c) */
struct fuse_session;

struct kimifs {
	struct opts opts; /* the options, read-only once mounted */
	char *api_key;	  /* never logged, never shown */
	struct api api;
	struct batches batches; /* batch snapshots, the listing of batches/ */
	struct jobs jobs;	/* the jobs found in the listing of batches/ */
	struct ctl ctl;		/* ctl commands of batches and the mount */
	struct files files;	/* file snapshots, the listing of files/ */
	struct file_ctl file_ctl; /* files' ctl commands, their outcomes */
	struct cache cache;	  /* file contents on disk */
	struct stage stage;   /* files being written into files/, batches/ */
	struct submit submit; /* uploads and creations */
	struct job_create job_create;	/* making jobs (a cp into jobs/) */
	struct job_retry job_retry;	/* a job's retry rounds */
	struct job_auto job_auto;	/* the rounds of -o retry_rounds */
	struct job_watch job_watch;	/* the job lines of MOUNT/events */
	struct job_ctl job_ctl;		/* jobs' ctl commands, their outcomes */
	struct job_keep job_keep;	/* inputs of jobs made halfway */
	struct results_cache results;	/* results indexes kept in memory */
	struct job_results job_results; /* jobs' merged results, on disk */
	struct inodes inodes;
	struct watches watches;	     /* the waits of batches/<id>/wait */
	struct fs_waits waits;	     /* waits read again (fs_wait.h) */
	struct stats stats;	     /* what the mount has cost (MOUNT/stats) */
	pthread_mutex_t open_lock;   /* guards open_files */
	struct handle *open_files;   /* open files and directories (fs.c) */
	pthread_mutex_t notify_lock; /* guards se */
	struct fuse_session *se;     /* while mounted: to tell the kernel of
					changes (fs_attach) */
	struct tree tree; /* what the node types use: the above, the mount's
			     time and owner (main sets it up) */
	uint64_t tokens;  /* the last id given to a per_lookup node (atomic) */
};

#endif
