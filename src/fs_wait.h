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

/* Whether an open file of ops may wait (wait_text or wait_on). */
int fs_may_wait(const struct open_ops *ops);

/* The id of the object a wait of open file f waits for now into id (size
 * bytes): its wait_on's, else its node's. 0 or -errno. */
int fs_wait_id(struct kimifs *k, const struct open_file *f, char *id,
	       size_t size);

/*
 * A read of node n (open with ops) that said -EAGAIN: req is kept and
 * answered later, from the watch of what it waits for, and the calling
 * thread returns to serve others. Replies to req in every case.
 */
void fs_wait_read(fuse_req_t req, const struct node *n,
		  const struct open_ops *ops, size_t size, off_t off);

#endif
