/*
 * fake_download.h - the bookkeeping of the unit tests' stub downloads (a
 * cache_download_fn of their own, over a real disk cache): each call
 * counted, held while the test holds them, failed when the test says;
 * and the wait for the cache's download threads to end.
 */
#ifndef KIMIFS_FAKE_DOWNLOAD_H
#define KIMIFS_FAKE_DOWNLOAD_H

#include <pthread.h>

#include "cache.h"

static struct {
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t go;    /* broadcast when hold is let go */
	int calls;	      /* calls made */
	int hold;	      /* calls wait while it is set */
	int fail_err;	      /* calls fail with it while set... */
	int fail_once;	      /* ...or only the next one */
} fake_dl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

/* For the stub, as a call begins: count it, wait while calls are held;
 * the -errno the call must fail with, or 0. */
static inline int fake_download_call(void)
{
	int r;

	pthread_mutex_lock(&fake_dl.lock);
	fake_dl.calls++;
	while (fake_dl.hold)
		pthread_cond_wait(&fake_dl.go, &fake_dl.lock);
	r = fake_dl.fail_err;
	if (fake_dl.fail_once)
		fake_dl.fail_err = 0;
	pthread_mutex_unlock(&fake_dl.lock);
	return r;
}

/* The calls made so far. */
static inline int fake_download_count(void)
{
	int n;

	pthread_mutex_lock(&fake_dl.lock);
	n = fake_dl.calls;
	pthread_mutex_unlock(&fake_dl.lock);
	return n;
}

/* Hold the calls (h), or let them go on. */
static inline void fake_download_hold(int h)
{
	pthread_mutex_lock(&fake_dl.lock);
	fake_dl.hold = h;
	pthread_cond_broadcast(&fake_dl.go);
	pthread_mutex_unlock(&fake_dl.lock);
}

/* Fail the calls with err (0: no more), every one or (once) the next. */
static inline void fake_download_fail(int err, int once)
{
	pthread_mutex_lock(&fake_dl.lock);
	fake_dl.fail_err = err;
	fake_dl.fail_once = once;
	pthread_mutex_unlock(&fake_dl.lock);
}

/* Wait until no download thread of c runs: each download begun is kept
 * (renamed into place, in the cache's order of use) or gone. No real time
 * is waited for: the cache signals each thread's end. */
static inline void fake_download_settle(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->threads)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

#endif
