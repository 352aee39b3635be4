/*
 * test_results.c - unit tests of the results index: the name rule
 * (escaping, shortening, uniqueness, which names can exist), duplicates,
 * bad lines, usage sums, offsets, and the .json and .txt renderings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "results.h"

static int escapes_to(const char *id, size_t len, const char *want)
{
	char out[RESULTS_NAME_MAX + 1];
	int sh;
	size_t n = results_escape(id, len, 0, out, &sh);

	return n == strlen(want) && strcmp(out, want) == 0 && !sh &&
	       results_name_possible(out, n);
}

static void test_escape(void)
{
	CHECK(escapes_to("task-042", 8, "task-042"));
	CHECK(escapes_to("a/b", 3, "a%2Fb"));
	CHECK(escapes_to("100%", 4, "100%25"));
	CHECK(escapes_to("nul\0x", 5, "nul%00x"));
	CHECK(escapes_to("line\nbreak", 10, "line%0Abreak"));
	CHECK(escapes_to("tab\t", 4, "tab%09"));
	CHECK(escapes_to("del\x7f", 4, "del%7F"));
	CHECK(escapes_to(".", 1, "%2E"));
	CHECK(escapes_to("..", 2, "%2E%2E"));
	CHECK(escapes_to("...", 3, "..."));
	CHECK(escapes_to(".hidden", 7, ".hidden"));
	CHECK(escapes_to("", 0, "%"));
	CHECK(escapes_to("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
			 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	/* Invalid UTF-8: each byte that is not part of a valid character. */
	CHECK(escapes_to("bad\xff", 4, "bad%FF"));
	CHECK(escapes_to("cut\xe2\x82", 5, "cut%E2%82"));
	CHECK(escapes_to("over\xc0\xaf", 6, "over%C0%AF"));
	CHECK(escapes_to("surr\xed\xa0\x80", 7, "surr%ED%A0%80"));
	CHECK(escapes_to("a b:c*?", 7, "a b:c*?"));
}

static void test_possible(void)
{
	CHECK(results_name_possible("task-042", 8));
	CHECK(results_name_possible("%", 1));
	CHECK(!results_name_possible("", 0));
	CHECK(!results_name_possible(".", 1));
	CHECK(!results_name_possible("..", 2));
	CHECK(!results_name_possible("%41", 3)); /* 'A' is never escaped */
	CHECK(!results_name_possible("%2e", 3)); /* upper-case hex only */
	CHECK(!results_name_possible("%2E.", 4));
	CHECK(!results_name_possible("%zz", 3));
	CHECK(!results_name_possible("50%", 3));
	CHECK(!results_name_possible("bad\xff", 4));
	CHECK(!results_name_possible("ctl\x01", 4));

	size_t blen;
	int txt;

	CHECK(results_split("task-042.txt", &blen, &txt) == 0 && blen == 8 &&
	      txt == 1);
	CHECK(results_split("task-042.json", &blen, &txt) == 0 && blen == 8 &&
	      txt == 0);
	CHECK(results_split("%.json", &blen, &txt) == 0 && blen == 1);
	CHECK(results_split(".json", &blen, &txt) < 0);
	CHECK(results_split("task-042", &blen, &txt) < 0);
	CHECK(results_split("task-042.jsonl", &blen, &txt) < 0);
	CHECK(results_split("%41.txt", &blen, &txt) < 0);
}

static void test_shorten(void)
{
	char a[600], b[600], na[RESULTS_NAME_MAX + 1], nb[RESULTS_NAME_MAX + 1];
	char n2[RESULTS_NAME_MAX + 1];
	int sh;
	size_t la, lb;

	memset(a, 'x', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[599] = 'y';
	/* 240 bytes: kept as is; 241: shortened. */
	la = results_escape(a, 240, 0, na, &sh);
	CHECK(la == 240 && !sh);
	la = results_escape(a, 241, 0, na, &sh);
	CHECK(sh && la <= RESULTS_NAME_MAX && la == 222 + 18);
	CHECK(memcmp(na, a, 222) == 0 && na[222] == '%' && na[223] == '~');
	CHECK(results_name_possible(na, la));
	/* Two ids that differ only past the cut: two names. */
	la = results_escape(a, 600, 0, na, &sh);
	lb = results_escape(b, 600, 0, nb, &sh);
	CHECK(la == lb && strcmp(na, nb) != 0);
	/* A salt gives another name for the same id. */
	results_escape(a, 600, 1, n2, &sh);
	CHECK(strcmp(na, n2) != 0 && results_name_possible(n2, strlen(n2)));
	/* Escapes are never cut in the middle: 100 slashes. */
	memset(a, '/', 100);
	la = results_escape(a, 100, 0, na, &sh);
	CHECK(sh && la == 222 - 222 % 3 + 18);
	CHECK(results_name_possible(na, la));
	/* Nor are multi-byte characters: 120 e-acute (240 bytes, kept),
	 * 121 (shortened at a character boundary). */
	for (int i = 0; i < 121; i++)
		memcpy(a + 2 * i, "\xc3\xa9", 2);
	CHECK(results_escape(a, 240, 0, na, &sh) == 240 && !sh);
	la = results_escape(a, 242, 0, na, &sh);
	CHECK(sh && la == 222 + 18 && results_name_possible(na, la));
	/* A shortened name's tail is not a possible plain name. */
	CHECK(!results_name_possible("x%~0123456789abcdef", 19));
}

static const char *name_at(const struct results *r, size_t i)
{
	return results_name(r, &r->e[i]);
}

#define OK_LINE(id, text)                                                      \
	"{\"id\":\"r\",\"custom_id\":" id                                      \
	",\"response\":{\"status_code\":200,"                                  \
	"\"request_id\":\"q\",\"body\":{\"choices\":[{\"message\":{"           \
	"\"role\":\"assistant\",\"content\":" text "}}],\"usage\":{"           \
	"\"prompt_tokens\":12,\"completion_tokens\":8,\"total_tokens\":20}}}," \
	"\"error\":null}"
#define FAIL_LINE(id)                                                          \
	"{\"custom_id\":" id ",\"response\":{\"status_code\":400,\"body\":{"   \
	"\"error\":{\"message\":\"bad\"}}},\"error\":null}"

static void test_index(void)
{
	const char out[] = OK_LINE("\"a\"", "\"first\"") "\n" FAIL_LINE(
	    "\"b\"") "\n"
		     "not json\n"
		     "{\"no\":\"custom_id\"}\n"
		     "{\"custom_id\":5}\n"
		     "[1,2]\n"
		     "\n"
		     "{\"custom_id\":\"junk\"} trailing\n" OK_LINE(
			 "\"nul\\u0000id\"",
			 "\"with \\u0000 nul\"") "\n" OK_LINE("\"a\"",
							      "\"second\"");
	const char err[] = "{\"custom_id\":\"c\",\"response\":null,\"error\":{"
			   "\"code\":\"x\",\"message\":\"m\"}}\n"
			   "\x01\x02\xff\xfe binary\n";
	struct results *r = results_new();
	const struct result *e;
	char *s;
	size_t n;

	CHECK(r != NULL);
	CHECK(results_add(r, RESULTS_OUTPUT, out, sizeof(out) - 1, "out") == 0);
	CHECK(results_add(r, RESULTS_ERROR, err, sizeof(err) - 1, "err") == 0);
	CHECK(r->n == 4);
	CHECK(strcmp(name_at(r, 0), "a") == 0);
	CHECK(strcmp(name_at(r, 1), "b") == 0);
	CHECK(strcmp(name_at(r, 2), "nul%00id") == 0);
	CHECK(strcmp(name_at(r, 3), "c") == 0);
	CHECK(r->bad == 6 && r->dups == 1);
	/* The later "a" (the last line, no newline) replaced the first. */
	e = results_find(r, "a", 1);
	CHECK(e && e->src == RESULTS_OUTPUT && e->has_txt);
	CHECK(e && e->off == (uint64_t)(strrchr(out, '\n') - out + 1) &&
	      e->len == strlen(strrchr(out, '\n') + 1));
	CHECK(results_render_txt(out + e->off, e->len, &s, &n) == 0 && n == 7 &&
	      memcmp(s, "second\n", 7) == 0);
	free(s);
	e = results_find(r, "b", 1);
	CHECK(e && !e->has_txt &&
	      e->off == (uint64_t)(strchr(out, '\n') - out + 1));
	CHECK(e && results_render_txt(out + e->off, e->len, &s, &n) == -ENOENT);
	e = results_find(r, "nul%00id", 8);
	CHECK(e && e->has_txt);
	CHECK(e && results_render_txt(out + e->off, e->len, &s, &n) == 0 &&
	      n == 11 && memcmp(s, "with \0 nul\n", 11) == 0);
	free(s);
	e = results_find(r, "c", 1);
	CHECK(e && e->src == RESULTS_ERROR && e->off == 0 && !e->has_txt);
	CHECK(!results_find(r, "nul", 3));
	CHECK(!results_find(r, "junk", 4));
	/* Usage: the three successful output lines, the replaced one too. */
	CHECK(r->usage[USAGE_PROMPT] == 36 &&
	      r->usage[USAGE_COMPLETION] == 24 && r->usage[USAGE_TOTAL] == 60);
	CHECK(results_bytes(r) > 0);
	results_free(r);
}

static void test_usage_hostile(void)
{
	const char out[] =
	    "{\"custom_id\":\"a\",\"response\":{\"body\":{\"usage\":{"
	    "\"prompt_tokens\":-5,\"completion_tokens\":1.5,"
	    "\"total_tokens\":\"7\"}}}}\n"
	    "{\"custom_id\":\"b\",\"response\":{\"body\":{\"usage\":{"
	    "\"prompt_tokens\":9007199254740992,\"completion_tokens\":1e400,"
	    "\"total_tokens\":3}}}}\n"
	    "{\"custom_id\":\"c\",\"response\":{\"body\":{\"usage\":{"
	    "\"prompt_tokens\":9007199254740992}}}}\n";
	struct results *r = results_new();

	CHECK(results_add(r, RESULTS_OUTPUT, out, sizeof(out) - 1, "out") == 0);
	CHECK(r->n == 3);
	CHECK(r->usage[USAGE_PROMPT] == 2 * 9007199254740992LL);
	CHECK(r->usage[USAGE_COMPLETION] == 0);
	CHECK(r->usage[USAGE_TOTAL] == 3);
	results_free(r);
	/* The error file never counts. */
	r = results_new();
	CHECK(results_add(r, RESULTS_ERROR, out, sizeof(out) - 1, "err") == 0);
	CHECK(r->usage[USAGE_TOTAL] == 0);
	results_free(r);
}

static void test_long_ids(void)
{
	/* Three ids of 300 x's and a distinct last byte, one repeated. */
	char buf[4096], id[301];
	size_t len = 0;
	struct results *r = results_new();

	memset(id, 'x', 300);
	id[300] = '\0';
	for (int i = 0; i < 4; i++) {
		id[299] = (char)('a' + (i % 3));
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"{\"custom_id\":\"%s\"}\n", id);
	}
	CHECK(results_add(r, RESULTS_OUTPUT, buf, len, "out") == 0);
	CHECK(r->n == 3 && r->dups == 1);
	for (size_t i = 0; i < r->n; i++) {
		const char *nm = name_at(r, i);

		CHECK(strlen(nm) == 240 &&
		      results_find(r, nm, 240) == &r->e[i]);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(nm, name_at(r, j)) != 0);
	}
	results_free(r);
}

static void test_many(void)
{
	size_t cap = 50000 * 40, len = 0;
	char *buf = malloc(cap);
	struct results *r = results_new();

	for (int i = 0; i < 50000; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"{\"custom_id\":\"task-%05d\"}\n", i);
	CHECK(results_add(r, RESULTS_OUTPUT, buf, len, "out") == 0);
	CHECK(r->n == 50000 && r->bad == 0);
	CHECK(results_find(r, "task-04242", 10) == &r->e[4242]);
	CHECK(r->e[4242].off ==
	      4242 * strlen("{\"custom_id\":\"task-00000\"}\n"));
	/* Under 100 bytes per entry beyond the name's bytes. */
	CHECK(results_bytes(r) - r->names_cap < 100 * 50000);
	results_free(r);
	free(buf);
}

static void test_render_json(void)
{
	const char line[] =
	    " {\"a\":[1,-2.5e3,{}],\"b\":{\"c\":\"x\\\"\\u0000y\","
	    "\"d\":[]},\"e\":null,\"f\":true} \r";
	const char want[] = "{\n"
			    "  \"a\": [\n"
			    "    1,\n"
			    "    -2.5e3,\n"
			    "    {}\n"
			    "  ],\n"
			    "  \"b\": {\n"
			    "    \"c\": \"x\\\"\\u0000y\",\n"
			    "    \"d\": []\n"
			    "  },\n"
			    "  \"e\": null,\n"
			    "  \"f\": true\n"
			    "}\n";
	char *s;
	size_t n;

	CHECK(results_render_json(line, sizeof(line) - 1, &s, &n) == 0 &&
	      n == sizeof(want) - 1 && memcmp(s, want, n) == 0);
	free(s);
	CHECK(results_render_json("{\"a\":1", 6, &s, &n) == -EIO);
	CHECK(results_render_json("{\"a\":01}", 8, &s, &n) == -EIO);
	CHECK(results_render_json("{\"a\":\"\x01\"}", 9, &s, &n) == -EIO);
	CHECK(results_render_json("{} {}", 5, &s, &n) == -EIO);
	CHECK(results_render_json("{\"a\" 1}", 7, &s, &n) == -EIO);
	CHECK(results_render_json("[1,]", 4, &s, &n) == -EIO);
}

static void test_deep(void)
{
	size_t n = 2000;
	char *deep = malloc(2 * n + 64);
	struct results *r = results_new();
	size_t len = 0;

	len += (size_t)sprintf(deep, "{\"custom_id\":\"d\",\"x\":");
	for (size_t i = 0; i < n; i++)
		deep[len++] = '[';
	for (size_t i = 0; i < n; i++)
		deep[len++] = ']';
	deep[len++] = '}';
	CHECK(results_add(r, RESULTS_OUTPUT, deep, len, "out") == 0);
	CHECK(r->n == 0 && r->bad == 1);
	results_free(r);
	free(deep);
}

/* A line nested deep renders within a bound: as it is past it. */
static void test_pretty_bound(void)
{
	size_t d = 500, len = 0;
	char *line = malloc(4 * d + 64), *s;
	size_t n;

	len += (size_t)sprintf(line, "{\"custom_id\":\"d\",\"x\":");
	for (size_t i = 0; i < d; i++)
		line[len++] = '[';
	line[len++] = '1';
	for (size_t i = 0; i < d; i++)
		line[len++] = ']';
	line[len++] = '}';
	CHECK(results_render_json(line, len, &s, &n) == 0 && n == len + 1 &&
	      memcmp(s, line, len) == 0 && s[len] == '\n');
	free(s);
	/* 20 deep still pretty. */
	len = 0;
	for (size_t i = 0; i < 20; i++)
		line[len++] = '[';
	line[len++] = '1';
	for (size_t i = 0; i < 20; i++)
		line[len++] = ']';
	s = NULL;
	CHECK(results_render_json(line, len, &s, &n) == 0 && n > 2 * len &&
	      s[1] == '\n');
	free(s);
	free(line);
}

/* A lone surrogate escape is valid JSON: in a name its three bytes, each
 * escaped, so two such ids stay apart; in a .txt U+FFFD. */
static void test_lone_surrogate(void)
{
	const char out[] =
	    "{\"custom_id\":\"\\ud800x\",\"response\":{\"status_code\":200,"
	    "\"body\":{\"choices\":[{\"message\":{\"content\":"
	    "\"a\\udc00\\ud800\\ud800b\\ud83d\\ude00\"}}]}}}\n"
	    "{\"custom_id\":\"\\ud801x\"}\n";
	struct results *r = results_new();
	const struct result *e;
	char *s = NULL;
	size_t n;

	CHECK(r &&
	      results_add(r, RESULTS_OUTPUT, out, sizeof(out) - 1, "out") == 0);
	CHECK(r->n == 2 && r->bad == 0);
	CHECK(strcmp(name_at(r, 0), "%ED%A0%80x") == 0);
	CHECK(strcmp(name_at(r, 1), "%ED%A0%81x") == 0);
	e = results_find(r, "%ED%A0%80x", 10);
	CHECK(e && e->has_txt);
	CHECK(e && results_render_txt(out + e->off, e->len, &s, &n) == 0 &&
	      n == 16 &&
	      memcmp(s,
		     "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		     "b\xf0\x9f\x98\x80\n",
		     16) == 0);
	free(s);
	CHECK(results_name_possible("%ED%A0%80x", 10));
	results_free(r);
}

/* Members are found as a JSON parser finds them: a key written with
 * escapes is the same key, the first of two equal keys counts, and members
 * of nested values are not the line's. */
static void test_members(void)
{
	const char out[] =
	    "{\"x\":{\"custom_id\":\"inner\"},\"custom\\u005fid\":\"esc\","
	    "\"custom_id\":\"later\",\"response\":{\"body\":{\"choices\":[{"
	    "\"message\":{\"content\":\"t\"}}]},\"status_code\":201.0}}\n"
	    "{\"custom_id\":\"no\",\"response\":{\"status_code\":200,\"body\":"
	    "{\"choices\":[[],{\"message\":{\"content\":\"t\"}}]}}}\n";
	struct results *r = results_new();

	CHECK(r &&
	      results_add(r, RESULTS_OUTPUT, out, sizeof(out) - 1, "out") == 0);
	CHECK(r->n == 2);
	CHECK(strcmp(name_at(r, 0), "esc") == 0);
	CHECK(r->e[0].has_txt && !r->e[1].has_txt);
	results_free(r);
}

/* A line past RESULTS_LINE_MAX is skipped by its length alone: a file read
 * piece by piece never hands it over. */
static void test_line_bound(void)
{
	const char ok[] = "{\"custom_id\":\"k\"}";
	struct results *r = results_new();
	struct results_pass ps;

	CHECK(r != NULL);
	results_pass_begin(&ps, RESULTS_OUTPUT, "out");
	CHECK(results_add_line(r, &ps, NULL, RESULTS_LINE_MAX + 1, 0) == 0);
	CHECK(results_add_line(r, &ps, ok, sizeof(ok) - 1,
			       RESULTS_LINE_MAX + 2) == 0);
	results_pass_end(&ps);
	CHECK(r->bad == 1 && ps.lineno == 2 && r->n == 1);
	CHECK(r->e[0].off == RESULTS_LINE_MAX + 2 &&
	      r->e[0].len == sizeof(ok) - 1);
	results_free(r);
}

/* A success is a 2xx line of the output file, with an answer or not; a 4xx
 * line, a line with no status, and every line of the error file are not
 * (a job's merge keeps the latest success over any failure). */
static void test_success(void)
{
	const char out[] =
	    "{\"custom_id\":\"a\",\"response\":{\"status_code\":200,"
	    "\"body\":{}}}\n"
	    "{\"custom_id\":\"b\",\"response\":{\"status_code\":404}}\n"
	    "{\"custom_id\":\"c\",\"response\":null}\n"
	    "{\"custom_id\":\"d\",\"response\":{\"status_code\":299.5}}\n";
	const char err[] =
	    "{\"custom_id\":\"e\",\"response\":{\"status_code\":200}}\n";
	struct results *r = results_new();

	CHECK(r &&
	      results_add(r, RESULTS_OUTPUT, out, sizeof(out) - 1, "out") ==
		  0 &&
	      results_add(r, RESULTS_ERROR, err, sizeof(err) - 1, "err") == 0);
	CHECK(r->n == 5);
	CHECK(r->e[0].ok && !r->e[0].has_txt);
	CHECK(!r->e[1].ok && !r->e[2].ok && !r->e[3].ok && !r->e[4].ok);
	results_free(r);
	CHECK(results_usage_index("total_tokens") == USAGE_TOTAL);
	CHECK(results_usage_index("prompt_tokens") == USAGE_PROMPT);
	CHECK(results_usage_index("tokens") == -1);
}

int main(void)
{
	log_init(1, 0);
	test_escape();
	test_possible();
	test_shorten();
	test_index();
	test_usage_hostile();
	test_long_ids();
	test_many();
	test_render_json();
	test_deep();
	test_pretty_bound();
	test_lone_surrogate();
	test_members();
	test_line_bound();
	test_success();
	return check_done("results");
}
