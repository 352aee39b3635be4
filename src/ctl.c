/*
 * ctl.c - the commands of a batch's ctl file ("cancel", "refresh", "retry":
 * ctl_retry.c) and of the mount's own ctl ("refresh": a full listing of
 * batches/). Input is checked (ctl_word.h) before anything is sent; each
 * command's outcome is logged and kept for reads of ctl (ctl_outcome.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#include "log.h"
#include "store_batches.h"
#include "util.h"

static int is_cancelled(const struct batch *b)
{
	return strcmp(b->status, "cancelling") == 0 ||
	       strcmp(b->status, "cancelled") == 0;
}

int ctl_cancel(struct api *api, struct batches *batches, struct op *op,
	       const char *id, char *why, size_t len)
{
	struct batch *b = NULL, *after = NULL;
	struct api_error err;
	double sent;
	int r;

	r = batches_get(batches, op, id, STORE_ANY, &b, &err);
	if (r < 0) {
		api_error_text(&err, r, why, len);
		goto out;
	}
	if (is_cancelled(b)) {
		r = 1; /* the wanted state is reached: nothing to send */
		goto out;
	}
	if (b->final) {
		/* Final objects never change: the server would refuse. */
		snprintf(why, len, "batch is %s", b->status);
		r = -EPERM;
		goto out;
	}
	sent = store_clock(&batches->store);
	r = api_cancel_batch(api, op, id, &after, &err);
	if (r == 0) {
		batches_put(batches, after, sent);
		goto out;
	}
	api_error_text(&err, r, why, len);
	if (r == -EPERM) {
		/* Refused: maybe it was cancelled meanwhile (elsewhere, or by
		 * an earlier attempt of ours whose answer was lost). */
		batch_unref(b);
		b = NULL;
		if (batches_get(batches, op, id, STORE_FORCE, &b, NULL) == 0 &&
		    is_cancelled(b))
			r = 0;
	}
out:
	batch_unref(after);
	batch_unref(b);
	return r;
}

static int do_cancel(struct ctl *c, struct op *op, const char *id)
{
	char why[600] = "";
	int r = ctl_cancel(c->api, c->batches, op, id, why, sizeof(why));

	if (r > 0)
		r = 0;
	ctl_record(&c->outcomes, id, "cancel", r, why);
	return r;
}

static int do_refresh(struct ctl *c, struct op *op, const char *id)
{
	struct batch *b = NULL;
	struct api_error err;
	char why[600] = "";
	int r = batches_get(c->batches, op, id, STORE_FORCE, &b, &err);

	if (r < 0)
		api_error_text(&err, r, why, sizeof(why));
	ctl_record(&c->outcomes, id, "refresh", r, why);
	batch_unref(b);
	return r;
}

/* The retry itself, once claimed. */
static int retry_once(struct ctl *c, struct op *op, const struct batch *b,
		      char *msg, size_t len)
{
	char done[BATCH_ID_MAX + 1] = "";
	int r = ctl_retry_claim(&c->outcomes, b->id, done, sizeof(done));

	if (r < 0) {
		snprintf(msg, len, "%s", strerror(-r));
		return r;
	}
	if (r == 1 && !done[0]) {
		snprintf(msg, len, "a retry of this batch is under way");
		return -EBUSY;
	}
	if (r == 1 && strcmp(done, CTL_RETRY_UNKNOWN) == 0) {
		snprintf(msg, len,
			 "an earlier retry's batch creation got no answer: "
			 "look for its input file in batches/*/input_file_id "
			 "before retrying again");
		return -EIO;
	}
	if (r == 0) {
		/* Another mount, here or on another machine, or this one
		 * before a restart, may have retried it: the server says. */
		r = ctl_retry_found(c, op, b, done, sizeof(done));
		if (r < 0) {
			ctl_retry_settle(&c->outcomes, b->id, NULL);
			snprintf(msg, len,
				 "cannot tell whether it was retried already "
				 "(the list of batches: %s)",
				 strerror(-r));
			return r;
		}
		if (r == 1)
			ctl_retry_settle(&c->outcomes, b->id, done);
	}
	if (r == 1) {
		snprintf(msg, len,
			 "ok %s (retried already: retry that batch "
			 "to go on)",
			 done);
		return 0;
	}
	r = ctl_retry(c, op, b, msg, len);
	if (r == -EINPROGRESS) {
		/* The outcome is unknown: keep the claim, so a second retry
		 * never makes a second batch of the same requests. */
		ctl_retry_settle(&c->outcomes, b->id, CTL_RETRY_UNKNOWN);
		return -EIO;
	}
	ctl_retry_settle(&c->outcomes, b->id,
			 r == 0 && strncmp(msg, "ok ", 3) == 0 ? msg + 3
							       : NULL);
	return r;
}

/* retry: on a final batch only (EBUSY before; a copy that is not final is
 * fetched again first); the outcome line says what
 * came of it ("retry: ok batch_...", "retry: nothing to retry"). */
static int do_retry(struct ctl *c, struct op *op, const char *id)
{
	struct batch *b = NULL;
	struct api_error err;
	char msg[700] = "", line[800];
	int r = batches_get(c->batches, op, id, STORE_FRESH, &b, &err);

	if (r == 0 && !b->final) {
		/* A copy younger than cache_ttl may be behind: ask once. */
		batch_unref(b);
		b = NULL;
		r = batches_get(c->batches, op, id, STORE_FORCE, &b, &err);
	}
	if (r < 0) {
		api_error_text(&err, r, msg, sizeof(msg));
	} else if (!b->final) {
		snprintf(msg, sizeof(msg), "batch is %s (not final yet)",
			 b->status);
		r = -EBUSY;
	} else {
		r = retry_once(c, op, b, msg, sizeof(msg));
	}
	if (r == 0) {
		snprintf(line, sizeof(line), "retry: %s\n", msg);
		log_info("retry %s: %s", id, msg);
	} else {
		snprintf(line, sizeof(line), "retry: failed: %s\n", msg);
		log_err("retry %s: failed: %s", id, msg);
	}
	ctl_set_outcome(&c->outcomes, id, line);
	batch_unref(b);
	return r;
}

int ctl_write(struct ctl *c, struct op *op, const char *id, const char *buf,
	      size_t size, off_t off)
{
	enum ctl_cmd cmd = ctl_parse(buf, size, off);
	int r;

	if (cmd == CMD_NONE) {
		log_warn("ctl of %s: not a command (write \"cancel\", "
			 "\"refresh\" or \"retry\", once, at the start)",
			 id);
		return -EINVAL;
	}
	if (cmd == CMD_CANCEL)
		r = do_cancel(c, op, id);
	else if (cmd == CMD_REFRESH)
		r = do_refresh(c, op, id);
	else
		r = do_retry(c, op, id);
	return r < 0 ? r : (int)size;
}

/* The key of the mount's ctl in the map of outcome lines: no batch id is
 * empty. */
#define ROOT_KEY ""

int ctl_root_write(struct ctl *c, struct op *op, const char *buf, size_t size,
		   off_t off)
{
	char line[300];
	int r;

	if (ctl_parse(buf, size, off) != CMD_REFRESH) {
		log_warn("ctl: not a command (write \"refresh\", once, at the "
			 "start)");
		return -EINVAL;
	}
	r = batches_refresh(c->batches, op);
	if (r == 0) {
		snprintf(line, sizeof(line), "refresh: ok\n");
		log_info("refresh batches/: ok");
	} else {
		snprintf(line, sizeof(line), "refresh: failed: %s\n",
			 strerror(-r));
		log_err("refresh batches/: failed: %s", strerror(-r));
	}
	ctl_set_outcome(&c->outcomes, ROOT_KEY, line);
	return r < 0 ? r : (int)size;
}

char *ctl_root_outcome(struct ctl *c)
{
	return ctl_outcome(&c->outcomes, ROOT_KEY);
}

void ctl_init(struct ctl *c, struct api *api, struct batches *batches,
	      struct files *files, struct cache *cache,
	      struct results_cache *results, struct submit *submit)
{
	ctl_outcomes_init(&c->outcomes);
	c->api = api;
	c->batches = batches;
	c->files = files;
	c->cache = cache;
	c->results = results;
	c->submit = submit;
}

void ctl_destroy(struct ctl *c)
{
	ctl_outcomes_destroy(&c->outcomes);
}
