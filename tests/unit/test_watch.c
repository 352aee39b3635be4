/*
 * test_watch.c - unit tests of the waits for final objects, over a store
 * of the fake kind: the backoff schedule shared by every waiter of an
 * object, passing failures that do not end a wait, a 404 that does, a
 * final copy already stored that ends it with no request, withdrawal,
 * destruction with waiters left, and the bulk refresh that replaces the
 * polls of many objects. The store's time is a fake clock that the tests
 * move on to each poll that is due: nothing waits for real time.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fake_kind.h"

#include "check.h"
#include "log.h"
#include "watch.h"

static const struct store_source source = {
    .fetch = fake_fetch,
};

/* What the callbacks saw; seen_cond is broadcast at each call. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cond = PTHREAD_COND_INITIALIZER;
static int calls;
static int last_err;
static int last_final;

static void done(void *arg, int err, void *obj)
{
	pthread_mutex_lock(&seen_lock);
	calls++;
	last_err = err;
	last_final = obj ? ((struct fake *)obj)->final : -1;
	(*(int *)arg)++;
	pthread_cond_broadcast(&seen_cond);
	pthread_mutex_unlock(&seen_lock);
}

static void answer(int result, int final)
{
	pthread_mutex_lock(&fake_lock);
	fake_result = result;
	fake_final = final;
	pthread_mutex_unlock(&fake_lock);
}

static int fetches(void)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = fake_fetches;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

/* Wait until *counter reaches n under seen_lock: 1, or 0 when it did not
 * within FAKE_CLOCK_PATIENCE real seconds (a broken test). */
static int wait_count(int *counter, int n)
{
	struct timespec bound;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += FAKE_CLOCK_PATIENCE;
	pthread_mutex_lock(&seen_lock);
	while (!(r = *counter >= n))
		if (pthread_cond_timedwait(&seen_cond, &seen_lock, &bound))
			break;
	pthread_mutex_unlock(&seen_lock);
	return r;
}

/* Move the time on from poll to poll until w sent n polls; the poller is
 * asleep (its polls counted) at each look. 1, or 0 when it never slept. */
static int wait_polls(struct watches *w, uint64_t n)
{
	for (;;) {
		if (!fake_clock_sleeping(&fake_time, 1, NULL))
			return 0;
		if (watch_polls(w) >= n)
			return 1;
		fake_clock_next(&fake_time);
	}
}

/* A bulk refresh of the fake kind: every id "p*" comes back final. */
static struct store *bulk_store;
static int bulk_refreshes;

static size_t bulk_cost(void *ctx)
{
	(void)ctx;
	return 1;
}

static int bulk_refresh(void *ctx, struct op *op)
{
	(void)ctx, (void)op;
	for (int i = 0; i < 3; i++) {
		char id[8];
		struct fake *f;

		snprintf(id, sizeof(id), "p%d", i);
		f = fake_new(id, 9, "done");
		f->final = 1;
		store_put(bulk_store, f, store_clock(bulk_store));
		fake_unref(f);
	}
	pthread_mutex_lock(&seen_lock);
	bulk_refreshes++;
	pthread_mutex_unlock(&seen_lock);
	return 0;
}

static int bulk_listed(void *ctx, const char *id)
{
	(void)ctx;
	return id[0] == 'p';
}

int main(void)
{
	struct store s;
	struct watches w;
	uint64_t t[5], polls;
	int got[5] = {0}, base;
	struct fake *f;

	log_init(1, 0);
	fake_clock_init(&fake_time);
	CHECK(fake_store_init(&s, &source, 0, 5) == 0);

	/* Five waiters of one object share each poll; two polls say not
	 * final, then one says final: all five are called once. */
	CHECK(watches_init(&w, &s, 0.01, 0.04, 5) == 0);
	answer(0, 0);
	for (int i = 0; i < 5; i++)
		CHECK(watch_add(&w, "a", done, &got[i], &t[i]) == 0);
	CHECK(wait_polls(&w, 2));
	answer(0, 1);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&calls, 5));
	polls = watch_polls(&w);
	CHECK(polls == 3 && (int)polls == fetches());
	CHECK(last_err == 0 && last_final == 1);
	for (int i = 0; i < 5; i++)
		CHECK(got[i] == 1);
	/* Over: a withdrawal finds nothing. */
	CHECK(watch_cancel(&w, t[0]) == -ENOENT);

	/* A final copy already stored ends a wait with no request. */
	base = fetches();
	f = fake_new("b", 3, "done");
	f->final = 1;
	store_put(&s, f, store_clock(&s));
	fake_unref(f);
	CHECK(watch_add(&w, "b", done, &got[0], &t[0]) == 0);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&got[0], 2));
	CHECK(fetches() == base && last_err == 0 && last_final == 1);

	/* Passing failures poll on; then a 404 ends the wait. */
	answer(-EIO, 0);
	polls = watch_polls(&w);
	CHECK(watch_add(&w, "c", done, &got[1], &t[1]) == 0);
	CHECK(wait_polls(&w, polls + 3));
	pthread_mutex_lock(&seen_lock);
	CHECK(got[1] == 1);
	pthread_mutex_unlock(&seen_lock);
	answer(-ENOENT, 0);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&got[1], 2));
	CHECK(last_err == -ENOENT && last_final == -1);

	/* A withdrawn waiter is never called; the other one is. */
	answer(0, 0);
	CHECK(watch_add(&w, "d", done, &got[2], &t[2]) == 0);
	CHECK(watch_add(&w, "d", done, &got[3], &t[3]) == 0);
	CHECK(watch_cancel(&w, t[2]) == 0);
	CHECK(watch_cancel(&w, t[2]) == -ENOENT);
	answer(0, 1);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&got[3], 2));
	pthread_mutex_lock(&seen_lock);
	CHECK(got[2] == 1);
	pthread_mutex_unlock(&seen_lock);

	/* Destruction calls the waiters left with -ESHUTDOWN. */
	answer(0, 0);
	CHECK(watch_add(&w, "e", done, &got[4], &t[4]) == 0);
	watches_destroy(&w);
	CHECK(got[4] == 2 && last_err == -ESHUTDOWN);

	/* Every waiter withdrawn: the object is no longer polled, while k,
	 * on the same schedule, is polled four times more. */
	CHECK(watches_init(&w, &s, 0.01, 0.01, 5) == 0);
	answer(0, 0);
	fake_counted = "f";
	CHECK(watch_add(&w, "f", done, &got[0], &t[0]) == 0);
	CHECK(watch_add(&w, "k", done, &got[1], &t[1]) == 0);
	CHECK(wait_polls(&w, 2));
	CHECK(watch_cancel(&w, t[0]) == 0);
	base = fake_counted_fetches;
	CHECK(base == 1);
	CHECK(wait_polls(&w, watch_polls(&w) + 4));
	CHECK(fake_counted_fetches == base);
	fake_counted = "";
	watches_destroy(&w);

	/* watches_stop ends the waits left (-ESHUTDOWN) and says how many,
	 * refuses new ones, and may be called again before watches_destroy. */
	CHECK(watches_init(&w, &s, 0.01, 0.01, 5) == 0);
	answer(0, 0);
	got[0] = got[1] = 0;
	CHECK(watch_add(&w, "g", done, &got[0], &t[0]) == 0);
	CHECK(watch_add(&w, "h", done, &got[1], &t[1]) == 0);
	CHECK(watches_stop(&w) == 2);
	CHECK(got[0] == 1 && got[1] == 1 && last_err == -ESHUTDOWN);
	CHECK(watch_add(&w, "g", done, &got[1], &t[1]) == -ESHUTDOWN);
	CHECK(watches_stop(&w) == 0);
	watches_destroy(&w);

	/* Three listed objects due together cost more than a bulk refresh:
	 * one refresh ends their waits without a fetch each; an object not
	 * listed is fetched alone. */
	CHECK(watches_init(&w, &s, 0.05, 0.05, 5) == 0);
	bulk_store = &s;
	w.bulk =
	    (struct watch_bulk){bulk_cost, bulk_refresh, bulk_listed, NULL};
	answer(0, 0);
	base = fetches();
	memset(got, 0, sizeof(got));
	CHECK(watch_add(&w, "p0", done, &got[0], &t[0]) == 0);
	CHECK(watch_add(&w, "p1", done, &got[1], &t[1]) == 0);
	CHECK(watch_add(&w, "p2", done, &got[2], &t[2]) == 0);
	CHECK(watch_add(&w, "q", done, &got[3], &t[3]) == 0);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&got[0], 1) && wait_count(&got[1], 1) &&
	      wait_count(&got[2], 1));
	CHECK(wait_polls(&w, 2));
	pthread_mutex_lock(&seen_lock);
	CHECK(bulk_refreshes == 1 && got[3] == 0);
	pthread_mutex_unlock(&seen_lock);
	CHECK(fetches() >= base + 1); /* q, alone */
	answer(0, 1);
	CHECK(fake_clock_next(&fake_time));
	CHECK(wait_count(&got[3], 1));
	CHECK(w.bulk_polls == 1);
	watches_destroy(&w);
	store_destroy(&s);
	fake_clock_destroy(&fake_time);
	return check_done("watch");
}
