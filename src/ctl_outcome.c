/*
 * ctl_outcome.c - the outcome lines of ctl commands, by id (ctl_outcome.h):
 * a small hash map under one lock, which also holds each batch's retry
 * claim.
 */
#include "ctl_outcome.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* One batch's last outcome line, and the batch its retry made. */
struct ctl_line {
	struct ctl_line *next;
	char *id;
	char *text;    /* or NULL */
	char *retried; /* "" while a retry runs, then the new batch's id */
};

void ctl_outcomes_init(struct ctl_outcomes *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
}

void ctl_outcomes_destroy(struct ctl_outcomes *o)
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

int ctl_retry_claim(struct ctl_outcomes *o, const char *id, char *done,
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

void ctl_retry_settle(struct ctl_outcomes *o, const char *id, const char *made)
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
