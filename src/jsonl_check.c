/*
 * jsonl_check.c - the rules a batch input file must meet before it is
 * uploaded, checked line by line as the file is fed (jsonl_check.h). Each
 * problem names its line and the rule; the first JSONL_MAX_PROBLEMS are
 * written down, the rest counted. Also the rules of its name.
 */
#include "jsonl_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* An open-addressing set of the custom_ids met, with their line. */
struct seen_slot {
	char *id;
	size_t line;
};

struct jsonl_seen {
	size_t cap; /* a power of two */
	size_t n;
	struct seen_slot *slots;
};

/* Append "name:line: msg" (or "name: msg" for line 0) to the report. */
static void report_line(struct jsonl_check *c, size_t line, char *msg)
{
	char head[300];
	size_t hl, ml;
	char *grown;

	util_scrub(msg);
	if (line)
		snprintf(head, sizeof(head), "%s:%zu: ", c->name, line);
	else
		snprintf(head, sizeof(head), "%s: ", c->name);
	hl = strlen(head);
	ml = strlen(msg);
	grown = realloc(c->report, c->rlen + hl + ml + 2);
	if (!grown) {
		c->oom = 1;
		return;
	}
	c->report = grown;
	memcpy(c->report + c->rlen, head, hl);
	memcpy(c->report + c->rlen + hl, msg, ml);
	c->rlen += hl + ml;
	c->report[c->rlen++] = '\n';
	c->report[c->rlen] = '\0';
}

static void problem(struct jsonl_check *c, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Count a problem; the first JSONL_MAX_PROBLEMS are written down. */
static void problem(struct jsonl_check *c, size_t line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (++c->nproblems > JSONL_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report_line(c, line, msg);
}

void jsonl_check_init(struct jsonl_check *c, const char *name)
{
	const char *base = strrchr(name, '/');

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", base ? base + 1 : name);
	util_scrub(c->name);
}

/* The line where id was first met, or 0 after adding it at line. */
static size_t seen_add(struct jsonl_check *c, const char *id, size_t line)
{
	struct jsonl_seen *s = c->seen;
	size_t h;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			goto oom;
		c->seen = s;
	}
	if (2 * (s->n + 1) > s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 64;
		struct seen_slot *slots = calloc(ncap, sizeof(*slots));

		if (!slots)
			goto oom;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slots[i].id)
				continue;
			h = util_hash(s->slots[i].id) & (ncap - 1);
			while (slots[h].id)
				h = (h + 1) & (ncap - 1);
			slots[h] = s->slots[i];
		}
		free(s->slots);
		s->slots = slots;
		s->cap = ncap;
	}
	h = util_hash(id) & (s->cap - 1);
	for (; s->slots[h].id; h = (h + 1) & (s->cap - 1))
		if (strcmp(s->slots[h].id, id) == 0)
			return s->slots[h].line;
	s->slots[h].id = strdup(id);
	if (!s->slots[h].id)
		goto oom;
	s->slots[h].line = line;
	s->n++;
	return 0;
oom:
	c->oom = 1;
	return 0;
}

/* A string shown in a reason: quoted, at most 64 bytes of it. */
static void quoted(char *out, size_t size, const char *s)
{
	size_t len = strlen(s);

	if (len > 64)
		snprintf(out, size, "\"%.64s...\"", s);
	else
		snprintf(out, size, "\"%s\"", s);
}

static const char *string_member(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The rules of one request line (len bytes, not blank). */
static void check_request(struct jsonl_check *c, const char *line, size_t len)
{
	size_t at = c->lineno;
	cJSON *req;
	const cJSON *body;
	const char *id, *method, *url, *model;
	size_t nuls;
	char q[80], q2[80];

	if (!util_utf8_valid(line, len)) {
		problem(c, at, "not UTF-8 text");
		return;
	}
	req = json_parse(line, len, &nuls);
	if (!cJSON_IsObject(req)) {
		problem(c, at, "not a JSON object");
		cJSON_Delete(req);
		return;
	}
	id = string_member(req, "custom_id");
	if (!id || !*id) {
		problem(c, at, "custom_id must be a non-empty string");
	} else {
		size_t first = seen_add(c, id, at);

		quoted(q, sizeof(q), id);
		if (first)
			problem(c, at, "custom_id %s repeats line %zu", q,
				first);
	}
	method = string_member(req, "method");
	if (!method || strcmp(method, "POST") != 0)
		problem(c, at, "method must be \"POST\"");
	url = string_member(req, "url");
	if (!url || strcmp(url, JSONL_ENDPOINT) != 0)
		problem(c, at, "url must be \"%s\"", JSONL_ENDPOINT);
	body = cJSON_GetObjectItemCaseSensitive(req, "body");
	model = cJSON_IsObject(body) ? string_member(body, "model") : NULL;
	if (!cJSON_IsObject(body)) {
		problem(c, at, "body must be an object");
	} else if (!model) {
		problem(c, at, "body.model must be a string");
	} else if (!c->model) {
		c->model = strdup(model);
		c->model_line = at;
		if (!c->model)
			c->oom = 1;
	} else if (strcmp(model, c->model) != 0) {
		quoted(q, sizeof(q), model);
		quoted(q2, sizeof(q2), c->model);
		problem(c, at, "model %s differs from %s of line %zu", q, q2,
			c->model_line);
	}
	cJSON_Delete(req);
}

static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

/* One whole line (without its newline) has been fed. */
static void end_line(struct jsonl_check *c)
{
	c->lineno++;
	if (c->overlong) {
		problem(c, c->lineno, "line longer than %lu MiB",
			JSONL_MAX_LINE >> 20);
	} else if (blank(c->buf, c->blen)) {
		if (!c->blank_at)
			c->blank_at = c->lineno;
	} else {
		if (c->blank_at)
			problem(c, c->blank_at, "empty line");
		c->blank_at = 0;
		c->requests++;
		check_request(c, c->buf, c->blen);
	}
	c->blen = 0;
	c->overlong = 0;
}

static void append(struct jsonl_check *c, const char *p, size_t n)
{
	if (c->overlong || n == 0)
		return; /* n == 0: buf may be NULL (an empty first line) */
	if (c->blen + n > JSONL_MAX_LINE) {
		c->overlong = 1;
		return;
	}
	if (c->blen + n > c->bcap) {
		size_t ncap = c->bcap ? c->bcap : 4096;
		char *grown;

		while (ncap < c->blen + n)
			ncap *= 2;
		grown = realloc(c->buf, ncap);
		if (!grown) {
			c->oom = 1;
			c->overlong = 1;
			return;
		}
		c->buf = grown;
		c->bcap = ncap;
	}
	memcpy(c->buf + c->blen, p, n);
	c->blen += n;
}

void jsonl_check_feed(struct jsonl_check *c, const char *buf, size_t len)
{
	size_t before = c->bytes;

	c->bytes += len;
	if (before > JSONL_MAX_BYTES)
		return; /* already refused; nothing more to learn */
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;

		append(c, buf, n);
		if (!nl)
			break;
		end_line(c);
		buf += n + 1;
		len -= n + 1;
	}
}

/* ------------------------------------------------------------------ */
/* The name */

#define NAME_EXT ".jsonl"

/* White space (Unicode White_Space, in UTF-8; tab and the other ASCII
 * controls are refused as controls) a server may trim off a name. */
static const char *const leading_space[] = {
    " ",
    "\xc2\x85",
    "\xc2\xa0",
    "\xe1\x9a\x80",
    "\xe2\x80\x80",
    "\xe2\x80\x81",
    "\xe2\x80\x82",
    "\xe2\x80\x83",
    "\xe2\x80\x84",
    "\xe2\x80\x85",
    "\xe2\x80\x86",
    "\xe2\x80\x87",
    "\xe2\x80\x88",
    "\xe2\x80\x89",
    "\xe2\x80\x8a",
    "\xe2\x80\xa8",
    "\xe2\x80\xa9",
    "\xe2\x80\xaf",
    "\xe2\x81\x9f",
    "\xe3\x80\x80",
};

static int has_control(const char *name)
{
	for (; *name; name++)
		if ((unsigned char)*name < 0x20 || *name == 0x7f)
			return 1;
	return 0;
}

static int not_utf8(const char *name)
{
	return !util_utf8_valid(name, strlen(name));
}

static int has_escaped(const char *name)
{
	return strpbrk(name, "\"\\") != NULL;
}

static int starts_with_space(const char *name)
{
	for (size_t i = 0; i < sizeof(leading_space) / sizeof(leading_space[0]);
	     i++)
		if (strncmp(name, leading_space[i], strlen(leading_space[i])) ==
		    0)
			return 1;
	return 0;
}

static int wrong_ext(const char *name)
{
	size_t n = strlen(name), e = strlen(NAME_EXT);

	return n < e || strcmp(name + n - e, NAME_EXT) != 0;
}

static int no_stem(const char *name)
{
	return strcmp(name, NAME_EXT) == 0;
}

static int too_long(const char *name)
{
	return strlen(name) > 255;
}

/* The rules of a name, in the order they are told. */
static const struct {
	int (*breaks)(const char *name);
	const char *why;
} name_rules[] = {
    {has_control, "the name holds a control character (CR, LF, tab...)"},
    {not_utf8, "the name is not UTF-8 text"},
    {has_escaped, "the name holds \" or \\, which an upload would send "
		  "altered"},
    {starts_with_space, "the name starts with white space, which the "
			"server would trim"},
    {wrong_ext, "the name must end in " NAME_EXT},
    {no_stem, "the name needs a stem before " NAME_EXT},
    {too_long, "the name is longer than 255 bytes"},
};

const char *jsonl_name_problem(const char *name)
{
	for (size_t i = 0; i < sizeof(name_rules) / sizeof(name_rules[0]); i++)
		if (name_rules[i].breaks(name))
			return name_rules[i].why;
	return NULL;
}

int jsonl_check_end(struct jsonl_check *c)
{
	const char *why;

	if (c->blen || c->overlong)
		end_line(c); /* a last line without its newline */
	why = jsonl_name_problem(c->name);
	if (why)
		problem(c, 0, "%s", why);
	if (c->bytes == 0)
		problem(c, 0, "the file is empty");
	else if (c->bytes > JSONL_MAX_BYTES)
		problem(c, 0, "larger than the API's limit of %lu MiB",
			JSONL_MAX_BYTES >> 20);
	else if (c->requests == 0)
		problem(c, 0, "holds no request lines");
	if (c->nproblems > JSONL_MAX_PROBLEMS) {
		char more[64];

		snprintf(more, sizeof(more), "%zu more problems not shown",
			 c->nproblems - JSONL_MAX_PROBLEMS);
		report_line(c, 0, more);
	}
	if (c->oom)
		return -ENOMEM;
	return c->nproblems ? -EINVAL : 0;
}

const char *jsonl_check_report(const struct jsonl_check *c)
{
	return c->report ? c->report : "";
}

void jsonl_check_free(struct jsonl_check *c)
{
	if (c->seen) {
		for (size_t i = 0; i < c->seen->cap; i++)
			free(c->seen->slots[i].id);
		free(c->seen->slots);
		free(c->seen);
	}
	free(c->report);
	free(c->model);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}
