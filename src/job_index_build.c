/*
 * job_index_build.c - making a job's merged index (job_index.h): the
 * batches' indexes taken one at a time, by round then part; records and
 * names appended through 64 KiB buffers; the hash table read and written
 * through a bounded cache of its pages, doubled from the records when it
 * fills; then the streams' tables from the records in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cache_dir.h"
#include "job_index.h"
#include "log.h"
#include "results_cache.h"
#include "util.h"

/* While an index is built, its table is read and written through a cache
 * of pages: SLOT_FRAMES pages of SLOT_PAGE slots (16 MiB), one frame a
 * page by its number, written back when another page takes the frame. A
 * table of up to 1M custom_ids (2M slots) is then built in memory; a
 * larger one goes on within the same memory, at the disk's pace. */
#define SLOT_PAGE   8192 /* 64 KiB */
#define SLOT_FRAMES 256

struct frame {
	uint64_t page;
	int used, dirty;
	struct jslot *s; /* SLOT_PAGE slots, or NULL before first use */
};

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

/* What a build writes through: the records and names appended, the
 * table's frames. */
struct builder {
	struct job_index *x;
	struct results_cache *results;
	struct wbuf recs, names;
	struct frame frames[SLOT_FRAMES];
};

/* The slots of page of x's table (at most SLOT_PAGE): how many. */
static size_t page_slots(const struct job_index *x, uint64_t page)
{
	uint64_t left = x->nslots - page * SLOT_PAGE;

	return left < SLOT_PAGE ? (size_t)left : SLOT_PAGE;
}

/* Write frame f back when it changed. 0 or -errno. */
static int frame_flush(const struct job_index *x, struct frame *f)
{
	int r = 0;

	if (f->used && f->dirty)
		r = pwrite_all(x->fd[F_SLOTS], f->s,
			       page_slots(x, f->page) * sizeof(struct jslot),
			       f->page * SLOT_PAGE * sizeof(struct jslot));
	if (r == 0)
		f->dirty = 0;
	return r;
}

/* Slot i of x's table: *s into its frame of fr (read when not there). */
static int frame_slot(const struct job_index *x, struct frame *fr, uint64_t i,
		      struct jslot **s)
{
	uint64_t page = i / SLOT_PAGE;
	struct frame *f = &fr[page % SLOT_FRAMES];
	int r = 0;

	if (!f->s) {
		f->s = malloc(SLOT_PAGE * sizeof(struct jslot));
		if (!f->s)
			return -ENOMEM;
		f->used = 0;
	}
	if (!f->used || f->page != page) {
		r = frame_flush(x, f);
		if (r == 0)
			r = job_pread(x->fd[F_SLOTS], f->s,
				      page_slots(x, page) *
					  sizeof(struct jslot),
				      page * SLOT_PAGE * sizeof(struct jslot));
		f->used = r == 0;
		f->page = page;
	}
	*s = &f->s[i % SLOT_PAGE];
	return r;
}

/* Slot i into *slot: through the frames fr of a build, or (fr NULL) from
 * the file. */
static int slot_get(const struct job_index *x, struct frame *fr, uint64_t i,
		    struct jslot *slot)
{
	struct jslot *s;
	int r;

	if (!fr)
		return job_pread(x->fd[F_SLOTS], slot, sizeof(*slot),
				 i * sizeof(*slot));
	r = frame_slot(x, fr, i, &s);
	if (r == 0)
		*slot = *s;
	return r;
}

/* Set slot i through the frames of a build. */
static int slot_set(const struct job_index *x, struct frame *fr, uint64_t i,
		    const struct jslot *slot)
{
	struct jslot *s;
	int r = frame_slot(x, fr, i, &s);

	if (r == 0) {
		*s = *slot;
		fr[(i / SLOT_PAGE) % SLOT_FRAMES].dirty = 1;
	}
	return r;
}

/* Write back every frame and forget what they hold. 0 or -errno. */
static int frames_flush(const struct job_index *x, struct frame *fr)
{
	int r = 0;

	for (size_t k = 0; r == 0 && k < SLOT_FRAMES; k++) {
		r = frame_flush(x, &fr[k]);
		fr[k].used = 0;
	}
	return r;
}

int job_slot_find(const struct job_index *x, struct frame *fr, const char *name,
		  uint64_t h, uint64_t *at, struct jslot *slot,
		  struct jrec *rec)
{
	uint64_t mask = x->nslots - 1, i = h & mask;
	char buf[RESULTS_NAME_MAX + 1];
	size_t n = strlen(name);
	int r;

	for (;; i = (i + 1) & mask) {
		r = slot_get(x, fr, i, slot);
		if (r < 0)
			return r;
		if (!slot->rec)
			break;
		if (slot->hash != SLOT_HASH(h))
			continue;
		if (slot->rec > x->durable)
			return -EAGAIN;
		r = job_rec_read(x, slot->rec - 1, rec);
		if (r == 0)
			r = job_pread(x->fd[F_NAMES], buf, n + 1, rec->name);
		/* -EIO: a shorter name at the end of the file. */
		if (r < 0 && r != -EIO)
			return r;
		if (r == 0 && memcmp(buf, name, n + 1) == 0)
			break;
	}
	*at = i;
	return 0;
}

/* A table of twice the slots (at first 1024), made from the records
 * (flushed), read in runs. */
static int grow_slots(struct job_index *x, struct frame *fr)
{
	uint64_t n = x->nslots ? x->nslots * 2 : 1024;
	struct jrec *run = malloc(JOB_CURSOR_RUN * sizeof(*run));
	int r = run ? frames_flush(x, fr) : -ENOMEM;

	/* Emptied, then as long as the new table: its holes read as 0. */
	if (r == 0 &&
	    (ftruncate(x->fd[F_SLOTS], 0) < 0 ||
	     ftruncate(x->fd[F_SLOTS], (off_t)(n * sizeof(struct jslot))) < 0))
		r = -errno;
	x->nslots = n;
	for (uint64_t i = 0; r == 0 && i < x->n; i++) {
		const struct jrec *rec = &run[i % JOB_CURSOR_RUN];
		struct jslot s;
		uint64_t k;

		if (i % JOB_CURSOR_RUN == 0) {
			uint64_t left = x->n - i;

			r = job_pread(
			    x->fd[F_RECS], run,
			    (left < JOB_CURSOR_RUN ? left : JOB_CURSOR_RUN) *
				sizeof(*run),
			    i * sizeof(*run));
		}
		for (k = rec->hash & (n - 1); r == 0; k = (k + 1) & (n - 1)) {
			r = slot_get(x, fr, k, &s);
			if (r == 0 && !s.rec)
				break;
		}
		s.hash = SLOT_HASH(rec->hash);
		s.rec = (uint32_t)(i + 1);
		if (r == 0)
			r = slot_set(x, fr, k, &s);
	}
	free(run);
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
			r = grow_slots(x, b->frames);
	}
	if (r == 0)
		r = job_slot_find(x, b->frames, name, h, &at, &slot, &rec);
	if (r == -EAGAIN) {
		/* A record of the same hash is still in the buffer. */
		r = flush_all(b);
		if (r == 0)
			r = job_slot_find(x, b->frames, name, h, &at, &slot,
					  &rec);
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
	if (x->n == MAX_RECORDS)
		return -EFBIG;
	slot.hash = SLOT_HASH(h);
	slot.rec = (uint32_t)++x->n;
	r = wbuf_put(&b->names, name, n + 1);
	if (r == 0)
		r = wbuf_put(&b->recs, &rec, sizeof(rec));
	if (r == 0)
		r = slot_set(x, b->frames, at, &slot);
	return r;
}

/* Add every entry of batch bi of the job, and its usage. 0 or -errno. */
static int add_batch(struct builder *b, struct op *op, uint32_t bi)
{
	struct results_set *set;
	int r = results_get(b->results, op, b->x->job->batches[bi].batch, &set);

	for (size_t i = 0; r == 0 && set && i < set->ix->n; i++)
		r = add_entry(b, set->ix, &set->ix->e[i], bi);
	for (int k = 0; r == 0 && set && k < USAGE_N; k++)
		b->x->usage[k] += set->ix->usage[k];
	results_release(b->results, set);
	return r;
}

/* The spans of both streams, from the records in order. */
static int make_spans(struct job_index *x)
{
	struct wbuf *w = malloc(sizeof(*w) * JOB_NSTREAMS);
	int r = w ? 0 : -ENOMEM;

	for (int s = 0; r == 0 && s < JOB_NSTREAMS; s++)
		w[s] = (struct wbuf){.fd = x->fd[F_SPANS + s]};
	struct job_cursor *c = job_cursor_new(x);

	if (!c)
		r = -ENOMEM;
	for (uint64_t i = 0; r == 0 && i < x->n; i++) {
		const struct jrec *rec;
		struct jspan sp;
		int s;

		r = job_cursor_rec(c, i, &rec);
		if (r < 0)
			break;
		s = rec->ok ? JOB_OUTPUT : JOB_ERRORS;
		sp.start = x->size[s];
		sp.rec = i;
		r = wbuf_put(&w[s], &sp, sizeof(sp));
		x->size[s] += (uint64_t)rec->len + 1;
		x->lines[s]++;
	}
	job_cursor_free(c);
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
int job_index_build(struct job_index *x, struct op *op,
		    struct results_cache *results, struct cache *disk)
{
	const struct job *j = x->job;
	struct builder *b = calloc(1, sizeof(*b));
	uint32_t *order = malloc(sizeof(*order) * (j->nbatches + 1));
	int r = b && order ? 0 : -ENOMEM;

	for (int f = 0; r == 0 && f < F_NFILES; f++) {
		x->fd[f] = scratch(disk);
		if (x->fd[f] < 0)
			r = x->fd[f];
	}
	if (r == 0) {
		b->x = x;
		b->results = results;
		b->recs.fd = x->fd[F_RECS];
		b->names.fd = x->fd[F_NAMES];
		r = grow_slots(x, b->frames);
	}
	for (size_t i = 0; order && i < j->nbatches; i++)
		order[i] = (uint32_t)i;
	if (order)
		sort_batches(order, j->nbatches, j);
	/* Ctrl-C ends a long merge between two batches. */
	for (size_t i = 0; r == 0 && i < j->nbatches; i++)
		r = op && op->interrupted ? -EINTR : add_batch(b, op, order[i]);
	if (r == 0)
		r = flush_all(b);
	if (r == 0)
		r = frames_flush(x, b->frames);
	for (size_t k = 0; b && k < SLOT_FRAMES; k++)
		free(b->frames[k].s);
	if (r == 0)
		r = make_spans(x);
	if (r == 0)
		log_debug("job %s: %llu results merged from %zu batches",
			  j->name, (unsigned long long)x->n, j->nbatches);
	free(order);
	free(b);
	return r;
}
