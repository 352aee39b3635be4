/*
 * batch.c - BatchObject parsing and rendering: JSON to an immutable snapshot
 * whose files are ready to read. Strict on the schema's required fields and
 * on types, lenient on unknown fields (kept in batch.json). Everything here
 * is linear in the size of the answer, whatever a server sends.
 */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
	if (!f->name || !f->data) {
		free(f->name);
		free(f->data);
		f->name = f->data = NULL;
		return -ENOMEM;
	}
	memcpy(f->data, value, n);
	f->data[n] = '\n';
	f->data[n + 1] = '\0';
	f->len = n + 1;
	return 0;
}

/*
 * A JSON number that is a whole number (of seconds, or of requests): 0, -1
 * when v is not one, -2 when it is negative. Neither a count nor a time of
 * this API can be negative: a count below zero is nonsense, and a time
 * before 1970 would be shown by stat and ls as a date in 1969 (or far
 * earlier), so both make the object malformed rather than shown as sent.
 */
static int json_int(const cJSON *v, int64_t *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 ||
	    d > 9007199254740992.0)
		return -1;
	if (d < 0)
		return -2;
	*out = (int64_t)d;
	return 0;
}

/* Why a string field cannot be used: a NUL inside (json_parse made
 * it a raw node), another type, or absent. */
static const char *not_string(const cJSON *v)
{
	if (cJSON_IsRaw(v))
		return "holds a NUL character";
	return v ? "is not a string" : "is missing";
}

/*
 * The lines cJSON_Print writes for node (printed at nesting depth `depth`)
 * and the tabs that indent them: one line per object member and one per
 * closing brace, indented by the nesting depth (arrays nest too).
 */
static void layout_cost(const cJSON *node, size_t depth, size_t *lines,
			size_t *tabs)
{
	int object = cJSON_IsObject(node);

	if (!object && !cJSON_IsArray(node))
		return;
	depth++;
	for (const cJSON *c = node->child; c; c = c->next) {
		if (object) {
			(*lines)++;
			*tabs += depth;
		}
		layout_cost(c, depth, lines, tabs);
	}
	if (object) {
		(*lines)++;
		*tabs += depth - 1;
	}
}

/* Indentation allowed per line on average, in levels. */
#define MAX_MEAN_DEPTH 8

/*
 * cJSON indents with tabs and puts a tab after each colon; strings never hold
 * a raw tab (cJSON escapes it, and json_parse escapes control
 * characters in raw nodes), so every tab is layout. Rewrite leading tabs as
 * two spaces each and the others as one space, and end with a newline.
 *
 * Indentation grows with depth: objects nested a few hundred deep (cJSON
 * allows 1000) would print as hundreds of times the answer's size. When the
 * lines would be indented more than MAX_MEAN_DEPTH levels on average, the
 * object is printed on one line instead, so batch.json stays within a small
 * multiple of the answer.
 */
static int render_json(const cJSON *obj, const char *id, struct bfile *f)
{
	size_t lines = 0, tabs = 0, n = 0, i;
	int bol = 1, pretty;
	char *raw, *out;

	layout_cost(obj, 0, &lines, &tabs);
	pretty = tabs <= MAX_MEAN_DEPTH * lines;
	if (!pretty)
		log_warn("batch %s: batch.json nested too deep to indent; "
			 "shown on one line",
			 id);
	raw = pretty ? cJSON_Print(obj) : cJSON_PrintUnformatted(obj);
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

/* The top-level members batch_from_json reads: the value fields (in the
 * order of value_fields), then these. */
enum { F_ID = NFIELDS, F_COUNTS, F_META, NTOP };

/*
 * Find the members of obj called names[0..n-1] in one walk: found[i] is the
 * first member called names[i], as cJSON_GetObjectItemCaseSensitive would
 * return, or NULL. One walk rather than one per name: each is linear, but
 * over an object of a million unknown members every walk is a long chase
 * through memory.
 */
static void find_members(const cJSON *obj, const char *const *names, size_t n,
			 const cJSON **found)
{
	size_t left = n;

	for (size_t i = 0; i < n; i++)
		found[i] = NULL;
	for (const cJSON *c = obj->child; c && left; c = c->next) {
		if (!c->string)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (!found[i] && strcmp(c->string, names[i]) == 0) {
				found[i] = c;
				left--;
				break;
			}
		}
	}
}

static int parse_counts(const cJSON *rc, struct batch *b, char *err,
			size_t errlen)
{
	const cJSON *found[3];
	char num[32];
	int64_t v;

	if (!cJSON_IsObject(rc))
		return set_err(err, errlen, "request_counts is %s",
			       rc ? "not an object" : "missing");
	find_members(rc, count_names, 3, found);
	for (int i = 0; i < 3; i++) {
		const cJSON *c = found[i];
		int r = json_int(c, &v);

		if (r < 0)
			return set_err(err, errlen, "request_counts.%s is %s",
				       count_names[i],
				       r == -2 ? "negative"
				       : c     ? "not an integer"
					       : "missing");
		snprintf(num, sizeof(num), "%" PRId64, v);
		if (bfile_set(&b->counts[i], count_names[i], num) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int parse_values(const cJSON *const *top, struct batch *b, char *err,
			size_t errlen)
{
	char num[32];

	b->values = calloc(NFIELDS, sizeof(*b->values));
	if (!b->values)
		return -ENOMEM;
	for (size_t i = 0; i < NFIELDS; i++) {
		const char *name = value_fields[i].name;
		const cJSON *v = top[i];
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
				return set_err(err, errlen, "%s %s", name,
					       not_string(v));
			text = v->valuestring;
		} else {
			int r = json_int(v, &t);

			if (r < 0)
				return set_err(err, errlen, "%s is %s", name,
					       r == -2 ? "negative"
						       : "not a timestamp");
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

/* A metadata pair that may be shown, in the order of the object. */
struct cand {
	const char *key;
	const char *value;
	int dup;
};

/* By key, then by position (cand pointers into one array): equal keys
 * sort in the order they came. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a;
	const struct cand *y = *(const struct cand *const *)b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x > y) - (x < y);
}

/*
 * Only the first BATCH_META_MAX members are looked at (see batch.h); the
 * duplicate check sorts those, so a metadata object costs at most
 * BATCH_META_MAX log BATCH_META_MAX key comparisons plus a walk over the
 * rest, however many pairs or repeated keys an answer holds.
 */
static int parse_meta(const cJSON *md, struct batch *b, char *err,
		      size_t errlen)
{
	const cJSON *kv;
	struct cand *cand = NULL, **order = NULL;
	size_t n = 0, seen = 0, rest = 0;
	int r = 0;

	if (!md || cJSON_IsNull(md))
		return 0;
	if (!cJSON_IsObject(md))
		return set_err(err, errlen, "metadata is not an object");
	cand = calloc(BATCH_META_MAX, sizeof(*cand));
	order = calloc(BATCH_META_MAX, sizeof(*order));
	if (!cand || !order) {
		r = -ENOMEM;
		goto out;
	}
	for (kv = md->child; kv && seen < BATCH_META_MAX; kv = kv->next) {
		seen++;
		/* Unsafe keys and non-string values (a value holding a NUL
		 * is a raw node, see json_parse) are not shown:
		 * batch.json still has them. */
		if (!cJSON_IsString(kv) || !batch_name_safe(kv->string))
			continue;
		cand[n].key = kv->string;
		cand[n].value = kv->valuestring;
		order[n] = &cand[n];
		n++;
	}
	for (; kv; kv = kv->next)
		rest++;
	if (rest)
		log_warn("batch %s: metadata has %zu pairs; only the first %d "
			 "are shown",
			 b->id, seen + rest, BATCH_META_MAX);
	/* A repeated key shows its first value only. */
	qsort(order, n, sizeof(*order), cand_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(order[i - 1]->key, order[i]->key) == 0)
			order[i]->dup = 1;
	b->meta = calloc(n ? n : 1, sizeof(*b->meta));
	if (!b->meta) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (cand[i].dup)
			continue;
		if (bfile_set(&b->meta[b->nmeta], cand[i].key, cand[i].value) <
		    0) {
			r = -ENOMEM;
			goto out;
		}
		b->nmeta++;
	}
out:
	free(order);
	free(cand);
	return r;
}

int batch_from_json(const cJSON *obj, struct batch **out, char *err,
		    size_t errlen)
{
	const cJSON *top[NTOP], *id;
	const char *names[NTOP];
	struct batch *b;
	int r;

	*out = NULL;
	if (!cJSON_IsObject(obj))
		return set_err(err, errlen, "batch is not a JSON object");
	for (size_t i = 0; i < NFIELDS; i++)
		names[i] = value_fields[i].name;
	names[F_ID] = "id";
	names[F_COUNTS] = "request_counts";
	names[F_META] = "metadata";
	find_members(obj, names, NTOP, top);
	id = top[F_ID];
	if (!cJSON_IsString(id))
		return set_err(err, errlen, "id %s", not_string(id));
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->refs = 1;
	b->id = strdup(id->valuestring);
	r = b->id ? 0 : -ENOMEM;
	if (r == 0)
		r = parse_values(top, b, err, errlen);
	if (r == 0)
		r = parse_counts(top[F_COUNTS], b, err, errlen);
	if (r == 0)
		r = parse_meta(top[F_META], b, err, errlen);
	if (r == 0)
		r = render_json(obj, b->id, &b->json);
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
