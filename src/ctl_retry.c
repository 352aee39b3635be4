/*
 * ctl_retry.c - `echo retry > batches/<id>/ctl` on a final batch: the lines
 * of its input file whose custom_id has no successful result (retry.h,
 * looked up in the batch's results index, results_cache.h) staged in the
 * cache directory, uploaded as the input's name with .retry-N, and a batch
 * created from it with the endpoint, completion window and metadata of the
 * first (submit.h), once it passes the check of any upload. The staged file
 * is removed whatever the outcome. A retry made or failed is a line of
 * MOUNT/events.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_dir.h"
#include "cache.h"
#include "ctl.h"
#include "events.h"
#include "store_files.h"
#include "log.h"
#include "job_tag.h"
#include "retry.h"
#include "retry_input.h"
#include "store_batches.h"
#include "submit.h"
#include "util.h"

/*
 * Mark p as the retry of b: b's job and part kept, the round one more than
 * b's, b named (job_tag.h). 0, or -ENOMEM; a retry that cannot be marked
 * (b's metadata leaves no room) goes unmarked, logged.
 */
static int mark(const struct batch *b, struct batch_params *p)
{
	struct job_tag t = {0};
	char why[200];
	int r = b->tagged ? job_tag_of(b, &t, why, sizeof(why)) : 0;

	if (r < 0) {
		if (r == -ENOMEM)
			return r;
		log_warn("retry %s: its kimifs keys are not ours (%s): the "
			 "retry keeps its job out",
			 b->id, why);
		memset(&t, 0, sizeof(t));
	}
	t.round++;
	snprintf(t.retries, sizeof(t.retries), "%s", b->id);
	r = job_tag_write(&t, p, why, sizeof(why));
	if (r == -EINVAL) {
		log_warn("retry %s: not marked as its retry (%s): another "
			 "mount cannot tell it was retried",
			 b->id, why);
		r = 0;
	}
	return r;
}

/*
 * The parameters of the retry of b: its endpoint, completion window and
 * metadata (params_like) with input file input, marked as its retry. 0, or
 * -ENOMEM / -EIO with the reason in why.
 */
static int retry_params(const struct batch *b, const char *input,
			struct batch_params *p, char *why, size_t whylen)
{
	int r = params_like(b, p, why, whylen);

	if (r == 0 && !(p->input_file_id = strdup(input)))
		r = -ENOMEM;
	if (r == 0)
		r = mark(b, p);
	if (r == -ENOMEM)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	return r;
}

/* Stage the lines to retry of b (retry_input) in a new file of the cache
 * directory: 0 with its path (malloc'd) in *path and the line count in
 * *lines (0: the file is removed, *path NULL), or -errno with the reason
 * in why. */
static int stage(struct ctl *c, struct op *op, const struct batch *b,
		 char **path, long *lines, char *why, size_t whylen)
{
	char name[CACHE_TMP_NAME_MAX];
	int fd;
	long copied;

	*path = NULL;
	*lines = 0;
	fd = cache_tmp_open(c->cache->dirfd, CACHE_TMP_RETRY, b->id, name,
			    sizeof(name));
	if (fd < 0) {
		snprintf(why, whylen, "cannot stage the retry input in %s: %s",
			 c->cache->dir, strerror(-fd));
		return fd;
	}
	copied = retry_input(c->cache, c->results, op, b, fd, why, whylen);
	if (close(fd) < 0 && copied >= 0) {
		copied = -EIO;
		snprintf(why, whylen, "cannot stage the retry input: %s",
			 strerror(EIO));
	}
	if (copied <= 0) {
		unlinkat(c->cache->dirfd, name, 0);
		return copied < 0 ? (int)copied : 0;
	}
	*lines = copied;
	*path = malloc(strlen(c->cache->dir) + strlen(name) + 2);
	if (!*path) {
		unlinkat(c->cache->dirfd, name, 0);
		return -ENOMEM;
	}
	sprintf(*path, "%s/%s", c->cache->dir, name);
	return 0;
}

/*
 * The same check as a file written into files/ (submit_check) on the retry
 * input at path, to be uploaded as name: the original input may hold lines
 * kimifs refuses (a GET, a second model, a repeated id). 0, or -EINVAL
 * with each problem logged and the first in why, or -errno.
 */
static int check(const struct batch *b, const char *path, const char *name,
		 char *why, size_t whylen)
{
	char *report = NULL;
	int r = submit_check(path, name, &report);

	if (r == -EINVAL) {
		const char *p = report;

		log_err("retry %s: refused, %s breaks the rules of a batch "
			"input file:",
			b->id, name);
		while (*p) {
			size_t len = strcspn(p, "\n");

			log_err("%.*s", (int)len, p);
			p += len + (p[len] == '\n');
		}
		snprintf(why, whylen, "refused: %.*s",
			 (int)strcspn(report, "\n"), report);
	} else if (r < 0) {
		snprintf(why, whylen, "cannot check the retry input: %s",
			 strerror(-r));
	}
	free(report);
	return r;
}

int ctl_retry(struct ctl *c, struct op *op, const struct batch *b, char *msg,
	      size_t msglen)
{
	char input[BATCH_ID_MAX + 1], newname[NAME_MAX + 1], text[600];
	struct batch_params params = {0};
	struct api_error err = {0};
	struct file *in = NULL, *up = NULL;
	struct batch *made = NULL;
	char *path = NULL;
	struct stat st;
	long lines = 0;
	int r;

	if (batch_file_id(b, "input_file_id", input, sizeof(input)) < 0) {
		snprintf(msg, msglen, "the batch has no input file");
		return -ENOENT;
	}
	r = stage(c, op, b, &path, &lines, msg, msglen);
	if (r < 0 || lines == 0)
		goto out;
	r = files_get(c->files, op, input, STORE_ANY, &in, &err);
	if (r < 0) {
		api_error_text(&err, r, text, sizeof(text));
		snprintf(msg, msglen, "%s: %s", input, text);
		goto out;
	}
	r = retry_name(in->filename, newname, sizeof(newname));
	if (r < 0) {
		snprintf(msg, msglen, "the name of %s is too long", input);
		goto out;
	}
	r = check(b, path, newname, msg, msglen);
	if (r < 0)
		goto out;
	r = retry_params(b, input, &params, msg, msglen);
	if (r < 0)
		goto out;
	/* An upload may take longer than one operation's bound. */
	if (stat(path, &st) == 0) {
		double until =
		    util_now() +
		    submit_upload_bound(c->submit, (uint64_t)st.st_size);

		if (until > op->deadline)
			op->deadline = until;
	}
	r = submit_upload(c->submit, op, path, newname, &up, msg, msglen);
	if (r < 0)
		goto out;
	free(params.input_file_id);
	params.input_file_id = strdup(up->id);
	if (!params.input_file_id) {
		r = -ENOMEM;
		snprintf(msg, msglen, "%s", strerror(ENOMEM));
		goto out;
	}
	r = submit_create(c->submit, op, &params, &made, msg, msglen);
	if (r == 0)
		snprintf(msg, msglen, "ok %s", made->id);
out:
	if (r == 0 && lines == 0)
		snprintf(msg, msglen, "nothing to retry");
	if (made || r < 0)
		events_add(&(struct event){.kind = "retry",
					   .id = made ? made->id : NULL,
					   .of = b->id,
					   .error = r < 0 ? msg : NULL});
	if (path) {
		unlink(path);
		free(path);
	}
	params_free(&params);
	batch_unref(made);
	file_unref(up);
	file_unref(in);
	return r;
}

int ctl_retry_found(struct ctl *c, struct op *op, const struct batch *b,
		    char *done, size_t size)
{
	char **ids = NULL, why[200];
	size_t n = 0;
	int r = batches_newest(c->batches, op), found = 0;

	if (r == 0)
		r = batches_list(c->batches, op, &ids, &n);
	/* Newest first: a retry is newer than what it retries. */
	for (size_t i = 0; r == 0 && !found && i < n; i++) {
		struct batch *x = NULL;
		struct job_tag t;

		if (strcmp(ids[i], b->id) == 0)
			break;
		if (batches_get(c->batches, op, ids[i], STORE_ANY, &x, NULL) ==
			0 &&
		    x->tagged && job_tag_of(x, &t, why, sizeof(why)) == 1 &&
		    strcmp(t.retries, b->id) == 0) {
			snprintf(done, size, "%s", x->id);
			found = 1;
		}
		batch_unref(x);
	}
	listing_free_ids(ids, n);
	return r < 0 ? r : found;
}
