/*
 * fake_kind.h - a kind of object for the store's unit tests: small
 * reference-counted objects (an id, a lifecycle rank, a text, final or
 * not), their descriptor (fake_kind), and a stub fetch the test scripts, so
 * nothing goes to a network, and a store on a fake clock (fake_clock.h) that
 * the test moves on. Included by one test file each.
 */
#ifndef KIMIFS_FAKE_KIND_H
#define KIMIFS_FAKE_KIND_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_clock.h"
#include "store.h"

struct fake {
	int refs; /* atomic */
	char id[64];
	int rank;
	int final;
	char text[64];
	size_t bytes;
};

/* What the stub fetch answers, and how often it was called. Guarded by
 * fake_lock; the fetch blocks while fake_gate_closed. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_cond = PTHREAD_COND_INITIALIZER;
static int fake_result;	  /* 0: answer fake_answer; else this -errno */
static int fake_rank = 2; /* of the answer */
static int fake_final;
static const char *fake_text = "a";
static int fake_fetches;	      /* calls of the stub fetch */
static int fake_entered;	      /* calls that reached the gate */
static int fake_gate_closed;	      /* fetches wait until it opens */
static const char *fake_counted = ""; /* fetches of this id are counted */
static int fake_counted_fetches;      /* in here */

static struct fake *fake_new(const char *id, int rank, const char *text)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->refs = 1;
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->rank = rank;
	snprintf(f->text, sizeof(f->text), "%s", text);
	f->bytes = 100;
	return f;
}

static void *fake_ref(void *obj)
{
	struct fake *f = obj;

	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

static void fake_unref(void *obj)
{
	struct fake *f = obj;

	if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(f);
}

static int fake_fetch(void *ctx, const struct object_kind *kind, struct op *op,
		      const char *id, void **out, struct api_error *err)
{
	int r;

	(void)ctx;
	(void)kind;
	(void)op;
	pthread_mutex_lock(&fake_lock);
	fake_fetches++;
	fake_entered++;
	fake_counted_fetches += strcmp(id, fake_counted) == 0;
	pthread_cond_broadcast(&fake_cond);
	while (fake_gate_closed)
		pthread_cond_wait(&fake_cond, &fake_lock);
	r = fake_result;
	if (r == 0) {
		struct fake *f = fake_new(id, fake_rank, fake_text);

		f->final = fake_final;
		*out = f;
	} else {
		err->fail = r == -EIO	      ? API_FAIL_SERVER_DOWN
			    : r == -ETIMEDOUT ? API_FAIL_TIMED_OUT
					      : API_FAIL_NONE;
		snprintf(err->message, sizeof(err->message), "stub says %d", r);
	}
	pthread_mutex_unlock(&fake_lock);
	return r;
}

/* Close the gate: fetches from now on wait in the stub. */
static inline void fake_close(void)
{
	pthread_mutex_lock(&fake_lock);
	fake_gate_closed = 1;
	fake_entered = 0;
	pthread_mutex_unlock(&fake_lock);
}

/* Wait until n fetches reached the closed gate. */
static inline void fake_wait_entered(int n)
{
	pthread_mutex_lock(&fake_lock);
	while (fake_entered < n)
		pthread_cond_wait(&fake_cond, &fake_lock);
	pthread_mutex_unlock(&fake_lock);
}

static inline void fake_open(void)
{
	pthread_mutex_lock(&fake_lock);
	fake_gate_closed = 0;
	pthread_cond_broadcast(&fake_cond);
	pthread_mutex_unlock(&fake_lock);
}

static const char *fake_id(const void *obj)
{
	return ((const struct fake *)obj)->id;
}

static int fake_is_final(const void *obj)
{
	return ((const struct fake *)obj)->final;
}

static int fake_rank_of(const void *obj)
{
	return ((const struct fake *)obj)->rank;
}

static int fake_same(const void *a, const void *b)
{
	const struct fake *x = a, *y = b;

	return x->rank == y->rank && x->final == y->final &&
	       strcmp(x->text, y->text) == 0;
}

static size_t fake_bytes(const void *obj)
{
	return ((const struct fake *)obj)->bytes;
}

/* Ids that start with '.' cannot be names. */
static int fake_id_valid(const char *id)
{
	return id[0] && id[0] != '.';
}

/* The descriptor of the fakes (no API path, no value files). */
static const struct object_kind fake_kind = {
    .name = "fake",
    .plural = "fakes",
    .ref = fake_ref,
    .unref = fake_unref,
    .id = fake_id,
    .id_valid = fake_id_valid,
    .final = fake_is_final,
    .rank = fake_rank_of,
    .same = fake_same,
    .bytes = fake_bytes,
};

/* The time of the test's stores: fake_clock_init it first. */
static struct fake_clock fake_time;

/* store_init of fake_kind from source with no context, on fake_time. */
static inline int fake_store_init(struct store *s,
				  const struct store_source *source, double ttl,
				  double timeout)
{
	int r = store_init(s, &fake_kind, source, NULL, ttl, timeout);

	s->clock = &fake_time.clock;
	return r;
}

#endif
