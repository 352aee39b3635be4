/*
 * test_json.c - unit tests of the JSON lexer and pretty-printer: the
 * tokens read strictly and strings decoded, the three layouts, the bounds on
 * nesting and indentation, and batch.json's and file.json's layout checked
 * against what cJSON_Print (tabs as two spaces) writes for the same object.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "json_print.h"
#include "json_token.h"

static size_t end_of(const char *s, unsigned flags)
{
	return json_scalar_end(s, strlen(s), 0, flags);
}

static void test_tokens(void)
{
	CHECK(json_skip_ws(" \t\r\nx", 5, 0) == 4);
	CHECK(json_skip_ws("\v", 1, 0) == 0); /* no JSON white space */
	CHECK(end_of("\"a\\\"b\"x", 0) == 6);
	CHECK(end_of("\"\\u00e9\\n\"", 0) == 10);
	CHECK(end_of("\"\\x\"", 0) == 0);
	CHECK(end_of("\"\\u00g9\"", 0) == 0);
	CHECK(end_of("\"tab\there\"", 0) == 0); /* raw control character */
	CHECK(end_of("\"open", 0) == 0);
	CHECK(end_of("\"\xff\"", 0) == 3); /* bytes as they are */
	/* Surrogates: lone ones are JSON, refused on request. */
	CHECK(end_of("\"\\ud800\"", 0) == 8);
	CHECK(end_of("\"\\ud800\"", JSON_NO_LONE_SURROGATE) == 0);
	CHECK(end_of("\"\\udc00\\ud800\"", JSON_NO_LONE_SURROGATE) == 0);
	CHECK(end_of("\"\\ud83d\\ude00\"", JSON_NO_LONE_SURROGATE) == 14);
	CHECK(end_of("\"\\ud83d\\u0041\"", JSON_NO_LONE_SURROGATE) == 0);
	CHECK(end_of("0", 0) == 1);
	CHECK(end_of("-12.5e+3,", 0) == 8);
	CHECK(end_of("01", 0) == 1);
	CHECK(end_of("-", 0) == 0);
	CHECK(end_of("1.", 0) == 0);
	CHECK(end_of("1e", 0) == 0);
	CHECK(end_of(".5", 0) == 0);
	CHECK(end_of("true", 0) == 4);
	CHECK(end_of("false]", 0) == 5);
	CHECK(end_of("nul", 0) == 0);
	CHECK(end_of("\"\\uFFff\"", 0) == 8);
}

/* json_plain_run, read a word at a time: each byte that ends a run ('"',
 * '\\', a control), at each place of a word and after it; bytes from 0x80
 * up and 0x7f are plain; a run that ends with the text. */
static void test_plain_run(void)
{
	const char stops[] = {'"', '\\', 0x00, 0x01, 0x1f, '\n'};
	char s[40];

	CHECK(json_plain_run("", 0) == 0);
	for (size_t k = 0; k < sizeof(stops); k++)
		for (size_t at = 0; at < 20; at++) {
			memset(s, 'a', sizeof(s));
			s[3] = (char)0x80;
			s[12] = (char)0xff;
			s[13] = 0x7f;
			s[at] = stops[k];
			s[at + 5] = '"';
			CHECK(json_plain_run(s, sizeof(s)) == at);
			CHECK(json_plain_run(s, at) == at);
		}
	memset(s, ' ', sizeof(s));
	CHECK(json_plain_run(s, sizeof(s)) == sizeof(s));
	CHECK(json_string_end("\"0123456789abcdef\\\"01234567\"", 28, 0, 0) ==
	      28);
	CHECK(json_string_end("\"0123456789abcdef\x01\"", 19, 0, 0) == 0);
	CHECK(json_string_end("\"0123456789abcdef", 17, 0, 0) == 0);
}

/* Whether the string token tok decodes (lone) to want (n bytes). */
static int decodes(const char *tok, enum json_lone lone, const char *want,
		   size_t n)
{
	char *d = NULL;
	size_t len = 0;
	int ok = json_string_end(tok, strlen(tok), 0, 0) == strlen(tok) &&
		 json_string_decode(tok, strlen(tok), lone, &d, &len) == 0 &&
		 len == n && memcmp(d, want, n) == 0 && d[n] == '\0';

	free(d);
	return ok;
}

static void test_decode(void)
{
	CHECK(decodes("\"\"", JSON_LONE_KEEP, "", 0));
	CHECK(decodes("\"plain\"", JSON_LONE_KEEP, "plain", 5));
	CHECK(decodes("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", JSON_LONE_KEEP,
		      "\"\\/\b\f\n\r\t", 8));
	CHECK(decodes("\"caf\\u00e9 \\u20AC\"", JSON_LONE_KEEP,
		      "caf\xc3\xa9 \xe2\x82\xac", 9));
	CHECK(decodes("\"\\ud83d\\ude00\"", JSON_LONE_KEEP, "\xf0\x9f\x98\x80",
		      4));
	CHECK(decodes("\"a\\u0000b\"", JSON_LONE_KEEP, "a\0b", 3));
	CHECK(decodes("\"\\ud800\"", JSON_LONE_KEEP, "\xed\xa0\x80", 3));
	CHECK(decodes("\"\\ud800\"", JSON_LONE_FFFD, "\xef\xbf\xbd", 3));
	CHECK(decodes("\"\\udc00\\ud800x\"", JSON_LONE_FFFD,
		      "\xef\xbf\xbd\xef\xbf\xbdx", 7));
}

static const struct json_print lines = {.layout = JSON_LAYOUT_LINES,
					.depth_max = 512};

/* Whether text pretty-prints as want with opt (want NULL: error e). */
static int prints(const struct json_print *opt, const char *text,
		  const char *want, int e)
{
	char *out = NULL;
	size_t n = 0;
	int r = json_pretty(text, strlen(text), opt, &out, &n);
	int ok = want ? r == 0 && n == strlen(want) && strcmp(out, want) == 0
		      : r == e;

	if (!ok && r == 0)
		fprintf(stderr, "printed: [%s]\n", out);
	free(out);
	return ok;
}

static void test_lines(void)
{
	struct json_print small = lines;

	CHECK(prints(&lines, " {\"a\" : [1, 2.50, {}], \"b\":{\"c\":[]}} ",
		     "{\n  \"a\": [\n    1,\n    2.50,\n    {}\n  ],\n"
		     "  \"b\": {\n    \"c\": []\n  }\n}\n",
		     0));
	CHECK(prints(&lines, "\"\\u00e9\"", "\"\\u00e9\"\n", 0));
	CHECK(prints(&lines, "1e5", "1e5\n", 0));
	CHECK(prints(&lines, "", NULL, -EIO));
	CHECK(prints(&lines, "{} {}", NULL, -EIO));
	CHECK(prints(&lines, "{\"a\" 1}", NULL, -EIO));
	CHECK(prints(&lines, "[1,]", NULL, -EIO));
	CHECK(prints(&lines, "[1 2]", NULL, -EIO));
	CHECK(prints(&lines, "{\"a\":1]", NULL, -EIO));
	CHECK(prints(&lines, "{1:1}", NULL, -EIO));
	CHECK(prints(&lines, "\f1", NULL, -EIO));
	small.max = 8;
	CHECK(prints(&small, "[1,2,3]", NULL, -EFBIG));
	CHECK(prints(&small, "[1]", "[\n  1\n]\n", 0));
	CHECK(json_check("[[[]]]", 6, &lines) == 0);
	CHECK(json_check("[[[]]", 5, &lines) == -EIO);
}

static void test_depth(void)
{
	struct json_print opt = lines;
	char deep[1200];

	opt.depth_max = 3;
	CHECK(json_check("[[[1]]]", 7, &opt) == 0);
	CHECK(json_check("[[[[]]]]", 8, &opt) == -EIO);
	opt.depth_max = 5000; /* bounded by JSON_DEPTH_LIMIT all the same */
	memset(deep, '[', 600);
	memset(deep + 600, ']', 600);
	CHECK(json_check(deep, 1200, &opt) == 0);
	opt.depth_max = 512;
	CHECK(json_check(deep, 1200, &opt) == -EIO);
}

/* What batch.json and file.json showed before the token printer:
 * cJSON_Print, leading tabs as two spaces each and the others as one. */
static char *cjson_layout(const char *text)
{
	cJSON *v = cJSON_Parse(text);
	char *raw = v ? cJSON_Print(v) : NULL, *out;
	size_t n = 0;
	int bol = 1;

	cJSON_Delete(v);
	if (!raw)
		return NULL;
	out = malloc(2 * strlen(raw) + 2);
	for (size_t i = 0; out && raw[i]; i++) {
		if (raw[i] == '\t') {
			out[n++] = ' ';
			if (bol)
				out[n++] = ' ';
			continue;
		}
		bol = raw[i] == '\n';
		out[n++] = raw[i];
	}
	if (out) {
		out[n++] = '\n';
		out[n] = '\0';
	}
	cJSON_free(raw);
	return out;
}

/* Whether text (compact, as cJSON prints it) prints as cJSON_Print. */
static int as_cjson(const char *text)
{
	static const struct json_print opt = {.layout = JSON_LAYOUT_CJSON,
					      .depth_max = JSON_DEPTH_LIMIT};
	char *want = cjson_layout(text);
	int ok = want && prints(&opt, text, want, 0);

	if (!ok)
		fprintf(stderr, "cJSON: [%s]\n", want ? want : "?");
	free(want);
	return ok;
}

static void test_cjson(void)
{
	CHECK(as_cjson("{}"));
	CHECK(as_cjson("[]"));
	CHECK(as_cjson("{\"a\":1}"));
	CHECK(as_cjson("{\"a\":{}}"));
	CHECK(as_cjson("{\"a\":[]}"));
	CHECK(as_cjson("{\"a\":[1,2,3],\"b\":\"x\"}"));
	CHECK(as_cjson("{\"a\":[{\"b\":1,\"c\":[{}]},{}],\"d\":{\"e\":null}}"));
	CHECK(as_cjson("[{\"a\":[[{\"b\":true}]]},false]"));
	CHECK(as_cjson("{\"id\":\"batch_1\",\"metadata\":{\"k\":\"v\\n\"},"
		       "\"request_counts\":{\"total\":3,\"completed\":1}}"));
}

static void test_flat(void)
{
	struct json_print opt = {.layout = JSON_LAYOUT_CJSON,
				 .depth_max = JSON_DEPTH_LIMIT};
	/* 9 levels deep: a value inside 9 containers. */
	const char *deep9 = "{\"a\":[[[[[[[[1]]]]]]]]}";
	const char *deep8 = "{\"a\":[[[[[[[1]]]]]]]}";

	opt.flat_depth = 8;
	CHECK(json_print_flat(deep9, strlen(deep9), &opt) == 1);
	CHECK(json_print_flat(deep8, strlen(deep8), &opt) == 0);
	CHECK(prints(&opt, deep9, "{\"a\":[[[[[[[[1]]]]]]]]}\n", 0));
	CHECK(json_print_flat("{", 1, &opt) == -EIO);
	/* The mean: one member indented 1 level, the closing brace 0, and
	 * an object 20 deep adds 20 lines of about 10 levels. */
	opt.flat_depth = 0;
	opt.flat_mean = 8;
	CHECK(json_print_flat(deep9, strlen(deep9), &opt) == 0);
	{
		char t[400] = "";

		for (int i = 0; i < 20; i++)
			strcat(t, "{\"k\":");
		strcat(t, "1");
		for (int i = 0; i < 20; i++)
			strcat(t, "}");
		CHECK(json_print_flat(t, strlen(t), &opt) == 1);
		opt.flat_mean = 0;
		CHECK(json_print_flat(t, strlen(t), &opt) == 0);
	}
}

int main(void)
{
	test_tokens();
	test_plain_run();
	test_decode();
	test_lines();
	test_depth();
	test_cjson();
	test_flat();
	return check_done("json");
}
