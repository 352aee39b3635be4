/*
 * file_kind.c - the descriptor of files (kind.h): GET /v1/files (whose
 * has_more may be null), a FileObject parsed into a snapshot (file.h),
 * final once its status is, no lifecycle to rank, two copies the same
 * when their JSON is, and the value files of files/<id>/: file.json and
 * filename, bytes, purpose, status, created_at, rendered when parsed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "kind.h"

static int parse(const cJSON *item, void **out, char *why, size_t len)
{
	struct file *f = NULL;
	int r = file_from_json(item, &f, why, len);

	*out = f;
	return r;
}

static void *ref(void *obj)
{
	return file_ref(obj);
}

static void unref(void *obj)
{
	file_unref(obj);
}

static const char *id(const void *obj)
{
	return ((const struct file *)obj)->id;
}

/* An id is a name under files/, unless it is that of by-name/. */
static int id_valid(const char *s)
{
	return file_id_valid(s) && strcmp(s, FILE_BY_NAME) != 0;
}

static int final(const void *obj)
{
	return ((const struct file *)obj)->final;
}

/* A file has no lifecycle to rank: an overlapping answer never replaces a
 * newer one. */
static int rank(const void *obj)
{
	(void)obj;
	return 0;
}

static int same(const void *a, const void *b)
{
	return bfile_same(&((const struct file *)a)->json,
			  &((const struct file *)b)->json);
}

static size_t bytes(const void *obj)
{
	const struct file *f = obj;
	size_t n =
	    sizeof(*f) + strlen(f->id) + strlen(f->filename) + f->json.len;

	for (size_t i = 0; i < f->nvalues; i++)
		n += strlen(f->values[i].name) + f->values[i].len;
	return n;
}

/* The rendering of value file name of f (file.json included), or NULL. */
static const struct bfile *shown(const struct file *f, const char *name)
{
	return strcmp(name, "file.json") == 0 ? &f->json : file_value(f, name);
}

static int has_value(const void *obj, const char *name)
{
	return shown(obj, name) != NULL;
}

/* A copy of the rendering the snapshot holds. */
static int render(const void *obj, const char *name, char **out, size_t *len)
{
	const struct bfile *b = shown(obj, name);

	*out = NULL;
	*len = 0;
	if (!b)
		return -ENOENT;
	*out = malloc(b->len + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, b->data, b->len);
	(*out)[b->len] = '\0';
	*len = b->len;
	return 0;
}

/* The files of files/<id>/ that show the object, in listing order (then
 * content and ctl, the directory's own). */
static const struct object_value values[] = {
    {"file.json", kind_always, render}, {"filename", has_value, render},
    {"bytes", has_value, render},	{"purpose", has_value, render},
    {"status", has_value, render},	{"created_at", has_value, render},
};

/* has_more may be null: the list of files is one page when it does not
 * say. */
const struct object_kind file_kind = {
    .name = "file",
    .plural = "files",
    .path = "/v1/files",
    .id_max = FILE_ID_MAX,
    .null_more = 1,
    .parse = parse,
    .ref = ref,
    .unref = unref,
    .id = id,
    .id_valid = id_valid,
    .final = final,
    .rank = rank,
    .same = same,
    .bytes = bytes,
    .values = values,
    .nvalues = sizeof(values) / sizeof(values[0]),
};
