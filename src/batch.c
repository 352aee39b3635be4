/*
 * batch.c - BatchObject parsing and rendering: JSON to an immutable snapshot
 * (the object as compact JSON and a few facts about it), and each file of
 * the batch's directory rendered from that JSON on demand. Strict on the
 * schema's required fields and on types, lenient on unknown fields (kept in
 * batch.json). Everything here is linear in the size of the answer,
 * whatever a server sends.
 */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_print.h"
#include "util.h"
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

static const char *const count_names[3] = {"total", "completed", "failed"};

static const char *const final_states[] = {"completed", "failed", "expired",
					   "cancelled", NULL};

/* The statuses of the API: a snapshot points at these instead of a copy. */
static const char *const known_states[] = {
    "validating", "failed",	"in_progress", "finalizing", "completed",
    "expired",	  "cancelling", "cancelled",   NULL};

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

/* "text\n" malloc'd into *out and *len; 0 or -ENOMEM. */
static int line(const char *text, char **out, size_t *len)
{
	size_t n = strlen(text);

	*out = malloc(n + 2);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, text, n);
	(*out)[n] = '\n';
	(*out)[n + 1] = '\0';
	*len = n + 1;
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
 * batch.json: the compact JSON of the snapshot laid out as cJSON_Print lays
 * it out (two spaces for each of its tabs). Indentation grows with depth:
 * objects nested a few hundred deep (cJSON allows 1000) would print as
 * hundreds of times the answer's size. When the lines would be indented
 * more than 8 levels on average, the object is shown on one line instead
 * (b->flat), so batch.json stays within a small multiple of the answer.
 */
static const struct json_print batch_json = {
    .layout = JSON_LAYOUT_CJSON, .depth_max = JSON_DEPTH_LIMIT, .flat_mean = 8};

static int render_json(const struct batch *b, char **out, size_t *len)
{
	struct json_print opt = batch_json;

	opt.flat_mean = 0;
	if (b->flat)
		opt.layout = JSON_LAYOUT_COMPACT;
	return json_pretty(b->json.data, b->json.len, &opt, out, len);
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

/* Check request_counts: an object of three whole, non-negative numbers. */
static int parse_counts(const cJSON *rc, char *err, size_t errlen)
{
	const cJSON *found[3];
	int64_t v;

	if (!cJSON_IsObject(rc))
		return util_reason(-EIO, err, errlen, "request_counts is %s",
				   rc ? "not an object" : "missing");
	find_members(rc, count_names, 3, found);
	for (int i = 0; i < 3; i++) {
		const cJSON *c = found[i];
		int r = json_int(c, &v);

		if (r < 0)
			return util_reason(-EIO, err, errlen,
					   "request_counts.%s is %s",
					   count_names[i],
					   r == -2 ? "negative"
					   : c	   ? "not an integer"
						   : "missing");
	}
	return 0;
}

/*
 * The text value field i shows for node v (not null), into text (at least
 * 32 bytes for a time): 0 with *shown pointing at it, or -EIO with the
 * reason in err. *t gets a time field's value.
 */
static int value_text(size_t i, const cJSON *v, char *num, const char **shown,
		      int64_t *t, char *err, size_t errlen)
{
	const char *name = value_fields[i].name;
	int r;

	if (value_fields[i].type == V_STR) {
		if (!cJSON_IsString(v))
			return util_reason(-EIO, err, errlen, "%s %s", name,
					   not_string(v));
		*shown = v->valuestring;
		return 0;
	}
	r = json_int(v, t);
	if (r < 0)
		return util_reason(-EIO, err, errlen, "%s is %s", name,
				   r == -2 ? "negative" : "not a timestamp");
	snprintf(num, 32, "%" PRId64, *t);
	*shown = num;
	return 0;
}

/* Check the value fields of top into b: which are present, the status,
 * the times. */
static int parse_values(const cJSON *const *top, struct batch *b,
			const char **status, char *err, size_t errlen)
{
	char num[32];

	for (size_t i = 0; i < NFIELDS; i++) {
		const char *name = value_fields[i].name;
		const cJSON *v = top[i];
		const char *text;
		int64_t t = 0;
		int r;

		if (!v || cJSON_IsNull(v)) {
			if (value_fields[i].required)
				return util_reason(-EIO, err, errlen,
						   "%s is missing", name);
			continue;
		}
		r = value_text(i, v, num, &text, &t, err, errlen);
		if (r < 0)
			return r;
		/* expires_at is a deadline, not an event: a file's mtime
		 * says when the batch last changed. */
		if (value_fields[i].type == V_TS && t > b->mtime &&
		    strcmp(name, "expires_at") != 0)
			b->mtime = t;
		if (strcmp(name, "created_at") == 0)
			b->created_at = t;
		if (strcmp(name, "status") == 0)
			*status = text;
		b->present |= 1u << i;
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
 * The metadata pairs of md that are shown, into *cands (malloc'd, *n of
 * them, in the order of the object, repeated keys marked dup): only the
 * first BATCH_META_MAX members are looked at (see batch.h); the duplicate
 * check sorts those, so a metadata object costs at most BATCH_META_MAX log
 * BATCH_META_MAX key comparisons plus a walk over the rest, however many
 * pairs or repeated keys an answer holds. *rest: the members past the cap.
 * md must be an object. 0 or -ENOMEM.
 */
static int meta_pairs(const cJSON *md, struct cand **cands, size_t *np,
		      size_t *rest)
{
	const cJSON *kv;
	struct cand *cand = calloc(BATCH_META_MAX, sizeof(*cand));
	struct cand **order = calloc(BATCH_META_MAX, sizeof(*order));
	size_t n = 0, seen = 0;

	*rest = 0;
	if (!cand || !order) {
		free(cand);
		free(order);
		return -ENOMEM;
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
		(*rest)++;
	/* A repeated key shows its first value only. */
	qsort(order, n, sizeof(*order), cand_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(order[i - 1]->key, order[i]->key) == 0)
			order[i]->dup = 1;
	free(order);
	*cands = cand;
	*np = n;
	return 0;
}

/* Check metadata (null, absent or an object); log once when it is cut.
 * *tagged: whether a key starts with kimifs_ (job_tag.h). */
static int parse_meta(const cJSON *md, const char *id, int *tagged, char *err,
		      size_t errlen)
{
	size_t rest = 0;

	if (!md || cJSON_IsNull(md))
		return 0;
	if (!cJSON_IsObject(md))
		return util_reason(-EIO, err, errlen,
				   "metadata is not an object");
	for (const cJSON *kv = md->child; kv; kv = kv->next) {
		rest++;
		if (kv->string && strncmp(kv->string, "kimifs_", 7) == 0)
			*tagged = 1;
	}
	if (rest > BATCH_META_MAX)
		log_warn("batch %s: metadata has %zu pairs; only the first %d "
			 "are shown",
			 id, rest, BATCH_META_MAX);
	return 0;
}

/* The shared constant for status, or NULL for one the API does not have. */
static const char *known_status(const char *status)
{
	for (int i = 0; known_states[i]; i++)
		if (strcmp(status, known_states[i]) == 0)
			return known_states[i];
	return NULL;
}

/*
 * Make the snapshot: one allocation for b's fields (from *facts), the id,
 * the status when it is not a known one, and the compact JSON of obj.
 */
/*
 * Each thread prints objects into a scratch buffer of its own, kept between
 * calls up to SCRATCH_KEEP bytes: the compact JSON is then copied once into
 * the snapshot's exact allocation, and no print buffer is made and freed
 * between snapshots (which, over a listing of large objects, left the
 * heap half holes).
 */
#define SCRATCH_KEEP (64 * 1024)

struct scratch {
	char *buf;
	size_t cap;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	struct scratch *sc = p;

	free(sc->buf);
	free(sc);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* obj printed compact into this thread's scratch buffer (valid until the
 * thread's next call), or NULL when memory ran out. */
static char *print_compact(const cJSON *obj, size_t *len)
{
	struct scratch *sc;

	pthread_once(&scratch_once, scratch_init);
	sc = pthread_getspecific(scratch_key);
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc || pthread_setspecific(scratch_key, sc) != 0) {
			free(sc);
			return NULL;
		}
	}
	for (size_t cap = sc->cap ? sc->cap : 4096;; cap *= 2) {
		if (cap > sc->cap) {
			char *grown = realloc(sc->buf, cap);

			if (!grown)
				return NULL;
			sc->buf = grown;
			sc->cap = cap;
		}
		/* cJSON asks for 5 bytes more than it may write. */
		if (cap > INT32_MAX ||
		    cJSON_PrintPreallocated((cJSON *)obj, sc->buf,
					    (int)sc->cap - 5, 0))
			break;
	}
	if (sc->cap > INT32_MAX)
		return NULL;
	*len = strlen(sc->buf);
	return sc->buf;
}

/* Give back a scratch buffer that grew past what is worth keeping. */
static void print_done(void)
{
	struct scratch *sc = pthread_getspecific(scratch_key);

	if (sc && sc->cap > SCRATCH_KEEP) {
		free(sc->buf);
		sc->buf = NULL;
		sc->cap = 0;
	}
}

static struct batch *snapshot(const cJSON *obj, const struct batch *facts,
			      const char *id, const char *status)
{
	const char *known = known_status(status);
	size_t idn = strlen(id) + 1, sn = known ? 0 : strlen(status) + 1, jn;
	char *json = print_compact(obj, &jn), *p;
	struct batch *b;

	if (!json)
		return NULL;
	b = malloc(sizeof(*b) + idn + sn + jn + 2);
	if (b) {
		*b = *facts;
		p = (char *)(b + 1);
		b->id = memcpy(p, id, idn);
		p += idn;
		b->status = known ? (char *)known : memcpy(p, status, sn);
		p += sn;
		b->json.data = memcpy(p, json, jn);
		b->json.data[jn] = '\n';
		b->json.data[jn + 1] = '\0';
		b->json.len = jn + 1;
	}
	print_done();
	return b;
}

int batch_from_json(const cJSON *obj, struct batch **out, char *err,
		    size_t errlen)
{
	const cJSON *top[NTOP], *id;
	const char *names[NTOP], *status = NULL;
	struct batch facts;
	int r;

	*out = NULL;
	if (!cJSON_IsObject(obj))
		return util_reason(-EIO, err, errlen,
				   "batch is not a JSON object");
	for (size_t i = 0; i < NFIELDS; i++)
		names[i] = value_fields[i].name;
	names[F_ID] = "id";
	names[F_COUNTS] = "request_counts";
	names[F_META] = "metadata";
	find_members(obj, names, NTOP, top);
	id = top[F_ID];
	if (!cJSON_IsString(id))
		return util_reason(-EIO, err, errlen, "id %s", not_string(id));
	memset(&facts, 0, sizeof(facts));
	facts.refs = 1;
	r = parse_values(top, &facts, &status, err, errlen);
	if (r == 0)
		r = parse_counts(top[F_COUNTS], err, errlen);
	if (r == 0)
		r = parse_meta(top[F_META], id->valuestring, &facts.tagged, err,
			       errlen);
	if (r < 0)
		return r;
	facts.final = batch_status_final(status);
	*out = snapshot(obj, &facts, id->valuestring, status);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*out)->flat = json_print_flat((*out)->json.data, (*out)->json.len,
				       &batch_json) == 1;
	if ((*out)->flat)
		log_warn("batch %s: batch.json nested too deep to indent; "
			 "shown on one line",
			 (*out)->id);
	return 0;
}

int bfile_same(const struct bfile *a, const struct bfile *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

struct batch *batch_ref(struct batch *b)
{
	__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
	return b;
}

void batch_unref(struct batch *b)
{
	if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(b); /* one allocation: see snapshot() */
}

/* Index of value file name, or -1. */
static int value_index(const char *name)
{
	for (size_t i = 0; i < NFIELDS; i++)
		if (strcmp(name, value_fields[i].name) == 0)
			return (int)i;
	return -1;
}

int batch_has_value(const struct batch *b, const char *name)
{
	int i = value_index(name);

	return i >= 0 && (b->present >> i) & 1;
}

/* b's object parsed again from its JSON, which parsed before; NULL when
 * out of memory. */
static cJSON *reparse(const struct batch *b)
{
	size_t nuls;

	return json_parse(b->json.data, b->json.len, &nuls);
}

/* The first member of obj called name, or NULL. */
static const cJSON *member(const cJSON *obj, const char *name)
{
	const cJSON *found;

	find_members(obj, &name, 1, &found);
	return found;
}

static int render_value(const cJSON *obj, const char *name, char **out,
			size_t *len)
{
	int i = value_index(name);
	const cJSON *v = i >= 0 ? member(obj, name) : NULL;
	const char *text;
	char num[32], err[8];
	int64_t t;

	if (!v || cJSON_IsNull(v))
		return -ENOENT;
	if (value_text((size_t)i, v, num, &text, &t, err, sizeof(err)) < 0)
		return -ENOENT; /* checked when parsed: not reached */
	return line(text, out, len);
}

static int render_count(const cJSON *obj, const char *name, char **out,
			size_t *len)
{
	const cJSON *rc = member(obj, "request_counts");
	const cJSON *c = NULL;
	char num[32];
	int64_t v;

	for (int i = 0; i < 3; i++)
		if (strcmp(name, count_names[i]) == 0)
			c = cJSON_IsObject(rc) ? member(rc, name) : NULL;
	if (!c || json_int(c, &v) < 0)
		return -ENOENT;
	snprintf(num, sizeof(num), "%" PRId64, v);
	return line(num, out, len);
}

/* The metadata pairs shown by obj; *n 0 when it has none. */
static int shown_meta(const cJSON *obj, struct cand **cands, size_t *n)
{
	const cJSON *md = member(obj, "metadata");
	size_t rest;

	*cands = NULL;
	*n = 0;
	if (!cJSON_IsObject(md))
		return 0;
	return meta_pairs(md, cands, n, &rest);
}

static int render_meta(const cJSON *obj, const char *key, char **out,
		       size_t *len)
{
	struct cand *cand;
	size_t n;
	int r = shown_meta(obj, &cand, &n);

	if (r == 0) {
		r = -ENOENT;
		for (size_t i = 0; i < n; i++) {
			if (!cand[i].dup && strcmp(cand[i].key, key) == 0) {
				r = line(cand[i].value, out, len);
				break;
			}
		}
	}
	free(cand);
	return r;
}

int batch_render(const struct batch *b, enum batch_part part, const char *name,
		 char **out, size_t *len)
{
	cJSON *obj;
	int r;

	*out = NULL;
	*len = 0;
	if (part == BATCH_VALUE && !batch_has_value(b, name))
		return -ENOENT; /* no parse for a null field */
	if (part == BATCH_JSON)
		return render_json(b, out, len); /* from the text: no parse */
	obj = reparse(b);
	if (!obj)
		return -ENOMEM;
	switch (part) {
	case BATCH_VALUE:
		r = render_value(obj, name, out, len);
		break;
	case BATCH_COUNT:
		r = render_count(obj, name, out, len);
		break;
	default:
		r = render_meta(obj, name, out, len);
		break;
	}
	cJSON_Delete(obj);
	return r;
}

int batch_meta_keys(const struct batch *b, char ***keys, size_t *np)
{
	cJSON *obj = reparse(b);
	struct cand *cand = NULL;
	size_t n = 0, k = 0;
	int r = obj ? shown_meta(obj, &cand, &n) : -ENOMEM;

	*keys = NULL;
	*np = 0;
	if (r == 0 && n && !(*keys = calloc(n, sizeof(**keys))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (cand[i].dup)
			continue;
		(*keys)[k] = strdup(cand[i].key);
		if (!(*keys)[k])
			r = -ENOMEM;
		else
			k++;
	}
	if (r < 0) {
		batch_free_keys(*keys, k);
		*keys = NULL;
		k = 0;
	}
	*np = k;
	free(cand);
	cJSON_Delete(obj);
	return r;
}

void batch_free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

int batch_counts(const struct batch *b, uint64_t counts[3])
{
	size_t nuls;
	cJSON *obj = json_parse(b->json.data, b->json.len, &nuls);
	const cJSON *rc = obj ? member(obj, "request_counts") : NULL;
	int64_t v;

	if (!obj)
		return -ENOMEM; /* the snapshot was parsed once already */
	for (int i = 0; i < 3; i++) {
		const cJSON *c =
		    cJSON_IsObject(rc) ? member(rc, count_names[i]) : NULL;

		counts[i] = c && json_int(c, &v) == 0 ? (uint64_t)v : 0;
	}
	cJSON_Delete(obj);
	return 0;
}

int batch_file_id(const struct batch *b, const char *field, char *out,
		  size_t size)
{
	char *text = NULL;
	size_t len = 0;
	int r = batch_render(b, BATCH_VALUE, field, &text, &len);

	if (r == 0 && (len < 2 || len > size || text[len - 1] != '\n'))
		r = -ENOENT;
	if (r == 0) {
		memcpy(out, text, len - 1);
		out[len - 1] = '\0';
		if (!batch_id_valid(out))
			r = -ENOENT;
	}
	free(text);
	if (r < 0 && size)
		out[0] = '\0';
	return r;
}
