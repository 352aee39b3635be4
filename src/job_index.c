/*
 * job_index.c - reading a job's merged index (job_index.h): entries by
 * position through a cursor of runs, by name through the table, a line
 * from its batch's file, and the streams output.jsonl and errors.jsonl
 * at any offset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content.h"
#include "job_index.h"
#include "util.h"

int job_pread(int fd, void *buf, size_t n, uint64_t off)
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

int job_rec_read(const struct job_index *x, uint64_t i, struct jrec *rec)
{
	return job_pread(x->fd[F_RECS], rec, sizeof(*rec), i * sizeof(*rec));
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
int job_cursor_rec(struct job_cursor *c, uint64_t i, const struct jrec **rec)
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
	int r = job_cursor_rec(c, i, &rec);
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
	r = job_slot_find(x, NULL, name,
			  util_hash_bytes(name, blen, UTIL_HASH_SEED), &at,
			  &slot, &rec);
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
int job_file_open(const struct job_index *x, struct op *op, uint32_t bi,
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
	    r = buf ? job_file_open(x, op, e->batch, e->src, &fd) : -ENOMEM;

	if (r == 0)
		r = job_pread(fd, buf, e->len, e->off);
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
	return job_pread(x->fd[F_SPANS + s], sp, sizeof(*sp), i * sizeof(*sp));
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
		r = job_pread(st->fd, st->buf + st->run_dst,
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
			r = job_file_open(st->x, st->op, rec->batch, rec->src,
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
			r = job_pread(x->fd[F_SPANS + s], spans,
				      sn * sizeof(spans[0]),
				      i * sizeof(spans[0]));
			if (r < 0)
				break;
		}
		sp = &spans[i - sfirst];
		r = job_cursor_rec(c, sp->rec, &rec);
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
