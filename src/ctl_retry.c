/*
 * ctl_retry.c - `echo retry > batches/<id>/ctl` on a final batch: the lines
 * of its input file whose custom_id has no successful result (retry.h,
 * looked up in the batch's results index, results_cache.h) staged in the
 * cache directory, uploaded as the input's name with .retry-N, and a batch
 * created from it with the endpoint, completion window and metadata of the
 * first (submit.h), once it passes the check of any upload. The staged file
 * is removed whatever the outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "cache_dir.h"
#include "json.h"
#include "cache.h"
#include "ctl.h"
#include "results_cache.h"
#include "store_files.h"
#include "log.h"
#include "job_tag.h"
#include "retry.h"
#include "store_batches.h"
#include "submit.h"
#include "util.h"

/* Whether the result line of request custom_id in set is a success: in the
 * output file, for this very id, with a 2xx status code. */
static int succeeded(void *ctx, const char *custom_id)
{
	const struct results_set *set = ctx;
	char name[RESULTS_NAME_MAX + 1];
	const struct result *e;
	const cJSON *id, *resp, *code;
	char *line = NULL;
	size_t len, nuls;
	cJSON *obj;
	int shortened, ok = 0;

	if (!set)
		return 0;
	len = results_escape(custom_id, strlen(custom_id), 0, name, &shortened);
	e = results_find(set->ix, name, len);
	if (!e || e->src != RESULTS_OUTPUT || results_line(set, e, &line) < 0)
		return 0;
	obj = json_parse(line, e->len, &nuls);
	id = cJSON_GetObjectItemCaseSensitive(obj, "custom_id");
	resp = cJSON_GetObjectItemCaseSensitive(obj, "response");
	code = cJSON_GetObjectItemCaseSensitive(resp, "status_code");
	if (cJSON_IsString(id) && strcmp(id->valuestring, custom_id) == 0 &&
	    cJSON_IsNumber(code) && code->valuedouble >= 200 &&
	    code->valuedouble < 300)
		ok = 1;
	cJSON_Delete(obj);
	free(line);
	return ok;
}

/* A string member of obj, copied, or NULL (none, or no memory). */
static char *member(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

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
 * metadata (string values, as the server holds them) with input file
 * input. 0, or -ENOMEM / -EIO with the reason in why.
 */
static int retry_params(const struct batch *b, const char *input,
			struct batch_params *p, char *why, size_t whylen)
{
	size_t nuls;
	cJSON *obj = json_parse(b->json.data, b->json.len, &nuls);
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *pairs = cJSON_IsObject(meta) ? meta : NULL, *m;
	int r = 0;

	memset(p, 0, sizeof(*p));
	if (!obj) {
		snprintf(why, whylen, "the batch object cannot be read");
		return -EIO;
	}
	p->input_file_id = strdup(input);
	p->endpoint = member(obj, "endpoint");
	p->completion_window = member(obj, "completion_window");
	if (!p->input_file_id || !p->endpoint || !p->completion_window)
		r = -EIO;
	cJSON_ArrayForEach (m, pairs) {
		if (r < 0 || p->nmeta == PARAMS_META_MAX)
			break;
		if (!cJSON_IsString(m) || !m->string)
			continue;
		p->meta[p->nmeta].key = strdup(m->string);
		p->meta[p->nmeta].value = strdup(m->valuestring);
		p->nmeta++;
		if (!p->meta[p->nmeta - 1].key || !p->meta[p->nmeta - 1].value)
			r = -ENOMEM;
	}
	cJSON_Delete(obj);
	if (r < 0) {
		snprintf(why, whylen, "the batch has no endpoint or window");
		params_free(p);
		return r;
	}
	return mark(b, p);
}

/* Stage the lines to retry of b (its input in_fd, its results set) in a
 * new file of the cache directory: 0 with its path (malloc'd) in *path and
 * the line count in *lines (0: the file is removed, *path NULL), or -errno
 * with the reason in why. */
static int stage(struct ctl *c, const struct batch *b, int in_fd,
		 const struct results_set *set, char **path, long *lines,
		 char *why, size_t whylen)
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
	copied = retry_lines(in_fd, fd, succeeded, (void *)set);
	if (close(fd) < 0 && copied >= 0)
		copied = -EIO;
	if (copied <= 0) {
		unlinkat(c->cache->dirfd, name, 0);
		if (copied < 0)
			snprintf(why, whylen,
				 "cannot stage the retry input: %s",
				 strerror((int)-copied));
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
	struct results_set *set = NULL;
	struct batch_params params = {0};
	struct api_error err = {0};
	struct file *in = NULL, *up = NULL;
	struct batch *made = NULL;
	char *path = NULL;
	struct stat st;
	long lines = 0;
	int in_fd = -1, r;

	if (batch_file_id(b, "input_file_id", input, sizeof(input)) < 0) {
		snprintf(msg, msglen, "the batch has no input file");
		return -ENOENT;
	}
	r = results_get(c->results, op, b, &set);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the results: %s",
			 strerror(-r));
		goto out;
	}
	r = content_open(c->cache, op, input, &in_fd);
	if (r < 0) {
		snprintf(msg, msglen, "cannot read the input file %s: %s",
			 input, strerror(-r));
		goto out;
	}
	r = stage(c, b, in_fd, set, &path, &lines, msg, msglen);
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
	if (path) {
		unlink(path);
		free(path);
	}
	if (in_fd >= 0)
		close(in_fd);
	params_free(&params);
	results_release(c->results, set);
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
