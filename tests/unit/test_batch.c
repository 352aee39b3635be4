/*
 * test_batch.c - unit tests of BatchObject parsing: the files a snapshot
 * renders, the event time, finality, and the refusal of malformed objects.
 */
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

static int has(const struct bfile *f, const char *content)
{
	return f && f->len == strlen(content) &&
	       memcmp(f->data, content, f->len) == 0;
}

int main(void)
{
	struct batch *b = NULL;

	CHECK(parse(good, &b) == 0);
	if (b) {
		CHECK(strcmp(b->id, "batch_x") == 0);
		CHECK(strcmp(b->status, "completed") == 0 && b->final);
		CHECK(b->created_at == 100);
		CHECK(b->mtime == 130); /* expires_at is a deadline */
		CHECK(has(batch_value(b, "status"), "completed\n"));
		CHECK(has(batch_value(b, "completed_at"), "130\n"));
		CHECK(batch_value(b, "error_file_id") == NULL);
		CHECK(has(batch_count(b, "failed"), "1\n"));
		CHECK(has(batch_meta(b, "project"), "q\n"));
		CHECK(batch_meta(b, "bad/key") == NULL);
		CHECK(strstr(b->json.data, "\"extra\"") != NULL);
		CHECK(b->json.data[b->json.len - 1] == '\n');
		CHECK(batch_is_value_name("cancelled_at"));
		CHECK(!batch_is_value_name("batch.json"));
		batch_unref(b);
	}
	b = NULL;
	CHECK(parse("[]", &b) < 0 && b == NULL);
	CHECK(parse("{\"id\":7}", &b) < 0 && b == NULL);
	CHECK(parse("{\"id\":\"batch_x\"}", &b) < 0 && b == NULL);
	return check_done("batch");
}
