/*
 * job_keep.c - kept inputs of jobs (job_keep.h): files named NAME.jsonl in
 * the cache directory's jobs/, and the list of their names in memory, so
 * that asking whether a job has one costs no I/O.
 */
#include "job_keep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define KEPT_EXT ".jsonl"

struct job_keep_name {
	struct job_keep_name *next;
	char name[]; /* the job's */
};

/* The kept file's name of job name into out: 0, or -ENAMETOOLONG. */
static int kept_name(const char *name, char *out, size_t size)
{
	int n = snprintf(out, size, "%s" KEPT_EXT, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The slot of name in the list, or of its end (lock held). */
static struct job_keep_name **find_locked(struct job_keep *k, const char *name)
{
	struct job_keep_name **p = &k->names;

	while (*p && strcmp((*p)->name, name) != 0)
		p = &(*p)->next;
	return p;
}

/* Add name to the list when it is not there (lock held): 0 or -ENOMEM. */
static int add_locked(struct job_keep *k, const char *name)
{
	struct job_keep_name **p = find_locked(k, name);
	size_t len = strlen(name) + 1;

	if (*p)
		return 0;
	*p = malloc(sizeof(**p) + len);
	if (!*p)
		return -ENOMEM;
	(*p)->next = NULL;
	memcpy((*p)->name, name, len);
	return 0;
}

/* The kept inputs' directory, open: made when mk and missing. A
 * descriptor, or -errno. */
static int open_dir(struct job_keep *k, int mk)
{
	int fd;

	if (mk && mkdirat(k->dirfd, JOB_KEEP_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(k->dirfd, JOB_KEEP_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int job_keep_init(struct job_keep *k, const char *dir, int dirfd)
{
	const struct dirent *de;
	DIR *d;
	int fd, r = 0;

	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->dir = dir;
	k->dirfd = dirfd;
	fd = open_dir(k, 0);
	if (fd < 0)
		return 0; /* none kept yet */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while (r == 0 && (de = readdir(d))) {
		size_t n = strlen(de->d_name), e = strlen(KEPT_EXT);
		char name[NAME_MAX + 1];

		if (de->d_name[0] == '.' || n <= e ||
		    strcmp(de->d_name + n - e, KEPT_EXT) != 0)
			continue;
		memcpy(name, de->d_name, n - e);
		name[n - e] = '\0';
		r = add_locked(k, name);
		if (r == 0)
			log_info("job %s: its input is kept in %s/" JOB_KEEP_DIR
				 "/%s until every part exists: echo resume > "
				 "jobs/%s/ctl makes the missing ones",
				 name, dir, de->d_name, name);
	}
	closedir(d);
	return r;
}

void job_keep_destroy(struct job_keep *k)
{
	while (k->names) {
		struct job_keep_name *next = k->names->next;

		free(k->names);
		k->names = next;
	}
	pthread_mutex_destroy(&k->lock);
}

int job_keep_put(struct job_keep *k, const char *name, const char *path)
{
	char file[NAME_MAX + 1];
	struct stat st;
	int fd = -1, r = kept_name(name, file, sizeof(file));

	pthread_mutex_lock(&k->lock);
	if (r == 0)
		fd = r = open_dir(k, 1);
	if (r < 0)
		goto out;
	if (unlinkat(fd, file, 0) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if (linkat(AT_FDCWD, path, fd, file, 0) < 0 ||
	    fstatat(fd, file, &st, 0) < 0) {
		r = -errno;
		goto out;
	}
	r = add_locked(k, name);
out:
	pthread_mutex_unlock(&k->lock);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		log_err("job %s: its input cannot be kept in %s/" JOB_KEEP_DIR
			": %s; should its creation stop halfway, resume needs "
			"the input copied again",
			name, k->dir, strerror(-r));
	return r;
}

int job_keep_open(struct job_keep *k, const char *name, int *fd, uint64_t *size)
{
	char file[NAME_MAX + 1];
	struct stat st;
	int dfd, r = kept_name(name, file, sizeof(file));

	*fd = -1;
	if (r < 0)
		return -ENOENT;
	dfd = open_dir(k, 0);
	if (dfd < 0)
		return dfd;
	*fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	r = *fd < 0 ? -errno : 0;
	close(dfd);
	if (r == 0 && fstat(*fd, &st) < 0)
		r = -errno;
	if (r == 0 && !S_ISREG(st.st_mode))
		r = -ENOENT;
	if (r < 0) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return r;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

int job_keep_has(struct job_keep *k, const char *name)
{
	int has;

	pthread_mutex_lock(&k->lock);
	has = *find_locked(k, name) != NULL;
	pthread_mutex_unlock(&k->lock);
	return has;
}

int job_keep_drop(struct job_keep *k, const char *name)
{
	struct job_keep_name **p, *gone = NULL;
	char file[NAME_MAX + 1];
	int fd, r = 0;

	pthread_mutex_lock(&k->lock);
	p = find_locked(k, name);
	if (*p) {
		gone = *p;
		*p = gone->next;
	}
	/* On the disk whether listed or not: another mount of the same
	 * cache directory may have kept it. */
	if (kept_name(name, file, sizeof(file)) == 0 &&
	    (fd = open_dir(k, 0)) >= 0) {
		r = unlinkat(fd, file, 0) == 0;
		close(fd);
		/* Nothing left behind: the directory goes with its last
		 * (when it holds another's, it stays). */
		unlinkat(k->dirfd, JOB_KEEP_DIR, AT_REMOVEDIR);
	}
	pthread_mutex_unlock(&k->lock);
	free(gone);
	return r;
}
