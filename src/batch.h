/*
 * batch.h - the BatchObject as kimifs holds it: an immutable, reference
 * counted snapshot parsed from the server's JSON, from which each file of
 * the batch's directory is rendered when opened; an open file keeps its
 * rendering, so it reads one snapshot.
 * Also the rules for which names are safe to show as files.
 */
#ifndef KIMIFS_BATCH_H
#define KIMIFS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "json.h"

#define BATCH_ID_MAX 128

/*
 * At most this many members of a metadata object are looked at: the API
 * allows 16 pairs, so only a hostile server reaches it. The rest are left
 * out of metadata/ (batch.json keeps them) with one logged line, which keeps
 * the duplicate check and every lookup by key bounded.
 */
#define BATCH_META_MAX 1000

/* One rendered file: its name and its exact content. */
struct bfile {
	char *name;
	char *data;
	size_t len;
};

/* Whether a and b hold the same bytes (their names aside). */
int bfile_same(const struct bfile *a, const struct bfile *b);

/*
 * A snapshot holds the object as compact JSON and what the tree needs
 * without opening a file (id, status, times, which value files exist);
 * every file is rendered from the JSON when it is opened (batch_render),
 * so a listed batch costs about its JSON text. One allocation holds the
 * struct, the id, an unknown status and the JSON.
 */
struct batch {
	int refs; /* atomic; the snapshot is freed when it drops to zero */
	unsigned present; /* bit i: the i-th value field (batch.c) is not
			     null */
	char *id;
	char *status; /* without newline; a shared constant for the API's */
	int final;    /* completed, failed, expired or cancelled */
	int flat;     /* batch.json too deeply nested to indent: one line */
	int tagged;   /* its metadata has a kimifs_* key (job_tag.h) */
	int64_t created_at;
	int64_t mtime;	   /* latest of the *_at timestamps */
	struct bfile json; /* the object as sent, compact, with a newline
			      (name NULL): what two snapshots compare */
};

/*
 * Parse one BatchObject (a tree from json_parse). On success returns 0
 * and *out holds a snapshot with one reference. On a missing required field,
 * a wrong type, a negative count or time, or an id or value that holds a NUL
 * character, returns -EIO and writes the reason to err (errlen bytes).
 * Unknown fields are kept in batch.json only. obj is left unchanged. Linear
 * in the size of obj.
 */
int batch_from_json(const cJSON *obj, struct batch **out, char *err,
		    size_t errlen);

struct batch *batch_ref(struct batch *b);
void batch_unref(struct batch *b);

/* The files of a batch directory, by the part of the object they show. */
enum batch_part {
	BATCH_JSON,  /* batch.json: the object pretty-printed (name unused) */
	BATCH_VALUE, /* status, endpoint, ..., *_at */
	BATCH_COUNT, /* request_counts/total, completed, failed */
	BATCH_META,  /* metadata/<key> */
};

/*
 * Render file name of part of b: its exact content, malloc'd into *out
 * (NUL-terminated, *len bytes without the NUL). 0; -ENOENT when b has no
 * such file (a null field, an unknown name, a key not shown); -ENOMEM.
 * Linear in the size of b's JSON; the same b always renders the same.
 */
int batch_render(const struct batch *b, enum batch_part part, const char *name,
		 char **out, size_t *len);

/*
 * The request_counts of b (total, completed, failed) into counts, a
 * missing one 0: 0, or -ENOMEM. Linear in the size of b's JSON.
 */
int batch_counts(const struct batch *b, uint64_t counts[3]);

/*
 * The file id in field (input_file_id, output_file_id, error_file_id) of
 * b into out (size bytes): 0, or -ENOENT when the field is null or is not
 * an id that can be a name (batch_id_valid).
 */
int batch_file_id(const struct batch *b, const char *field, char *out,
		  size_t size);

/* Whether value file name exists in b (its field is not null). */
int batch_has_value(const struct batch *b, const char *name);

/*
 * The metadata keys b shows as files, in the order of the object, each
 * once (the first of repeated keys), at most BATCH_META_MAX: malloc'd
 * array of malloc'd keys (free with batch_free_keys). 0 or -ENOMEM.
 */
int batch_meta_keys(const struct batch *b, char ***keys, size_t *n);
void batch_free_keys(char **keys, size_t n);

/* Whether name is one of the value files a batch may have (even if null). */
int batch_is_value_name(const char *name);

/* Whether a status is final (the object never changes again). */
int batch_status_final(const char *status);

/*
 * Whether s can be a batch id and so a directory name: 1 to 128 bytes of
 * [A-Za-z0-9._-], not starting with '.'.
 */
int batch_id_valid(const char *s);

/*
 * Whether s is safe as a file name: non-empty, not "." or "..", no '/', no
 * control character, at most 255 bytes.
 */
int batch_name_safe(const char *s);

#endif
