/*
 * test_batch.c - unit tests of BatchObject parsing: the files a snapshot
 * renders on demand, the event time, finality, shared statuses, and the
 * refusal of malformed objects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"

static const char good[] =
    "{\"id\":\"batch_x\",\"object\":\"batch\",\"endpoint\":"
    "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
    "\"completion_window\":\"24h\",\"status\":\"completed\","
    "\"output_file_id\":\"file-o\",\"error_file_id\":null,"
    "\"created_at\":100,\"in_progress_at\":110,\"expires_at\":99999,"
    "\"finalizing_at\":120,\"completed_at\":130,\"failed_at\":null,"
    "\"cancelling_at\":null,\"cancelled_at\":null,"
    "\"request_counts\":{\"total\":3,\"completed\":2,\"failed\":1},"
    "\"metadata\":{\"project\":\"q\",\"bad/key\":\"v\"},\"extra\":[1]}";

static int parse(const char *text, struct batch **out)
{
	char err[256];
	cJSON *obj = cJSON_Parse(text);
	int r = batch_from_json(obj, out, err, sizeof(err));

	cJSON_Delete(obj);
	return r;
}

/* Whether file name of part renders exactly as content (NULL: -ENOENT). */
static int has(const struct batch *b, enum batch_part part, const char *name,
	       const char *content)
{
	char *data;
	size_t len;
	int r = batch_render(b, part, name, &data, &len), ok;

	if (!content)
		return r == -ENOENT && data == NULL;
	ok = r == 0 && len == strlen(content) && strlen(data) == len &&
	     memcmp(data, content, len) == 0;
	free(data);
	return ok;
}

static const char dups[] =
    "{\"id\":\"batch_y\",\"endpoint\":\"/v1/chat/completions\","
    "\"input_file_id\":\"f\",\"completion_window\":\"24h\","
    "\"status\":\"weird\",\"created_at\":5,"
    "\"request_counts\":{\"total\":0,\"completed\":0,\"failed\":0},"
    "\"metadata\":{\"b\":\"1\",\"a\":7,\"a\":\"2\",\"b\":\"3\",\"c\":\"4\"}}";

int main(void)
{
	struct batch *b = NULL;

	CHECK(parse(good, &b) == 0);
	if (b) {
		CHECK(strcmp(b->id, "batch_x") == 0);
		CHECK(strcmp(b->status, "completed") == 0 && b->final);
		CHECK(b->created_at == 100);
		CHECK(b->mtime == 130); /* expires_at is a deadline */
		CHECK(has(b, BATCH_VALUE, "status", "completed\n"));
		CHECK(has(b, BATCH_VALUE, "completed_at", "130\n"));
		CHECK(has(b, BATCH_VALUE, "error_file_id", NULL));
		CHECK(has(b, BATCH_VALUE, "batch.json", NULL));
		CHECK(batch_has_value(b, "output_file_id"));
		CHECK(!batch_has_value(b, "failed_at"));
		CHECK(has(b, BATCH_COUNT, "failed", "1\n"));
		CHECK(has(b, BATCH_COUNT, "other", NULL));
		CHECK(has(b, BATCH_META, "project", "q\n"));
		CHECK(has(b, BATCH_META, "bad/key", NULL));
		/* the snapshot keeps the object compact; batch.json is
		 * rendered pretty, unknown fields included */
		CHECK(strstr(b->json.data, "\"extra\"") != NULL);
		CHECK(b->json.data[b->json.len - 1] == '\n');
		CHECK(strchr(b->json.data, '\n') ==
		      b->json.data + b->json.len - 1);
		{
			char *j = NULL;
			size_t n = 0;

			CHECK(batch_render(b, BATCH_JSON, "batch.json", &j,
					   &n) == 0);
			CHECK(j &&
			      strstr(j, "{\n  \"id\": \"batch_x\",\n") == j);
			CHECK(j && strstr(j, "\"extra\"") && j[n - 1] == '\n');
			free(j);
		}
		{
			char **keys;
			size_t n;

			CHECK(batch_meta_keys(b, &keys, &n) == 0 && n == 1 &&
			      strcmp(keys[0], "project") == 0);
			batch_free_keys(keys, n);
		}
		{
			/* statuses of the API are shared, not copied */
			struct batch *c = NULL;

			CHECK(parse(good, &c) == 0);
			CHECK(c && c->status == b->status);
			batch_unref(c);
		}
		CHECK(batch_is_value_name("cancelled_at"));
		CHECK(!batch_is_value_name("batch.json"));
		batch_unref(b);
	}
	b = NULL;
	/* a status the API does not have is kept; repeated metadata keys
	 * show their first string value, in the order of the object */
	CHECK(parse(dups, &b) == 0);
	if (b) {
		char **keys;
		size_t n;

		CHECK(strcmp(b->status, "weird") == 0 && !b->final);
		CHECK(has(b, BATCH_VALUE, "status", "weird\n"));
		CHECK(has(b, BATCH_META, "a", "2\n"));
		CHECK(has(b, BATCH_META, "b", "1\n"));
		CHECK(batch_meta_keys(b, &keys, &n) == 0 && n == 3);
		if (n == 3)
			CHECK(strcmp(keys[0], "b") == 0 &&
			      strcmp(keys[1], "a") == 0 &&
			      strcmp(keys[2], "c") == 0);
		batch_free_keys(keys, n);
		batch_unref(b);
	}
	b = NULL;
	CHECK(parse("[]", &b) < 0 && b == NULL);
	CHECK(parse("{\"id\":7}", &b) < 0 && b == NULL);
	CHECK(parse("{\"id\":\"batch_x\"}", &b) < 0 && b == NULL);
	return check_done("batch");
}
