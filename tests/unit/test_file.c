/*
 * test_file.c - unit tests of FileObject parsing and rendering (file.c)
 * and of the parsing of a file's ctl commands (file_ctl.c).
 */
#include <string.h>

#include "check.h"
#include "file.h"
#include "file_ctl.h"
#include "json.h"

/* Parse text as a FileObject: 0 with *out, or -EIO. */
static int parse(const char *text, struct file **out)
{
	char why[256];
	size_t nuls;
	cJSON *root = json_parse(text, strlen(text), &nuls);
	int r = root ? file_from_json(root, out, why, sizeof(why)) : -1;

	cJSON_Delete(root);
	return r;
}

static int value_is(const struct file *f, const char *name, const char *want)
{
	const struct bfile *v = file_value(f, name);

	return v && v->len == strlen(want) &&
	       memcmp(v->data, want, v->len) == 0;
}

static enum file_cmd cmd(const char *s, off_t off)
{
	return file_ctl_parse(s, strlen(s), off);
}

int main(void)
{
	struct file *f = NULL;

	CHECK(parse("{\"id\":\"file-abc\",\"object\":\"file\",\"bytes\":12,"
		    "\"created_at\":1700000000,\"filename\":\"a b.jsonl\","
		    "\"purpose\":\"batch\",\"status\":\"ready\","
		    "\"status_details\":null}",
		    &f) == 0);
	if (f) {
		CHECK(strcmp(f->id, "file-abc") == 0);
		CHECK(f->bytes == 12 && f->created_at == 1700000000);
		CHECK(f->final);
		CHECK(value_is(f, "filename", "a b.jsonl\n"));
		CHECK(value_is(f, "bytes", "12\n"));
		CHECK(value_is(f, "purpose", "batch\n"));
		CHECK(value_is(f, "status", "ready\n"));
		CHECK(value_is(f, "created_at", "1700000000\n"));
		CHECK(strncmp(f->json.data, "{\n  \"id\": \"file-abc\",\n",
			      22) == 0);
		CHECK(f->json.data[f->json.len - 1] == '\n');
		file_unref(f);
	}
	/* Optional fields may be missing; a status that may change is not
	 * final. */
	f = NULL;
	CHECK(parse("{\"id\":\"f\",\"bytes\":0,\"created_at\":0,"
		    "\"filename\":\"x\",\"status\":\"uploaded\"}",
		    &f) == 0);
	if (f) {
		CHECK(!f->final && !file_value(f, "purpose"));
		file_unref(f);
	}
	/* Refused: the fields kimifs relies on, wrong or missing. */
	CHECK(parse("[]", &f) < 0);
	CHECK(parse("{\"bytes\":1,\"created_at\":1,\"filename\":\"x\"}", &f) <
	      0);
	CHECK(parse("{\"id\":\"../x\",\"bytes\":1,\"created_at\":1,"
		    "\"filename\":\"x\"}",
		    &f) < 0);
	CHECK(parse("{\"id\":\"f\\u0000g\",\"bytes\":1,\"created_at\":1,"
		    "\"filename\":\"x\"}",
		    &f) < 0);
	CHECK(parse("{\"id\":\"f\",\"bytes\":-1,\"created_at\":1,"
		    "\"filename\":\"x\"}",
		    &f) < 0);
	CHECK(parse("{\"id\":\"f\",\"bytes\":1.5,\"created_at\":1,"
		    "\"filename\":\"x\"}",
		    &f) < 0);
	CHECK(parse("{\"id\":\"f\",\"bytes\":\"1\",\"created_at\":1,"
		    "\"filename\":\"x\"}",
		    &f) < 0);
	CHECK(parse("{\"id\":\"f\",\"bytes\":1,\"filename\":\"x\"}", &f) < 0);
	CHECK(parse("{\"id\":\"f\",\"bytes\":1,\"created_at\":1}", &f) < 0);

	CHECK(cmd("delete", 0) == FCMD_DELETE);
	CHECK(cmd(" delete\n", 0) == FCMD_DELETE);
	CHECK(cmd("delete", 1) == FCMD_NONE);
	CHECK(cmd("", 0) == FCMD_NONE);
	CHECK(cmd("Delete", 0) == FCMD_NONE);
	CHECK(cmd("delete delete", 0) == FCMD_NONE);
	CHECK(cmd("cancel", 0) == FCMD_NONE);
	CHECK(file_ctl_parse("delete\0", 7, 0) == FCMD_NONE);
	return check_done("file");
}
