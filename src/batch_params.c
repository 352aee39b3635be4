/*
 * batch_params.c - parsing and checking the parameters of a new batch
 * (batch_params.h): one word per parameter, each key at most once, every
 * documented limit checked (and UTF-8 text, as JSON must be), so a request
 * is sent only when the API can take it.
 */
#include "batch_params.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "json.h"
#include "util.h"

int params_window_hours(const char *window)
{
	char *end;
	long n;

	/* A whole number as the API writes it: no sign, no leading zero. */
	if (!window || window[0] < '1' || window[0] > '9' || strlen(window) > 7)
		return -EINVAL;
	n = strtol(window, &end, 10);
	if (end[0] == 'd' && end[1] == '\0')
		n *= 24;
	else if (end[0] != 'h' || end[1] != '\0')
		return -EINVAL;
	return n >= 12 && n <= 168 ? (int)n : -EINVAL;
}

/* Characters (UTF-8 code points) of s. */
static size_t chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The next word of text[*at..len) into a malloc'd string (quotes taken
 * off): 1, 0 at the end, -EINVAL (why filled) or -ENOMEM.
 */
static int next_word(const char *text, size_t len, size_t *at, char **out,
		     char *why, size_t whylen)
{
	size_t i = *at, n = 0;
	int quoted = 0;
	char *w;

	while (i < len && is_space(text[i]))
		i++;
	if (i == len)
		return 0;
	w = malloc(len - i + 1);
	if (!w)
		return -ENOMEM;
	for (; i < len && (quoted || !is_space(text[i])); i++) {
		char c = text[i];

		if (c == '\0') {
			free(w);
			return util_reason(-EINVAL, why, whylen,
					   "a NUL byte in the text");
		}
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted && c == '\\' && i + 1 < len &&
		    (text[i + 1] == '"' || text[i + 1] == '\\'))
			c = text[++i];
		w[n++] = c;
	}
	w[n] = '\0';
	if (quoted) {
		free(w);
		return util_reason(-EINVAL, why, whylen,
				   "a quote is not closed");
	}
	*at = i;
	*out = w;
	return 1;
}

/* Set *slot to value (taken on success) unless it is set: key may appear
 * once. */
static int set_once(char **slot, char *value, const char *key, char *why,
		    size_t whylen)
{
	if (*slot)
		return util_reason(-EINVAL, why, whylen, "%s is given twice",
				   key);
	*slot = value;
	return 0;
}

/* Add key=value (value taken on success) to p's metadata. */
static int add_meta(struct batch_params *p, const char *key, char *value,
		    char *why, size_t whylen)
{
	char *k;

	if (!*key || chars(key) > PARAMS_META_KEY_MAX)
		return util_reason(-EINVAL, why, whylen,
				   "a metadata key must be 1 to %d characters",
				   PARAMS_META_KEY_MAX);
	if (chars(value) > PARAMS_META_VALUE_MAX)
		return util_reason(
		    -EINVAL, why, whylen,
		    "metadata.%.64s: a value is at most %d characters", key,
		    PARAMS_META_VALUE_MAX);
	for (size_t i = 0; i < p->nmeta; i++)
		if (strcmp(p->meta[i].key, key) == 0)
			return util_reason(-EINVAL, why, whylen,
					   "metadata.%.64s is given twice",
					   key);
	if (p->nmeta == PARAMS_META_MAX)
		return util_reason(-EINVAL, why, whylen,
				   "at most %d metadata pairs",
				   PARAMS_META_MAX);
	k = strdup(key);
	if (!k)
		return -ENOMEM;
	p->meta[p->nmeta].key = k;
	p->meta[p->nmeta].value = value;
	p->nmeta++;
	return 0;
}

/* One word key=value into p; value is taken on success. */
static int take_word(struct batch_params *p, char *word, char *why,
		     size_t whylen)
{
	char *eq = strchr(word, '=');
	char *value;
	int r;

	if (!util_utf8_valid(word, strlen(word))) {
		/* It could not be sent: JSON text is UTF-8. */
		if (eq)
			*eq = '\0';
		if (!eq || !util_utf8_valid(word, strlen(word)))
			return util_reason(-EINVAL, why, whylen,
					   "a parameter is not UTF-8 text");
		return util_reason(-EINVAL, why, whylen,
				   "the value of %.64s is not UTF-8 text",
				   word);
	}
	if (!eq)
		return util_reason(-EINVAL, why, whylen,
				   "\"%.64s\" is not key=value", word);
	*eq = '\0';
	value = strdup(eq + 1);
	if (!value)
		return -ENOMEM;
	if (strcmp(word, "input_file_id") == 0)
		r = set_once(&p->input_file_id, value, word, why, whylen);
	else if (strcmp(word, "completion_window") == 0)
		r = set_once(&p->completion_window, value, word, why, whylen);
	else if (strcmp(word, "endpoint") == 0)
		r = set_once(&p->endpoint, value, word, why, whylen);
	else if (strncmp(word, "metadata.", 9) == 0)
		r = add_meta(p, word + 9, value, why, whylen);
	else
		r = util_reason(-EINVAL, why, whylen,
				"unknown parameter \"%.64s\"", word);
	if (r < 0)
		free(value);
	return r;
}

/* The rules that hold for the whole set, once every word is in. */
static int check_all(struct batch_params *p, const char *window, char *why,
		     size_t whylen)
{
	if (!p->input_file_id)
		return util_reason(-EINVAL, why, whylen,
				   "input_file_id is required");
	if (!batch_id_valid(p->input_file_id))
		return util_reason(-EINVAL, why, whylen,
				   "input_file_id \"%.64s\" is not a file id",
				   p->input_file_id);
	if (!p->completion_window) {
		p->completion_window = strdup(window);
		if (!p->completion_window)
			return -ENOMEM;
	}
	if (params_window_hours(p->completion_window) < 0)
		return util_reason(
		    -EINVAL, why, whylen,
		    "completion_window \"%.16s\" must be hours or "
		    "days from 12h to 7d, such as 24h or 3d",
		    p->completion_window);
	if (!p->endpoint) {
		p->endpoint = strdup(PARAMS_ENDPOINT);
		if (!p->endpoint)
			return -ENOMEM;
	}
	if (strncmp(p->endpoint, "/v1/", 4) != 0)
		return util_reason(
		    -EINVAL, why, whylen,
		    "endpoint \"%.64s\" must be an API path such as "
		    "%s",
		    p->endpoint, PARAMS_ENDPOINT);
	return 0;
}

int params_parse(const char *text, size_t len, const char *window,
		 struct batch_params *p, char *why, size_t whylen)
{
	size_t at = 0;
	char *word = NULL;
	int r;

	memset(p, 0, sizeof(*p));
	why[0] = '\0';
	if (len > PARAMS_TEXT_MAX) {
		r = util_reason(-EINVAL, why, whylen, "more than %d bytes",
				PARAMS_TEXT_MAX);
		goto out;
	}
	while ((r = next_word(text, len, &at, &word, why, whylen)) == 1) {
		r = take_word(p, word, why, whylen);
		free(word);
		if (r < 0)
			goto out;
	}
	if (r == 0)
		r = check_all(p, window, why, whylen);
out:
	if (r < 0)
		params_free(p);
	return r;
}

cJSON *params_json(const struct batch_params *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *meta;

	if (!o ||
	    !cJSON_AddStringToObject(o, "input_file_id", p->input_file_id) ||
	    !cJSON_AddStringToObject(o, "endpoint", p->endpoint) ||
	    !cJSON_AddStringToObject(o, "completion_window",
				     p->completion_window))
		goto fail;
	if (p->nmeta) {
		meta = cJSON_AddObjectToObject(o, "metadata");
		if (!meta)
			goto fail;
		for (size_t i = 0; i < p->nmeta; i++)
			if (!cJSON_AddStringToObject(meta, p->meta[i].key,
						     p->meta[i].value))
				goto fail;
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

void params_free(struct batch_params *p)
{
	free(p->input_file_id);
	free(p->endpoint);
	free(p->completion_window);
	for (size_t i = 0; i < p->nmeta; i++) {
		free(p->meta[i].key);
		free(p->meta[i].value);
	}
	memset(p, 0, sizeof(*p));
}

/* A string member of obj, copied, or NULL (none, or no memory). */
static char *member(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

int params_like(const struct batch *b, struct batch_params *p, char *why,
		size_t whylen)
{
	size_t nuls;
	cJSON *obj = json_parse(b->json.data, b->json.len, &nuls);
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *pairs = cJSON_IsObject(meta) ? meta : NULL, *m;
	int r = 0;

	memset(p, 0, sizeof(*p));
	if (!obj) {
		snprintf(why, whylen, "the batch object cannot be read");
		return -EIO;
	}
	p->endpoint = member(obj, "endpoint");
	p->completion_window = member(obj, "completion_window");
	if (!p->endpoint || !p->completion_window)
		r = -EIO;
	cJSON_ArrayForEach (m, pairs) {
		if (r < 0 || p->nmeta == PARAMS_META_MAX)
			break;
		if (!cJSON_IsString(m) || !m->string)
			continue;
		p->meta[p->nmeta].key = strdup(m->string);
		p->meta[p->nmeta].value = strdup(m->valuestring);
		p->nmeta++;
		if (!p->meta[p->nmeta - 1].key || !p->meta[p->nmeta - 1].value)
			r = -ENOMEM;
	}
	cJSON_Delete(obj);
	if (r < 0) {
		snprintf(why, whylen, "%s",
			 r == -ENOMEM ? strerror(ENOMEM)
				      : "the batch has no endpoint or window");
		params_free(p);
	}
	return r;
}

/* A copy of s, or NULL when s is NULL; *bad set when memory ran out. */
static char *copy_or_null(const char *s, int *bad)
{
	char *c = s ? strdup(s) : NULL;

	if (s && !c)
		*bad = 1;
	return c;
}

int params_copy(const struct batch_params *p, struct batch_params *out)
{
	int bad = 0;

	memset(out, 0, sizeof(*out));
	out->input_file_id = copy_or_null(p->input_file_id, &bad);
	out->endpoint = copy_or_null(p->endpoint, &bad);
	out->completion_window = copy_or_null(p->completion_window, &bad);
	for (size_t i = 0; i < p->nmeta; i++) {
		out->meta[i].key = copy_or_null(p->meta[i].key, &bad);
		out->meta[i].value = copy_or_null(p->meta[i].value, &bad);
		out->nmeta++;
	}
	if (bad) {
		params_free(out);
		return -ENOMEM;
	}
	return 0;
}
