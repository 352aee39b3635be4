/*
 * store_tick.h - a thread that looks at what a store holds when it
 * changed: once a second it compares the store's change stamp
 * (store_changes) with the one of its last look and, when it moved, calls
 * the look it was given. It sends no request of its own; a look that
 * failed is made again the next second. Shared by the watchers of the
 * jobs (job_watch.h: their lines; job_auto.h: their rounds).
 */
#ifndef KIMIFS_STORE_TICK_H
#define KIMIFS_STORE_TICK_H

#include <pthread.h>
#include <stdint.h>

struct store;

struct store_tick {
	struct store *store;	/* whose stamp it compares */
	int (*look)(void *arg); /* 0, or -errno: look again */
	void *arg;		/* look's */
	pthread_mutex_t lock;	/* guards stop */
	pthread_cond_t wake;	/* signalled at stop */
	int stop;
	pthread_t thread;
	int started;
	uint64_t seen; /* the stamp of the last look (the thread's own) */
};

/*
 * Start t's thread over store (not owned; it outlives the thread),
 * calling look(arg) from it when the stamp moved. 0, or -errno (nothing
 * started).
 */
int store_tick_start(struct store_tick *t, struct store *store,
		     int (*look)(void *arg), void *arg);

/* Whether store_tick_stop was called: a long look ends early on it. */
int store_tick_stopping(struct store_tick *t);

/* Stop the thread (after the look under way) and wait for it. Safe after
 * a failed start or none. */
void store_tick_stop(struct store_tick *t);

#endif
