/*
 * job_ctl.c - the commands of a job's ctl (job_ctl.h): cancel (each batch
 * not final, one cancel each), refresh (the job's batches read again
 * through one listing refresh), clean (the input files of a final job's
 * batches deleted) and resume (the missing parts made from the kept
 * input). Input is checked before anything is sent; each outcome is
 * logged and kept for reads of ctl.
 */
#include "job_ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_error.h"
#include "ctl.h"
#include "ctl_word.h"
#include "file_ctl.h"
#include "job.h"
#include "job_create.h"
#include "job_keep.h"
#include "job_retry.h"
#include "listing.h"
#include "log.h"
#include "store_batches.h"
#include "store_files.h"
#include "store_jobs.h"
#include "util.h"

/* The snapshot of job name in mode: 0, or -errno with why. */
static int get_job(struct job_ctl *c, struct op *op, const char *name,
		   enum store_mode mode, struct job **j, char *why, size_t len)
{
	struct api_error err;
	int r = jobs_get(c->jobs, op, name, mode, j, &err);

	if (r == -ENOENT)
		snprintf(why, len, "no job of that name");
	else if (r < 0)
		api_error_text(&err, r, why, len);
	return r;
}

/* The job read again after one refresh of the newest batches (a listing
 * that stops early): what runs brought up to date, and what another
 * mount made since seen. *j is released first. */
static int get_job_newest(struct job_ctl *c, struct op *op, const char *name,
			  struct job **j, char *why, size_t len)
{
	int r;

	job_unref(*j);
	*j = NULL;
	r = batches_newest(c->batches, op);
	if (r < 0) {
		snprintf(why, len, "the list of batches: %s", strerror(-r));
		return r;
	}
	return get_job(c, op, name, STORE_ANY, j, why, len);
}

/* cancel: each batch not final (one cancel each; one cancelling already is
 * left as it is), the final ones skipped. A batch that fails does not stop
 * the others: the first failure is the outcome. */
static int job_cancel(struct job_ctl *c, struct op *op, const char *name,
		      char *msg, size_t len)
{
	char why[600] = "", first[700] = "";
	unsigned cancelled = 0, final = 0, failed = 0;
	struct job *j = NULL;
	int r = get_job(c, op, name, STORE_FRESH, &j, msg, len);

	if (r < 0)
		return r;
	for (size_t i = 0; i < j->nbatches; i++) {
		const struct batch *b = j->batches[i].batch;
		int rb;

		if (b->final) {
			final++;
			continue;
		}
		rb =
		    ctl_cancel(c->api, c->batches, op, b->id, why, sizeof(why));
		if (rb >= 0) {
			cancelled++;
		} else if (rb == -EPERM) {
			final++; /* it ended meanwhile */
		} else {
			if (!failed++) {
				r = rb;
				snprintf(first, sizeof(first), "%s: %s", b->id,
					 why);
			}
		}
	}
	if (failed)
		snprintf(msg, len, "%u of %zu batches not cancelled (%s)",
			 failed, j->nbatches, first);
	else
		snprintf(msg, len, "%u of %zu batches cancelled, %u final",
			 cancelled, j->nbatches, final);
	job_unref(j);
	return r;
}

/* refresh: the newest batches and those that run brought up to date by
 * one listing refresh (shared with every reader that waits for one), then
 * the job read from it. */
static int job_refresh(struct job_ctl *c, struct op *op, const char *name,
		       char *msg, size_t len)
{
	struct job *j = NULL;
	int r = batches_newest(c->batches, op);

	if (r < 0) {
		snprintf(msg, len, "the list of batches: %s", strerror(-r));
		return r;
	}
	r = get_job(c, op, name, STORE_ANY, &j, msg, len);
	if (r == 0)
		snprintf(msg, len, "%s", j->status);
	job_unref(j);
	return r;
}

/* Whether id is the output or error file of a batch of j. */
static int is_output(const struct job *j, const char *id)
{
	static const char *const fields[] = {"output_file_id", "error_file_id"};
	char out[BATCH_ID_MAX + 1];

	for (size_t i = 0; i < j->nbatches; i++)
		for (size_t f = 0; f < 2; f++)
			if (batch_file_id(j->batches[i].batch, fields[f], out,
					  sizeof(out)) == 0 &&
			    strcmp(out, id) == 0)
				return 1;
	return 0;
}

/* Whether the input file of batch i of j is that of an earlier batch. */
static int input_seen(const struct job *j, size_t i, const char *id)
{
	char out[BATCH_ID_MAX + 1];

	for (size_t k = 0; k < i; k++)
		if (batch_file_id(j->batches[k].batch, "input_file_id", out,
				  sizeof(out)) == 0 &&
		    strcmp(out, id) == 0)
			return 1;
	return 0;
}

/* What clean did. */
struct freed {
	unsigned files, gone, failed;
	uint64_t bytes;
	int first; /* the first failure's -errno */
	char why[700];
};

/* Delete input file id (its size from the file list, read once). */
static void clean_file(struct job_ctl *c, struct op *op, const char *id,
		       struct freed *fr)
{
	struct file *f = NULL;
	char why[600] = "";
	int64_t bytes = 0;
	int r = files_get(c->files->files, op, id, STORE_ANY, &f, NULL);

	if (r == 0)
		bytes = f->bytes;
	file_unref(f);
	if (r == 0)
		r = file_ctl_delete(c->files, op, id, why, sizeof(why));
	if (r == 0) {
		fr->files++;
		fr->bytes += bytes > 0 ? (uint64_t)bytes : 0;
		log_info("clean: file %s deleted (%" PRId64 " bytes)", id,
			 bytes);
	} else if (r == -ENOENT) {
		fr->gone++;
	} else if (!fr->failed++) {
		fr->first = r;
		snprintf(fr->why, sizeof(fr->why), "%s: %s", id,
			 why[0] ? why : strerror(-r));
	}
}

/* The snapshot of job name when every batch of it is final: 0, -EBUSY
 * when one runs, or -errno; why into msg. */
static int get_final_job(struct job_ctl *c, struct op *op, const char *name,
			 struct job **out, char *msg, size_t len)
{
	struct job *j = NULL;
	int r = get_job(c, op, name, STORE_FRESH, &j, msg, len);

	/* Copies younger than cache_ttl may be behind: one listing refresh
	 * brings the running ones up to date. */
	if (r == 0 && j->running)
		r = get_job_newest(c, op, name, &j, msg, len);
	if (r == 0 && j->running) {
		snprintf(msg, len, "job is %s (not final yet)", j->status);
		r = -EBUSY;
	}
	if (r < 0)
		job_unref(j);
	else
		*out = j;
	return r;
}

/* clean: on a final job only (else EBUSY, nothing sent), the input files
 * of its batches (every part and round) deleted; never an output or error
 * file. A file gone already is no failure. */
static int job_clean(struct job_ctl *c, struct op *op, const char *name,
		     char *msg, size_t len)
{
	struct freed fr = {0};
	struct job *j = NULL;
	char **ids = NULL;
	size_t n = 0;
	int r = get_final_job(c, op, name, &j, msg, len);

	if (r < 0)
		return r;
	/* One list of files gives the sizes of them all. */
	if (files_list(c->files->files, op, &ids, &n) == 0)
		listing_free_ids(ids, n);
	for (size_t i = 0; i < j->nbatches; i++) {
		char id[BATCH_ID_MAX + 1];

		if (batch_file_id(j->batches[i].batch, "input_file_id", id,
				  sizeof(id)) < 0 ||
		    input_seen(j, i, id) || is_output(j, id))
			continue;
		clean_file(c, op, id, &fr);
	}
	if (fr.failed) {
		r = fr.first;
		snprintf(msg, len,
			 "%u files deleted, %u not (%s); %" PRIu64
			 " bytes freed",
			 fr.files, fr.failed, fr.why, fr.bytes);
	} else {
		snprintf(msg, len,
			 "%u files deleted, %" PRIu64 " bytes freed (%u gone "
			 "already)",
			 fr.files, fr.bytes, fr.gone);
	}
	job_unref(j);
	return r;
}

/* The resume itself, once claimed: from the kept input, with job_create's
 * resume (the parts that exist skipped, files uploaded before used). */
static int resume_parts(struct job_ctl *c, struct op *op, const char *name,
			char *msg, size_t len)
{
	struct job_outcome out;
	unsigned made = 0;
	uint64_t size = 0;
	int fd, r = job_keep_open(c->keep, name, &fd, &size);

	if (r == -ENOENT) {
		snprintf(msg, len,
			 "its input is not kept on this mount (made on "
			 "another machine or cache_dir, or removed): copy the "
			 "same input again (cp %s.jsonl MOUNT/jobs/), which "
			 "makes only the missing parts",
			 name);
		return -ENODATA;
	}
	if (r < 0) {
		snprintf(msg, len, "its kept input cannot be read: %s",
			 strerror(-r));
		return r;
	}
	r = job_create(c->create, op, name, fd, size, 1, &out);
	close(fd);
	for (size_t i = 0; i < out.nparts; i++)
		made += out.parts[i].state == JOB_PART_MADE;
	if (r == 0) {
		job_keep_drop(c->keep, name);
		snprintf(msg, len, "%u of %zu parts made, every part exists",
			 made, out.nparts);
	} else {
		snprintf(msg, len, "%s (%u parts made; the input stays kept)",
			 out.why ? out.why : strerror(-r), made);
	}
	job_outcome_free(&out);
	return r;
}

/* resume: the parts of round 0 that do not exist made from the kept
 * input; none missing: nothing sent (and a kept input removed). One at a
 * time per job in a mount (EBUSY). */
static int job_resume(struct job_ctl *c, struct op *op, const char *name,
		      char *msg, size_t len)
{
	struct job *j = NULL;
	int whole, r = get_job(c, op, name, STORE_FRESH, &j, msg, len);

	/* Another mount may have made the rest since the listing: the
	 * newest batches say. */
	if (r == 0 && j->found < j->parts)
		r = get_job_newest(c, op, name, &j, msg, len);
	if (r < 0)
		return r;
	whole = j->parts && j->found == j->parts;
	job_unref(j);
	if (whole) {
		job_keep_drop(c->keep, name);
		snprintf(msg, len, "every part exists already; nothing sent");
		return 0;
	}
	r = job_ctl_claim(c, name);
	if (r < 0) {
		snprintf(msg, len, "%s",
			 r == -EBUSY ? "the job's parts are being made (a cp "
				       "or a resume of it runs)"
				     : strerror(-r));
		return r;
	}
	r = resume_parts(c, op, name, msg, len);
	job_ctl_release(c, name);
	return r;
}

/* retry: every request of the job without a success as one new round
 * (job_retry), claimed as a maker of the job's parts, so that a cp, a
 * resume or the rounds of -o retry_rounds in this mount do not make it
 * at the same time. */
static int job_retry_round(struct job_ctl *c, struct op *op, const char *name,
			   char *msg, size_t len)
{
	int r = c->retry ? job_ctl_claim(c, name) : -ENOTSUP;

	if (r < 0)
		return util_reason(r, msg, len, "%s",
				   r == -EBUSY ? "the job's parts are being "
						 "made (a cp, a resume or a "
						 "retry of it runs)"
					       : strerror(-r));
	r = job_retry(c->retry, op, name, msg, len);
	job_ctl_release(c, name);
	return r;
}

/* The commands of a job's ctl, by word. */
static const struct job_cmd cmds[] = {
    {"cancel", job_cancel}, {"refresh", job_refresh},	{"clean", job_clean},
    {"resume", job_resume}, {"retry", job_retry_round},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

int job_ctl_write(struct job_ctl *c, struct op *op, const char *name,
		  const char *buf, size_t size, off_t off)
{
	const char *words[NCMDS];
	char msg[1200] = "", line[1300];
	int i, r;

	for (size_t k = 0; k < NCMDS; k++)
		words[k] = cmds[k].word;
	i = ctl_word(buf, size, off, words, NCMDS);
	if (i < 0) {
		log_warn("ctl of job %s: not a command (write \"cancel\", "
			 "\"refresh\", \"clean\" or \"resume\", once, at the "
			 "start)",
			 name);
		return -EINVAL;
	}
	r = cmds[i].run(c, op, name, msg, sizeof(msg));
	if (r == 0) {
		snprintf(line, sizeof(line), "%s: ok: %s\n", cmds[i].word, msg);
		log_info("job %s: %s: ok: %s", name, cmds[i].word, msg);
	} else {
		snprintf(line, sizeof(line), "%s: failed: %s\n", cmds[i].word,
			 msg[0] ? msg : strerror(-r));
		log_err("job %s: %s: failed: %s", name, cmds[i].word,
			msg[0] ? msg : strerror(-r));
	}
	ctl_set_outcome(&c->outcomes, name, line);
	return r < 0 ? r : (int)size;
}

int job_ctl_claim(struct job_ctl *c, const char *name)
{
	char done[BATCH_ID_MAX + 1] = "";
	int r = ctl_retry_claim(&c->outcomes, name, done, sizeof(done));

	return r == 1 ? -EBUSY : r;
}

void job_ctl_release(struct job_ctl *c, const char *name)
{
	ctl_retry_settle(&c->outcomes, name, NULL);
}

char *job_ctl_outcome(struct job_ctl *c, const char *name)
{
	return ctl_outcome(&c->outcomes, name);
}

void job_ctl_init(struct job_ctl *c, struct api *api, struct batches *batches,
		  struct jobs *jobs, struct file_ctl *files,
		  const struct job_create *create, struct job_keep *keep)
{
	ctl_outcomes_init(&c->outcomes);
	c->api = api;
	c->batches = batches;
	c->jobs = jobs;
	c->files = files;
	c->create = create;
	c->keep = keep;
}

void job_ctl_destroy(struct job_ctl *c)
{
	ctl_outcomes_destroy(&c->outcomes);
}
