/*
 * results_cache.c - the results indexes kept in memory (results_cache.h):
 * one build per set shared by concurrent callers, least recently used sets
 * dropped past the bounds.
 */
#include "results_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "content.h"
#include "log.h"
#include "util.h"

void results_cache_init(struct results_cache *c, struct cache *disk)
{
	memset(c, 0, sizeof(*c));
	c->disk = disk;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&c->condattr);
	pthread_condattr_setclock(&c->condattr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->built, &c->condattr);
}

/* Take rd out of the list of renderings and free it (lock held). */
static void render_free(struct results_cache *c, struct results_render *rd)
{
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		c->renders = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	c->render_bytes -= rd->bytes;
	free(rd->buf);
	free(rd);
}

/* Free s (lock held; nobody holds it, so no rendering of it is held). */
static void set_free(struct results_cache *c, struct results_set *s)
{
	struct results_render *rd, *next;

	for (rd = c->renders; rd; rd = next) {
		next = rd->next;
		if (rd->set == s) {
			c->render_kept--;
			render_free(c, rd);
		}
	}
	for (int i = 0; i < 2; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	results_free(s->ix);
	free(s->key);
	free(s);
}

/* Take s out of the list (lock held); freed now if nobody holds it. */
static void unlink_set(struct results_cache *c, struct results_set *s)
{
	if (!s->linked)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		c->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->linked = 0;
	c->bytes -= s->bytes;
	c->count--;
	if (s->refs == 0)
		set_free(c, s);
}

static void push_front(struct results_cache *c, struct results_set *s)
{
	s->prev = NULL;
	s->next = c->head;
	if (c->head)
		c->head->prev = s;
	c->head = s;
}

void results_cache_destroy(struct results_cache *c)
{
	while (c->head)
		unlink_set(c, c->head);
	pthread_cond_destroy(&c->built);
	pthread_condattr_destroy(&c->condattr);
	pthread_mutex_destroy(&c->lock);
}

void results_release(struct results_cache *c, struct results_set *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&c->lock);
	if (--s->refs == 0 && !s->linked)
		set_free(c, s);
	pthread_mutex_unlock(&c->lock);
}

/* Drop the least recently used sets nobody holds while over the bounds
 * (lock held). */
static void evict(struct results_cache *c)
{
	struct results_set *s = c->head, *prev;

	while (s && s->next)
		s = s->next;
	for (; s && (c->bytes > RESULTS_CACHE_BYTES ||
		     c->count > RESULTS_CACHE_COUNT);
	     s = prev) {
		prev = s->prev;
		if (s->refs == 0 && !s->building)
			unlink_set(c, s);
	}
}

/* The file id value name of b into buf, or "". */
static void file_id(const struct batch *b, const char *name, char *buf,
		    size_t size)
{
	batch_file_id(b, name, buf, size);
}

#define READ_CHUNK (1u << 20) /* bytes read at a time while indexing */
#define READ_MAX   (RESULTS_LINE_MAX + READ_CHUNK) /* the buffer at most */

/*
 * Add the lines of file fd to ix, read a piece at a time: the buffer holds
 * at most one line of RESULTS_LINE_MAX and a piece, and a longer line is
 * passed over without being kept. 0 or -errno.
 */
static int index_fd(struct results *ix, struct results_pass *ps, int fd)
{
	size_t cap = READ_CHUNK, have = 0, start;
	uint64_t base = 0, skip_from = 0; /* file offsets */
	int skipping = 0, r = 0;
	char *buf = malloc(cap), *nl;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got =
		    pread(fd, buf + have, cap - have, (off_t)(base + have));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		have += (size_t)got;
		for (start = 0;
		     r == 0 && (nl = memchr(buf + start, '\n', have - start));
		     start = (size_t)(nl - buf) + 1) {
			uint64_t end = base + (uint64_t)(nl - buf);

			if (skipping)
				r = results_add_line(
				    ix, ps, NULL, end - skip_from, skip_from);
			else
				r = results_add_line(ix, ps, buf + start,
						     end - base - start,
						     base + start);
			skipping = 0;
		}
		if (r < 0)
			goto out;
		memmove(buf, buf + start, have - start);
		base += start;
		have -= start;
		if (have < cap)
			continue;
		if (cap < READ_MAX) {
			size_t grow = cap * 2 < READ_MAX ? cap * 2 : READ_MAX;
			char *grown = realloc(buf, grow);

			if (!grown) {
				r = -ENOMEM;
				goto out;
			}
			buf = grown;
			cap = grow;
		} else {
			/* A line past the bound: its start is all we keep. */
			if (!skipping)
				skip_from = base;
			skipping = 1;
			base += have;
			have = 0;
		}
	}
	if (skipping)
		r = results_add_line(ix, ps, NULL, base + have - skip_from,
				     skip_from);
	else if (have)
		r = results_add_line(ix, ps, buf, have, base);
out:
	free(buf);
	return r;
}

/*
 * Download file id and add its lines to s->ix from source src. A 404 leaves
 * the file empty (logged). 0 or -errno.
 */
static int index_file(struct results_cache *c, struct op *op,
		      struct results_set *s, const char *batch_id,
		      const char *id, enum results_source src)
{
	char label[512];
	struct results_pass ps;
	int r = content_open(c->disk, op, id, &s->fd[src]);

	snprintf(label, sizeof(label), "batch %s: %s file %s", batch_id,
		 src == RESULTS_OUTPUT ? "output" : "error", id);
	if (r == -ENOENT) {
		log_warn("%s: not on the server; no results from it", label);
		s->fd[src] = -1;
		return 0;
	}
	if (r < 0)
		return r;
	results_pass_begin(&ps, src, label);
	r = index_fd(s->ix, &ps, s->fd[src]);
	results_pass_end(&ps);
	return r;
}

/* Build the index of s for batch b's files out and err. 0 or -errno. */
static int build(struct results_cache *c, struct op *op, struct results_set *s,
		 const struct batch *b, const char *out, const char *err)
{
	int r = 0;

	s->ix = results_new();
	if (!s->ix)
		return -ENOMEM;
	if (*out)
		r = index_file(c, op, s, b->id, out, RESULTS_OUTPUT);
	if (r == 0 && *err)
		r = index_file(c, op, s, b->id, err, RESULTS_ERROR);
	if (r == 0)
		log_debug("batch %s: %zu results indexed (%zu bad lines, %zu "
			  "repeated), %zu bytes",
			  b->id, s->ix->n, s->ix->bad, s->ix->dups,
			  results_bytes(s->ix));
	return r;
}

/* Wait for a build to end (lock held): 0, or -ETIMEDOUT, -EINTR. */
static int wait_built(struct results_cache *c, struct op *op)
{
	return op_cond_wait(op, &c->built, &c->lock, 0.1);
}

/* Move s to the front of the list (lock held). */
static void touch(struct results_cache *c, struct results_set *s)
{
	if (c->head == s)
		return;
	s->prev->next = s->next;
	if (s->next)
		s->next->prev = s->prev;
	push_front(c, s);
}

/* Drop the sets of batch id (idlen bytes) that nobody holds: their files
 * are older than the ones the batch now names (lock held). */
static void drop_batch(struct results_cache *c, const char *id, size_t idlen)
{
	struct results_set *s = c->head, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->refs == 0 && !s->building &&
		    strncmp(s->key, id, idlen) == 0 && s->key[idlen] == '\n')
			unlink_set(c, s);
	}
}

int results_get(struct results_cache *c, struct op *op, const struct batch *b,
		struct results_set **out)
{
	char oid[256], eid[256], *key;
	struct results_set *s;
	size_t idlen = strlen(b->id);
	int r = 0;

	*out = NULL;
	file_id(b, "output_file_id", oid, sizeof(oid));
	file_id(b, "error_file_id", eid, sizeof(eid));
	if (!*oid && !*eid)
		return 0;
	key = malloc(idlen + strlen(oid) + strlen(eid) + 3);
	if (!key)
		return -ENOMEM;
	sprintf(key, "%s\n%s\n%s", b->id, oid, eid);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (s = c->head; s && strcmp(s->key, key) != 0; s = s->next)
			;
		if (!s)
			break;
		if (!s->building) {
			touch(c, s);
			s->refs++;
			*out = s;
			goto out_unlock;
		}
		/* Another caller builds it: wait, then look again (a failed
		 * build is gone from the list, and this caller tries). */
		s->refs++;
		r = wait_built(c, op);
		if (--s->refs == 0 && !s->linked)
			set_free(c, s);
		if (r < 0)
			goto out_unlock;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		r = -ENOMEM;
		goto out_unlock;
	}
	s->fd[0] = s->fd[1] = -1;
	s->key = key;
	key = NULL;
	s->refs = 1;
	s->building = 1;
	drop_batch(c, b->id, idlen);
	s->linked = 1;
	push_front(c, s);
	c->count++;
	pthread_mutex_unlock(&c->lock);

	r = build(c, op, s, b, oid, eid);

	pthread_mutex_lock(&c->lock);
	s->building = 0;
	if (r < 0) {
		s->failed = r;
		unlink_set(c, s);
		if (--s->refs == 0)
			set_free(c, s);
	} else {
		s->bytes = results_bytes(s->ix) + strlen(s->key) + sizeof(*s);
		c->bytes += s->bytes;
		*out = s;
		evict(c);
	}
	pthread_cond_broadcast(&c->built);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	free(key);
	return r;
}

int results_line(const struct results_set *s, const struct result *e,
		 char **line)
{
	char *buf = malloc((size_t)e->len + 1);
	size_t got = 0;
	int fd = s->fd[e->src];

	if (!buf)
		return -ENOMEM;
	while (got < e->len) {
		ssize_t n =
		    pread(fd, buf + got, e->len - got, (off_t)(e->off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*line = buf;
	return 0;
}

/* Drop the least recently used renderings nobody holds while more than
 * RESULTS_RENDER_KEPT are kept or room is wanted (lock held). */
static void render_evict(struct results_cache *c, size_t want)
{
	struct results_render *rd = c->renders, *prev;

	while (rd && rd->next)
		rd = rd->next;
	for (; rd && (c->render_kept > RESULTS_RENDER_KEPT ||
		      c->render_bytes + want > RESULTS_RENDER_BYTES);
	     rd = prev) {
		prev = rd->prev;
		if (rd->refs == 0) {
			c->render_kept--;
			render_free(c, rd);
		}
	}
}

/* Move rd to the front of the renderings (lock held). */
static void render_touch(struct results_cache *c, struct results_render *rd)
{
	if (c->renders == rd)
		return;
	rd->prev->next = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	rd->prev = NULL;
	rd->next = c->renders;
	c->renders->prev = rd;
	c->renders = rd;
}

/* Take a reference to rd (lock held): the first one holds its set. */
static void render_hold(struct results_cache *c, struct results_render *rd)
{
	if (rd->refs++ == 0) {
		c->render_kept--;
		rd->set->refs++;
	}
}

/* Drop a reference to rd (lock held): the last one frees a failed
 * rendering, keeps another, and drops its set's, which may free the set
 * and with it rd. */
static void render_drop(struct results_cache *c, struct results_render *rd)
{
	struct results_set *s = rd->set;

	if (--rd->refs > 0)
		return;
	if (rd->failed)
		render_free(c, rd);
	else
		c->render_kept++;
	if (--s->refs == 0 && !s->linked)
		set_free(c, s);
	else
		render_evict(c, 0);
}

/* Render entry e of s into rd->buf (no lock held). 0 or -errno. */
static int render(struct results_render *rd, const struct result *e)
{
	char *line = NULL;
	int r = results_line(rd->set, e, &line);

	if (r == 0)
		r = (rd->txt ? results_render_txt : results_render_json)(
		    line, e->len, &rd->buf, &rd->len);
	free(line);
	return r;
}

int results_render_get(struct op *op, struct results_cache *c,
		       struct results_set *s, const struct result *e, int txt,
		       struct results_render **out)
{
	size_t entry = (size_t)(e - s->ix->e),
	       want = results_render_bound(e->len, txt);
	struct results_render *rd;
	int r = 0;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (rd = c->renders; rd; rd = rd->next)
			if (rd->set == s && rd->entry == entry &&
			    rd->txt == txt && !rd->failed)
				break;
		if (!rd)
			break;
		render_hold(c, rd);
		if (!rd->building) {
			render_touch(c, rd);
			*out = rd;
			goto out_unlock;
		}
		/* Another caller renders it: wait, then look again (a
		 * failed rendering is gone, and this caller tries). */
		r = op_cond_wait(op, &c->built, &c->lock, 0.1);
		render_drop(c, rd);
		if (r < 0)
			goto out_unlock;
	}
	render_evict(c, want);
	if (c->render_bytes + want > RESULTS_RENDER_BYTES) {
		r = -ENOMEM;
		goto out_unlock;
	}
	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		r = -ENOMEM;
		goto out_unlock;
	}
	rd->cache = c;
	rd->set = s;
	rd->entry = entry;
	rd->txt = txt;
	rd->building = 1;
	rd->bytes = want;
	c->render_bytes += want;
	c->render_kept++; /* render_hold counts it held */
	render_hold(c, rd);
	rd->next = c->renders;
	if (c->renders)
		c->renders->prev = rd;
	c->renders = rd;
	pthread_mutex_unlock(&c->lock);

	r = render(rd, e);

	pthread_mutex_lock(&c->lock);
	rd->building = 0;
	if (r < 0) {
		rd->failed = r; /* freed by the last of its holders */
		render_drop(c, rd);
	} else {
		rd->data = rd->buf ? rd->buf : "";
		c->render_bytes -= rd->bytes;
		rd->bytes = rd->len;
		c->render_bytes += rd->bytes;
		*out = rd;
	}
	pthread_cond_broadcast(&c->built);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return r;
}

void results_render_release(struct results_render *rd)
{
	struct results_cache *c;

	if (!rd)
		return;
	c = rd->cache;
	pthread_mutex_lock(&c->lock);
	render_drop(c, rd);
	pthread_mutex_unlock(&c->lock);
}
