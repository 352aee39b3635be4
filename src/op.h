/*
 * op.h - one filesystem operation, at the bottom of kimifs: the deadline
 * every call it makes shares, so an operation that needs several calls (a
 * listing of many pages, a cancel and its check) still ends within the
 * configured timeout, and whether it was interrupted (the process waiting
 * on it got a signal). The HTTP client, the store and the caches all take
 * one; NULL: a call alone, bounded by the timeout, not interruptible.
 */
#ifndef KIMIFS_OP_H
#define KIMIFS_OP_H

#include <pthread.h>

struct op {
	double deadline;	  /* monotonic seconds (util_now) */
	volatile int interrupted; /* set by op_interrupt, from any thread */
};

/* Start op now: its deadline is seconds from now, not interrupted. */
void op_start(struct op *op, double seconds);

/*
 * Interrupt op: its transfer under way and any backoff end at once, its
 * calls fail with -EINTR, and so do its waits in the store. Safe from any
 * thread.
 */
void op_interrupt(struct op *op);

/*
 * Wait on cond (a CLOCK_MONOTONIC condition; lock held) for at most slice
 * seconds and never past op's deadline, so that a caller waiting in a loop
 * sees an interrupt soon: 0 after the wait, -EINTR when op is interrupted,
 * -ETIMEDOUT when its deadline has passed. op may be NULL.
 */
int op_cond_wait(const struct op *op, pthread_cond_t *cond,
		 pthread_mutex_t *lock, double slice);

#endif
