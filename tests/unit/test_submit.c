/*
 * test_submit.c - unit tests of uploads and creations (submit.c) and of the
 * walk over a list's pages under their searches (api_pager.c), against a
 * fake API served by an in-process HTTP stub (http_stub.h): a creation sent
 * once, and after a lost answer its batch looked for among the newest ones
 * the mount did not know (older batches end the search; an unreadable list
 * is -EINPROGRESS); an upload with a name the server would alter sent
 * never, a 429 sent again, a lost answer's copy found instead of a second
 * upload, an interrupted upload's copy deleted; each outcome learned by
 * the store; a lost answer's upload or batch found is a line of
 * MOUNT/events after the request's failure. Every request the server got
 * is checked.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_pager.h"
#include "check.h"
#include "events_lines.h"
#include "fake_list.h"
#include "http_stub.h"
#include "store_batches.h"
#include "store_files.h"
#include "submit.h"
#include "util.h"

/* The fake server: its lists, and the status of each kind of request
 * (0: the connection closes with no answer). */
static struct fake {
	struct fake_list batches, files;
	int list_status;      /* GET of a list */
	int create_status;    /* POST /v1/batches: 200 answers new_batch */
	int upload_status[4]; /* POST /v1/files, by attempt: 200 answers
				 new_file */
	size_t uploads;
	char new_batch[1024];
	char new_file[512];
} fake;

/* A BatchObject of input file input made at created. */
static void batch_json(char *out, size_t len, const char *id, const char *input,
		       long long created)
{
	snprintf(out, len,
		 "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		 "\"/v1/chat/completions\",\"input_file_id\":\"%s\","
		 "\"completion_window\":\"24h\",\"status\":\"validating\","
		 "\"output_file_id\":null,\"error_file_id\":null,"
		 "\"created_at\":%lld,\"in_progress_at\":null,"
		 "\"expires_at\":%lld,\"finalizing_at\":null,"
		 "\"completed_at\":null,\"failed_at\":null,"
		 "\"cancelling_at\":null,\"cancelled_at\":null,"
		 "\"request_counts\":{\"total\":0,\"completed\":0,"
		 "\"failed\":0},\"metadata\":null}",
		 id, input, created, created + 86400);
}

static void add_batch(const char *id, const char *input, long long created)
{
	char json[1024];

	batch_json(json, sizeof(json), id, input, created);
	fake_list_put(&fake.batches, id, json, NULL, 0);
}

/* A FileObject named filename of bytes bytes. */
static void file_json(char *out, size_t len, const char *id,
		      const char *filename, long long bytes)
{
	snprintf(out, len,
		 "{\"id\":\"%s\",\"object\":\"file\",\"bytes\":%lld,"
		 "\"created_at\":%lld,\"filename\":\"%s\",\"purpose\":"
		 "\"batch\",\"status\":\"ready\",\"status_details\":null}",
		 id, bytes, (long long)time(NULL), filename);
}

static void add_file(const char *id, const char *filename, long long bytes)
{
	char json[512];

	file_json(json, sizeof(json), id, filename, bytes);
	fake_list_put(&fake.files, id, json, NULL, 0);
}

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	(void)ctx, (void)body, (void)len;
	if (strcmp(method, "GET") == 0) {
		const struct fake_list *l =
		    strncmp(target, "/v1/batches?", 12) == 0 ? &fake.batches
							     : &fake.files;

		if (fake.list_status != 200) {
			*reply =
			    strdup("{\"error\":{\"message\":\"no list\"}}");
			return fake.list_status;
		}
		*reply = fake_list_page(l, target);
		return 200;
	}
	if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/batches") == 0) {
		*reply = strdup(fake.create_status == 200
				    ? fake.new_batch
				    : "{\"error\":{\"message\":\"busy\"}}");
		return fake.create_status;
	}
	if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/files") == 0) {
		int status = fake.upload_status[fake.uploads++ % 4];

		*reply = strdup(status == 200 ? fake.new_file
					      : "{\"error\":{\"message\":"
						"\"busy\"}}");
		return status;
	}
	if (strcmp(method, "DELETE") == 0) {
		char json[256];

		snprintf(json, sizeof(json),
			 "{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}",
			 target + strlen("/v1/files/"));
		*reply = strdup(json);
		return 200;
	}
	return 404;
}

static struct http_stub stub;
static struct opts opts;

#define REQUESTS(...) HTTP_STUB_REQUESTS(&stub, __VA_ARGS__)

static void reset(void)
{
	fake_list_clear(&fake.batches);
	fake_list_clear(&fake.files);
	fake.list_status = 200;
	fake.create_status = 200;
	for (size_t i = 0; i < 4; i++)
		fake.upload_status[i] = 200;
	fake.uploads = 0;
	http_stub_set(&stub, answer, NULL);
}

/* A visitor that counts the objects, and stops at the one named stop. */
struct counted {
	size_t n;
	const char *stop;
};

static int count_visit(void *obj, void *ctx)
{
	struct counted *c = ctx;
	const struct batch *b = obj;

	c->n++;
	return c->stop && strcmp(b->id, c->stop) == 0;
}

static void pager(struct api *api)
{
	struct op op;
	struct api_error err;
	struct counted c = {0};
	char id[32];

	reset();
	for (int i = 0; i < 250; i++) {
		snprintf(id, sizeof(id), "batch_%03d", i);
		add_batch(id, "file-in", 1000 - i);
	}
	/* Every page, each asked for after the last one's last id. */
	op_start(&op, 5);
	CHECK(api_list_each(api, &op, &batch_kind, 100, 10, count_visit, &c,
			    &err) == 0 &&
	      c.n == 250);
	CHECK(REQUESTS("GET /v1/batches?limit=100",
		       "GET /v1/batches?limit=100&after=batch_099",
		       "GET /v1/batches?limit=100&after=batch_199"));
	/* No more than max_pages. */
	c = (struct counted){0};
	CHECK(api_list_each(api, &op, &batch_kind, 100, 2, count_visit, &c,
			    &err) == 0 &&
	      c.n == 200);
	CHECK(REQUESTS("GET /v1/batches?limit=100",
		       "GET /v1/batches?limit=100&after=batch_099"));
	/* A visitor's stop ends the walk after its page. */
	c = (struct counted){.stop = "batch_120"};
	CHECK(api_list_each(api, &op, &batch_kind, 50, 10, count_visit, &c,
			    &err) == 0 &&
	      c.n == 150);
	CHECK(REQUESTS("GET /v1/batches?limit=50",
		       "GET /v1/batches?limit=50&after=batch_049",
		       "GET /v1/batches?limit=50&after=batch_099"));
	/* A page that cannot be read ends it with its error. */
	fake.list_status = 400;
	c = (struct counted){0};
	CHECK(api_list_each(api, &op, &batch_kind, 100, 10, count_visit, &c,
			    &err) == -EPERM &&
	      c.n == 0 && strstr(err.message, "no list"));
	CHECK(REQUESTS("GET /v1/batches?limit=100"));
}

static void create(struct submit *sb)
{
	char input[] = "file-in", endpoint[] = "/v1/chat/completions",
	     window[] = "24h";
	struct batch_params p = {.input_file_id = input,
				 .endpoint = endpoint,
				 .completion_window = window};
	struct batch *b = NULL;
	struct events_reader *r;
	uint64_t at = 0;
	struct op op;
	char why[512];
	long long now = (long long)time(NULL);

	/* Answered: sent once, stored. */
	reset();
	batch_json(fake.new_batch, sizeof(fake.new_batch), "batch_new",
		   "file-in", now);
	op_start(&op, 5);
	CHECK(submit_create(sb, &op, &p, &b, why, sizeof(why)) == 0 && b &&
	      strcmp(b->id, "batch_new") == 0);
	CHECK(REQUESTS("POST /v1/batches"));
	CHECK(store_changes(&sb->batches->store, "batch_new") > 0);
	batch_unref(b);

	/* Refused: the outcome is known, nothing looked for. */
	reset();
	fake.create_status = 400;
	CHECK(submit_create(sb, &op, &p, &b, why, sizeof(why)) == -EPERM &&
	      strstr(why, "busy"));
	CHECK(REQUESTS("POST /v1/batches"));

	/* No answer: the newest batches of its input that the mount did not
	 * know are looked through; the newest such is its batch. */
	reset();
	fake.create_status = 500;
	add_batch("batch_other", "file-other", now);
	add_batch("batch_made", "file-in", now);
	add_batch("batch_new", "file-in", now + 5); /* known: made above */
	add_batch("batch_earlier", "file-in", now - 10);
	CHECK(events_open(1, 0, &r) == 0);
	CHECK(submit_create(sb, &op, &p, &b, why, sizeof(why)) == 0 && b &&
	      strcmp(b->id, "batch_made") == 0);
	CHECK(REQUESTS("POST /v1/batches", "GET /v1/batches?limit=100"));
	CHECK(events_lines_are(
	    r, &at,
	    "{\"kind\":\"create\",\"file\":\"file-in\",\"error\":"
	    "\"busy\"}\n"
	    "{\"kind\":\"create\",\"id\":\"batch_made\",\"file\":"
	    "\"file-in\"}\n"));
	events_close(r);
	CHECK(store_changes(&sb->batches->store, "batch_made") > 0);
	batch_unref(b);

	/* None of its input since the request: the failure stands; a batch
	 * made long before the request ends the search (no second page). */
	reset();
	fake.create_status = 500;
	for (int i = 0; i < 150; i++) {
		char id[32];

		snprintf(id, sizeof(id), "batch_%03d", i);
		add_batch(id, i < 5 ? "file-other" : "file-in",
			  i < 5 ? now : now - 100000);
	}
	b = NULL;
	CHECK(submit_create(sb, &op, &p, &b, why, sizeof(why)) == -EIO && !b &&
	      strstr(why, "busy"));
	CHECK(REQUESTS("POST /v1/batches", "GET /v1/batches?limit=100"));

	/* No answer and no list: unknown, and why says where to look. */
	reset();
	fake.create_status = 0;
	fake.list_status = 400;
	CHECK(submit_create(sb, &op, &p, &b, why, sizeof(why)) ==
		  -EINPROGRESS &&
	      strstr(why, "batches/*/input_file_id") && strstr(why, "file-in"));
	CHECK(REQUESTS("POST /v1/batches", "GET /v1/batches?limit=100"));
}

static void upload(struct submit *sb, const char *path)
{
	struct file *f = NULL;
	struct events_reader *r;
	uint64_t at = 0;
	struct op op;
	char why[512];

	/* A name the server would list altered: never sent. */
	reset();
	op_start(&op, 5);
	CHECK(submit_upload(sb, &op, path, " q.jsonl", &f, why, sizeof(why)) ==
		  -EINVAL &&
	      !f && strstr(why, "white space"));
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);

	/* Answered: learned by the files store. */
	reset();
	file_json(fake.new_file, sizeof(fake.new_file), "file-up", "q.jsonl",
		  6);
	CHECK(submit_upload(sb, &op, path, "q.jsonl", &f, why, sizeof(why)) ==
		  0 &&
	      f && strcmp(f->id, "file-up") == 0);
	CHECK(REQUESTS("POST /v1/files"));
	CHECK(store_changes(&sb->files->store, "file-up") > 0);
	file_unref(f);

	/* A 429 reached nothing: sent again (no pause this close to the
	 * deadline), with no search. */
	reset();
	fake.upload_status[0] = 429;
	file_json(fake.new_file, sizeof(fake.new_file), "file-up2", "q.jsonl",
		  6);
	opts.retries = 1;
	op_start(&op, 1.1);
	CHECK(submit_upload(sb, &op, path, "q.jsonl", &f, why, sizeof(why)) ==
		  0 &&
	      f && strcmp(f->id, "file-up2") == 0);
	CHECK(REQUESTS("POST /v1/files", "POST /v1/files"));
	file_unref(f);
	opts.retries = 0;

	/* No answer: the copy it left (same name and size, not known here)
	 * is the upload; never a second one. */
	reset();
	fake.upload_status[0] = 500;
	add_file("file-copy", "q.jsonl", 6);
	add_file("file-up", "q.jsonl", 6);    /* known: uploaded above */
	add_file("file-short", "q.jsonl", 5); /* another size */
	add_file("file-named", "r.jsonl", 6); /* another name */
	op_start(&op, 5);
	CHECK(events_open(2, 0, &r) == 0);
	CHECK(submit_upload(sb, &op, path, "q.jsonl", &f, why, sizeof(why)) ==
		  0 &&
	      f && strcmp(f->id, "file-copy") == 0);
	CHECK(REQUESTS("POST /v1/files", "GET /v1/files?limit=100"));
	CHECK(events_lines_are(
	    r, &at,
	    "{\"kind\":\"upload\",\"name\":\"q.jsonl\",\"error\":"
	    "\"busy\"}\n"
	    "{\"kind\":\"upload\",\"file\":\"file-copy\",\"name\":"
	    "\"q.jsonl\",\"bytes\":6}\n"));
	events_close(r);
	file_unref(f);

	/* No answer and no copy: the failure stands (-o retries 0). */
	reset();
	fake.upload_status[0] = 500;
	add_file("file-copy", "q.jsonl", 6);
	f = NULL;
	CHECK(submit_upload(sb, &op, path, "q.jsonl", &f, why, sizeof(why)) ==
		  -EIO &&
	      !f && strstr(why, "busy"));
	CHECK(REQUESTS("POST /v1/files", "GET /v1/files?limit=100"));

	/* Interrupted by the user: the copy that reached the server is
	 * deleted, nothing is kept. */
	reset();
	add_file("file-left", "q.jsonl", 6);
	op_start(&op, 5);
	op.interrupted = 1;
	CHECK(submit_upload(sb, &op, path, "q.jsonl", &f, why, sizeof(why)) ==
		  -EINTR &&
	      !f);
	CHECK(http_stub_seen(&stub, 0, NULL, 0) >= 2);
	{
		char line[160];
		size_t n = http_stub_seen(&stub, 0, NULL, 0);

		http_stub_seen(&stub, n - 1, line, sizeof(line));
		CHECK(strcmp(line, "DELETE /v1/files/file-left") == 0);
	}
	CHECK(store_changes(&sb->files->store, "file-left") == 0);
}

static void check(void)
{
	char path[] = "/tmp/kimifs-test-submit-XXXXXX";
	int fd = mkstemp(path);
	char *why = NULL;

	if (fd < 0)
		return;
	CHECK(write(fd, "{}\n", 3) == 3);
	/* The rules of a batch input file: each problem in the report. */
	CHECK(submit_check(path, "q.jsonl", &why) == -EINVAL && why &&
	      strstr(why, "q.jsonl"));
	free(why);
	CHECK(submit_check(path, "q.txt", &why) == -EINVAL && why &&
	      strstr(why, "must end in .jsonl"));
	free(why);
	close(fd);
	unlink(path);
	CHECK(submit_check(path, "q.jsonl", &why) == -EIO && !why);
}

int main(void)
{
	char path[] = "/tmp/kimifs-test-submit-XXXXXX";
	struct api api;
	struct batches batches;
	struct files files;
	struct submit sb = {&api, &batches, &files, &opts};
	int fd;

	if (http_stub_api(&stub, answer, NULL, &opts, &api) < 0)
		return 1;
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	CHECK(files_init(&files, &api, 60, 5, 100) == 0);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, "{\"a\"}\n", 6) != 6)
		return 1;
	close(fd);

	check();
	pager(&api);
	create(&sb);
	upload(&sb, path);

	unlink(path);
	reset();
	files_destroy(&files);
	batches_destroy(&batches);
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
	return check_done("submit");
}
