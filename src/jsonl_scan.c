/*
 * jsonl_scan.c - a strict JSON reader of one line that keeps no tree
 * (jsonl_scan.h): recursive descent over the line, nesting bounded, each
 * object's keys kept as 32 bits of their hash and an offset on a stack while
 * the object is open, sorted when it closes to find a key twice (equal hashes
 * compared as text, so a collision never makes a false one).
 */
#include "jsonl_scan.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_token.h"
#include "util.h"

struct key {
	uint32_t hash;
	uint32_t at; /* of its string token (a line is at most 32 MiB) */
};

struct scanner {
	const char *s;
	size_t len;
	size_t i; /* the next byte to read */
	unsigned depth;
	struct key *keys; /* of the objects open, outermost first */
	size_t nkeys;
	size_t capkeys;
	struct jsonl_scan *out;
	int oom;
};

/* What an object is to the rules: the line's, its body, or any other. */
enum role { TOP, BODY, OTHER };

static int value(struct scanner *p, enum role role);

static void skip_space(struct scanner *p)
{
	p->i = json_skip_ws(p->s, p->len, p->i);
}

/* The scalar (string, number or literal) at p->i: 0 past it, or -1. A lone
 * UTF-16 surrogate escape is refused (as cJSON does). */
static int scalar(struct scanner *p)
{
	size_t end =
	    json_scalar_end(p->s, p->len, p->i, JSON_NO_LONE_SURROGATE);

	if (!end)
		return -1;
	p->i = end;
	return 0;
}

/* The span of the string token at at (validated already). */
static struct jsonl_span token(const char *s, size_t len, size_t at)
{
	struct jsonl_span span = {at, 0};
	size_t end = json_string_end(s, len, at, JSON_NO_LONE_SURROGATE);

	if (end)
		span.len = end - at;
	return span;
}

const char *jsonl_scan_text(const char *line, struct jsonl_span span,
			    char **own, size_t *tlen)
{
	const char *tok = line + span.at;

	*own = NULL;
	if (!memchr(tok, '\\', span.len)) {
		*tlen = span.len - 2;
		return tok + 1;
	}
	if (json_string_decode(tok, span.len, JSON_LONE_KEEP, own, tlen) < 0)
		return NULL;
	if (memchr(*own, '\0', *tlen)) {
		/* Cut short at its NUL, it would read as another string: the
		 * token as written instead. */
		free(*own);
		*own = NULL;
		*tlen = span.len;
		return tok;
	}
	return *own;
}

/* Whether the keys at a and b are the same text; -1 out of memory. */
static int same_key(const struct scanner *p, size_t a, size_t b)
{
	char *own_a, *own_b;
	size_t la, lb;
	const char *ta =
	    jsonl_scan_text(p->s, token(p->s, p->len, a), &own_a, &la);
	const char *tb =
	    jsonl_scan_text(p->s, token(p->s, p->len, b), &own_b, &lb);
	int r = -1;

	if (ta && tb)
		r = la == lb && memcmp(ta, tb, la) == 0;
	free(own_a);
	free(own_b);
	return r;
}

static int key_before(const struct key *x, const struct key *y)
{
	return x->hash != y->hash ? x->hash < y->hash : x->at < y->at;
}

/* Move k[i] down the heap of n keys (the largest on top). */
static void sift(struct key *k, size_t i, size_t n)
{
	for (;;) {
		size_t top = i, l = 2 * i + 1, r = l + 1;
		struct key t;

		if (l < n && key_before(&k[top], &k[l]))
			top = l;
		if (r < n && key_before(&k[top], &k[r]))
			top = r;
		if (top == i)
			return;
		t = k[i], k[i] = k[top], k[top] = t;
		i = top;
	}
}

/* Sort n keys by hash, then place, in place: glibc's qsort would take a
 * copy of them (as large as the keys of an object of millions). */
static void sort_keys(struct key *k, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(k, i, n);
	for (size_t end = n; end-- > 1;) {
		struct key t = k[0];

		k[0] = k[end], k[end] = t;
		sift(k, 0, end);
	}
}

/* Where the first key of the group g (n keys of one hash, in place order)
 * that repeats an earlier one of the group stands, or 0 when none does. */
static size_t first_again(struct scanner *p, const struct key *g, size_t n)
{
	for (size_t j = 1; j < n; j++)
		for (size_t i = 0; i < j; i++) {
			int same = same_key(p, g[i].at, g[j].at);

			if (same < 0)
				p->oom = 1;
			if (same > 0)
				return g[j].at;
		}
	return 0;
}

/* The keys of the object that closes (from first on the stack): note in
 * out->twice the first key in the line that repeats an earlier one of the
 * object, then pop them. Sorted by hash, the keys of one text are
 * neighbours, in place order. */
static void close_keys(struct scanner *p, size_t first)
{
	struct key *k = p->keys + first;
	size_t n = p->nkeys - first, best = 0;

	if (n > 1 && !p->out->twice.len) {
		sort_keys(k, n);
		for (size_t i = 0, end; i < n; i = end) {
			size_t at;

			for (end = i + 1; end < n && k[end].hash == k[i].hash;)
				end++;
			at = end - i > 1 ? first_again(p, k + i, end - i) : 0;
			if (at && (!best || at < best))
				best = at;
		}
		if (best)
			p->out->twice = token(p->s, p->len, best);
	}
	p->nkeys = first;
}

/* Where the value of member key (of an object of role) is kept, if it is
 * one the rules read. */
static struct jsonl_span *wanted(struct scanner *p, enum role role, size_t key)
{
	static const struct {
		enum role role;
		const char *name;
		size_t off;
	} members[] = {
	    {TOP, "custom_id", offsetof(struct jsonl_scan, id)},
	    {TOP, "method", offsetof(struct jsonl_scan, method)},
	    {TOP, "url", offsetof(struct jsonl_scan, url)},
	    {TOP, "body", offsetof(struct jsonl_scan, body)},
	    {BODY, "model", offsetof(struct jsonl_scan, model)},
	};
	struct jsonl_span *found = NULL;
	char *own;
	size_t tlen;
	const char *text;

	if (role == OTHER)
		return NULL;
	text = jsonl_scan_text(p->s, token(p->s, p->len, key), &own, &tlen);
	if (!text) {
		p->oom = 1;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (members[i].role == role &&
		    strlen(members[i].name) == tlen &&
		    memcmp(members[i].name, text, tlen) == 0) {
			found = (struct jsonl_span *)((char *)p->out +
						      members[i].off);
			break;
		}
	free(own);
	return found && !found->len ? found : NULL;
}

static int push_key(struct scanner *p, size_t at)
{
	if (p->nkeys == p->capkeys) {
		size_t ncap = p->capkeys ? 2 * p->capkeys : 64;
		struct key *grown = realloc(p->keys, ncap * sizeof(*grown));

		if (!grown) {
			p->oom = 1;
			return -1;
		}
		p->keys = grown;
		p->capkeys = ncap;
	}
	p->keys[p->nkeys].hash = 0;
	p->keys[p->nkeys].at = (uint32_t)at;
	p->nkeys++;
	return 0;
}

/* An object at p->i ('{'), whose members have role's meaning. */
static int object(struct scanner *p, enum role role)
{
	size_t first = p->nkeys;

	p->i++;
	skip_space(p);
	if (p->i < p->len && p->s[p->i] == '}') {
		p->i++;
		return 0;
	}
	for (;;) {
		size_t key = p->i, at;
		struct jsonl_span *keep;
		char *own;
		size_t tlen;
		const char *text;

		if (p->i >= p->len || p->s[p->i] != '"' || scalar(p) < 0)
			return -1;
		if (push_key(p, key) < 0)
			return -1;
		text = jsonl_scan_text(p->s, token(p->s, p->len, key), &own,
				       &tlen);
		if (!text) {
			p->oom = 1;
			return -1;
		}
		p->keys[p->nkeys - 1].hash =
		    (uint32_t)util_hash_bytes(text, tlen, UTIL_HASH_SEED);
		free(own);
		keep = wanted(p, role, key);
		skip_space(p);
		if (p->i >= p->len || p->s[p->i] != ':')
			return -1;
		p->i++;
		skip_space(p);
		at = p->i;
		if (value(p, keep == &p->out->body ? BODY : OTHER) < 0)
			return -1;
		if (keep) {
			keep->at = at;
			keep->len = p->i - at;
		}
		skip_space(p);
		if (p->i < p->len && p->s[p->i] == ',') {
			p->i++;
			skip_space(p);
			continue;
		}
		if (p->i < p->len && p->s[p->i] == '}') {
			p->i++;
			close_keys(p, first);
			return 0;
		}
		return -1;
	}
}

static int array(struct scanner *p)
{
	p->i++;
	skip_space(p);
	if (p->i < p->len && p->s[p->i] == ']') {
		p->i++;
		return 0;
	}
	for (;;) {
		if (value(p, OTHER) < 0)
			return -1;
		skip_space(p);
		if (p->i < p->len && p->s[p->i] == ',') {
			p->i++;
			skip_space(p);
			continue;
		}
		if (p->i < p->len && p->s[p->i] == ']') {
			p->i++;
			return 0;
		}
		return -1;
	}
}

/* Any value at p->i; an object has role's meaning. 0 past it, or -1. */
static int value(struct scanner *p, enum role role)
{
	int r;

	if (p->i >= p->len)
		return -1;
	if (p->s[p->i] != '{' && p->s[p->i] != '[')
		return scalar(p);
	if (p->depth >= JSONL_SCAN_DEPTH)
		return -1;
	p->depth++;
	r = p->s[p->i] == '{' ? object(p, role) : array(p);
	p->depth--;
	return r;
}

int jsonl_scan(const char *line, size_t len, struct jsonl_scan *out)
{
	struct scanner p = {.s = line, .len = len, .out = out};
	int r;

	memset(out, 0, sizeof(*out));
	skip_space(&p);
	r = p.i < len && line[p.i] == '{' ? value(&p, TOP) : -1;
	skip_space(&p);
	free(p.keys);
	if (p.oom)
		return -ENOMEM;
	return r < 0 || p.i != len ? -EINVAL : 0;
}
