/*
 * fs_wait.h - reads that wait (a batch's or a job's `wait`): a read whose
 * open file says -EAGAIN is kept, holding no thread, and answered when
 * what it waits for is final (watch.h), when it is interrupted (Ctrl-C),
 * or with ENOTCONN when the mount ends. Part of the FUSE glue (fs.c).
 */
#ifndef KIMIFS_FS_WAIT_H
#define KIMIFS_FS_WAIT_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tree.h"

struct kimifs;

/*
 * The waits that follow several objects (a job's: wait_on) and are being
 * read again, each on a thread of its own, not the watch's poller: the
 * read may fetch the listing, which must not hold back the polls of every
 * other wait.
 */
struct fs_waits {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled when running drops to 0 */
	unsigned running;
};

void fs_waits_init(struct fs_waits *w);
/* Wait until no wait is being read again (after watches_stop: none will
 * start), then free w's locks. */
void fs_waits_drain(struct fs_waits *w);

/* Reply to req with what a read gives (struct open_read): bytes from
 * memory, or spliced from a file. */
void fs_reply_read(fuse_req_t req, const struct open_read *out);

/* Whether an open file of ops may wait (wait_text, wait_on or
 * wake_add). */
int fs_may_wait(const struct open_ops *ops);

/*
 * Call a wake-up for open file f (one that may wait) once a read of it may
 * give something else: the watch of the object it waits for (watch_done
 * with arg), or its own wake_add (wake_done with arg). 0 with *token for
 * fs_wait_cancel, or -errno (nothing armed).
 */
int fs_wait_arm(struct kimifs *k, const struct open_file *f,
		void (*watch_done)(void *arg, int err, void *obj),
		void (*wake_done)(void *arg), void *arg, uint64_t *token);

/* Withdraw a wake-up that fs_wait_arm armed for a file of ops: 0 when
 * withdrawn before it was called, else -ENOENT. */
int fs_wait_cancel(struct kimifs *k, const struct open_ops *ops,
		   uint64_t token);

/* The id of the object a wait of open file f waits for now into id (size
 * bytes): its wait_on's, else its node's. 0 or -errno. */
int fs_wait_id(struct kimifs *k, const struct open_file *f, char *id,
	       size_t size);

/*
 * A read of open file f that said -EAGAIN: req is kept and answered
 * later, from the watch of what it waits for (or f's wake-up), and the
 * calling thread returns to serve others. Replies to req in every case. A
 * file whose ops have wake_add is read again through f itself, which the
 * kernel keeps open until the read is answered.
 */
void fs_wait_read(fuse_req_t req, struct open_file *f, size_t size, off_t off);

#endif
