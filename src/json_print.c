/*
 * json_print.c - the JSON pretty-printer (see json_print.h): one walk over
 * the tokens that checks the grammar as it goes and writes them with new
 * white space; a first walk that only measures when opt bounds the
 * indentation.
 */
#include "json_print.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* What a layout writes between tokens. */
static const struct layout {
	int breaks;	     /* line breaks at all (else no white space) */
	int array_lines;     /* an array's items each on a line */
	int empty_obj_lines; /* "{" and "}" of an empty object on two lines */
} layouts[] = {
    [JSON_LAYOUT_LINES] = {1, 1, 0},
    [JSON_LAYOUT_CJSON] = {1, 0, 1},
    [JSON_LAYOUT_COMPACT] = {0, 0, 0},
};

struct out {
	char *p;
	size_t len, cap;
	size_t max; /* more is -EFBIG */
	int emit;   /* 0: only check (and measure) */
	const struct layout *lay;
	/* The measures of json_print_flat. */
	size_t value_depth; /* the most containers around a value */
	size_t lines;	    /* members and closing braces (cJSON's lines) */
	size_t levels;	    /* their indentation, in levels */
};

static int put(struct out *o, const char *s, size_t n)
{
	if (!o->emit)
		return 0;
	if (o->len + n > o->max)
		return -EFBIG;
	if (util_grow(&o->p, &o->cap, o->len + n + 1, 256) < 0)
		return -ENOMEM;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	return 0;
}

static int newline(struct out *o, size_t depth)
{
	int r;

	if (!o->emit)
		return 0;
	r = put(o, "\n", 1);
	for (size_t i = 0; r == 0 && i < depth; i++)
		r = put(o, "  ", 2);
	return r;
}

/* Whether the items of a container opened by c go on lines of their own. */
static int item_lines(const struct out *o, char c)
{
	return o->lay->breaks && (c == '{' || o->lay->array_lines);
}

/* An empty container c at depth (containers around it). */
static int put_empty(struct out *o, char c, size_t depth)
{
	int r = put(o, &c, 1);

	if (c == '{') {
		o->lines++;
		o->levels += depth;
		if (r == 0 && o->lay->empty_obj_lines)
			r = newline(o, depth);
	}
	if (r == 0)
		r = put(o, c == '{' ? "}" : "]", 1);
	return r;
}

enum pstate { P_VALUE, P_KEY, P_AFTER };

/*
 * Check that s (n bytes) is exactly one JSON value with white space around,
 * and with o->emit write it as o->lay lays it out. 0, -EIO when it is not,
 * -EFBIG or -ENOMEM.
 */
static int walk(const char *s, size_t n, const struct json_print *opt,
		struct out *o)
{
	char stack[JSON_DEPTH_LIMIT];
	size_t depth = 0, depth_max = opt->depth_max, i = 0, j;
	enum pstate st = P_VALUE;
	int r = 0;

	if (depth_max > JSON_DEPTH_LIMIT)
		depth_max = JSON_DEPTH_LIMIT;
	while (r == 0) {
		i = json_skip_ws(s, n, i);
		if (st == P_AFTER && depth == 0)
			return i == n ? put(o, "\n", 1) : -EIO;
		if (i >= n)
			return -EIO;
		if (st == P_AFTER) {
			char top = stack[depth - 1];

			if (s[i] == ',') {
				r = put(o, ",", 1);
				if (r == 0 && item_lines(o, top))
					r = newline(o, depth);
				else if (r == 0 && o->lay->breaks)
					r = put(o, " ", 1);
				st = top == '{' ? P_KEY : P_VALUE;
			} else if (s[i] == (top == '{' ? '}' : ']')) {
				depth--;
				if (top == '{') {
					o->lines++;
					o->levels += depth;
				}
				if (item_lines(o, top))
					r = newline(o, depth);
				if (r == 0)
					r = put(o, s + i, 1);
			} else {
				return -EIO;
			}
			i++;
			continue;
		}
		if (st == P_KEY) {
			j = json_string_end(s, n, i, opt->flags);
			if (!j)
				return -EIO;
			o->lines++;
			o->levels += depth;
			r = put(o, s + i, j - i);
			i = json_skip_ws(s, n, j);
			if (i >= n || s[i] != ':')
				return -EIO;
			if (r == 0)
				r = o->lay->breaks ? put(o, ": ", 2)
						   : put(o, ":", 1);
			i++;
			st = P_VALUE;
			continue;
		}
		/* A value. */
		if (depth > o->value_depth)
			o->value_depth = depth;
		if (s[i] == '{' || s[i] == '[') {
			char open = s[i], close = open == '{' ? '}' : ']';

			if (depth >= depth_max)
				return -EIO;
			j = json_skip_ws(s, n, i + 1);
			if (j < n && s[j] == close) {
				r = put_empty(o, open, depth);
				i = j + 1;
				st = P_AFTER;
				continue;
			}
			stack[depth++] = open;
			r = put(o, &open, 1);
			if (r == 0 && item_lines(o, open))
				r = newline(o, depth);
			st = open == '{' ? P_KEY : P_VALUE;
			i++;
			continue;
		}
		j = json_scalar_end(s, n, i, opt->flags);
		if (!j)
			return -EIO;
		r = put(o, s + i, j - i);
		i = j;
		st = P_AFTER;
	}
	return r;
}

int json_check(const char *s, size_t n, const struct json_print *opt)
{
	struct out o = {.lay = &layouts[JSON_LAYOUT_COMPACT]};

	return walk(s, n, opt, &o);
}

/* Whether the measures of o pass opt's bounds on indentation. */
static int too_deep(const struct out *o, const struct json_print *opt)
{
	return (opt->flat_depth && o->value_depth > opt->flat_depth) ||
	       (opt->flat_mean && o->levels > opt->flat_mean * o->lines);
}

int json_print_flat(const char *s, size_t n, const struct json_print *opt)
{
	struct out o = {.lay = &layouts[JSON_LAYOUT_COMPACT]};
	int r = walk(s, n, opt, &o);

	return r < 0 ? r : too_deep(&o, opt);
}

int json_pretty(const char *s, size_t n, const struct json_print *opt,
		char **out, size_t *outlen)
{
	struct out o = {.emit = 1,
			.lay = &layouts[opt->layout],
			.max = opt->max ? opt->max : (size_t)-1};
	int r = 0;

	if (opt->flat_depth || opt->flat_mean) {
		r = json_print_flat(s, n, opt);
		if (r == 1)
			o.lay = &layouts[JSON_LAYOUT_COMPACT];
	}
	if (r >= 0)
		r = walk(s, n, opt, &o);
	if (r < 0) {
		free(o.p);
		return r;
	}
	o.p[o.len] = '\0'; /* put leaves room for it */
	*out = o.p;
	*outlen = o.len;
	return 0;
}
