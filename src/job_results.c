/*
 * job_results.c - a job's merged results on disk (job_results.h): made
 * from the batches' indexes one batch at a time through small write
 * buffers and a hash table read and written in place, read back a record
 * at a time; the indexes kept, most recently used first, one build per
 * snapshot shared by concurrent callers.
 */
#include "job_results.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cache_dir.h"
#include "content.h"
#include "log.h"
#include "results_cache.h"
#include "util.h"

/* One custom_id on disk. 40 bytes. */
struct jrec {
	uint64_t hash; /* of its name */
	uint64_t name; /* offset of its name (NUL-terminated) in F_NAMES */
	uint64_t off;
	uint32_t len;
	uint32_t batch;
	uint8_t src, has_txt, ok, pad[5];
};

/* A slot of the hash table: record + 1, 0 when free. 16 bytes. */
struct jslot {
	uint64_t hash;
	uint64_t rec;
};

/* A line of a stream: where it starts there, its record. 16 bytes. */
struct jspan {
	uint64_t start;
	uint64_t rec;
};

enum { F_RECS, F_NAMES, F_SLOTS, F_SPANS, F_NFILES = F_SPANS + JOB_NSTREAMS };

struct job_index {
	struct job *job; /* the snapshot it stands for (a reference) */
	int fd[F_NFILES];
	uint64_t n, nslots;
	uint64_t durable; /* records whose record and name are on disk */
	uint64_t lines[JOB_NSTREAMS], size[JOB_NSTREAMS];
	int64_t usage[USAGE_N];
	/* The fields below are the cache's, under its lock. */
	struct job_results *cache;
	uint64_t sig; /* of the job's name, batches and their files */
	int refs;
	int building;
	int linked;
	struct job_index *prev, *next;
};

/* ---- file helpers ----------------------------------------------------- */

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k =
		    pread(fd, (char *)buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		got += (size_t)k;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	size_t put = 0;

	while (put < n) {
		ssize_t k = pwrite(fd, (const char *)buf + put, n - put,
				   (off_t)(off + put));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		put += (size_t)k;
	}
	return 0;
}

/* An appending writer with a buffer: at is where the buffer goes. */
#define WBUF_SIZE (64u << 10)
struct wbuf {
	int fd;
	uint64_t at;
	size_t have;
	char buf[WBUF_SIZE];
};

static int wbuf_flush(struct wbuf *w)
{
	int r = pwrite_all(w->fd, w->buf, w->have, w->at);

	if (r == 0) {
		w->at += w->have;
		w->have = 0;
	}
	return r;
}

static int wbuf_put(struct wbuf *w, const void *p, size_t n)
{
	int r = 0;

	/* n is at most a record or a name, well below WBUF_SIZE. */
	if (w->have + n > WBUF_SIZE)
		r = wbuf_flush(w);
	if (r == 0) {
		memcpy(w->buf + w->have, p, n);
		w->have += n;
	}
	return r;
}

/* A new scratch file in the cache directory, unlinked at once. */
static int scratch(struct cache *disk)
{
	char name[CACHE_TMP_NAME_MAX];
	int fd = cache_tmp_open(disk->dirfd, CACHE_TMP_SCRATCH, NULL, name,
				sizeof(name));

	if (fd >= 0)
		unlinkat(disk->dirfd, name, 0);
	return fd;
}

/* ---- building --------------------------------------------------------- */

/* What a build writes through: the records and names appended. */
struct builder {
	struct job_index *x;
	struct wbuf recs, names;
};

static int rec_read(const struct job_index *x, uint64_t i, struct jrec *rec)
{
	return pread_all(x->fd[F_RECS], rec, sizeof(*rec), i * sizeof(*rec));
}

/* The slot of name (hash h): holding its record (*rec read), or the free
 * one where it goes (*rec untouched). 0, -EAGAIN when a record of the same
 * hash is not on disk yet (the builder's buffers hold it: flush them and
 * ask again), or -errno. */
static int slot_find(const struct job_index *x, const char *name, uint64_t h,
		     uint64_t *at, struct jslot *slot, struct jrec *rec)
{
	uint64_t mask = x->nslots - 1, i = h & mask;
	char buf[RESULTS_NAME_MAX + 1];
	size_t n = strlen(name);
	int r;

	for (;; i = (i + 1) & mask) {
		r = pread_all(x->fd[F_SLOTS], slot, sizeof(*slot),
			      i * sizeof(*slot));
		if (r < 0)
			return r;
		if (!slot->rec)
			break;
		if (slot->hash != h)
			continue;
		if (slot->rec > x->durable)
			return -EAGAIN;
		r = rec_read(x, slot->rec - 1, rec);
		if (r == 0)
			r = pread_all(x->fd[F_NAMES], buf, n + 1, rec->name);
		/* -EIO: a shorter name at the end of the file. */
		if (r < 0 && r != -EIO)
			return r;
		if (r == 0 && memcmp(buf, name, n + 1) == 0)
			break;
	}
	*at = i;
	return 0;
}

/* A table of twice the slots, made from the records (flushed). */
static int grow_slots(struct job_index *x)
{
	uint64_t n = x->nslots ? x->nslots * 2 : 1024;
	int r = 0;

	/* Emptied, then as long as the new table: its holes read as 0. */
	if (ftruncate(x->fd[F_SLOTS], 0) < 0 ||
	    ftruncate(x->fd[F_SLOTS], (off_t)(n * sizeof(struct jslot))) < 0)
		r = -errno;

	x->nslots = n;
	for (uint64_t i = 0; r == 0 && i < x->n; i++) {
		struct jrec rec;
		struct jslot s;
		uint64_t k;

		r = rec_read(x, i, &rec);
		for (k = rec.hash & (n - 1); r == 0; k = (k + 1) & (n - 1)) {
			r = pread_all(x->fd[F_SLOTS], &s, sizeof(s),
				      k * sizeof(s));
			if (r == 0 && !s.rec)
				break;
		}
		s.hash = rec.hash;
		s.rec = i + 1;
		if (r == 0)
			r = pwrite_all(x->fd[F_SLOTS], &s, sizeof(s),
				       k * sizeof(s));
	}
	return r;
}

static int flush_all(struct builder *b)
{
	int r = wbuf_flush(&b->recs);

	if (r == 0)
		r = wbuf_flush(&b->names);
	if (r == 0)
		b->x->durable = b->x->n;
	return r;
}

/*
 * Add entry e of batch bi (its index ix) to the index: a new custom_id
 * gets a record at the end; one seen before takes this line when it is a
 * success or the earlier one is not (later batches come later). 0 or
 * -errno.
 */
static int add_entry(struct builder *b, const struct results *ix,
		     const struct result *e, uint32_t bi)
{
	struct job_index *x = b->x;
	const char *name = results_name(ix, e);
	size_t n = strlen(name);
	uint64_t h = util_hash_bytes(name, n, UTIL_HASH_SEED), at;
	struct jrec rec = {0};
	struct jslot slot;
	int r = 0;

	if (x->n + 1 > x->nslots / 2) {
		r = flush_all(b);
		if (r == 0)
			r = grow_slots(x);
	}
	if (r == 0)
		r = slot_find(x, name, h, &at, &slot, &rec);
	if (r == -EAGAIN) {
		/* A record of the same hash is still in the buffer. */
		r = flush_all(b);
		if (r == 0)
			r = slot_find(x, name, h, &at, &slot, &rec);
	}
	if (r < 0)
		return r;
	if (slot.rec) {
		if (!e->ok && rec.ok)
			return 0;
		rec.off = e->off;
		rec.len = e->len;
		rec.batch = bi;
		rec.src = e->src;
		rec.has_txt = e->has_txt;
		rec.ok = e->ok;
		return pwrite_all(x->fd[F_RECS], &rec, sizeof(rec),
				  (slot.rec - 1) * sizeof(rec));
	}
	rec = (struct jrec){.hash = h,
			    .name = b->names.at + b->names.have,
			    .off = e->off,
			    .len = e->len,
			    .batch = bi,
			    .src = e->src,
			    .has_txt = e->has_txt,
			    .ok = e->ok};
	slot.hash = h;
	slot.rec = ++x->n;
	r = wbuf_put(&b->names, name, n + 1);
	if (r == 0)
		r = wbuf_put(&b->recs, &rec, sizeof(rec));
	if (r == 0)
		r = pwrite_all(x->fd[F_SLOTS], &slot, sizeof(slot),
			       at * sizeof(slot));
	return r;
}

/* Add every entry of batch bi of the job, and its usage. 0 or -errno. */
static int add_batch(struct builder *b, struct op *op, uint32_t bi)
{
	struct job_results *c = b->x->cache;
	struct results_set *set;
	int r = results_get(c->results, op, b->x->job->batches[bi].batch, &set);

	for (size_t i = 0; r == 0 && set && i < set->ix->n; i++)
		r = add_entry(b, set->ix, &set->ix->e[i], bi);
	for (int k = 0; r == 0 && set && k < USAGE_N; k++)
		b->x->usage[k] += set->ix->usage[k];
	results_release(c->results, set);
	return r;
}

/* The spans of both streams, from the records in order. */
static int make_spans(struct job_index *x)
{
	struct wbuf *w = malloc(sizeof(*w) * JOB_NSTREAMS);
	int r = w ? 0 : -ENOMEM;

	for (int s = 0; r == 0 && s < JOB_NSTREAMS; s++)
		w[s] = (struct wbuf){.fd = x->fd[F_SPANS + s]};
	for (uint64_t i = 0; r == 0 && i < x->n; i++) {
		struct jrec rec;
		struct jspan sp;
		int s;

		r = rec_read(x, i, &rec);
		s = rec.ok ? JOB_OUTPUT : JOB_ERRORS;
		sp.start = x->size[s];
		sp.rec = i;
		if (r == 0)
			r = wbuf_put(&w[s], &sp, sizeof(sp));
		x->size[s] += (uint64_t)rec.len + 1;
		x->lines[s]++;
	}
	for (int s = 0; r == 0 && s < JOB_NSTREAMS; s++)
		r = wbuf_flush(&w[s]);
	free(w);
	return r;
}

/* The order a build takes the batches in: by round, then as the job has
 * them (part, created_at, id). */
static int by_round(const void *pa, const void *pb, const struct job *j)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	unsigned ra = j->batches[a].tag.round, rb = j->batches[b].tag.round;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* Insertion sort by round (rounds are few; batches come by part). */
static void sort_batches(uint32_t *order, size_t n, const struct job *j)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t v = order[i];
		size_t k = i;

		for (; k > 0 && by_round(&order[k - 1], &v, j) > 0; k--)
			order[k] = order[k - 1];
		order[k] = v;
	}
}

/* Make the index of x->job. 0 or -errno. */
static int build(struct job_index *x, struct op *op)
{
	const struct job *j = x->job;
	struct builder *b = calloc(1, sizeof(*b));
	uint32_t *order = malloc(sizeof(*order) * (j->nbatches + 1));
	int r = b && order ? 0 : -ENOMEM;

	for (int f = 0; r == 0 && f < F_NFILES; f++) {
		x->fd[f] = scratch(x->cache->disk);
		if (x->fd[f] < 0)
			r = x->fd[f];
	}
	if (r == 0) {
		b->x = x;
		b->recs.fd = x->fd[F_RECS];
		b->names.fd = x->fd[F_NAMES];
		r = grow_slots(x);
	}
	for (size_t i = 0; order && i < j->nbatches; i++)
		order[i] = (uint32_t)i;
	if (order)
		sort_batches(order, j->nbatches, j);
	for (size_t i = 0; r == 0 && i < j->nbatches; i++)
		r = add_batch(b, op, order[i]);
	if (r == 0)
		r = flush_all(b);
	if (r == 0)
		r = make_spans(x);
	if (r == 0)
		log_debug("job %s: %llu results merged from %zu batches",
			  j->name, (unsigned long long)x->n, j->nbatches);
	else
		log_err("job %s: cannot merge its results: %s", j->name,
			strerror(-r));
	free(order);
	free(b);
	return r;
}

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

static void index_free(struct job_index *x)
{
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

	r = build(x, op);

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

/* ---- reading ---------------------------------------------------------- */

uint64_t job_index_count(const struct job_index *x)
{
	return x->n;
}

uint64_t job_index_size(const struct job_index *x, enum job_stream s)
{
	return x->size[s];
}

int64_t job_index_usage(const struct job_index *x, int which)
{
	return x->usage[which];
}

/* Entry *e of record rec (its name read). */
static int entry_of(const struct job_index *x, const struct jrec *rec,
		    struct job_entry *e)
{
	/* The name and what follows it, up to the longest name: it ends
	 * in its NUL. */
	ssize_t k = pread(x->fd[F_NAMES], e->name, sizeof(e->name) - 1,
			  (off_t)rec->name);
	int r = k > 0 ? 0 : k < 0 ? -errno : -EIO;

	e->name[sizeof(e->name) - 1] = '\0';
	e->off = rec->off;
	e->len = rec->len;
	e->batch = rec->batch;
	e->src = rec->src;
	e->has_txt = rec->has_txt;
	e->ok = rec->ok;
	return r;
}

int job_index_entry(const struct job_index *x, uint64_t i, struct job_entry *e)
{
	struct jrec rec;
	int r;

	if (i >= x->n)
		return -ENOENT;
	r = rec_read(x, i, &rec);
	return r < 0 ? r : entry_of(x, &rec, e);
}

int job_index_find(const struct job_index *x, const char *base, size_t blen,
		   struct job_entry *e)
{
	char name[RESULTS_NAME_MAX + 1];
	struct jslot slot;
	struct jrec rec;
	uint64_t at;
	int r;

	if (blen > RESULTS_NAME_MAX)
		return -ENOENT;
	memcpy(name, base, blen);
	name[blen] = '\0';
	r = slot_find(x, name, util_hash_bytes(name, blen, UTIL_HASH_SEED), &at,
		      &slot, &rec);
	if (r == 0 && !slot.rec)
		r = -ENOENT;
	return r < 0 ? r : entry_of(x, &rec, e);
}

/* The content of the file of batch bi, source src, open in *fd. */
static int file_open(const struct job_index *x, struct op *op, uint32_t bi,
		     uint8_t src, int *fd)
{
	char id[256];

	batch_file_id(x->job->batches[bi].batch,
		      src == RESULTS_OUTPUT ? "output_file_id"
					    : "error_file_id",
		      id, sizeof(id));
	return content_open(x->cache->disk, op, id, fd);
}

int job_index_line(const struct job_index *x, struct op *op,
		   const struct job_entry *e, char **line)
{
	char *buf = malloc((size_t)e->len + 1);
	int fd = -1,
	    r = buf ? file_open(x, op, e->batch, e->src, &fd) : -ENOMEM;

	if (r == 0)
		r = pread_all(fd, buf, e->len, e->off);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[e->len] = '\0';
	*line = buf;
	return 0;
}

static int span_read(const struct job_index *x, enum job_stream s, uint64_t i,
		     struct jspan *sp)
{
	return pread_all(x->fd[F_SPANS + s], sp, sizeof(*sp), i * sizeof(*sp));
}

/* The line of stream s that holds byte off (< its size): binary search. */
static int span_at(const struct job_index *x, enum job_stream s, uint64_t off,
		   uint64_t *i)
{
	uint64_t lo = 0, hi = x->lines[s];

	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct jspan sp;
		int r = span_read(x, s, mid, &sp);

		if (r < 0)
			return r;
		if (sp.start <= off)
			lo = mid;
		else
			hi = mid;
	}
	*i = lo;
	return 0;
}

int job_index_read(const struct job_index *x, struct op *op, enum job_stream s,
		   uint64_t off, size_t size, char **out, size_t *len)
{
	uint64_t i, end = x->size[s];
	uint32_t fbatch = UINT32_MAX;
	uint8_t fsrc = 0;
	size_t have = 0;
	char *buf;
	int fd = -1, r;

	*out = NULL;
	*len = 0;
	if (off >= end || size == 0)
		return 0;
	if (size > end - off)
		size = (size_t)(end - off);
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	r = span_at(x, s, off, &i);
	for (; r == 0 && have < size; i++) {
		struct jspan sp;
		struct jrec rec;
		uint64_t at, n;

		r = span_read(x, s, i, &sp);
		if (r == 0)
			r = rec_read(x, sp.rec, &rec);
		if (r == 0 && (rec.batch != fbatch || rec.src != fsrc)) {
			if (fd >= 0)
				close(fd);
			fd = -1;
			r = file_open(x, op, rec.batch, rec.src, &fd);
			fbatch = rec.batch;
			fsrc = rec.src;
		}
		if (r < 0)
			break;
		/* This line's bytes from off + have, then its newline. */
		at = off + have - sp.start;
		n = rec.len - (at < rec.len ? at : rec.len);
		if (n > size - have)
			n = size - have;
		if (n)
			r = pread_all(fd, buf + have, (size_t)n, rec.off + at);
		have += (size_t)n;
		if (r == 0 && have < size)
			buf[have++] = '\n';
	}
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = have;
	return 0;
}
