/*
 * cache.c - the disk cache of file contents: the LRU list of the complete
 * contents in its directory, the downloads under way (one thread each,
 * shared by every reader of that file), and the readers. See cache.h; the
 * directory itself is cache_dir.c's.
 */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_dir.h"
#include "file.h"
#include "log.h"
#include "util.h"

/* How often a waiting reader looks at its op's interrupt flag. */
#define POLL_S 0.05
/* A download has no bound of its own but a stall (http.h stall_bound). */
#define DOWNLOAD_BOUND_S (7 * 86400.0)

/* One complete content on disk. Guarded by the cache's lock. */
struct cache_entry {
	struct cache_entry *newer, *older;
	uint64_t size;
	int whole; /* downloaded by this mount, or found whole on open; not
		      yet when only found on disk at start */
	char id[FILE_ID_MAX + 1];
};

/* One download under way, and its end. Guarded by the cache's lock,
 * except fd and the names, fixed once made. */
struct download {
	struct download *next; /* in c->downloads while under way */
	struct cache *c;
	char id[FILE_ID_MAX + 1];
	char tmp[CACHE_TMP_NAME_MAX];
	int fd;			/* the temporary file, read and write */
	int64_t expected;	/* the FileObject's bytes, or -1 */
	size_t have;		/* bytes of the current attempt on file */
	int ended;		/* the whole answer is on file (have) */
	int forgotten;		/* the file was deleted meanwhile */
	int done;		/* kept, or failed: err says how */
	int err;		/* 0 or -errno */
	size_t len;		/* the whole length, once done with err 0 */
	int refs;		/* the thread and each reader */
	pthread_cond_t changed; /* broadcast when have or done change */
	struct op op;
};

struct cache_reader {
	struct cache *c;
	int fd;		     /* the content on disk (own), or -1 */
	struct download *dl; /* or the download (a reference) */
	uint64_t size;	     /* with fd */
};

/* ------------------------------------------------------------------ */
/* The LRU list (lock held) */

static void lru_unlink(struct cache *c, struct cache_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push(struct cache *c, struct cache_entry *e)
{
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	c->newest = e;
	if (!c->oldest)
		c->oldest = e;
}

static struct cache_entry *lru_find(struct cache *c, const char *id)
{
	for (struct cache_entry *e = c->newest; e; e = e->older)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void lru_drop(struct cache *c, struct cache_entry *e)
{
	lru_unlink(c, e);
	c->used -= e->size;
	STAT_SET(c->stats, disk_bytes, c->used);
	free(e);
}

/* Remove the least recently used contents until the cap holds. Readers
 * keep what they have open. */
static void evict(struct cache *c)
{
	while (c->used > c->cap && c->oldest) {
		struct cache_entry *e = c->oldest;

		if (unlinkat(c->dirfd, e->id, 0) < 0 && errno != ENOENT)
			log_warn("cache: cannot remove %s: %s", e->id,
				 strerror(errno));
		log_debug("cache: evicted %s (%llu bytes)", e->id,
			  (unsigned long long)e->size);
		lru_drop(c, e);
	}
}

void cache_charge(struct cache *c, int64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	if (bytes < 0)
		c->used -= (uint64_t)-bytes;
	else
		c->used += (uint64_t)bytes;
	STAT_SET(c->stats, disk_bytes, c->used);
	evict(c);
	pthread_mutex_unlock(&c->lock);
}

/* Add a complete content, as the newest (lock held); whole as in struct
 * cache_entry. */
static int lru_add(struct cache *c, const char *id, uint64_t size, int whole)
{
	struct cache_entry *e = lru_find(c, id);

	if (e)
		lru_drop(c, e); /* another mount replaced it */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->size = size;
	e->whole = whole;
	lru_push(c, e);
	c->used += size;
	STAT_SET(c->stats, disk_bytes, c->used);
	return 0;
}

/* ------------------------------------------------------------------ */
/* What an earlier mount left */

/* A temporary file kimifs made (name, what it was) of a process that no
 * longer runs: remove it, and say what it was. */
static void sweep_tmp(struct cache *c, const char *name, const char *what,
		      long pid)
{
	if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
		return; /* its process may still use it */
	if (unlinkat(c->dirfd, name, 0) == 0)
		log_info("cache: removed %s, %s left by a process that ended",
			 name, what);
}

struct found {
	char *id;
	uint64_t size;
	struct timespec mtime;
};

static int by_mtime(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

/* Learn the contents on disk (regular files of ours named by an id that
 * no one else may read, in a directory tagged as kimifs's), least recently used
 * first out (by mtime); sweep the temporary files of processes that ended. */
static int scan(struct cache *c)
{
	DIR *d = cache_dir_list(c->dirfd);
	struct found *all = NULL;
	size_t n = 0, cap = 0;
	const struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d))) {
		struct stat st;
		const char *what;
		long pid = 0;

		/* Only names kimifs makes: other files are left alone. */
		if (de->d_name[0] == '.') {
			what = cache_tmp_kind(de->d_name, &pid);
			if (what)
				sweep_tmp(c, de->d_name, what, pid);
			continue;
		}
		if (strcmp(de->d_name, CACHE_TAG_NAME) == 0 ||
		    !file_id_valid(de->d_name) ||
		    fstatat(c->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
		    (st.st_mode & 0077))
			continue; /* not one kimifs made (0600, its own) */
		if (n == cap) {
			struct found *more;

			cap = cap ? cap * 2 : 64;
			more = realloc(all, cap * sizeof(*all));
			if (!more) {
				r = -ENOMEM;
				break;
			}
			all = more;
		}
		all[n].id = strdup(de->d_name);
		if (!all[n].id) {
			r = -ENOMEM;
			break;
		}
		all[n].size = (uint64_t)st.st_size;
		all[n].mtime = st.st_mtim;
		n++;
	}
	closedir(d);
	if (n)
		qsort(all, n, sizeof(*all), by_mtime);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			r = lru_add(c, all[i].id, all[i].size, 0);
		free(all[i].id);
	}
	free(all);
	return r;
}

int cache_init(struct cache *c, const char *dir, uint64_t cap,
	       cache_download_fn download, void *ctx, char *why, size_t whylen)
{
	pthread_condattr_t ca;
	char tmpl[64];
	const char *tmpdir = getenv("TMPDIR");

	memset(c, 0, sizeof(*c));
	c->dirfd = -1;
	c->cap = cap;
	c->download = download;
	c->ctx = ctx;
	c->dir = dir ? strdup(dir) : cache_dir_default();
	if (c->dir &&
	    cache_dir_open(c->dir, !dir, &c->dirfd, why, whylen) < 0) {
		if (dir)
			goto fail;
		log_warn("%s; using a private temporary directory", why);
		free(c->dir);
		c->dir = NULL;
	}
	if (!c->dir) {
		/* No default to be had (e.g. a user with no home): a
		 * directory of this mount only, removed when it ends. */
		snprintf(tmpl, sizeof(tmpl), "%s/kimifs-cache-XXXXXX",
			 tmpdir && tmpdir[0] == '/' && strlen(tmpdir) < 32
			     ? tmpdir
			     : "/tmp");
		if (!mkdtemp(tmpl)) {
			snprintf(why, whylen,
				 "cannot make a cache directory: %s",
				 strerror(errno));
			goto fail;
		}
		c->dir = strdup(tmpl);
		c->private_dir = 1;
		if (!c->dir ||
		    cache_dir_open(tmpl, 0, &c->dirfd, why, whylen) < 0)
			goto fail;
		log_info("cache: %s, for this mount only", c->dir);
	}
	if (scan(c) < 0) {
		snprintf(why, whylen, "cannot read cache_dir %s", c->dir);
		goto fail;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->idle, &ca);
	pthread_condattr_destroy(&ca);
	evict(c);
	log_debug("cache: %s, %llu of %llu bytes used", c->dir,
		  (unsigned long long)c->used, (unsigned long long)c->cap);
	return 0;
fail:
	while (c->oldest)
		lru_drop(c, c->oldest);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->dir);
	c->dir = NULL;
	return -1;
}

/* Remove every file of a private directory, then the directory. */
static void remove_private(struct cache *c)
{
	DIR *d = cache_dir_list(c->dirfd);
	const struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			unlinkat(c->dirfd, de->d_name, 0);
	closedir(d);
	rmdir(c->dir);
}

void cache_destroy(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	for (struct download *d = c->downloads; d; d = d->next)
		op_interrupt(&d->op);
	while (c->threads > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (c->private_dir)
		remove_private(c);
	while (c->oldest)
		lru_drop(c, c->oldest);
	close(c->dirfd);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
}

/* ------------------------------------------------------------------ */
/* Downloads */

/* Drop one reference to d (lock held); the last one frees it. */
static void download_put(struct download *d)
{
	if (--d->refs > 0)
		return;
	close(d->fd);
	pthread_cond_destroy(&d->changed);
	free(d);
}

static void on_sink(void *arg, size_t sunk)
{
	struct download *d = arg;

	pthread_mutex_lock(&d->c->lock);
	d->have = sunk;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->c->lock);
}

/* Stamp fd's times with the clock's now, to the nanosecond: the kernel's
 * own stamp (a write, futimens with NULL) is its coarse clock, one tick
 * for everything that happened within it, so a use just after a download
 * could look as old as it and the order of use be lost on a remount. */
static void stamp(int fd)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[1] = ts[0];
	futimens(fd, ts);
}

/* Keep a finished download: on disk for good, renamed into place. */
static int keep(struct download *d, size_t len)
{
	struct cache *c = d->c;

	(void)len;
	stamp(d->fd);
	if (fdatasync(d->fd) < 0 ||
	    renameat(c->dirfd, d->tmp, c->dirfd, d->id) < 0)
		return -errno;
	return 0;
}

static void *download_main(void *arg)
{
	struct download *d = arg;
	struct cache *c = d->c;
	struct api_error err = {0};
	size_t len = 0;
	int r =
	    c->download(c->ctx, &d->op, d->id, d->fd, on_sink, d, &len, &err);

	if (r == 0) {
		/* Readers have it all now, and stat its real size; keeping
		 * it (a sync to disk) need not hold them up. */
		if (d->expected >= 0 && (uint64_t)d->expected != len)
			log_warn("file %s: the content is %zu bytes, its "
				 "FileObject says %lld; showing %zu",
				 d->id, len, (long long)d->expected, len);
		pthread_mutex_lock(&c->lock);
		d->have = len;
		d->len = len;
		d->ended = 1;
		pthread_cond_broadcast(&d->changed);
		pthread_mutex_unlock(&c->lock);
	}
	if (r == 0 && (r = keep(d, len)) < 0)
		snprintf(err.message, sizeof(err.message),
			 "cannot keep it in %s: %s", c->dir, strerror(-r));
	if (r < 0) {
		/* Nothing cut short stays: the next open tries again. */
		unlinkat(c->dirfd, d->tmp, 0);
		if (r == -EINTR && c->stopping)
			log_debug("file %s: download stopped", d->id);
		else
			log_err("file %s: content download failed: %s", d->id,
				api_error_message(&err, r));
	}
	pthread_mutex_lock(&c->lock);
	for (struct download **p = &c->downloads; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	if (r == 0 && d->forgotten)
		unlinkat(c->dirfd, d->id, 0); /* deleted while it came */
	else if (r == 0 && lru_add(c, d->id, len, 1) == 0)
		evict(c);
	d->done = 1;
	d->err = r;
	pthread_cond_broadcast(&d->changed);
	download_put(d);
	c->threads--;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Start the download of id (lock held): 0 with *out (one reference for
 * the caller, one for the thread), or -errno. */
static int download_start(struct cache *c, const char *id, int64_t expected,
			  struct download **out)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	pthread_t t;
	struct download *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->c = c;
	d->expected = expected;
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->fd = cache_tmp_open(c->dirfd, CACHE_TMP_DOWNLOAD, id, d->tmp,
			       sizeof(d->tmp));
	if (d->fd < 0) {
		r = d->fd;
		log_err("file %s: cannot make a file in %s: %s", id, c->dir,
			strerror(-r));
		free(d);
		return r;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->changed, &ca);
	pthread_condattr_destroy(&ca);
	d->op.deadline = util_now() + DOWNLOAD_BOUND_S;
	d->refs = 2;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&t, &attr, download_main, d);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		unlinkat(c->dirfd, d->tmp, 0);
		d->refs = 1;
		download_put(d);
		return r;
	}
	c->threads++;
	d->next = c->downloads;
	c->downloads = d;
	*out = d;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Readers */

/*
 * Whether the content e, open as fd, is whole (lock held): its size on
 * disk is the one kimifs knew, and, for a content not known whole yet,
 * the FileObject's (expected; -1: unknown, then it stays not known
 * whole). Logs what is wrong; a content found whole is known so from then
 * on, also to cache_size_of.
 */
static int kept_whole(struct cache *c, struct cache_entry *e, int fd,
		      int64_t expected)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_warn("file %s: cannot stat %s/%s: %s; downloading it again",
			 e->id, c->dir, e->id, strerror(errno));
		return 0;
	}
	if ((uint64_t)st.st_size != e->size) {
		log_warn("file %s: the content kept in %s is %lld bytes, it "
			 "was %llu; downloading it again",
			 e->id, c->dir, (long long)st.st_size,
			 (unsigned long long)e->size);
		return 0;
	}
	if (!e->whole && expected >= 0 && (uint64_t)expected != e->size) {
		log_warn("file %s: the content kept in %s is %llu bytes, its "
			 "FileObject says %lld; downloading it again",
			 e->id, c->dir, (unsigned long long)e->size,
			 (long long)expected);
		return 0;
	}
	if (expected >= 0)
		e->whole = 1;
	return 1;
}

int cache_reader_open(struct cache *c, const char *id, int64_t expected,
		      struct cache_reader **out)
{
	struct cache_reader *r = calloc(1, sizeof(*r));
	struct cache_entry *e;
	struct download *d;
	int err = 0;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->fd = -1;
	pthread_mutex_lock(&c->lock);
	e = lru_find(c, id);
	if (e) {
		r->fd = openat(c->dirfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (r->fd >= 0 && !kept_whole(c, e, r->fd, expected)) {
			/* Cut short (or changed) on disk: never served. */
			close(r->fd);
			r->fd = -1;
			unlinkat(c->dirfd, id, 0);
		}
		if (r->fd >= 0) {
			/* Read from start to end: a larger readahead. */
			posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
			r->size = e->size;
			lru_unlink(c, e);
			lru_push(c, e);
			/* The order of use survives a remount. */
			stamp(r->fd);
			STAT_ADD(c->stats, disk_hits, 1);
			goto out;
		}
		lru_drop(c, e); /* removed behind our back, or not whole */
	}
	for (d = c->downloads; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			break;
	if (d) {
		d->refs++;
	} else if (c->stopping) {
		err = -EINTR;
		goto out;
	} else {
		err = download_start(c, id, expected, &d);
		if (err < 0)
			goto out;
	}
	r->dl = d;
	STAT_ADD(c->stats, disk_misses, 1);
out:
	pthread_mutex_unlock(&c->lock);
	if (err < 0) {
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void cache_reader_close(struct cache_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->dl) {
		pthread_mutex_lock(&r->c->lock);
		download_put(r->dl);
		pthread_mutex_unlock(&r->c->lock);
	}
	free(r);
}

int cache_reader_complete(const struct cache_reader *r)
{
	return r->fd >= 0;
}

uint64_t cache_reader_size(const struct cache_reader *r)
{
	return r->size;
}

/* Wait on d's change (lock held) until op's deadline, a little at a time
 * so an interrupt is seen: 0, -ETIMEDOUT or -EINTR. */
static int wait_change(struct download *d, const struct op *op)
{
	return op_cond_wait(op, &d->changed, &d->c->lock, POLL_S);
}

int cache_reader_read(struct cache_reader *r, struct op *op, size_t size,
		      off_t off, int *fd, size_t *n)
{
	struct download *d = r->dl;
	int err = 0;

	*n = 0;
	if (off < 0)
		return -EINVAL;
	if (r->fd >= 0) {
		*fd = r->fd;
		if ((uint64_t)off < r->size)
			*n = r->size - (uint64_t)off < size
				 ? (size_t)(r->size - (uint64_t)off)
				 : size;
		return 0;
	}
	*fd = d->fd;
	pthread_mutex_lock(&r->c->lock);
	for (;;) {
		/* The whole range asked for, or what there is at the end. */
		if (d->have >= (size_t)off + size ||
		    ((d->ended || d->done) && d->have > (size_t)off)) {
			*n = d->have - (size_t)off < size
				 ? d->have - (size_t)off
				 : size;
			break;
		}
		if (d->ended || d->done) {
			err = d->ended ? 0 : d->err;
			break;
		}
		err = wait_change(d, op);
		if (err == -ETIMEDOUT && d->have > (size_t)off) {
			/* A slow download: what came in time, not an
			 * error (the next read waits for the rest). */
			*n = d->have - (size_t)off;
			err = 0;
			break;
		}
		if (err < 0)
			break;
	}
	pthread_mutex_unlock(&r->c->lock);
	return err;
}

int cache_reader_wait(struct cache_reader *r, struct op *op, int *fd)
{
	struct download *d = r->dl;
	char path[64];
	int err = 0;

	if (r->fd >= 0) {
		*fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
		return *fd >= 0 ? 0 : -errno;
	}
	pthread_mutex_lock(&r->c->lock);
	while (!d->ended && !d->done && err == 0)
		err = wait_change(d, op);
	if (err == 0 && !d->ended)
		err = d->err;
	pthread_mutex_unlock(&r->c->lock);
	if (err < 0)
		return err;
	/* A descriptor of its own, read-only, of the same file (renamed
	 * into place, or already evicted: it stays readable). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->fd);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd >= 0 ? 0 : -errno;
}

int cache_size_of(struct cache *c, const char *id, uint64_t *size)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = lru_find(c, id);
	if (e && !e->whole)
		e = NULL;
	if (e)
		*size = e->size;
	pthread_mutex_unlock(&c->lock);
	return e != NULL;
}

int cache_real_size(struct cache *c, const char *id, uint64_t *size)
{
	if (cache_size_of(c, id, size))
		return 1;
	pthread_mutex_lock(&c->lock);
	for (struct download *d = c->downloads; d; d = d->next)
		if (d->ended && strcmp(d->id, id) == 0) {
			*size = d->len;
			pthread_mutex_unlock(&c->lock);
			return 1;
		}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void cache_forget(struct cache *c, const char *id)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = lru_find(c, id);
	if (e) {
		unlinkat(c->dirfd, e->id, 0);
		lru_drop(c, e);
	}
	for (struct download *d = c->downloads; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			d->forgotten = 1;
	pthread_mutex_unlock(&c->lock);
}
