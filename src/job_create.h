/*
 * job_create.h - making a job: one staged input of any size checked as a
 * whole (the rules of batch input, custom_id unique across the file, with
 * bounded memory), cut into parts (job_split.h), the account's room checked,
 * and each part uploaded and made a batch tagged with the job's keys
 * (job_tag.h), in order, never a part twice: a part whose batch exists (found
 * by its tags) is skipped, a part's file uploaded by an earlier attempt is
 * used, so a second call with the same input (resume) makes only what is
 * missing. No tree: the caller stages the input and shows the outcome.
 */
#ifndef KIMIFS_JOB_CREATE_H
#define KIMIFS_JOB_CREATE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "batch_params.h"
#include "file.h"
#include "job_split.h"
#include "op.h"

struct api;
struct batches;
struct files;
struct submit;

/* The account's documented room: files, and bytes of them all. */
#define JOB_ACCOUNT_FILES 1000
#define JOB_ACCOUNT_BYTES 10000000000ULL
/* Memory of the uniqueness check of custom_ids (idsort.h). */
#define JOB_CHECK_MEM (16UL << 20)

/* What making a job uses (none owned; all outlive the call). */
struct job_create {
	struct batches *batches; /* tagged batches found, new ones learned */
	struct files *files;	 /* the account's files: room, parts' files */
	struct submit *submit;	 /* uploads and creations */
	int cache_fd;		 /* the cache dir: the check's scratch file */
	uint64_t part_size;	 /* bytes of a part; 0, or over the API's limit:
				    JSONL_MAX_BYTES */
	uint64_t part_requests;	 /* requests of a part; 0: the default */
	const char *completion_window; /* of every batch */
	size_t check_mem; /* memory of the check's ids; 0: JOB_CHECK_MEM */
};

/* What became of one part. */
enum job_part_state {
	JOB_PART_UNTRIED, /* not reached (an earlier part failed) */
	JOB_PART_MADE,	  /* its batch made now */
	JOB_PART_EXISTED, /* its batch was there already: nothing sent */
	JOB_PART_FAILED,  /* why says why; the parts after it are untried */
};

struct job_part {
	uint64_t offset, length; /* its bytes of the input */
	enum job_part_state state;
	int reused; /* its file was uploaded by an earlier attempt */
	char batch[BATCH_ID_MAX + 1]; /* made or existed; else "" */
	char file[FILE_ID_MAX + 1];   /* its input file, when known */
};

/* The outcome of job_create: the parts (when the input was cut) and why
 * the call failed (malloc'd, or NULL). Free with job_outcome_free. */
struct job_outcome {
	struct job_part *parts;
	size_t nparts;
	char *why;
};

/* Name of a job_part_state ("made", "existed", ...). */
const char *job_part_state_name(enum job_part_state s);

/*
 * The first step of job_create alone, with no request: check the input
 * (size bytes of fd) as NAME.jsonl and cut it by jc's limits, reading it
 * once. Memory: check_mem (JOB_CHECK_MEM) for the custom_ids, the longest line,
 * 8 bytes a part, whatever the input's size. 0 with the parts in out (all
 * untried), -EINVAL with the report in out->why, or -errno; free out with
 * job_outcome_free either way.
 */
int job_check(const struct job_create *jc, const char *name, int fd,
	      uint64_t size, struct job_outcome *out);

/*
 * Make job name from the staged input (size bytes of the open file fd,
 * read with pread), as part of op (its deadline is set once the input is
 * checked and cut: -o timeout for the lists, and each part's
 * submit_upload_bound plus -o timeout for its creation; an interrupt stops
 * between and within requests). With resume 0, a job of
 * that name (a batch tagged with it) is -EEXIST, nothing sent; with resume,
 * its parts that exist are skipped (a job of the name cut into another
 * number of parts, or a part that exists whose input file has another size
 * than this input's part, is -EEXIST: another input; nothing sent).
 *
 * Before any request (job_check): -EINVAL when name is no job name
 * (job_name_valid), when the input breaks a rule of batch input or repeats a
 * custom_id anywhere (the report, with line numbers, in out->why), holds a
 * request line over part_size ("line N is longer than the part size") or needs
 * more than JOB_PARTS_MAX parts; -EIO/-ENOMEM when it cannot be read or
 * checked. Then the batch and file lists are read (-errno when they cannot
 * be), and -EDQUOT when the files still to upload do not fit in the
 * account's room (why: how many files and bytes are missing), nothing
 * sent. Then each part in order: skipped when its batch exists, else its
 * file (the one an earlier attempt left: its part name and exact size, or
 * uploaded now with submit_upload_from) made a batch (submit_create) with
 * the job's tags; the first failure stops it and is returned, with why
 * (-EINPROGRESS: a creation whose answer was lost and could not be
 * checked; a resume finds its batch by its tags if it was made, else
 * uses its file). 0 when every part has its batch. out is filled in
 * either way (free with job_outcome_free). Each part's outcome is logged.
 */
int job_create(const struct job_create *jc, struct op *op, const char *name,
	       int fd, uint64_t size, int resume, struct job_outcome *out);

/* Which round of a job job_create_round makes, and like what. */
struct job_round {
	unsigned round; /* 0: the job's first; R: its retry round R */
	/* The endpoint, window and user's metadata of the new batches
	 * (params_like of a batch of the job; its kimifs keys are replaced);
	 * NULL: PARAMS_ENDPOINT, jc's window, no metadata. */
	const struct batch_params *like;
};

/*
 * job_create for round rd of job name: the same check, cut, room and
 * parts, the parts' files named NAME.rR.part-0001-of-0003.jsonl
 * (job_part_name) and their batches tagged kimifs_retry "R", made like
 * rd->like. With resume 0, a batch of the job of round rd->round or a later
 * one is -EEXIST (the round was made, by this mount or another), nothing
 * sent; with resume, the parts of round rd->round that exist are skipped.
 * job_create is this with round 0 and no like.
 */
int job_create_round(const struct job_create *jc, struct op *op,
		     const char *name, const struct job_round *rd, int fd,
		     uint64_t size, int resume, struct job_outcome *out);

void job_outcome_free(struct job_outcome *o);

#endif
