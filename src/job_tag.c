/*
 * job_tag.c - the kimifs_* keys of a batch's metadata (job_tag.h): read
 * strictly from what the server holds, written into the parameters of a
 * new batch, and the file names of a job's parts.
 */
#include "job_tag.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonl_check.h"
#include "util.h"

int job_name_valid(const char *name)
{
	char file[JOB_NAME_MAX + sizeof(".jsonl")];

	if (!name || strlen(name) > JOB_NAME_MAX || !batch_name_safe(name))
		return 0;
	snprintf(file, sizeof(file), "%s.jsonl", name);
	return jsonl_name_problem(file) == NULL;
}

/* A whole number from 1 to max written without sign or leading zero, at
 * the start of *s (moved past it): the number, or 0. */
static unsigned number(const char **s, unsigned max)
{
	unsigned long v = 0;
	const char *p = *s;

	if (*p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return 0;
	}
	*s = p;
	return (unsigned)v;
}

/* The string value of key in metadata: 1 with *value, 0 when absent,
 * -EINVAL when it is no string. */
static int string_of(const cJSON *metadata, const char *key, const char **value)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(metadata, key);

	*value = NULL;
	if (!v)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return -EINVAL;
	*value = v->valuestring;
	return 1;
}

/* "3/12" into t. */
static int read_part(const char *s, struct job_tag *t)
{
	t->part = number(&s, JOB_PARTS_MAX);
	if (!t->part || *s++ != '/')
		return -EINVAL;
	t->parts = number(&s, JOB_PARTS_MAX);
	return t->parts && !*s && t->part <= t->parts ? 0 : -EINVAL;
}

/* "2" or "1 batch_abc" into t. */
static int read_retry(const char *s, struct job_tag *t)
{
	t->round = number(&s, JOB_ROUNDS_MAX);
	if (!t->round)
		return -EINVAL;
	if (!*s)
		return 0;
	if (*s++ != ' ' || !batch_id_valid(s))
		return -EINVAL;
	snprintf(t->retries, sizeof(t->retries), "%s", s);
	return 0;
}

int job_tag_read(const cJSON *metadata, struct job_tag *t, char *why,
		 size_t whylen)
{
	const char *job, *part, *retry;
	int hj, hp, hr;

	memset(t, 0, sizeof(*t));
	if (!cJSON_IsObject(metadata))
		return 0;
	hj = string_of(metadata, JOB_TAG_JOB, &job);
	hp = string_of(metadata, JOB_TAG_PART, &part);
	hr = string_of(metadata, JOB_TAG_RETRY, &retry);
	if (hj < 0 || hp < 0 || hr < 0)
		return util_reason(-EINVAL, why, whylen, "metadata %s: %s",
				   hj < 0   ? JOB_TAG_JOB
				   : hp < 0 ? JOB_TAG_PART
					    : JOB_TAG_RETRY,
				   "not a string");
	if (!hj && !hp && !hr)
		return 0;
	if (hj != hp)
		return util_reason(-EINVAL, why, whylen, "metadata %s: %s",
				   hj ? JOB_TAG_PART : JOB_TAG_JOB, "missing");
	if (hj && !job_name_valid(job))
		return util_reason(-EINVAL, why, whylen,
				   "metadata " JOB_TAG_JOB ": not a job name");
	if (hp && read_part(part, t) < 0)
		return util_reason(-EINVAL, why, whylen,
				   "metadata " JOB_TAG_PART ": not N/M");
	if (hr && read_retry(retry, t) < 0)
		return util_reason(-EINVAL, why, whylen,
				   "metadata " JOB_TAG_RETRY
				   ": not a round, then a batch id");
	if (hr && !hj && !t->retries[0])
		return util_reason(-EINVAL, why, whylen,
				   "metadata " JOB_TAG_RETRY
				   ": a round of no job and no batch");
	if (hj)
		snprintf(t->job, sizeof(t->job), "%s", job);
	return 1;
}

int job_tag_of(const struct batch *b, struct job_tag *t, char *why,
	       size_t whylen)
{
	size_t nuls;
	cJSON *obj = json_parse(b->json.data, b->json.len, &nuls);
	int r;

	if (!obj) {
		memset(t, 0, sizeof(*t));
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return -ENOMEM; /* the snapshot was parsed once already */
	}
	r = job_tag_read(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), t,
			 why, whylen);
	cJSON_Delete(obj);
	return r;
}

static int ours(const char *key)
{
	return strncmp(key, JOB_TAG_PREFIX, strlen(JOB_TAG_PREFIX)) == 0;
}

const char *job_tag_job(const struct batch_params *p)
{
	for (size_t i = 0; i < p->nmeta; i++)
		if (strcmp(p->meta[i].key, JOB_TAG_JOB) == 0)
			return p->meta[i].value;
	return NULL;
}

int job_tag_user_ok(const struct batch_params *p, char *why, size_t whylen)
{
	size_t user = 0;

	for (size_t i = 0; i < p->nmeta; i++) {
		if (ours(p->meta[i].key)) {
			snprintf(why, whylen,
				 "metadata keys starting with %s are kimifs's "
				 "own (%s)",
				 JOB_TAG_PREFIX, p->meta[i].key);
			return -EINVAL;
		}
		user++;
	}
	if (user > JOB_USER_META) {
		snprintf(why, whylen,
			 "at most %d metadata pairs (kimifs keeps %d of the "
			 "API's %d for its own keys), not %zu",
			 JOB_USER_META, JOB_TAG_KEYS, PARAMS_META_MAX, user);
		return -EINVAL;
	}
	return 0;
}

/* Append key=value to p's metadata (room checked by the caller). */
static int add(struct batch_params *p, const char *key, const char *value)
{
	char *k = strdup(key), *v = strdup(value);

	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	p->meta[p->nmeta].key = k;
	p->meta[p->nmeta].value = v;
	p->nmeta++;
	return 0;
}

int job_tag_write(const struct job_tag *t, struct batch_params *p, char *why,
		  size_t whylen)
{
	char value[32 + BATCH_ID_MAX];
	size_t kept = 0, need;
	int r = 0;

	for (size_t i = 0; i < p->nmeta; i++) {
		if (ours(p->meta[i].key)) {
			free(p->meta[i].key);
			free(p->meta[i].value);
			continue;
		}
		p->meta[kept++] = p->meta[i];
	}
	p->nmeta = kept;
	need = (t->job[0] ? 2 : 0) + (t->round ? 1 : 0);
	if (kept + need > PARAMS_META_MAX)
		r = util_reason(-EINVAL, why, whylen,
				"%zu metadata pairs leave no room for kimifs's "
				"%zu keys (at most %d pairs in all)",
				kept, need, PARAMS_META_MAX);
	if (r == 0 && t->job[0])
		r = add(p, JOB_TAG_JOB, t->job);
	if (r == 0 && t->job[0]) {
		snprintf(value, sizeof(value), "%u/%u", t->part, t->parts);
		r = add(p, JOB_TAG_PART, value);
	}
	if (r == 0 && t->round) {
		snprintf(value, sizeof(value), "%u%s%s", t->round,
			 t->retries[0] ? " " : "", t->retries);
		r = add(p, JOB_TAG_RETRY, value);
	}
	if (r == -ENOMEM)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	return r;
}

int job_part_name(const char *name, unsigned round, unsigned part,
		  unsigned parts, char *out, size_t size)
{
	char r[16] = "";
	int n;

	if (!part || part > parts || parts > JOB_PARTS_MAX ||
	    round > JOB_ROUNDS_MAX || !job_name_valid(name))
		return -EINVAL;
	if (round)
		snprintf(r, sizeof(r), ".r%u", round);
	n = snprintf(out, size, "%s%s.part-%04u-of-%04u.jsonl", name, r, part,
		     parts);
	return n < 0 || (size_t)n >= size || n > 255 ? -EINVAL : 0;
}
