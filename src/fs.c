/*
 * fs.c - the FUSE operations: paths of the tree in docs/filesystem.md mapped
 * to cached batch snapshots, failures mapped to errno. Everything is
 * read-only but ctl. An open file holds one snapshot, so what it reads and
 * what fstat says always agree.
 */
#include "kimifs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum node_kind {
	N_ROOT,
	N_BATCHES, /* batches/ */
	N_BATCH,   /* batches/<id>/ */
	N_VALUE,   /* batches/<id>/<field> */
	N_JSON,	   /* batches/<id>/batch.json */
	N_CTL,	   /* batches/<id>/ctl */
	N_COUNTS,  /* batches/<id>/request_counts/ */
	N_COUNT,   /* batches/<id>/request_counts/<name> */
	N_META,	   /* batches/<id>/metadata/ */
	N_METAVAL, /* batches/<id>/metadata/<key> */
};

struct node {
	enum node_kind kind;
	char id[BATCH_ID_MAX + 1];
	const char *name; /* last component, inside the parsed path */
};

/* An open file or directory: the snapshot it reads, or ctl's outcome. */
struct handle {
	struct handle *prev, *next; /* in k->open_files */
	enum node_kind kind;
	struct batch *snap;
	const char *data;
	size_t len;
	char *text; /* owned copy for ctl */
	int append; /* ctl opened with O_APPEND: `echo cancel >> ctl` */
	char id[BATCH_ID_MAX + 1];
};

static struct kimifs *state(void)
{
	return fuse_get_context()->private_data;
}

static int is_dir(enum node_kind k)
{
	return k == N_ROOT || k == N_BATCHES || k == N_BATCH || k == N_COUNTS ||
	       k == N_META;
}

/*
 * Map a path to a node. Returns 0, or -ENOENT for a path that cannot exist
 * (names that cannot be batch ids included: no request is ever made for
 * them).
 */
static int parse_path(const char *path, struct node *n)
{
	const char *comp[4];
	size_t len[4];
	int depth = 0;
	const char *p = path;

	memset(n, 0, sizeof(*n));
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		if (depth == 4)
			return -ENOENT;
		comp[depth] = p;
		while (*p && *p != '/')
			p++;
		len[depth] = (size_t)(p - comp[depth]);
		depth++;
	}
	if (depth == 0) {
		n->kind = N_ROOT;
		return 0;
	}
	if (len[0] != 7 || memcmp(comp[0], "batches", 7) != 0)
		return -ENOENT;
	if (depth == 1) {
		n->kind = N_BATCHES;
		return 0;
	}
	if (len[1] > BATCH_ID_MAX)
		return -ENOENT;
	memcpy(n->id, comp[1], len[1]);
	if (!batch_id_valid(n->id))
		return -ENOENT;
	n->name = comp[depth - 1];
	if (depth == 2) {
		n->kind = N_BATCH;
		return 0;
	}
	if (depth == 3) {
		if (strcmp(comp[2], "batch.json") == 0)
			n->kind = N_JSON;
		else if (strcmp(comp[2], "ctl") == 0)
			n->kind = N_CTL;
		else if (strcmp(comp[2], "request_counts") == 0)
			n->kind = N_COUNTS;
		else if (strcmp(comp[2], "metadata") == 0)
			n->kind = N_META;
		else if (batch_is_value_name(comp[2]))
			n->kind = N_VALUE;
		else
			return -ENOENT;
		return 0;
	}
	if (len[2] == 14 && memcmp(comp[2], "request_counts", 14) == 0)
		n->kind = N_COUNT;
	else if (len[2] == 8 && memcmp(comp[2], "metadata", 8) == 0)
		n->kind = N_METAVAL;
	else
		return -ENOENT;
	return 0;
}

/* The file a node names in snapshot b, or NULL when b has none. */
static const struct bfile *node_file(const struct batch *b,
				     const struct node *n)
{
	switch (n->kind) {
	case N_VALUE:
		return batch_value(b, n->name);
	case N_JSON:
		return &b->json;
	case N_COUNT:
		return batch_count(b, n->name);
	case N_METAVAL:
		return batch_meta(b, n->name);
	default:
		return NULL;
	}
}

/*
 * The snapshot for node n, in mode. A file that the snapshot lacks (a null
 * field, a missing key) may have appeared since: when the copy is older than
 * cache_ttl and not final, it is fetched again once before saying ENOENT.
 */
static int node_snapshot(struct kimifs *k, const struct node *n,
			 enum cache_mode mode, struct batch **out)
{
	struct api_error err;
	struct batch *b;
	int r = cache_get(&k->cache, n->id, mode, &b, &err);

	if (r == 0 &&
	    (n->kind == N_VALUE || n->kind == N_COUNT ||
	     n->kind == N_METAVAL) &&
	    !node_file(b, n)) {
		if (!b->final && mode == CACHE_ANY) {
			batch_unref(b);
			r = cache_get(&k->cache, n->id, CACHE_FRESH, &b, &err);
		}
		if (r == 0 && !node_file(b, n)) {
			batch_unref(b);
			return -ENOENT;
		}
	}
	if (r < 0) {
		/* A 404 is the everyday answer to a name probe. */
		if (r != -ENOENT)
			log_err("batch %s: %s", n->id,
				err.message[0] ? err.message : strerror(-r));
		return r;
	}
	*out = b;
	return 0;
}

static void fill_stat(struct kimifs *k, enum node_kind kind,
		      const struct batch *b, size_t size, struct stat *st)
{
	time_t t = k->mount_time;

	memset(st, 0, sizeof(*st));
	st->st_uid = k->uid;
	st->st_gid = k->gid;
	if (b)
		t = (time_t)(kind == N_BATCH ? b->created_at : b->mtime);
	st->st_mtime = st->st_ctime = st->st_atime = t;
	if (is_dir(kind)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = kind == N_BATCH ? 4 : 2;
	} else {
		st->st_mode = S_IFREG | (kind == N_CTL ? 0600 : 0444);
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)((size + 511) / 512);
	}
	st->st_blksize = 4096;
}

static int getattr_impl(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	struct kimifs *k = state();
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct batch *b = NULL;
	const struct bfile *f;
	struct node n;
	size_t size = 0;
	char *text;
	int r;

	if (h && !is_dir(h->kind)) {
		fill_stat(k, h->kind, h->snap, h->len, st);
		return 0;
	}
	r = parse_path(path, &n);
	if (r < 0 || n.kind == N_ROOT || n.kind == N_BATCHES) {
		if (r == 0)
			fill_stat(k, n.kind, NULL, 0, st);
		return r;
	}
	r = node_snapshot(k, &n, CACHE_ANY, &b);
	if (r < 0)
		return r;
	f = node_file(b, &n);
	if (f)
		size = f->len;
	if (n.kind == N_CTL) {
		text = cache_outcome(&k->cache, n.id);
		size = text ? strlen(text) : 0;
		free(text);
	}
	fill_stat(k, n.kind, b, size, st);
	batch_unref(b);
	return 0;
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	batch_unref(h->snap);
	free(h->text);
	free(h);
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

/* Open node n as of a fresh snapshot; directories and files alike. */
static int open_impl(const char *path, struct fuse_file_info *fi, int dir)
{
	struct kimifs *k = state();
	struct handle *h;
	const struct bfile *f;
	struct node n;
	int r = parse_path(path, &n);

	if (r < 0)
		return r;
	if (is_dir(n.kind) != dir)
		return dir ? -ENOTDIR : -EISDIR;
	if (!dir && n.kind != N_CTL && (fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->kind = n.kind;
	h->append = (fi->flags & O_APPEND) != 0;
	memcpy(h->id, n.id, sizeof(h->id));
	if (n.kind == N_CTL) {
		/* Opening ctl sends nothing: it reads the last outcome. */
		h->text = cache_outcome(&k->cache, n.id);
		h->data = h->text ? h->text : "";
		h->len = strlen(h->data);
	} else if (n.kind != N_ROOT && n.kind != N_BATCHES) {
		r = node_snapshot(k, &n, CACHE_FRESH, &h->snap);
		if (r < 0) {
			free(h);
			return r;
		}
		f = node_file(h->snap, &n);
		if (f) {
			h->data = f->data;
			h->len = f->len;
		}
	}
	handle_track(k, h);
	fi->fh = (uint64_t)(uintptr_t)h;
	if (!dir)
		fi->direct_io = 1; /* sizes change: always read from here */
	return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)path;
	handle_untrack(state(), h);
	handle_free(h);
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)path;
	if (off < 0 || (size_t)off >= h->len)
		return 0;
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	memcpy(buf, h->data + off, size);
	return (int)size;
}

static int write_impl(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)path;
	if (h->kind != N_CTL)
		return -EROFS;
	/* An append lands after the outcome text; it is still the start of
	 * what this writer says. */
	return ctl_write(state(), h->id, buf, size, h->append ? 0 : off);
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct node n;
	int r = parse_path(path, &n);

	(void)size;
	(void)fi;
	if (r < 0)
		return r;
	/* `echo cancel > ctl` truncates first; ctl has nothing to cut. */
	return n.kind == N_CTL ? 0 : -EROFS;
}

static int readdir_impl(const char *path, void *buf, fuse_fill_dir_t fill,
			off_t off, struct fuse_file_info *fi,
			enum fuse_readdir_flags flags)
{
	struct kimifs *k = state();
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct batch *b = h->snap;
	char **ids;
	size_t n;
	int r;

	(void)path;
	(void)off;
	(void)flags;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	switch (h->kind) {
	case N_ROOT:
		fill(buf, "batches", NULL, 0, 0);
		break;
	case N_BATCHES:
		r = cache_list(&k->cache, &ids, &n);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			fill(buf, ids[i], NULL, 0, 0);
		cache_list_free(ids, n);
		break;
	case N_BATCH:
		fill(buf, "batch.json", NULL, 0, 0);
		for (size_t i = 0; i < b->nvalues; i++)
			fill(buf, b->values[i].name, NULL, 0, 0);
		fill(buf, "request_counts", NULL, 0, 0);
		fill(buf, "metadata", NULL, 0, 0);
		fill(buf, "ctl", NULL, 0, 0);
		break;
	case N_COUNTS:
		for (int i = 0; i < 3; i++)
			fill(buf, b->counts[i].name, NULL, 0, 0);
		break;
	case N_META:
		for (size_t i = 0; i < b->nmeta; i++)
			fill(buf, b->meta[i].name, NULL, 0, 0);
		break;
	default:
		return -ENOTDIR;
	}
	return 0;
}

/* The operations that may reach the network run under one deadline. */
static int fs_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	int r;

	api_op_begin(&state()->api);
	r = getattr_impl(path, st, fi);
	api_op_end();
	return r;
}

static int open_node(const char *path, struct fuse_file_info *fi, int dir)
{
	int r;

	api_op_begin(&state()->api);
	r = open_impl(path, fi, dir);
	api_op_end();
	return r;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	return open_node(path, fi, 0);
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	return open_node(path, fi, 1);
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	int r;

	api_op_begin(&state()->api);
	r = readdir_impl(path, buf, fill, off, fi, flags);
	api_op_end();
	return r;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	int r;

	api_op_begin(&state()->api);
	r = write_impl(path, buf, size, off, fi);
	api_op_end();
	return r;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	/* Never touches the network: df must not hang on a slow server. */
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_namemax = 255;
	return 0;
}

static int fs_rofs_mk(const char *path, mode_t mode)
{
	(void)path;
	(void)mode;
	return -EROFS;
}

static int fs_rofs_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)dev;
	return fs_rofs_mk(path, mode);
}

static int fs_rofs_create(const char *path, mode_t mode,
			  struct fuse_file_info *fi)
{
	(void)fi;
	return fs_rofs_mk(path, mode);
}

static int fs_rofs_path(const char *path)
{
	(void)path;
	return -EROFS;
}

static int fs_rofs_two(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EROFS;
}

static int fs_rofs_rename(const char *from, const char *to, unsigned int fl)
{
	(void)fl;
	return fs_rofs_two(from, to);
}

static int fs_rofs_chmod(const char *path, mode_t mode,
			 struct fuse_file_info *fi)
{
	(void)fi;
	return fs_rofs_mk(path, mode);
}

static int fs_rofs_chown(const char *path, uid_t uid, gid_t gid,
			 struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	(void)fi;
	return fs_rofs_path(path);
}

static int fs_rofs_utimens(const char *path, const struct timespec tv[2],
			   struct fuse_file_info *fi)
{
	(void)tv;
	(void)fi;
	return fs_rofs_path(path);
}

static int fs_rofs_setxattr(const char *path, const char *name,
			    const char *value, size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	return fs_rofs_path(path);
}

static int fs_rofs_removexattr(const char *path, const char *name)
{
	(void)name;
	return fs_rofs_path(path);
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* Freshness is decided by the cache, not by the kernel: no kernel
	 * caching of names or attributes, stat always asks (it is cheap). */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 0;
	cfg->kernel_cache = 0;
	return state();
}

/* Unmounted: free the files still open (their release never comes). */
static void fs_destroy(void *data)
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

static const struct fuse_operations operations = {
    .init = fs_init,
    .destroy = fs_destroy,
    .getattr = fs_getattr,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .release = fs_release,
    .truncate = fs_truncate,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_release,
    .statfs = fs_statfs,
    .mkdir = fs_rofs_mk,
    .mknod = fs_rofs_mknod,
    .create = fs_rofs_create,
    .unlink = fs_rofs_path,
    .rmdir = fs_rofs_path,
    .symlink = fs_rofs_two,
    .link = fs_rofs_two,
    .rename = fs_rofs_rename,
    .chmod = fs_rofs_chmod,
    .chown = fs_rofs_chown,
    .utimens = fs_rofs_utimens,
    .setxattr = fs_rofs_setxattr,
    .removexattr = fs_rofs_removexattr,
};

const struct fuse_operations *fs_operations(void)
{
	return &operations;
}
