/*
 * fake_clock.h - a struct clock for the unit tests whose time moves only
 * when the test moves it (fake_clock_advance, fake_clock_next), and by a
 * microsecond at each reading, so that a later reading is later, as on a
 * real clock. A timed wait on it sleeps until woken through its condition
 * or until the test moves the time to its deadline; a test can wait for
 * threads to be asleep on it. No real time has to pass. Included by one
 * test file each.
 */
#ifndef KIMIFS_FAKE_CLOCK_H
#define KIMIFS_FAKE_CLOCK_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

/* Real seconds a test waits for a thread to fall asleep before it fails:
 * a bound for a broken test, never a pause. */
#define FAKE_CLOCK_PATIENCE 30

/* A thread asleep in fake_wait. */
struct fake_sleeper {
	pthread_cond_t *cond;
	pthread_mutex_t *lock; /* held by the sleeper but while asleep */
	double deadline;
	struct fake_sleeper *next;
};

struct fake_clock {
	struct clock clock; /* first: the functions are given &clock */
	/* Guards the fields below; taken after a sleeper's lock, never
	 * before. */
	pthread_mutex_t lock;
	pthread_cond_t slept; /* broadcast when a thread falls asleep */
	double now;
	struct fake_sleeper *sleepers;
};

static double fake_now(const struct clock *c)
{
	struct fake_clock *fc = (struct fake_clock *)c;
	double now;

	pthread_mutex_lock(&fc->lock);
	fc->now += 1e-6;
	now = fc->now;
	pthread_mutex_unlock(&fc->lock);
	return now;
}

/* As struct clock's wait: the sleeper's lock is held from here until
 * pthread_cond_wait lets it go, so a fake_clock_advance that takes it
 * cannot wake the sleeper before it sleeps. */
static void fake_wait(const struct clock *c, pthread_cond_t *cond,
		      pthread_mutex_t *lock, double deadline)
{
	struct fake_clock *fc = (struct fake_clock *)c;
	struct fake_sleeper me = {cond, lock, deadline, NULL};

	pthread_mutex_lock(&fc->lock);
	if (fc->now >= deadline) {
		pthread_mutex_unlock(&fc->lock);
		return;
	}
	me.next = fc->sleepers;
	fc->sleepers = &me;
	pthread_cond_broadcast(&fc->slept);
	pthread_mutex_unlock(&fc->lock);
	pthread_cond_wait(cond, lock);
	pthread_mutex_lock(&fc->lock);
	for (struct fake_sleeper **p = &fc->sleepers; *p; p = &(*p)->next)
		if (*p == &me) {
			*p = me.next;
			break;
		}
	pthread_mutex_unlock(&fc->lock);
}

/* A fake clock at time 1000 with nobody asleep. */
static inline void fake_clock_init(struct fake_clock *fc)
{
	fc->clock.now = fake_now;
	fc->clock.wait = fake_wait;
	pthread_mutex_init(&fc->lock, NULL);
	pthread_cond_init(&fc->slept, NULL);
	fc->now = 1000;
	fc->sleepers = NULL;
}

static inline void fake_clock_destroy(struct fake_clock *fc)
{
	pthread_cond_destroy(&fc->slept);
	pthread_mutex_destroy(&fc->lock);
}

/*
 * Move the time on to t (never back) and wake every sleeper whose deadline
 * it reached, each under its own lock. The caller holds no sleeper's lock;
 * the objects the sleepers wait in outlive the call.
 */
static inline void fake_clock_set(struct fake_clock *fc, double t)
{
	pthread_mutex_t *locks[64];
	size_t n = 0;

	pthread_mutex_lock(&fc->lock);
	if (t > fc->now)
		fc->now = t;
	for (struct fake_sleeper *s = fc->sleepers; s; s = s->next) {
		size_t i = 0;

		while (i < n && locks[i] != s->lock)
			i++;
		if (s->deadline <= fc->now && i == n && n < 64)
			locks[n++] = s->lock;
	}
	pthread_mutex_unlock(&fc->lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(locks[i]);
		pthread_mutex_lock(&fc->lock);
		for (struct fake_sleeper *s = fc->sleepers; s; s = s->next)
			if (s->lock == locks[i] && s->deadline <= fc->now)
				pthread_cond_broadcast(s->cond);
		pthread_mutex_unlock(&fc->lock);
		pthread_mutex_unlock(locks[i]);
	}
}

/* Move the time on by seconds (see fake_clock_set). */
static inline void fake_clock_advance(struct fake_clock *fc, double seconds)
{
	double now;

	pthread_mutex_lock(&fc->lock);
	now = fc->now;
	pthread_mutex_unlock(&fc->lock);
	fake_clock_set(fc, now + seconds);
}

/*
 * Wait until at least n threads sleep on fc with deadlines still to come.
 * Returns 1 with the earliest of those deadlines in *first (may be NULL),
 * or 0 when none fell asleep within FAKE_CLOCK_PATIENCE real seconds.
 */
static inline int fake_clock_sleeping(struct fake_clock *fc, int n,
				      double *first)
{
	struct timespec bound;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &bound);
	bound.tv_sec += FAKE_CLOCK_PATIENCE;
	pthread_mutex_lock(&fc->lock);
	for (;;) {
		int asleep = 0;
		double min = 0;

		for (struct fake_sleeper *s = fc->sleepers; s; s = s->next) {
			if (s->deadline <= fc->now)
				continue; /* being woken */
			if (!asleep++ || s->deadline < min)
				min = s->deadline;
		}
		if (asleep >= n) {
			if (first)
				*first = min;
			r = 1;
			break;
		}
		if (pthread_cond_timedwait(&fc->slept, &fc->lock, &bound) ==
		    ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&fc->lock);
	return r;
}

/* Wait for a sleeper (fake_clock_sleeping) and move the time on to the
 * first deadline: 1, or 0 when nobody fell asleep. */
static inline int fake_clock_next(struct fake_clock *fc)
{
	double first;

	if (!fake_clock_sleeping(fc, 1, &first))
		return 0;
	fake_clock_set(fc, first);
	return 1;
}

#endif
