/*
 * op.c - one filesystem operation (see op.h): its start, its interrupt and
 * the wait bounded by its deadline.
 */
#include "op.h"

#include <errno.h>
#include <time.h>

#include "util.h"

void op_start(struct op *op, double seconds)
{
	op->deadline = util_now() + seconds;
	op->interrupted = 0;
}

void op_interrupt(struct op *op)
{
	op->interrupted = 1;
}

int op_cond_wait(const struct op *op, pthread_cond_t *cond,
		 pthread_mutex_t *lock, double slice)
{
	double now = util_now(), until = now + slice;
	struct timespec ts;

	if (op && op->interrupted)
		return -EINTR;
	if (op && now >= op->deadline)
		return -ETIMEDOUT;
	if (op && op->deadline < until)
		until = op->deadline;
	/* util_now is CLOCK_MONOTONIC seconds, as the condition's clock. */
	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(cond, lock, &ts);
	return 0;
}
