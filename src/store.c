/*
 * store.c - objects of one kind by id in a chained hash table under one
 * mutex, with single-flight fetching (one request per id at a time, waiters
 * take its result; one probe at a time for ids never seen), the rule that
 * only newer information replaces an object, and per-entry change stamps.
 * A caller that waits links a waiter of its own (a condition variable) onto
 * the entry, or the probe, it waits for; a fetch's end wakes only those.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* Seconds between looks at whether a waiting caller was interrupted. */
#define INTR_POLL 0.1
/* Seconds a lookup waits for a probe sent while the server is down. */
#define PROBE_GLANCE 1.0

/* A deadline that never comes (wait_for). */
#define FOREVER (-1.0)

/* A caller asleep in the store, on its own condition variable. */
struct store_waiter {
	pthread_cond_t cond;
	struct store_waiter *next;	 /* on the same entry */
	struct store_waiter *next_probe; /* on the probe */
};

struct store_entry {
	struct store_entry *next;
	char *id;
	void *obj;	       /* NULL when unknown or gone */
	double sent;	       /* when the request that told obj (or the 404)
				  was sent */
	double fetched;	       /* when that request was answered */
	double checked;	       /* when obj was last known current: ttl
				  counts from here (fetched, or the end of
				  the listing that brought it) */
	double tried;	       /* when the last fetch ended, however it ended */
	int last_err;	       /* result of that fetch */
	struct api_error *why; /* its reason when it failed; may be NULL */
	int negative;	       /* the server said 404 at `fetched` */
	int inflight;	       /* a fetch is under way; never swept meanwhile */
	uint64_t changes;      /* change stamp (store_changes) */
	struct store_waiter *waiters; /* never swept while any */
};

double store_clock(const struct store *s)
{
	return s->clock->now(s->clock);
}

/* What an entry's change tells once s->lock is released (tell): the
 * object replaced and the one that replaced it, a reference each, for
 * kind->changed (both NULL: nothing for it, as when the entry was empty,
 * or the answer a 404). */
struct store_told {
	void *old;
	void *obj;
};

/* Tell the kind what changed (told, whose references it drops) and
 * s->on_change that id changed. Caller does not hold s->lock. */
static void tell(const struct store *s, const char *id, struct store_told *told)
{
	if (told->old) {
		s->kind->changed(told->old, told->obj);
		s->kind->unref(told->old);
		s->kind->unref(told->obj);
		told->old = told->obj = NULL;
	}
	if (s->on_change)
		s->on_change(s->on_change_arg, id);
}

int store_init(struct store *s, const struct object_kind *kind,
	       const struct store_source *source, void *ctx, double ttl,
	       double timeout)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->source = source;
	s->ctx = ctx;
	s->ttl = ttl;
	s->timeout = timeout;
	s->clock = &real_clock;
	s->nbuckets = 256;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	if (!s->buckets)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	/* Waits have deadlines on the clock the store stamps with. */
	pthread_condattr_init(&s->condattr);
	pthread_condattr_setclock(&s->condattr, CLOCK_MONOTONIC);
	return 0;
}

static void entry_free(const struct store *s, struct store_entry *e)
{
	s->kind->unref(e->obj);
	free(e->why);
	free(e->id);
	free(e);
}

/*
 * Sleep until woken through e (when not NULL) or through the end of a
 * probe (when probe), or until the store clock reaches deadline (FOREVER:
 * no deadline) or op's. Returns 0 when woken, perhaps spuriously or by the
 * deadline (callers check again), -ETIMEDOUT when the deadline had passed
 * already, -EINTR when op was interrupted (checked every INTR_POLL s).
 * Caller holds s->lock; e is not swept while it waits.
 */
static int wait_for(struct store *s, struct store_entry *e, int probe,
		    double deadline, const struct op *op)
{
	struct store_waiter w = {0}, **p;

	if (op && op->interrupted)
		return -EINTR;
	if (op && (deadline == FOREVER || op->deadline < deadline))
		deadline = op->deadline;
	if (deadline != FOREVER && store_clock(s) >= deadline)
		return -ETIMEDOUT;
	if (op && deadline > store_clock(s) + INTR_POLL)
		deadline = store_clock(s) + INTR_POLL; /* to look at op again */
	pthread_cond_init(&w.cond, &s->condattr);
	if (e) {
		w.next = e->waiters;
		e->waiters = &w;
	}
	if (probe) {
		w.next_probe = s->probe_waiters;
		s->probe_waiters = &w;
	}
	if (deadline == FOREVER)
		pthread_cond_wait(&w.cond, &s->lock);
	else
		s->clock->wait(s->clock, &w.cond, &s->lock, deadline);
	for (p = e ? &e->waiters : NULL; p && *p; p = &(*p)->next)
		if (*p == &w) {
			*p = w.next;
			break;
		}
	for (p = probe ? &s->probe_waiters : NULL; p && *p;
	     p = &(*p)->next_probe)
		if (*p == &w) {
			*p = w.next_probe;
			break;
		}
	pthread_cond_destroy(&w.cond);
	return 0;
}

/* Wake the callers waiting on e. Caller holds the store lock. */
static void wake_entry(struct store_entry *e)
{
	for (struct store_waiter *w = e->waiters; w; w = w->next)
		pthread_cond_signal(&w->cond);
}

/* Wake the callers waiting for a probe to end. Caller holds s->lock. */
static void wake_probe(struct store *s)
{
	for (struct store_waiter *w = s->probe_waiters; w; w = w->next_probe)
		pthread_cond_signal(&w->cond);
}

void store_destroy(struct store *s)
{
	/* Probes in the background end at once (-EINTR) and are waited for:
	 * they use the store and the source's context. */
	pthread_mutex_lock(&s->lock);
	if (s->probe_threads && s->source->stop)
		s->source->stop(s->ctx);
	while (s->probe_threads)
		wait_for(s, NULL, 1, FOREVER, NULL);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct store_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			entry_free(s, e);
		}
	}
	free(s->buckets);
	pthread_condattr_destroy(&s->condattr);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

/* Caller holds s->lock. */
static struct store_entry *find(const struct store *s, const char *id)
{
	struct store_entry *e = s->buckets[util_hash(id) % s->nbuckets];

	while (e && strcmp(e->id, id) != 0)
		e = e->next;
	return e;
}

/* Drop entries that hold nothing worth keeping: expired 404s, failed first
 * fetches, entries nobody waits on any more. Caller holds s->lock. */
static void sweep(struct store *s, double now)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct store_entry **p = &s->buckets[i];

		while (*p) {
			struct store_entry *e = *p;
			int dead = !e->obj && !e->inflight && !e->waiters &&
				   (!e->negative || now - e->fetched >= s->ttl);
			if (dead) {
				*p = e->next;
				entry_free(s, e);
				s->nentries--;
			} else {
				p = &e->next;
			}
		}
	}
	s->inserts = 0;
}

static void grow(struct store *s)
{
	size_t n = s->nbuckets * 2;
	struct store_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct store_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[util_hash(e->id) % n];
			b[util_hash(e->id) % n] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Find or add the entry for id; NULL when out of memory. May sweep: entries
 * found before are found again. Caller holds s->lock. */
static struct store_entry *get_entry(struct store *s, const char *id)
{
	struct store_entry *e = find(s, id);
	size_t h;

	if (e)
		return e;
	if (++s->inserts >= 1024)
		sweep(s, store_clock(s));
	if (s->nentries >= s->nbuckets)
		grow(s);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->id = strdup(id))) {
		free(e);
		return NULL;
	}
	h = util_hash(id) % s->nbuckets;
	e->next = s->buckets[h];
	s->buckets[h] = e;
	s->nentries++;
	return e;
}

/*
 * Whether an answer to a request sent at `sent` and answered at `answered`
 * that says obj (NULL: 404) is newer than what e holds: not when it ended
 * before e's request was sent; yes when it was sent after e's was answered
 * (the server's word then, whatever it says); when the two requests
 * overlapped, only when it moves the object forward in its lifecycle.
 * Caller holds the store lock.
 */
static int is_newer(const struct store *s, const struct store_entry *e,
		    const void *obj, double sent, double answered)
{
	int from, to;

	if (!e->obj && !e->negative)
		return 1;
	if (answered <= e->sent)
		return 0;
	if (sent >= e->fetched)
		return 1;
	from = e->obj ? s->kind->rank(e->obj) : 0;
	to = obj ? s->kind->rank(obj) : 0;
	return from && to && to > from;
}

/*
 * Record an answer in e when it is newer (is_newer): obj, whose reference
 * it takes either way, or a 404 when obj is NULL. A change of what e says
 * raises its stamp; its waiters are woken; an object replaced by one that
 * says otherwise is left in told for kind->changed (tell, once the lock
 * is released). Returns whether it was kept. Caller holds s->lock.
 */
static int entry_learn(struct store *s, struct store_entry *e, void *obj,
		       double sent, double answered, double checked,
		       struct store_told *told)
{
	int changed;

	if (!is_newer(s, e, obj, sent, answered)) {
		s->kind->unref(obj);
		return 0;
	}
	changed =
	    !e->obj != !obj || (obj && e->obj && !s->kind->same(e->obj, obj));
	if (changed)
		e->changes = ++s->stamp;
	if (changed && e->obj && obj && s->kind->changed && !told->old) {
		told->old = e->obj;
		told->obj = s->kind->ref(obj);
	} else {
		s->kind->unref(e->obj);
	}
	e->obj = obj;
	e->negative = obj == NULL;
	e->sent = sent;
	e->fetched = answered;
	e->checked = checked > answered ? checked : answered;
	wake_entry(e);
	return 1;
}

/* Note how the last fetch of e ended. Caller holds the store lock. */
static void entry_tried(struct store_entry *e, int r,
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
 * Whether e answers a request made at `asked` in this mode: 0 (its object
 * serves), -errno (its remembered failure serves, with the reason in err),
 * or 1 (fetch needed). Caller holds s->lock.
 */
static int settled(const struct store *s, const struct store_entry *e,
		   enum store_mode mode, double asked, struct api_error *err)
{
	if (e->tried >= asked && e->tried > 0) {
		/* A fetch ended after we asked: share its result, as if it
		 * had been ours. */
		if (e->last_err == 0 || e->last_err == -ENOENT)
			return e->obj ? 0 : -ENOENT;
		if (e->obj && mode != STORE_FORCE &&
		    api_error_transient(e->last_err))
			return 0;
		if (e->why)
			*err = *e->why;
		return e->last_err;
	}
	if (e->obj && s->kind->final(e->obj))
		return 0;
	if (mode == STORE_FORCE)
		return 1;
	if (e->obj && (mode == STORE_ANY || asked - e->checked < s->ttl))
		return 0;
	if (e->negative && asked - e->fetched < s->ttl)
		return -ENOENT;
	return 1;
}

/*
 * Whether the probe (the fetch of an id with no object) answers a caller
 * that asked at `asked`: -errno with the reason in err when the last probe
 * found the server down and is under way or ended since the caller asked,
 * 1 when one is under way (wait for it), 0 when the caller may probe.
 * Caller holds s->lock.
 */
static int probe_settled(const struct store *s, double asked,
			 struct api_error *err)
{
	if (s->probe_err && (s->probe_inflight || s->probe_ended >= asked)) {
		*err = s->probe_why;
		return s->probe_err;
	}
	return s->probe_inflight ? 1 : 0;
}

/*
 * Record how the fetch of e sent at `sent` ended: r, with fresh (whose
 * reference it takes) or err, and, for a probe, what it says of the server.
 * Returns the result for a caller in mode: 0 when e has an object to serve
 * (also the stored copy after a passing failure, but in STORE_FORCE mode),
 * else -errno. Wakes the waiters of e, and of the probe when it was one.
 * What changed is left in told (entry_learn). Caller holds s->lock.
 */
static int fetch_done(struct store *s, struct store_entry *e, int probe,
		      enum store_mode mode, int r, void *fresh,
		      const struct api_error *err, double sent,
		      struct store_told *told)
{
	double answered = store_clock(s);

	e->inflight = 0;
	if (r == -EINTR) {
		/* Interrupted: no answer for anybody; who shared it asks
		 * again. */
		if (probe) {
			s->probe_inflight = 0;
			wake_probe(s);
		}
		wake_entry(e);
		return r;
	}
	if (probe) {
		s->probe_inflight = 0;
		s->probe_ended = answered;
		s->probe_last = r;
		s->probe_why = *err;
		wake_probe(s);
	}
	/* Any answer says the server is up; a probe may say it is down. */
	if (probe || r == 0 || r == -ENOENT)
		s->probe_err = api_error_down(err) ? r : 0;
	entry_tried(e, r, err, answered);
	if (r == 0 || r == -ENOENT) {
		entry_learn(s, e, fresh, sent, answered, answered, told);
		r = e->obj ? 0 : -ENOENT;
	} else if (e->obj && mode != STORE_FORCE && api_error_transient(r)) {
		char why[600];

		api_error_text(err, r, why, sizeof(why));
		log_warn("%s %s: refresh failed (%s); serving the cached copy",
			 s->kind->name, e->id, why);
		STAT_ADD(s->stats, stale_served, 1);
		r = 0;
	}
	wake_entry(e);
	return r;
}

/* A probe sent while the server is down, run by a thread of its own. */
struct probe_job {
	struct store *s;
	char *id;
	enum store_mode mode;
};

static void *probe_run(void *arg)
{
	struct probe_job *job = arg;
	struct store *s = job->s;
	struct store_told told = {0};
	void *fresh = NULL;
	struct api_error err;
	double sent = store_clock(s);
	struct store_entry *e;
	uint64_t seen;
	int r;

	memset(&err, 0, sizeof(err));
	pthread_mutex_lock(&s->lock);
	seen = find(s, job->id)->changes;
	pthread_mutex_unlock(&s->lock);
	r = s->source->fetch(s->ctx, s->kind, NULL, job->id, &fresh, &err);
	pthread_mutex_lock(&s->lock);
	/* Still there: in-flight entries are not swept. */
	e = find(s, job->id);
	fetch_done(s, e, 1, job->mode, r, fresh, &err, sent, &told);
	if (e->changes != seen) {
		/* Told before store_destroy can stop waiting for us. */
		pthread_mutex_unlock(&s->lock);
		tell(s, job->id, &told);
		pthread_mutex_lock(&s->lock);
	}
	s->probe_threads--;
	wake_probe(s); /* store_destroy waits for the last one */
	pthread_mutex_unlock(&s->lock);
	free(job->id);
	free(job);
	return NULL;
}

/*
 * While the server is down, probe id in the background and wait for the
 * answer at most PROBE_GLANCE seconds: lookups queued behind this one must
 * not wait for a request each. Returns as store_get does; without an answer
 * in time, the failure of the probe before. Caller holds s->lock, has
 * marked the entry and the probe in flight, and may be woken meanwhile.
 */
static int probe_glance(struct store *s, const struct op *op, const char *id,
			enum store_mode mode, double asked, void **out,
			struct api_error *err)
{
	struct probe_job *job = malloc(sizeof(*job));
	struct store_entry *e;
	pthread_attr_t attr;
	pthread_t t;
	int r = -ENOMEM;

	if (job && (job->id = strdup(id))) {
		job->s = s;
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
		e = find(s, id);
		e->inflight = 0;
		s->probe_inflight = 0;
		wake_entry(e);
		wake_probe(s);
		*err = s->probe_why;
		return s->probe_err;
	}
	s->probe_threads++;
	for (;;) {
		e = find(s, id);
		if (e && e->tried >= asked) {
			r = settled(s, e, mode, asked, err);
			break;
		}
		r = e ? wait_for(s, e, 0, asked + PROBE_GLANCE, op)
		      : -ETIMEDOUT;
		if (r == -EINTR) {
			snprintf(err->message, sizeof(err->message),
				 "interrupted");
			break;
		}
		if (r < 0) {
			/* No answer yet, or one not kept (swept): what the
			 * server said last. */
			*err = s->probe_why;
			r = s->probe_last < 0 ? s->probe_last : -ETIMEDOUT;
			break;
		}
	}
	if (r == 0)
		*out = s->kind->ref(e->obj);
	return r;
}

int store_get(struct store *s, struct op *op, const char *id,
	      enum store_mode mode, void **out, struct api_error *errp)
{
	double asked = store_clock(s), sent;
	double deadline = asked + s->timeout;
	struct store_told told = {0};
	void *fresh = NULL;
	struct api_error own, *err = errp ? errp : &own;
	struct store_entry *e;
	uint64_t seen = 0;
	int r, probe = 0, moved = 0;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	pthread_mutex_lock(&s->lock);
	for (;;) {
		e = find(s, id);
		r = e ? settled(s, e, mode, asked, err) : 1;
		if (r == 0)
			*out = s->kind->ref(e->obj);
		if (r <= 0) {
			STAT_ADD(s->stats, hits, 1);
			goto out;
		}
		/* An id with no object to serve is a probe, but for
		 * STORE_FORCE, which must ask whatever happened before. */
		probe = mode != STORE_FORCE && (!e || !e->obj);
		r = probe ? probe_settled(s, asked, err) : 0;
		if (r < 0)
			goto out;
		if (e && e->inflight) {
			/* Share that fetch: it ends by its own deadline, but
			 * op may end first. */
			r = wait_for(s, e, 0, FOREVER, op);
			if (r == -ETIMEDOUT && e->obj && mode != STORE_FORCE) {
				/* Out of time before the fetch: as after a
				 * failed refresh, the stored copy serves. */
				*out = s->kind->ref(e->obj);
				STAT_ADD(s->stats, stale_served, 1);
				r = 0;
				goto out;
			}
			if (r < 0)
				goto gave_up;
			continue;
		}
		if (r == 0)
			break;
		/* Behind another name's probe, as long as we may wait: woken
		 * when it ends, or when an answer about id comes meanwhile
		 * (a listing), so on an entry of id's own. */
		e = get_entry(s, id);
		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		r = wait_for(s, e, 1, deadline, op);
		if (r < 0)
			goto gave_up;
	}
	e = get_entry(s, id);
	if (!e) {
		r = -ENOMEM;
		goto out;
	}
	e->inflight = 1;
	seen = e->changes;
	if (probe)
		s->probe_inflight = 1;
	if (probe && s->probe_err) {
		r = probe_glance(s, op, id, mode, asked, out, err);
		goto out;
	}
	pthread_mutex_unlock(&s->lock);

	sent = store_clock(s);
	STAT_ADD(s->stats, misses, 1);
	r = s->source->fetch(s->ctx, s->kind, op, id, &fresh, err);

	pthread_mutex_lock(&s->lock);
	e = find(s, id); /* still there: in-flight entries are not swept */
	r = fetch_done(s, e, probe, mode, r, fresh, err, sent, &told);
	if (r == 0)
		*out = s->kind->ref(e->obj);
	moved = e->changes != seen;
	goto out;
gave_up:
	if (r == -EINTR)
		snprintf(err->message, sizeof(err->message), "interrupted");
	else
		snprintf(err->message, sizeof(err->message),
			 "no answer within %g s", s->timeout);
out:
	pthread_mutex_unlock(&s->lock);
	if (moved)
		tell(s, id, &told);
	return r;
}

void store_put(struct store *s, void *obj, double sent)
{
	struct store_told told = {0};
	struct store_entry *e;
	uint64_t seen = 0;

	pthread_mutex_lock(&s->lock);
	e = get_entry(s, s->kind->id(obj));
	if (e) {
		seen = e->changes;
		entry_learn(s, e, s->kind->ref(obj), sent, store_clock(s), 0,
			    &told);
	}
	if (e && e->changes != seen) {
		pthread_mutex_unlock(&s->lock);
		tell(s, s->kind->id(obj), &told);
		return;
	}
	pthread_mutex_unlock(&s->lock);
}

int store_learn_listing(struct store *s, struct store_item *items, size_t n)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++) {
		struct store_entry *e = get_entry(s, s->kind->id(items[i].obj));

		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		uint64_t seen = e->changes;
		const char *id = s->kind->id(items[i].obj);
		struct store_told told = {0};

		/* The id outlives the object's reference, taken here. */
		s->kind->ref(items[i].obj);
		entry_learn(s, e, items[i].obj, items[i].sent,
			    items[i].answered, items[i].checked, &told);
		if ((s->on_change || told.old) && e->changes != seen) {
			pthread_mutex_unlock(&s->lock);
			tell(s, id, &told);
			pthread_mutex_lock(&s->lock);
		}
		s->kind->unref(items[i].obj);
		items[i].obj = NULL;
	}
	s->probe_err = 0; /* the server answers again */
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int store_stale(struct store *s, const char *id)
{
	struct store_entry *e;
	int stale;

	pthread_mutex_lock(&s->lock);
	e = find(s, id);
	stale = e && e->obj && !s->kind->final(e->obj) &&
		store_clock(s) - e->checked >= s->ttl;
	pthread_mutex_unlock(&s->lock);
	return stale;
}

int store_known_final(struct store *s, const char *id)
{
	struct store_entry *e;
	int final;

	pthread_mutex_lock(&s->lock);
	e = find(s, id);
	final = e && e->obj && s->kind->final(e->obj);
	pthread_mutex_unlock(&s->lock);
	return final;
}

uint64_t store_changes(struct store *s, const char *id)
{
	struct store_entry *e;
	uint64_t stamp;

	pthread_mutex_lock(&s->lock);
	e = id ? find(s, id) : NULL;
	stamp = e ? e->changes : id ? 0 : s->stamp;
	pthread_mutex_unlock(&s->lock);
	return stamp;
}

int store_wait(struct store *s, const struct op *op, const char *id,
	       uint64_t seen, double deadline, uint64_t *now)
{
	struct store_entry *e;
	int r;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		e = get_entry(s, id);
		if (!e) {
			r = -ENOMEM;
			break;
		}
		if (e->changes > seen) {
			r = 0;
			break;
		}
		r = wait_for(s, e, 0, deadline, op);
		if (r < 0)
			break; /* -ETIMEDOUT, or -EINTR */
	}
	if (now)
		*now = e ? e->changes : 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}
