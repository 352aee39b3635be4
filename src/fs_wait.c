/*
 * fs_wait.c - reads that wait, holding no thread (fs_wait.h): the kept
 * request (struct wait_req), its watch, its interrupt hook, and its one
 * reply.
 */
#include "fs_wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kimifs.h"

void fs_reply_read(fuse_req_t req, const struct open_read *out)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);

	if (out->data || out->len == 0) {
		fuse_reply_buf(req, out->len ? out->data : NULL, out->len);
		return;
	}
	bv.buf[0].size = out->len;
	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = out->fd;
	bv.buf[0].pos = out->pos;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/*
 * A read of `wait` that waits for its batch to become final holds no
 * thread: the request is kept here and answered later from the watch's
 * callback (watch.h), from the interrupt hook (Ctrl-C), or with ENOTCONN
 * when the mount ends. Exactly one of them replies: the one that sets
 * replied under lock. The interrupt hook may run inside
 * fuse_req_interrupt_func when the request was interrupted before the
 * hook was set; it must not reply there (the request would be freed under
 * libfuse's lock), so it only notes the interrupt, and the reading thread
 * replies.
 */
struct wait_req {
	fuse_req_t req;
	struct kimifs *k;
	const struct open_ops *ops;
	struct node node;	/* the file's: a read made again (wait_on) */
	struct open_file *file; /* the file itself (wake_add), or NULL */
	size_t size;
	off_t off;
	pthread_mutex_t lock; /* guards the fields below */
	int refs;	      /* the reading thread's, the reply's */
	int replied;	      /* a reply was sent or is being sent */
	int registering;      /* the hook is being set: it must not reply */
	int interrupted;      /* interrupted before the wait was armed */
	int armed;	      /* token holds the wait */
	uint64_t token;
};

static void wait_put(struct wait_req *w)
{
	pthread_mutex_lock(&w->lock);
	int last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (last) {
		pthread_mutex_destroy(&w->lock);
		free(w);
	}
}

static void wait_done(void *arg, int err, void *obj);

/* Reply to w's read with the errno err, or (0) with out, unless another
 * reply came (the interrupt hook's, the watch's callback's). */
static void wait_finish(struct wait_req *w, int err,
			const struct open_read *out)
{
	pthread_mutex_lock(&w->lock);
	int reply = !w->replied;

	w->replied = 1;
	pthread_mutex_unlock(&w->lock);
	if (reply) {
		fuse_req_interrupt_func(w->req, NULL, NULL);
		if (err)
			fuse_reply_err(w->req, err);
		else
			fs_reply_read(w->req, out);
		wait_put(w); /* the reply's reference */
	}
}

int fs_may_wait(const struct open_ops *ops)
{
	return ops->wait_text || ops->wait_on || ops->wake_add;
}

int fs_wait_id(struct kimifs *k, const struct open_file *f, char *id,
	       size_t size)
{
	struct op op;

	if (!f->ops->wait_on) {
		snprintf(id, size, "%s", f->node.id);
		return 0;
	}
	op_start(&op, k->opts.timeout);
	return f->ops->wait_on(&k->tree, &op, f, id, size);
}

int fs_wait_arm(struct kimifs *k, const struct open_file *f,
		void (*watch_done)(void *arg, int err, void *obj),
		void (*wake_done)(void *arg), void *arg, uint64_t *token)
{
	char id[NODE_NAME_MAX + 1];
	int r;

	if (f->ops->wake_add)
		return f->ops->wake_add(wake_done, arg, token);
	r = fs_wait_id(k, f, id, sizeof(id));
	if (r == 0)
		r = watch_add(&k->watches, id, watch_done, arg, token);
	return r;
}

int fs_wait_cancel(struct kimifs *k, const struct open_ops *ops, uint64_t token)
{
	return ops->wake_cancel ? ops->wake_cancel(token)
				: watch_cancel(&k->watches, token);
}

static void again_run(struct wait_req *w);

/* The wake-up of a file that waits for what comes next: read it again
 * here, on the thread that woke it (a read of memory). */
static void wait_woken(void *arg)
{
	again_run(arg);
}

/*
 * Watch the object w waits for now (wait_id), or arm its file's wake-up,
 * with the reply's reference: 0 once armed, or -errno (then nothing was
 * watched). An interrupt that came while it was not armed withdraws it at
 * once (EINTR); 0 then too. A file with a wake-up is asked once more after
 * it is armed, so that what came just before is not left waiting for the
 * next: when it would give something now, the wake-up is withdrawn and
 * run here.
 */
static int wait_arm(struct wait_req *w)
{
	struct open_file f = {.node = w->node, .ops = w->ops};
	const struct open_file *file = w->file ? w->file : &f;
	struct open_read out = {0};
	uint64_t token;
	struct op op;
	int r = fs_wait_arm(w->k, file, wait_done, wait_woken, w, &token);

	if (r < 0)
		return r;
	pthread_mutex_lock(&w->lock);
	w->token = token;
	w->armed = 1;
	r = w->interrupted && !w->replied &&
	    fs_wait_cancel(w->k, w->ops, w->token) == 0;
	pthread_mutex_unlock(&w->lock);
	if (r) {
		wait_finish(w, EINTR, NULL);
		return 0;
	}
	if (!w->file)
		return 0;
	op_start(&op, w->k->opts.timeout);
	r = w->ops->read(&w->k->tree, &op, w->file, 0, 0, &out);
	free(out.owned);
	if (r != -EAGAIN && fs_wait_cancel(w->k, w->ops, token) == 0)
		wait_woken(w);
	return 0;
}

/*
 * A wait that follows several objects (wait_on), one of which is final:
 * the read made again into *out. 0 with the answer, -EAGAIN when w was
 * armed anew (nothing to reply now), or -errno to reply.
 */
static int wait_again(struct wait_req *w, struct open_read *out)
{
	struct open_file f = {.node = w->node, .ops = w->ops};
	struct op op;
	int r;

	pthread_mutex_lock(&w->lock);
	w->armed = 0; /* an interrupt now is the callback's to answer */
	pthread_mutex_unlock(&w->lock);
	op_start(&op, w->k->opts.timeout);
	r = w->ops->read(&w->k->tree, &op, w->file ? w->file : &f, w->size,
			 w->off, out);
	if (r != -EAGAIN)
		return r;
	pthread_mutex_lock(&w->lock);
	r = w->interrupted ? -EINTR : 0;
	pthread_mutex_unlock(&w->lock);
	if (r == 0 && (r = wait_arm(w)) == 0)
		return -EAGAIN;
	return r == -ESHUTDOWN ? -ENOTCONN : r;
}

/* Read w again (wait_again) and reply, unless it waits on. */
static void again_run(struct wait_req *w)
{
	struct open_read out = {0};
	int err = wait_again(w, &out);

	if (err !=
	    -EAGAIN) /* else it waits on: the reply's reference goes on */
		wait_finish(w, -err, &out);
	free(out.owned);
}

static void *again_main(void *arg)
{
	struct wait_req *w = arg;
	struct fs_waits *ws = &w->k->waits;

	again_run(w);
	pthread_mutex_lock(&ws->lock);
	if (--ws->running == 0)
		pthread_cond_broadcast(&ws->idle);
	pthread_mutex_unlock(&ws->lock);
	return NULL;
}

/* Read w again on a thread of its own (struct fs_waits); on this one when
 * no thread can be made. */
static void again_start(struct wait_req *w)
{
	struct fs_waits *ws = &w->k->waits;
	pthread_attr_t attr;
	pthread_t t;
	int r = pthread_attr_init(&attr);

	if (r == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_mutex_lock(&ws->lock);
		ws->running++;
		pthread_mutex_unlock(&ws->lock);
		r = pthread_create(&t, &attr, again_main, w);
		pthread_attr_destroy(&attr);
		if (r == 0)
			return;
		pthread_mutex_lock(&ws->lock);
		ws->running--; /* no broadcast: this thread is not a drain */
		pthread_mutex_unlock(&ws->lock);
	}
	again_run(w);
}

void fs_waits_init(struct fs_waits *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->idle, NULL);
	w->running = 0;
}

void fs_waits_drain(struct fs_waits *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->running)
		pthread_cond_wait(&w->idle, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_cond_destroy(&w->idle);
	pthread_mutex_destroy(&w->lock);
}

/* The watch's callback (the poller thread, or watches_stop's): the batch
 * is final (obj), gone (-ENOENT) or the mount ends (-ESHUTDOWN). A wait
 * that follows several objects is read again off the poller's thread
 * (again_start). */
static void wait_done(void *arg, int err, void *obj)
{
	struct wait_req *w = arg;
	struct open_read out = {0};
	size_t len = 0;

	if (err == 0 && w->ops->wait_on) {
		again_start(w);
		return;
	}
	pthread_mutex_lock(&w->lock);
	if (w->replied) { /* cannot happen: a withdrawn wait is not called */
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->replied = 1;
	pthread_mutex_unlock(&w->lock);
	/* After this no interrupt hook runs, and none is running. */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	if (err == 0)
		err = w->ops->wait_text(obj, &out.owned, &len);
	if (err == -ESHUTDOWN)
		err = -ENOTCONN;
	if (err < 0) {
		fuse_reply_err(w->req, -err);
	} else {
		open_read_slice(&out, out.owned, len, w->size, w->off);
		fs_reply_read(w->req, &out);
	}
	free(out.owned);
	wait_put(w);
}

/* libfuse's interrupt hook of a waiting read. */
static void wait_interrupted(fuse_req_t req, void *arg)
{
	struct wait_req *w = arg;
	int reply = 0;

	pthread_mutex_lock(&w->lock);
	if (!w->replied) {
		if (w->registering || !w->armed)
			w->interrupted = 1; /* the reading thread replies */
		else if (fs_wait_cancel(w->k, w->ops, w->token) == 0)
			reply = w->replied = 1;
		else /* the callback is under way and replies, and does
			not wait on (wait_again) */
			w->interrupted = 1;
	}
	pthread_mutex_unlock(&w->lock);
	if (reply) {
		fuse_reply_err(req, EINTR);
		wait_put(w);
	}
}

/* The reading thread gives up w with err, unless another reply came. */
static void wait_abandon(struct wait_req *w, int err)
{
	wait_finish(w, err, NULL);
}

/*
 * A read of a file that waits (its read said -EAGAIN): the request is
 * kept and answered later (struct wait_req) from the watch of n's batch,
 * and this thread returns to serve others.
 */
void fs_wait_read(fuse_req_t req, struct open_file *f, size_t size, off_t off)
{
	struct kimifs *k = fuse_req_userdata(req);
	struct wait_req *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->req = req;
	w->k = k;
	w->ops = f->ops;
	w->node = f->node;
	w->file = f->ops->wake_add ? f : NULL;
	w->size = size;
	w->off = off;
	w->refs = 2;
	w->registering = 1;
	pthread_mutex_init(&w->lock, NULL);
	fuse_req_interrupt_func(req, wait_interrupted, w);
	pthread_mutex_lock(&w->lock);
	w->registering = 0;
	r = w->interrupted ? -EINTR : 0;
	pthread_mutex_unlock(&w->lock);
	if (r == 0)
		r = wait_arm(w);
	if (r < 0)
		wait_abandon(w, r == -ESHUTDOWN ? ENOTCONN : -r);
	wait_put(w);
}
