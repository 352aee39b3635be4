/*
 * tree.h - the tree as a table of node types. A node is a place in the tree
 * (its type, the batch it belongs to, its own name); its type says what it
 * is (mode, kernel cache lifetime, writability) and how to find its
 * children, list them, and view it (the snapshot it shows, the bytes a file
 * reads). fs.c maps FUSE requests onto these; each subtree (dir_*.c) fills
 * in its types. Adding a file to a batch directory is one table entry in
 * dir_batches.c and one render function. A symlink's view holds its
 * target; a file's content is read through a reader of the disk cache.
 */
#ifndef KIMIFS_TREE_H
#define KIMIFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "batch.h"
#include "store.h"

#define NODE_NAME_MAX 255

struct kimifs;
struct node_type;
struct cache_reader;
struct op;

/* A place in the tree. Plain data: copied freely, owns nothing. */
struct node {
	const struct node_type *type;
	char id[BATCH_ID_MAX + 1]; /* the batch, under batches/<id>/ */
	char
	    name[NODE_NAME_MAX + 1]; /* own name, where content depends on it */
};

/*
 * What a node shows as of one snapshot: its times and, for a file, its
 * bytes. Filled by a type's view(); release with view_release().
 */
struct view {
	/* The snapshot shown, of the kind the node type knows (a batch, a
	 * file): a reference held and let go by unref, or NULL (root,
	 * batches/). Set with view_hold. */
	void *obj;
	void (*unref)(void *obj);
	const char *data; /* file content: into obj, into owned, or static */
	size_t len;
	char *owned; /* freed with the view */
	time_t mtime;
	int immutable; /* never changes again: the kernel may keep it */
	/* A file whose bytes are not in the view (a file's content): they
	 * are read from this reader of the disk cache, len being the size
	 * stat shows. Attached by the type's open; closed with the view. */
	struct cache_reader *reader;
	int told; /* may change, but the kernel is told when it does
		     (fs_attach): it may keep it for cache_ttl */
	/* data points into a buffer shared with other views (a rendered
	 * result): drop(hold) lets it go with the view. */
	void (*drop)(void *hold);
	void *hold;
};

/* Names of a directory as read by readdir. */
struct dirlist {
	char **names;
	mode_t *modes;
	size_t n;
	size_t cap;
};

enum {
	NT_WRITABLE = 1, /* takes writes and truncation (ctl) */
};

/*
 * Files whose open file descriptions each have a state of their own (a
 * staged file's writer, an open batches/new): made by the directory's
 * create or by open, passed to each hook, ended by release. A NULL hook
 * leaves the operation to the node type (write, view).
 */
struct node_open_ops {
	/* Open n (an existing node) with open(2) flags: 0 with *state, or
	 * -errno (-EBUSY: a staged file has its one writer already). */
	int (*open)(struct kimifs *k, const struct node *n, int flags,
		    void **state);
	/* One write of buf at off by the open file table owner (the
	 * kernel's lock owner; 0 when not told): size or -errno. */
	ssize_t (*write)(struct kimifs *k, struct op *op, void *state,
			 const char *buf, size_t size, off_t off,
			 uint64_t owner);
	/* One read into buf at off: bytes (0 at the end), or -errno. */
	ssize_t (*read)(void *state, char *buf, size_t size, off_t off);
	/* ftruncate: 0 or -errno. */
	int (*resize)(void *state, uint64_t size);
	/* Each close(2), by the open file table owner: 0 or -errno, which
	 * close returns. */
	int (*flush)(struct kimifs *k, struct op *op, void *state,
		     uint64_t owner);
	/* The last close: free state. */
	void (*release)(void *state);
};

/*
 * One fixed child of a directory type, in its table of children (ended by
 * a row with neither name nor names), in listing order. A row is one name,
 * or one child per name of names (the value files of a kind), each of
 * type. present says whether the child is there in the directory's
 * snapshot (obj, which its view holds; name, the child's): NULL for always.
 * A hidden child is found by name but never listed.
 */
struct node_child {
	const char *name;
	const char *const *names; /* NULL-terminated; when name is NULL */
	const struct node_type *type;
	int (*present)(const void *obj, const char *name);
	int hidden;
};

struct node_type {
	const char *what; /* for messages: "batch directory", "ctl" ... */
	mode_t mode;	  /* S_IFDIR | 0555, S_IFREG | 0444 ... */
	unsigned flags;	  /* NT_* */
	/*
	 * Fill *v for n: the snapshot in mode (store.h), the bytes of a file.
	 * 0, or -errno (-ENOENT when the node does not exist).
	 */
	int (*view)(struct kimifs *k, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v);
	/* Directories: the fixed children (tree_lookup, tree_list), or NULL.
	 * Their subdirectories are the link count's. */
	const struct node_child *children;
	/* Directories with children of their own making (ids, keys): the
	 * child called name when the table has none (0 or -ENOENT; existence
	 * is then decided by the child's view), and their names after the
	 * table's, given dir's view (v) as of the listing. */
	int (*lookup)(struct kimifs *k, const struct node *dir,
		      const char *name, struct node *child);
	int (*readdir)(struct kimifs *k, struct op *op, const struct node *dir,
		       const struct view *v, struct dirlist *out);
	/*
	 * Directories too large to copy for each open (results/), instead of
	 * readdir: list_open holds an immutable listing of dir as of its view
	 * v (*list, NULL for none) until list_close; list_at reads its entry
	 * at pos, from 0: 1 with name (NODE_NAME_MAX + 1 bytes) and *mode, 0
	 * when pos holds no entry, -ENOENT past the end. 0 or -errno.
	 */
	int (*list_open)(struct kimifs *k, struct op *op,
			 const struct node *dir, const struct view *v,
			 void **list);
	int (*list_at)(const void *list, size_t pos, char *name, mode_t *mode);
	void (*list_close)(void *list);
	/* Files read through a reader (view.reader): attach it to the view
	 * that open made. 0 or -errno. NULL for the others. */
	int (*open)(struct kimifs *k, struct op *op, const struct node *n,
		    struct view *v);
	/* Writable files: one write of buf at off; size or -errno. */
	int (*write)(struct kimifs *k, struct op *op, const struct node *n,
		     const char *buf, size_t size, off_t off);
	/*
	 * Files whose read waits for n's batch to become final (wait): 0 with
	 * what a read returns (malloc'd into *text, *len bytes) when it is
	 * final now, -EAGAIN while it is not (fs.c then waits without a
	 * thread: watch.h), or -errno. NULL for the others.
	 */
	int (*wait_ready)(struct kimifs *k, struct op *op, const struct node *n,
			  char **text, size_t *len);
	/* What a waiting read returns once the batch is final (obj, the
	 * store's object): 0 with *text malloc'd, or -errno. */
	int (*wait_text)(const void *obj, char **text, size_t *len);
	/* Directories that take new files (files/, batches/): make name a
	 * new file, its node in *child and its writer's state in *state (the
	 * child's type has open_ops). 0 or -errno. NULL: EROFS. */
	int (*create)(struct kimifs *k, const struct node *dir,
		      const char *name, struct node *child, void **state);
	const struct node_open_ops *open_ops; /* or NULL */
};

/* The root node of the tree (dir_root.c). */
void tree_root(struct node *out);

/* A view that shows the mount time and sends nothing: for directories
 * whose own attributes never change (the root, batches/). */
int tree_mount_view(struct kimifs *k, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v);

/* Make child a node of type t under parent, called name (copied when it
 * fits; -ENOENT when it is too long to be a name). */
int node_make(struct node *child, const struct node *parent,
	      const struct node_type *t, const char *name);

/* Make v hold obj, a reference let go with unref when v is released. */
void view_hold(struct view *v, void *obj, void (*unref)(void *obj));

void view_release(struct view *v);

/* The child called name of directory dir: from its type's table of
 * children, else its lookup hook. 0 with *child, or -ENOENT. */
int tree_lookup(struct kimifs *k, const struct node *dir, const char *name,
		struct node *child);

/*
 * The entries of directory dir as of a fresh view of it, as one operation:
 * its table's children present in that view's snapshot (hidden ones
 * aside), then those of its readdir hook, into out; a type with list_open
 * holds its listing in *list (else NULL). 0 or -errno.
 */
int tree_list(struct kimifs *k, struct op *op, const struct node *dir,
	      struct dirlist *out, void **list);

/* Fill st for n as v shows it: mode, size, times, owner; a directory's
 * link count from its table's subdirectories. */
void tree_stat(const struct kimifs *k, const struct node *n,
	       const struct view *v, struct stat *st);

/* Append name with mode to l; 0 or -ENOMEM. */
int dirlist_add(struct dirlist *l, const char *name, mode_t mode);
void dirlist_free(struct dirlist *l);

/* The subtrees. */
extern const struct node_type type_batches; /* dir_batches.c */

/*
 * The snapshot of the batch of node n (under batches/<id>/) in mode, into
 * v with its event time and whether it is final: 0, or -errno (a 404, a
 * name probe, is not logged; other failures are). dir_batches.c.
 */
int batch_node_snapshot(struct kimifs *k, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v);
/* The batch that a view filled by batch_node_snapshot holds. */
const struct batch *view_batch(const struct view *v);
extern const struct node_type type_files; /* dir_files.c */

/*
 * Symlinks (mode S_IFLNK) are nodes whose view holds the target as its
 * bytes (data, len), read by readlink.
 */

#endif
