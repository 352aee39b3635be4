/*
 * job_results.c - the merged indexes of jobs kept (job_results.h): one
 * build per job snapshot shared by concurrent callers, most recently used
 * first within JOB_RESULTS_KEPT, and the renderings of result files shared
 * by their holders within a memory bound.
 */
#include "job_results.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "job_index.h"
#include "results_cache.h"
#include "util.h"

/* ---- the cache of indexes --------------------------------------------- */

void job_results_init(struct job_results *c, struct results_cache *results,
		      struct cache *disk)
{
	memset(c, 0, sizeof(*c));
	c->results = results;
	c->disk = disk;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&c->condattr);
	pthread_condattr_setclock(&c->condattr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->built, &c->condattr);
}

/* Count x's files in the disk cache's bytes (-o cache_size): the least
 * recently used contents go to make room. */
static void index_charge(struct job_results *c, struct job_index *x)
{
	struct stat st;

	for (int f = 0; f < F_NFILES; f++)
		if (x->fd[f] >= 0 && fstat(x->fd[f], &st) == 0)
			x->charged += (uint64_t)st.st_blocks * 512;
	cache_charge(c->disk, (int64_t)x->charged);
}

static void index_free(struct job_index *x)
{
	if (x->charged)
		cache_charge(x->cache->disk, -(int64_t)x->charged);
	for (int f = 0; f < F_NFILES; f++)
		if (x->fd[f] >= 0)
			close(x->fd[f]);
	job_unref(x->job);
	free(x);
}

/* Take x out of the list (lock held); freed now if nobody holds it. */
static void unlink_index(struct job_results *c, struct job_index *x)
{
	if (!x->linked)
		return;
	if (x->prev)
		x->prev->next = x->next;
	else
		c->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->linked = 0;
	c->count--;
	if (x->refs == 0)
		index_free(x);
}

static void push_front(struct job_results *c, struct job_index *x)
{
	x->prev = NULL;
	x->next = c->head;
	if (c->head)
		c->head->prev = x;
	c->head = x;
}

void job_results_destroy(struct job_results *c)
{
	while (c->head)
		unlink_index(c, c->head);
	pthread_cond_destroy(&c->built);
	pthread_condattr_destroy(&c->condattr);
	pthread_mutex_destroy(&c->lock);
}

/* Drop the least recently used indexes nobody holds past the bound, and
 * the other indexes of job name nobody holds: made of older copies of its
 * batches (lock held). */
static void evict(struct job_results *c, const struct job_index *keep)
{
	struct job_index *x = c->head, *next;
	size_t seen = 0;

	for (; x; x = next) {
		next = x->next;
		seen++;
		if (x == keep || x->refs || x->building)
			continue;
		if (seen > JOB_RESULTS_KEPT ||
		    strcmp(x->job->name, keep->job->name) == 0)
			unlink_index(c, x);
	}
}

/* The signature of j: its name, its batches and their files. Whether any
 * batch has a file, in *files. */
static uint64_t signature(const struct job *j, int *files)
{
	uint64_t h =
	    util_hash_bytes(j->name, strlen(j->name) + 1, UTIL_HASH_SEED);
	static const char *const fields[] = {"output_file_id", "error_file_id"};

	*files = 0;
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct batch *b = j->batches[i].batch;
		char id[256];

		h = util_hash_bytes(b->id, strlen(b->id) + 1, h);
		for (int k = 0; k < 2; k++) {
			batch_file_id(b, fields[k], id, sizeof(id));
			*files |= id[0] != '\0';
			h = util_hash_bytes(id, strlen(id) + 1, h);
		}
	}
	return h;
}

/* The held rendering of (x, rec, txt), or NULL (lock held). */
static struct job_render *render_find(struct job_results *c,
				      const struct job_index *x, uint64_t rec,
				      int txt)
{
	struct job_render *rd = c->renders;

	while (rd && !(rd->x == x && rd->rec == rec && rd->txt == txt))
		rd = rd->next;
	return rd;
}

int job_render_get(struct job_results *c, struct op *op, struct job_index *x,
		   const struct job_entry *e, int txt, struct job_render **out)
{
	size_t want = results_render_bound(e->len, txt);
	struct job_render *rd, *other;
	char *line = NULL;
	int r = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	rd = render_find(c, x, e->rec, txt);
	if (rd) {
		rd->refs++;
		*out = rd;
	} else if (c->render_bytes + want > RESULTS_RENDER_BYTES) {
		r = -ENOMEM;
	} else {
		c->render_bytes += want;
	}
	pthread_mutex_unlock(&c->lock);
	if (*out || r < 0)
		return r;

	/* Made outside the lock; a caller that made the same one first
	 * wins, and this one is let go. */
	rd = calloc(1, sizeof(*rd));
	r = rd ? job_index_line(x, op, e, &line) : -ENOMEM;
	if (r == 0)
		r = (txt ? results_render_txt : results_render_json)(
		    line, e->len, &rd->buf, &rd->len);
	free(line);
	pthread_mutex_lock(&c->lock);
	c->render_bytes -= want;
	other = r == 0 ? render_find(c, x, e->rec, txt) : NULL;
	if (other) {
		other->refs++;
		*out = other;
	} else if (r == 0) {
		rd->data = rd->buf ? rd->buf : "";
		rd->cache = c;
		rd->x = x;
		x->refs++;
		rd->rec = e->rec;
		rd->txt = txt;
		rd->refs = 1;
		rd->bytes = rd->len;
		c->render_bytes += rd->bytes;
		rd->next = c->renders;
		c->renders = rd;
		*out = rd;
		rd = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (rd)
		free(rd->buf);
	free(rd);
	return r;
}

void job_render_release(struct job_render *rd)
{
	struct job_results *c;
	struct job_render **p;

	if (!rd)
		return;
	c = rd->cache;
	pthread_mutex_lock(&c->lock);
	if (--rd->refs > 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	for (p = &c->renders; *p != rd; p = &(*p)->next)
		;
	*p = rd->next;
	c->render_bytes -= rd->bytes;
	pthread_mutex_unlock(&c->lock);
	job_index_release(rd->x);
	free(rd->buf);
	free(rd);
}

void job_index_release(struct job_index *x)
{
	struct job_results *c;

	if (!x)
		return;
	c = x->cache;
	pthread_mutex_lock(&c->lock);
	if (--x->refs == 0 && !x->linked)
		index_free(x);
	pthread_mutex_unlock(&c->lock);
}

int job_results_get(struct job_results *c, struct op *op, struct job *j,
		    struct job_index **out)
{
	struct job_index *x;
	int files, r = 0;
	uint64_t sig = signature(j, &files);

	*out = NULL;
	if (!files)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (x = c->head; x && !(x->sig == sig &&
					 strcmp(x->job->name, j->name) == 0);
		     x = x->next)
			;
		if (!x)
			break;
		x->refs++;
		if (!x->building) {
			if (c->head != x) {
				x->prev->next = x->next;
				if (x->next)
					x->next->prev = x->prev;
				push_front(c, x);
			}
			*out = x;
			goto out_unlock;
		}
		/* Another caller builds it: wait, then look again (a failed
		 * build is gone from the list, and this caller tries). */
		r = op_cond_wait(op, &c->built, &c->lock, 0.1);
		if (--x->refs == 0 && !x->linked)
			index_free(x);
		if (r < 0)
			goto out_unlock;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		r = -ENOMEM;
		goto out_unlock;
	}
	for (int f = 0; f < F_NFILES; f++)
		x->fd[f] = -1;
	x->job = job_ref(j);
	x->cache = c;
	x->sig = sig;
	x->refs = 1;
	x->building = 1;
	x->linked = 1;
	push_front(c, x);
	c->count++;
	pthread_mutex_unlock(&c->lock);

	r = job_index_build(x, op, c->results, c->disk);
	if (r == 0)
		index_charge(c, x);

	pthread_mutex_lock(&c->lock);
	x->building = 0;
	if (r < 0) {
		unlink_index(c, x);
		if (--x->refs == 0)
			index_free(x);
	} else {
		*out = x;
		evict(c, x);
	}
	pthread_cond_broadcast(&c->built);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return r;
}
