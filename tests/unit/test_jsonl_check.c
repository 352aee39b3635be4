/*
 * test_jsonl_check.c - unit tests of the local check of batch input files:
 * each rule with the line it names, chunked feeding, the cap on problems
 * written down, strict JSON white space and keys, a cut last line, the
 * size reason alone, and repeated ids confirmed by reading back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "idsort.h"
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

/* A file in memory, read back as the check's reader. */
struct mem {
	const char *text;
};

static ssize_t mem_pread(void *ctx, char *buf, size_t len, uint64_t off)
{
	const struct mem *m = ctx;
	size_t size = strlen(m->text);

	if (off >= size)
		return 0;
	if (len > size - off)
		len = size - (size_t)off;
	memcpy(buf, m->text + off, len);
	return (ssize_t)len;
}

static ssize_t failing_pread(void *ctx, char *buf, size_t len, uint64_t off)
{
	(void)ctx, (void)buf, (void)len, (void)off;
	return -EIO;
}

/* Check text as q.jsonl, its size and reader told (read back from m). */
static int sourced(const char *text, struct mem *m, jsonl_pread_fn fn)
{
	struct jsonl_check c;
	size_t len = strlen(text);
	int r;

	jsonl_check_init(&c, "q.jsonl");
	jsonl_check_source(&c, len, fn, m);
	for (size_t i = 0; i < len; i += 5)
		jsonl_check_feed(&c, text + i, len - i < 5 ? len - i : 5);
	r = jsonl_check_end(&c);
	snprintf(report, sizeof(report), "%s", jsonl_check_report(&c));
	jsonl_check_free(&c);
	return r;
}

/* Spill mode: ids to an idsort over a scratch file of at least mem bytes of
 * memory, repeats told back to the check. */
struct spilled {
	struct idsort ids;
	struct jsonl_check *c;
};

static int spill_id(void *ctx, uint64_t hash, uint64_t off, uint64_t line)
{
	return idsort_add(&((struct spilled *)ctx)->ids, hash, off, line);
}

static int spill_same(void *ctx, uint64_t a, uint64_t b)
{
	return jsonl_check_same_id(((struct spilled *)ctx)->c, a, b);
}

static int spill_found(void *ctx, uint64_t line, uint64_t first, uint64_t off)
{
	jsonl_check_repeat(((struct spilled *)ctx)->c, line, first, off);
	return 0;
}

/* Check text as a job's input q.jsonl, claimed to be size bytes. */
static int spilled(const char *text, uint64_t size)
{
	struct jsonl_check c;
	struct spilled sp = {.c = &c};
	struct mem m = {text};
	FILE *f = tmpfile();
	int r;

	jsonl_check_init(&c, "q.jsonl");
	jsonl_check_source(&c, size, mem_pread, &m);
	jsonl_check_spill(&c, spill_id, &sp);
	idsort_init(&sp.ids, fileno(f), 1);
	jsonl_check_feed(&c, text, strlen(text));
	jsonl_check_eof(&c);
	r = idsort_repeats(&sp.ids, spill_same, spill_found, &sp);
	if (r == 0)
		r = jsonl_check_end(&c);
	snprintf(report, sizeof(report), "%s", jsonl_check_report(&c));
	jsonl_check_free(&c);
	idsort_free(&sp.ids);
	fclose(f);
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

	/* Only JSON white space between tokens: NULs of a hole or an
	 * ftruncate, control bytes, raw controls in a string, text after. */
	{
		static const char hole[] = "\0\0" LINE("a", "m");
		static const char nul_mid[] = "{\"custom_id\":\"a\",\0"
					      "\"method\":\"POST\"}\n";

		CHECK(run("q.jsonl", hole, sizeof(hole) - 1, 0) == -EINVAL &&
		      has("q.jsonl:1: byte 0x00 at column 1 is not JSON "
			  "white space"));
		CHECK(
		    run("q.jsonl", nul_mid, sizeof(nul_mid) - 1, 3) ==
			-EINVAL &&
		    has(":1: byte 0x00 at column 18 is not JSON white space"));
	}
	CHECK(check("q.jsonl", "\x01\x02" LINE("a", "m")) == -EINVAL &&
	      has("q.jsonl:1: byte 0x01 at column 1 is not JSON white space"));
	CHECK(check("q.jsonl", LINE("a", "m") "\x0b" LINE("b", "m")) ==
		  -EINVAL &&
	      has("q.jsonl:2: byte 0x0b at column 1"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\tb\"}\n") == -EINVAL &&
	      has(":1: byte 0x09 at column 16 must be escaped in a JSON "
		  "string"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\\\"\x1f\"}\n") == -EINVAL &&
	      has(":1: byte 0x1f at column 18 must be escaped"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\\\\\"}x\n") == -EINVAL &&
	      has(":1: text after the JSON object at column 20"));
	CHECK(check("q.jsonl", "{\"custom_id\":\"a\"}}\n") == -EINVAL &&
	      has(":1: text after the JSON object at column 18"));
	CHECK(check("q.jsonl", " \t{\"custom_id\":\"a\",\"method\":\"POST\","
			       "\"url\" :\r\"/v1/chat/completions\",\"body\":"
			       "{\"model\":\"m\"}} \r\n") == 0);

	/* Strict JSON grammar (read without a tree): what cJSON would take
	 * but JSON is not, is not a JSON object. */
	{
		static const char *const bad[] = {
		    "{\"custom_id\":01}",
		    "{\"custom_id\":1.}",
		    "{\"custom_id\":+1}",
		    "{\"custom_id\":-}",
		    "{\"custom_id\":1e}",
		    "{\"custom_id\":tru}",
		    "{\"custom_id\":\"\\x\"}",
		    "{\"custom_id\":\"\\u12G4\"}",
		    "{\"custom_id\":[1,]}",
		    "{\"custom_id\":1,}",
		    "{\"custom_id\" 1}",
		    "{custom_id:1}",
		    "{\"a\":1",
		    "{\"a\":[1}",
		    "{\"a\":\"\\ud800\"}",
		    "{\"a\":\"\\udc00\"}",
		    "{\"a\":\"\\ud800\\u0041\"}",
		};
		char deep[2100] = "{\"a\":";

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[128];

			snprintf(text, sizeof(text), "%s\n", bad[i]);
			CHECK(check("q.jsonl", text) == -EINVAL &&
			      has("q.jsonl:1: not a JSON object"));
		}
		for (int i = 0; i < 1000; i++)
			strcat(deep, "[");
		strcat(deep, "\n");
		CHECK(check("q.jsonl", deep) == -EINVAL &&
		      has("q.jsonl:1: not a JSON object"));
	}
	CHECK(check("q.jsonl",
		    "{\"custom_id\":\"a\\u00e9\\n\\/\","
		    "\"method\":\"POST\",\"url\":\"/v1/chat/"
		    "completions\",\"x\":[-0.5e+3,1E2,true,false,"
		    "null,{},[],\"\\ud83d\\ude00\"],\"body\":{\"model\":"
		    "\"m\"}}\n") == 0);
	/* Members found by their decoded names, wherever they stand. */
	CHECK(check("q.jsonl",
		    "{\"body\":{\"x\":{\"model\":1},\"mod\\u0065l\":"
		    "\"m\"},\"ur\\u006c\":\"/v1/chat/completions\","
		    "\"method\":\"POST\",\"custom_id\":\"a\"}\n") == 0);

	/* A key twice in any object; the same key in two objects is fine. */
	CHECK(check("q.jsonl",
		    "{\"custom_id\":\"a\",\"custom_id\":\"b\",\"method\":"
		    "\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
		    "{\"model\":\"m\"}}\n" LINE("b", "m")) == -EINVAL &&
	      has("q.jsonl:1: key \"custom_id\" twice in one object") &&
	      !strstr(report, ":2:"));
	CHECK(
	    check("q.jsonl",
		  "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":"
		  "\"/v1/chat/completions\",\"body\":{\"model\":\"m\","
		  "\"messages\":[{\"role\":\"user\",\"r\\u006fle\":1}]}}\n") ==
		-EINVAL &&
	    has(":1: key \"role\" twice in one object"));
	CHECK(check("q.jsonl",
		    "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":"
		    "\"/v1/chat/completions\",\"body\":{\"model\":\"m\","
		    "\"messages\":[{\"role\":\"a\"},{\"role\":\"b\"}]}}\n") ==
	      0);
	/* Of several keys twice, the first in the line to repeat one. */
	for (int k = 0; k < 6; k++) {
		static const char *const keys[] = {"a",	 "b", "zz",
						   "k9", "q", "x"};
		char line[256];

		snprintf(line, sizeof(line),
			 "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":"
			 "\"/v1/chat/completions\",\"body\":{\"model\":"
			 "\"m\",\"%s\":1,\"y\":1,\"y\":2,\"%s\":2}}\n",
			 keys[k], keys[k]);
		CHECK(check("q.jsonl", line) == -EINVAL &&
		      has(":1: key \"y\" twice in one object"));
	}

	/* A last line cut short says so; a whole one without newline is
	 * fine (above). */
	CHECK(check("q.jsonl", LINE("a", "m") "{\"custom_id\":\"b\",\"me") ==
		  -EINVAL &&
	      has("q.jsonl:2: the file ends inside this line: no newline "
		  "after it and not a whole JSON object (cut short?)"));
	CHECK(check("q.jsonl", LINE("a", "m") "{\"custom_id\":\"b\",\"me\n") ==
		  -EINVAL &&
	      has("q.jsonl:2: not a JSON object"));

	/* Past the size limit, the size is the only reason: no false JSON
	 * error where the limit cut a line. */
	huge = malloc(big);
	CHECK(huge != NULL);
	if (huge) {
		memset(huge, 'x', big);
		for (size_t i = 99; i < big; i += 100)
			huge[i] = '\n';
		CHECK(run("q.jsonl", huge, big, 65536) == -EINVAL &&
		      has("q.jsonl: larger than the API's limit of 100 MiB") &&
		      !strstr(report, "JSON") && !strstr(report, "more"));
		free(huge);
	}
	{
		struct jsonl_check c;

		jsonl_check_init(&c, "q.jsonl");
		jsonl_check_source(&c, 100ULL << 30, NULL, NULL);
		CHECK(jsonl_check_end(&c) == -EINVAL &&
		      strcmp(jsonl_check_report(&c),
			     "q.jsonl: larger than the API's limit of 100 "
			     "MiB\n") == 0);
		jsonl_check_free(&c);
	}

	/* A repeated id's hash is confirmed by reading the earlier line
	 * back; a reader that says otherwise (a collision) is believed, and
	 * one that fails fails the check. */
	{
		const char *text =
		    LINE("q-1", "m") LINE("q-2", "m") LINE("q-1", "m");
		struct mem other = {LINE("zz", "m")};

		CHECK(sourced(text, &(struct mem){text}, mem_pread) ==
			  -EINVAL &&
		      has("q.jsonl:3: custom_id \"q-1\" repeats line 1"));
		CHECK(sourced(text, &other, mem_pread) == 0);
		CHECK(sourced(text, &other, failing_pread) == -EIO);
	}
	/* Told the size, the table holds what valid requests fit; more ids
	 * (lines too short to be requests) are refused, not kept. */
	{
		char *many = malloc(300000);
		size_t len = 0;

		CHECK(many != NULL);
		for (int i = 0; many && i < 10000; i++)
			len += (size_t)sprintf(
			    many + len, "{\"custom_id\":\"%d\"}\n", i % 9000);
		if (many) {
			CHECK(sourced(many, &(struct mem){many}, mem_pread) ==
				  -EINVAL &&
			      has(":1: method must be"));
			free(many);
		}
	}
	/* A job's input: no size limit, repeats found by the spill (also
	 * the id of a last line without its newline), the others as ever. */
	CHECK(spilled(good, 200ULL << 20) == 0 && !report[0]);
	CHECK(spilled(LINE("a", "k") LINE("b", "k") LINE("a", "k")
			  LINE("b", "x") "{\"custom_id\":\"b\"}",
		      1ULL << 40) == -EINVAL);
	CHECK(has("q.jsonl:3: custom_id \"a\" repeats line 1"));
	CHECK(has("q.jsonl:4: custom_id \"b\" repeats line 2"));
	CHECK(has("q.jsonl:5: custom_id \"b\" repeats line 2"));
	CHECK(has("q.jsonl:4: model \"x\" differs"));
	CHECK(!strstr(report, "larger than"));
	return check_done("jsonl_check");
}
