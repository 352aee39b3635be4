/*
 * store_files.h - files in the object store: the store of FileObject
 * snapshots by id (file_kind) and the listing of files/, from the API
 * (store_api), with typed getters for the tree, the names of
 * files/by-name/ derived from the listing, and the ids deleted through
 * this mount.
 */
#ifndef KIMIFS_STORE_FILES_H
#define KIMIFS_STORE_FILES_H

#include <pthread.h>
#include <stddef.h>

#include "api.h"
#include "file.h"
#include "listing.h"
#include "store.h"

/* The name of files/by-name/ (file.h). */
#define FILES_BY_NAME FILE_BY_NAME

struct files {
	struct store store;	/* struct file snapshots by id */
	struct listing listing; /* the ids of files/ */
	pthread_mutex_t lock;	/* guards deleted */
	char **deleted;		/* ids deleted through ctl: gone at once */
	size_t ndeleted;
};

/* Set up the store and the listing over api, copies fresh for ttl
 * seconds, a fetch bounded by timeout seconds; 0 or -ENOMEM. */
int files_init(struct files *f, struct api *api, double ttl, double timeout,
	       unsigned page_size);
void files_destroy(struct files *f);

/* store_get for a file: 0 with a new reference in *out, or -errno with
 * the reason in err (may be NULL). A file deleted through ctl is -ENOENT
 * without a request. An id never seen is first looked for in the listing
 * (fetched when older than ttl), then fetched by itself. */
int files_get(struct files *f, struct op *op, const char *id,
	      enum store_mode mode, struct file **out, struct api_error *err);

/* The ids of every file (listing_get), newest first, those deleted
 * through ctl left out. Free with listing_free_ids. */
int files_list(struct files *f, struct op *op, char ***ids, size_t *n);

/* Remember that id was deleted; 0 or -ENOMEM. */
int files_forget(struct files *f, const char *id);

/*
 * The id of the newest file (largest created_at; the first listed among
 * equals) whose filename is name, per the listing: 0 with a malloc'd id
 * in *id, -ENOENT when no listed file has that name, or the listing's
 * -errno.
 */
int files_by_name(struct files *f, struct op *op, const char *name, char **id);

/* The distinct filenames of the listing that are safe as names
 * (batch_name_safe), newest file's first; free with listing_free_ids. */
int files_names(struct files *f, struct op *op, char ***names, size_t *n);

#endif
