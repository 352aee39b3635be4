/*
 * fuzz_batch.c - libFuzzer target: any bytes as a BatchObject, parsed as an
 * answer is (json_parse). Parsing must never crash, leak or accept an
 * object without its required fields; every rendered file must end with
 * exactly one newline (each rendered on demand, as an open does); no count
 * or time is negative; at most BATCH_META_MAX
 * metadata files; batch.json is valid JSON again; and no string shown (the
 * id, a value, a metadata key or value) is cut short: each is, byte for byte
 * and length included, the decoded text of a string token of the input
 * (decoded here independently of cJSON). A kimifs tag in the metadata is
 * within its bounds and writes back the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "job_tag.h"
#include "kind.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_file(const struct bfile *f)
{
	if (f->len == 0 || f->data[f->len - 1] != '\n' ||
	    strlen(f->data) != f->len)
		abort();
}

static void check_number(const struct bfile *f)
{
	check_file(f);
	if (f->data[0] < '0' || f->data[0] > '9')
		abort(); /* negative, or not a number at all */
}

struct tok {
	char *s;
	size_t n;
};

static void put_utf8(char *o, size_t *n, unsigned long c)
{
	if (c < 0x80) {
		o[(*n)++] = (char)c;
	} else if (c < 0x800) {
		o[(*n)++] = (char)(0xC0 | (c >> 6));
		o[(*n)++] = (char)(0x80 | (c & 0x3F));
	} else if (c < 0x10000) {
		o[(*n)++] = (char)(0xE0 | (c >> 12));
		o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[(*n)++] = (char)(0x80 | (c & 0x3F));
	} else {
		o[(*n)++] = (char)(0xF0 | (c >> 18));
		o[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3F));
		o[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[(*n)++] = (char)(0x80 | (c & 0x3F));
	}
}

static long hex4(const char *p, const char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Decode one token's inner bytes [p, end) into o; 0 when it is not a valid
 * JSON string (such a token is no candidate). */
static int decode(const char *p, const char *end, char *o, size_t *k)
{
	for (; p < end; p++) {
		long c, lo;

		if (*p != '\\') {
			o[(*k)++] = *p;
			continue;
		}
		if (++p >= end)
			return 0;
		switch (*p) {
		case 'b':
			o[(*k)++] = '\b';
			break;
		case 'f':
			o[(*k)++] = '\f';
			break;
		case 'n':
			o[(*k)++] = '\n';
			break;
		case 'r':
			o[(*k)++] = '\r';
			break;
		case 't':
			o[(*k)++] = '\t';
			break;
		case '"':
		case '\\':
		case '/':
			o[(*k)++] = *p;
			break;
		case 'u':
			c = hex4(p + 1, end);
			if (c < 0)
				return 0;
			p += 4;
			if (c >= 0xD800 && c <= 0xDBFF && end - p > 6 &&
			    p[1] == '\\' && p[2] == 'u' &&
			    (lo = hex4(p + 3, end)) >= 0xDC00 && lo <= 0xDFFF) {
				c = 0x10000 + ((c & 0x3FF) << 10) +
				    (lo & 0x3FF);
				p += 6;
			}
			put_utf8(o, k, (unsigned long)c);
			break;
		default:
			return 0;
		}
	}
	return 1;
}

/* Decode every "..." token of the text, its end found as cJSON finds it (a
 * backslash takes the next byte along); *out gets the valid ones, with
 * their lengths. */
static size_t decode_tokens(const char *t, size_t len, struct tok **out)
{
	const char *end = t + len, *p = t, *q;
	struct tok *v = calloc(len / 2 + 1, sizeof(*v));
	size_t n = 0;

	while (v && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
		size_t k = 0;
		char *o;

		for (q = p + 1; q < end && *q != '"'; q++)
			if (*q == '\\')
				q++;
		if (q >= end)
			break;
		o = malloc((size_t)(q - p) * 4 + 1);
		if (o && decode(p + 1, q, o, &k)) {
			v[n].s = o;
			v[n++].n = k;
		} else {
			free(o);
		}
		p = q + 1;
	}
	*out = v;
	return n;
}

/* By length, then by bytes. */
static int tok_cmp(const void *a, const void *b)
{
	const struct tok *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return memcmp(x->s, y->s, x->n);
}

/* Whether the n bytes at s are exactly one of the (sorted) tokens. */
static int is_token_n(const struct tok *v, size_t n, const char *s, size_t len)
{
	struct tok key = {(char *)s, len};

	return bsearch(&key, v, n, sizeof(*v), tok_cmp) != NULL;
}

static int is_token(const struct tok *v, size_t n, const char *s)
{
	return is_token_n(v, n, s, strlen(s));
}

/* The same for a rendered file, whose data ends with a newline. */
static int is_token_file(const struct tok *v, size_t n, const struct bfile *f)
{
	return is_token_n(v, n, f->data, f->len - 1);
}

/* Metadata files rendered per input, at most. */
#define FUZZ_META_RENDERED 8

/* Every file of a snapshot, rendered (batch_render). */
struct files {
	struct bfile values[32];
	size_t nvalues;
	struct bfile counts[3];
	struct bfile *meta;
	size_t nmeta;
	struct bfile json;
};

static void render(const struct batch *b, enum batch_part part,
		   const char *name, struct bfile *f)
{
	f->name = (char *)name;
	if (batch_render(b, part, name, &f->data, &f->len) < 0)
		abort(); /* a file the snapshot says it has */
}

static void render_all(const struct batch *b, struct files *f)
{
	static const char *const counts[3] = {"total", "completed", "failed"};
	char **keys;

	memset(f, 0, sizeof(*f));
	/* The value files of the descriptor; [0] is batch.json. */
	for (size_t i = 1; i < batch_kind.nvalues; i++) {
		const struct object_value *v = &batch_kind.values[i];

		if (v->present(b, v->name))
			render(b, BATCH_VALUE, v->name,
			       &f->values[f->nvalues++]);
	}
	for (int i = 0; i < 3; i++)
		render(b, BATCH_COUNT, counts[i], &f->counts[i]);
	if (batch_meta_keys(b, &keys, &f->nmeta) < 0)
		abort();
	if (f->nmeta > BATCH_META_MAX)
		abort();
	/* Each rendering parses the whole object again: the first keys
	 * stand for the rest, which keeps a run quick. */
	for (size_t i = FUZZ_META_RENDERED; i < f->nmeta; i++)
		free(keys[i]);
	if (f->nmeta > FUZZ_META_RENDERED)
		f->nmeta = FUZZ_META_RENDERED;
	f->meta = calloc(f->nmeta ? f->nmeta : 1, sizeof(*f->meta));
	if (!f->meta)
		abort();
	for (size_t i = 0; i < f->nmeta; i++)
		render(b, BATCH_META, keys[i], &f->meta[i]);
	for (size_t i = 0; i < f->nmeta; i++)
		f->meta[i].name = keys[i]; /* freed with f */
	free(keys);
	render(b, BATCH_JSON, "batch.json", &f->json);
}

static void free_all(struct files *f)
{
	for (size_t i = 0; i < f->nvalues; i++)
		free(f->values[i].data);
	for (int i = 0; i < 3; i++)
		free(f->counts[i].data);
	for (size_t i = 0; i < f->nmeta; i++) {
		free(f->meta[i].name);
		free(f->meta[i].data);
	}
	free(f->meta);
	free(f->json.data);
}

static void check_not_cut(const uint8_t *data, size_t size,
			  const struct batch *bt, const struct files *b)
{
	struct tok *v;
	size_t n = decode_tokens((const char *)data, size, &v);

	if (!v)
		return;
	qsort(v, n, sizeof(*v), tok_cmp);
	if (!is_token(v, n, bt->id))
		abort();
	for (size_t i = 0; i < b->nvalues; i++) {
		size_t k = strlen(b->values[i].name);

		if (!(k > 3 && !strcmp(b->values[i].name + k - 3, "_at")) &&
		    !is_token_file(v, n, &b->values[i]))
			abort();
	}
	for (size_t i = 0; i < b->nmeta; i++)
		if (!is_token(v, n, b->meta[i].name) ||
		    !is_token_file(v, n, &b->meta[i]))
			abort();
	for (size_t i = 0; i < n; i++)
		free(v[i].s);
	free(v);
}

/* The kimifs_* keys, when they make a tag, are within their bounds and
 * write back as the same tag. */
static void check_tag(const struct batch *bt)
{
	struct job_tag t, back;
	struct batch_params p = {0};
	cJSON *m;
	char why[256];
	int r = job_tag_of(bt, &t, why, sizeof(why));

	if (r <= 0)
		return;
	if ((t.job[0] && (!job_name_valid(t.job) || !t.part ||
			  t.part > t.parts || t.parts > JOB_PARTS_MAX)) ||
	    t.round > JOB_ROUNDS_MAX || (t.retries[0] && !t.round) ||
	    (!t.job[0] && !t.retries[0]))
		abort();
	if (job_tag_write(&t, &p, why, sizeof(why)) < 0)
		abort();
	m = cJSON_CreateObject();
	for (size_t i = 0; m && i < p.nmeta; i++)
		cJSON_AddStringToObject(m, p.meta[i].key, p.meta[i].value);
	if (m && (job_tag_read(m, &back, why, sizeof(why)) != 1 ||
		  memcmp(&back, &t, sizeof(t)) != 0))
		abort();
	cJSON_Delete(m);
	params_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nuls;
	cJSON *root = json_parse((const char *)data, size, &nuls);
	struct batch *bt;
	cJSON *again;
	char err[256];

	if (!root)
		return 0;
	if (batch_from_json(root, &bt, err, sizeof(err)) == 0) {
		struct files all, *b = &all;

		render_all(bt, &all);
		if (!bt->id || !bt->status || !batch_has_value(bt, "status") ||
		    !batch_has_value(bt, "created_at"))
			abort();
		for (size_t i = 0; i < b->nvalues; i++) {
			size_t n = strlen(b->values[i].name);

			if (n > 3 && !strcmp(b->values[i].name + n - 3, "_at"))
				check_number(&b->values[i]);
			else
				check_file(&b->values[i]);
		}
		if (b->nmeta > BATCH_META_MAX)
			abort();
		for (size_t i = 0; i < b->nmeta; i++) {
			check_file(&b->meta[i]);
			if (!batch_name_safe(b->meta[i].name))
				abort();
		}
		for (int i = 0; i < 3; i++)
			check_number(&b->counts[i]);
		check_file(&b->json);
		check_file(&bt->json);
		/* Raw nodes (strings holding a NUL) print as valid JSON. */
		again = cJSON_ParseWithLength(b->json.data, b->json.len);
		if (!again)
			abort();
		cJSON_Delete(again);
		check_not_cut(data, size, bt, b);
		check_tag(bt);
		free_all(&all);
		batch_unref(bt);
	}
	cJSON_Delete(root);
	return 0;
}
