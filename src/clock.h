/*
 * clock.h - the time the store, the listing and the watches read and wait
 * by: a table of two functions, the system's monotonic clock by default
 * (real_clock), so that a unit test can put in a clock it moves on itself
 * and wait for no real time to pass.
 */
#ifndef KIMIFS_CLOCK_H
#define KIMIFS_CLOCK_H

#include <pthread.h>

struct clock {
	/* Seconds now; never goes back, and a later reading is later. */
	double (*now)(const struct clock *c);
	/*
	 * Wait on cond, with lock held (as pthread_cond_timedwait), until
	 * woken through cond or until now() reaches deadline. It may return
	 * sooner (spuriously): callers look again. cond's own clock is
	 * CLOCK_MONOTONIC (monotonic_cond_init).
	 */
	void (*wait)(const struct clock *c, pthread_cond_t *cond,
		     pthread_mutex_t *lock, double deadline);
};

/* CLOCK_MONOTONIC (util_now): never jumps with the wall clock. */
extern const struct clock real_clock;

/* Set up cond for the waits of real_clock (deadlines on CLOCK_MONOTONIC):
 * 0 or -errno. */
int monotonic_cond_init(pthread_cond_t *cond);

#endif
