/*
 * fs.c - the FUSE glue: libfuse's low-level operations mapped onto the
 * inode table (inode.h) and the node types of the tree (tree.h), failures
 * mapped to errno. Each reply carries its own kernel cache lifetime: what
 * can never change again (the root, a final batch's files) is kept by the
 * kernel, the rest is asked for each time. An open file holds one view, so
 * what it reads and what fstat says always agree.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cache.h"
#include "fs_wait.h"
#include "inode.h"
#include "kimifs.h"

/* Seconds the kernel keeps what never changes; 0 for the rest. */
#define KEEP_FOREVER (365.0 * 86400)
/*
 * Seconds the kernel keeps the root's attributes. Every path walk checks
 * the root's mode (default_permissions), so with 0 each one is a GETATTR
 * round trip; but while they are kept, a stat of the mount point succeeds
 * even after the daemon died (ENOTCONN only once they expire).
 */
#define ROOT_KEEP 1.0
/* The inode number readdir gives when the entry has none yet. */
#define UNKNOWN_INO 0xffffffffu

/* An open file or directory. */
struct handle {
	struct handle *prev, *next; /* in k->open_files */
	int refs; /* atomic: the open file, and each read replying from it */
	struct open_file f;  /* the node; files: the view read, the state */
	struct dirlist list; /* directories: names, "." and ".." first */
	void *dir_list;	     /* or then the type's listing (list_open) */
	/* A file that waits, polled: the wait that will wake the poller
	 * (under k->open_lock). */
	int polling;
	uint64_t poll_token;
	struct fuse_pollhandle *poll_ph;
};

static struct kimifs *state(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct handle *handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

static void handle_free(struct handle *h)
{
	if (h->f.ops && h->f.ops->release)
		h->f.ops->release(&h->f);
	view_release(&h->f.view);
	dirlist_free(&h->list);
	if (h->dir_list)
		h->f.node.type->list_close(h->dir_list);
	free(h);
}

/* Drop one reference to h; the last one frees it. A read holds one while
 * it replies from h's bytes: the reader may close the file, and its
 * release run, as soon as the kernel has the data, before the reply call
 * itself returns. */
static void handle_put(struct handle *h)
{
	if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) == 0)
		handle_free(h);
}

/* Track h among the open files, so unmounting can free what the kernel
 * never released (files still open when the daemon stops). */
static void handle_track(struct kimifs *k, struct handle *h)
{
	pthread_mutex_lock(&k->open_lock);
	h->prev = NULL;
	h->next = k->open_files;
	if (h->next)
		h->next->prev = h;
	k->open_files = h;
	pthread_mutex_unlock(&k->open_lock);
}

static void handle_untrack(struct kimifs *k, struct handle *h)
{
	pthread_mutex_lock(&k->open_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		k->open_files = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&k->open_lock);
}

/* libfuse's interrupt hook: the process waiting on req got a signal. */
static void on_interrupt(fuse_req_t req, void *op)
{
	(void)req;
	op_interrupt(op);
}

/*
 * Start operation op for req: its requests share one deadline (the bound
 * of -o timeout), and an interrupt (Ctrl-C on the waiting process) ends
 * them at once with EINTR. End it with op_end before replying.
 */
static void op_begin(struct kimifs *k, fuse_req_t req, struct op *op)
{
	op_start(op, k->opts.timeout);
	fuse_req_interrupt_func(req, on_interrupt, op);
}

static void op_end(fuse_req_t req)
{
	/* Once this returns, no interrupt hook runs on the op. */
	fuse_req_interrupt_func(req, NULL, NULL);
}

/* The view of node n in mode, as one operation for req. 0 or -errno. */
static int view_node(struct kimifs *k, fuse_req_t req, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	struct op op;
	int r;

	memset(v, 0, sizeof(*v));
	op_begin(k, req, &op);
	r = n->type->view(&k->tree, &op, n, mode, v);
	op_end(req);
	return r;
}

/* How long the kernel may keep what v shows: for good when it never
 * changes, cache_ttl when the kernel is told of its changes (so a stat never
 * shows a copy older than an open would use), else not at all. */
static double lifetime(const struct kimifs *k, const struct view *v)
{
	if (v->immutable)
		return KEEP_FOREVER;
	return v->told ? k->opts.cache_ttl : 0;
}

/*
 * A node that is new at each lookup (per_lookup: MOUNT/events) gets a
 * token of its own as its id, and its inode a name no entry can have
 * ("/" and the token) in *key: the kernel, which asks again at each path
 * walk (its entry is never kept), sees a new inode each time.
 */
static const char *lookup_key(struct kimifs *k, struct node *child,
			      const char *name, char *key, size_t size)
{
	uint64_t token;

	if (!child->type->per_lookup)
		return name;
	token = __atomic_add_fetch(&k->tokens, 1, __ATOMIC_RELAXED);
	snprintf(child->id, sizeof(child->id), "%llu",
		 (unsigned long long)token);
	snprintf(key, size, "/%llu", (unsigned long long)token);
	return key;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kimifs *k = state(req);
	struct fuse_entry_param e;
	struct node dir, child;
	struct view v;
	char key[32];
	int r = inodes_get(&k->inodes, parent, &dir);

	STAT_ADD(&k->stats, fuse_lookups, 1);
	if (r == 0 && !S_ISDIR(dir.type->mode))
		r = -ENOTDIR;
	if (r == 0)
		r = tree_lookup(&k->tree, &dir, name, &child);
	if (r == 0)
		name = lookup_key(k, &child, name, key, sizeof(key));
	if (r == 0)
		r = view_node(k, req, &child, STORE_ANY, &v);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	memset(&e, 0, sizeof(e));
	tree_stat(&k->tree, &child, &v, &e.attr);
	e.attr_timeout = e.entry_timeout = lifetime(k, &v);
	view_release(&v);
	e.ino = inodes_add(&k->inodes, parent, name, &child);
	if (!e.ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.attr.st_ino = e.ino;
	if (fuse_reply_entry(req, &e) != 0)
		inodes_forget(&k->inodes, e.ino,
			      1); /* the kernel never got it */
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inodes_forget(&state(req)->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inodes_forget(&state(req)->inodes, forgets[i].ino,
			      forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The attributes of a file with a state of its own (a staged file, whose
 * size grows as it is written; a reader of events): as it is now, or, once
 * it is gone (its upload ended), as it was opened. The file is told the
 * size it was shown (end_shown). */
static void getattr_state(fuse_req_t req, fuse_ino_t ino, struct handle *h)
{
	struct kimifs *k = state(req);
	struct stat st;
	struct view v;

	if (view_node(k, req, &h->f.node, STORE_ANY, &v) == 0) {
		tree_stat(&k->tree, &h->f.node, &v, &st);
		view_release(&v);
	} else {
		tree_stat(&k->tree, &h->f.node, &h->f.view, &st);
	}
	if (h->f.ops->end_shown)
		h->f.ops->end_shown(&h->f, (uint64_t)st.st_size);
	st.st_ino = ino;
	fuse_reply_attr(req, &st, 0);
}

/* The attributes of ino: from the open file when fi is one (so fstat
 * agrees with what it reads), else from a view that may use any copy. */
static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct handle *h = handle_of(fi);
	struct stat st;
	struct node n;
	struct view v;
	int r;

	STAT_ADD(&k->stats, fuse_getattrs, 1);
	if (h && h->f.state) {
		getattr_state(req, ino, h);
		return;
	}
	if (h && !S_ISDIR(h->f.node.type->mode)) {
		/* The kernel keeps one size per inode: the size of an open
		 * file whose view may be older than the batch is not kept, so
		 * the next reader through the page cache asks for its own. */
		tree_stat(&k->tree, &h->f.node, &h->f.view, &st);
		st.st_ino = ino;
		fuse_reply_attr(req, &st,
				h->f.view.immutable ? KEEP_FOREVER : 0);
		return;
	}
	r = inodes_get(&k->inodes, ino, &n);
	if (r == 0)
		r = view_node(k, req, &n, STORE_ANY, &v);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	tree_stat(&k->tree, &n, &v, &st);
	st.st_ino = ino;
	fuse_reply_attr(req, &st,
			ino == INODE_ROOT ? ROOT_KEEP : lifetime(k, &v));
	view_release(&v);
}

/* A staged file's size is set by its writer (ftruncate, as cp may do),
 * and by nobody else (EBUSY); its mode, owner and times are ignored (it is
 * 0600, the mounting user's: `cp -p` works). */
static void setattr_state(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	int r = 0;

	if ((to_set & FUSE_SET_ATTR_SIZE) && (!h || !h->f.state))
		r = -EBUSY;
	else if (to_set & FUSE_SET_ATTR_SIZE)
		r = h->f.ops->resize(&h->f, (uint64_t)attr->st_size);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ll_getattr(req, ino, fi);
}

/* Only a writable file's size may be set, as the truncation before a
 * command is written (`echo cancel > ctl`; the times that come with it are
 * ignored); everything else is read-only. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			  FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
			  FUSE_SET_ATTR_CTIME;
	struct kimifs *k = state(req);
	struct node n;
	int r = inodes_get(&k->inodes, ino, &n);

	(void)attr;
	if (r == 0 && n.type->open_ops && n.type->open_ops->resize) {
		setattr_state(req, ino, attr, to_set, fi);
		return;
	}
	if (r == 0 && (!n.type->open_ops || !n.type->open_ops->write ||
		       !(to_set & FUSE_SET_ATTR_SIZE) ||
		       (to_set & ~(FUSE_SET_ATTR_SIZE | times))))
		r = -EROFS;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	ll_getattr(req, ino, fi);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	int writes =
	    (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	struct handle *h = calloc(1, sizeof(*h));
	struct open_file *f = h ? &h->f : NULL;
	struct op op;
	int r = h ? inodes_get(&k->inodes, ino, &f->node) : -ENOMEM;

	STAT_ADD(&k->stats, fuse_opens, 1);
	if (r == 0 && S_ISDIR(f->node.type->mode))
		r = -EISDIR;
	if (r == 0 && !f->node.type->open_ops)
		r = -EINVAL; /* a symlink: the kernel follows it instead */
	if (r == 0 && writes && !f->node.type->open_ops->write)
		r = -EROFS;
	if (r == 0) {
		f->ops = f->node.type->open_ops;
		f->append = (fi->flags & O_APPEND) != 0;
		op_begin(k, req, &op);
		r = f->ops->open(&k->tree, &op, f, fi->flags);
		op_end(req);
	}
	if (r < 0) {
		free(h);
		fuse_reply_err(req, -r);
		return;
	}
	h->refs = 1;
	handle_track(k, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	/* What cannot change is cached by the kernel for good; the rest is
	 * read from this view, whose size may differ from the last stat. */
	fi->keep_cache = f->view.immutable;
	fi->direct_io = !f->view.immutable;
	/* Only a file with a state of its own acts on close(): the others
	 * spare the kernel the flush round trip. */
	fi->noflush = !f->state;
	if (fuse_reply_open(req, fi) != 0) {
		handle_untrack(k, h);
		handle_free(h);
	}
}

/*
 * A read, as the open file's read says: what it gives at once, or, for a
 * file that waits (wait) and is not ready, a reply later (wait_read); a
 * read through a non-blocking descriptor (grep -r opens so) gets EAGAIN
 * instead. The read holds a reference to h while it replies from h's
 * bytes.
 */
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct handle *h = handle_of(fi);
	const struct open_ops *ops = h->f.ops;
	struct open_read out = {.fd = -1};
	struct op op;
	int r;

	(void)ino;
	STAT_ADD(&k->stats, fuse_reads, 1);
	__atomic_add_fetch(&h->refs, 1, __ATOMIC_RELAXED);
	op_begin(k, req, &op);
	r = ops->read(&k->tree, &op, &h->f, size, off, &out);
	op_end(req);
	if (r == -EAGAIN && fs_may_wait(ops) && !(fi->flags & O_NONBLOCK))
		fs_wait_read(req, &h->f, size, off);
	else if (r < 0)
		fuse_reply_err(req, -r);
	else
		fs_reply_read(req, &out);
	free(out.owned);
	handle_put(h);
}

/* The watch's callback for a poll: the poller is woken whatever the end
 * (final, gone, unmount), and reads to learn which. */
static void poll_done(void *arg, int err, void *obj)
{
	struct fuse_pollhandle *ph = arg;

	(void)err, (void)obj;
	fuse_lowlevel_notify_poll(ph);
	fuse_pollhandle_destroy(ph);
}

/* The same for a file's own wake-up (wake_add). */
static void poll_woken(void *arg)
{
	poll_done(arg, 0, NULL);
}

/* Withdraw h's poll wait, if any (k->open_lock held): a wait withdrawn
 * before its callback ran leaves its poll handle to us. */
static void poll_withdraw(struct kimifs *k, struct handle *h)
{
	if (h->polling && fs_wait_cancel(k, h->f.ops, h->poll_token) == 0)
		fuse_pollhandle_destroy(h->poll_ph);
	h->polling = 0;
	h->poll_ph = NULL;
}

/* Whether a read of h would give something now: 0 (or the -errno it
 * would give) or -EAGAIN. */
static int poll_probe(struct kimifs *k, fuse_req_t req, struct handle *h)
{
	struct open_read out = {.fd = -1};
	struct op op;
	int r;

	op_begin(k, req, &op);
	r = h->f.ops->read(&k->tree, &op, &h->f, 0, 0, &out);
	op_end(req);
	free(out.owned);
	return r;
}

/*
 * poll(2) on a file that waits: readable once its batch is final (or
 * gone: the read then says ENOENT), or for MOUNT/events once a line is
 * there; until then the kernel's poll handle is given to a wait of the
 * batch or to the file's wake-up, which notifies it. One wait per open
 * file: a new poll replaces the last one's. A wake-up is armed before the
 * file is asked again, so that a line that came in between is not missed.
 */
static void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct kimifs *k = state(req);
	struct handle *h = handle_of(fi);
	int r;

	(void)ino;
	if (!fs_may_wait(h->f.ops)) {
		/* Everything else is always ready. */
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req,
				POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
		return;
	}
	r = poll_probe(k, req, h);
	if (r != -EAGAIN) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, r == 0 ? POLLIN | POLLRDNORM
					    : POLLIN | POLLRDNORM | POLLERR);
		return;
	}
	if (ph) {
		pthread_mutex_lock(&k->open_lock);
		poll_withdraw(k, h);
		if (fs_wait_arm(k, &h->f, poll_done, poll_woken, ph,
				&h->poll_token) == 0) {
			h->polling = 1;
			h->poll_ph = ph;
		} else {
			fuse_pollhandle_destroy(ph);
		}
		pthread_mutex_unlock(&k->open_lock);
	}
	if (h->f.ops->wake_add && poll_probe(k, req, h) != -EAGAIN) {
		fuse_reply_poll(req, POLLIN | POLLRDNORM);
		return;
	}
	fuse_reply_poll(req, 0);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct kimifs *k = state(req);
	struct node n;
	struct view v;
	char *target = NULL;
	int r = inodes_get(&k->inodes, ino, &n);

	if (r == 0 && !S_ISLNK(n.type->mode))
		r = -EINVAL;
	if (r == 0)
		r = view_node(k, req, &n, STORE_FRESH, &v);
	if (r == 0) {
		target = strndup(v.data ? v.data : "", v.len);
		view_release(&v);
		if (!target)
			r = -ENOMEM;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

/* A write, as the open file's write says (a ctl takes a command, a
 * staged file bytes at the offset asked for: cp may seek). */
static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct handle *h = handle_of(fi);
	struct op op;
	ssize_t r;

	(void)ino;
	if (!h->f.ops->write) {
		fuse_reply_err(req, EROFS);
		return;
	}
	op_begin(k, req, &op);
	r = h->f.ops->write(&k->tree, &op, &h->f, buf, size, off,
			    fi->lock_owner);
	op_end(req);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

/*
 * Each close(2): a file with a state of its own acts on it (a staged file
 * is checked and uploaded here, so close returns the outcome; an upload
 * may take as long as submit_upload_bound allows). Ctrl-C interrupts it.
 */
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct handle *h = handle_of(fi);
	struct op op;
	int r = 0;

	(void)ino;
	if (h && h->f.state && h->f.ops->flush) {
		op_begin(k, req, &op);
		r = h->f.ops->flush(&k->tree, &op, &h->f, fi->lock_owner);
		op_end(req);
	}
	fuse_reply_err(req, -r);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	(void)ino;
	pthread_mutex_lock(&state(req)->open_lock);
	poll_withdraw(state(req), h);
	pthread_mutex_unlock(&state(req)->open_lock);
	handle_untrack(state(req), h);
	handle_put(h);
	fuse_reply_err(req, 0);
}

/* A directory reads the names it had when it was opened: a copy of them,
 * or the listing its type holds for it (list_open). */
static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct handle *h = calloc(1, sizeof(*h));
	struct op op;
	int r = h ? inodes_get(&k->inodes, ino, &h->f.node) : -ENOMEM;

	if (r == 0 && !S_ISDIR(h->f.node.type->mode))
		r = -ENOTDIR;
	if (r == 0)
		r = dirlist_add(&h->list, ".", S_IFDIR);
	if (r == 0)
		r = dirlist_add(&h->list, "..", S_IFDIR);
	if (r == 0) {
		op_begin(k, req, &op);
		r = tree_list(&k->tree, &op, &h->f.node, &h->list,
			      &h->dir_list);
		op_end(req);
	}
	if (r < 0) {
		if (h)
			handle_free(h);
		fuse_reply_err(req, -r);
		return;
	}
	h->refs = 1;
	handle_track(k, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) != 0) {
		handle_untrack(k, h);
		handle_free(h);
	}
}

/* The name and mode of entry i of open directory h: 1, 0 when i holds
 * none, -ENOENT past the end. */
static int dir_entry(const struct handle *h, size_t i, char *name, mode_t *mode)
{
	if (i < h->list.n) {
		snprintf(name, NODE_NAME_MAX + 1, "%s", h->list.names[i]);
		*mode = h->list.modes[i];
		return 1;
	}
	if (!h->dir_list)
		return -ENOENT;
	return h->f.node.type->list_at(h->dir_list, i - h->list.n, name, mode);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct handle *h = handle_of(fi);
	char *buf = malloc(size), name[NODE_NAME_MAX + 1];
	size_t used = 0;
	mode_t mode;
	int r;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = off > 0 ? (size_t)off : 0;
	     (r = dir_entry(h, i, name, &mode)) >= 0; i++) {
		struct stat st = {.st_ino = UNKNOWN_INO, .st_mode = mode};
		size_t n;

		if (r == 0)
			continue;
		n = fuse_add_direntry(req, buf + used, size - used, name, &st,
				      (off_t)(i + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	/* Never touches the network: df must not hang on a slow server. */
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* Everything that would change the tree outside ctl: EROFS. */
static void rofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	rofs(req);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	rofs(req);
}

static void ll_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	rofs(req);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link, (void)parent, (void)name;
	rofs(req);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	rofs(req);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	rofs(req);
}

/*
 * A new file in a directory that takes them (files/, batches/): staged by
 * the directory's create, open for its one writer. The mode asked for is
 * ignored: a staged file is 0600, its writer's. Elsewhere EROFS.
 */
static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct kimifs *k = state(req);
	struct fuse_entry_param e;
	struct handle *h = calloc(1, sizeof(*h));
	struct node dir;
	int r = h ? inodes_get(&k->inodes, parent, &dir) : -ENOMEM;

	(void)mode;
	if (r == 0 && !dir.type->create)
		r = -EROFS;
	if (r == 0)
		r = dir.type->create(&k->tree, &dir, name, &h->f.node,
				     &h->f.state);
	if (r == 0) {
		h->f.ops = h->f.node.type->open_ops;
		r = view_node(k, req, &h->f.node, STORE_ANY, &h->f.view);
	}
	if (r < 0) {
		if (h)
			handle_free(h);
		fuse_reply_err(req, -r);
		return;
	}
	memset(&e, 0, sizeof(e));
	tree_stat(&k->tree, &h->f.node, &h->f.view, &e.attr);
	e.ino = inodes_add(&k->inodes, parent, name, &h->f.node);
	if (!e.ino) {
		handle_free(h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.attr.st_ino = e.ino;
	h->f.append = (fi->flags & O_APPEND) != 0;
	h->refs = 1;
	handle_track(k, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) != 0) {
		handle_untrack(k, h);
		handle_free(h);
		inodes_forget(&k->inodes, e.ino, 1);
	}
}

/* A file being written takes no extended attributes (ENOTSUP, which
 * `cp -p` passes over when it copies ACLs); elsewhere EROFS. */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct node n;

	(void)name, (void)value, (void)size, (void)flags;
	if (inodes_get(&state(req)->inodes, ino, &n) == 0 && n.type->open_ops &&
	    n.type->open_ops->resize) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	rofs(req);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	rofs(req);
}

/*
 * The kernel asks for at most FS_MAX_READ bytes per read (see fs.h), and
 * contents go from the cache file to the kernel by splice when it can.
 */
static void ll_init(void *data, struct fuse_conn_info *conn)
{
	(void)data;
	conn->max_read = FS_MAX_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
}

/* Unmounted: free the files still open (their release never comes). */
static void ll_destroy(void *data)
{
	struct kimifs *k = data;

	pthread_mutex_lock(&k->open_lock);
	while (k->open_files) {
		struct handle *h = k->open_files;

		k->open_files = h->next;
		handle_free(h);
	}
	pthread_mutex_unlock(&k->open_lock);
}

static const struct fuse_lowlevel_ops operations = {
    .init = ll_init,
    .destroy = ll_destroy,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .readlink = ll_readlink,
    .setattr = ll_setattr,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .poll = ll_poll,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .releasedir = ll_release,
    .statfs = ll_statfs,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_remove,
    .rmdir = ll_remove,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .link = ll_link,
    .create = ll_create,
    .setxattr = ll_setxattr,
    .removexattr = ll_removexattr,
};

const struct fuse_lowlevel_ops *fs_operations(void)
{
	return &operations;
}

/* The store's change hook: drop the kernel's copy of every inode of batch
 * id. Never called under the store's lock; takes the inode table's. */
static void batch_changed(void *arg, const char *id)
{
	struct kimifs *k = arg;
	uint64_t *inos;
	size_t n;

	pthread_mutex_lock(&k->notify_lock);
	if (!k->se)
		goto out;
	n = inodes_of_batch(&k->inodes, id, &inos);
	/* -ENOENT: the kernel had already forgotten it. */
	for (size_t i = 0; i < n; i++)
		fuse_lowlevel_notify_inval_inode(k->se, inos[i], 0, 0);
	free(inos);
out:
	pthread_mutex_unlock(&k->notify_lock);
}

void fs_attach(struct kimifs *k, struct fuse_session *se)
{
	pthread_mutex_lock(&k->notify_lock);
	k->se = se;
	pthread_mutex_unlock(&k->notify_lock);
	k->batches.store.on_change_arg = k;
	k->batches.store.on_change = batch_changed;
}

void fs_detach(struct kimifs *k)
{
	pthread_mutex_lock(&k->notify_lock);
	k->se = NULL;
	pthread_mutex_unlock(&k->notify_lock);
}
