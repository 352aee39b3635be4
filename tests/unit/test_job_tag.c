/*
 * test_job_tag.c - unit tests of the kimifs_* metadata keys: reading what
 * a server holds (strictly: anything malformed is no tag), writing them
 * into a new batch's parameters beside the user's pairs, the 13 pairs left
 * to the user, job names and the file names of parts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "job_tag.h"

static char why[256];

/* job_tag_read of the metadata in JSON text meta. */
static int read_meta(const char *meta, struct job_tag *t)
{
	cJSON *m = cJSON_Parse(meta);
	int r = job_tag_read(m, t, why, sizeof(why));

	cJSON_Delete(m);
	return r;
}

static int refused(const char *meta, const char *key)
{
	struct job_tag t;

	if (read_meta(meta, &t) != -EINVAL)
		return 0;
	if (strstr(why, key))
		return 1;
	fprintf(stderr, "%s: reason \"%s\" lacks \"%s\"\n", meta, why, key);
	return 0;
}

static void test_read(void)
{
	struct job_tag t;

	CHECK(read_meta("null", &t) == 0 && !t.job[0] && !t.round);
	CHECK(read_meta("{\"project\":\"x\"}", &t) == 0);
	CHECK(read_meta("{\"kimifs_job\":\"q\",\"kimifs_part\":\"3/12\"}",
			&t) == 1);
	CHECK(strcmp(t.job, "q") == 0 && t.part == 3 && t.parts == 12 &&
	      t.round == 0 && !t.retries[0]);
	CHECK(read_meta("{\"kimifs_job\":\"q\",\"kimifs_part\":\"1/1\","
			"\"kimifs_retry\":\"2\"}",
			&t) == 1);
	CHECK(t.round == 2 && !t.retries[0] && t.part == 1 && t.parts == 1);
	CHECK(read_meta("{\"kimifs_retry\":\"1 batch_abc\"}", &t) == 1);
	CHECK(!t.job[0] && t.round == 1 && strcmp(t.retries, "batch_abc") == 0);
	CHECK(read_meta("{\"kimifs_job\":\"q\",\"kimifs_part\":\"9999/9999\","
			"\"kimifs_retry\":\"3 batch_x\"}",
			&t) == 1);
	CHECK(t.part == 9999 && t.round == 3 && !strcmp(t.retries, "batch_x"));

	CHECK(refused("{\"kimifs_job\":\"q\"}", "kimifs_part"));
	CHECK(refused("{\"kimifs_part\":\"1/2\"}", "kimifs_job"));
	CHECK(refused("{\"kimifs_job\":1,\"kimifs_part\":\"1/2\"}",
		      "kimifs_job"));
	CHECK(refused("{\"kimifs_job\":\"q\",\"kimifs_part\":\"0/3\"}",
		      "kimifs_part"));
	CHECK(refused("{\"kimifs_job\":\"q\",\"kimifs_part\":\"4/3\"}",
		      "kimifs_part"));
	CHECK(refused("{\"kimifs_job\":\"q\",\"kimifs_part\":\"03/12\"}",
		      "kimifs_part"));
	CHECK(refused("{\"kimifs_job\":\"q\",\"kimifs_part\":\"1/10000\"}",
		      "kimifs_part"));
	CHECK(refused("{\"kimifs_job\":\"q\",\"kimifs_part\":\"1/2 \"}",
		      "kimifs_part"));
	CHECK(refused("{\"kimifs_job\":\"a/b\",\"kimifs_part\":\"1/2\"}",
		      "kimifs_job"));
	CHECK(refused("{\"kimifs_job\":\"\",\"kimifs_part\":\"1/2\"}",
		      "kimifs_job"));
	CHECK(refused("{\"kimifs_job\":\"q\\\"\",\"kimifs_part\":\"1/2\"}",
		      "kimifs_job"));
	CHECK(refused("{\"kimifs_retry\":\"2\"}", "kimifs_retry"));
	CHECK(refused("{\"kimifs_retry\":\"0 batch_a\"}", "kimifs_retry"));
	CHECK(refused("{\"kimifs_retry\":\"1  batch_a\"}", "kimifs_retry"));
	CHECK(refused("{\"kimifs_retry\":\"1 ../x\"}", "kimifs_retry"));
	CHECK(refused("{\"kimifs_retry\":[]}", "kimifs_retry"));
}

static void add_pair(struct batch_params *p, const char *k, const char *v)
{
	p->meta[p->nmeta].key = strdup(k);
	p->meta[p->nmeta].value = strdup(v);
	p->nmeta++;
}

static const char *value_of(const struct batch_params *p, const char *k)
{
	for (size_t i = 0; i < p->nmeta; i++)
		if (strcmp(p->meta[i].key, k) == 0)
			return p->meta[i].value;
	return NULL;
}

static void test_write(void)
{
	struct batch_params p = {0};
	struct job_tag t = {0}, back;
	char key[16];
	cJSON *m;

	/* A retry of a batch of a job: its old keys are replaced. */
	add_pair(&p, "project", "x");
	add_pair(&p, "kimifs_retry", "1 batch_old");
	add_pair(&p, "kimifs_job", "old");
	add_pair(&p, "owner", "y");
	snprintf(t.job, sizeof(t.job), "q");
	t.part = 2, t.parts = 5, t.round = 2;
	snprintf(t.retries, sizeof(t.retries), "batch_abc");
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == 0);
	CHECK(p.nmeta == 5);
	CHECK(strcmp(p.meta[0].key, "project") == 0 &&
	      strcmp(p.meta[1].key, "owner") == 0);
	CHECK(strcmp(value_of(&p, "kimifs_job"), "q") == 0);
	CHECK(strcmp(value_of(&p, "kimifs_part"), "2/5") == 0);
	CHECK(strcmp(value_of(&p, "kimifs_retry"), "2 batch_abc") == 0);
	/* What is written reads back the same. */
	m = cJSON_CreateObject();
	for (size_t i = 0; i < p.nmeta; i++)
		cJSON_AddStringToObject(m, p.meta[i].key, p.meta[i].value);
	CHECK(job_tag_read(m, &back, why, sizeof(why)) == 1);
	CHECK(memcmp(&back, &t, sizeof(t)) == 0);
	cJSON_Delete(m);
	params_free(&p);

	/* 13 pairs of the user's fit; 14 do not, and nothing is added. */
	memset(&p, 0, sizeof(p));
	for (int i = 0; i < JOB_USER_META; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		add_pair(&p, key, "v");
	}
	CHECK(job_tag_user_ok(&p, why, sizeof(why)) == 0);
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == 0 && p.nmeta == 16);
	params_free(&p);
	memset(&p, 0, sizeof(p));
	for (int i = 0; i <= JOB_USER_META; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		add_pair(&p, key, "v");
	}
	CHECK(job_tag_user_ok(&p, why, sizeof(why)) == -EINVAL &&
	      strstr(why, "at most 13"));
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == -EINVAL &&
	      p.nmeta == 14 && strstr(why, "no room for kimifs's 3 keys"));
	/* A retry of a batch made elsewhere with 15 pairs: its one key fits. */
	add_pair(&p, "k14", "v");
	memset(&t, 0, sizeof(t));
	t.round = 1;
	snprintf(t.retries, sizeof(t.retries), "batch_abc");
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == 0 && p.nmeta == 16);
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == 0 && p.nmeta == 16);
	params_free(&p);
	memset(&p, 0, sizeof(p));
	for (int i = 0; i < PARAMS_META_MAX; i++) { /* 16 of the user's */
		snprintf(key, sizeof(key), "k%d", i);
		add_pair(&p, key, "v");
	}
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == -EINVAL &&
	      p.nmeta == 16 && !value_of(&p, "kimifs_retry"));
	params_free(&p);

	/* A user may not write kimifs's keys. */
	memset(&p, 0, sizeof(p));
	add_pair(&p, "kimifs_job", "forged");
	CHECK(job_tag_user_ok(&p, why, sizeof(why)) == -EINVAL &&
	      strstr(why, "kimifs_job"));
	params_free(&p);

	/* No job and no round: nothing is added. */
	memset(&p, 0, sizeof(p));
	memset(&t, 0, sizeof(t));
	CHECK(job_tag_write(&t, &p, why, sizeof(why)) == 0 && p.nmeta == 0);
	params_free(&p);
}

static void test_names(void)
{
	char out[300], name[300];

	CHECK(job_name_valid("questions"));
	CHECK(job_name_valid("q 1 é"));
	CHECK(!job_name_valid(""));
	CHECK(!job_name_valid("."));
	CHECK(!job_name_valid("a/b"));
	CHECK(!job_name_valid("a\"b"));
	CHECK(!job_name_valid("a\\b"));
	CHECK(!job_name_valid(" a"));
	CHECK(!job_name_valid("a\nb"));
	CHECK(!job_name_valid("\xff"));
	memset(name, 'n', JOB_NAME_MAX);
	name[JOB_NAME_MAX] = 0;
	CHECK(job_name_valid(name));
	CHECK(job_part_name(name, 9999, 9999, 9999, out, sizeof(out)) == 0);
	CHECK(strlen(out) == 255);
	name[JOB_NAME_MAX] = 'n', name[JOB_NAME_MAX + 1] = 0;
	CHECK(!job_name_valid(name));

	CHECK(job_part_name("q", 0, 3, 12, out, sizeof(out)) == 0 &&
	      strcmp(out, "q.part-0003-of-0012.jsonl") == 0);
	CHECK(job_part_name("q", 2, 1, 1, out, sizeof(out)) == 0 &&
	      strcmp(out, "q.r2.part-0001-of-0001.jsonl") == 0);
	CHECK(job_part_name("q", 0, 0, 12, out, sizeof(out)) == -EINVAL);
	CHECK(job_part_name("q", 0, 13, 12, out, sizeof(out)) == -EINVAL);
	CHECK(job_part_name("q", 0, 1, 10000, out, sizeof(out)) == -EINVAL);
	CHECK(job_part_name("a/b", 0, 1, 1, out, sizeof(out)) == -EINVAL);
	CHECK(job_part_name("q", 0, 1, 1, out, 10) == -EINVAL);
}

int main(void)
{
	test_read();
	test_write();
	test_names();
	return check_done("test_job_tag");
}
