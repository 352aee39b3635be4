/*
 * json.c - JSON answers parsed with cJSON, made safe against strings that
 * hold a NUL character (see json.h).
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * NUL characters. cJSON decodes "\u0000" (and a raw NUL byte inside a
 * string) into a NUL byte in the middle of valuestring or string, and keeps
 * no length: every C string function then stops there, and
 * "batch_nul\u0000evil" reads as "batch_nul". The tree alone cannot tell,
 * so json_parse compares it with the text. A string is the only JSON
 * token that holds a '"', and cJSON makes one string node per string token
 * (an object member: its key, then its value), so walking the tree in
 * document order meets the string tokens in the order they appear in the
 * text: the n-th string of the walk is the n-th '"'...'"' token. Both walks
 * are linear, and the tree walk only happens when the text may hold a NUL
 * at all.
 */

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/*
 * Whether cJSON decodes the \u escape at p (6 bytes readable) into a NUL.
 * Not only \u0000: cJSON's parse_hex4 reads a byte that is not a hex digit
 * as a 0 code, so "\u00zz" is a NUL too. (A surrogate pair never yields 0,
 * and one with a bad second half fails to parse.)
 */
static int u_is_nul(const char *p)
{
	for (int i = 2; i < 6; i++)
		if (!is_hex(p[i]))
			return 1;
	return memcmp(p + 2, "0000", 4) == 0;
}

struct scan {
	const char *p;	 /* where the next string token is looked for */
	const char *end; /* where cJSON stopped parsing */
};

/*
 * Find the next string token: *tok and *len cover it, quotes included.
 * Returns 1 when its decoded text holds a NUL, 0 when not, -1 when there is
 * no further token (cannot happen for a text cJSON parsed). The end is found
 * the way cJSON finds it: a backslash takes the next byte with it. cJSON
 * then decodes a \u escape as 6 bytes, but until the first \u that makes a
 * NUL both walks meet the same escapes (hex digits hold no backslash).
 */
static int next_token(struct scan *s, const char **tok, size_t *len)
{
	const char *q = memchr(s->p, '"', (size_t)(s->end - s->p));
	int nul = 0;

	if (!q)
		return -1;
	*tok = q++;
	while (q < s->end && *q != '"') {
		if (*q == '\\') {
			if (s->end - q >= 6 && q[1] == 'u' && u_is_nul(q))
				nul = 1;
			q += 2;
			continue;
		}
		if (*q == '\0')
			nul = 1;
		q++;
	}
	if (q >= s->end)
		return -1;
	*len = (size_t)(q + 1 - *tok);
	s->p = q + 1;
	return nul;
}

/*
 * Turn string node v into a raw node holding the JSON text of its token tok
 * (quotes included, len bytes): no longer a string, and printed as sent.
 * Walked as cJSON decodes it; control bytes are written as \u00XX and a \u
 * escape that decodes to a NUL as \u0000, so the raw text is valid JSON of
 * the same value, and holds no NUL and no tab.
 */
static int make_raw(cJSON *v, const char *tok, size_t len)
{
	const char *p = tok + 1, *end = tok + len - 1;
	char *out = cJSON_malloc(6 * len + 1), *o = out;

	if (!out)
		return -1;
	*o++ = '"';
	while (p < end) {
		unsigned char c = (unsigned char)*p;

		if (c == '\\' && end - p >= 6 && p[1] == 'u') {
			if (u_is_nul(p))
				memcpy(o, "\\u0000", 6);
			else
				memcpy(o, p, 6);
			o += 6;
			p += 6;
		} else if (c == '\\' && end - p >= 2) {
			*o++ = *p++;
			*o++ = *p++;
		} else if (c < 0x20) {
			snprintf(o, 7, "\\u%04x", c);
			o += 6;
			p++;
		} else {
			*o++ = *p++;
		}
	}
	*o++ = '"';
	*o = '\0';
	cJSON_free(v->valuestring);
	v->valuestring = out;
	v->type = cJSON_Raw;
	return 0;
}

/* Mark the strings of node that hold a NUL; -1 when out of memory or out of
 * step with the text. Recursion as deep as cJSON's own (at most 1000). */
static int mark_nuls(cJSON *node, struct scan *s, size_t *nuls)
{
	const char *tok;
	size_t len;
	int r;

	if (cJSON_IsString(node)) {
		r = next_token(s, &tok, &len);
		if (r < 0 || (r == 1 && make_raw(node, tok, len) < 0))
			return -1;
		*nuls += (size_t)r;
		return 0;
	}
	if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
		return 0;
	for (cJSON *c = node->child, *next; c; c = next) {
		int key_nul = 0;

		next = c->next;
		if (cJSON_IsObject(node)) {
			key_nul = next_token(s, &tok, &len);
			if (key_nul < 0)
				return -1;
		}
		/* The value's tokens come next in the text, even when the
		 * member goes. */
		if (mark_nuls(c, s, nuls) < 0)
			return -1;
		if (key_nul) {
			/* Cut short, the key would read as another one
			 * (maybe a field of the schema), and no other
			 * name can stand for it: the member goes. */
			cJSON_Delete(cJSON_DetachItemViaPointer(node, c));
			(*nuls)++;
		}
	}
	return 0;
}

/* Whether text may hold a NUL once decoded: a NUL byte, or a \u escape
 * that decodes to one. */
static int may_hold_nul(const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	if (memchr(text, '\0', len))
		return 1;
	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		if (end - p >= 6 && p[1] == 'u' && u_is_nul(p))
			return 1;
		p++;
	}
	return 0;
}

cJSON *json_parse(const char *text, size_t len, size_t *nuls)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	struct scan s = {text, text + len};

	*nuls = 0;
	if (!root)
		return NULL;
	/* Only the tokens of the parsed value count, not trailing bytes. */
	if (end && end >= text && end < text + len)
		s.end = end;
	if (!may_hold_nul(text, (size_t)(s.end - text)))
		return root;
	if (mark_nuls(root, &s, nuls) < 0) {
		cJSON_Delete(root);
		*nuls = 0;
		return NULL;
	}
	return root;
}
