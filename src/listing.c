/*
 * listing.c - the paged, bounded listing of every object of a kind: pages
 * fetched through the store source's list_page, cursors and ids checked for
 * repeats, the early stop of a refresh at a page of objects known as final
 * (the rest kept from the previous listing), the objects handed to the
 * store, the ids kept for ttl from the listing's end.
 */
#include "listing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"
#include "util.h"

void listing_init(struct listing *l, struct store *store, unsigned page_size)
{
	memset(l, 0, sizeof(*l));
	l->store = store;
	l->page_size = page_size;
	l->max_objects = LISTING_MAX_OBJECTS;
	l->max_bytes = LISTING_MAX_BYTES;
	/* Every page brings at least one object of an account: a listing
	 * that needs more pages than it may hold objects is going round in
	 * circles. */
	l->max_pages = LISTING_MAX_OBJECTS;
	l->full_every = LISTING_FULL_EVERY;
	pthread_mutex_init(&l->lock, NULL);
	monotonic_cond_init(&l->done); /* for store->clock's waits */
}

void listing_free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void listing_destroy(struct listing *l)
{
	listing_free_ids(l->ids, l->nids);
	free(l->members.slots);
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	memset(l, 0, sizeof(*l));
}

static int idset_has(const struct idset *s, const char *id)
{
	size_t i;

	if (!s->cap)
		return 0;
	for (i = util_hash(id) & (s->cap - 1); s->slots[i];
	     i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slots[i], id) == 0)
			return 1;
	return 0;
}

/* Add id (borrowed); returns 0 or -ENOMEM. */
static int idset_add(struct idset *s, const char *id)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct idset bigger = {NULL, s->cap ? s->cap * 2 : 256, 0};

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (i = 0; i < s->cap; i++)
			if (s->slots[i])
				idset_add(&bigger, s->slots[i]);
		free(s->slots);
		*s = bigger;
	}
	for (i = util_hash(id) & (s->cap - 1); s->slots[i];
	     i = (i + 1) & (s->cap - 1))
		;
	s->slots[i] = id;
	s->n++;
	return 0;
}

/* The objects of one listing being fetched, in order, and what it has
 * seen. */
struct gather {
	const struct object_kind *kind;
	struct store_item *items;
	size_t n;
	size_t cap;
	size_t bytes;	   /* what the items hold (kind->bytes) */
	struct idset seen; /* ids of the items */
	char **cursors;	   /* the cursors sent, in order */
	size_t ncursors;
	struct idset sent; /* the same, as a set */
	size_t unusable;   /* ids left out as invalid */
	size_t repeated;   /* ids left out as listed already */
	unsigned pages;	   /* pages asked for */
	/* An incremental refresh (see listing_refresh): */
	int incremental;
	char *const *prev; /* the previous listing (l->ids, borrowed) */
	size_t nprev;
	struct idset pending; /* its ids whose copies are not final */
	size_t npending;      /* how many of them are not seen yet */
	int stopped;	      /* stopped early */
	size_t tail_from;     /* then: where prev goes on */
};

static void gather_free(struct gather *g)
{
	for (size_t i = 0; i < g->n; i++)
		g->kind->unref(g->items[i].obj);
	free(g->items);
	free(g->seen.slots);
	listing_free_ids(g->cursors, g->ncursors);
	free(g->sent.slots);
	free(g->pending.slots);
}

static void page_free(const struct object_kind *kind, struct store_page *page)
{
	for (size_t i = 0; i < page->nitems; i++)
		kind->unref(page->items[i]);
	free(page->items);
	free(page->last_id);
	memset(page, 0, sizeof(*page));
}

/*
 * Take page's objects that are valid and new into g, noting the request
 * they came with. Returns 0, -EFBIG when g would pass the bounds of l, or
 * -ENOMEM.
 */
static int gather_take(const struct listing *l, struct gather *g,
		       struct store_page *page, double sent, double answered)
{
	for (size_t i = 0; i < page->nitems; i++) {
		void *obj = page->items[i];
		const char *id = g->kind->id(obj);
		size_t bytes;

		if (!g->kind->id_valid(id)) {
			g->unusable++;
			continue;
		}
		if (idset_has(&g->seen, id)) {
			g->repeated++;
			continue;
		}
		bytes = g->kind->bytes(obj);
		if (g->n >= l->max_objects || g->bytes + bytes > l->max_bytes)
			return -EFBIG;
		if (g->n == g->cap) {
			size_t cap = g->cap ? g->cap * 2 : 128;
			struct store_item *it =
			    realloc(g->items, cap * sizeof(*it));

			if (!it)
				return -ENOMEM;
			g->items = it;
			g->cap = cap;
		}
		if (idset_add(&g->seen, id) < 0)
			return -ENOMEM;
		if (g->npending && idset_has(&g->pending, id))
			g->npending--;
		g->items[g->n++] = (struct store_item){obj, sent, answered, 0};
		g->bytes += bytes;
		page->items[i] = NULL;
	}
	return 0;
}

/* Remember cursor (which g takes) as sent; returns 0 or -ENOMEM. */
static int gather_cursor(struct gather *g, char *cursor)
{
	char **v = realloc(g->cursors, (g->ncursors + 1) * sizeof(*v));

	if (!v) {
		free(cursor);
		return -ENOMEM;
	}
	g->cursors = v;
	g->cursors[g->ncursors++] = cursor;
	return idset_add(&g->sent, cursor);
}

/*
 * Whether every object of page is valid, final, and already known as final
 * by the store (so was final before this listing, and the previous listing
 * holds everything older than it). Called with no lock held.
 */
static int page_known_final(const struct listing *l,
			    const struct store_page *page)
{
	const struct object_kind *kind = l->store->kind;

	if (!page->nitems)
		return 0;
	for (size_t i = 0; i < page->nitems; i++) {
		const char *id = kind->id(page->items[i]);

		if (!kind->id_valid(id) || !kind->final(page->items[i]) ||
		    !store_known_final(l->store, id))
			return 0;
	}
	return 1;
}

/*
 * Whether an incremental fetch may stop after a page of objects known as
 * final whose cursor is last: when every id of the previous listing that
 * was not final has been seen, and last is in the previous listing (then
 * g->tail_from is the index after it).
 */
static int may_stop(struct gather *g, const char *last)
{
	if (!g->incremental || g->npending || !last)
		return 0;
	for (size_t i = 0; i < g->nprev; i++)
		if (strcmp(g->prev[i], last) == 0) {
			g->tail_from = i + 1;
			return 1;
		}
	return 0;
}

/*
 * Fetch every page into g, or, for an incremental fetch, the pages up to
 * the early stop (listing_refresh). The cursor for the next page is the id
 * of the page's last object, listed or not; one sent before, or one of an
 * object already listed, means the server is going round in circles: the
 * listing stops there. Returns 0 or -errno, having logged why. Called with
 * no lock held.
 */
static int fetch_all(struct listing *l, struct op *op, struct gather *g)
{
	const struct object_kind *kind = l->store->kind;
	struct store_page page;
	struct api_error err;
	const char *after = NULL;
	int r = 0;

	for (size_t n = 0;; n++) {
		double sent = store_clock(l->store), answered;
		int cycle, more, known;

		if (n == l->max_pages) {
			r = -EFBIG;
			break;
		}
		memset(&page, 0, sizeof(page));
		memset(&err, 0, sizeof(err));
		r = l->store->source->list_page(l->store->ctx, kind, op, after,
						l->page_size, &page, &err);
		answered = store_clock(l->store);
		g->pages++;
		if (r < 0) {
			char why[600];

			if (r == -EINTR)
				break; /* the user's own doing: not logged */
			api_error_text(&err, r, why, sizeof(why));
			log_err("list %s: %s", kind->plural, why);
			break;
		}
		cycle = page.last_id && (idset_has(&g->sent, page.last_id) ||
					 idset_has(&g->seen, page.last_id));
		known = g->incremental && page.has_more &&
			page_known_final(l, &page);
		r = gather_take(l, g, &page, sent, answered);
		if (r == 0 && known && !cycle && may_stop(g, page.last_id)) {
			g->stopped = 1;
			page.has_more = 0;
		}
		if (r == 0 && page.has_more && (cycle || !page.last_id)) {
			log_warn("list: has_more with a %s cursor; "
				 "stopping at %zu %s",
				 cycle ? "repeated" : "missing", g->n,
				 kind->plural);
			page.has_more = 0;
		}
		more = page.has_more;
		if (r == 0 && more) {
			after = page.last_id;
			r = gather_cursor(g, page.last_id);
			page.last_id = NULL;
		}
		page_free(kind, &page); /* drops the objects not taken */
		if (r < 0 || !more)
			break;
	}
	if (g->unusable || g->repeated)
		log_warn("list: left out %zu unusable and %zu repeated %s ids",
			 g->unusable, g->repeated, kind->name);
	if (r == -EFBIG) {
		log_err("list: still has_more after %zu %s (%zu MiB) in %zu "
			"pages; giving up (a listing holds at most %zu %s and "
			"%zu MiB)",
			g->n, kind->plural, g->bytes >> 20, g->ncursors + 1,
			l->max_objects, kind->plural, l->max_bytes >> 20);
		r = -EIO;
	}
	return r;
}

/* Copy the listing out. Caller holds l->lock. */
static int copy_ids(const struct listing *l, char ***ids, size_t *n)
{
	char **v = calloc(l->nids + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->nids; i++) {
		v[i] = strdup(l->ids[i]);
		if (!v[i]) {
			listing_free_ids(v, i);
			return -ENOMEM;
		}
	}
	*ids = v;
	*n = l->nids;
	return 0;
}

/*
 * Make g, the fetch begun at `started`, the listing (after an early stop,
 * followed by the previous listing's ids from g->tail_from on that g has
 * not seen), and its objects the stored ones where they are newer (the
 * store takes the objects). The listing and its copies are fresh from its
 * end for ttl, or (ttl > 0) for as long as the fetch took when longer: no
 * listing can bring fresher copies, and the readers of a large account
 * would otherwise spend most of their time waiting for the next one.
 * Returns 0, -EFBIG past max_objects, or -ENOMEM. Caller holds l->lock.
 */
static int apply(struct listing *l, struct gather *g, double started)
{
	size_t tail = g->stopped ? l->nids - g->tail_from : 0, n = 0;
	struct idset members = {0};
	double ended = store_clock(l->store);
	/* cache_ttl 0 asks every time, however long that takes. */
	double extra = l->store->ttl > 0 ? ended - started - l->store->ttl : 0;
	char **ids;
	int r = 0;

	if (g->n + tail > l->max_objects)
		return -EFBIG;
	ids = calloc(g->n + tail + 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < g->n + tail; i++) {
		const char *id = i < g->n ? g->kind->id(g->items[i].obj)
					  : l->ids[g->tail_from + i - g->n];

		if (i >= g->n && idset_has(&g->seen, id))
			continue;
		ids[n] = strdup(id);
		if (!ids[n] || idset_add(&members, ids[n]) < 0) {
			n += ids[n] != NULL;
			r = -ENOMEM;
			goto fail;
		}
		n++;
	}
	for (size_t i = 0; i < g->n; i++)
		g->items[i].checked = ended + (extra > 0 ? extra : 0);
	r = store_learn_listing(l->store, g->items, g->n);
	if (r < 0)
		goto fail;
	listing_free_ids(l->ids, l->nids);
	free(l->members.slots);
	l->ids = ids;
	l->nids = n;
	l->members = members;
	l->valid = 1;
	l->version++;
	l->listed_at = ended;
	l->extra = extra > 0 ? extra : 0;
	return 0;
fail:
	free(members.slots);
	listing_free_ids(ids, n);
	return r;
}

/*
 * Wait for the listing under way to end, or for op's deadline (-ETIMEDOUT)
 * or interruption (-EINTR), looking at op every 0.1 s. Caller holds
 * l->lock.
 */
static int wait_done(struct listing *l, const struct op *op)
{
	const struct clock *c = l->store->clock;
	double now;

	if (!op) {
		pthread_cond_wait(&l->done, &l->lock);
		return 0;
	}
	if (op->interrupted)
		return -EINTR;
	now = store_clock(l->store);
	if (now >= op->deadline)
		return -ETIMEDOUT;
	c->wait(c, &l->done, &l->lock, now + 0.1);
	return 0;
}

/* What a caller wants of the listing. */
enum want {
	WANT_CACHED,  /* listing_get: one younger than ttl */
	WANT_REFRESH, /* a fetch that ended after it asked */
	WANT_FULL,    /* a full fetch that began after it asked */
};

/*
 * Whether the listing answers a caller that asked at `asked` for want: 0
 * (it serves), -errno (the failure of a fetch it shares), 1 (a fetch is
 * needed, or the one under way waited for). Caller holds l->lock.
 */
static int settled(const struct listing *l, enum want want, double asked)
{
	int shared = l->tried >= asked && l->tried > 0;

	switch (want) {
	case WANT_CACHED:
		if (l->valid &&
		    (shared || asked - l->listed_at < l->store->ttl + l->extra))
			return 0;
		return shared && l->err < 0 ? l->err : 1;
	case WANT_REFRESH:
		return shared ? l->err : 1;
	case WANT_FULL:
		return l->full_started >= asked && l->full_started > 0
			   ? l->full_err
			   : 1;
	}
	return 1;
}

/*
 * Set g up to stop early: the previous listing, and the set of its ids
 * whose copies are not final. Returns 0 or -ENOMEM. Caller holds l->lock;
 * l->ids stays put while the fetch is under way (one at a time).
 */
static int gather_prepare(struct listing *l, struct gather *g)
{
	g->incremental = 1;
	g->prev = l->ids;
	g->nprev = l->nids;
	for (size_t i = 0; i < l->nids; i++) {
		if (store_known_final(l->store, l->ids[i]))
			continue;
		if (idset_add(&g->pending, l->ids[i]) < 0)
			return -ENOMEM;
		g->npending++;
	}
	return 0;
}

/*
 * Settle want for a caller that asked at `asked`: wait for the fetch under
 * way, share one that answers it, or fetch (full or incremental, see
 * listing_refresh). Returns 0 or -errno, the result of the fetch that
 * answers it. Caller holds l->lock, released while fetching or waiting.
 */
static int obtain(struct listing *l, struct op *op, enum want want,
		  double asked)
{
	struct gather g = {0};
	size_t dropped = 0;
	double started;
	int r, full;

	for (;;) {
		r = settled(l, want, asked);
		if (r <= 0)
			return r;
		if (!l->inflight)
			break;
		r = wait_done(l, op);
		if (r < 0)
			return r;
	}
	g.kind = l->store->kind;
	started = store_clock(l->store);
	full = want == WANT_FULL || !l->valid || l->full_every <= 0 ||
	       started - l->full_at >= l->full_every;
	if (!full && gather_prepare(l, &g) < 0) {
		/* No room to stop early: list everything. */
		free(g.pending.slots);
		memset(&g, 0, sizeof(g));
		g.kind = l->store->kind;
		full = 1;
	}
	l->inflight = 1;
	pthread_mutex_unlock(&l->lock);

	r = fetch_all(l, op, &g);
	if (r < 0)
		dropped = g.bytes;

	pthread_mutex_lock(&l->lock);
	l->inflight = 0;
	if (r == -EINTR) {
		/* No answer for anybody: who waited on it lists again. */
		pthread_cond_broadcast(&l->done);
		goto out;
	}
	if (r == 0)
		r = apply(l, &g, started);
	if (r == -EFBIG) {
		log_err("list: %zu %s and more; giving up (a listing holds at "
			"most %zu %s)",
			l->max_objects, g.kind->plural, l->max_objects,
			g.kind->plural);
		r = -EIO;
	}
	l->tried = store_clock(l->store);
	l->err = r;
	l->pages = g.pages;
	l->stopped = r == 0 && g.stopped;
	if (full) {
		l->full_started = started;
		l->full_err = r;
		if (r == 0)
			l->full_at = l->tried;
	}
	log_debug("list: %u pages, %s, %d", g.pages,
		  full	      ? "full"
		  : g.stopped ? "stopped early"
			      : "to the end",
		  r);
	pthread_cond_broadcast(&l->done);
out:
	gather_free(&g); /* the objects the store did not take */
#ifdef __GLIBC__
	/* A listing that failed late may have held a lot: give it back. */
	if (dropped >= (64UL << 20))
		malloc_trim(0);
#endif
	return r;
}

int listing_get(struct listing *l, struct op *op, char ***ids, size_t *n)
{
	uint64_t version = 0; /* no listing's */

	return listing_get_since(l, op, &version, ids, n);
}

int listing_get_since(struct listing *l, struct op *op, uint64_t *version,
		      char ***ids, size_t *n)
{
	double asked = store_clock(l->store);
	int r;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&l->lock);
	r = obtain(l, op, WANT_CACHED, asked);
	if (r < 0 && l->valid && l->tried >= asked && api_error_transient(r)) {
		log_warn("list: serving the cached listing");
		STAT_ADD(l->store->stats, stale_served, 1);
		r = 0;
	}
	if (r == 0 && l->version != *version) {
		r = copy_ids(l, ids, n);
		*version = l->version;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

int listing_kept_since(struct listing *l, uint64_t *version, char ***ids,
		       size_t *n)
{
	int r = 0;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&l->lock);
	if (!l->valid) {
		r = -ENODATA;
	} else if (l->version != *version) {
		r = copy_ids(l, ids, n);
		*version = l->version;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

int listing_refresh(struct listing *l, struct op *op, double asked, int full)
{
	int r;

	pthread_mutex_lock(&l->lock);
	r = obtain(l, op, full ? WANT_FULL : WANT_REFRESH, asked);
	pthread_mutex_unlock(&l->lock);
	return r;
}

int listing_has(struct listing *l, const char *id)
{
	int has;

	pthread_mutex_lock(&l->lock);
	has = idset_has(&l->members, id);
	pthread_mutex_unlock(&l->lock);
	return has;
}

int listing_add(struct listing *l, const char *id)
{
	char **ids;
	char *copy;
	int r = 0;

	pthread_mutex_lock(&l->lock);
	if (!l->valid || idset_has(&l->members, id))
		goto out;
	copy = strdup(id);
	ids = realloc(l->ids, (l->nids + 1) * sizeof(*ids));
	if (!copy || !ids) {
		free(copy);
		if (ids)
			l->ids = ids;
		r = -ENOMEM;
		goto out;
	}
	l->ids = ids;
	r = idset_add(&l->members, copy);
	if (r < 0) {
		free(copy);
		goto out;
	}
	memmove(l->ids + 1, l->ids, l->nids * sizeof(*l->ids));
	l->ids[0] = copy;
	l->version++;
	l->nids++;
out:
	pthread_mutex_unlock(&l->lock);
	return r;
}
