/*
 * dir_jobs.c - the jobs/ subtree: one directory per job found in the
 * batch listing (store_jobs.h), and new jobs: NAME.jsonl copied into jobs/
 * is staged (stage.h) and made a job on close (job_create.h). A job's directory
 * is a table of children over its snapshot (job.h): the job kind's value files
 * (status, parts, created_at), request_counts/, progress, batches/,
 * symlinks to ../../../batches/<id> named so that ls sorts them by part
 * then round, ctl (the job's commands: job_ctl.h), and wait (hidden), which
 * blocks until every batch is final.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_job_results.h"
#include "dir_stage.h"
#include "job.h"
#include "job_auto.h"
#include "job_create.h"
#include "job_ctl.h"
#include "job_keep.h"
#include "job_tag.h"
#include "kind.h"
#include "listing.h"
#include "log.h"
#include "op.h"
#include "opts.h"
#include "stage.h"
#include "store_jobs.h"
#include "tree.h"

_Static_assert(STAGE_JOB_MAX_BYTES == JOB_ACCOUNT_BYTES,
	       "a job's input is bounded by the account's room");

static void unref_job(void *obj)
{
	job_unref(obj);
}

/* The snapshot of the job of node n (jobs/<name>/...) in mode into v, with
 * its latest time: 0, or -errno (a name that is no job, -ENOENT, is not
 * logged; other failures are). */
static int job_snapshot(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	struct api_error err;
	struct job *j;
	int r = jobs_get(tree->jobs, op, n->id, mode, &j, &err);

	if (r < 0) {
		if (r != -ENOENT)
			log_err("job %s: %s", n->id,
				api_error_message(&err, r));
		return r;
	}
	/* A mount that finds every part (made here, or by another mount)
	 * needs the kept input no more. */
	if (j->parts && j->found == j->parts &&
	    job_keep_has(tree->job_keep, j->name) &&
	    job_keep_drop(tree->job_keep, j->name))
		log_info("job %s: every part exists: its kept input is "
			 "removed",
			 j->name);
	view_hold(v, j, unref_job);
	v->mtime = (time_t)j->mtime;
	return 0;
}

static const struct job *view_job(const struct view *v)
{
	return v->obj;
}

int job_node_snapshot(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	return job_snapshot(tree, op, n, mode, v);
}

/* A job's directory carries its created_at. */
static int job_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = job_snapshot(tree, op, n, mode, v);

	if (r == 0)
		v->mtime = (time_t)view_job(v)->created_at;
	return r;
}

/* status, parts, created_at: as the job kind renders them. */
static int value_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	size_t len = 0;
	int r = job_snapshot(tree, op, n, mode, v);

	if (r == 0)
		r = kind_render(&job_kind, view_job(v), n->name, &v->owned,
				&len);
	v->data = v->owned;
	v->len = len;
	if (r < 0)
		view_release(v);
	return r;
}

/* request_counts/<name>: a count of the job, by name. */
static int count_view(struct tree *tree, struct op *op, const struct node *n,
		      enum store_mode mode, struct view *v)
{
	static const struct {
		const char *name;
		size_t at; /* offset of the count in struct job */
	} counts[] = {
	    {"total", offsetof(struct job, total)},
	    {"completed", offsetof(struct job, completed)},
	    {"failed", offsetof(struct job, failed)},
	    {"pending", offsetof(struct job, pending)},
	};
	int r = job_snapshot(tree, op, n, mode, v);
	char num[32];

	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (strcmp(counts[i].name, n->name) == 0) {
			uint64_t c;

			memcpy(&c, (const char *)view_job(v) + counts[i].at,
			       sizeof(c));
			snprintf(num, sizeof(num), "%llu\n",
				 (unsigned long long)c);
			v->owned = strdup(num);
			r = v->owned ? 0 : -ENOMEM;
		}
	if (r < 0) {
		view_release(v);
		return r;
	}
	v->data = v->owned;
	v->len = strlen(v->owned);
	return 0;
}

/* progress: one line, done = completed + failed of the job's counts. */
static int progress_view(struct tree *tree, struct op *op, const struct node *n,
			 enum store_mode mode, struct view *v)
{
	int r = job_snapshot(tree, op, n, mode, v);
	const struct job *j;
	uint64_t c[3];

	if (r < 0)
		return r;
	j = view_job(v);
	c[0] = j->total;
	c[1] = j->completed;
	c[2] = j->failed;
	r = tree_progress_view(v, c, (unsigned)j->nbatches, j->running,
			       j->created_at);
	if (r < 0)
		view_release(v);
	return r;
}

/* batches/<name>: a symlink to the batch's directory under batches/. */
static int link_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	int r = job_snapshot(tree, op, n, mode, v);
	size_t i, len;

	if (r < 0)
		return r;
	r = job_batch_find(view_job(v), n->name, &i);
	if (r < 0) {
		view_release(v);
		return r;
	}
	len = strlen("../../../batches/") +
	      strlen(view_job(v)->batches[i].batch->id) + 1;
	v->owned = malloc(len);
	if (!v->owned) {
		view_release(v);
		return -ENOMEM;
	}
	snprintf(v->owned, len, "../../../batches/%s",
		 view_job(v)->batches[i].batch->id);
	v->data = v->owned;
	v->len = len - 1;
	return 0;
}

static const struct node_type type_jvalue = {
    .what = "job file",
    .mode = S_IFREG | 0444,
    .view = value_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_jcount = {
    .what = "job request count",
    .mode = S_IFREG | 0444,
    .view = count_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_jprogress = {
    .what = "job progress",
    .mode = S_IFREG | 0444,
    .view = progress_view,
    .open_ops = &tree_view_ops,
};

static const struct node_type type_jlink = {
    .what = "job batch link",
    .mode = S_IFLNK | 0777,
    .view = link_view,
};

/*
 * wait: a read blocks until every batch of the job is final, the rounds
 * that -o retry_rounds makes by itself included, then returns the job's
 * status and a newline (at once when they are). Size 0, never
 * kept by the kernel, as a batch's wait; opening it reads the job like
 * any file.
 */
static int wait_view(struct tree *tree, struct op *op, const struct node *n,
		     enum store_mode mode, struct view *v)
{
	int r = job_snapshot(tree, op, n, mode, v);

	if (r == 0)
		view_unkept_empty(v);
	return r;
}

/* A read of wait: the job's status line when no batch of it runs (as of
 * the stored copies) and no round is due by itself (-o retry_rounds:
 * job_auto_due), else -EAGAIN. */
static int wait_read(struct tree *tree, struct op *op, struct open_file *f,
		     size_t size, off_t off, struct open_read *out)
{
	struct view v = {0};
	size_t len = 0;
	int r = job_snapshot(tree, op, &f->node, STORE_ANY, &v);

	if (r == 0 && (view_job(&v)->running ||
		       job_auto_due(tree->job_auto, view_job(&v))))
		r = -EAGAIN;
	else if (r == 0)
		r = kind_render(&job_kind, view_job(&v), "status", &out->owned,
				&len);
	view_release(&v);
	if (r == 0)
		open_read_slice(out, out->owned, len, size, off);
	return r;
}

/* What a wait waits for now: a batch of the job that runs (the first, by
 * part and round); when none does any more, the last batch (final: its
 * watch ends at its first poll, and the read is made again: a round due
 * by itself is looked for once a poll interval, at a request each). */
static int wait_on(struct tree *tree, struct op *op, const struct open_file *f,
		   char *id, size_t size)
{
	struct view v = {0};
	const struct job *j;
	size_t i = 0;
	int r = job_snapshot(tree, op, &f->node, STORE_ANY, &v);

	if (r < 0)
		return r;
	j = view_job(&v);
	while (i + 1 < j->nbatches && j->batches[i].batch->final)
		i++;
	snprintf(id, size, "%s", j->batches[i].batch->id);
	view_release(&v);
	return 0;
}

static const struct open_ops wait_ops = {
    .open = tree_view_open,
    .read = wait_read,
    .wait_on = wait_on,
};

static const struct node_type type_jwait = {
    .what = "job wait",
    .mode = S_IFREG | 0444,
    .view = wait_view,
    .open_ops = &wait_ops,
};

/* ctl reads the outcome of the job's last command; opening it sends
 * nothing (any stored copy of the job's batches will do). */
static int ctl_view(struct tree *tree, struct op *op, const struct node *n,
		    enum store_mode mode, struct view *v)
{
	int r = job_snapshot(tree, op, n, STORE_ANY, v);

	(void)mode;
	if (r == 0)
		view_outcome(v, job_ctl_outcome(tree->job_ctl, n->id));
	return r;
}

static ssize_t ctl_write_node(struct tree *tree, struct op *op,
			      struct open_file *f, const char *buf, size_t size,
			      off_t off, uint64_t owner)
{
	(void)owner;
	return job_ctl_write(tree->job_ctl, op, f->node.id, buf, size,
			     open_file_at(f, off));
}

static const struct open_ops ctl_ops = {
    .open = tree_view_open,
    .read = tree_view_read,
    .write = ctl_write_node,
};

static const struct node_type type_jctl = {
    .what = "job ctl",
    .mode = S_IFREG | 0600,
    .view = ctl_view,
    .open_ops = &ctl_ops,
};

static const struct node_child count_children[] = {
    {.name = "total", .type = &type_jcount},
    {.name = "completed", .type = &type_jcount},
    {.name = "failed", .type = &type_jcount},
    {.name = "pending", .type = &type_jcount},
    {0},
};

static const struct node_type type_jcounts = {
    .what = "job request_counts directory",
    .mode = S_IFDIR | 0555,
    .view = job_snapshot,
    .children = count_children,
};

/* Any name can be asked for; its view says whether the job has it. */
static int links_lookup(struct tree *tree, const struct node *dir,
			const char *name, struct node *child)
{
	(void)tree;
	return node_make(child, dir, &type_jlink, name);
}

static int links_readdir(struct tree *tree, struct op *op,
			 const struct node *dir, const struct view *v,
			 struct dirlist *out)
{
	const struct job *j = view_job(v);
	char name[JOB_LINK_MAX];
	int r = 0;

	(void)tree, (void)op, (void)dir;
	for (size_t i = 0; r == 0 && i < j->nbatches; i++)
		if (job_batch_name(j, i, name, sizeof(name)) == 0)
			r = dirlist_add(out, name, S_IFLNK);
	return r;
}

static const struct node_type type_jbatches = {
    .what = "job batches directory",
    .mode = S_IFDIR | 0555,
    .view = job_snapshot,
    .lookup = links_lookup,
    .readdir = links_readdir,
};

/* The entries of a job directory, in listing order. */
static const struct node_child job_children[] = {
    {.kind = &job_kind, .type = &type_jvalue},
    {.name = "request_counts", .type = &type_jcounts},
    {.name = "progress", .type = &type_jprogress},
    {.name = "batches", .type = &type_jbatches},
    {.name = "ctl", .type = &type_jctl},
    {.name = "results", .type = &type_jresults},
    {.name = "output.jsonl", .type = &type_jstream},
    {.name = "errors.jsonl", .type = &type_jstream},
    {.name = "usage", .type = &type_jusage},
    /* Found by name but not listed: tree walks never block. */
    {.name = "wait", .type = &type_jwait, .hidden = 1},
    {0},
};

static const struct node_type type_job = {
    .what = "job directory",
    .mode = S_IFDIR | 0555,
    .view = job_view,
    .children = job_children,
};

/* ------------------------------------------------------------------ */
/* New jobs: a file copied into jobs/ */

/* The job name of an input's name NAME.jsonl into job (JOB_NAME_MAX + 1
 * bytes): 0, or -EINVAL when it has no .jsonl or NAME is no job's name. */
static int job_name_of(const char *file, char *job)
{
	size_t n = strlen(file), e = strlen(".jsonl");

	if (!stage_upload_name(file) || n - e > JOB_NAME_MAX)
		return -EINVAL;
	memcpy(job, file, n - e);
	job[n - e] = '\0';
	return job_name_valid(job) ? 0 : -EINVAL;
}

/* A job's input being written into jobs/: staged (stage.h), its size so
 * far; on close the job is made of it and the name is gone (the job's
 * directory is there instead). */
static int jstaged_view(struct tree *tree, struct op *op, const struct node *n,
			enum store_mode mode, struct view *v)
{
	(void)op, (void)mode;
	return dir_stage_view(tree, STAGE_JOBS, n, v);
}

/* After making job name failed (o, its outcome): which of its parts exist (made
 * now or before) and which do not, logged, with how the others are made (kept:
 * its input is kept for resume), so that what the user wrote is never lost
 * silently. Nothing when no part exists and nothing is kept. */
static void log_parts(struct tree *tree, const char *name,
		      const struct job_outcome *o, uint64_t size, int kept)
{
	size_t made = 0;

	for (size_t i = 0; i < o->nparts; i++)
		if (o->parts[i].batch[0])
			made++;
	if (!made && !kept)
		return;
	if (kept)
		log_err("job %s: %zu of %zu parts exist; its input is kept in "
			"%s/" JOB_KEEP_DIR "/%s.jsonl (%llu bytes of the "
			"cache dir's disk, outside cache_size) until every "
			"part exists: echo resume > jobs/%s/ctl makes the "
			"others",
			name, made, o->nparts, tree->job_keep->dir, name,
			(unsigned long long)size, name);
	else
		log_err("job %s: %zu of %zu parts exist; the others need the "
			"input again (a cp of it into jobs/ makes them)",
			name, made, o->nparts);
	for (size_t i = 0; i < o->nparts; i++) {
		const struct job_part *pt = &o->parts[i];

		if (pt->batch[0])
			log_err("job %s: part %zu/%zu exists: batch %s", name,
				i + 1, o->nparts, pt->batch);
		else
			log_err("job %s: part %zu/%zu not made (%s)", name,
				i + 1, o->nparts,
				job_part_state_name(pt->state));
	}
}

/*
 * Whether the input of a creation that failed with r (o, its outcome) stays
 * kept for resume: it was checked good and jobs/NAME exists or may (a part
 * exists, or a creation's outcome is unknown). A failure before any part
 * exists (a broken rule, no room, a name in use, the first part refused)
 * keeps nothing: nothing was made, the writer has its file and a cp again
 * makes the job.
 */
static int keep_input(int r, const struct job_outcome *o)
{
	if (r == -EINPROGRESS)
		return o->nparts > 0;
	for (size_t i = 0; i < o->nparts; i++)
		if (o->parts[i].batch[0])
			return 1;
	return 0;
}

/* Whether job is the name of a job that lacks a part of round 0 (a
 * creation that stopped halfway), as the listing shows it: 1, else 0. */
static int job_incomplete(struct tree *tree, struct op *op, const char *job)
{
	struct job *j = NULL;
	int r = jobs_get(tree->jobs, op, job, STORE_ANY, &j, NULL);

	r = r == 0 && j->found < j->parts;
	job_unref(j);
	return r;
}

/*
 * The writer's close: the job is made of the staged input (job_create,
 * whose deadline covers every part; a job of that name that lacks parts is
 * resumed: its missing parts made when its parts match the input), then
 * the name is unstaged. 0 when every part has its batch (or nothing was
 * new), else the errno of job_create (logged there; the parts that exist
 * logged here; a creation whose outcome is unknown, EIO). The input is kept
 * (job_keep.h) from before the first request, so that a daemon killed
 * between parts leaves it for resume, until every part exists; it is let go
 * when the creation fails before any part exists. One kept by an earlier
 * attempt is kept as it is until every part exists.
 */
static int jstaged_flush(struct tree *tree, struct op *op, struct open_file *o,
			 uint64_t owner)
{
	struct staged *st = o->state;
	char name[JOB_NAME_MAX + 1];
	struct job_outcome out;
	uint64_t size;
	int resume, had, kept, r = stage_flush_begin(st, owner, &size);

	if (r <= 0)
		return r;
	r = job_name_of(stage_name(st), name);
	if (r == 0)
		r = job_ctl_claim(tree->job_ctl, name);
	if (r < 0) {
		if (r == -EBUSY)
			log_err("job %s: its parts are being made (a resume "
				"of it runs); nothing was sent",
				name);
		goto out_end;
	}
	/* The input kept by an earlier attempt of a job that exists stays:
	 * this one may prove another input. */
	resume = job_incomplete(tree, op, name);
	had = resume && job_keep_has(tree->job_keep, name);
	kept = had || job_keep_put(tree->job_keep, name, stage_path(st)) == 0;
	r = job_create(tree->job_create, op, name, stage_fd(st), size, resume,
		       &out);
	if (r < 0) {
		kept = kept && (had || keep_input(r, &out));
		log_parts(tree, name, &out, size, kept);
	}
	if (r == 0 || !kept)
		job_keep_drop(tree->job_keep, name);
	job_outcome_free(&out);
	job_ctl_release(tree->job_ctl, name);
	if (r == -EINPROGRESS)
		r = -EIO;
out_end:
	stage_flush_end(st);
	return r;
}

static const struct open_ops jstaged_ops = {
    .open = dir_stage_open_busy,
    .write = dir_stage_write,
    .read = dir_stage_read,
    .resize = dir_stage_resize,
    .flush = jstaged_flush,
    .release = dir_stage_release,
};

static const struct node_type type_jstaged = {
    .what = "staged job input",
    .mode = S_IFREG | 0600,
    .view = jstaged_view,
    .open_ops = &jstaged_ops,
};

/* Whether job may be the name of a new input: 0 when no job has it or its
 * job lacks a part (the input is then its resume: logged), -EEXIST (logged)
 * when a whole job has it, or the listing's -errno. */
static int job_unused(struct tree *tree, const char *job)
{
	struct op op;
	char **names;
	size_t n;
	int r = jobs_names(tree->jobs, NULL, &names, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (strcmp(names[i], job) == 0)
			r = -EEXIST;
	listing_free_ids(names, n);
	op_start(&op, tree->opts->timeout);
	if (r == -EEXIST && job_incomplete(tree, &op, job)) {
		log_info("job %s: lacks parts: the input copied makes them "
			 "when its parts match those that exist",
			 job);
		r = 0;
	}
	if (r == -EEXIST)
		log_err("job %s: a job of that name exists; nothing was "
			"staged",
			job);
	return r;
}

/*
 * A new file in jobs/ (cp, `cat >`): NAME.jsonl, NAME a job's name (else
 * EINVAL, logged with the reason), no whole job's (EEXIST; a job that lacks
 * parts takes it as its resume) and not being written (EBUSY); staged, and
 * made a job on close.
 */
static int jobs_create(struct tree *tree, const struct node *dir,
		       const char *name, struct node *child, void **state)
{
	char job[JOB_NAME_MAX + 1];
	int r = stage_check_name(name);

	if (r == 0 && job_name_of(name, job) < 0) {
		log_err("%s: not NAME.jsonl with NAME a job's name (at most "
			"%d bytes); nothing was staged",
			name, JOB_NAME_MAX);
		r = -EINVAL;
	}
	if (r == 0)
		r = job_unused(tree, job);
	if (r == 0)
		r = dir_stage_create(tree, STAGE_JOBS, &type_jstaged, dir, name,
				     child, state);
	return r;
}

/* An input being written is its staged file; names that cannot be jobs'
 * are ENOENT at once, with no request. A job's name may end in .jsonl too
 * (made elsewhere): when no such input is being written, it is the job. */
static int jobs_lookup(struct tree *tree, const struct node *dir,
		       const char *name, struct node *child)
{
	int r;

	if (dir_stage_lookup(tree, STAGE_JOBS, &type_jstaged, dir, name, child,
			     &r) &&
	    r == 0)
		return 0;
	if (!job_name_valid(name))
		return -ENOENT;
	return node_make_object(child, dir, &type_job, name);
}

static int jobs_readdir(struct tree *tree, struct op *op,
			const struct node *dir, const struct view *v,
			struct dirlist *out)
{
	char **names;
	size_t n;
	int r = jobs_names(tree->jobs, op, &names, &n);

	(void)dir, (void)v;
	if (r < 0)
		return r;
	r = dir_stage_readdir(tree, STAGE_JOBS, names, n, out);
	listing_free_ids(names, n);
	return r;
}

const struct node_type type_jobs = {
    .what = "jobs directory",
    .mode = S_IFDIR | 0755,
    .view = tree_fixed_view,
    .lookup = jobs_lookup,
    .readdir = jobs_readdir,
    .create = jobs_create,
};
