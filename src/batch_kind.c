/*
 * batch_kind.c - the descriptor of batches (kind.h): GET /v1/batches, a
 * BatchObject parsed into a snapshot (batch.h), final once its status is,
 * ranked by the lifecycle of its status, two copies the same when their
 * JSON is, a status change logged and a line of MOUNT/events, and the
 * value files of batches/<id>/:
 * batch.json and one per value field, rendered from the snapshot's JSON.
 */
#include <string.h>

#include "batch.h"
#include "events.h"
#include "job_tag.h"
#include "kind.h"
#include "log.h"

static int parse(const cJSON *item, void **out, char *why, size_t len)
{
	struct batch *b = NULL;
	int r = batch_from_json(item, &b, why, len);

	*out = b;
	return r;
}

static void *ref(void *obj)
{
	return batch_ref(obj);
}

static void unref(void *obj)
{
	batch_unref(obj);
}

static const char *id(const void *obj)
{
	return ((const struct batch *)obj)->id;
}

static int final(const void *obj)
{
	return ((const struct batch *)obj)->final;
}

/* Where a batch's status stands in the lifecycle; 0 when it is not a known
 * one. The final states share the last stage. */
static int rank(const void *obj)
{
	static const struct {
		const char *name;
		int stage;
	} stages[] = {
	    {"validating", 1}, {"in_progress", 2}, {"finalizing", 3},
	    {"cancelling", 4}, {"completed", 5},   {"failed", 5},
	    {"expired", 5},    {"cancelled", 5},
	};
	const struct batch *b = obj;

	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(b->status, stages[i].name) == 0)
			return stages[i].stage;
	return 0;
}

static int same(const void *a, const void *b)
{
	return bfile_same(&((const struct batch *)a)->json,
			  &((const struct batch *)b)->json);
}

/* One log line and one line of MOUNT/events per status change kimifs
 * sees, from whichever request (a wait's poll, a refresh, a listing, a
 * cancel) brought it, with the job the batch is in. */
static void changed(const void *old, const void *obj)
{
	const struct batch *a = old, *b = obj;
	struct job_tag t = {0};
	char why[200];

	if (strcmp(a->status, b->status) == 0)
		return;
	log_info("batch %s: %s -> %s", b->id, a->status, b->status);
	if (b->tagged && job_tag_of(b, &t, why, sizeof(why)) < 0)
		t.job[0] = '\0';
	events_add(&(struct event){.kind = "batch",
				   .id = b->id,
				   .status = b->status,
				   .was = a->status,
				   .job = t.job[0] ? t.job : NULL});
}

/* The bytes a snapshot holds, near enough: its JSON text (every file is
 * rendered from it when opened). */
static size_t bytes(const void *obj)
{
	const struct batch *b = obj;

	return sizeof(*b) + strlen(b->id) + b->json.len;
}

static int has_value(const void *obj, const char *name)
{
	return batch_has_value(obj, name);
}

static int render_json(const void *obj, const char *name, char **out,
		       size_t *len)
{
	return batch_render(obj, BATCH_JSON, name, out, len);
}

static int render_value(const void *obj, const char *name, char **out,
			size_t *len)
{
	return batch_render(obj, BATCH_VALUE, name, out, len);
}

#define VALUE(n)                                                               \
	{                                                                      \
		n, has_value, render_value                                     \
	}

/* The files of batches/<id>/ that show the object, in listing order: the
 * object, then its value fields (batch.c parses the same fields). */
static const struct object_value values[] = {
    {"batch.json", kind_always, render_json},
    VALUE("status"),
    VALUE("endpoint"),
    VALUE("input_file_id"),
    VALUE("output_file_id"),
    VALUE("error_file_id"),
    VALUE("completion_window"),
    VALUE("created_at"),
    VALUE("in_progress_at"),
    VALUE("expires_at"),
    VALUE("finalizing_at"),
    VALUE("completed_at"),
    VALUE("failed_at"),
    VALUE("cancelling_at"),
    VALUE("cancelled_at"),
};

const struct object_kind batch_kind = {
    .name = "batch",
    .plural = "batches",
    .path = "/v1/batches",
    .id_max = BATCH_ID_MAX,
    .parse = parse,
    .ref = ref,
    .unref = unref,
    .id = id,
    .id_valid = batch_id_valid,
    .final = final,
    .rank = rank,
    .same = same,
    .changed = changed,
    .bytes = bytes,
    .values = values,
    .nvalues = sizeof(values) / sizeof(values[0]),
};
