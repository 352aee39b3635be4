/*
 * ctl_outcome.h - the outcome line of the last command written to each
 * ctl file (a batch's by its id, the mount's under the empty id, which no
 * batch has), for reads of ctl, and each batch's retry claim (a batch is
 * retried once per mount).
 */
#ifndef KIMIFS_CTL_OUTCOME_H
#define KIMIFS_CTL_OUTCOME_H

#include <pthread.h>
#include <stddef.h>

#define CTL_BUCKETS 256

struct ctl_line;

/* The outcome line of the last command on each batch, by id. */
struct ctl_outcomes {
	pthread_mutex_t lock; /* guards lines */
	struct ctl_line *lines[CTL_BUCKETS];
};

/* An empty map of outcome lines; ctl_outcomes_destroy frees what it
 * holds. */
void ctl_outcomes_init(struct ctl_outcomes *o);
void ctl_outcomes_destroy(struct ctl_outcomes *o);

/* Make text (copied) the outcome line of id in o; 0 or -ENOMEM. */
int ctl_set_outcome(struct ctl_outcomes *o, const char *id, const char *text);

/* Log the outcome of command cmd on id (r: 0 or -errno, why: the reason)
 * and keep it in o as id's line: "cmd: ok" or "cmd: failed: why". */
void ctl_record(struct ctl_outcomes *o, const char *id, const char *cmd, int r,
		const char *why);

/* A malloc'd copy of the outcome line of the last command written to
 * id's ctl since the mount, or NULL when there is none (or no memory). */
char *ctl_outcome(struct ctl_outcomes *o, const char *id);

/* What a claim holds when an earlier retry's creation got no answer and
 * the batch list could not tell whether it made a batch: never a batch id. */
#define CTL_RETRY_UNKNOWN "?"

/*
 * Claim the retry of batch id: 0 when this caller may run it; else 1 with
 * the batch an earlier retry made in done (done[0] == '\0': one is under
 * way; CTL_RETRY_UNKNOWN: whether it made one is unknown), or -ENOMEM. A batch
 * is retried once per mount: a second `retry` names the first one's batch,
 * which is the one to retry next.
 */
int ctl_retry_claim(struct ctl_outcomes *o, const char *id, char *done,
		    size_t len);
/* End the claim: made is the new batch's id, CTL_RETRY_UNKNOWN, or NULL (none
 * was made: the claim is let go). */
void ctl_retry_settle(struct ctl_outcomes *o, const char *id, const char *made);

#endif
