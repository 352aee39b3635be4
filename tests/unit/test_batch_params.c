/*
 * test_batch_params.c - unit tests of the parameters written to
 * batches/new: every documented limit, quoting, defaults, the JSON body.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch_params.h"
#include "check.h"

static char why[256];
static struct batch_params p;

static int parse(const char *text)
{
	params_free(&p);
	return params_parse(text, strlen(text), "24h", &p, why, sizeof(why));
}

static int refused(const char *text, const char *reason)
{
	if (parse(text) != -EINVAL)
		return 0;
	if (strstr(why, reason))
		return 1;
	fprintf(stderr, "\"%s\": reason \"%s\" lacks \"%s\"\n", text, why,
		reason);
	return 0;
}

int main(void)
{
	char text[4096], *json;
	cJSON *o;

	CHECK(params_window_hours("12h") == 12);
	CHECK(params_window_hours("24h") == 24);
	CHECK(params_window_hours("7d") == 168);
	CHECK(params_window_hours("1d") == 24);
	CHECK(params_window_hours("0d") == -EINVAL);
	CHECK(params_window_hours("11h") == -EINVAL);
	CHECK(params_window_hours("169h") == -EINVAL);
	CHECK(params_window_hours("8d") == -EINVAL);
	CHECK(params_window_hours("24") == -EINVAL);
	CHECK(params_window_hours("h") == -EINVAL);
	CHECK(params_window_hours("-24h") == -EINVAL);
	CHECK(params_window_hours("24hh") == -EINVAL);
	CHECK(params_window_hours("") == -EINVAL);
	CHECK(params_window_hours("99999999999999999999h") == -EINVAL);
	/* Only the forms the API writes: no leading zero, no sign. */
	CHECK(params_window_hours("0012h") == -EINVAL);
	CHECK(params_window_hours("012h") == -EINVAL);
	CHECK(params_window_hours("07d") == -EINVAL);
	CHECK(params_window_hours("+24h") == -EINVAL);
	CHECK(params_window_hours("168h") == 168);

	/* Defaults, and every parameter. */
	CHECK(parse("input_file_id=file-abc\n") == 0);
	CHECK(strcmp(p.input_file_id, "file-abc") == 0);
	CHECK(strcmp(p.completion_window, "24h") == 0);
	CHECK(strcmp(p.endpoint, "/v1/chat/completions") == 0);
	CHECK(p.nmeta == 0);
	CHECK(parse("  completion_window=48h\tinput_file_id=f1\n"
		    "endpoint=/v1/chat/completions metadata.team=search "
		    "metadata.note=\"two words \\\"quoted\\\"\"\n") == 0);
	CHECK(strcmp(p.completion_window, "48h") == 0);
	CHECK(p.nmeta == 2 && strcmp(p.meta[0].key, "team") == 0 &&
	      strcmp(p.meta[1].value, "two words \"quoted\"") == 0);
	o = params_json(&p);
	json = o ? cJSON_PrintUnformatted(o) : NULL;
	CHECK(json && strcmp(json, "{\"input_file_id\":\"f1\",\"endpoint\":"
				   "\"/v1/chat/completions\",\"completion_"
				   "window\":\"48h\",\"metadata\":{\"team\":"
				   "\"search\",\"note\":\"two words "
				   "\\\"quoted\\\"\"}}") == 0);
	free(json);
	cJSON_Delete(o);
	CHECK(parse("input_file_id=f metadata.empty=") == 0 &&
	      strcmp(p.meta[0].value, "") == 0);

	/* Refusals name the rule. */
	CHECK(refused("", "input_file_id is required"));
	CHECK(refused("metadata.a=b", "input_file_id is required"));
	CHECK(refused("input_file_id=", "is not a file id"));
	CHECK(refused("input_file_id=../x", "is not a file id"));
	CHECK(refused("input_file_id=a input_file_id=b", "given twice"));
	CHECK(refused("input_file_id=a completion_window=1h", "12h to 7d"));
	CHECK(refused("input_file_id=a completion_window=8d", "12h to 7d"));
	CHECK(refused("input_file_id=a endpoint=chat", "must be an API path"));
	CHECK(
	    refused("input_file_id=a model=x", "unknown parameter \"model\""));
	CHECK(refused("input_file_id=a cancel", "is not key=value"));
	CHECK(refused("input_file_id=a metadata.=x", "1 to 64 characters"));
	CHECK(refused("input_file_id=a metadata.k=1 metadata.k=2",
		      "metadata.k is given twice"));
	CHECK(refused("input_file_id=a metadata.k=\"open", "not closed"));
	CHECK(refused("input_file_id=a completion_window=0012h",
		      "hours or days from 12h to 7d"));
	/* Words that are not UTF-8 could not be sent as JSON text. */
	CHECK(refused("input_file_id=a metadata.k=\xff",
		      "the value of metadata.k is not UTF-8 text"));
	CHECK(refused("input_file_id=a metadata.k=\"a \xc3\"",
		      "the value of metadata.k is not UTF-8 text"));
	CHECK(refused("input_file_id=a metadata.\xed\xa0\x80=v",
		      "a parameter is not UTF-8 text"));
	CHECK(refused("input_file_id=a endpoint=/v1/\xc0\xaf",
		      "the value of endpoint is not UTF-8 text"));
	CHECK(refused("input_file_id=a \xff", "a parameter is not UTF-8"));
	CHECK(parse("input_file_id=a metadata.\xc3\xa9=\xe2\x82\xac") == 0);
	params_free(&p);
	CHECK(params_parse("input_file_id=a\0x", 17, "24h", &p, why,
			   sizeof(why)) == -EINVAL);

	/* 64 characters of key and 512 of value (UTF-8 counts characters),
	 * 16 pairs: in; one more: out. */
	strcpy(text, "input_file_id=f metadata.");
	for (int i = 0; i < 64; i++)
		strcat(text, "\xc3\xa9");
	strcat(text, "=v");
	CHECK(parse(text) == 0);
	strcat(text, " metadata.");
	for (int i = 0; i < 65; i++)
		strcat(text, "k");
	strcat(text, "=v");
	CHECK(refused(text, "1 to 64 characters"));
	strcpy(text, "input_file_id=f metadata.k=");
	for (int i = 0; i < 512; i++)
		strcat(text, "\xc3\xa9");
	CHECK(parse(text) == 0);
	strcat(text, "x");
	CHECK(refused(text, "at most 512 characters"));
	strcpy(text, "input_file_id=f");
	for (int i = 0; i < 16; i++)
		sprintf(text + strlen(text), " metadata.k%d=v", i);
	CHECK(parse(text) == 0 && p.nmeta == 16);
	strcat(text, " metadata.k16=v");
	CHECK(refused(text, "at most 16 metadata pairs"));
	CHECK(p.nmeta == 0 && p.input_file_id == NULL);

	/* Control characters never reach the reason. */
	CHECK(refused("input_file_id=a \x1b[2J=1", "unknown parameter"));
	CHECK(strchr(why, '\x1b') == NULL);
	params_free(&p);
	return check_done("batch_params");
}
