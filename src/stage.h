/*
 * stage.h - files being written into files/, batches/ or jobs/: each a name
 * in one of the directories and a file on disk in the cache directory (never
 * whole in memory), shown in listings with its growing size until it is
 * checked and uploaded on close (submit.h; a job's: job_create.h). A name is
 * staged once at a time. Also holds the id of the batch this mount created last
 * (read by batches/new).
 */
#ifndef KIMIFS_STAGE_H
#define KIMIFS_STAGE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "batch.h"

struct op;
struct submit;
struct file;

/* The longest name a staged file may have (a name of the tree's). */
#define STAGE_NAME_MAX 255

enum stage_dir { STAGE_FILES, STAGE_BATCHES, STAGE_JOBS };

/* The largest input of a job: the account's room for files (a job's parts
 * are all uploaded, so no larger input could ever be sent). The disk under
 * the cache directory bounds it too (a full disk fails the write). */
#define STAGE_JOB_MAX_BYTES 10000000000ULL

struct staged; /* one staged file, also the per-open state of its writer */

struct stage {
	pthread_mutex_t lock; /* guards everything below and each staged */
	struct staged *list;
	const char *dir; /* the cache directory, where the files live */
	int dirfd;	 /* dir, open */
	char last[BATCH_ID_MAX + 1]; /* the batch created last, or "" */
};

/* Set up an empty table of files kept in dir, open as dirfd (neither
 * owned; both outlive the table). */
void stage_init(struct stage *s, const char *dir, int dirfd);
/* Remove what is left (files still open when the mount ends). */
void stage_destroy(struct stage *s);

/*
 * Stage name in dir as a new empty file (mode 0600 on disk, named
 * .tmp-stage-<pid>-<seq>, so that a later mount sweeps what a dead one
 * left). 0 with the writer's reference in *out, -EBUSY when name is staged
 * already, or -errno of making the file.
 */
int stage_create(struct stage *s, enum stage_dir dir, const char *name,
		 struct staged **out);

/* Whether name is that of an upload (ends in .jsonl, a batch input file's
 * extension): such a name is never a file or batch id. */
int stage_upload_name(const char *name);

/* Whether a new file may be called name: 0, or -EINVAL (logged with the
 * reason, jsonl_name_problem) when it cannot be an upload's name. */
int stage_check_name(const char *name);

/* The size and time of staged name in dir: 0, or -ENOENT when it is not
 * staged. */
int stage_stat(struct stage *s, enum stage_dir dir, const char *name,
	       uint64_t *size, time_t *mtime);

/* Call fn(ctx, name) for each staged name of dir, under the stage's lock
 * (fn must not call back into the stage), until it returns non-zero: that
 * value, or 0. */
int stage_each(struct stage *s, enum stage_dir dir,
	       int (*fn)(void *ctx, const char *name), void *ctx);

/* The name, the dir of st. */
const char *stage_name(const struct staged *st);
enum stage_dir stage_dir_of(const struct staged *st);

/*
 * Write, read or resize the file of st: bytes or 0, or -errno (-EBADF once
 * its upload has ended). A write is all done or fails; a write or resize
 * past the dir's limit (JSONL_MAX_BYTES; a job's input: STAGE_JOB_MAX_BYTES)
 * is -EFBIG (logged). A write or resize that fails
 * poisons the file: its flush sends nothing and returns that error (a
 * prefix of what the writer meant is never uploaded). A write remembers
 * owner, the open file table (process) that wrote (the kernel's lock
 * owner; 0: not known).
 */
ssize_t stage_write(struct staged *st, const char *buf, size_t size, off_t off,
		    uint64_t owner);
ssize_t stage_read(struct staged *st, char *buf, size_t size, off_t off);
int stage_resize(struct staged *st, uint64_t size);

/*
 * The start of the flush of close() by owner, for a caller that sends st
 * itself (a job's input): 1 when something was written since the last
 * flush, by owner (or by a writer not known): st is then busy, its size in
 * *size and its file readable at stage_fd, until stage_flush_end. 0 when
 * there is nothing to send (a redirection's flush before its command
 * writes, another process's copy of the descriptor). -errno (logged) when
 * a write or resize failed: nothing may be sent, and st is unstaged.
 */
int stage_flush_begin(struct staged *st, uint64_t owner, uint64_t *size);
/* The end of a flush begun: st is unstaged whatever the outcome, so
 * nothing is left half done. */
void stage_flush_end(struct staged *st);
/* The file of st on disk, open for reading (pread), and its path. */
int stage_fd(const struct staged *st);
const char *stage_path(const struct staged *st);

/*
 * The flush of close() by owner: when something was written since the
 * last one, by owner (or by a writer not known), check the file (submit_check;
 * each problem logged) and upload it (submit_upload, with op's deadline moved
 * to submit_upload_bound). The name is unstaged whatever the outcome, so
 * nothing is left half done. 1 with the uploaded file in *out (one reference),
 * 0 when there was nothing new to send (*out NULL), or -errno: the error of a
 * write or resize that failed (nothing checked or sent), -EINVAL when the
 * file breaks a rule, the upload's error otherwise.
 */
int stage_submit(struct submit *sb, struct op *op, struct staged *st,
		 uint64_t owner, struct file **out);

/* The writer closed st for good: a name still staged (nothing was ever
 * written) is refused in the log and removed. Drops the writer's
 * reference. */
void stage_release(struct staged *st);

/* Remember id as the batch created last; copy it into out (size
 * BATCH_ID_MAX + 1; "" when none). */
void stage_set_last(struct stage *s, const char *id);
void stage_get_last(struct stage *s, char *out);

#endif
