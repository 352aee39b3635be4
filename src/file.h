/*
 * file.h - the FileObject as kimifs holds it: an immutable, reference
 * counted snapshot parsed from the server's JSON, with the value files of
 * files/<id>/ already rendered (file.json, filename, bytes, purpose,
 * status, created_at).
 */
#ifndef KIMIFS_FILE_H
#define KIMIFS_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "batch.h"

#define FILE_ID_MAX BATCH_ID_MAX

/* The name of files/by-name/: a file id equal to it is left out of the
 * listing (it could never be reached under files/). */
#define FILE_BY_NAME "by-name"

struct file {
	int refs; /* atomic; freed when it drops to zero */
	char *id;
	char *filename; /* as the server sent it */
	int64_t bytes;	/* the FileObject's size of the content */
	int64_t created_at;
	int final;	      /* its status never changes again */
	struct bfile json;    /* file.json, pretty-printed */
	struct bfile *values; /* filename, bytes, purpose, status,
				 created_at: the present ones */
	size_t nvalues;
};

/*
 * Parse one FileObject (a tree from json_parse). 0 with one reference in
 * *out; -EIO with the reason in err (errlen bytes) when a required field
 * (id, bytes, created_at, filename) is missing or of the wrong type, a
 * number is negative, or the id cannot be a name (file_id_valid). obj is
 * left unchanged.
 */
int file_from_json(const cJSON *obj, struct file **out, char *err,
		   size_t errlen);

struct file *file_ref(struct file *f);
void file_unref(struct file *f);

/* The rendered value file called name, or NULL (no such field). */
const struct bfile *file_value(const struct file *f, const char *name);

/* The value file names, in display order, NULL-terminated. */
extern const char *const file_value_names[];

/* Whether s can be a file id and so a directory name (the rule of
 * batch_id_valid). */
int file_id_valid(const char *s);

#endif
