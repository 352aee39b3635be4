/*
 * idsort.c - repeated custom_ids of an input of any size by an external
 * merge sort of fixed-size records (idsort.h).
 */
#include "idsort.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define MIN_MEM	     (64u << 10)
#define READ_MIN     64 /* records read at once from a run, at least */
#define DISTINCT_MAX 16 /* distinct ids of one hash compared, at most */

int idsort_init(struct idsort *s, int fd, size_t mem)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->mem = mem < MIN_MEM ? MIN_MEM : mem;
	s->cap = s->mem / sizeof(*s->buf);
	s->buf = malloc(s->cap * sizeof(*s->buf));
	return s->buf ? 0 : -ENOMEM;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct idsort_rec *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Restore the max-heap order of the n records of v below position i. */
static void heap_down(struct idsort_rec *v, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct idsort_rec t;

		if (l < n && rec_cmp(&v[l], &v[m]) > 0)
			m = l;
		if (l + 1 < n && rec_cmp(&v[l + 1], &v[m]) > 0)
			m = l + 1;
		if (m == i)
			return;
		t = v[i];
		v[i] = v[m];
		v[m] = t;
		i = m;
	}
}

/* Sort the n records of v in place by heapsort: O(n log n) whatever the
 * order, the fallback of sort_recs. */
static void heap_sort(struct idsort_rec *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		heap_down(v, n, i);
	for (size_t end = n; end > 1; end--) {
		struct idsort_rec t = v[0];

		v[0] = v[end - 1];
		v[end - 1] = t;
		heap_down(v, end - 1, 0);
	}
}

static void swap_recs(struct idsort_rec *a, struct idsort_rec *b)
{
	struct idsort_rec t = *a;

	*a = *b;
	*b = t;
}

/* Sort the n records of v (few) in place by insertion. */
static void insertion_sort(struct idsort_rec *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && rec_cmp(&v[j - 1], &v[j]) > 0; j--)
			swap_recs(&v[j - 1], &v[j]);
}

/*
 * Sort the n records of v in place: no memory of its own, where qsort(3)
 * may take a copy of the whole run and so double the bound. Quicksort
 * (the median of three as pivot; the smaller side by recursion, so the
 * stack stays O(log n)), heapsort past 2 log2(n) levels (a hostile
 * order), insertion sort for the last few: a run of 700,000 records in
 * a third of heapsort's time.
 */
static void sort_recs(struct idsort_rec *v, size_t n)
{
	unsigned depth = 0;

	for (size_t k = n; k > 1; k >>= 1)
		depth += 2;
	while (n > 16) {
		size_t mid = n / 2, i = 0, j = n - 1;
		struct idsort_rec pivot;

		if (depth-- == 0) {
			heap_sort(v, n);
			return;
		}
		if (rec_cmp(&v[mid], &v[0]) < 0)
			swap_recs(&v[mid], &v[0]);
		if (rec_cmp(&v[j], &v[mid]) < 0) {
			swap_recs(&v[j], &v[mid]);
			if (rec_cmp(&v[mid], &v[0]) < 0)
				swap_recs(&v[mid], &v[0]);
		}
		pivot = v[mid];
		/* Hoare's partition: v[0..i) <= pivot <= v[j+1..n). */
		for (;;) {
			while (rec_cmp(&v[i], &pivot) < 0)
				i++;
			while (rec_cmp(&pivot, &v[j]) < 0)
				j--;
			if (i >= j)
				break;
			swap_recs(&v[i++], &v[j--]);
		}
		if (j + 1 < n - j - 1) {
			sort_recs(v, j + 1);
			v += j + 1;
			n -= j + 1;
		} else {
			sort_recs(v + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	insertion_sort(v, n);
}

/* pwrite all of len bytes at off: 0 or -errno. */
static int write_at(int fd, const void *p, size_t len, uint64_t off)
{
	const char *c = p;

	while (len) {
		ssize_t n = pwrite(fd, c, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		c += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Sort the run being filled and write it after the others. */
static int spill(struct idsort *s)
{
	uint64_t start = s->nruns ? s->runs[s->nruns - 1] : 0;
	int r;

	if (s->n == 0)
		return 0;
	if (util_grow((char **)&s->runs, &s->runs_cap,
		      (s->nruns + 1) * sizeof(*s->runs),
		      16 * sizeof(*s->runs)) < 0)
		return -ENOMEM;
	sort_recs(s->buf, s->n);
	r = write_at(s->fd, s->buf, s->n * sizeof(*s->buf),
		     start * sizeof(*s->buf));
	if (r < 0)
		return r;
	s->runs[s->nruns++] = start + s->n;
	s->n = 0;
	return 0;
}

int idsort_add(struct idsort *s, uint64_t hash, uint64_t off, uint64_t line)
{
	if (s->n == s->cap) {
		int r = spill(s);

		if (r < 0)
			return r;
	}
	s->buf[s->n++] = (struct idsort_rec){hash, off, line};
	s->total++;
	return 0;
}

/* The ids of one hash met so far in the merge: the first record of each
 * distinct id. */
struct group {
	uint64_t hash;
	size_t n;
	struct idsort_rec first[DISTINCT_MAX];
};

/* Take record x (in merge order) into g: a repeat is told. 0 or -errno,
 * or found's value. */
static int take(struct group *g, const struct idsort_rec *x,
		int (*same)(void *, uint64_t, uint64_t),
		int (*found)(void *, uint64_t, uint64_t, uint64_t), void *ctx)
{
	if (g->n == 0 || x->hash != g->hash) {
		g->hash = x->hash;
		g->first[0] = *x;
		g->n = 1;
		return 0;
	}
	for (size_t i = 0; i < g->n; i++) {
		int r = same(ctx, g->first[i].off, x->off);

		if (r < 0)
			return r;
		if (r)
			return found(ctx, x->line, g->first[i].line, x->off);
	}
	if (g->n < DISTINCT_MAX)
		g->first[g->n++] = *x;
	return 0;
}

/* One run being merged: a window of its records. */
struct cursor {
	uint64_t next; /* the next record of the scratch file to read */
	uint64_t end;  /* where the run ends */
	struct idsort_rec *win;
	size_t at, len; /* the window's records: at..len-1 not taken yet */
};

/* The cursor's current record, reading its next window when needed: 1,
 * 0 at the run's end, or -errno. */
static int cursor_peek(const struct idsort *s, struct cursor *c, size_t wcap)
{
	size_t want, got = 0;

	if (c->at < c->len)
		return 1;
	if (c->next == c->end)
		return 0;
	want = c->end - c->next < wcap ? (size_t)(c->end - c->next) : wcap;
	while (got < want * sizeof(*c->win)) {
		ssize_t n = pread(s->fd, (char *)c->win + got,
				  want * sizeof(*c->win) - got,
				  (off_t)(c->next * sizeof(*c->win) + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	c->next += want;
	c->at = 0;
	c->len = want;
	return 1;
}

/* Restore the heap order below position i (heap of cursor indexes by
 * their current record). */
static void sift(struct cursor *cs, size_t *heap, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && rec_cmp(&cs[heap[l]].win[cs[heap[l]].at],
				     &cs[heap[m]].win[cs[heap[m]].at]) < 0)
			m = l;
		if (l + 1 < n &&
		    rec_cmp(&cs[heap[l + 1]].win[cs[heap[l + 1]].at],
			    &cs[heap[m]].win[cs[heap[m]].at]) < 0)
			m = l + 1;
		if (m == i)
			return;
		size_t t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

/* Merge the runs written, telling each record to take in order. */
static int merge(struct idsort *s, struct group *g,
		 int (*same)(void *, uint64_t, uint64_t),
		 int (*found)(void *, uint64_t, uint64_t, uint64_t), void *ctx)
{
	size_t k = s->nruns, n = 0;
	size_t wcap = s->mem / (k * sizeof(struct idsort_rec));
	struct cursor *cs = calloc(k, sizeof(*cs));
	size_t *heap = calloc(k, sizeof(*heap));
	int r = cs && heap ? 0 : -ENOMEM;

	if (wcap < READ_MIN)
		wcap = READ_MIN;
	for (size_t i = 0; r == 0 && i < k; i++) {
		cs[i].next = i ? s->runs[i - 1] : 0;
		cs[i].end = s->runs[i];
		cs[i].win = malloc(wcap * sizeof(*cs[i].win));
		if (!cs[i].win)
			r = -ENOMEM;
		else if ((r = cursor_peek(s, &cs[i], wcap)) > 0)
			heap[n++] = i, r = 0;
	}
	for (size_t i = n; r == 0 && i-- > 0;)
		sift(cs, heap, n, i);
	while (r == 0 && n > 0) {
		struct cursor *c = &cs[heap[0]];

		r = take(g, &c->win[c->at++], same, found, ctx);
		if (r != 0)
			break;
		r = cursor_peek(s, c, wcap);
		if (r == 0)
			heap[0] = heap[--n];
		if (r >= 0) {
			r = 0;
			sift(cs, heap, n, 0);
		}
	}
	for (size_t i = 0; cs && i < k; i++)
		free(cs[i].win);
	free(cs);
	free(heap);
	return r;
}

int idsort_repeats(struct idsort *s,
		   int (*same)(void *ctx, uint64_t a, uint64_t b),
		   int (*found)(void *ctx, uint64_t line, uint64_t first,
				uint64_t off),
		   void *ctx)
{
	struct group g = {0};
	int r = 0;

	if (s->nruns == 0) { /* it all fit in memory */
		sort_recs(s->buf, s->n);
		for (size_t i = 0; r == 0 && i < s->n; i++)
			r = take(&g, &s->buf[i], same, found, ctx);
		return r;
	}
	r = spill(s);
	/* The run buffer gives its room to the merge's windows. */
	free(s->buf);
	s->buf = NULL;
	s->cap = 0;
	return r < 0 ? r : merge(s, &g, same, found, ctx);
}

void idsort_free(struct idsort *s)
{
	free(s->buf);
	free(s->runs);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}
