/*
 * results.c - the index of a batch's results (see results.h): one pass over
 * the JSONL content of its output and error files, the name rule for
 * custom_ids, and the rendering of one result line as .json and .txt.
 */
#include "results.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "log.h"
#include "util.h"

const char *const results_usage_names[USAGE_N] = {
    "prompt_tokens", "completion_tokens", "total_tokens"};

#define LINE_DEPTH_MAX 512 /* deeper lines are refused (cJSON allows 1000) */
#define SHORT_PREFIX   222 /* bytes kept of a shortened name: + %~ + 16 */

int results_usage_index(const char *name)
{
	for (int i = 0; i < USAGE_N; i++)
		if (strcmp(name, results_usage_names[i]) == 0)
			return i;
	return -1;
}

/* ---- names ------------------------------------------------------------ */

static const char hexdigits[] = "0123456789ABCDEF";

/*
 * The escaped form of the unit at p (n bytes left) into u (at most 4
 * bytes): a whole valid UTF-8 character that needs no escape, or one byte
 * as %XX. Returns the bytes of u; *used the bytes of p it stands for.
 */
static size_t escape_unit(const unsigned char *p, size_t n, char *u,
			  size_t *used)
{
	size_t k = util_utf8_len((const char *)p, n);

	if (k == 1 &&
	    (p[0] < 0x20 || p[0] == 0x7f || p[0] == '%' || p[0] == '/'))
		k = 0;
	if (k == 0) {
		u[0] = '%';
		u[1] = hexdigits[p[0] >> 4];
		u[2] = hexdigits[p[0] & 15];
		*used = 1;
		return 3;
	}
	memcpy(u, p, k);
	*used = k;
	return k;
}

size_t results_escape(const char *id, size_t len, unsigned salt, char *out,
		      int *shortened)
{
	const unsigned char *p = (const unsigned char *)id;
	size_t o = 0, i = 0, cut = 0;

	*shortened = 0;
	if (len == 0 || (len == 1 && id[0] == '.') ||
	    (len == 2 && id[0] == '.' && id[1] == '.')) {
		strcpy(out, len == 0 ? "%" : len == 1 ? "%2E" : "%2E%2E");
		return strlen(out);
	}
	while (i < len) {
		char u[4];
		size_t used, k = escape_unit(p + i, len - i, u, &used);

		if (o + k > RESULTS_NAME_MAX) {
			*shortened = 1;
			break;
		}
		memcpy(out + o, u, k);
		o += k;
		if (o <= SHORT_PREFIX)
			cut = o;
		i += used;
	}
	if (*shortened) {
		uint64_t h = util_hash_bytes(p, len, UTIL_HASH_SEED);

		for (unsigned s = 0; s < salt; s++) {
			unsigned char b = (unsigned char)(s + 1);

			h = util_hash_bytes(&b, 1, h);
		}
		o = cut;
		o += (size_t)snprintf(out + o, RESULTS_NAME_MAX + 1 - o,
				      "%%~%016llx", (unsigned long long)h);
	}
	out[o] = '\0';
	return o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Whether s (n bytes) is exactly what escaping its decoded bytes gives,
 * with no special case of whole names: the units of a name. */
static int units_roundtrip(const char *s, size_t n)
{
	unsigned char dec[RESULTS_NAME_MAX];
	size_t d = 0, o = 0;

	for (size_t i = 0; i < n; d++) {
		if (s[i] == '%') {
			int a, b;

			if (i + 2 >= n)
				return 0;
			a = hexval(s[i + 1]);
			b = hexval(s[i + 2]);
			if (a < 0 || b < 0)
				return 0;
			dec[d] = (unsigned char)(a * 16 + b);
			i += 3;
		} else {
			dec[d] = (unsigned char)s[i++];
		}
	}
	for (size_t i = 0; i < d;) {
		char u[4];
		size_t used, k = escape_unit(dec + i, d - i, u, &used);

		if (o + k > n || memcmp(s + o, u, k) != 0)
			return 0;
		o += k;
		i += used;
	}
	return o == n;
}

int results_name_possible(const char *base, size_t blen)
{
	static const char lowhex[] = "0123456789abcdef";

	if (blen == 0 || blen > RESULTS_NAME_MAX)
		return 0;
	if ((blen == 1 && base[0] == '%') ||
	    (blen == 3 && memcmp(base, "%2E", 3) == 0) ||
	    (blen == 6 && memcmp(base, "%2E%2E", 6) == 0))
		return 1;
	if ((blen == 1 && base[0] == '.') ||
	    (blen == 2 && memcmp(base, "..", 2) == 0))
		return 0;
	if (blen >= 18 && base[blen - 18] == '%' && base[blen - 17] == '~') {
		for (size_t i = blen - 16; i < blen; i++)
			if (!memchr(lowhex, base[i], 16))
				return 0;
		return blen - 18 <= SHORT_PREFIX &&
		       blen - 18 > SHORT_PREFIX - 4 &&
		       units_roundtrip(base, blen - 18);
	}
	return units_roundtrip(base, blen);
}

int results_split(const char *name, size_t *blen, int *txt)
{
	size_t n = strlen(name);

	if (n > 5 && strcmp(name + n - 5, ".json") == 0) {
		*blen = n - 5;
		*txt = 0;
	} else if (n > 4 && strcmp(name + n - 4, ".txt") == 0) {
		*blen = n - 4;
		*txt = 1;
	} else {
		return -ENOENT;
	}
	return results_name_possible(name, *blen) ? 0 : -ENOENT;
}

/* ---- JSON text: checking and pretty-printing -------------------------- */

/* A line is JSON as RFC 8259 has it (lone surrogate escapes included),
 * nested at most LINE_DEPTH_MAX deep; .json shows it re-indented, every
 * item on a line of its own, within RESULTS_PRETTY_MAX bytes. */
static const struct json_print line_json = {.layout = JSON_LAYOUT_LINES,
					    .depth_max = LINE_DEPTH_MAX};

int results_render_json(const char *line, size_t len, char **out,
			size_t *outlen)
{
	struct json_print opt = line_json;
	int r;

	opt.max = 8 * len + 4096;
	if (opt.max > RESULTS_PRETTY_MAX)
		opt.max = RESULTS_PRETTY_MAX;
	r = json_pretty(line, len, &opt, out, outlen);
	if (r == -EFBIG) {
		/* Too large pretty-printed: the line as the server wrote it. */
		*out = malloc(len + 1);
		if (!*out)
			return -ENOMEM;
		memcpy(*out, line, len);
		(*out)[len] = '\n';
		*outlen = len + 1;
		r = 0;
	}
	return r;
}

size_t results_render_bound(size_t len, int txt)
{
	size_t json = 8 * len + 4096;

	if (txt)
		return len + 1;
	return json < RESULTS_PRETTY_MAX ? json : RESULTS_PRETTY_MAX;
}

/* ---- values of a parsed line ------------------------------------------ */

/*
 * The members of a line are found in its text, which json_check has checked,
 * with no tree: a walk over a line costs no memory whatever its nesting
 * (a tree of a 15 MiB line of nested arrays took 600 MB). A position is an
 * index into the line, or NONE: "not there", which every step passes on.
 */
#define NONE ((size_t)-1)

/* The end of the (checked) value at s[i]. */
static size_t value_end(const char *s, size_t n, size_t i)
{
	size_t depth = 0;

	while (i < n) {
		char c = s[i];

		if (c == '{' || c == '[')
			depth++, i++;
		else if (c == '}' || c == ']')
			depth--, i++;
		else if (strchr(",: \t\r\n", c))
			i++;
		else
			i = json_scalar_end(s, n, i, 0);
		if (depth == 0 && !strchr(",: \t\r\n", c))
			return i;
	}
	return n;
}

/* Whether the key token tok (tlen bytes, quotes included) is key. */
static int key_is(const char *tok, size_t tlen, const char *key)
{
	size_t klen = strlen(key), dlen;
	char *d;
	int same;

	if (!memchr(tok, '\\', tlen))
		return tlen == klen + 2 && memcmp(tok + 1, key, klen) == 0;
	if (json_string_decode(tok, tlen, JSON_LONE_KEEP, &d, &dlen) < 0)
		return 0;
	same = dlen == klen && memcmp(d, key, klen) == 0;
	free(d);
	return same;
}

/* Where the value of the first member key of the object at i starts. */
static size_t member_at(const char *s, size_t n, size_t i, const char *key)
{
	if (i >= n || s[i] != '{')
		return NONE;
	i = json_skip_ws(s, n, i + 1);
	while (i < n && s[i] == '"') {
		size_t k = json_string_end(s, n, i, 0);
		size_t v = json_skip_ws(s, n, json_skip_ws(s, n, k) + 1);

		if (key_is(s + i, k - i, key))
			return v;
		i = json_skip_ws(s, n, value_end(s, n, v));
		if (i < n && s[i] == ',')
			i = json_skip_ws(s, n, i + 1);
	}
	return NONE;
}

/* Where the first item of the array at i starts. */
static size_t first_item(const char *s, size_t n, size_t i)
{
	if (i >= n || s[i] != '[')
		return NONE;
	i = json_skip_ws(s, n, i + 1);
	return i < n && s[i] != ']' ? i : NONE;
}

/* The number at i as a double: 0, or -1 when i is no number. The token
 * ends in a delimiter inside the line (it is a member), so strtod stops
 * there. */
static int number_at(const char *s, size_t n, size_t i, double *d)
{
	if (i >= n || !(s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
		return -1;
	*d = strtod(s + i, NULL);
	return 0;
}

/* Whether the line is a 2xx answer: response.status_code from 200 to
 * 299. */
static int answer_ok(const char *s, size_t n)
{
	size_t resp = member_at(s, n, json_skip_ws(s, n, 0), "response");
	double code;

	return number_at(s, n, member_at(s, n, resp, "status_code"), &code) ==
		   0 &&
	       code >= 200 && code < 300 && code == (int)code;
}

/* Where choices[0].message.content of a 2xx answer starts (a string), or
 * NONE. */
static size_t answer_content(const char *s, size_t n)
{
	size_t root = json_skip_ws(s, n, 0),
	       resp = member_at(s, n, root, "response");
	size_t body = member_at(s, n, resp, "body"), c;

	if (!answer_ok(s, n))
		return NONE;
	c = member_at(s, n, first_item(s, n, member_at(s, n, body, "choices")),
		      "message");
	c = member_at(s, n, c, "content");
	return c != NONE && s[c] == '"' ? c : NONE;
}

/* The bytes of the string at i into a new buffer (one byte more): 0,
 * -EINVAL when i is no string, -ENOMEM. */
static int string_at(const char *s, size_t n, size_t i, enum json_lone lone,
		     char **out, size_t *len)
{
	if (i >= n || s[i] != '"')
		return -EINVAL;
	return json_string_decode(s + i, json_string_end(s, n, i, 0) - i, lone,
				  out, len);
}

int results_render_txt(const char *line, size_t len, char **out, size_t *outlen)
{
	char *s = NULL;
	size_t n = 0;
	int r = json_check(line, len, &line_json);

	if (r == 0)
		r = string_at(line, len, answer_content(line, len),
			      JSON_LONE_FFFD, &s, &n);
	if (r == -EINVAL)
		r = -ENOENT;
	if (r < 0)
		return r;
	s[n] = '\n'; /* json_string_decode leaves room for a NUL */
	*out = s;
	*outlen = n + 1;
	return 0;
}

/* ---- the index -------------------------------------------------------- */

struct results *results_new(void)
{
	return calloc(1, sizeof(struct results));
}

void results_free(struct results *r)
{
	if (!r)
		return;
	free(r->e);
	free(r->names);
	free(r->slots);
	free(r);
}

const char *results_name(const struct results *r, const struct result *e)
{
	return r->names + e->name;
}

size_t results_bytes(const struct results *r)
{
	return sizeof(*r) + r->cap * sizeof(*r->e) + r->names_cap +
	       r->nslots * sizeof(*r->slots);
}

/* The slot of name (n bytes): holding its entry, or the free one where it
 * goes. r->nslots is a power of two and never full. */
static size_t find_slot(const struct results *r, const char *name, size_t n)
{
	size_t mask = r->nslots - 1,
	       i = (size_t)util_hash_bytes(name, n, UTIL_HASH_SEED) & mask;

	while (r->slots[i]) {
		const char *s = r->names + r->e[r->slots[i] - 1].name;

		if (strncmp(s, name, n) == 0 && s[n] == '\0')
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

const struct result *results_find(const struct results *r, const char *base,
				  size_t blen)
{
	size_t i;

	if (!r->nslots)
		return NULL;
	i = find_slot(r, base, blen);
	return r->slots[i] ? &r->e[r->slots[i] - 1] : NULL;
}

static int grow_slots(struct results *r)
{
	size_t n = r->nslots ? r->nslots * 2 : 64;
	uint32_t *old = r->slots;
	size_t oldn = r->nslots;

	r->slots = calloc(n, sizeof(*r->slots));
	if (!r->slots) {
		r->slots = old;
		return -ENOMEM;
	}
	r->nslots = n;
	for (size_t i = 0; i < oldn; i++) {
		if (old[i]) {
			const char *s = r->names + r->e[old[i] - 1].name;

			r->slots[find_slot(r, s, strlen(s))] = old[i];
		}
	}
	free(old);
	return 0;
}

static int names_add(struct results *r, const void *p, size_t n)
{
	if (util_grow(&r->names, &r->names_cap, r->names_len + n, 4096) < 0)
		return -ENOMEM;
	memcpy(r->names + r->names_len, p, n);
	r->names_len += n;
	return 0;
}

/* Whether entry e (shortened) stands for the id (len bytes). */
static int same_long_id(const struct results *r, const struct result *e,
			const char *id, size_t len)
{
	const char *p = r->names + e->name;
	uint32_t n;

	p += strlen(p) + 1;
	memcpy(&n, p, sizeof(n));
	return n == len && memcmp(p + sizeof(n), id, len) == 0;
}

static void bad_line(struct results *r, struct results_pass *ps,
		     const char *why)
{
	r->bad++;
	ps->bad++;
	if (ps->logged++ < RESULTS_LOG_MAX)
		log_warn("%s line %zu: %s; skipped", ps->label, ps->lineno,
			 why);
}

/* Let line take the place of the earlier entry e of the same id. */
static void replace(struct results *r, struct results_pass *ps,
		    struct result *e, struct result line)
{
	line.name = e->name;
	line.shortened = e->shortened;
	*e = line;
	r->dups++;
	if (ps->logged++ < RESULTS_LOG_MAX)
		log_warn("%s line %zu: custom_id \"%s\" again; this later line "
			 "replaces the earlier one",
			 ps->label, ps->lineno, results_name(r, e));
}

/*
 * Add the entry of a line (off, len, src, has_txt in line) for id, or let
 * it replace the entry of the same id. A shortened name that another id
 * already has is made again with the next salt. 0 or -ENOMEM.
 */
static int insert(struct results *r, struct results_pass *ps, const char *id,
		  size_t idlen, struct result line)
{
	char name[RESULTS_NAME_MAX + 1];
	struct result *e;
	int sh;
	size_t i, n;

	if (r->n + 1 > r->nslots / 2 && grow_slots(r) < 0)
		return -ENOMEM;
	for (unsigned salt = 0;; salt++) {
		n = results_escape(id, idlen, salt, name, &sh);
		i = find_slot(r, name, n);
		if (!r->slots[i])
			break;
		e = &r->e[r->slots[i] - 1];
		if (!sh || (e->shortened && same_long_id(r, e, id, idlen))) {
			replace(r, ps, e, line);
			return 0;
		}
	}
	if (r->n == RESULTS_MAX_ENTRIES) {
		bad_line(r, ps, "past the most requests kimifs indexes");
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct result *grown = realloc(r->e, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		r->e = grown;
		r->cap = cap;
	}
	line.name = (uint32_t)r->names_len;
	line.shortened = (uint8_t)sh;
	if (names_add(r, name, n + 1) < 0)
		return -ENOMEM;
	if (sh) {
		uint32_t l = (uint32_t)idlen;

		if (names_add(r, &l, sizeof(l)) < 0 ||
		    names_add(r, id, idlen) < 0)
			return -ENOMEM;
	}
	r->e[r->n] = line;
	r->slots[i] = (uint32_t)++r->n;
	return 0;
}

/* Add the usage of an output line (s, n bytes) to the sums
 * (saturating). */
static void add_usage(struct results *r, const char *s, size_t n)
{
	size_t u = member_at(
	    s, n,
	    member_at(s, n, member_at(s, n, json_skip_ws(s, n, 0), "response"),
		      "body"),
	    "usage");

	for (int k = 0; k < USAGE_N; k++) {
		double d;

		if (number_at(s, n, member_at(s, n, u, results_usage_names[k]),
			      &d) < 0 ||
		    d < 0 || d > 9007199254740992.0 || d != (double)(int64_t)d)
			continue;
		if (r->usage[k] > INT64_MAX - (int64_t)d)
			r->usage[k] = INT64_MAX;
		else
			r->usage[k] += (int64_t)d;
	}
}

void results_pass_begin(struct results_pass *ps, enum results_source src,
			const char *label)
{
	memset(ps, 0, sizeof(*ps));
	ps->src = src;
	ps->label = label;
}

int results_add_line(struct results *r, struct results_pass *ps,
		     const char *line, size_t len, uint64_t off)
{
	struct result e = {
	    .off = off, .len = (uint32_t)len, .src = (uint8_t)ps->src};
	size_t idlen = 0, root;
	char *id = NULL;
	int r2;

	ps->lineno++;
	if (len > RESULTS_LINE_MAX) {
		bad_line(r, ps, "longer than 8 MiB");
		return 0;
	}
	if (json_skip_ws(line, len, 0) == len)
		return 0; /* blank */
	if (json_check(line, len, &line_json) < 0) {
		bad_line(r, ps, "not JSON");
		return 0;
	}
	root = json_skip_ws(line, len, 0);
	if (line[root] != '{') {
		bad_line(r, ps, "not a JSON object");
		return 0;
	}
	r2 = string_at(line, len, member_at(line, len, root, "custom_id"),
		       JSON_LONE_KEEP, &id, &idlen);
	if (r2 < 0) {
		if (r2 == -ENOMEM)
			return r2;
		bad_line(r, ps, "no string custom_id");
		return 0;
	}
	e.has_txt = answer_content(line, len) != NONE;
	e.ok = ps->src == RESULTS_OUTPUT && answer_ok(line, len);
	if (ps->src == RESULTS_OUTPUT)
		add_usage(r, line, len);
	r2 = insert(r, ps, id, idlen, e);
	free(id);
	return r2;
}

void results_pass_end(const struct results_pass *ps)
{
	if (ps->logged > RESULTS_LOG_MAX)
		log_warn("%s: %zu lines skipped or replaced in all, %zu not "
			 "logged",
			 ps->label, ps->logged, ps->logged - RESULTS_LOG_MAX);
}

int results_add(struct results *r, enum results_source src, const char *buf,
		size_t len, const char *label)
{
	struct results_pass ps;
	size_t at = 0;
	int rc = 0;

	results_pass_begin(&ps, src, label);
	while (rc == 0 && at < len) {
		const char *nl = memchr(buf + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - buf) : len;

		rc = results_add_line(r, &ps, buf + at, end - at, at);
		at = end + 1;
	}
	results_pass_end(&ps);
	return rc;
}
