/*
 * job_kind.c - the descriptor of jobs (kind.h): named by their name,
 * never final (a final job may get another round), compared by the
 * batches they hold, and the value files of jobs/NAME/: status, parts and
 * created_at, each a newline-ended text rendered from the snapshot (job.h).
 * Jobs are not fetched or listed by an endpoint of their own: they are
 * made from the batch listing (store_jobs.h), so path is NULL.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "kind.h"

static void *ref(void *obj)
{
	return job_ref(obj);
}

static void unref(void *obj)
{
	job_unref(obj);
}

static const char *id(const void *obj)
{
	return ((const struct job *)obj)->name;
}

static int never(const void *obj)
{
	(void)obj;
	return 0;
}

/* A job has no lifecycle of its own to rank. */
static int no_rank(const void *obj)
{
	(void)obj;
	return 0;
}

/* The same batches, each the same copy. */
static int same(const void *pa, const void *pb)
{
	const struct job *a = pa, *b = pb;

	if (a->nbatches != b->nbatches)
		return 0;
	for (size_t i = 0; i < a->nbatches; i++)
		if (!bfile_same(&a->batches[i].batch->json,
				&b->batches[i].batch->json))
			return 0;
	return 1;
}

static size_t bytes(const void *obj)
{
	const struct job *j = obj;

	return sizeof(*j) + j->nbatches * sizeof(*j->batches);
}

/* text and a newline, malloc'd into *out. */
static int line(const char *text, char **out, size_t *len)
{
	*len = strlen(text) + 1;
	*out = malloc(*len + 1);
	if (!*out)
		return -ENOMEM;
	snprintf(*out, *len + 1, "%s\n", text);
	return 0;
}

static int render_status(const void *obj, const char *name, char **out,
			 size_t *len)
{
	(void)name;
	return line(((const struct job *)obj)->status, out, len);
}

static int render_parts(const void *obj, const char *name, char **out,
			size_t *len)
{
	char num[32];

	(void)name;
	snprintf(num, sizeof(num), "%u", ((const struct job *)obj)->parts);
	return line(num, out, len);
}

static int render_created(const void *obj, const char *name, char **out,
			  size_t *len)
{
	char num[32];

	(void)name;
	snprintf(num, sizeof(num), "%" PRId64,
		 ((const struct job *)obj)->created_at);
	return line(num, out, len);
}

/* The files of jobs/NAME/ that show the job, in listing order. */
static const struct object_value values[] = {
    {"status", kind_always, render_status},
    {"parts", kind_always, render_parts},
    {"created_at", kind_always, render_created},
};

const struct object_kind job_kind = {
    .name = "job",
    .plural = "jobs",
    .id_max = JOB_NAME_MAX,
    .id_valid = job_name_valid,
    .ref = ref,
    .unref = unref,
    .id = id,
    .final = never,
    .rank = no_rank,
    .same = same,
    .bytes = bytes,
    .values = values,
    .nvalues = sizeof(values) / sizeof(values[0]),
};
