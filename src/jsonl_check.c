/*
 * jsonl_check.c - the rules a batch input file must meet before it is
 * uploaded, checked line by line as the file is fed (jsonl_check.h). Each
 * problem names its line and the rule; the first JSONL_MAX_PROBLEMS are
 * written down, the rest counted. Also the rules of its name.
 */
#include "jsonl_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_token.h"
#include "jsonl_scan.h"
#include "util.h"

/*
 * An open-addressing set of the custom_ids met: per id only a 64-bit hash
 * (0: a free slot), where its string token starts in the file and the
 * number of its line: 16 bytes whatever the id's length. Made once at the size
 * the file allows when its size is known (then full means the file holds lines
 * too short to be requests, so it is refused already), else doubled as it
 * fills.
 */
struct seen_slot {
	uint64_t hash;
	uint32_t off;
	uint32_t line;
};

struct jsonl_seen {
	size_t cap; /* slots */
	size_t n;
	size_t max; /* ids kept at most (0: no bound; the table doubles) */
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
	c->max_bytes = JSONL_MAX_BYTES;
	snprintf(c->name, sizeof(c->name), "%s", base ? base + 1 : name);
	util_scrub(c->name);
}

void jsonl_check_spill(struct jsonl_check *c, jsonl_spill_fn spill, void *ctx)
{
	c->spill = spill;
	c->spill_ctx = ctx;
	c->max_bytes = UINT64_MAX;
}

void jsonl_check_source(struct jsonl_check *c, uint64_t size,
			jsonl_pread_fn pread, void *ctx)
{
	c->size = size;
	c->pread = pread;
	c->pread_ctx = ctx;
}

/* util_hash of id, never 0 (a free slot). */
static uint64_t id_hash(const char *id)
{
	uint64_t h = util_hash(id);

	return h ? h : 1;
}

/*
 * The string token that starts at offset off of the file, read back
 * through the reader (up to its closing quote, at most JSONL_MAX_LINE
 * bytes; not the rest of its line) and decoded: a cJSON string to delete,
 * or NULL with c->ioerr or c->oom set when it cannot be read (or the file
 * changed: no string there).
 */
static cJSON *token_at(struct jsonl_check *c, uint64_t off)
{
	char *tok = NULL;
	size_t len = 0, cap = 0, end = 0, nuls;
	int esc = 0;
	cJSON *v = NULL;

	while (!end && len < JSONL_MAX_LINE) {
		ssize_t n;

		if (cap - len < 4096) {
			char *grown = realloc(tok, cap ? 2 * cap : 4096);

			if (!grown) {
				c->oom = 1;
				goto out;
			}
			tok = grown;
			cap = cap ? 2 * cap : 4096;
		}
		n = c->pread(c->pread_ctx, tok + len, cap - len, off + len);
		if (n < 0) {
			c->ioerr = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		/* The closing quote: the first not escaped, past the first. */
		for (size_t i = len ? len : 1; i < len + (size_t)n; i++) {
			if (esc)
				esc = 0;
			else if (tok[i] == '\\')
				esc = 1;
			else if (tok[i] == '"') {
				end = i + 1;
				break;
			}
		}
		len += (size_t)n;
	}
	if (!end)
		goto out; /* the file changed under the check */
	v = json_parse(tok, end, &nuls);
	if (!cJSON_IsString(v)) {
		cJSON_Delete(v);
		v = NULL;
	}
out:
	free(tok);
	return v;
}

/* Whether the custom_id whose token starts at offset off is id: 1 or 0
 * (0 with c->ioerr or c->oom set when it cannot be read). Without a reader
 * the hashes alone decide: 1. */
static int token_is_id(struct jsonl_check *c, uint64_t off, const char *id)
{
	cJSON *v;
	int same;

	if (!c->pread)
		return 1;
	v = token_at(c, off);
	same = v && strcmp(v->valuestring, id) == 0;
	cJSON_Delete(v);
	return same;
}

int jsonl_check_same_id(struct jsonl_check *c, uint64_t a, uint64_t b)
{
	cJSON *x = token_at(c, a), *y = x ? token_at(c, b) : NULL;
	int same = x && y && strcmp(x->valuestring, y->valuestring) == 0;

	cJSON_Delete(x);
	cJSON_Delete(y);
	if (!x || !y)
		return c->oom ? -ENOMEM : c->ioerr ? c->ioerr : -EIO;
	return same;
}

/* Make the table of c's ids (or double it): 0, or -1 out of memory. */
static int seen_grow(struct jsonl_check *c)
{
	struct jsonl_seen *s = c->seen;
	struct seen_slot *slots;
	size_t ncap;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		c->seen = s;
		if (c->size)
			s->max =
			    (size_t)(c->size /
				     (sizeof(JSONL_MIN_REQUEST "\n") - 1)) +
			    1;
	}
	ncap = s->max ? s->max + s->max / 3 + 1 : s->cap ? 2 * s->cap : 64;
	slots = calloc(ncap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < s->cap; i++) {
		size_t h;

		if (!s->slots[i].hash)
			continue;
		h = (size_t)(s->slots[i].hash % ncap);
		while (slots[h].hash)
			h = (h + 1) % ncap;
		slots[h] = s->slots[i];
	}
	free(s->slots);
	s->slots = slots;
	s->cap = ncap;
	return 0;
}

/* The line where id (on the current line, its token at offset at of the
 * line) was first met, or 0 after adding it. */
static size_t seen_add(struct jsonl_check *c, const char *id, size_t at)
{
	struct jsonl_seen *s = c->seen;
	uint64_t hash = id_hash(id);
	size_t h;

	if (!s || (!s->max && 4 * (s->n + 1) > 3 * s->cap)) {
		if (seen_grow(c) < 0) {
			c->oom = 1;
			return 0;
		}
		s = c->seen;
	}
	h = (size_t)(hash % s->cap);
	for (; s->slots[h].hash; h = (h + 1) % s->cap)
		if (s->slots[h].hash == hash &&
		    token_is_id(c, s->slots[h].off, id))
			return s->slots[h].line;
	/* Full: more id lines than valid requests fit in the file, so some
	 * are too short and the file is refused already. Past 4 GiB the
	 * file is over the size limit. */
	if ((s->max && s->n >= s->max) || c->line_off + at > UINT32_MAX ||
	    c->lineno > UINT32_MAX)
		return 0;
	s->slots[h].hash = hash;
	s->slots[h].off = (uint32_t)(c->line_off + at);
	s->slots[h].line = (uint32_t)c->lineno;
	s->n++;
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

/*
 * The first byte of line (len bytes) that JSON does not allow where it
 * stands: a control byte between tokens (JSON white space is space, tab,
 * LF and CR only, where cJSON would skip any byte up to 0x20: NULs of a
 * hole, \x01), a control byte inside a string (it must be escaped), or
 * text after the line's value. 1 with the reason in why, or 0.
 */
static int stray_byte(const char *line, size_t len, char *why, size_t size)
{
	size_t depth = 0;
	int in_str = 0, esc = 0, closed = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char b;

		if (in_str && !esc) {
			i += json_plain_run(line + i, len - i);
			if (i == len)
				break;
		}
		b = (unsigned char)line[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (b == '\\')
				esc = 1;
			else if (b == '"')
				in_str = 0;
			else if (b < 0x20)
				goto in_string;
			continue;
		}
		if (b == ' ' || b == '\t' || b == '\r')
			continue;
		if (b < 0x20)
			goto not_space;
		if (closed)
			goto after;
		if (b == '"')
			in_str = 1;
		else if (b == '{' || b == '[')
			depth++;
		else if ((b == '}' || b == ']') && depth && --depth == 0)
			closed = 1;
		continue;
	in_string:
		snprintf(why, size,
			 "byte 0x%02x at column %zu must be escaped in a "
			 "JSON string",
			 b, i + 1);
		return 1;
	not_space:
		snprintf(why, size,
			 "byte 0x%02x at column %zu is not JSON white space", b,
			 i + 1);
		return 1;
	after:
		snprintf(why, size, "text after the JSON object at column %zu",
			 i + 1);
		return 1;
	}
	return 0;
}

/* The value at span of line, parsed (a scalar, or NULL when absent). */
static cJSON *member_value(const char *line, struct jsonl_span span)
{
	size_t nuls;

	return span.len ? json_parse(line + span.at, span.len, &nuls) : NULL;
}

/* The string of v, or NULL (not a string, or one holding a NUL). */
static const char *string_of(const cJSON *v)
{
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The rules of one request line (len bytes, not blank), read without a
 * tree of the line (jsonl_scan.h): only the members the rules name are
 * parsed. */
static void check_request(struct jsonl_check *c, const char *line, size_t len)
{
	size_t at = c->lineno;
	struct jsonl_scan sc;
	cJSON *vid = NULL, *vmethod = NULL, *vurl = NULL, *vmodel = NULL;
	const char *id, *method, *url, *model;
	char q[80], q2[80], why[128];
	int r;

	if (!util_utf8_valid(line, len)) {
		problem(c, at, "not UTF-8 text");
		return;
	}
	/* A line the strict scan reads holds no stray byte: the stray-byte
	 * pass only names the byte of a line it refuses. */
	r = jsonl_scan(line, len, &sc);
	if (r == -ENOMEM) {
		c->oom = 1;
		return;
	}
	if (r < 0 && stray_byte(line, len, why, sizeof(why))) {
		problem(c, at, "%s", why);
		return;
	}
	if (r < 0) {
		if (c->last)
			problem(c, at,
				"the file ends inside this line: no newline "
				"after it and not a whole JSON object (cut "
				"short?)");
		else
			problem(c, at, "not a JSON object");
		return;
	}
	if (sc.twice.len) {
		char *own;
		size_t tlen;
		const char *key = jsonl_scan_text(line, sc.twice, &own, &tlen);

		if (!key) {
			c->oom = 1;
			return;
		}
		snprintf(q2, sizeof(q2), "%.*s", (int)(tlen > 70 ? 70 : tlen),
			 key);
		quoted(q, sizeof(q), q2);
		problem(c, at, "key %s twice in one object", q);
		free(own);
		return;
	}
	vid = member_value(line, sc.id);
	id = string_of(vid);
	if (!id || !*id) {
		problem(c, at, "custom_id must be a non-empty string");
	} else if (c->spill) {
		int sr = c->spill(c->spill_ctx, id_hash(id),
				  c->line_off + sc.id.at, c->lineno);

		if (sr < 0 && !c->ioerr)
			c->ioerr = sr;
	} else {
		size_t first = seen_add(c, id, sc.id.at);

		quoted(q, sizeof(q), id);
		if (first)
			problem(c, at, "custom_id %s repeats line %zu", q,
				first);
	}
	vmethod = member_value(line, sc.method);
	method = string_of(vmethod);
	if (!method || strcmp(method, "POST") != 0)
		problem(c, at, "method must be \"POST\"");
	vurl = member_value(line, sc.url);
	url = string_of(vurl);
	if (!url || strcmp(url, JSONL_ENDPOINT) != 0)
		problem(c, at, "url must be \"%s\"", JSONL_ENDPOINT);
	vmodel = member_value(line, sc.model);
	model = string_of(vmodel);
	if (!sc.body.len || line[sc.body.at] != '{') {
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
	cJSON_Delete(vid);
	cJSON_Delete(vmethod);
	cJSON_Delete(vurl);
	cJSON_Delete(vmodel);
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
	if (util_grow(&c->buf, &c->bcap, c->blen + n, 4096) < 0) {
		c->oom = 1;
		c->overlong = 1;
		return;
	}
	memcpy(c->buf + c->blen, p, n);
	c->blen += n;
}

void jsonl_check_feed(struct jsonl_check *c, const char *buf, size_t len)
{
	uint64_t before = c->bytes;

	c->bytes += len;
	if (before > c->max_bytes)
		return; /* already refused; nothing more to learn */
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;

		append(c, buf, n);
		if (!nl)
			break;
		end_line(c);
		c->line_off += n + 1 + c->pending;
		c->pending = 0;
		buf += n + 1;
		len -= n + 1;
	}
	c->pending += len; /* of a line not ended yet */
}

/* Forget the problems found so far (a file over the size limit is
 * refused for that alone: its lines were not all read). */
static void forget_problems(struct jsonl_check *c)
{
	free(c->report);
	c->report = NULL;
	c->rlen = 0;
	c->nproblems = 0;
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

/* Whether c is over its size limit (then refused for that alone). */
static int over_limit(const struct jsonl_check *c)
{
	return c->bytes > c->max_bytes || c->size > c->max_bytes;
}

void jsonl_check_eof(struct jsonl_check *c)
{
	if (c->eof)
		return;
	c->eof = 1;
	if (!over_limit(c) && (c->blen || c->overlong)) {
		c->last = 1;
		end_line(c); /* a last line without its newline */
	}
}

void jsonl_check_repeat(struct jsonl_check *c, uint64_t line, uint64_t first,
			uint64_t off)
{
	char q[80];
	cJSON *v = token_at(c, off);

	quoted(q, sizeof(q), v ? v->valuestring : "?");
	cJSON_Delete(v);
	problem(c, (size_t)line, "custom_id %s repeats line %llu", q,
		(unsigned long long)first);
}

int jsonl_check_end(struct jsonl_check *c)
{
	int over = over_limit(c);
	const char *why;

	jsonl_check_eof(c);
	if (over)
		forget_problems(c);
	why = jsonl_name_problem(c->name);
	if (why)
		problem(c, 0, "%s", why);
	if (over)
		problem(c, 0, "larger than the API's limit of %llu MiB",
			(unsigned long long)(c->max_bytes >> 20));
	else if (c->bytes == 0)
		problem(c, 0, "the file is empty");
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
	if (c->ioerr)
		return c->ioerr;
	return c->nproblems ? -EINVAL : 0;
}

const char *jsonl_check_report(const struct jsonl_check *c)
{
	return c->report ? c->report : "";
}

void jsonl_check_free(struct jsonl_check *c)
{
	if (c->seen) {
		free(c->seen->slots);
		free(c->seen);
	}
	free(c->report);
	free(c->model);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}
