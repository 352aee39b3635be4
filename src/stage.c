/*
 * stage.c - staged files (stage.h): a table of names being written, each
 * backed by a file in the cache directory; checked and uploaded (or handed
 * to the caller's flush: a job's input) on the first close after data was
 * written, and unstaged whatever the outcome.
 */
#include "stage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_dir.h"
#include "jsonl_check.h"
#include "log.h"
#include "submit.h"
#include "util.h"

struct staged {
	struct staged *next; /* in the table, while listed */
	struct stage *s;
	int refs; /* the table's (while listed) and the writer's */
	enum stage_dir dir;
	char name[STAGE_NAME_MAX + 1];
	char path[PATH_MAX];
	int fd;	       /* the file on disk, read and write */
	uint64_t size; /* its size: the furthest write or the last resize */
	time_t mtime;
	int dirty;	/* written since the last flush */
	uint64_t owner; /* who wrote last (a lock owner), or 0 */
	int listed;	/* the name is staged */
	int busy;	/* a flush is checking or uploading it */
	int failed;	/* -errno of a write or resize that failed, or 0 */
};

void stage_init(struct stage *s, const char *dir, int dirfd)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->dir = dir;
	s->dirfd = dirfd;
}

/* Drop one reference (lock held); the last one closes and frees st. */
static void put_locked(struct staged *st)
{
	if (--st->refs > 0)
		return;
	close(st->fd);
	free(st);
}

/* Take st out of the table and off the disk (lock held). */
static void unstage_locked(struct staged *st)
{
	struct stage *s = st->s;

	if (!st->listed)
		return;
	for (struct staged **p = &s->list; *p; p = &(*p)->next)
		if (*p == st) {
			*p = st->next;
			break;
		}
	st->listed = 0;
	unlink(st->path);
	put_locked(st);
}

void stage_destroy(struct stage *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->list)
		unstage_locked(s->list);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
}

static struct staged *find_locked(struct stage *s, enum stage_dir dir,
				  const char *name)
{
	for (struct staged *st = s->list; st; st = st->next)
		if (st->dir == dir && strcmp(st->name, name) == 0)
			return st;
	return NULL;
}

#define UPLOAD_EXT ".jsonl"

int stage_upload_name(const char *name)
{
	size_t n = strlen(name), e = strlen(UPLOAD_EXT);

	return n > e && strcmp(name + n - e, UPLOAD_EXT) == 0;
}

int stage_check_name(const char *name)
{
	const char *why = jsonl_name_problem(name);

	if (!why)
		return 0;
	log_err("%s: %s (a batch input file); nothing was staged", name, why);
	return -EINVAL;
}

int stage_create(struct stage *s, enum stage_dir dir, const char *name,
		 struct staged **out)
{
	struct staged *st;
	char disk[CACHE_TMP_NAME_MAX];
	int r = 0;

	*out = NULL;
	if (strlen(name) > STAGE_NAME_MAX)
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	if (find_locked(s, dir, name)) {
		r = -EBUSY;
		goto out_unlock;
	}
	st->fd =
	    cache_tmp_open(s->dirfd, CACHE_TMP_STAGE, NULL, disk, sizeof(disk));
	if (st->fd < 0) {
		r = st->fd;
		log_err("%s: cannot stage it in %s: %s", name, s->dir,
			strerror(-r));
		goto out_unlock;
	}
	snprintf(st->path, sizeof(st->path), "%s/%s", s->dir, disk);
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->s = s;
	st->dir = dir;
	st->mtime = time(NULL);
	st->listed = 1;
	st->refs = 2; /* the table's and the writer's */
	st->next = s->list;
	s->list = st;
	*out = st;
out_unlock:
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		free(st);
	return r;
}

int stage_stat(struct stage *s, enum stage_dir dir, const char *name,
	       uint64_t *size, time_t *mtime)
{
	const struct staged *st;
	int r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	st = find_locked(s, dir, name);
	if (st) {
		*size = st->size;
		*mtime = st->mtime;
		r = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int stage_each(struct stage *s, enum stage_dir dir,
	       int (*fn)(void *ctx, const char *name), void *ctx)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	for (const struct staged *st = s->list; r == 0 && st; st = st->next)
		if (st->dir == dir)
			r = fn(ctx, st->name);
	pthread_mutex_unlock(&s->lock);
	return r;
}

const char *stage_name(const struct staged *st)
{
	return st->name;
}

enum stage_dir stage_dir_of(const struct staged *st)
{
	return st->dir;
}

/*
 * Note that a write or resize of st by owner failed with err (lock held):
 * the file is poisoned, so its flush sends nothing and says why. The first
 * error is kept.
 */
static void fail_locked(struct staged *st, int err, uint64_t owner)
{
	if (!st->failed)
		st->failed = err;
	st->dirty = 1;
	st->owner = owner;
}

/* The most bytes a staged file of each dir may hold, and that limit as
 * the log names it. */
static const struct {
	uint64_t max;
	const char *what;
} limits[] = {
    [STAGE_FILES] = {JSONL_MAX_BYTES,
		     "the API's limit of 100 MiB for a batch input file"},
    [STAGE_BATCHES] = {JSONL_MAX_BYTES,
		       "the API's limit of 100 MiB for a batch input file"},
    [STAGE_JOBS] = {STAGE_JOB_MAX_BYTES,
		    "the account's room of 10 GB, the limit for a job's input"},
};

_Static_assert(JSONL_MAX_BYTES == 100UL << 20, "the log says 100 MiB");

/* Whether a file of size bytes is past the limit of st's dir (logged):
 * the write or resize that would make it is refused with -EFBIG. */
static int past_limit(const struct staged *st, uint64_t size)
{
	if (size <= limits[st->dir].max)
		return 0;
	log_err("upload %s: a write or resize to %llu bytes is past %s; "
		"refused",
		st->name, (unsigned long long)size, limits[st->dir].what);
	return 1;
}

ssize_t stage_write(struct staged *st, const char *buf, size_t size, off_t off,
		    uint64_t owner)
{
	struct stage *s = st->s;
	size_t done = 0;
	ssize_t r = 0;

	pthread_mutex_lock(&s->lock);
	if (!st->listed)
		r = -EBADF;
	else if (off < 0 || past_limit(st, (uint64_t)off + size))
		r = -EFBIG;
	if (r == -EFBIG)
		fail_locked(st, (int)r, owner);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	/* All of it or an error: a short write means the disk is full,
	 * which the next pwrite says. */
	while (done < size) {
		ssize_t n =
		    pwrite(st->fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	pthread_mutex_lock(&s->lock);
	if (r < 0) {
		fail_locked(st, (int)r, owner);
	} else {
		if ((uint64_t)off + size > st->size)
			st->size = (uint64_t)off + size;
		st->dirty = 1;
		st->owner = owner;
	}
	st->mtime = time(NULL);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : (ssize_t)size;
}

ssize_t stage_read(struct staged *st, char *buf, size_t size, off_t off)
{
	ssize_t n = pread(st->fd, buf, size, off);

	return n < 0 ? -errno : n;
}

int stage_resize(struct staged *st, uint64_t size)
{
	struct stage *s = st->s;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (!st->listed)
		r = -EBADF;
	else if (past_limit(st, size))
		r = -EFBIG;
	else if (ftruncate(st->fd, (off_t)size) < 0)
		r = -errno;
	if (r == 0) {
		st->size = size;
		st->mtime = time(NULL);
		st->dirty = 1;
	} else if (r != -EBADF) {
		fail_locked(st, r, st->owner);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Log each line of report (the problems of a file that breaks a rule). */
static void log_problems(const char *report)
{
	while (*report) {
		size_t len = strcspn(report, "\n");

		log_err("%.*s", (int)len, report);
		report += len;
		if (*report == '\n')
			report++;
	}
}

int stage_flush_begin(struct staged *st, uint64_t owner, uint64_t *size)
{
	struct stage *s = st->s;
	int r;

	pthread_mutex_lock(&s->lock);
	/* Nothing new (the flush of a redirection before its command
	 * writes), or the close of another process's copy of the
	 * descriptor (a child's exec closing it): not the writer's close. */
	if (!st->listed || !st->dirty || st->busy ||
	    (st->owner && owner && owner != st->owner)) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	st->dirty = 0;
	st->busy = 1;
	*size = st->size;
	r = st->failed;
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		/* What was written is not what the writer meant to send. */
		log_err("upload %s: not sent: a write to it failed: %s",
			st->name, strerror(-r));
		stage_flush_end(st);
		return r;
	}
	return 1;
}

void stage_flush_end(struct staged *st)
{
	struct stage *s = st->s;

	pthread_mutex_lock(&s->lock);
	st->busy = 0;
	unstage_locked(st);
	pthread_mutex_unlock(&s->lock);
}

int stage_fd(const struct staged *st)
{
	return st->fd;
}

const char *stage_path(const struct staged *st)
{
	return st->path;
}

int stage_submit(struct submit *sb, struct op *op, struct staged *st,
		 uint64_t owner, struct file **out)
{
	char *report = NULL;
	char why[512];
	uint64_t size;
	int r;

	*out = NULL;
	r = stage_flush_begin(st, owner, &size);
	if (r <= 0)
		return r;
	r = submit_check(st->path, st->name, &report);
	if (r == -EINVAL) {
		log_err("upload %s: refused, it breaks the rules of a batch "
			"input file:",
			st->name);
		log_problems(report);
	} else if (r < 0) {
		log_err("upload %s: cannot check it: %s", st->name,
			strerror(-r));
	}
	free(report);
	if (r < 0)
		goto out_end;
	op->deadline = util_now() + submit_upload_bound(sb, size);
	r = submit_upload(sb, op, st->path, st->name, out, why, sizeof(why));
out_end:
	stage_flush_end(st);
	return r < 0 ? r : 1;
}

void stage_release(struct staged *st)
{
	struct stage *s = st->s;

	pthread_mutex_lock(&s->lock);
	if (st->listed && !st->busy) {
		if (st->failed)
			log_err("upload %s: not sent: a write to it failed: %s",
				st->name, strerror(-st->failed));
		else if (st->size == 0)
			log_err("upload %s: refused: the file is empty",
				st->name);
		else
			log_err("upload %s: closed before it was sent; "
				"not uploaded",
				st->name);
		unstage_locked(st);
	}
	put_locked(st);
	pthread_mutex_unlock(&s->lock);
}

void stage_set_last(struct stage *s, const char *id)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->last, sizeof(s->last), "%s", id);
	pthread_mutex_unlock(&s->lock);
}

void stage_get_last(struct stage *s, char *out)
{
	pthread_mutex_lock(&s->lock);
	memcpy(out, s->last, sizeof(s->last));
	pthread_mutex_unlock(&s->lock);
}
