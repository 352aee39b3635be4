/*
 * test_kind.c - unit tests of the descriptors of batches and files
 * (kind.h, batch_kind.c, file_kind.c): parse, id, ids that can be names,
 * finality, lifecycle rank, sameness, weight, a batch's status change
 * (its line of MOUNT/events, with its job), and the value files each
 * directory shows, found by name and rendered when present.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"
#include "events_lines.h"
#include "file.h"
#include "json.h"
#include "kind.h"

static const char running[] =
    "{\"id\":\"batch_x\",\"object\":\"batch\",\"endpoint\":"
    "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
    "\"completion_window\":\"24h\",\"status\":\"in_progress\","
    "\"output_file_id\":null,\"error_file_id\":null,"
    "\"created_at\":100,\"in_progress_at\":110,\"expires_at\":99999,"
    "\"request_counts\":{\"total\":3,\"completed\":0,\"failed\":0}}";

static const char done[] =
    "{\"id\":\"batch_x\",\"object\":\"batch\",\"endpoint\":"
    "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
    "\"completion_window\":\"24h\",\"status\":\"completed\","
    "\"output_file_id\":\"file-o\",\"error_file_id\":null,"
    "\"created_at\":100,\"in_progress_at\":110,\"expires_at\":99999,"
    "\"completed_at\":130,"
    "\"request_counts\":{\"total\":3,\"completed\":3,\"failed\":0}}";

static const char file_text[] =
    "{\"id\":\"file-abc\",\"object\":\"file\",\"bytes\":12,"
    "\"created_at\":1700000000,\"filename\":\"a.jsonl\","
    "\"status\":\"ready\"}";

/* Parse text as an object of kind: the object, or NULL. */
static void *parse(const struct object_kind *kind, const char *text)
{
	char why[256];
	size_t nuls;
	cJSON *root = json_parse(text, strlen(text), &nuls);
	void *obj = NULL;

	if (!root || kind->parse(root, &obj, why, sizeof(why)) < 0)
		obj = NULL;
	cJSON_Delete(root);
	return obj;
}

/* Whether value file name of obj renders as content (NULL: -ENOENT). */
static int renders(const struct object_kind *kind, const void *obj,
		   const char *name, const char *content)
{
	char *data;
	size_t len;
	int r = kind_render(kind, obj, name, &data, &len), ok;

	if (!content)
		return r == -ENOENT && data == NULL && len == 0;
	ok = r == 0 && len == strlen(content) && strlen(data) == len &&
	     memcmp(data, content, len) == 0;
	free(data);
	return ok;
}

/*
 * A batch's status change is a log line and a line of MOUNT/events, with
 * the job of a tagged batch (none when its tag is malformed); a copy in
 * the same status is none. a runs, b and c are done.
 */
static void test_batch_changed(const struct object_kind *k,
			       const struct batch *a, const struct batch *b,
			       const struct batch *c)
{
	struct events_reader *r;
	struct batch *x, *y;
	uint64_t at = 0;
	char text[sizeof(done) + 100];

	CHECK(events_open(1, 0, &r) == 0);
	k->changed(a, b);
	k->changed(b, c);
	CHECK(events_lines_are(r, &at,
			       "{\"kind\":\"batch\",\"id\":\"batch_x\","
			       "\"status\":\"completed\",\"was\":"
			       "\"in_progress\"}\n"));
	/* In a job (and a malformed tag: in none). */
	snprintf(text, sizeof(text), "%.*s,\"metadata\":%s}",
		 (int)strlen(done) - 1, done,
		 "{\"kimifs_job\":\"q\",\"kimifs_part\":\"1/2\"}");
	x = parse(k, text);
	snprintf(text, sizeof(text), "%.*s,\"metadata\":%s}",
		 (int)strlen(done) - 1, done,
		 "{\"kimifs_job\":\"q\",\"kimifs_part\":\"3/2\"}");
	y = parse(k, text);
	CHECK(x && y);
	if (x && y) {
		k->changed(a, x);
		k->changed(a, y);
	}
	CHECK(events_lines_are(
	    r, &at,
	    "{\"kind\":\"batch\",\"id\":\"batch_x\",\"status\":"
	    "\"completed\",\"was\":\"in_progress\",\"job\":\"q\"}\n"
	    "{\"kind\":\"batch\",\"id\":\"batch_x\",\"status\":"
	    "\"completed\",\"was\":\"in_progress\"}\n"));
	batch_unref(x);
	batch_unref(y);
	events_close(r);
	events_forget();
}

/* Whether kind's value files are names, in that order. */
static int values_are(const struct object_kind *kind, const char *const *names)
{
	size_t i = 0;

	for (; names[i]; i++)
		if (i >= kind->nvalues ||
		    strcmp(kind->values[i].name, names[i]))
			return 0;
	return i == kind->nvalues;
}

static void test_batch(void)
{
	static const char *const names[] = {
	    "batch.json",	 "status",
	    "endpoint",		 "input_file_id",
	    "output_file_id",	 "error_file_id",
	    "completion_window", "created_at",
	    "in_progress_at",	 "expires_at",
	    "finalizing_at",	 "completed_at",
	    "failed_at",	 "cancelling_at",
	    "cancelled_at",	 NULL};
	const struct object_kind *k = &batch_kind;
	struct batch *a = parse(k, running), *b = parse(k, done);
	struct batch *c = parse(k, done);
	char *data;
	size_t len;

	CHECK(strcmp(k->path, "/v1/batches") == 0 && !k->null_more);
	CHECK(k->id_max == BATCH_ID_MAX);
	CHECK(!parse(k, "{\"id\":\"batch_x\"}"));
	CHECK(a && b && c);
	if (!a || !b || !c)
		goto out;
	CHECK(strcmp(k->id(a), "batch_x") == 0);
	CHECK(k->id_valid("batch_x") && k->id_valid("by-name"));
	CHECK(!k->id_valid(".x") && !k->id_valid("a/b"));
	CHECK(!k->final(a) && k->final(b));
	CHECK(k->rank(a) > 0 && k->rank(a) < k->rank(b));
	CHECK(k->same(b, c) && !k->same(a, b));
	CHECK(k->bytes(a) > a->json.len);
	CHECK(k->ref(a) == a);
	k->unref(a);
	test_batch_changed(k, a, b, c);

	/* Every value file but batch.json is a field the parse checks. */
	CHECK(values_are(k, names));
	for (size_t i = 1; i < k->nvalues; i++)
		CHECK(batch_is_value_name(k->values[i].name));
	CHECK(kind_value(k, "status") == &k->values[1]);
	CHECK(!kind_value(k, "ctl") && !kind_value(k, "request_counts"));
	CHECK(renders(k, a, "status", "in_progress\n"));
	CHECK(renders(k, b, "status", "completed\n"));
	CHECK(renders(k, a, "output_file_id", NULL));
	CHECK(!kind_value(k, "output_file_id")->present(a, "output_file_id"));
	CHECK(renders(k, b, "output_file_id", "file-o\n"));
	CHECK(renders(k, a, "ctl", NULL));
	CHECK(kind_value(k, "batch.json")->present(a, "batch.json"));
	CHECK(kind_render(k, a, "batch.json", &data, &len) == 0);
	CHECK(len > 2 && strncmp(data, "{\n", 2) == 0 && data[len - 1] == '\n');
	free(data);
out:
	k->unref(a);
	k->unref(b);
	k->unref(c);
}

static void test_file(void)
{
	static const char *const names[] = {
	    "file.json", "filename",   "bytes", "purpose",
	    "status",	 "created_at", NULL};
	const struct object_kind *k = &file_kind;
	struct file *f = parse(k, file_text), *g = parse(k, file_text);
	char *data;
	size_t len;

	CHECK(strcmp(k->path, "/v1/files") == 0 && k->null_more);
	CHECK(!parse(k, "{\"id\":\"file-abc\"}"));
	CHECK(f && g);
	if (!f || !g)
		goto out;
	CHECK(strcmp(k->id(f), "file-abc") == 0);
	CHECK(k->id_valid("file-abc") && !k->id_valid(FILE_BY_NAME));
	CHECK(!k->id_valid(".x"));
	CHECK(k->final(f));
	CHECK(k->rank(f) == 0);
	CHECK(k->same(f, g));
	CHECK(k->bytes(f) > f->json.len);
	CHECK(!k->changed);

	CHECK(values_are(k, names));
	CHECK(renders(k, f, "filename", "a.jsonl\n"));
	CHECK(renders(k, f, "bytes", "12\n"));
	CHECK(renders(k, f, "purpose", NULL)); /* absent: no file */
	CHECK(renders(k, f, "status", "ready\n"));
	CHECK(renders(k, f, "content", NULL) && !kind_value(k, "content"));
	CHECK(kind_render(k, f, "file.json", &data, &len) == 0);
	CHECK(len == f->json.len && memcmp(data, f->json.data, len) == 0);
	free(data);
out:
	k->unref(f);
	k->unref(g);
}

int main(void)
{
	test_batch();
	test_file();
	return check_done("test_kind");
}
