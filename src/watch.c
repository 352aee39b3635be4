/*
 * watch.c - the waits for objects to become final (watch.h): a list of
 * watched objects, each with its waiters and the time of its next poll,
 * and one poller thread that sends the poll that is due, reschedules it
 * with a doubled interval, and calls the waiters back once the object is
 * final or gone. The poll goes through the store, so every other reader
 * sees what it brings, and a final copy that any reader brought ends the
 * wait without a request.
 */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct waiter {
	struct waiter *next;
	watch_done_fn done;
	void *arg;
	uint64_t token;
};

struct watched {
	struct watched *next;
	char *id;
	struct waiter *waiters;
	double due;	 /* store clock of the next poll */
	double interval; /* the wait after the next poll */
	int failing;	 /* the last poll failed (logged once) */
	int refreshed;	 /* 1: a bulk refresh just brought its copy; -1:
			    it failed, poll it alone this time */
};

int watches_init(struct watches *w, struct store *s, double min_interval,
		 double max_interval, double timeout)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->store = s;
	w->min_interval = min_interval;
	w->max_interval =
	    max_interval < min_interval ? min_interval : max_interval;
	w->timeout = timeout;
	r = pthread_mutex_init(&w->lock, NULL);
	if (r)
		return -r;
	r = monotonic_cond_init(&w->cond); /* for the store clock's waits */
	if (r < 0)
		pthread_mutex_destroy(&w->lock);
	return r;
}

static void watched_free(struct watched *o)
{
	free(o->id);
	free(o);
}

/* Call every waiter of o back (no lock held) and free them. */
static size_t finish(struct watches *w, struct waiter *list, int err, void *obj)
{
	size_t n = 0;

	(void)w;
	while (list) {
		struct waiter *next = list->next;

		list->done(list->arg, err, obj);
		free(list);
		list = next;
		n++;
	}
	return n;
}

/* Unlink o from the list (lock held). */
static void unlink_watched(struct watches *w, struct watched *o)
{
	for (struct watched **p = &w->list; *p; p = &(*p)->next) {
		if (*p == o) {
			*p = o->next;
			return;
		}
	}
}

/* Whether the store's copy of id, if any, is final; *obj holds it then. */
static int known_final(struct watches *w, const char *id, void **obj)
{
	*obj = NULL;
	if (store_changes(w->store, id) == 0)
		return 0; /* nothing stored: a get would fetch */
	if (store_get(w->store, NULL, id, STORE_ANY, obj, NULL) < 0)
		return 0;
	if (w->store->kind->final(*obj))
		return 1;
	w->store->kind->unref(*obj);
	*obj = NULL;
	return 0;
}

/*
 * Poll o (lock not held; o stays linked, and only this thread unlinks):
 * 1 with *err and *obj when its wait is over, else 0.
 */
static int poll_one(struct watches *w, struct watched *o, int *err, void **obj)
{
	struct op op = {.deadline = store_clock(w->store) + w->timeout};
	struct api_error why = {0};
	int r;

	if (known_final(w, o->id, obj)) {
		*err = 0;
		return 1;
	}
	if (o->refreshed > 0) { /* the bulk refresh brought it, not final */
		o->refreshed = 0;
		o->failing = 0;
		return 0;
	}
	o->refreshed = 0;
	pthread_mutex_lock(&w->lock);
	w->polling = &op;
	w->polls++;
	pthread_mutex_unlock(&w->lock);
	r = store_get(w->store, &op, o->id, STORE_FORCE, obj, &why);
	pthread_mutex_lock(&w->lock);
	w->polling = NULL;
	pthread_mutex_unlock(&w->lock);
	if (r == 0 && w->store->kind->final(*obj)) {
		*err = 0;
		return 1;
	}
	if (r == 0) {
		w->store->kind->unref(*obj);
		*obj = NULL;
		o->failing = 0;
		return 0;
	}
	*obj = NULL;
	if (r == -ENOENT) {
		*err = r;
		return 1;
	}
	if (!o->failing && r != -EINTR)
		log_warn("wait for %s %s: %s; polling on", w->store->kind->name,
			 o->id, api_error_message(&why, r));
	o->failing = 1;
	return 0;
}

/* The watched object whose poll is due first (lock held), or NULL. */
static struct watched *first_due(struct watches *w)
{
	struct watched *best = NULL;

	for (struct watched *o = w->list; o; o = o->next)
		if (!best || o->due < best->due)
			best = o;
	return best;
}

/*
 * When more listed objects are due (or due within min_interval) than a
 * bulk refresh costs, refresh
 * (lock held; dropped during the refresh) and mark them refreshed, so
 * that their polls read the stored copies. Returns 1 when it refreshed
 * (the lock was dropped), 0 when it did not, or -ESHUTDOWN when the
 * watches stopped meanwhile.
 */
static int poll_bulk(struct watches *w)
{
	struct op op;
	double now = store_clock(w->store);
	/* Those due within min_interval are polled now with the others:
	 * waits that began one after the other (cat batches/x/wait, one cat
	 * each) share the refresh, and their schedules fall in step. */
	double soon = now + w->min_interval;
	size_t due = 0;
	int r;

	if (!w->bulk.refresh)
		return 0;
	for (struct watched *o = w->list; o; o = o->next)
		if (o->due <= soon && o->waiters && !o->refreshed &&
		    w->bulk.listed(w->bulk.ctx, o->id))
			due++;
	if (due < 2 || due <= w->bulk.cost(w->bulk.ctx))
		return 0;
	op.deadline = now + w->timeout;
	op.interrupted = 0;
	w->polling = &op;
	w->polls++;
	w->bulk_polls++;
	pthread_mutex_unlock(&w->lock);
	r = w->bulk.refresh(w->bulk.ctx, &op);
	pthread_mutex_lock(&w->lock);
	w->polling = NULL;
	if (w->stopping)
		return -ESHUTDOWN;
	if (r < 0 && !w->bulk_failing)
		log_warn("wait: a refresh of %zu %s through the listing: %s; "
			 "polling each",
			 due, w->store->kind->name, strerror(-r));
	w->bulk_failing = r < 0; /* logged once until one succeeds */
	/* Only those it brought: listed now, due soon when it began; their
	 * polls read the copies now (or, if it failed, poll each now). */
	for (struct watched *o = w->list; o; o = o->next) {
		if (o->due > soon || o->refreshed ||
		    !(r < 0 || w->bulk.listed(w->bulk.ctx, o->id)))
			continue;
		o->refreshed = r < 0 ? -1 : 1;
		if (o->due > now)
			o->due = now;
	}
	return 1;
}

/* Sleep until the store clock reaches when, or until woken (lock held). */
static void sleep_until(struct watches *w, double when)
{
	const struct clock *c = w->store->clock;

	c->wait(c, &w->cond, &w->lock, when);
}

static void *poller(void *arg)
{
	struct watches *w = arg;

	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		struct watched *o = first_due(w);
		struct waiter *done;
		void *obj;
		int err;

		if (!o) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		if (!o->waiters) { /* every waiter withdrew */
			unlink_watched(w, o);
			watched_free(o);
			continue;
		}
		if (o->due > store_clock(w->store)) {
			sleep_until(w, o->due);
			continue;
		}
		if (!o->refreshed) {
			int b = poll_bulk(w);

			if (b < 0)
				break;
			if (b > 0)
				continue; /* the list may have changed */
		}
		pthread_mutex_unlock(&w->lock);
		int over = poll_one(w, o, &err, &obj);
		pthread_mutex_lock(&w->lock);
		if (w->stopping) {
			if (obj)
				w->store->kind->unref(obj);
			break;
		}
		if (!over) {
			o->due = store_clock(w->store) + o->interval;
			o->interval *= 2;
			if (o->interval > w->max_interval)
				o->interval = w->max_interval;
			continue;
		}
		unlink_watched(w, o);
		done = o->waiters;
		pthread_mutex_unlock(&w->lock);
		finish(w, done, err, obj);
		if (obj)
			w->store->kind->unref(obj);
		watched_free(o);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int watch_add(struct watches *w, const char *id, watch_done_fn done, void *arg,
	      uint64_t *token)
{
	struct waiter *wt = calloc(1, sizeof(*wt));
	struct watched *o;
	int r = 0;

	if (!wt)
		return -ENOMEM;
	wt->done = done;
	wt->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		r = -ESHUTDOWN;
		goto out;
	}
	for (o = w->list; o && strcmp(o->id, id) != 0; o = o->next)
		;
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || !(o->id = strdup(id))) {
			free(o);
			r = -ENOMEM;
			goto out;
		}
		/* The caller has just seen a copy that is not final. */
		o->due = store_clock(w->store) + w->min_interval;
		o->interval = w->min_interval * 2 > w->max_interval
				  ? w->max_interval
				  : w->min_interval * 2;
		o->next = w->list;
		w->list = o;
	}
	if (!w->started) {
		r = -pthread_create(&w->thread, NULL, poller, w);
		if (r < 0) {
			if (!o->waiters) {
				unlink_watched(w, o);
				watched_free(o);
			}
			goto out;
		}
		w->started = 1;
	}
	wt->token = ++w->next_token;
	wt->next = o->waiters;
	o->waiters = wt;
	*token = wt->token;
	wt = NULL;
	pthread_cond_broadcast(&w->cond);
out:
	pthread_mutex_unlock(&w->lock);
	free(wt);
	return r;
}

int watch_cancel(struct watches *w, uint64_t token)
{
	int r = -ENOENT;

	pthread_mutex_lock(&w->lock);
	for (struct watched *o = w->list; o && r < 0; o = o->next) {
		for (struct waiter **p = &o->waiters; *p; p = &(*p)->next) {
			struct waiter *wt = *p;

			if (wt->token != token)
				continue;
			*p = wt->next;
			free(wt);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

uint64_t watch_polls(struct watches *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->lock);
	n = w->polls;
	pthread_mutex_unlock(&w->lock);
	return n;
}

size_t watches_stop(struct watches *w)
{
	struct watched *list;
	size_t n = 0;

	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	if (w->polling)
		op_interrupt(w->polling);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->started)
		pthread_join(w->thread, NULL);
	pthread_mutex_lock(&w->lock);
	w->started = 0;
	list = w->list;
	w->list = NULL;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct watched *next = list->next;

		n += finish(w, list->waiters, -ESHUTDOWN, NULL);
		watched_free(list);
		list = next;
	}
	return n;
}

void watches_destroy(struct watches *w)
{
	watches_stop(w);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
