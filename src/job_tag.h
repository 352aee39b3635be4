/*
 * job_tag.h - what kimifs writes into the metadata of the batches it makes,
 * so that any mount, on any machine or after a restart, can tell which
 * batches belong together: at most three keys, all named kimifs_*,
 *
 *   kimifs_job    the job's name                      "questions"
 *   kimifs_part   the part within its round, of how many  "3/12"
 *   kimifs_retry  the round, and the batch it retries  "2" or "1 batch_abc"
 *
 * (a first round has no kimifs_retry; a job's retry round names no batch,
 * its parts taking the failures of every batch of the job). That leaves the
 * user 13 of the API's 16 pairs. Pure: no I/O.
 */
#ifndef KIMIFS_JOB_TAG_H
#define KIMIFS_JOB_TAG_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "batch_params.h"

#define JOB_TAG_PREFIX "kimifs_"
#define JOB_TAG_JOB    "kimifs_job"
#define JOB_TAG_PART   "kimifs_part"
#define JOB_TAG_RETRY  "kimifs_retry"
#define JOB_TAG_KEYS   3 /* keys kimifs may add */
#define JOB_USER_META  (PARAMS_META_MAX - JOB_TAG_KEYS) /* 13 */
#define JOB_PARTS_MAX  9999 /* parts of one round: four digits */
#define JOB_ROUNDS_MAX 9999
/* A job's name: its directory and the start of its parts' file names
 * (NAME.r9999.part-9999-of-9999.jsonl at most, in 255 bytes). */
#define JOB_NAME_MAX (255 - 30)

struct job_tag {
	char job[JOB_NAME_MAX + 1];	/* "" when the batch is in no job */
	unsigned part, parts;		/* 1 <= part <= parts; 0 with no job */
	unsigned round;			/* 0: the first; n: the nth retry */
	char retries[BATCH_ID_MAX + 1]; /* the batch it retries, or "" */
};

/*
 * Whether name can be a job's name: UTF-8 text that is safe as a file name
 * (batch_name_safe), at most JOB_NAME_MAX bytes, with no byte a multipart
 * upload's filename would alter (" \ control) and no leading white space.
 */
int job_name_valid(const char *name);

/*
 * Read the kimifs keys of a metadata object (a cJSON object, or NULL/any
 * other value for none) into *t. Returns 1 when they make a tag (a job
 * with its part, or a retry of a batch, or both), 0 when there is no
 * kimifs key (t zeroed), -EINVAL when a kimifs key is there but malformed
 * (a value that is no string, a part "0/3" or "4/3", a round "02", a job
 * name job_name_valid refuses, a retry round without a job or a batch): the
 * batch is then in no job, and why (whylen bytes) says which key.
 */
int job_tag_read(const cJSON *metadata, struct job_tag *t, char *why,
		 size_t whylen);

/* job_tag_read on the metadata of snapshot b (parses its JSON once);
 * -ENOMEM when it cannot be parsed for want of memory. */
int job_tag_of(const struct batch *b, struct job_tag *t, char *why,
	       size_t whylen);

/*
 * Put the keys of t into p's metadata, in place of any kimifs_* key p has
 * (a retry copies its batch's metadata), after the user's pairs. -EINVAL
 * with why when they do not fit beside the user's pairs (16 in all: a
 * batch made by kimifs has room, having at most JOB_USER_META; one made
 * elsewhere may not), p then without kimifs keys; -ENOMEM.
 */
int job_tag_write(const struct job_tag *t, struct batch_params *p, char *why,
		  size_t whylen);

/* The job a batch made with p is in (p's kimifs_job), or NULL. */
const char *job_tag_job(const struct batch_params *p);

/*
 * Whether p's metadata as a user wrote it leaves room for kimifs's keys:
 * 0, or -EINVAL with why when it has more than JOB_USER_META pairs or a key
 * starting with kimifs_ (those are kimifs's own).
 */
int job_tag_user_ok(const struct batch_params *p, char *why, size_t whylen);

/*
 * The file name of part `part` of `parts` of job name in round round:
 * NAME.part-0003-of-0012.jsonl, or NAME.r2.part-0003-of-0012.jsonl for a
 * retry round. out holds at least NAME_MAX + 1 bytes. 0, or -EINVAL when
 * the numbers are out of range or the name does not fit.
 */
int job_part_name(const char *name, unsigned round, unsigned part,
		  unsigned parts, char *out, size_t size);

#endif
