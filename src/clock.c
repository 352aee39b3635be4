/*
 * clock.c - the system's monotonic clock as a struct clock (clock.h).
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

#include "util.h"

static double real_now(const struct clock *c)
{
	(void)c;
	return util_now();
}

/* The condition variable's clock is CLOCK_MONOTONIC, as util_now's. */
static void real_wait(const struct clock *c, pthread_cond_t *cond,
		      pthread_mutex_t *lock, double deadline)
{
	struct timespec ts;

	(void)c;
	ts.tv_sec = (time_t)deadline;
	ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(cond, lock, &ts);
}

const struct clock real_clock = {real_now, real_wait};

int monotonic_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int r = pthread_condattr_init(&attr);

	if (r)
		return -r;
	r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!r)
		r = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -r;
}
