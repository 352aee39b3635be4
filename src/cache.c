/*
 * cache.c - batch snapshots by id in a chained hash table under one mutex,
 * with single-flight fetching (one request per batch at a time, waiters take
 * its result) and the paged listing of all batches.
 */
#include "cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define MAX_PAGES 100000 /* a listing never takes more pages than this */

struct cache_entry {
	struct cache_entry *next;
	char *id;
	struct batch *snap; /* NULL when unknown or gone */
	double fetched;	    /* when snap (or the 404) was learned */
	double tried;	    /* when the last fetch ended, however it ended */
	int last_err;	    /* result of that fetch */
	int negative;	    /* the server said 404 at `fetched` */
	int inflight;	    /* a fetch is under way; never swept meanwhile */
	char *outcome;	    /* last ctl outcome line */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

int cache_init(struct cache *c, struct api *api, double ttl, unsigned page_size)
{
	memset(c, 0, sizeof(*c));
	c->api = api;
	c->ttl = ttl;
	c->page_size = page_size;
	c->nbuckets = 256;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	return 0;
}

static void entry_free(struct cache_entry *e)
{
	batch_unref(e->snap);
	free(e->outcome);
	free(e->id);
	free(e);
}

void cache_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void cache_destroy(struct cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	}
	free(c->buckets);
	cache_list_free(c->listing, c->nlisting);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof(*c));
}

/* Caller holds c->lock. */
static struct cache_entry *find(struct cache *c, const char *id)
{
	struct cache_entry *e = c->buckets[hash(id) % c->nbuckets];

	while (e && strcmp(e->id, id) != 0)
		e = e->next;
	return e;
}

/* Drop entries that hold nothing worth keeping: expired 404s and failed
 * first fetches. Caller holds c->lock. */
static void sweep(struct cache *c, double now)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry **p = &c->buckets[i];

		while (*p) {
			struct cache_entry *e = *p;
			int dead = !e->snap && !e->inflight && !e->outcome &&
				   (!e->negative || now - e->fetched >= c->ttl);
			if (dead) {
				*p = e->next;
				entry_free(e);
				c->nentries--;
			} else {
				p = &e->next;
			}
		}
	}
	c->inserts = 0;
}

static void grow(struct cache *c)
{
	size_t n = c->nbuckets * 2;
	struct cache_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[hash(e->id) % n];
			b[hash(e->id) % n] = e;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

/* Find or add the entry for id; NULL when out of memory. Caller holds
 * c->lock. */
static struct cache_entry *get_entry(struct cache *c, const char *id)
{
	struct cache_entry *e = find(c, id);
	size_t h;

	if (e)
		return e;
	if (++c->inserts >= 1024)
		sweep(c, now_mono());
	if (c->nentries >= c->nbuckets)
		grow(c);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->id = strdup(id))) {
		free(e);
		return NULL;
	}
	h = hash(id) % c->nbuckets;
	e->next = c->buckets[h];
	c->buckets[h] = e;
	c->nentries++;
	return e;
}

/* Replace an entry's snapshot with b (whose reference it takes). */
static void entry_set(struct cache_entry *e, struct batch *b, double when)
{
	batch_unref(e->snap);
	e->snap = b;
	e->fetched = when;
	e->tried = when;
	e->last_err = 0;
	e->negative = 0;
}

/*
 * Whether e answers a request made at `asked` in this mode: 0 (its snapshot
 * serves), -errno (its remembered failure serves), or 1 (fetch needed).
 */
static int settled(const struct cache *c, const struct cache_entry *e,
		   enum cache_mode mode, double asked)
{
	if (e->tried >= asked && e->tried > 0) {
		/* A fetch ended after we asked: share its result. */
		if (e->snap)
			return 0;
		return e->negative ? -ENOENT : e->last_err;
	}
	if (e->snap && e->snap->final)
		return 0;
	if (mode == CACHE_FORCE)
		return 1;
	if (e->snap && (mode == CACHE_ANY || asked - e->fetched < c->ttl))
		return 0;
	if (e->negative && asked - e->fetched < c->ttl)
		return -ENOENT;
	return 1;
}

int cache_get(struct cache *c, const char *id, enum cache_mode mode,
	      struct batch **out, struct api_error *errp)
{
	double asked = now_mono();
	struct batch *fresh = NULL;
	struct api_error own, *err = errp ? errp : &own;
	struct cache_entry *e;
	int r;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = find(c, id);
		if (!e)
			break;
		r = settled(c, e, mode, asked);
		if (r <= 0) {
			if (r == 0)
				*out = batch_ref(e->snap);
			goto out;
		}
		if (!e->inflight)
			break;
		pthread_cond_wait(&c->changed, &c->lock);
	}
	e = get_entry(c, id);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	e->inflight = 1;
	pthread_mutex_unlock(&c->lock);

	r = api_get_batch(c->api, id, &fresh, err);

	pthread_mutex_lock(&c->lock);
	e = find(c, id); /* still there: in-flight entries are not swept */
	e->inflight = 0;
	if (r == 0) {
		entry_set(e, fresh, now_mono());
		*out = batch_ref(fresh);
	} else {
		e->tried = now_mono();
		e->last_err = r;
		if (r == -ENOENT) {
			batch_unref(e->snap);
			e->snap = NULL;
			e->negative = 1;
			e->fetched = e->tried;
		} else if (e->snap && mode != CACHE_FORCE &&
			   api_error_transient(r)) {
			log_warn(
			    "batch %s: refresh failed (%d %s); serving the "
			    "cached copy",
			    id, err->http_status, err->message);
			*out = batch_ref(e->snap);
			r = 0;
		}
	}
	pthread_cond_broadcast(&c->changed);
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

void cache_put(struct cache *c, struct batch *b)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = get_entry(c, b->id);
	if (e)
		entry_set(e, batch_ref(b), now_mono());
	pthread_mutex_unlock(&c->lock);
}

int cache_set_outcome(struct cache *c, const char *id, const char *text)
{
	char *copy = strdup(text);
	struct cache_entry *e;

	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	e = get_entry(c, id);
	if (e) {
		free(e->outcome);
		e->outcome = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(copy);
	return e ? 0 : -ENOMEM;
}

char *cache_outcome(struct cache *c, const char *id)
{
	struct cache_entry *e;
	char *text = NULL;

	pthread_mutex_lock(&c->lock);
	e = find(c, id);
	if (e && e->outcome)
		text = strdup(e->outcome);
	pthread_mutex_unlock(&c->lock);
	return text;
}

/* A set of ids seen in one listing: open addressing over borrowed strings. */
struct idset {
	const char **slots;
	size_t cap;
	size_t n;
};

static int idset_has(const struct idset *s, const char *id)
{
	size_t i;

	if (!s->cap)
		return 0;
	for (i = hash(id) & (s->cap - 1); s->slots[i];
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
	for (i = hash(id) & (s->cap - 1); s->slots[i];
	     i = (i + 1) & (s->cap - 1))
		;
	s->slots[i] = id;
	s->n++;
	return 0;
}

/* Batches of one listing, in order, with the time each page came. */
struct listing {
	struct batch **items;
	double *when;
	size_t n;
	size_t cap;
	struct idset seen;
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		batch_unref(l->items[i]);
	free(l->items);
	free(l->when);
	free(l->seen.slots);
}

/* Take page's batches that are safe and new into l. */
static int listing_take(struct listing *l, struct api_page *page, double when)
{
	for (size_t i = 0; i < page->nitems; i++) {
		struct batch *b = page->items[i];

		if (!batch_id_valid(b->id) || idset_has(&l->seen, b->id)) {
			log_warn("list: left out %s batch id",
				 batch_id_valid(b->id) ? "a repeated"
						       : "an unusable");
			continue;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 128;
			struct batch **it =
			    realloc(l->items, cap * sizeof(*it));
			double *w;

			if (!it)
				return -ENOMEM;
			l->items = it;
			w = realloc(l->when, cap * sizeof(*w));
			if (!w)
				return -ENOMEM;
			l->when = w;
			l->cap = cap;
		}
		if (idset_add(&l->seen, b->id) < 0)
			return -ENOMEM;
		l->items[l->n] = b;
		l->when[l->n++] = when;
		page->items[i] = NULL;
	}
	return 0;
}

/* Fetch every page into l. Returns 0 or -errno. */
static int fetch_listing(struct cache *c, struct listing *l)
{
	struct api_page page;
	struct api_error err;
	char *after = NULL;
	int r = 0;

	for (unsigned n = 0; n < MAX_PAGES; n++) {
		int cycle, more;

		r = api_list_batches(c->api, after, c->page_size, &page, &err);
		if (r < 0) {
			log_err("list batches: %d %s", err.http_status,
				err.message);
			break;
		}
		/* A cursor we have already listed means the server is going
		 * round in circles: stop rather than loop. */
		cycle = page.last_id && idset_has(&l->seen, page.last_id);
		r = listing_take(l, &page, now_mono());
		if (r == 0 && page.has_more && (cycle || !page.last_id)) {
			log_warn("list: has_more with a %s cursor; "
				 "stopping at %zu batches",
				 cycle ? "repeated" : "missing", l->n);
			page.has_more = 0;
		}
		more = page.has_more;
		free(after);
		after = page.last_id;
		page.last_id = NULL;
		api_page_free(&page); /* drops the batches not taken */
		if (r < 0 || !more)
			break;
	}
	free(after);
	return r;
}

/* Copy the listing out. Caller holds c->lock. */
static int copy_listing(const struct cache *c, char ***ids, size_t *n)
{
	char **v = calloc(c->nlisting + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < c->nlisting; i++) {
		v[i] = strdup(c->listing[i]);
		if (!v[i]) {
			cache_list_free(v, i);
			return -ENOMEM;
		}
	}
	*ids = v;
	*n = c->nlisting;
	return 0;
}

/* Make l the listing and its objects the cached ones. Caller holds lock. */
static int apply_listing(struct cache *c, struct listing *l)
{
	char **ids = calloc(l->n + 1, sizeof(*ids));

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		struct cache_entry *e = get_entry(c, l->items[i]->id);

		ids[i] = strdup(l->items[i]->id);
		if (!ids[i] || !e) {
			cache_list_free(ids, i + 1);
			return -ENOMEM;
		}
		entry_set(e, l->items[i], l->when[i]);
		l->items[i] = NULL;
	}
	cache_list_free(c->listing, c->nlisting);
	c->listing = ids;
	c->nlisting = l->n;
	c->listing_valid = 1;
	c->listed_at = l->n ? l->when[0] : now_mono();
	return 0;
}

int cache_list(struct cache *c, char ***ids, size_t *n)
{
	double asked = now_mono();
	struct listing l = {0};
	int r;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		int shared = c->list_tried >= asked && c->list_tried > 0;

		if (c->listing_valid &&
		    (shared || asked - c->listed_at < c->ttl)) {
			r = copy_listing(c, ids, n);
			goto out;
		}
		if (shared && c->list_err < 0) {
			r = c->list_err;
			goto out;
		}
		if (!c->list_inflight)
			break;
		pthread_cond_wait(&c->changed, &c->lock);
	}
	c->list_inflight = 1;
	pthread_mutex_unlock(&c->lock);

	r = fetch_listing(c, &l);

	pthread_mutex_lock(&c->lock);
	c->list_inflight = 0;
	if (r == 0)
		r = apply_listing(c, &l);
	c->list_tried = now_mono();
	c->list_err = r;
	if (r < 0 && c->listing_valid && api_error_transient(r)) {
		log_warn("list: serving the cached listing");
		r = 0;
	}
	if (r == 0)
		r = copy_listing(c, ids, n);
	pthread_cond_broadcast(&c->changed);
out:
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < l.n; i++)
		batch_unref(l.items[i]); /* those apply_listing did not take */
	l.n = 0;
	listing_free(&l);
	return r;
}
