/*
 * file.c - FileObject parsing and rendering: JSON to an immutable snapshot
 * whose files are ready to read. Strict on the fields kimifs relies on
 * (id, bytes, created_at, filename), lenient on the rest (kept in
 * file.json).
 */
#include "file.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"

/* Deeper objects are shown on one line (see render_json). */
#define MAX_PRETTY_DEPTH 8

const char *const file_value_names[] = {"filename", "bytes",	  "purpose",
					"status",   "created_at", NULL};

/* Statuses after which a file never changes again. */
static const char *const final_states[] = {"processed", "ready", "error", NULL};

int file_id_valid(const char *s)
{
	return batch_id_valid(s);
}

static void bfile_free(struct bfile *f)
{
	free(f->name);
	free(f->data);
}

static int set_err(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -EIO;
}

/* A non-negative whole number that fits an int64_t, or -1. */
static int64_t whole(const cJSON *v)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!isfinite(d) || d < 0 || d > 9007199254740992.0 || d != floor(d))
		return -1;
	return (int64_t)d;
}

/* file.json: the object as cJSON prints it, laid out as cJSON_Print lays
 * it out (two spaces for each of its tabs), on one line when a value is
 * nested deeper than MAX_PRETTY_DEPTH; newline-terminated. */
static int render_json(const cJSON *obj, struct bfile *f)
{
	static const struct json_print opt = {.layout = JSON_LAYOUT_CJSON,
					      .depth_max = JSON_DEPTH_LIMIT,
					      .flat_depth = MAX_PRETTY_DEPTH};
	char *compact = cJSON_PrintUnformatted(obj);
	int r;

	if (!compact)
		return -ENOMEM;
	r = json_pretty(compact, strlen(compact), &opt, &f->data, &f->len);
	cJSON_free(compact);
	if (r < 0)
		return r;
	f->name = strdup("file.json");
	return f->name ? 0 : -ENOMEM;
}

/* Append the value file name holding text and a newline. */
static int add_value(struct file *f, const char *name, const char *text)
{
	struct bfile *v = &f->values[f->nvalues];
	size_t n = strlen(text);

	v->name = strdup(name);
	v->data = malloc(n + 2);
	if (!v->name || !v->data) {
		bfile_free(v);
		memset(v, 0, sizeof(*v));
		return -ENOMEM;
	}
	memcpy(v->data, text, n);
	v->data[n] = '\n';
	v->data[n + 1] = '\0';
	v->len = n + 1;
	f->nvalues++;
	return 0;
}

/* A string member, or NULL (absent, null, not a string, or holding a NUL:
 * json_parse makes those raw nodes). */
static const char *string_of(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int file_from_json(const cJSON *obj, struct file **out, char *err,
		   size_t errlen)
{
	const char *id = string_of(obj, "id");
	const char *filename = string_of(obj, "filename");
	const char *purpose = string_of(obj, "purpose");
	const char *status = string_of(obj, "status");
	int64_t bytes = whole(cJSON_GetObjectItemCaseSensitive(obj, "bytes"));
	int64_t created =
	    whole(cJSON_GetObjectItemCaseSensitive(obj, "created_at"));
	char num[32];
	struct file *f;
	int r = -ENOMEM;

	*out = NULL;
	if (!cJSON_IsObject(obj))
		return set_err(err, errlen, "not an object");
	if (!id)
		return set_err(err, errlen, "id is not a string");
	if (!file_id_valid(id))
		return set_err(err, errlen, "id cannot be a name");
	if (bytes < 0)
		return set_err(err, errlen,
			       "bytes is not a non-negative whole number");
	if (created < 0)
		return set_err(err, errlen,
			       "created_at is not a non-negative whole number");
	if (!filename)
		return set_err(err, errlen, "filename is not a string");
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	f->refs = 1;
	f->bytes = bytes;
	f->created_at = created;
	f->id = strdup(id);
	f->filename = strdup(filename);
	f->values = calloc(5, sizeof(*f->values));
	if (!f->id || !f->filename || !f->values)
		goto out_free;
	if (add_value(f, "filename", filename) < 0)
		goto out_free;
	snprintf(num, sizeof(num), "%" PRId64, bytes);
	if (add_value(f, "bytes", num) < 0)
		goto out_free;
	if (purpose && add_value(f, "purpose", purpose) < 0)
		goto out_free;
	if (status && add_value(f, "status", status) < 0)
		goto out_free;
	snprintf(num, sizeof(num), "%" PRId64, created);
	if (add_value(f, "created_at", num) < 0)
		goto out_free;
	for (size_t i = 0; status && final_states[i]; i++)
		if (strcmp(status, final_states[i]) == 0)
			f->final = 1;
	r = render_json(obj, &f->json);
	if (r < 0)
		goto out_free;
	*out = f;
	return 0;
out_free:
	f->refs = 1;
	file_unref(f);
out:
	snprintf(err, errlen, "%s", strerror(ENOMEM));
	return r;
}

struct file *file_ref(struct file *f)
{
	if (f)
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

void file_unref(struct file *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < f->nvalues; i++)
		bfile_free(&f->values[i]);
	free(f->values);
	bfile_free(&f->json);
	free(f->id);
	free(f->filename);
	free(f);
}

const struct bfile *file_value(const struct file *f, const char *name)
{
	for (size_t i = 0; i < f->nvalues; i++)
		if (strcmp(f->values[i].name, name) == 0)
			return &f->values[i];
	return NULL;
}
