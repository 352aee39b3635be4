/*
 * batch.c - BatchObject parsing and rendering: JSON to an immutable snapshot
 * whose files are ready to read. Strict on the schema's required fields and
 * on types, lenient on unknown fields (kept in batch.json).
 */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum vtype { V_STR, V_TS };

static const struct {
	const char *name;
	enum vtype type;
	int required;
} value_fields[] = {
    {"status", V_STR, 1},	 {"endpoint", V_STR, 1},
    {"input_file_id", V_STR, 1}, {"output_file_id", V_STR, 0},
    {"error_file_id", V_STR, 0}, {"completion_window", V_STR, 1},
    {"created_at", V_TS, 1},	 {"in_progress_at", V_TS, 0},
    {"expires_at", V_TS, 0},	 {"finalizing_at", V_TS, 0},
    {"completed_at", V_TS, 0},	 {"failed_at", V_TS, 0},
    {"cancelling_at", V_TS, 0},	 {"cancelled_at", V_TS, 0},
};
#define NFIELDS (sizeof(value_fields) / sizeof(value_fields[0]))

const char *const batch_value_names[] = {
    "status",	      "endpoint",	"input_file_id",
    "output_file_id", "error_file_id",	"completion_window",
    "created_at",     "in_progress_at", "expires_at",
    "finalizing_at",  "completed_at",	"failed_at",
    "cancelling_at",  "cancelled_at",	NULL};

static const char *const count_names[3] = {"total", "completed", "failed"};

static const char *const final_states[] = {"completed", "failed", "expired",
					   "cancelled", NULL};

int batch_status_final(const char *status)
{
	for (int i = 0; final_states[i]; i++)
		if (strcmp(status, final_states[i]) == 0)
			return 1;
	return 0;
}

int batch_id_valid(const char *s)
{
	size_t n = 0;

	if (!s || s[0] == '\0' || s[0] == '.')
		return 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= BATCH_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int batch_name_safe(const char *s)
{
	size_t n;

	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (n = 0; s[n]; n++)
		if (s[n] == '/' || (unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return 0;
	return n <= 255;
}

int batch_is_value_name(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(name, value_fields[i].name) == 0)
			return 1;
	return 0;
}

static int set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EIO;
}

/* Render "value\n" into f; returns 0 or -ENOMEM. */
static int bfile_set(struct bfile *f, const char *name, const char *value)
{
	size_t n = strlen(value);

	f->name = strdup(name);
	f->data = malloc(n + 2);
	if (!f->name || !f->data)
		return -ENOMEM;
	memcpy(f->data, value, n);
	f->data[n] = '\n';
	f->data[n + 1] = '\0';
	f->len = n + 1;
	return 0;
}

/* A JSON number that is a whole number of seconds; 0 or -1. */
static int json_int(const cJSON *v, int64_t *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 ||
	    d > 9007199254740992.0)
		return -1;
	*out = (int64_t)d;
	return 0;
}

/*
 * cJSON indents with tabs and puts a tab after each colon; strings never hold
 * a raw tab (cJSON escapes it), so every tab is layout. Rewrite leading tabs
 * as two spaces each and the others as one space, and end with a newline.
 */
static int render_json(const cJSON *obj, struct bfile *f)
{
	char *raw = cJSON_Print(obj);
	size_t n = 0, i;
	int bol = 1;
	char *out;

	if (!raw)
		return -ENOMEM;
	for (i = 0; raw[i]; i++)
		n += raw[i] == '\t' ? 2 : 1;
	out = malloc(n + 2);
	if (!out) {
		cJSON_free(raw);
		return -ENOMEM;
	}
	n = 0;
	for (i = 0; raw[i]; i++) {
		if (raw[i] == '\t') {
			out[n++] = ' ';
			if (bol)
				out[n++] = ' ';
			continue;
		}
		bol = raw[i] == '\n';
		out[n++] = raw[i];
	}
	out[n++] = '\n';
	out[n] = '\0';
	cJSON_free(raw);
	f->name = strdup("batch.json");
	f->data = out;
	f->len = n;
	return f->name ? 0 : -ENOMEM;
}

static int parse_counts(const cJSON *obj, struct batch *b, char *err,
			size_t errlen)
{
	const cJSON *rc =
	    cJSON_GetObjectItemCaseSensitive(obj, "request_counts");
	char num[32];
	int64_t v;

	if (!cJSON_IsObject(rc))
		return set_err(err, errlen, "request_counts is %s",
			       rc ? "not an object" : "missing");
	for (int i = 0; i < 3; i++) {
		const cJSON *c =
		    cJSON_GetObjectItemCaseSensitive(rc, count_names[i]);
		if (json_int(c, &v) < 0)
			return set_err(err, errlen, "request_counts.%s is %s",
				       count_names[i],
				       c ? "not an integer" : "missing");
		snprintf(num, sizeof(num), "%" PRId64, v);
		if (bfile_set(&b->counts[i], count_names[i], num) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int parse_values(const cJSON *obj, struct batch *b, char *err,
			size_t errlen)
{
	char num[32];

	b->values = calloc(NFIELDS, sizeof(*b->values));
	if (!b->values)
		return -ENOMEM;
	for (size_t i = 0; i < NFIELDS; i++) {
		const char *name = value_fields[i].name;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
		const char *text;
		int64_t t;

		if (!v || cJSON_IsNull(v)) {
			if (value_fields[i].required)
				return set_err(err, errlen, "%s is missing",
					       name);
			continue;
		}
		if (value_fields[i].type == V_STR) {
			if (!cJSON_IsString(v))
				return set_err(err, errlen,
					       "%s is not a string", name);
			text = v->valuestring;
		} else {
			if (json_int(v, &t) < 0)
				return set_err(err, errlen,
					       "%s is not a timestamp", name);
			/* expires_at is a deadline, not an event: a file's
			 * mtime says when the batch last changed. */
			if (t > b->mtime && strcmp(name, "expires_at") != 0)
				b->mtime = t;
			if (strcmp(name, "created_at") == 0)
				b->created_at = t;
			snprintf(num, sizeof(num), "%" PRId64, t);
			text = num;
		}
		if (bfile_set(&b->values[b->nvalues], name, text) < 0)
			return -ENOMEM;
		if (strcmp(name, "status") == 0) {
			b->status = strdup(text);
			if (!b->status)
				return -ENOMEM;
		}
		b->nvalues++;
	}
	return 0;
}

static int parse_meta(const cJSON *obj, struct batch *b, char *err,
		      size_t errlen)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *kv;
	size_t n = 0;

	if (!md || cJSON_IsNull(md))
		return 0;
	if (!cJSON_IsObject(md))
		return set_err(err, errlen, "metadata is not an object");
	cJSON_ArrayForEach (kv, md)
		n++;
	b->meta = calloc(n ? n : 1, sizeof(*b->meta));
	if (!b->meta)
		return -ENOMEM;
	cJSON_ArrayForEach (kv, md) {
		/* Unsafe keys, non-string values and repeated keys are not
		 * shown: batch.json still has them. */
		if (!cJSON_IsString(kv) || !batch_name_safe(kv->string) ||
		    batch_meta(b, kv->string))
			continue;
		if (bfile_set(&b->meta[b->nmeta], kv->string, kv->valuestring) <
		    0)
			return -ENOMEM;
		b->nmeta++;
	}
	return 0;
}

int batch_from_json(const cJSON *obj, struct batch **out, char *err,
		    size_t errlen)
{
	struct batch *b;
	const cJSON *id;
	int r;

	*out = NULL;
	if (!cJSON_IsObject(obj))
		return set_err(err, errlen, "batch is not a JSON object");
	id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	if (!cJSON_IsString(id))
		return set_err(err, errlen, "id is %s",
			       id ? "not a string" : "missing");
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->refs = 1;
	b->id = strdup(id->valuestring);
	r = b->id ? 0 : -ENOMEM;
	if (r == 0)
		r = parse_values(obj, b, err, errlen);
	if (r == 0)
		r = parse_counts(obj, b, err, errlen);
	if (r == 0)
		r = parse_meta(obj, b, err, errlen);
	if (r == 0)
		r = render_json(obj, &b->json);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		batch_unref(b);
		return r;
	}
	b->final = batch_status_final(b->status);
	*out = b;
	return 0;
}

struct batch *batch_ref(struct batch *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

static void bfile_free(struct bfile *f)
{
	free(f->name);
	free(f->data);
}

void batch_unref(struct batch *b)
{
	if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < b->nvalues; i++)
		bfile_free(&b->values[i]);
	for (size_t i = 0; i < b->nmeta; i++)
		bfile_free(&b->meta[i]);
	for (int i = 0; i < 3; i++)
		bfile_free(&b->counts[i]);
	bfile_free(&b->json);
	free(b->values);
	free(b->meta);
	free(b->status);
	free(b->id);
	free(b);
}

static const struct bfile *find(const struct bfile *v, size_t n,
				const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].name && strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

const struct bfile *batch_value(const struct batch *b, const char *name)
{
	return find(b->values, b->nvalues, name);
}

const struct bfile *batch_count(const struct batch *b, const char *name)
{
	return find(b->counts, 3, name);
}

const struct bfile *batch_meta(const struct batch *b, const char *key)
{
	return find(b->meta, b->nmeta, key);
}
