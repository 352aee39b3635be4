/*
 * ctl.c - the commands of a batch's ctl file ("cancel", "refresh", "retry":
 * ctl_retry.c) and of
 * the mount's own ctl ("refresh": a full listing of batches/). Input is
 * checked before anything is sent; each command's outcome is logged and
 * kept as one line for reads of ctl, in a small map of its own (the
 * mount's under the empty id, which no batch has).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kimifs.h"
#include "log.h"
#include "util.h"

/* One batch's last outcome line, and the batch its retry made. */
struct ctl_line {
	struct ctl_line *next;
	char *id;
	char *text;    /* or NULL */
	char *retried; /* "" while a retry runs, then the new batch's id */
};

int ctl_word(const char *buf, size_t size, off_t off, const char *const *words,
	     size_t n)
{
	size_t a = 0, b = size;

	if (off != 0 || size > CTL_MAX || memchr(buf, '\0', size))
		return -1;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == b - a &&
		    memcmp(buf + a, words[i], b - a) == 0)
			return (int)i;
	return -1;
}

enum ctl_cmd ctl_parse(const char *buf, size_t size, off_t off)
{
	/* In the order of enum ctl_cmd, after CMD_NONE. */
	static const char *const words[] = {"cancel", "refresh", "retry"};

	return (enum ctl_cmd)(ctl_word(buf, size, off, words, 3) + 1);
}

void ctl_init(struct ctl_outcomes *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
}

void ctl_destroy(struct ctl_outcomes *o)
{
	for (size_t i = 0; i < CTL_BUCKETS; i++) {
		struct ctl_line *l = o->lines[i], *next;

		for (; l; l = next) {
			next = l->next;
			free(l->id);
			free(l->text);
			free(l->retried);
			free(l);
		}
	}
	pthread_mutex_destroy(&o->lock);
	memset(o, 0, sizeof(*o));
}

/* Caller holds o->lock. */
static struct ctl_line **line_slot(struct ctl_outcomes *o, const char *id)
{
	struct ctl_line **p = &o->lines[util_hash(id) % CTL_BUCKETS];

	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

/* The line of batch id, made when there is none (caller holds o->lock);
 * NULL when memory ran out. */
static struct ctl_line *line_get(struct ctl_outcomes *o, const char *id)
{
	struct ctl_line **p = line_slot(o, id), *l;

	if (*p)
		return *p;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->id = strdup(id))) {
		free(l);
		return NULL;
	}
	*p = l;
	return l;
}

int ctl_set_outcome(struct ctl_outcomes *o, const char *id, const char *text)
{
	char *copy = strdup(text);
	struct ctl_line **p;
	int r = -ENOMEM;

	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&o->lock);
	p = line_slot(o, id);
	if (!*p && !line_get(o, id))
		goto out;
	free((*p)->text);
	(*p)->text = copy;
	copy = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&o->lock);
	free(copy);
	return r;
}

char *ctl_outcome(struct ctl_outcomes *o, const char *id)
{
	struct ctl_line *l;
	char *text = NULL;

	pthread_mutex_lock(&o->lock);
	l = *line_slot(o, id);
	if (l && l->text)
		text = strdup(l->text);
	pthread_mutex_unlock(&o->lock);
	return text;
}

void ctl_record(struct ctl_outcomes *o, const char *id, const char *cmd, int r,
		const char *why)
{
	char line[700];

	if (r == 0) {
		snprintf(line, sizeof(line), "%s: ok\n", cmd);
		log_info("%s %s: ok", cmd, id);
	} else {
		snprintf(line, sizeof(line), "%s: failed: %s\n", cmd, why);
		log_err("%s %s: failed: %s", cmd, id, why);
	}
	ctl_set_outcome(o, id, line);
}

static int is_cancelled(const struct batch *b)
{
	return strcmp(b->status, "cancelling") == 0 ||
	       strcmp(b->status, "cancelled") == 0;
}

static int do_cancel(struct kimifs *k, struct op *op, const char *id)
{
	struct batch *b = NULL, *after = NULL;
	struct api_error err;
	char why[600];
	double sent;
	int r;

	r = batches_get(&k->batches, op, id, STORE_ANY, &b, &err);
	if (r < 0) {
		api_error_text(&err, r, why, sizeof(why));
		goto out;
	}
	if (is_cancelled(b))
		goto out; /* the wanted state is reached: nothing to send */
	if (b->final) {
		/* Final objects never change: the server would refuse. */
		snprintf(why, sizeof(why), "batch is %s", b->status);
		r = -EPERM;
		goto out;
	}
	sent = store_clock(&k->batches.store);
	r = api_cancel_batch(&k->api, op, id, &after, &err);
	if (r == 0) {
		batches_put(&k->batches, after, sent);
		goto out;
	}
	api_error_text(&err, r, why, sizeof(why));
	if (r == -EPERM) {
		/* Refused: maybe it was cancelled meanwhile (elsewhere, or by
		 * an earlier attempt of ours whose answer was lost). */
		batch_unref(b);
		b = NULL;
		if (batches_get(&k->batches, op, id, STORE_FORCE, &b, NULL) ==
			0 &&
		    is_cancelled(b))
			r = 0;
	}
out:
	ctl_record(&k->ctl, id, "cancel", r, why);
	batch_unref(after);
	batch_unref(b);
	return r;
}

static int do_refresh(struct kimifs *k, struct op *op, const char *id)
{
	struct batch *b = NULL;
	struct api_error err;
	char why[600] = "";
	int r = batches_get(&k->batches, op, id, STORE_FORCE, &b, &err);

	if (r < 0)
		api_error_text(&err, r, why, sizeof(why));
	ctl_record(&k->ctl, id, "refresh", r, why);
	batch_unref(b);
	return r;
}

/* What a claim holds when an earlier retry's creation got no answer and
 * the batch list could not tell whether it made a batch: never a batch id. */
#define RETRY_UNKNOWN "?"

/*
 * Claim the retry of batch id: 0 when this caller may run it; else 1 with
 * the batch an earlier retry made in done (done[0] == '\0': one is under
 * way; RETRY_UNKNOWN: whether it made one is unknown), or -ENOMEM. A batch
 * is retried once per mount: a second `retry` names the first one's batch,
 * which is the one to retry next.
 */
static int retry_claim(struct ctl_outcomes *o, const char *id, char *done,
		       size_t len)
{
	struct ctl_line *l;
	int r = 0;

	pthread_mutex_lock(&o->lock);
	l = line_get(o, id);
	if (!l) {
		r = -ENOMEM;
	} else if (l->retried) {
		snprintf(done, len, "%s", l->retried);
		r = 1;
	} else if (!(l->retried = strdup(""))) {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

/* End the claim: made is the new batch's id, or NULL (none was made). */
static void retry_settle(struct ctl_outcomes *o, const char *id,
			 const char *made)
{
	struct ctl_line *l;

	pthread_mutex_lock(&o->lock);
	l = *line_slot(o, id);
	if (l) {
		free(l->retried);
		l->retried = made ? strdup(made) : NULL;
	}
	pthread_mutex_unlock(&o->lock);
}

/* The retry itself, once claimed. */
static int retry_once(struct kimifs *k, struct op *op, const struct batch *b,
		      char *msg, size_t len)
{
	char done[BATCH_ID_MAX + 1] = "";
	int r = retry_claim(&k->ctl, b->id, done, sizeof(done));

	if (r < 0) {
		snprintf(msg, len, "%s", strerror(-r));
		return r;
	}
	if (r == 1 && !done[0]) {
		snprintf(msg, len, "a retry of this batch is under way");
		return -EBUSY;
	}
	if (r == 1 && strcmp(done, RETRY_UNKNOWN) == 0) {
		snprintf(msg, len,
			 "an earlier retry's batch creation got no answer: "
			 "look for its input file in batches/*/input_file_id "
			 "before retrying again");
		return -EIO;
	}
	if (r == 1) {
		snprintf(msg, len,
			 "ok %s (retried already: retry that batch "
			 "to go on)",
			 done);
		return 0;
	}
	r = ctl_retry(k, op, b, msg, len);
	if (r == -EINPROGRESS) {
		/* The outcome is unknown: keep the claim, so a second retry
		 * never makes a second batch of the same requests. */
		retry_settle(&k->ctl, b->id, RETRY_UNKNOWN);
		return -EIO;
	}
	retry_settle(&k->ctl, b->id,
		     r == 0 && strncmp(msg, "ok ", 3) == 0 ? msg + 3 : NULL);
	return r;
}

/* retry: on a final batch only (EBUSY before; a copy that is not final is
 * fetched again first); the outcome line says what
 * came of it ("retry: ok batch_...", "retry: nothing to retry"). */
static int do_retry(struct kimifs *k, struct op *op, const char *id)
{
	struct batch *b = NULL;
	struct api_error err;
	char msg[700] = "", line[800];
	int r = batches_get(&k->batches, op, id, STORE_FRESH, &b, &err);

	if (r == 0 && !b->final) {
		/* A copy younger than cache_ttl may be behind: ask once. */
		batch_unref(b);
		b = NULL;
		r = batches_get(&k->batches, op, id, STORE_FORCE, &b, &err);
	}
	if (r < 0) {
		api_error_text(&err, r, msg, sizeof(msg));
	} else if (!b->final) {
		snprintf(msg, sizeof(msg), "batch is %s (not final yet)",
			 b->status);
		r = -EBUSY;
	} else {
		r = retry_once(k, op, b, msg, sizeof(msg));
	}
	if (r == 0) {
		snprintf(line, sizeof(line), "retry: %s\n", msg);
		log_info("retry %s: %s", id, msg);
	} else {
		snprintf(line, sizeof(line), "retry: failed: %s\n", msg);
		log_err("retry %s: failed: %s", id, msg);
	}
	ctl_set_outcome(&k->ctl, id, line);
	batch_unref(b);
	return r;
}

int ctl_write(struct kimifs *k, struct op *op, const char *id, const char *buf,
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
		r = do_cancel(k, op, id);
	else if (cmd == CMD_REFRESH)
		r = do_refresh(k, op, id);
	else
		r = do_retry(k, op, id);
	return r < 0 ? r : (int)size;
}

/* The key of the mount's ctl in the map of outcome lines: no batch id is
 * empty. */
#define ROOT_KEY ""

int ctl_root_write(struct kimifs *k, struct op *op, const char *buf,
		   size_t size, off_t off)
{
	char line[300];
	int r;

	if (ctl_parse(buf, size, off) != CMD_REFRESH) {
		log_warn("ctl: not a command (write \"refresh\", once, at the "
			 "start)");
		return -EINVAL;
	}
	r = batches_refresh(&k->batches, op);
	if (r == 0) {
		snprintf(line, sizeof(line), "refresh: ok\n");
		log_info("refresh batches/: ok");
	} else {
		snprintf(line, sizeof(line), "refresh: failed: %s\n",
			 strerror(-r));
		log_err("refresh batches/: failed: %s", strerror(-r));
	}
	ctl_set_outcome(&k->ctl, ROOT_KEY, line);
	return r < 0 ? r : (int)size;
}

char *ctl_root_outcome(struct ctl_outcomes *o)
{
	return ctl_outcome(o, ROOT_KEY);
}
