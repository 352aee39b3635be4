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

/* A slot of the hash table: the high half of its name's hash (the low
 * bits place it), its record + 1, 0 when free. 8 bytes. */
struct jslot {
	uint32_t hash;
	uint32_t rec;
};

#define SLOT_HASH(h) ((uint32_t)((h) >> 32))
#define MAX_RECORDS  UINT32_MAX

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

static int cursor_rec(struct job_cursor *c, uint64_t i,
		      const struct jrec **rec);

/* What a build writes through: the records and names appended, the
 * table's frames. */
struct builder {
	struct job_index *x;
	struct wbuf recs, names;
	struct frame frames[SLOT_FRAMES];
};

static int rec_read(const struct job_index *x, uint64_t i, struct jrec *rec)
{
	return pread_all(x->fd[F_RECS], rec, sizeof(*rec), i * sizeof(*rec));
}

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
			r = pread_all(x->fd[F_SLOTS], f->s,
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
		return pread_all(x->fd[F_SLOTS], slot, sizeof(*slot),
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

/* The slot of name (hash h): holding its record (*rec read), or the free
 * one where it goes (*rec untouched); through the frames fr of a build,
 * or NULL. 0, -EAGAIN when a record of the same hash is not on disk yet
 * (the builder's buffers hold it: flush them and ask again), or -errno. */
static int slot_find(const struct job_index *x, struct frame *fr,
		     const char *name, uint64_t h, uint64_t *at,
		     struct jslot *slot, struct jrec *rec)
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

			r = pread_all(
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
		r = slot_find(x, b->frames, name, h, &at, &slot, &rec);
	if (r == -EAGAIN) {
		/* A record of the same hash is still in the buffer. */
		r = flush_all(b);
		if (r == 0)
			r = slot_find(x, b->frames, name, h, &at, &slot, &rec);
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
	struct job_cursor *c = job_cursor_new(x);

	if (!c)
		r = -ENOMEM;
	for (uint64_t i = 0; r == 0 && i < x->n; i++) {
		const struct jrec *rec;
		struct jspan sp;
		int s;

		r = cursor_rec(c, i, &rec);
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
		r = grow_slots(x, b->frames);
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
		r = frames_flush(x, b->frames);
	for (size_t k = 0; b && k < SLOT_FRAMES; k++)
		free(b->frames[k].s);
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

/* Entry *e of record rec, its name from name (at most the longest name
 * and its NUL, read from the names file). */
static void entry_of(const struct jrec *rec, const char *name, size_t avail,
		     struct job_entry *e)
{
	size_t n = strnlen(
	    name, avail < sizeof(e->name) - 1 ? avail : sizeof(e->name) - 1);

	memcpy(e->name, name, n);
	e->name[n] = '\0';
	e->off = rec->off;
	e->len = rec->len;
	e->batch = rec->batch;
	e->src = rec->src;
	e->has_txt = rec->has_txt;
	e->ok = rec->ok;
}

/* A run of records, and of their names when asked for (names are written
 * in the order of the records, so a run's names lie together). */
struct job_cursor {
	const struct job_index *x;
	uint64_t first, n; /* records first .. first + n - 1 in recs */
	struct jrec recs[JOB_CURSOR_RUN];
	int named; /* names holds the run's names from names_at */
	uint64_t names_at;
	size_t names_len;
	char names[JOB_CURSOR_RUN * (RESULTS_NAME_MAX + 1)];
};

struct job_cursor *job_cursor_new(const struct job_index *x)
{
	struct job_cursor *c = malloc(sizeof(*c));

	if (c) {
		c->x = x;
		c->n = 0;
		c->named = 0;
	}
	return c;
}

void job_cursor_free(struct job_cursor *c)
{
	free(c);
}

/* Record i, read with its run when not in c: *rec points into c. */
static int cursor_rec(struct job_cursor *c, uint64_t i, const struct jrec **rec)
{
	const struct job_index *x = c->x;
	ssize_t k;

	if (i >= x->n)
		return -ENOENT;
	if (i < c->first || i >= c->first + c->n) {
		c->first = i - i % JOB_CURSOR_RUN;
		c->n = x->n - c->first < JOB_CURSOR_RUN ? x->n - c->first
							: JOB_CURSOR_RUN;
		c->named = 0;
		k = pread(x->fd[F_RECS], c->recs, c->n * sizeof(c->recs[0]),
			  (off_t)(c->first * sizeof(c->recs[0])));
		if (k < 0 || (size_t)k != c->n * sizeof(c->recs[0])) {
			c->n = 0;
			return k < 0 ? -errno : -EIO;
		}
	}
	*rec = &c->recs[i - c->first];
	return 0;
}

int job_cursor_entry(struct job_cursor *c, uint64_t i, struct job_entry *e)
{
	const struct jrec *rec;
	int r = cursor_rec(c, i, &rec);
	ssize_t k;

	if (r < 0)
		return r;
	if (!c->named) {
		/* From the run's first name to past its last one. */
		c->names_at = c->recs[0].name;
		c->names_len = (size_t)(c->recs[c->n - 1].name - c->names_at) +
			       RESULTS_NAME_MAX + 1;
		if (c->names_len > sizeof(c->names))
			return -EIO;
		k = pread(c->x->fd[F_NAMES], c->names, c->names_len,
			  (off_t)c->names_at);
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		c->names_len = (size_t)k;
		c->named = 1;
	}
	if (rec->name < c->names_at || rec->name >= c->names_at + c->names_len)
		return -EIO;
	entry_of(rec, c->names + (rec->name - c->names_at),
		 c->names_len - (size_t)(rec->name - c->names_at), e);
	e->rec = i;
	return 0;
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
	r = slot_find(x, NULL, name,
		      util_hash_bytes(name, blen, UTIL_HASH_SEED), &at, &slot,
		      &rec);
	if (r == 0 && !slot.rec)
		r = -ENOENT;
	if (r < 0)
		return r;
	/* slot_find read the name: it is the one asked for. */
	entry_of(&rec, name, blen + 1, e);
	e->rec = slot.rec - 1;
	return 0;
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

/*
 * A read of a stream being made: its buffer, the file open now, and a run
 * of line bytes still to be read from it in one pread (lines next to each
 * other in their file, with the newline between them, are read together:
 * the file has that newline too).
 */
struct stream_read {
	const struct job_index *x;
	struct op *op;
	char *buf;
	size_t have;
	int fd; /* of batch fbatch's file fsrc, or -1 */
	uint32_t fbatch;
	uint8_t fsrc;
	uint64_t run_at, run_end; /* the run's bytes in the file */
	size_t run_dst;		  /* where they go in buf */
};

/* Read the run waiting, if any. */
static int run_flush(struct stream_read *st)
{
	int r = 0;

	if (st->run_end > st->run_at)
		r = pread_all(st->fd, st->buf + st->run_dst,
			      (size_t)(st->run_end - st->run_at), st->run_at);
	st->run_at = st->run_end = 0;
	return r;
}

/* Put n bytes of rec's line from its byte at into the buffer (read with
 * the run when they follow it in the same file), then a newline when
 * there is room. */
static int stream_put(struct stream_read *st, const struct jrec *rec,
		      uint64_t at, size_t n, size_t size)
{
	uint64_t from = rec->off + at;
	int r = 0;

	if (rec->batch != st->fbatch || rec->src != st->fsrc || st->fd < 0) {
		r = run_flush(st);
		if (st->fd >= 0)
			close(st->fd);
		st->fd = -1;
		if (r == 0)
			r = file_open(st->x, st->op, rec->batch, rec->src,
				      &st->fd);
		st->fbatch = rec->batch;
		st->fsrc = rec->src;
	}
	if (r == 0 && n) {
		if (st->run_end > st->run_at && from == st->run_end + 1 &&
		    st->have == st->run_dst + (st->run_end - st->run_at) + 1) {
			st->run_end = from + n;
		} else {
			r = run_flush(st);
			st->run_at = from;
			st->run_end = from + n;
			st->run_dst = st->have;
		}
	}
	st->have += n;
	if (r == 0 && st->have < size)
		st->buf[st->have++] = '\n';
	return r;
}

int job_index_read(const struct job_index *x, struct op *op, enum job_stream s,
		   uint64_t off, size_t size, char **out, size_t *len)
{
	struct stream_read st = {
	    .x = x, .op = op, .fd = -1, .fbatch = UINT32_MAX};
	struct jspan spans[JOB_CURSOR_RUN];
	uint64_t i, sfirst = 0, sn = 0; /* spans sfirst .. in spans */
	struct job_cursor *c;
	int r;

	*out = NULL;
	*len = 0;
	if (off >= x->size[s] || size == 0)
		return 0;
	if (size > x->size[s] - off)
		size = (size_t)(x->size[s] - off);
	st.buf = malloc(size);
	c = job_cursor_new(x);
	r = st.buf && c ? span_at(x, s, off, &i) : -ENOMEM;
	for (; r == 0 && st.have < size; i++) {
		const struct jspan *sp;
		const struct jrec *rec;
		uint64_t at, n;

		if (i < sfirst || i >= sfirst + sn) {
			sfirst = i;
			sn = x->lines[s] - i < JOB_CURSOR_RUN ? x->lines[s] - i
							      : JOB_CURSOR_RUN;
			r = pread_all(x->fd[F_SPANS + s], spans,
				      sn * sizeof(spans[0]),
				      i * sizeof(spans[0]));
			if (r < 0)
				break;
		}
		sp = &spans[i - sfirst];
		r = cursor_rec(c, sp->rec, &rec);
		if (r < 0)
			break;
		/* This line's bytes from off + have, then its newline. */
		at = off + st.have - sp->start;
		n = rec->len - (at < rec->len ? at : rec->len);
		if (n > size - st.have)
			n = size - st.have;
		r = stream_put(&st, rec, at, (size_t)n, size);
	}
	if (r == 0)
		r = run_flush(&st);
	if (st.fd >= 0)
		close(st.fd);
	job_cursor_free(c);
	if (r < 0) {
		free(st.buf);
		return r;
	}
	*out = st.buf;
	*len = st.have;
	return 0;
}
