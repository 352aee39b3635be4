/*
 * kind.h - the descriptor of a kind of API object (batches, files): what
 * differs between kinds, said once, and read by the API calls (its list
 * path, how an answer is parsed), the object store (how objects are
 * counted, named, aged, ordered, compared and weighed) and the tree (the
 * value files of its directory). A new kind of object is a descriptor and
 * a directory type. Objects are opaque, immutable, reference-counted
 * snapshots; every function here is quick, never blocks, and may be
 * called under any lock, but `changed` (under none of the store's).
 */
#ifndef KIMIFS_KIND_H
#define KIMIFS_KIND_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* One value file of an object's directory (batch.json, status, ...). */
struct object_value {
	const char *name;
	/* Whether obj has the file (e.g. its field is not null), without
	 * rendering it. */
	int (*present)(const void *obj, const char *name);
	/* Its exact content, malloc'd into *out (NUL-terminated, *len bytes
	 * without the NUL): 0, -ENOENT when obj lacks it, or -ENOMEM. The
	 * same obj always renders the same. */
	int (*render)(const void *obj, const char *name, char **out,
		      size_t *len);
};

struct object_kind {
	const char *name;   /* "batch": for messages */
	const char *plural; /* "batches" */
	const char *path;   /* its list endpoint: "/v1/batches" */
	int id_max;	    /* the longest id of an object */
	int null_more;	    /* a list's has_more may be null (as false) */

	/* Parse one object of an answer: 0 with one reference in *out, or
	 * -EIO with the reason in why (len bytes). */
	int (*parse)(const cJSON *item, void **out, char *why, size_t len);
	void *(*ref)(void *obj);
	void (*unref)(void *obj); /* NULL is allowed */
	const char *(*id)(const void *obj);
	/* Whether id can be a name in the kind's directory (listings leave
	 * the others out). */
	int (*id_valid)(const char *id);
	/* Whether obj never changes again (never fetched again). */
	int (*final)(const void *obj);
	/* Where obj stands in its lifecycle, for answers whose requests
	 * overlapped: a later stage replaces an earlier one. 0 when unknown
	 * (never replaces, never replaced that way). */
	int (*rank)(const void *obj);
	/* Whether a and b say the same (the server sent the same object). */
	int (*same)(const void *a, const void *b);
	/* Told that a kept object was replaced by one that says otherwise,
	 * to log what changed and add its line to MOUNT/events (events.h);
	 * it may only look, log and add lines. Called by the store without
	 * its lock, once the change is visible. NULL: nothing to tell. */
	void (*changed)(const void *old, const void *obj);
	/* The bytes obj holds, near enough, for the bounds of a listing. */
	size_t (*bytes)(const void *obj);

	/* The value files of an object's directory, in listing order. */
	const struct object_value *values;
	size_t nvalues;
};

extern const struct object_kind batch_kind; /* batch_kind.c */
extern const struct object_kind file_kind;  /* file_kind.c */
extern const struct object_kind job_kind;   /* job_kind.c */

/* The value file of kind called name, or NULL when kind has none. */
const struct object_value *kind_value(const struct object_kind *kind,
				      const char *name);

/*
 * Render value file name of obj (of kind) as kind_value's render does:
 * 0 with the malloc'd text in *out and *len; -ENOENT when kind has no
 * such file or obj lacks it (present), with *out NULL; -ENOMEM.
 */
int kind_render(const struct object_kind *kind, const void *obj,
		const char *name, char **out, size_t *len);

/* A present test for a file every object has (batch.json). */
int kind_always(const void *obj, const char *name);

#endif
