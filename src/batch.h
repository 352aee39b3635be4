/*
 * batch.h - the BatchObject as kimifs holds it: an immutable, reference
 * counted snapshot parsed from the server's JSON, with every file of the
 * batch's directory already rendered, so one open file reads one snapshot.
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

struct batch {
	int refs; /* atomic; the snapshot is freed when it drops to zero */
	char *id;
	char *status; /* the status value, without newline */
	int final;    /* completed, failed, expired or cancelled */
	int64_t created_at;
	int64_t mtime;	      /* latest of the *_at timestamps */
	struct bfile json;    /* batch.json */
	struct bfile *values; /* status, endpoint, ..., *_at: present ones */
	size_t nvalues;
	struct bfile counts[3]; /* total, completed, failed */
	struct bfile *meta;	/* metadata pairs with safe keys */
	size_t nmeta;
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

/* The rendered value file called name, or NULL if that field is null. */
const struct bfile *batch_value(const struct batch *b, const char *name);
const struct bfile *batch_count(const struct batch *b, const char *name);
const struct bfile *batch_meta(const struct batch *b, const char *key);

/* Whether name is one of the value files a batch may have (even if null). */
int batch_is_value_name(const char *name);

/* The value file names, in display order, NULL-terminated. */
extern const char *const batch_value_names[];

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
