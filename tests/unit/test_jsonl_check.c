/*
 * test_jsonl_check.c - unit tests of the local check of batch input files:
 * each rule with the line it names, chunked feeding, the cap on problems
 * written down.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsonl_check.h"

#define LINE(id, model)                                                        \
	"{\"custom_id\":\"" id "\",\"method\":\"POST\",\"url\":"               \
	"\"/v1/chat/completions\",\"body\":{\"model\":\"" model                \
	"\",\"messages\":[]}}\n"

static char report[4096];

/* Check text as file name, fed in chunks of step bytes (0: at once). */
static int run(const char *name, const char *text, size_t len, size_t step)
{
	struct jsonl_check c;
	int r;

	jsonl_check_init(&c, name);
	if (!step)
		step = len ? len : 1;
	for (size_t i = 0; i < len; i += step)
		jsonl_check_feed(&c, text + i, len - i < step ? len - i : step);
	r = jsonl_check_end(&c);
	snprintf(report, sizeof(report), "%s", jsonl_check_report(&c));
	jsonl_check_free(&c);
	return r;
}

static int check(const char *name, const char *text)
{
	return run(name, text, strlen(text), 0);
}

static int has(const char *s)
{
	if (strstr(report, s))
		return 1;
	fprintf(stderr, "report lacks \"%s\":\n%s", s, report);
	return 0;
}

int main(void)
{
	const char *good = LINE("q-1", "kimi") LINE("q-2", "kimi");
	size_t big = JSONL_MAX_BYTES + 10;
	char *huge;

	/* Good files, whole or fed a byte at a time. */
	CHECK(check("q.jsonl", good) == 0 && report[0] == '\0');
	CHECK(run("q.jsonl", good, strlen(good), 1) == 0);
	CHECK(run("q.jsonl", good, strlen(good), 7) == 0);
	CHECK(check("dir/q.jsonl", LINE("a", "m")) == 0);
	/* A blank last line, and a last line without newline. */
	CHECK(check("q.jsonl", LINE("a", "m") "\n") == 0);
	CHECK(check("q.jsonl", LINE("a", "m") "  \r\n\n") == 0);
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\",\"method\":\"POST\","
			       "\"url\":\"/v1/chat/completions\","
			       "\"body\":{\"model\":\"m\"}}") == 0);

	/* The name, emptiness, size. */
	CHECK(check("q.json", good) == -EINVAL &&
	      has("q.json: the name must end in .jsonl"));
	CHECK(check(".jsonl", good) == -EINVAL);
	CHECK(check("q.jsonl", "") == -EINVAL &&
	      has("q.jsonl: the file is empty"));
	CHECK(check("q.jsonl", "\n\n") == -EINVAL &&
	      has("holds no request lines"));
	huge = malloc(big);
	CHECK(huge != NULL);
	if (huge) {
		memset(huge, ' ', big);
		CHECK(run("q.jsonl", huge, big, 1 << 20) == -EINVAL &&
		      has("limit of 100 MiB"));
		free(huge);
	}

	/* Each rule of a line names its line. */
	CHECK(check("q.jsonl", LINE("a", "m") "not json\n") == -EINVAL &&
	      has("q.jsonl:2: not a JSON object"));
	CHECK(check("q.jsonl", "[1]\n") == -EINVAL &&
	      has("q.jsonl:1: not a JSON object"));
	CHECK(check("q.jsonl", LINE("a", "m") "\xff\xfe\n") == -EINVAL &&
	      has("q.jsonl:2: not UTF-8 text"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"\xed\xa0\x80\"}\n") ==
		  -EINVAL &&
	      has(":1: not UTF-8"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"\xc0\xaf\"}\n") == -EINVAL &&
	      has(":1: not UTF-8"));
	CHECK(check("q.jsonl",
		    "{\"method\":\"POST\",\"url\":\"/v1/chat/"
		    "completions\",\"body\":{\"model\":\"m\"}}\n") == -EINVAL &&
	      has("q.jsonl:1: custom_id must be a non-empty string"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"\",\"method\":\"POST\"}\n") ==
		  -EINVAL &&
	      has(":1: custom_id must be a non-empty string"));
	CHECK(check("q.jsonl", "{\"custom_id\":7}\n") == -EINVAL &&
	      has(":1: custom_id must be"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\\u0000b\"}\n") == -EINVAL &&
	      has(":1: custom_id must be"));
	CHECK(check("q.jsonl", LINE("q-17", "m") LINE("x", "m")
				   LINE("q-17", "m")) == -EINVAL &&
	      has("q.jsonl:3: custom_id \"q-17\" repeats line 1"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\",\"method\":\"GET\","
			       "\"url\":\"/v1/chat/completions\","
			       "\"body\":{\"model\":\"m\"}}\n") == -EINVAL &&
	      has(":1: method must be \"POST\""));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\",\"method\":\"POST\","
			       "\"url\":\"/v1/embeddings\","
			       "\"body\":{\"model\":\"m\"}}\n") == -EINVAL &&
	      has(":1: url must be \"/v1/chat/completions\""));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\",\"method\":\"POST\","
			       "\"url\":\"/v1/chat/completions\","
			       "\"body\":\"hi\"}\n") == -EINVAL &&
	      has(":1: body must be an object"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\",\"method\":\"POST\","
			       "\"url\":\"/v1/chat/completions\","
			       "\"body\":{\"model\":1}}\n") == -EINVAL &&
	      has(":1: body.model must be a string"));
	CHECK(check("q.jsonl", LINE("a", "m1") LINE("b", "m2")) == -EINVAL &&
	      has("q.jsonl:2: model \"m2\" differs from \"m1\" of line 1"));
	CHECK(check("q.jsonl", LINE("a", "m") "\n" LINE("b", "m")) == -EINVAL &&
	      has("q.jsonl:2: empty line"));

	/* Control characters never reach the report; ten problems at most
	 * are written, then how many more. */
	CHECK(check("q\x1b[31m.json", good) == -EINVAL &&
	      strchr(report, '\x1b') == NULL);
	{
		char many[2048] = "";

		for (int i = 0; i < 15; i++)
			strcat(many, "x\n");
		CHECK(check("q.jsonl", many) == -EINVAL &&
		      has("q.jsonl:10: not a JSON object") &&
		      !strstr(report, "q.jsonl:11:") &&
		      has("q.jsonl: 5 more problems not shown"));
	}
	return check_done("jsonl_check");
}
