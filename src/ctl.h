/*
 * ctl.h - the commands of a batch's ctl file ("cancel", "refresh",
 * "retry") and of the mount's ctl ("refresh"): running them. Which
 * command a write is: ctl_word.h; the outcome lines: ctl_outcome.h.
 */
#ifndef KIMIFS_CTL_H
#define KIMIFS_CTL_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "api.h"
#include "ctl_outcome.h"
#include "ctl_word.h"

struct batches;
struct cache;
struct files;
struct results_cache;
struct submit;

/* What the ctl commands of batches and of the mount use (none owned; all
 * outlive it), and their outcome lines (their own). */
struct ctl {
	struct ctl_outcomes outcomes;
	struct api *api;
	struct batches *batches;
	/* retry: */
	struct files *files;
	struct cache *cache;	       /* the input, and its staged copy */
	struct results_cache *results; /* which requests succeeded */
	struct submit *submit;	       /* the new input and batch */
};

/* Set up c over what it uses, with no outcome line yet; ctl_destroy
 * frees the lines. */
void ctl_init(struct ctl *c, struct api *api, struct batches *batches,
	      struct files *files, struct cache *cache,
	      struct results_cache *results, struct submit *submit);
void ctl_destroy(struct ctl *c);

/*
 * Run one command written to batch id's ctl file: buf (size bytes) written
 * at offset off, its requests as part of op. Returns size when the command did
 * what it says, -EINVAL for anything that is not exactly one known command
 * (nothing is sent), or the -errno of the failure. Records the outcome line for
 * reads of ctl.
 */
int ctl_write(struct ctl *c, struct op *op, const char *id, const char *buf,
	      size_t size, off_t off);

/*
 * Cancel batch id (its stored copy, of any age, says whether to): 1 when it
 * is cancelling or cancelled already (nothing sent); -EPERM when it is final
 * otherwise (nothing sent, why says its status); else one POST .../cancel,
 * whose answer replaces the stored copy: 0, or -errno with why (len bytes;
 * a refusal is 0 when a fetch then finds it cancelling).
 */
int ctl_cancel(struct api *api, struct batches *batches, struct op *op,
	       const char *id, char *why, size_t len);

struct batch;

/*
 * Retry what did not succeed in final batch b (ctl_retry.c): its input's
 * lines without a successful result uploaded as a new input (the input's
 * name with .retry-N) and a batch created from it with b's endpoint,
 * completion window and metadata, marked as b's retry (kimifs_retry "N b",
 * its job and part kept: job_tag.h; unmarked, and logged, when b's own
 * metadata leaves no room), as part of op (whose deadline it may
 * extend for the upload). 0 with "ok <new batch id>" or "nothing to retry"
 * (nothing sent) in msg, or -errno with the reason in msg. A retry made
 * or failed adds its line to MOUNT/events ({"kind":"retry","id":new,
 * "of":b} or {"kind":"retry","of":b,"error":msg}); nothing to retry, none.
 */
int ctl_retry(struct ctl *c, struct op *op, const struct batch *b, char *msg,
	      size_t msglen);

/*
 * The retry of b the server holds, made by any mount on any machine (a
 * batch newer than b whose kimifs_retry names b, job_tag.h), the newest
 * batches first brought into the listing: 1 with its id in done (size
 * bytes), 0 when there is none, or -errno when the listing cannot be read.
 */
int ctl_retry_found(struct ctl *c, struct op *op, const struct batch *b,
		    char *done, size_t size);

/*
 * Run one command written to the mount's ctl file (MOUNT/ctl), as
 * ctl_write does: "refresh" lists batches/ in full now (every page, no
 * early stop); anything else is -EINVAL with nothing sent. Returns size,
 * or the -errno of the listing. Records the outcome line.
 */
int ctl_root_write(struct ctl *c, struct op *op, const char *buf, size_t size,
		   off_t off);

/* A malloc'd copy of the outcome line of the mount's ctl, or NULL. */
char *ctl_root_outcome(struct ctl *c);

#endif
