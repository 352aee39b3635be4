/*
 * watch.h - waiting for objects to become final (batches/<id>/wait): one
 * poller thread fetches each watched object on a backoff schedule (from
 * min_interval doubling to max_interval), shared by every waiter of that
 * object, and calls each waiter back once the object is final or gone.
 * Passing failures never end a wait. Generic over the store's kinds; knows
 * nothing of FUSE.
 */
#ifndef KIMIFS_WATCH_H
#define KIMIFS_WATCH_H

#include <pthread.h>
#include <stdint.h>

#include "store.h"

/*
 * A waiter's callback, called once, from the poller thread (or the thread
 * in watches_destroy), with no lock held: err 0 with obj the final object
 * (a reference valid during the call), -ENOENT when the server has no such
 * object, -ESHUTDOWN when the watches are destroyed first.
 */
typedef void (*watch_done_fn)(void *arg, int err, void *obj);

struct watched;

/*
 * An optional way to poll many objects at once (the listing of batches/):
 * cost(ctx) is the most requests one refresh(ctx, op) can take; listed(ctx,
 * id) whether it brings id. When more listed objects are due together
 * than it costs, the poller refreshes once and reads their stored copies
 * instead of fetching each (objects not listed are fetched as usual).
 */
struct watch_bulk {
	size_t (*cost)(void *ctx);
	int (*refresh)(void *ctx, struct op *op);
	int (*listed)(void *ctx, const char *id);
	void *ctx;
};

struct watches {
	struct store *store;
	double min_interval; /* seconds before the first poll's successor */
	double max_interval; /* the backoff's ceiling (-o poll_interval) */
	double timeout;	     /* bound of one poll */

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;  /* the poller sleeps on it (store clock) */
	struct watched *list;
	uint64_t next_token;
	int stopping;
	int started;
	pthread_t thread;
	struct op *polling;	/* the poll under way, to end it at stop */
	uint64_t polls;		/* polls sent, for tests and stats */
	uint64_t bulk_polls;	/* of which refreshes of many at once */
	struct watch_bulk bulk; /* set before the first watch_add, or zero */
	int bulk_failing;	/* the last bulk refresh failed (logged) */
};

/* Set up watches over store s; the thread starts with the first waiter.
 * 0 or -errno. */
int watches_init(struct watches *w, struct store *s, double min_interval,
		 double max_interval, double timeout);

/* End every wait (-ESHUTDOWN) and the poller thread; later watch_add
 * calls fail with -ESHUTDOWN. May be called more than once. Returns the
 * number of waits it ended. */
size_t watches_stop(struct watches *w);

/* watches_stop, then free what w holds. */
void watches_destroy(struct watches *w);

/*
 * Wait for object id to become final: done(arg, ...) is called once, later,
 * from the poller thread. The caller has just seen a copy that is not
 * final: the first poll of an object not yet watched is min_interval
 * later; waiters of an object already watched join its schedule.
 * Returns 0 with a token for watch_cancel in *token, or -errno (then done
 * is never called).
 */
int watch_add(struct watches *w, const char *id, watch_done_fn done, void *arg,
	      uint64_t *token);

/*
 * Withdraw the waiter token: 0 when it was withdrawn (done will not be
 * called), -ENOENT when done has been or is being called.
 */
int watch_cancel(struct watches *w, uint64_t token);

/* Polls sent so far. */
uint64_t watch_polls(struct watches *w);

#endif
