/*
 * test_api_events.c - unit tests of the lines the API client adds to
 * MOUNT/events (events.h), over the real client and an HTTP stub
 * (http_stub.h): an upload of either form, a creation (with its job when
 * tagged), a cancel and a deletion each add exactly their line when made
 * and exactly their failure line (the server's message) when refused or
 * interrupted; a call that reads adds none.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "events.h"
#include "events_lines.h"
#include "http_stub.h"
#include "op.h"

static struct http_stub stub;
static struct api api;
static struct opts opts;
static struct events_reader *reader;
static uint64_t at; /* the reader's offset */

/* Whether the server refuses every call (400 with a message). */
static int refuse;

/* Writable text for the parameters of a creation. */
static char input_id[] = "file-in", endpoint[] = "/v1/chat/completions",
	    window[] = "24h", part_key[] = "kimifs_part", part[] = "1/2",
	    job_key[] = "kimifs_job", job[] = "questions";

#define BATCH_JSON                                                             \
	"{\"id\":\"batch_1\",\"object\":\"batch\",\"endpoint\":"               \
	"\"/v1/chat/completions\",\"input_file_id\":\"file-in\","              \
	"\"completion_window\":\"24h\",\"status\":\"%s\",\"created_at\":1,"    \
	"\"request_counts\":{\"total\":1,\"completed\":0,\"failed\":0},"       \
	"\"metadata\":null}"

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	char text[1024];

	(void)ctx, (void)body, (void)len;
	if (refuse) {
		*reply = strdup("{\"error\":{\"message\":\"not today\","
				"\"type\":\"invalid_request_error\"}}");
		return 400;
	}
	if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/files") == 0)
		snprintf(text, sizeof(text),
			 "{\"id\":\"file-up\",\"object\":\"file\",\"bytes\":12,"
			 "\"created_at\":1,\"filename\":\"q.jsonl\","
			 "\"purpose\":\"batch\",\"status\":\"ready\"}");
	else if (strcmp(method, "POST") == 0 &&
		 strcmp(target, "/v1/batches") == 0)
		snprintf(text, sizeof(text), BATCH_JSON, "validating");
	else if (strcmp(method, "POST") == 0 &&
		 strcmp(target, "/v1/batches/batch_1/cancel") == 0)
		snprintf(text, sizeof(text), BATCH_JSON, "cancelling");
	else if (strcmp(method, "GET") == 0 &&
		 strcmp(target, "/v1/batches/batch_1") == 0)
		snprintf(text, sizeof(text), BATCH_JSON, "in_progress");
	else if (strcmp(method, "DELETE") == 0 &&
		 strcmp(target, "/v1/files/file-up") == 0)
		snprintf(text, sizeof(text),
			 "{\"id\":\"file-up\",\"object\":\"file\","
			 "\"deleted\":true}");
	else
		return 404;
	*reply = strdup(text);
	return 200;
}

/* Whether the lines added since the last call are exactly want. */
static int lines_are(const char *want)
{
	return events_lines_are(reader, &at, want);
}

/* A file of 12 bytes to upload; its path in path. */
static void input(char *path, size_t len)
{
	int fd;

	snprintf(path, len, "/tmp/kimifs-test-api-events-%d", (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && write(fd, "{\"a\":\"bcd\"}\n", 12) == 12);
	close(fd);
}

/* The parameters of a batch of file-in, in no job. */
static struct batch_params params(void)
{
	return (struct batch_params){.input_file_id = input_id,
				     .endpoint = endpoint,
				     .completion_window = window};
}

static void test_made(const char *path)
{
	struct batch_params p = params();
	struct api_error err;
	struct file *f = NULL;
	struct batch *b = NULL;
	void *obj = NULL;
	int fd = open(path, O_RDONLY);

	refuse = 0;
	CHECK(api_upload_file(&api, NULL, path, "q.jsonl", "batch", &f, &err) ==
	      0);
	file_unref(f);
	CHECK(lines_are("{\"kind\":\"upload\",\"file\":\"file-up\","
			"\"name\":\"q.jsonl\",\"bytes\":12}\n"));
	CHECK(api_upload_range(&api, NULL, fd, 0, 12, "q.part-1.jsonl", "batch",
			       &f, &err) == 0);
	file_unref(f);
	close(fd);
	CHECK(lines_are("{\"kind\":\"upload\",\"file\":\"file-up\","
			"\"name\":\"q.part-1.jsonl\",\"bytes\":12}\n"));
	CHECK(api_create_batch(&api, NULL, &p, &b, &err) == 0);
	batch_unref(b);
	CHECK(lines_are("{\"kind\":\"create\",\"id\":\"batch_1\","
			"\"file\":\"file-in\"}\n"));
	p.nmeta = 2;
	p.meta[0].key = part_key;
	p.meta[0].value = part;
	p.meta[1].key = job_key;
	p.meta[1].value = job;
	CHECK(api_create_batch(&api, NULL, &p, &b, &err) == 0);
	batch_unref(b);
	CHECK(lines_are("{\"kind\":\"create\",\"id\":\"batch_1\","
			"\"file\":\"file-in\",\"job\":\"questions\"}\n"));
	CHECK(api_cancel_batch(&api, NULL, "batch_1", &b, &err) == 0);
	batch_unref(b);
	CHECK(lines_are("{\"kind\":\"cancel\",\"id\":\"batch_1\","
			"\"status\":\"cancelling\"}\n"));
	CHECK(api_delete_file(&api, NULL, "file-up", &err) == 0);
	CHECK(lines_are("{\"kind\":\"delete\",\"file\":\"file-up\"}\n"));
	/* A read is no change. */
	CHECK(api_get(&api, NULL, &batch_kind, "batch_1", &obj, &err) == 0);
	batch_unref(obj);
	CHECK(lines_are(""));
}

static void test_failed(const char *path)
{
	struct batch_params p = params();
	struct api_error err;
	struct file *f = NULL;
	struct batch *b = NULL;

	refuse = 1;
	CHECK(api_upload_file(&api, NULL, path, "q.jsonl", "batch", &f, &err) ==
		  -EPERM &&
	      !f);
	CHECK(lines_are("{\"kind\":\"upload\",\"name\":\"q.jsonl\","
			"\"error\":\"not today\"}\n"));
	CHECK(api_create_batch(&api, NULL, &p, &b, &err) == -EPERM && !b);
	CHECK(lines_are("{\"kind\":\"create\",\"file\":\"file-in\","
			"\"error\":\"not today\"}\n"));
	CHECK(api_cancel_batch(&api, NULL, "batch_1", &b, &err) == -EPERM &&
	      !b);
	CHECK(lines_are("{\"kind\":\"cancel\",\"id\":\"batch_1\","
			"\"error\":\"not today\"}\n"));
	CHECK(api_delete_file(&api, NULL, "file-up", &err) == -EPERM);
	CHECK(lines_are("{\"kind\":\"delete\",\"file\":\"file-up\","
			"\"error\":\"not today\"}\n"));
}

/* The caller's own interruption is a failure too, with nothing sent. */
static void test_interrupted(const char *path)
{
	struct api_error err;
	struct file *f = NULL;
	struct batch *b = NULL;
	struct op op;

	refuse = 0;
	http_stub_set(&stub, answer, NULL);
	op_start(&op, 5);
	op_interrupt(&op);
	CHECK(api_upload_file(&api, &op, path, "q.jsonl", "batch", &f, &err) ==
	      -EINTR);
	CHECK(api_cancel_batch(&api, &op, "batch_1", &b, &err) == -EINTR);
	CHECK(lines_are("{\"kind\":\"upload\",\"name\":\"q.jsonl\","
			"\"error\":\"interrupted\"}\n"
			"{\"kind\":\"cancel\",\"id\":\"batch_1\","
			"\"error\":\"interrupted\"}\n"));
	CHECK(http_stub_requests(&stub, NULL, 0));
}

int main(void)
{
	char path[128];

	if (http_stub_api(&stub, answer, NULL, &opts, &api) < 0) {
		fprintf(stderr, "no stub\n");
		return 1;
	}
	CHECK(events_open(1, 0, &reader) == 0);
	input(path, sizeof(path));
	test_made(path);
	test_failed(path);
	test_interrupted(path);
	unlink(path);
	events_close(reader);
	events_forget();
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
	return check_done("test_api_events");
}
