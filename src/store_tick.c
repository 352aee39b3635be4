/*
 * store_tick.c - a thread that looks at a store once a second when its
 * change stamp moved (store_tick.h).
 */
#include "store_tick.h"

#include <string.h>
#include <time.h>

#include "store.h"

/* Seconds between two looks at the store's change stamp. */
#define LOOK_EVERY 1

static void *run(void *arg)
{
	struct store_tick *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec ts;
		uint64_t stamp;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += LOOK_EVERY;
		pthread_cond_timedwait(&t->wake, &t->lock, &ts);
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		stamp = store_changes(t->store, NULL);
		if (stamp != t->seen && t->look(t->arg) == 0)
			t->seen = stamp;
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int store_tick_start(struct store_tick *t, struct store *store,
		     int (*look)(void *arg), void *arg)
{
	int r;

	memset(t, 0, sizeof(*t));
	t->store = store;
	t->look = look;
	t->arg = arg;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->wake, NULL);
	r = pthread_create(&t->thread, NULL, run, t);
	if (r != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		return -r;
	}
	t->started = 1;
	return 0;
}

int store_tick_stopping(struct store_tick *t)
{
	int stop;

	pthread_mutex_lock(&t->lock);
	stop = t->stop;
	pthread_mutex_unlock(&t->lock);
	return stop;
}

void store_tick_stop(struct store_tick *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = 1;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	t->started = 0;
}
