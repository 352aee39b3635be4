/*
 * test_ctl_outcome.c - unit tests of the outcome lines of ctl commands
 * (ctl_outcome.c): the text of each outcome, one line per id (the mount's
 * under the empty id) replaced by the next command, copies in and out,
 * many ids side by side; and each batch's retry claim: one claimant, the
 * others told the batch it made, the claim let go when none was made.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl_outcome.h"

/* Whether id's line is text (NULL: there is none). */
static int line_is(struct ctl_outcomes *o, const char *id, const char *text)
{
	char *line = ctl_outcome(o, id);
	int ok = text ? line && strcmp(line, text) == 0 : !line;

	if (!ok)
		fprintf(stderr, "  %s: \"%s\"\n", id, line ? line : "(none)");
	free(line);
	return ok;
}

static void lines(void)
{
	struct ctl_outcomes o;
	char text[32], id[32];
	char *copy;

	ctl_outcomes_init(&o);
	CHECK(line_is(&o, "batch_a", NULL));
	CHECK(line_is(&o, "", NULL));

	/* Each outcome's text. */
	ctl_record(&o, "batch_a", "cancel", 0, NULL);
	CHECK(line_is(&o, "batch_a", "cancel: ok\n"));
	ctl_record(&o, "batch_a", "retry", -EPERM, "400 not allowed");
	CHECK(line_is(&o, "batch_a", "retry: failed: 400 not allowed\n"));
	ctl_record(&o, "", "refresh", -EIO, "the server is down");
	CHECK(line_is(&o, "", "refresh: failed: the server is down\n"));
	CHECK(line_is(&o, "batch_a", "retry: failed: 400 not allowed\n"));
	CHECK(line_is(&o, "batch_b", NULL));

	/* The text is copied in; each read is a copy of its own. */
	snprintf(text, sizeof(text), "cancel: ok\n");
	CHECK(ctl_set_outcome(&o, "batch_b", text) == 0);
	text[0] = 'X';
	CHECK(line_is(&o, "batch_b", "cancel: ok\n"));
	copy = ctl_outcome(&o, "batch_b");
	if (copy)
		copy[0] = 'X';
	free(copy);
	CHECK(line_is(&o, "batch_b", "cancel: ok\n"));

	/* More ids than buckets: each keeps its own line. */
	for (int i = 0; i < 3 * CTL_BUCKETS; i++) {
		snprintf(id, sizeof(id), "batch_%d", i);
		snprintf(text, sizeof(text), "cancel: ok %d\n", i);
		CHECK(ctl_set_outcome(&o, id, text) == 0);
	}
	for (int i = 0; i < 3 * CTL_BUCKETS; i += 37) {
		snprintf(id, sizeof(id), "batch_%d", i);
		snprintf(text, sizeof(text), "cancel: ok %d\n", i);
		CHECK(line_is(&o, id, text));
	}
	ctl_outcomes_destroy(&o);
}

/* Threads that claim one batch's retry at once. */
struct claimant {
	struct ctl_outcomes *o;
	int r;
	char done[64];
};

static void *claim(void *arg)
{
	struct claimant *c = arg;

	c->r = ctl_retry_claim(c->o, "batch_r", c->done, sizeof(c->done));
	return NULL;
}

static void retries(void)
{
	struct ctl_outcomes o;
	struct claimant c[8];
	pthread_t t[8];
	char done[64];
	int won = 0;

	ctl_outcomes_init(&o);
	/* One claimant; the others are told a retry is under way. */
	for (int i = 0; i < 8; i++) {
		c[i] = (struct claimant){.o = &o, .r = -1};
		pthread_create(&t[i], NULL, claim, &c[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		if (c[i].r == 0)
			won++;
		else
			CHECK(c[i].r == 1 && c[i].done[0] == '\0');
	}
	CHECK(won == 1);
	/* The claim holds no outcome line. */
	CHECK(line_is(&o, "batch_r", NULL));

	/* Made: every later claim names the new batch. */
	ctl_retry_settle(&o, "batch_r", "batch_new");
	CHECK(ctl_retry_claim(&o, "batch_r", done, sizeof(done)) == 1 &&
	      strcmp(done, "batch_new") == 0);
	CHECK(ctl_retry_claim(&o, "batch_r", done, 6) == 1 &&
	      strcmp(done, "batch") == 0);
	/* Unknown whether one was made: said so, never a batch id. */
	ctl_retry_settle(&o, "batch_r", CTL_RETRY_UNKNOWN);
	CHECK(ctl_retry_claim(&o, "batch_r", done, sizeof(done)) == 1 &&
	      strcmp(done, CTL_RETRY_UNKNOWN) == 0);
	/* None made: the claim is let go, the next caller may run it. */
	ctl_retry_settle(&o, "batch_r", NULL);
	CHECK(ctl_retry_claim(&o, "batch_r", done, sizeof(done)) == 0);
	/* Claims and lines are kept apart; a batch never claimed has
	 * nothing to settle. */
	ctl_record(&o, "batch_r", "retry", 0, NULL);
	CHECK(ctl_retry_claim(&o, "batch_r", done, sizeof(done)) == 1 &&
	      done[0] == '\0');
	CHECK(line_is(&o, "batch_r", "retry: ok\n"));
	ctl_retry_settle(&o, "batch_never", "batch_x");
	CHECK(ctl_retry_claim(&o, "batch_never", done, sizeof(done)) == 0);
	ctl_outcomes_destroy(&o);
}

int main(void)
{
	lines();
	retries();
	return check_done("ctl_outcome");
}
