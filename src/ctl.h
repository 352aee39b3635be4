/*
 * ctl.h - the commands of a batch's ctl file ("cancel", "refresh",
 * "retry") and of
 * the mount's ctl ("refresh"): parsing (pure, also used by the fuzz
 * targets), running them, and the outcome line of each one's last command.
 */
#ifndef KIMIFS_CTL_H
#define KIMIFS_CTL_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "api.h"

struct kimifs;

#define CTL_MAX 4096 /* longest write to ctl that can be a command */

#define CTL_BUCKETS 256

struct ctl_line;

/* The outcome line of the last command on each batch, by id. */
struct ctl_outcomes {
	pthread_mutex_t lock; /* guards lines */
	struct ctl_line *lines[CTL_BUCKETS];
};

enum ctl_cmd { CMD_NONE, CMD_CANCEL, CMD_REFRESH, CMD_RETRY };

/*
 * Which of the n words (a command each) a write of size bytes at offset
 * off to a ctl file is: its index, or -1. Surrounding white space is
 * ignored; anything else (NUL bytes, two words, a write past offset 0 or
 * over CTL_MAX) is none.
 */
int ctl_word(const char *buf, size_t size, off_t off, const char *const *words,
	     size_t n);

/*
 * The one command in a write of size bytes at offset off to ctl, or
 * CMD_NONE (ctl_word). Surrounding white space is ignored; anything else (NUL
 * bytes, two commands, a write past offset 0 or over CTL_MAX) is not a command.
 */
enum ctl_cmd ctl_parse(const char *buf, size_t size, off_t off);

/*
 * Run one command written to batch id's ctl file: buf (size bytes) written
 * at offset off, its requests as part of op. Returns size when the command did
 * what it says, -EINVAL for anything that is not exactly one known command
 * (nothing is sent), or the -errno of the failure. Records the outcome line for
 * reads of ctl.
 */
int ctl_write(struct kimifs *k, struct op *op, const char *id, const char *buf,
	      size_t size, off_t off);

struct batch;

/*
 * Retry what did not succeed in final batch b (ctl_retry.c): its input's
 * lines without a successful result uploaded as a new input (the input's
 * name with .retry-N) and a batch created from it with b's endpoint,
 * completion window and metadata, as part of op (whose deadline it may
 * extend for the upload). 0 with "ok <new batch id>" or "nothing to retry"
 * (nothing sent) in msg, or -errno with the reason in msg.
 */
int ctl_retry(struct kimifs *k, struct op *op, const struct batch *b, char *msg,
	      size_t msglen);

/* Make text (copied) the outcome line of id in o; 0 or -ENOMEM. */
int ctl_set_outcome(struct ctl_outcomes *o, const char *id, const char *text);

/* Log the outcome of command cmd on id (r: 0 or -errno, why: the reason)
 * and keep it in o as id's line: "cmd: ok" or "cmd: failed: why". */
void ctl_record(struct ctl_outcomes *o, const char *id, const char *cmd, int r,
		const char *why);

/* An empty map of outcome lines; ctl_destroy frees what it holds. */
void ctl_init(struct ctl_outcomes *o);
void ctl_destroy(struct ctl_outcomes *o);

/* A malloc'd copy of the outcome line of the last command written to batch
 * id's ctl since the mount, or NULL when there is none (or no memory). */
char *ctl_outcome(struct ctl_outcomes *o, const char *id);

/*
 * Run one command written to the mount's ctl file (MOUNT/ctl), as
 * ctl_write does: "refresh" lists batches/ in full now (every page, no
 * early stop); anything else is -EINVAL with nothing sent. Returns size,
 * or the -errno of the listing. Records the outcome line.
 */
int ctl_root_write(struct kimifs *k, struct op *op, const char *buf,
		   size_t size, off_t off);

/* A malloc'd copy of the outcome line of the mount's ctl, or NULL. */
char *ctl_root_outcome(struct ctl_outcomes *o);

#endif
