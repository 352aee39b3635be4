/*
 * test_ctl_run.c - unit tests of running the ctl commands (ctl.c,
 * ctl_retry.c, file_ctl.c) against a fake API served by an in-process HTTP
 * stub (http_stub.h) and a disk cache whose downloads are a stub: anything
 * but one command sends nothing; cancel sends only what is needed (nothing
 * for a batch cancelled already, nothing but the look for a final one) and
 * takes a refusal for a cancel that happened meanwhile; refresh fetches
 * anew what is not final; retry runs once per batch (under way, made
 * already, here or by another mount as a newer batch's kimifs_retry
 * says, unknown: nothing sent; nothing either when the list cannot tell)
 * and only on a final batch, where it uploads the input's lines without a
 * successful result under the input's name with .retry-1 and makes a batch of
 * it like the first, marked as its retry (nothing sent when every line
 * succeeded; a creation whose outcome is unknown keeps the batch claimed); the
 * mount's refresh lists every page; delete forgets the file and its content
 * once the server has it no more; a job's cancel sends one cancel per batch
 * not final, its refresh one list page, its clean nothing while a batch
 * runs, then each input file once. Each outcome line, and every request the
 * server got, is checked.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "check.h"
#include "events_lines.h"
#include "content.h"
#include "ctl.h"
#include "fake_download.h"
#include "file_ctl.h"
#include "http_stub.h"
#include "job_ctl.h"
#include "results_cache.h"
#include "store_batches.h"
#include "store_files.h"
#include "store_jobs.h"
#include "submit.h"

/* The fake server's batches (id and status), and how it answers. */
static struct fake {
	struct {
		const char *id;
		char status[32];
		const char *output; /* its output file, or NULL */
		const char *meta;   /* its metadata, or NULL: a user's pair */
	} batches[8];
	size_t nbatches;
	int create_status;	 /* POST /v1/batches: 200 makes batch_retry */
	char *upload;		 /* the body of the last POST /v1/files */
	char *create;		 /* the body of the last POST /v1/batches */
	int cancel_status;	 /* POST .../cancel: 200 sets "cancelling" */
	int cancelled_meanwhile; /* a refused cancel sets "cancelled" */
	int list_status;	 /* GET /v1/batches?... */
	int list_spare;		 /* lists answered whatever list_status */
	int delete_status;	 /* DELETE /v1/files/<id> */
} fake;

static void batch_json(char *out, size_t len, const char *id,
		       const char *status, const char *output, const char *meta)
{
	char quoted[64] = "null";

	if (output)
		snprintf(quoted, sizeof(quoted), "\"%s\"", output);
	snprintf(out, len,
		 "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		 "\"/v1/chat/completions\",\"input_file_id\":\"file-in\","
		 "\"completion_window\":\"24h\",\"status\":\"%s\","
		 "\"output_file_id\":%s,\"error_file_id\":null,"
		 "\"created_at\":100,\"in_progress_at\":null,"
		 "\"expires_at\":90000,\"finalizing_at\":null,"
		 "\"completed_at\":null,\"failed_at\":null,"
		 "\"cancelling_at\":null,\"cancelled_at\":null,"
		 "\"request_counts\":{\"total\":0,\"completed\":0,"
		 "\"failed\":0},\"metadata\":%s}",
		 id, status, quoted, meta ? meta : "{\"project\":\"q\"}");
}

static char *error_body(const char *message)
{
	char out[128];

	snprintf(out, sizeof(out), "{\"error\":{\"message\":\"%s\"}}", message);
	return strdup(out);
}

/* A copy of body (len bytes), kept in *keep in place of the last. */
static void keep_body(char **keep, const char *body, size_t len)
{
	free(*keep);
	*keep = malloc(len + 1);
	if (*keep) {
		memcpy(*keep, body, len);
		(*keep)[len] = '\0';
	}
}

/* /v1/files...: the upload of a retry's input, the list (the input
 * alone), a FileObject, a delete. */
static int files_answer(const char *method, const char *target,
			const char *body, size_t len, char **reply)
{
	char json[512];

	if (strcmp(method, "POST") == 0) {
		keep_body(&fake.upload, body, len);
		*reply = strdup("{\"id\":\"file-retry\",\"object\":\"file\","
				"\"bytes\":1,\"created_at\":1,\"filename\":"
				"\"q.retry-1.jsonl\",\"purpose\":\"batch\"}");
		return 200;
	}
	if (strncmp(target, "/v1/files?", 10) == 0) {
		*reply = strdup("{\"object\":\"list\",\"data\":[{\"id\":"
				"\"file-in\",\"object\":\"file\",\"bytes\":1,"
				"\"created_at\":1,\"filename\":\"q.jsonl\","
				"\"purpose\":\"batch\"}],\"has_more\":false}");
		return 200;
	}
	if (strcmp(method, "GET") == 0) {
		snprintf(json, sizeof(json),
			 "{\"id\":\"%s\",\"object\":\"file\",\"bytes\":1,"
			 "\"created_at\":1,\"filename\":\"q.jsonl\","
			 "\"purpose\":\"batch\"}",
			 target + 10);
		*reply = strdup(json);
		return 200;
	}
	if (fake.delete_status != 200) {
		*reply = error_body("no such file");
		return fake.delete_status;
	}
	snprintf(json, sizeof(json),
		 "{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}",
		 target + 10);
	*reply = strdup(json);
	return 200;
}

/* GET /v1/batches?...: every batch, one page. */
static int list_answer(char **reply)
{
	char json[1024];
	char *out;

	if (fake.list_spare > 0) {
		fake.list_spare--;
	} else if (fake.list_status != 200) {
		*reply = error_body("no list");
		return fake.list_status;
	}
	out = malloc(64 + fake.nbatches * sizeof(json));
	if (!out)
		return 500;
	strcpy(out, "{\"object\":\"list\",\"data\":[");
	for (size_t i = 0; i < fake.nbatches; i++) {
		batch_json(json, sizeof(json), fake.batches[i].id,
			   fake.batches[i].status, fake.batches[i].output,
			   fake.batches[i].meta);
		strcat(out, i ? "," : "");
		strcat(out, json);
	}
	strcat(out, "],\"has_more\":false}");
	*reply = out;
	return 200;
}

/* POST /v1/batches: batch_retry made, or the status of create_status. */
static int create_answer(const char *body, size_t len, char **reply)
{
	char json[1024];

	keep_body(&fake.create, body, len);
	if (fake.create_status != 200) {
		*reply = error_body("busy");
		return fake.create_status;
	}
	batch_json(json, sizeof(json), "batch_retry", "validating", NULL, NULL);
	*reply = strdup(json);
	return 200;
}

/* /v1/batches/<id>[/cancel]: one batch, or its cancel. */
static int batch_answer(const char *method, const char *target, char **reply)
{
	static const char prefix[] = "/v1/batches/";
	char json[1024], id[64] = "";

	sscanf(target + strlen(prefix), "%63[^/]", id);
	for (size_t i = 0; i < fake.nbatches; i++) {
		char *status = fake.batches[i].status;

		if (strcmp(fake.batches[i].id, id) != 0)
			continue;
		if (strcmp(method, "POST") == 0) {
			if (fake.cancel_status != 200) {
				if (fake.cancelled_meanwhile)
					strcpy(status, "cancelled");
				*reply = error_body("cannot cancel");
				return fake.cancel_status;
			}
			strcpy(status, "cancelling");
		}
		batch_json(json, sizeof(json), id, status,
			   fake.batches[i].output, fake.batches[i].meta);
		*reply = strdup(json);
		return 200;
	}
	*reply = error_body("no such batch");
	return 404;
}

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	(void)ctx;
	if (strncmp(target, "/v1/files", 9) == 0)
		return files_answer(method, target, body, len, reply);
	if (strncmp(target, "/v1/batches?", 12) == 0)
		return list_answer(reply);
	if (strcmp(target, "/v1/batches") == 0)
		return create_answer(body, len, reply);
	if (strncmp(target, "/v1/batches/", 12) == 0)
		return batch_answer(method, target, reply);
	return 404;
}

static struct http_stub stub;

#define REQUESTS(...) HTTP_STUB_REQUESTS(&stub, __VA_ARGS__)
#define NO_REQUESTS() http_stub_requests(&stub, NULL, 0)

/* Whether the outcome line of id is text. */
static int line_is(struct ctl_outcomes *o, const char *id, const char *text)
{
	char *line = ctl_outcome(o, id);
	int ok = line && strcmp(line, text) == 0;

	if (!ok)
		fprintf(stderr, "  %s: \"%s\"\n", id, line ? line : "(none)");
	free(line);
	return ok;
}

/* Whether the outcome line of id starts with prefix. */
static int line_prefix(struct ctl_outcomes *o, const char *id,
		       const char *prefix)
{
	char *line = ctl_outcome(o, id);
	int ok = line && strncmp(line, prefix, strlen(prefix)) == 0;

	if (!ok)
		fprintf(stderr, "  %s: \"%s\"\n", id, line ? line : "(none)");
	free(line);
	return ok;
}

static void add(const char *id, const char *status, const char *output)
{
	fake.batches[fake.nbatches].meta = NULL;
	fake.batches[fake.nbatches].id = id;
	fake.batches[fake.nbatches].output = output;
	snprintf(fake.batches[fake.nbatches].status,
		 sizeof(fake.batches[0].status), "%s", status);
	fake.nbatches++;
}

static int run(struct ctl *c, const char *id, const char *cmd)
{
	struct op op;

	op_start(&op, 5);
	return ctl_write(c, &op, id, cmd, strlen(cmd), 0);
}

static void batch_commands(struct ctl *c)
{
	char done[64];

	fake = (struct fake){
	    .cancel_status = 200, .list_status = 200, .delete_status = 200};
	add("batch_run", "in_progress", NULL);
	add("batch_done", "completed", NULL);
	add("batch_late", "in_progress", NULL);
	add("batch_new", "validating", NULL);

	/* Not one command: nothing sent, no line. */
	CHECK(run(c, "batch_run", "cancel please") == -EINVAL);
	CHECK(run(c, "batch_run", "") == -EINVAL);
	CHECK(NO_REQUESTS());
	CHECK(!ctl_outcome(&c->outcomes, "batch_run"));

	/* cancel: the batch looked at, the cancel sent, its answer kept. */
	CHECK(run(c, "batch_run", "cancel\n") == 7);
	CHECK(REQUESTS("GET /v1/batches/batch_run",
		       "POST /v1/batches/batch_run/cancel"));
	CHECK(line_is(&c->outcomes, "batch_run", "cancel: ok\n"));
	/* Cancelling already: nothing to send. */
	CHECK(run(c, "batch_run", "cancel") == 6);
	CHECK(NO_REQUESTS());
	/* A final batch: the server would refuse; not sent. */
	CHECK(run(c, "batch_done", "cancel") == -EPERM);
	CHECK(REQUESTS("GET /v1/batches/batch_done"));
	CHECK(line_is(&c->outcomes, "batch_done",
		      "cancel: failed: batch is completed\n"));
	/* Refused, but cancelled meanwhile: done. */
	fake.cancel_status = 400;
	fake.cancelled_meanwhile = 1;
	CHECK(run(c, "batch_late", "cancel") == 6);
	CHECK(REQUESTS("GET /v1/batches/batch_late",
		       "POST /v1/batches/batch_late/cancel",
		       "GET /v1/batches/batch_late"));
	CHECK(line_is(&c->outcomes, "batch_late", "cancel: ok\n"));
	/* Refused for good: the server's word in the line. */
	fake.cancelled_meanwhile = 0;
	CHECK(run(c, "batch_new", "cancel") == -EPERM);
	CHECK(REQUESTS("GET /v1/batches/batch_new",
		       "POST /v1/batches/batch_new/cancel",
		       "GET /v1/batches/batch_new"));
	CHECK(line_is(&c->outcomes, "batch_new",
		      "cancel: failed: 400 cannot cancel\n"));

	/* refresh: fetched anew, however fresh the copy, unless final (a
	 * final batch never changes); a batch the server does not have says
	 * so. */
	CHECK(run(c, "batch_new", "refresh") == 7);
	CHECK(REQUESTS("GET /v1/batches/batch_new"));
	CHECK(line_is(&c->outcomes, "batch_new", "refresh: ok\n"));
	CHECK(run(c, "batch_done", "refresh") == 7);
	CHECK(NO_REQUESTS());
	CHECK(line_is(&c->outcomes, "batch_done", "refresh: ok\n"));
	CHECK(run(c, "batch_gone", "refresh") == -ENOENT);
	CHECK(REQUESTS("GET /v1/batches/batch_gone"));
	CHECK(line_is(&c->outcomes, "batch_gone",
		      "refresh: failed: 404 no such batch\n"));

	/* retry: only a final batch (one that is not is asked for anew). */
	CHECK(run(c, "batch_new", "retry") == -EBUSY);
	CHECK(REQUESTS("GET /v1/batches/batch_new"));
	CHECK(line_is(&c->outcomes, "batch_new",
		      "retry: failed: batch is validating (not final yet)\n"));
	/* Once per batch: under way, made, or unknown; nothing sent. */
	CHECK(ctl_retry_claim(&c->outcomes, "batch_done", done, sizeof(done)) ==
	      0);
	CHECK(run(c, "batch_done", "retry") == -EBUSY);
	CHECK(line_is(&c->outcomes, "batch_done",
		      "retry: failed: a retry of this batch is under way\n"));
	ctl_retry_settle(&c->outcomes, "batch_done", "batch_again");
	CHECK(run(c, "batch_done", "retry") == 5);
	CHECK(line_is(&c->outcomes, "batch_done",
		      "retry: ok batch_again (retried already: retry that "
		      "batch to go on)\n"));
	ctl_retry_settle(&c->outcomes, "batch_done", CTL_RETRY_UNKNOWN);
	CHECK(run(c, "batch_done", "retry") == -EIO);
	CHECK(NO_REQUESTS());
}

static void root_commands(struct ctl *c)
{
	struct op op;
	char *line;

	/* Only "refresh"; a full listing of every page. */
	op_start(&op, 5);
	CHECK(ctl_root_write(c, &op, "cancel", 6, 0) == -EINVAL);
	CHECK(NO_REQUESTS());
	CHECK(!ctl_root_outcome(c));
	CHECK(ctl_root_write(c, &op, "refresh\n", 8, 0) == 8);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	line = ctl_root_outcome(c);
	CHECK(line && strcmp(line, "refresh: ok\n") == 0);
	free(line);
	/* The mount's line is its own, not a batch's. */
	CHECK(line_is(&c->outcomes, "batch_run", "cancel: ok\n"));
	fake.list_status = 400;
	CHECK(ctl_root_write(c, &op, "refresh", 7, 0) == -EPERM);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	line = ctl_root_outcome(c);
	CHECK(line && strncmp(line, "refresh: failed: ", 17) == 0);
	free(line);
}

#define INPUT(id)                                                              \
	"{\"custom_id\":\"" id "\",\"method\":\"POST\",\"url\":"               \
	"\"/v1/chat/completions\",\"body\":{\"model\":\"m\","                  \
	"\"messages\":[]}}\n"
#define RESULT(id, status)                                                     \
	"{\"id\":\"r\",\"custom_id\":\"" id                                    \
	"\",\"response\":{\"status_code\":" #status                            \
	",\"request_id\":\"q\",\"body\":{}},\"error\":null}\n"

/* The contents the disk cache's download serves: a batch's input, the
 * output of its first run (a succeeded, b failed, c missing), and one
 * where all succeeded; any other file holds a few bytes. */
static const struct {
	const char *id;
	const char *content;
} served[] = {
    {"file-in", INPUT("a") INPUT("b") INPUT("c")},
    {"file-out", RESULT("a", 200) RESULT("b", 500)},
    {"file-allok", RESULT("a", 200) RESULT("b", 200) RESULT("c", 200)},
};

static int download(void *ctx, struct op *op, const char *id, int fd,
		    void (*on_sink)(void *, size_t), void *arg, size_t *len,
		    struct api_error *err)
{
	const char *text = "data\n";

	(void)ctx, (void)op, (void)err;
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
		if (strcmp(id, served[i].id) == 0)
			text = served[i].content;
	*len = strlen(text);
	if (write(fd, text, *len) != (ssize_t)*len)
		return -EIO;
	on_sink(arg, *len);
	return 0;
}

/* Whether file id's content is on disk in c (or being downloaded). */
static int on_disk(struct cache *c, const char *id)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", c->dir, id);
	return access(path, F_OK) == 0;
}

/* Put file id's content on disk in c. */
static void cached(struct cache *c, const char *id)
{
	struct op op;
	int fd;

	op_start(&op, 5);
	CHECK(content_open(c, &op, id, &fd) == 0);
	close(fd);
	fake_download_settle(c);
	CHECK(on_disk(c, id));
}

static void file_commands(struct api *api, struct files *files,
			  struct cache *cache)
{
	struct file_ctl fc;
	struct file *f = NULL;
	struct op op;

	file_ctl_init(&fc, api, files, cache);
	fake.delete_status = 200;
	op_start(&op, 5);

	/* Not the command: nothing sent. */
	CHECK(file_ctl_write(&fc, &op, "file-a", "delete it", 9, 0) == -EINVAL);
	CHECK(file_ctl_write(&fc, &op, "file-a", "delete", 6, 1) == -EINVAL);
	CHECK(NO_REQUESTS());

	/* Deleted: gone from the store (no request for it) and the disk. */
	cached(cache, "file-a");
	CHECK(file_ctl_write(&fc, &op, "file-a", " delete\n", 8, 0) == 8);
	CHECK(REQUESTS("DELETE /v1/files/file-a"));
	CHECK(line_is(&fc.outcomes, "file-a", "delete: ok\n"));
	CHECK(!on_disk(cache, "file-a"));
	CHECK(files_get(files, &op, "file-a", STORE_ANY, &f, NULL) == -ENOENT &&
	      !f);
	CHECK(NO_REQUESTS());

	/* Gone already: said, and forgotten as well. */
	cached(cache, "file-b");
	fake.delete_status = 404;
	CHECK(file_ctl_write(&fc, &op, "file-b", "delete", 6, 0) == -ENOENT);
	CHECK(REQUESTS("DELETE /v1/files/file-b"));
	CHECK(line_is(&fc.outcomes, "file-b",
		      "delete: failed: 404 no such file\n"));
	CHECK(!on_disk(cache, "file-b"));

	/* Refused: the file and its content stay. */
	cached(cache, "file-c");
	fake.delete_status = 400;
	CHECK(file_ctl_write(&fc, &op, "file-c", "delete", 6, 0) == -EPERM);
	CHECK(REQUESTS("DELETE /v1/files/file-c"));
	CHECK(on_disk(cache, "file-c"));
	CHECK(line_is(&fc.outcomes, "file-c",
		      "delete: failed: 400 no such file\n"));

	file_ctl_destroy(&fc);
}

/* Whether the cache directory holds a staged retry input. */
static int retry_staged(const struct cache *c)
{
	DIR *d = opendir(c->dir);
	const struct dirent *de;
	int found = 0;

	while (d && (de = readdir(d)))
		found |= strncmp(de->d_name, ".tmp-retry_", 11) == 0;
	if (d)
		closedir(d);
	return found;
}

static void retries(struct ctl *c)
{
	struct events_reader *r;
	uint64_t at = 0;

	CHECK(events_open(1, 0, &r) == 0);
	fake = (struct fake){.list_status = 200, .create_status = 200};
	add("batch_elsewhere", "validating", NULL);
	fake.batches[0].meta = "{\"kimifs_retry\":\"1 batch_twice\"}";
	add("batch_fin", "completed", "file-out");
	add("batch_allok", "completed", "file-allok");
	add("batch_lost", "failed", "file-out");
	add("batch_twice", "failed", "file-out");
	add("batch_nolist", "failed", "file-out");

	/* The newest batches asked for (none of them retries it); the lines
	 * without a successful result uploaded under the input's name with
	 * .retry-1 and checked first; a batch made from it like the first
	 * one, marked as its retry. */
	CHECK(run(c, "batch_fin", "retry") == 5);
	CHECK(REQUESTS("GET /v1/batches/batch_fin", "GET /v1/batches?limit=100",
		       "GET /v1/files?limit=100", "POST /v1/files",
		       "POST /v1/batches"));
	CHECK(line_is(&c->outcomes, "batch_fin", "retry: ok batch_retry\n"));
	CHECK(events_lines_are(
	    r, &at,
	    "{\"kind\":\"upload\",\"file\":\"file-retry\",\"name\":"
	    "\"q.retry-1.jsonl\",\"bytes\":1}\n"
	    "{\"kind\":\"create\",\"id\":\"batch_retry\",\"file\":"
	    "\"file-retry\"}\n"
	    "{\"kind\":\"retry\",\"id\":\"batch_retry\",\"of\":"
	    "\"batch_fin\"}\n"));
	CHECK(fake.upload && strstr(fake.upload, "\"q.retry-1.jsonl\"") &&
	      !strstr(fake.upload, INPUT("a")) &&
	      strstr(fake.upload, INPUT("b")) &&
	      strstr(fake.upload, INPUT("c")));
	CHECK(fake.create &&
	      strstr(fake.create, "\"input_file_id\":\"file-retry\"") &&
	      strstr(fake.create, "\"endpoint\":\"/v1/chat/completions\"") &&
	      strstr(fake.create, "\"completion_window\":\"24h\"") &&
	      strstr(fake.create, "\"project\":\"q\"") &&
	      strstr(fake.create, "\"kimifs_retry\":\"1 batch_fin\""));
	CHECK(!retry_staged(c->cache));
	/* Once: the next retry names the batch it made, sends nothing. */
	CHECK(run(c, "batch_fin", "retry") == 5);
	CHECK(NO_REQUESTS());

	/* Retried already by another mount (a newer batch says so): that
	 * batch is named, nothing uploaded. */
	CHECK(run(c, "batch_twice", "retry") == 5);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	CHECK(line_is(&c->outcomes, "batch_twice",
		      "retry: ok batch_elsewhere (retried already: retry that "
		      "batch to go on)\n"));

	/* Every line succeeded: nothing to retry, nothing sent. */
	CHECK(run(c, "batch_allok", "retry") == 5);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	CHECK(
	    line_is(&c->outcomes, "batch_allok", "retry: nothing to retry\n"));
	/* Retried already, nothing to retry: no line. */
	CHECK(events_lines_are(r, &at, ""));

	/* Whether another mount retried it cannot be told: nothing sent,
	 * the claim let go. */
	fake.list_status = 400;
	CHECK(run(c, "batch_nolist", "retry") < 0);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	CHECK(line_prefix(&c->outcomes, "batch_nolist",
			  "retry: failed: cannot tell whether it was retried "
			  "already"));

	/* The creation's outcome unknown (no answer, and the list after it
	 * unreadable): failed, and the batch stays claimed, so a retry never
	 * makes a second batch. */
	fake.create_status = 0;
	fake.list_spare = 1;
	CHECK(run(c, "batch_lost", "retry") == -EIO);
	CHECK(REQUESTS("GET /v1/batches?limit=100", "POST /v1/files",
		       "POST /v1/batches", "GET /v1/batches?limit=100"));
	CHECK(run(c, "batch_lost", "retry") == -EIO);
	CHECK(NO_REQUESTS());
	CHECK(line_is(&c->outcomes, "batch_lost",
		      "retry: failed: an earlier retry's batch creation got "
		      "no answer: look for its input file in "
		      "batches/*/input_file_id before retrying again\n"));
	/* The retry that sent its creation failed, with why; the second
	 * sent nothing: no line. */
	CHECK(events_lines_are(
	    r, &at,
	    "{\"kind\":\"upload\",\"file\":\"file-retry\",\"name\":"
	    "\"q.retry-1.jsonl\",\"bytes\":1}\n"
	    "{\"kind\":\"create\",\"file\":\"file-retry\",\"error\":"
	    "\"Empty reply from server\"}\n"
	    "{\"kind\":\"retry\",\"of\":\"batch_lost\",\"error\":"
	    "\"no answer, and the list of batches cannot be read, so "
	    "whether a batch was made is unknown: look for file-retry in "
	    "batches/*/input_file_id before making another\"}\n"));
	events_close(r);
	events_forget();
	CHECK(!retry_staged(c->cache));
	free(fake.upload);
	free(fake.create);
	fake.upload = fake.create = NULL;
}

/* Run cmd on job name's ctl. */
static int job_run(struct job_ctl *jc, const char *name, const char *cmd)
{
	struct op op;

	op_start(&op, 5);
	return job_ctl_write(jc, &op, name, cmd, strlen(cmd), 0);
}

/* Whether job name's outcome line is text. */
static int job_line_is(struct job_ctl *jc, const char *name, const char *text)
{
	char *line = job_ctl_outcome(jc, name);
	int ok = line && strcmp(line, text) == 0;

	if (!ok)
		fprintf(stderr, "  job %s: \"%s\"\n", name,
			line ? line : "(none)");
	free(line);
	return ok;
}

/* A job's commands (job_ctl.c): job j of three batches, one final. */
static void job_commands(struct api *api, struct batches *batches,
			 struct files *files, struct cache *cache)
{
	static const char *const meta[] = {
	    "{\"kimifs_job\":\"j\",\"kimifs_part\":\"1/3\"}",
	    "{\"kimifs_job\":\"j\",\"kimifs_part\":\"2/3\"}",
	    "{\"kimifs_job\":\"j\",\"kimifs_part\":\"3/3\"}",
	};
	struct file_ctl fc;
	struct job_ctl jc;
	struct jobs jobs;
	struct op op;

	fake = (struct fake){
	    .cancel_status = 200, .list_status = 200, .delete_status = 200};
	add("batch_j1", "in_progress", NULL);
	add("batch_j2", "completed", "file-out");
	add("batch_j3", "validating", NULL);
	for (size_t i = 0; i < 3; i++)
		fake.batches[i].meta = meta[i];
	jobs_init(&jobs, batches);
	file_ctl_init(&fc, api, files, cache);
	job_ctl_init(&jc, api, batches, &jobs, &fc, NULL, NULL);
	op_start(&op, 5);
	CHECK(batches_refresh(batches, &op) == 0);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));

	/* Not one command: nothing sent, no line. */
	CHECK(job_run(&jc, "j", "cancel now") == -EINVAL);
	CHECK(job_run(&jc, "j", "retry-all") == -EINVAL);
	CHECK(NO_REQUESTS());
	CHECK(!job_ctl_outcome(&jc, "j"));

	/* cancel: one cancel per batch not final, none for the final. */
	CHECK(job_run(&jc, "j", "cancel\n") == 7);
	CHECK(REQUESTS("POST /v1/batches/batch_j1/cancel",
		       "POST /v1/batches/batch_j3/cancel"));
	CHECK(job_line_is(&jc, "j",
			  "cancel: ok: 2 of 3 batches cancelled, 1 final\n"));
	/* Cancelling already: nothing more to send. */
	CHECK(job_run(&jc, "j", "cancel") == 6);
	CHECK(NO_REQUESTS());

	/* clean while batches run: one list page says so, nothing deleted. */
	CHECK(job_run(&jc, "j", "clean") == -EBUSY);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	CHECK(job_line_is(&jc, "j",
			  "clean: failed: job is cancelling (not final "
			  "yet)\n"));

	/* refresh: one list page brings every batch. */
	strcpy(fake.batches[0].status, "cancelled");
	strcpy(fake.batches[2].status, "cancelled");
	CHECK(job_run(&jc, "j", "refresh") == 7);
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
	CHECK(job_line_is(&jc, "j", "refresh: ok: cancelled\n"));

	/* clean of a final job: the input they share deleted once, never
	 * the output; then gone already, and nothing sent. */
	CHECK(job_run(&jc, "j", "clean") == 5);
	/* (the list of files is young: its sizes cost nothing) */
	CHECK(REQUESTS("DELETE /v1/files/file-in"));
	CHECK(job_line_is(&jc, "j",
			  "clean: ok: 1 files deleted, 1 bytes freed (0 gone "
			  "already)\n"));
	CHECK(job_run(&jc, "j", "clean") == 5);
	CHECK(job_line_is(&jc, "j",
			  "clean: ok: 0 files deleted, 0 bytes freed (1 gone "
			  "already)\n"));
	CHECK(NO_REQUESTS());

	job_ctl_destroy(&jc);
	file_ctl_destroy(&fc);
	jobs_destroy(&jobs);
	fake.nbatches = 0;
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-ctl-run-XXXXXX", cmd[100], why[256];
	struct opts o;
	struct api api;
	struct batches batches;
	struct files files;
	struct cache cache;
	struct results_cache results;
	struct submit submit = {&api, &batches, &files, &o};
	struct ctl c;

	if (!mkdtemp(dir))
		return 1;
	if (http_stub_api(&stub, answer, NULL, &o, &api) < 0)
		return 1;
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	CHECK(files_init(&files, &api, 60, 5, 100) == 0);
	CHECK(cache_init(&cache, dir, 1 << 20, download, NULL, why,
			 sizeof(why)) == 0);
	results_cache_init(&results, &cache);
	ctl_init(&c, &api, &batches, &files, &cache, &results, &submit);

	batch_commands(&c);
	root_commands(&c);
	retries(&c);
	job_commands(&api, &batches, &files, &cache);
	file_commands(&api, &files, &cache);

	ctl_destroy(&c);
	results_cache_destroy(&results);
	cache_destroy(&cache);
	files_destroy(&files);
	batches_destroy(&batches);
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return check_done("ctl_run");
}
