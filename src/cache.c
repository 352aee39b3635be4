/*
 * cache.c - batch snapshots by id in a chained hash table under one mutex,
 * with single-flight fetching (one request per batch at a time, waiters take
 * its result; one probe at a time for ids never seen), the rule that only
 * newer information replaces a snapshot, and the bounded, paged listing of
 * all batches.
 */
#include "cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"

/* Every page brings at least one batch of an account: a listing that needs
 * more pages than it may hold batches is going round in circles. */
#define LIST_MAX_PAGES CACHE_LIST_MAX_BATCHES

/* Seconds a lookup waits for a probe sent while the server is down. */
#define PROBE_GLANCE 1.0

struct cache_entry {
	struct cache_entry *next;
	char *id;
	struct batch *snap;    /* NULL when unknown or gone */
	double sent;	       /* when the request that told snap (or the 404)
				  was sent */
	double fetched;	       /* when that request was answered */
	double tried;	       /* when the last fetch ended, however it ended */
	int last_err;	       /* result of that fetch */
	struct api_error *why; /* its reason when it failed; may be NULL */
	int negative;	       /* the server said 404 at `fetched` */
	int inflight;	       /* a fetch is under way; never swept meanwhile */
	char *outcome;	       /* last ctl outcome line */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double cache_clock(void)
{
	return now_mono();
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
	pthread_condattr_t attr;

	memset(c, 0, sizeof(*c));
	c->api = api;
	c->ttl = ttl;
	c->page_size = page_size;
	c->nbuckets = 256;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	/* Waits have deadlines on the clock the cache stamps with. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->changed, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

static void entry_free(struct cache_entry *e)
{
	batch_unref(e->snap);
	free(e->why);
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
	/* Probes in the background end at once (-EINTR) and are waited for:
	 * they use the cache and the API client. */
	pthread_mutex_lock(&c->lock);
	if (c->probe_threads)
		api_stop(c->api);
	while (c->probe_threads)
		pthread_cond_wait(&c->changed, &c->lock);
	pthread_mutex_unlock(&c->lock);
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

/*
 * Wait until c->changed is broadcast or the cache clock reaches deadline.
 * Returns 0, or -ETIMEDOUT when the deadline has passed. Caller holds
 * c->lock.
 */
static int wait_changed(struct cache *c, double deadline)
{
	struct timespec ts;

	if (now_mono() >= deadline)
		return -ETIMEDOUT;
	ts.tv_sec = (time_t)deadline;
	ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&c->changed, &c->lock, &ts);
	return 0;
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

/* Where a status stands in the lifecycle; 0 when it is not a known one.
 * The final states share the last stage. */
static int stage(const char *status)
{
	static const struct {
		const char *name;
		int stage;
	} stages[] = {
	    {"validating", 1}, {"in_progress", 2}, {"finalizing", 3},
	    {"cancelling", 4}, {"completed", 5},   {"failed", 5},
	    {"expired", 5},    {"cancelled", 5},
	};

	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(status, stages[i].name) == 0)
			return stages[i].stage;
	return 0;
}

/*
 * Whether an answer to a request sent at `sent` and answered at `answered`
 * that says b (NULL: 404) is newer than what e holds: not when it ended
 * before e's request was sent; yes when it was sent after e's was answered
 * (the server's word then, whatever it says); when the two requests
 * overlapped, only when it moves the status forward in the lifecycle.
 * Caller holds the cache lock.
 */
static int is_newer(const struct cache_entry *e, const struct batch *b,
		    double sent, double answered)
{
	int from, to;

	if (!e->snap && !e->negative)
		return 1;
	if (answered <= e->sent)
		return 0;
	if (sent >= e->fetched)
		return 1;
	from = e->snap ? stage(e->snap->status) : 0;
	to = b ? stage(b->status) : 0;
	return from && to && to > from;
}

/*
 * Record an answer in e when it is newer (is_newer): b, whose reference it
 * takes either way, or a 404 when b is NULL. Returns whether it was kept.
 * Caller holds the cache lock.
 */
static int entry_learn(struct cache_entry *e, struct batch *b, double sent,
		       double answered)
{
	if (!is_newer(e, b, sent, answered)) {
		batch_unref(b);
		return 0;
	}
	batch_unref(e->snap);
	e->snap = b;
	e->negative = b == NULL;
	e->sent = sent;
	e->fetched = answered;
	return 1;
}

/* Note how the last fetch of e ended. Caller holds the cache lock. */
static void entry_tried(struct cache_entry *e, int r,
			const struct api_error *err, double when)
{
	e->tried = when;
	e->last_err = r;
	free(e->why);
	e->why = NULL;
	if (r < 0 && r != -ENOENT) {
		e->why = malloc(sizeof(*e->why));
		if (e->why)
			*e->why = *err;
	}
}

/*
 * Whether e answers a request made at `asked` in this mode: 0 (its snapshot
 * serves), -errno (its remembered failure serves, with the reason in err),
 * or 1 (fetch needed).
 */
static int settled(const struct cache *c, const struct cache_entry *e,
		   enum cache_mode mode, double asked, struct api_error *err)
{
	if (e->tried >= asked && e->tried > 0) {
		/* A fetch ended after we asked: share its result, as if it
		 * had been ours. */
		if (e->last_err == 0 || e->last_err == -ENOENT)
			return e->snap ? 0 : -ENOENT;
		if (e->snap && mode != CACHE_FORCE &&
		    api_error_transient(e->last_err))
			return 0;
		if (e->why)
			*err = *e->why;
		return e->last_err;
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

/*
 * Whether a failure says that the server is not answering at all (no
 * answer in time, no connection, a 5xx), rather than something about one
 * object.
 */
static int server_down(int r, const struct api_error *err)
{
	return r == -ETIMEDOUT || r == -EHOSTUNREACH ||
	       (r == -EIO && err->http_status >= 500);
}

/*
 * Whether the probe (the fetch of an id with no snapshot) answers a caller
 * that asked at `asked`: -errno with the reason in err when the last probe
 * found the server down and is under way or ended since the caller asked,
 * 1 when one is under way (wait for it), 0 when the caller may probe.
 * Caller holds c->lock.
 */
static int probe_settled(const struct cache *c, double asked,
			 struct api_error *err)
{
	if (c->probe_err && (c->probe_inflight || c->probe_ended >= asked)) {
		*err = c->probe_why;
		return c->probe_err;
	}
	return c->probe_inflight ? 1 : 0;
}

/*
 * Record how the fetch of e sent at `sent` ended: r, with fresh (whose
 * reference it takes) or err, and, for a probe, what it says of the server.
 * Returns the result for a caller in mode: 0 when e has a snapshot to serve
 * (also the cached copy after a passing failure, but in CACHE_FORCE mode),
 * else -errno. Caller holds c->lock; wakes the waiters.
 */
static int fetch_done(struct cache *c, struct cache_entry *e, int probe,
		      enum cache_mode mode, int r, struct batch *fresh,
		      const struct api_error *err, double sent)
{
	double answered = now_mono();

	e->inflight = 0;
	if (probe) {
		c->probe_inflight = 0;
		c->probe_ended = answered;
		c->probe_last = r;
		c->probe_why = *err;
	}
	/* Any answer says the server is up; a probe may say it is down. */
	if (probe || r == 0 || r == -ENOENT)
		c->probe_err = server_down(r, err) ? r : 0;
	entry_tried(e, r, err, answered);
	if (r == 0 || r == -ENOENT) {
		entry_learn(e, fresh, sent, answered);
		r = e->snap ? 0 : -ENOENT;
	} else if (e->snap && mode != CACHE_FORCE && api_error_transient(r)) {
		log_warn("batch %s: refresh failed (%d %s); serving the "
			 "cached copy",
			 e->id, err->http_status, err->message);
		r = 0;
	}
	pthread_cond_broadcast(&c->changed);
	return r;
}

/* A probe sent while the server is down, run by a thread of its own. */
struct probe_job {
	struct cache *c;
	char *id;
	enum cache_mode mode;
};

static void *probe_run(void *arg)
{
	struct probe_job *job = arg;
	struct cache *c = job->c;
	struct batch *fresh = NULL;
	struct api_error err;
	double sent = now_mono();
	int r = api_get_batch(c->api, job->id, &fresh, &err);

	pthread_mutex_lock(&c->lock);
	/* Still there: in-flight entries are not swept. */
	fetch_done(c, find(c, job->id), 1, job->mode, r, fresh, &err, sent);
	c->probe_threads--;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	free(job->id);
	free(job);
	return NULL;
}

/*
 * While the server is down, probe id in the background and wait for the
 * answer at most PROBE_GLANCE seconds: lookups queued behind this one must
 * not wait for a request each. Returns as cache_get does; without an answer
 * in time, the failure of the probe before. Caller holds c->lock, has
 * marked the entry and the probe in flight, and may be woken meanwhile.
 */
static int probe_glance(struct cache *c, const char *id, enum cache_mode mode,
			double asked, struct batch **out, struct api_error *err)
{
	struct probe_job *job = malloc(sizeof(*job));
	struct cache_entry *e;
	pthread_attr_t attr;
	pthread_t t;
	int r = -ENOMEM;

	if (job && (job->id = strdup(id))) {
		job->c = c;
		job->mode = mode;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		r = -pthread_create(&t, &attr, probe_run, job);
		pthread_attr_destroy(&attr);
	}
	if (r < 0) {
		if (job)
			free(job->id);
		free(job);
		find(c, id)->inflight = 0;
		c->probe_inflight = 0;
		pthread_cond_broadcast(&c->changed);
		*err = c->probe_why;
		return c->probe_err;
	}
	c->probe_threads++;
	for (;;) {
		e = find(c, id);
		if (e && e->tried >= asked) {
			r = settled(c, e, mode, asked, err);
			break;
		}
		if (!e || wait_changed(c, asked + PROBE_GLANCE) < 0) {
			/* No answer yet, or one not kept (swept): what the
			 * server said last. */
			*err = c->probe_why;
			r = c->probe_last < 0 ? c->probe_last : -ETIMEDOUT;
			break;
		}
	}
	if (r == 0)
		*out = batch_ref(e->snap);
	return r;
}

int cache_get(struct cache *c, const char *id, enum cache_mode mode,
	      struct batch **out, struct api_error *errp)
{
	double asked = now_mono(), sent;
	double deadline = asked + c->api->timeout_ms / 1000.0;
	struct batch *fresh = NULL;
	struct api_error own, *err = errp ? errp : &own;
	struct cache_entry *e;
	int r, probe = 0;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&c->lock);
	for (;;) {
		e = find(c, id);
		r = e ? settled(c, e, mode, asked, err) : 1;
		if (r == 0)
			*out = batch_ref(e->snap);
		if (r <= 0)
			goto out;
		/* An id with no snapshot to serve is a probe, but for
		 * CACHE_FORCE, which must ask whatever happened before. */
		probe = mode != CACHE_FORCE && (!e || !e->snap);
		r = probe ? probe_settled(c, asked, err) : 0;
		if (r < 0)
			goto out;
		if (e && e->inflight) {
			/* Share that fetch: it ends by its own deadline. */
			pthread_cond_wait(&c->changed, &c->lock);
			continue;
		}
		if (r == 0)
			break;
		/* Behind another name's probe: as long as we may wait. */
		if (wait_changed(c, deadline) < 0) {
			snprintf(err->message, sizeof(err->message),
				 "no answer within %ld s",
				 c->api->timeout_ms / 1000);
			r = -ETIMEDOUT;
			goto out;
		}
	}
	e = get_entry(c, id);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	e->inflight = 1;
	if (probe)
		c->probe_inflight = 1;
	if (probe && c->probe_err) {
		r = probe_glance(c, id, mode, asked, out, err);
		goto out;
	}
	pthread_mutex_unlock(&c->lock);

	sent = now_mono();
	r = api_get_batch(c->api, id, &fresh, err);

	pthread_mutex_lock(&c->lock);
	e = find(c, id); /* still there: in-flight entries are not swept */
	r = fetch_done(c, e, probe, mode, r, fresh, err, sent);
	if (r == 0)
		*out = batch_ref(e->snap);
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

void cache_put(struct cache *c, struct batch *b, double sent)
{
	struct cache_entry *e;

	pthread_mutex_lock(&c->lock);
	e = get_entry(c, b->id);
	if (e)
		entry_learn(e, batch_ref(b), sent, now_mono());
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

/* One listed batch and the request of the page it came in. */
struct listed {
	struct batch *b;
	double sent;
	double answered;
};

/* The batches of one listing, in order, and what it has seen. */
struct listing {
	struct listed *items;
	size_t n;
	size_t cap;
	size_t bytes;	   /* what the items hold (batch_bytes) */
	struct idset seen; /* ids of the items */
	char **cursors;	   /* the cursors sent, in order */
	size_t ncursors;
	struct idset sent; /* the same, as a set */
	size_t unusable;   /* ids left out as unsafe */
	size_t repeated;   /* ids left out as listed already */
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		batch_unref(l->items[i].b);
	free(l->items);
	free(l->seen.slots);
	cache_list_free(l->cursors, l->ncursors);
	free(l->sent.slots);
}

static size_t bfile_bytes(const struct bfile *f)
{
	return f->name ? strlen(f->name) + f->len : 0;
}

/* The bytes a snapshot holds, near enough: its JSON text and its files. */
static size_t batch_bytes(const struct batch *b)
{
	size_t n = sizeof(*b) + strlen(b->id) + b->json.len;

	for (size_t i = 0; i < b->nvalues; i++)
		n += bfile_bytes(&b->values[i]);
	for (size_t i = 0; i < 3; i++)
		n += bfile_bytes(&b->counts[i]);
	for (size_t i = 0; i < b->nmeta; i++)
		n += bfile_bytes(&b->meta[i]);
	return n;
}

/*
 * Take page's batches that are safe and new into l, noting the request
 * they came with. Returns 0, -EFBIG when l would pass the bounds of a
 * listing, or -ENOMEM.
 */
static int listing_take(struct listing *l, struct api_page *page, double sent,
			double answered)
{
	for (size_t i = 0; i < page->nitems; i++) {
		struct batch *b = page->items[i];
		size_t bytes;

		if (!batch_id_valid(b->id)) {
			l->unusable++;
			continue;
		}
		if (idset_has(&l->seen, b->id)) {
			l->repeated++;
			continue;
		}
		bytes = batch_bytes(b);
		if (l->n >= CACHE_LIST_MAX_BATCHES ||
		    l->bytes + bytes > CACHE_LIST_MAX_BYTES)
			return -EFBIG;
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 128;
			struct listed *it =
			    realloc(l->items, cap * sizeof(*it));

			if (!it)
				return -ENOMEM;
			l->items = it;
			l->cap = cap;
		}
		if (idset_add(&l->seen, b->id) < 0)
			return -ENOMEM;
		l->items[l->n++] = (struct listed){b, sent, answered};
		l->bytes += bytes;
		page->items[i] = NULL;
	}
	return 0;
}

/* Remember cursor (which l takes) as sent; returns 0 or -ENOMEM. */
static int listing_cursor(struct listing *l, char *cursor)
{
	char **v = realloc(l->cursors, (l->ncursors + 1) * sizeof(*v));

	if (!v) {
		free(cursor);
		return -ENOMEM;
	}
	l->cursors = v;
	l->cursors[l->ncursors++] = cursor;
	return idset_add(&l->sent, cursor);
}

/*
 * Fetch every page into l. The cursor for the next page is the id of the
 * page's last object, listed or not; one sent before, or one of a batch
 * already listed, means the server is going round in circles: the listing
 * stops there. Returns 0 or -errno, having logged why.
 */
static int fetch_listing(struct cache *c, struct listing *l)
{
	struct api_page page;
	struct api_error err;
	const char *after = NULL;
	int r = 0;

	for (size_t n = 0;; n++) {
		double sent = now_mono(), answered;
		int cycle, more;

		if (n == LIST_MAX_PAGES) {
			r = -EFBIG;
			break;
		}
		r = api_list_batches(c->api, after, c->page_size, &page, &err);
		answered = now_mono();
		if (r < 0) {
			log_err("list batches: %d %s", err.http_status,
				err.message);
			break;
		}
		cycle = page.last_id && (idset_has(&l->sent, page.last_id) ||
					 idset_has(&l->seen, page.last_id));
		r = listing_take(l, &page, sent, answered);
		if (r == 0 && page.has_more && (cycle || !page.last_id)) {
			log_warn("list: has_more with a %s cursor; "
				 "stopping at %zu batches",
				 cycle ? "repeated" : "missing", l->n);
			page.has_more = 0;
		}
		more = page.has_more;
		if (r == 0 && more) {
			after = page.last_id;
			r = listing_cursor(l, page.last_id);
			page.last_id = NULL;
		}
		api_page_free(&page); /* drops the batches not taken */
		if (r < 0 || !more)
			break;
	}
	if (l->unusable || l->repeated)
		log_warn("list: left out %zu unusable and %zu repeated batch "
			 "ids",
			 l->unusable, l->repeated);
	if (r == -EFBIG) {
		log_err("list: still has_more after %zu batches (%zu MiB) in "
			"%zu pages; giving up (a listing holds at most %d "
			"batches and %lu MiB)",
			l->n, l->bytes >> 20, l->ncursors + 1,
			CACHE_LIST_MAX_BATCHES, CACHE_LIST_MAX_BYTES >> 20);
		r = -EIO;
	}
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

/* Make l the listing, and its objects the cached ones where they are newer.
 * Caller holds lock. */
static int apply_listing(struct cache *c, struct listing *l)
{
	char **ids = calloc(l->n + 1, sizeof(*ids));

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		struct listed *it = &l->items[i];
		struct cache_entry *e = get_entry(c, it->b->id);

		ids[i] = strdup(it->b->id);
		if (!ids[i] || !e) {
			cache_list_free(ids, i + 1);
			return -ENOMEM;
		}
		entry_learn(e, it->b, it->sent, it->answered);
		it->b = NULL;
	}
	cache_list_free(c->listing, c->nlisting);
	c->listing = ids;
	c->nlisting = l->n;
	c->listing_valid = 1;
	c->listed_at = l->n ? l->items[0].answered : now_mono();
	c->probe_err = 0; /* the server answers again */
	return 0;
}

int cache_list(struct cache *c, char ***ids, size_t *n)
{
	double asked = now_mono();
	struct listing l = {0};
	size_t dropped = 0;
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
	if (r < 0)
		dropped = l.bytes;

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
	listing_free(&l); /* the batches apply_listing did not take */
#ifdef __GLIBC__
	/* A listing that failed late may have held a lot: give it back. */
	if (dropped >= (64UL << 20))
		malloc_trim(0);
#endif
	return r;
}
