/*
 * tree.h - the tree as a table of node types. A node is a place in the tree
 * (its type, the batch it belongs to, its own name); its type says what it
 * is (mode, kernel cache lifetime) and how to view it (the snapshot of any
 * kind it shows, the bytes a file reads). A directory's fixed children are
 * a table (struct node_child), from which lookup, listing and the link
 * count follow; one with children of its own making adds hooks for those.
 * A regular file has one open-file interface (struct open_ops): open,
 * read, write, resize, flush, release, and wait_text for a file that
 * waits. fs.c maps FUSE requests onto these; each subtree (dir_*.c) fills
 * in its types. Adding a file to a batch directory is one row in
 * dir_batches.c's table and one render function. A symlink's view holds
 * its target; a file's content is read through a reader of the disk cache.
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

struct batches;
struct cache;
struct ctl;
struct job_auto;
struct job_ctl;
struct job_keep;
struct file_ctl;
struct files;
struct jobs;
struct job_create;
struct job_retry;
struct opts;
struct results_cache;
struct job_results;
struct stage;
struct stats;
struct submit;
struct node_type;
struct object_kind;
struct cache_reader;
struct op;

/*
 * What the node types use of the mount, handed to each of their hooks:
 * the stores, the caches, the commands, the stage, the options and the
 * mount's time and owner. The pointers are to the mount's own (struct
 * kimifs, which embeds this), set up once before mounting.
 */
struct tree {
	const struct opts *opts;
	struct batches *batches;   /* batch snapshots, batches/' listing */
	struct files *files;	   /* file snapshots, files/' listing */
	struct jobs *jobs;	   /* the jobs found in batches/' listing */
	struct ctl *ctl;	   /* ctl commands of batches and the mount */
	struct file_ctl *file_ctl; /* files' ctl commands */
	struct cache *cache;	   /* file contents on disk */
	struct results_cache *results;	 /* results indexes */
	struct stage *stage;		 /* files being written */
	struct submit *submit;		 /* uploads and creations */
	struct job_create *job_create;	 /* making jobs */
	struct job_retry *job_retry;	 /* a job's retry round */
	struct job_ctl *job_ctl;	 /* ctl commands of jobs */
	struct job_keep *job_keep;	 /* inputs of jobs made halfway */
	struct job_auto *job_auto;	 /* rounds made by themselves */
	struct job_results *job_results; /* jobs' merged results */
	struct stats *stats;		 /* MOUNT/stats */
	time_t mount_time;
	uid_t uid;
	gid_t gid;
};

/* A place in the tree. Plain data: copied freely, owns nothing. */
struct node {
	const struct node_type *type;
	/* The object it belongs to: the batch under batches/<id>/, the file
	 * under files/<id>/, the job under jobs/<name>/. */
	char id[NODE_NAME_MAX + 1];
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

/*
 * An open file as its type's open operations see it: the node, the one
 * view it reads (so what it reads and what fstat says agree), and a state
 * of its own when it has one (a staged file's writer, an open
 * batches/new: fstat then views the node anew, and close(2) reaches
 * flush). Made by open (or by the directory's create), ended by release.
 */
struct open_file {
	struct node node;
	struct view view;
	const struct open_ops *ops;
	void *state; /* or NULL */
	int append;  /* opened with O_APPEND (`echo cancel >> ctl`) */
};

/*
 * What a read gives: len bytes at data, or, when data is NULL and len is
 * not 0, len bytes of the file fd at pos (spliced to the kernel). owned is
 * freed once the reply is sent.
 */
struct open_read {
	const char *data;
	int fd;
	off_t pos;
	size_t len;
	char *owned;
};

/*
 * The one interface of an open file: every file type has it (most the
 * generic tree_view_ops: the bytes of a view). A NULL hook is an
 * operation the file does not take.
 */
struct open_ops {
	/* Open f->node with open(2) flags: fill f->view (a fresh copy) and,
	 * for a file with a state of its own, f->state. 0, or -errno with
	 * nothing left to release (-EBUSY: a staged file has its writer). */
	int (*open)(struct tree *tree, struct op *op, struct open_file *f,
		    int flags);
	/* One read of size bytes at off into *out: 0 (len 0 at the end);
	 * -EAGAIN when the file waits (wait_text then makes the answer:
	 * fs.c waits without a thread, watch.h); or -errno. */
	int (*read)(struct tree *tree, struct op *op, struct open_file *f,
		    size_t size, off_t off, struct open_read *out);
	/* One write of buf at off by the open file table owner (the
	 * kernel's lock owner; 0 when not told): size or -errno. NULL: the
	 * file is read-only (EROFS at open for writing). */
	ssize_t (*write)(struct tree *tree, struct op *op, struct open_file *f,
			 const char *buf, size_t size, off_t off,
			 uint64_t owner);
	/* ftruncate by the writer: 0 or -errno. NULL: the size is set by
	 * truncation before a command alone (writable files), if at all. */
	int (*resize)(struct open_file *f, uint64_t size);
	/* Each close(2), by the open file table owner: 0 or -errno, which
	 * close returns. */
	int (*flush)(struct tree *tree, struct op *op, struct open_file *f,
		     uint64_t owner);
	/* The last close: free f->state. */
	void (*release)(struct open_file *f);
	/* Files whose read waits for the node's batch to become final
	 * (wait): what a waiting read returns once it is (obj, the store's
	 * object): 0 with *text malloc'd, or -errno. */
	int (*wait_text)(const void *obj, char **text, size_t *len);
	/* Files whose wait follows several objects (a job's wait, over its
	 * batches), instead of wait_text: the id of the object to wait for
	 * now (one not final) into id (size bytes), after a read said
	 * -EAGAIN: 0 or -errno. When that object is final, the read is made
	 * again (f holding only the node), and waits anew if it says
	 * -EAGAIN once more. */
	int (*wait_on)(struct tree *tree, struct op *op,
		       const struct open_file *f, char *id, size_t size);
	/* Files whose read waits for what comes next (events), instead of
	 * the above: a read of size 0 says whether one would give bytes now
	 * (0) or not (-EAGAIN); wake_add calls done(arg) once when it may
	 * (or the file ended): 0 with *token, or -errno; wake_cancel
	 * withdraws it: 0 when withdrawn before done ran, else -ENOENT. */
	int (*wake_add)(void (*done)(void *arg), void *arg, uint64_t *token);
	int (*wake_cancel)(uint64_t token);
	/* Told the size that a getattr through the open file showed (an
	 * lseek to its end; fstat comes without the file). */
	void (*end_shown)(struct open_file *f, uint64_t size);
};

/* The bytes of a view: open views the node afresh; read gives the part
 * of the view's bytes asked for. For simple files, one line. */
extern const struct open_ops tree_view_ops;
int tree_view_open(struct tree *tree, struct op *op, struct open_file *f,
		   int flags);
int tree_view_read(struct tree *tree, struct op *op, struct open_file *f,
		   size_t size, off_t off, struct open_read *out);

/* Make *out the part of the len bytes at data that a read of size bytes
 * at off gives (nothing past the end). */
void open_read_slice(struct open_read *out, const char *data, size_t len,
		     size_t size, off_t off);

/* Where a write of a command at off lands in what its writer says: an
 * append lands after the outcome text, and is still its start. */
off_t open_file_at(const struct open_file *f, off_t off);

/*
 * One fixed child of a directory type, in its table of children (ended by
 * a row with neither name nor kind), in listing order. A row is one name,
 * or one child per value file of kind (kind.h: its name and present), each
 * of type. present says whether the child is there in the directory's
 * snapshot (obj, which its view holds; name, the child's): NULL for always.
 * A hidden child is found by name but never listed.
 */
struct node_child {
	const char *name;
	const struct object_kind *kind; /* when name is NULL */
	const struct node_type *type;
	int (*present)(const void *obj, const char *name);
	int hidden;
};

struct node_type {
	const char *what; /* for messages: "batch directory", "ctl" ... */
	mode_t mode;	  /* S_IFDIR | 0555, S_IFREG | 0444 ... */
	/*
	 * Fill *v for n: the snapshot in mode (store.h), the bytes of a file.
	 * 0, or -errno (-ENOENT when the node does not exist).
	 */
	int (*view)(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v);
	/* Directories: the fixed children (tree_lookup, tree_list), or NULL.
	 * Their subdirectories are the link count's. */
	const struct node_child *children;
	/* Directories with children of their own making (ids, keys): the
	 * child called name when the table has none (0 or -ENOENT; existence
	 * is then decided by the child's view), and their names after the
	 * table's, given dir's view (v) as of the listing. */
	int (*lookup)(struct tree *tree, const struct node *dir,
		      const char *name, struct node *child);
	int (*readdir)(struct tree *tree, struct op *op, const struct node *dir,
		       const struct view *v, struct dirlist *out);
	/*
	 * Directories too large to copy for each open (results/), instead of
	 * readdir: list_open holds an immutable listing of dir as of its view
	 * v (*list, NULL for none) until list_close; list_at reads its entry
	 * at pos, from 0: 1 with name (NODE_NAME_MAX + 1 bytes) and *mode, 0
	 * when pos holds no entry, -ENOENT past the end. 0 or -errno.
	 */
	int (*list_open)(struct tree *tree, struct op *op,
			 const struct node *dir, const struct view *v,
			 void **list);
	int (*list_at)(const void *list, size_t pos, char *name, mode_t *mode);
	void (*list_close)(void *list);
	/* Directories that take new files (files/, batches/): make name a
	 * new file, its node in *child and its writer's state in *state (the
	 * child's open_ops take it). 0 or -errno. NULL: EROFS. */
	int (*create)(struct tree *tree, const struct node *dir,
		      const char *name, struct node *child, void **state);
	/* Regular files: how an open file of the node reads and writes. */
	const struct open_ops *open_ops;
	/* Each lookup is a node of its own, its id a token fs.c gives, so
	 * that each open file has its own size (MOUNT/events: a reader's). */
	int per_lookup;
};

/* The root node of the tree (dir_root.c). */
void tree_root(struct node *out);

/* A view that shows the mount time and sends nothing: for directories
 * whose own attributes never change (the root, batches/). */
int tree_mount_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v);

/* The same for a directory under the root whose own attributes never
 * change (batches/, jobs/: their entries do): the kernel keeps its entry
 * and attributes, so a path through it costs no lookup. */
int tree_fixed_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v);

/* Make v, a snapshot's view, that of a file whose read depends on when it
 * is made (a wait): size 0, never kept by the kernel. */
void view_unkept_empty(struct view *v);

/* Make v that of a ctl file: the outcome line of its last command (line,
 * malloc'd and then v's, or NULL: empty), which changes untold. */
void view_outcome(struct view *v, char *line);

/* Make child a node of type t under parent, called name (copied when it
 * fits; -ENOENT when it is too long to be a name). */
int node_make(struct node *child, const struct node *parent,
	      const struct node_type *t, const char *name);

/* node_make of the directory of an object of its own (a batch, a file, a
 * job), called by its id or name: the child's id is name. */
int node_make_object(struct node *child, const struct node *parent,
		     const struct node_type *t, const char *name);

/* Make v hold obj, a reference let go with unref when v is released. */
void view_hold(struct view *v, void *obj, void (*unref)(void *obj));

void view_release(struct view *v);

/* The child called name of directory dir: from its type's table of
 * children, else its lookup hook. 0 with *child, or -ENOENT. */
int tree_lookup(struct tree *tree, const struct node *dir, const char *name,
		struct node *child);

/*
 * The entries of directory dir as of a fresh view of it, as one operation:
 * its table's children present in that view's snapshot (hidden ones
 * aside), then those of its readdir hook, into out; a type with list_open
 * holds its listing in *list (else NULL). 0 or -errno.
 */
int tree_list(struct tree *tree, struct op *op, const struct node *dir,
	      struct dirlist *out, void **list);

/* The st_blksize of a file one may write: the size of cp's writes. */
#define TREE_WRITE_BLKSIZE (1 << 20)

/* Fill st for n as v shows it: mode, size, times, owner, the block size
 * writers use; a directory's link count from its table's subdirectories. */
void tree_stat(const struct tree *tree, const struct node *n,
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
int batch_node_snapshot(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v);
/* The batch that a view filled by batch_node_snapshot holds. */
const struct batch *view_batch(const struct view *v);
extern const struct node_type type_files;    /* dir_files.c */
extern const struct node_type type_jobs;     /* dir_jobs.c */
extern const struct node_type type_progress; /* dir_progress.c */
extern const struct node_type type_events;   /* dir_events.c */

/* The snapshot of the job of node n (under jobs/<name>/) in mode, into v
 * (its obj a struct job) with its latest time: 0, or -errno (-ENOENT, no
 * such job, is not logged; other failures are). dir_jobs.c. */
int job_node_snapshot(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v);

/* The progress line of a batch or a job into v (owned by v), as of now:
 * total requests, completed, failed; batches, running; started (Unix
 * time). 0 or -ENOMEM. tree.c. */
int tree_progress_view(struct view *v, const uint64_t counts[3],
		       unsigned batches, unsigned running, int64_t started);

/*
 * Symlinks (mode S_IFLNK) are nodes whose view holds the target as its
 * bytes (data, len), read by readlink.
 */

#endif
