/*
 * test_job_create.c - unit tests of making a job (job_create.c) against a
 * fake API served by an in-process HTTP stub (http_stub.h) that keeps what
 * it is sent (each file's bytes, each batch's metadata): the exact bytes of
 * every part for inputs cut at the byte and the request limits, the tags of
 * each batch; bad input (a duplicate custom_id in part 9 of 12, a line over
 * the part size) refused with its line and nothing sent; an account without
 * room refused with what is missing, nothing sent; a creation stopped
 * halfway and resumed with no part twice, a part's file uploaded before
 * reused, a lost upload's copy found by name, a lost creation found by its
 * tags on resume, a Ctrl-C between parts; a job that exists is not made
 * again.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "fake_list.h"
#include "http_stub.h"
#include "job_create.h"
#include "job_tag.h"
#include "store_batches.h"
#include "store_files.h"
#include "submit.h"

/* The fake server. A status of 0 closes the connection with no answer
 * after doing the work (the answer is lost); -1 closes it without doing
 * it. */
static struct fake {
	struct fake_list batches, files;
	int list_status;     /* GET of a list */
	int lists_fail;	     /* batch lists failing (500) from now */
	int lost_lists_fail; /* lists_fail after a lost creation */
	int upload_fail_at;  /* the upload (from 1) answered with
				upload_status; 0: none */
	int upload_status;
	int create_fail_at; /* likewise for POST /v1/batches */
	int create_status;
	int interrupt_at; /* the creation (from 1) that interrupts op */
	struct op *op;	  /* the operation under way */
	int uploads, creates, next_id;
} fake;

static void add_file(const char *id, const char *filename, long long bytes,
		     char *content)
{
	char json[512];

	snprintf(json, sizeof(json),
		 "{\"id\":\"%s\",\"object\":\"file\",\"bytes\":%lld,"
		 "\"created_at\":%lld,\"filename\":\"%s\",\"purpose\":"
		 "\"batch\",\"status\":\"processed\"}",
		 id, bytes, (long long)time(NULL), filename);
	fake_list_put(&fake.files, id, json, content, 1);
}

/* Where needle (nlen bytes) starts in hay (len bytes), or NULL. */
static const char *find(const char *hay, size_t len, const char *needle,
			size_t nlen)
{
	for (size_t i = 0; i + nlen <= len; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return hay + i;
	return NULL;
}

/* POST /v1/files: the file part of the multipart body kept as a file. */
static int upload(const char *body, size_t len, char **reply)
{
	const char *eol = strstr(body, "\r\n"),
		   *fn = strstr(body, "filename=\""), *start, *end;
	char boundary[128], filename[256], id[32], *content;
	size_t blen, clen;

	if (!eol || !fn)
		return 400;
	blen = (size_t)snprintf(boundary, sizeof(boundary), "\r\n%.*s",
				(int)(eol - body), body);
	snprintf(filename, sizeof(filename), "%.*s",
		 (int)strcspn(fn + 10, "\""), fn + 10);
	start = strstr(fn, "\r\n\r\n") + 4;
	end = find(start, len - (size_t)(start - body), boundary, blen);
	if (!end)
		return 400;
	clen = (size_t)(end - start);
	content = malloc(clen + 1);
	memcpy(content, start, clen);
	content[clen] = '\0';
	snprintf(id, sizeof(id), "file-%d", ++fake.next_id);
	add_file(id, filename, (long long)clen, content);
	*reply = strdup(fake.files.objs[0].json);
	return 200;
}

/* POST /v1/batches: a batch of the body's input file and metadata. */
static int create(const char *body, char **reply)
{
	cJSON *in = cJSON_Parse(body), *b = cJSON_CreateObject();
	char id[32];
	char *json;

	snprintf(id, sizeof(id), "batch_%d", ++fake.next_id);
	cJSON_AddStringToObject(b, "id", id);
	cJSON_AddStringToObject(b, "object", "batch");
	cJSON_AddStringToObject(b, "endpoint", "/v1/chat/completions");
	cJSON_AddItemToObject(
	    b, "input_file_id",
	    cJSON_Duplicate(cJSON_GetObjectItem(in, "input_file_id"), 1));
	cJSON_AddStringToObject(b, "completion_window", "24h");
	cJSON_AddStringToObject(b, "status", "validating");
	cJSON_AddNullToObject(b, "output_file_id");
	cJSON_AddNullToObject(b, "error_file_id");
	cJSON_AddItemToObject(b, "request_counts",
			      cJSON_Parse("{\"total\":0,\"completed\":0,"
					  "\"failed\":0}"));
	cJSON_AddNumberToObject(b, "created_at", (double)time(NULL));
	cJSON_AddNumberToObject(b, "expires_at", (double)time(NULL) + 86400);
	cJSON_AddItemToObject(
	    b, "metadata",
	    cJSON_Duplicate(cJSON_GetObjectItem(in, "metadata"), 1));
	json = cJSON_PrintUnformatted(b);
	fake_list_put(&fake.batches, id, json, NULL, 1);
	*reply = json;
	cJSON_Delete(b);
	cJSON_Delete(in);
	return 200;
}

static char *error_body(void)
{
	return strdup("{\"error\":{\"message\":\"busy\"}}");
}

static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	(void)ctx;
	if (strcmp(method, "GET") == 0) {
		int batches = strncmp(target, "/v1/batches?", 12) == 0;

		if (fake.list_status != 200 || (batches && fake.lists_fail)) {
			fake.lists_fail -= batches && fake.lists_fail;
			*reply = error_body();
			return fake.list_status != 200 ? fake.list_status : 500;
		}
		*reply = fake_list_page(batches ? &fake.batches : &fake.files,
					target);
		return 200;
	}
	if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/files") == 0) {
		int status = ++fake.uploads == fake.upload_fail_at
				 ? fake.upload_status
				 : 200;

		if (status == 200 || status == 0) {
			int r = upload(body, len, reply);

			if (status == 0) {
				free(*reply);
				*reply = NULL;
			}
			return r == 200 ? status : r;
		}
		*reply = error_body();
		return status < 0 ? 0 : status;
	}
	if (strcmp(method, "POST") == 0 && strcmp(target, "/v1/batches") == 0) {
		int status = ++fake.creates == fake.create_fail_at
				 ? fake.create_status
				 : 200;

		if (fake.creates == fake.interrupt_at)
			op_interrupt(fake.op); /* Ctrl-C */
		if (status == 200 || status == 0) {
			create(body, reply);
			if (status == 0) {
				free(*reply);
				*reply = NULL;
				fake.lists_fail = fake.lost_lists_fail;
			}
			return status;
		}
		if (status < 0)
			fake.lists_fail = fake.lost_lists_fail;
		*reply = error_body();
		return status < 0 ? 0 : status;
	}
	return 404;
}

static struct http_stub stub;
static struct opts opts;
static struct api api;
static struct batches batches;
static struct files files;
static struct submit sb = {&api, &batches, &files, &opts};
static int cache_fd;

/* A fresh server and fresh stores. */
static void reset(void)
{
	fake_list_clear(&fake.batches);
	fake_list_clear(&fake.files);
	memset(&fake, 0, sizeof(fake));
	fake.list_status = 200;
	http_stub_set(&stub, answer, NULL);
}

static void stores_up(void)
{
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	CHECK(files_init(&files, &api, 60, 5, 100) == 0);
}

static void stores_down(void)
{
	files_destroy(&files);
	batches_destroy(&batches);
}

/* Requests whose line starts with "POST" since the last reset or call;
 * forgets them. */
static size_t posts(void)
{
	size_t n = http_stub_seen(&stub, 0, NULL, 0), k = 0;
	char line[160];

	for (size_t i = 0; i < n; i++) {
		http_stub_seen(&stub, i, line, sizeof(line));
		k += strncmp(line, "POST", 4) == 0;
	}
	http_stub_set(&stub, answer, NULL);
	return k;
}

/* Request line i (from 1): custom_id "r<i>", padded to width bytes of
 * the line (newline included) when width is bigger than the shortest. */
static void request_line(char *out, size_t len, int i, size_t width)
{
	int n = snprintf(out, len,
			 "{\"custom_id\":\"r%d\",\"method\":\"POST\",\"url\":"
			 "\"/v1/chat/completions\",\"body\":{\"model\":\"m\","
			 "\"p\":\"",
			 i);

	while ((size_t)n + 4 < width && (size_t)n < len - 5)
		out[n++] = 'x';
	snprintf(out + n, len - (size_t)n, "\"}}\n");
}

/* An input of n request lines of width bytes each (0: their shortest;
 * widths[i] when widths is given), in a temporary file: its descriptor,
 * the text in *text (malloc'd). */
static int input(int n, size_t width, const size_t *widths, char **text)
{
	char line[4096], path[] = "/tmp/kimifs-test-job-XXXXXX";
	size_t len = 0, cap = 0;
	int fd = mkstemp(path);

	unlink(path);
	*text = NULL;
	for (int i = 1; i <= n; i++) {
		size_t l;

		request_line(line, sizeof(line), i,
			     widths ? widths[i - 1] : width);
		l = strlen(line);
		if (len + l + 1 > cap) {
			cap = 2 * (len + l + 1);
			*text = realloc(*text, cap);
		}
		memcpy(*text + len, line, l + 1);
		len += l;
	}
	CHECK(write(fd, *text, len) == (ssize_t)len);
	return fd;
}

/* The file the fake server has with filename; NULL when none (or more
 * than one: *count says how many). */
static const char *server_file(const char *filename, int *count)
{
	const char *found = NULL;

	*count = 0;
	for (size_t i = 0; i < fake.files.n; i++)
		if (strstr(fake.files.objs[i].json, filename)) {
			(*count)++;
			found = fake.files.objs[i].content;
		}
	return *count == 1 ? found : NULL;
}

/* Every part on the server: part i of n as job's input bytes from
 * the offsets ends[] of text, its batch tagged kimifs_job and
 * kimifs_part "i/n" with that file as its input. */
static int parts_on_server(const char *job, const char *text,
			   const size_t *ends, int n)
{
	int ok = 1;

	for (int i = 0; i < n; i++) {
		char name[256], tag[128];
		size_t from = i ? ends[i - 1] : 0;
		int count, batches_of = 0;
		const char *content;

		snprintf(name, sizeof(name), "\"%s.part-%04d-of-%04d.jsonl\"",
			 job, i + 1, n);
		content = server_file(name, &count);
		if (!content || strlen(content) != ends[i] - from ||
		    memcmp(content, text + from, ends[i] - from) != 0) {
			fprintf(stderr, "  part %d: %d files, wrong bytes\n",
				i + 1, count);
			ok = 0;
		}
		snprintf(tag, sizeof(tag),
			 "\"metadata\":{\"kimifs_job\":\"%s\","
			 "\"kimifs_part\":\"%d/%d\"}",
			 job, i + 1, n);
		for (size_t b = 0; b < fake.batches.n; b++)
			batches_of +=
			    strstr(fake.batches.objs[b].json, tag) != NULL;
		if (batches_of != 1) {
			fprintf(stderr, "  part %d: %d batches\n", i + 1,
				batches_of);
			ok = 0;
		}
	}
	return ok && (int)fake.batches.n == n;
}

static struct job_create jc(uint64_t part_size, uint64_t part_requests)
{
	return (struct job_create){.batches = &batches,
				   .files = &files,
				   .submit = &sb,
				   .cache_fd = cache_fd,
				   .part_size = part_size,
				   .part_requests = part_requests,
				   .completion_window = "24h",
				   /* the least: ids in runs, merged */
				   .check_mem = 1};
}

/* Run job_create over fd (size bytes). */
static int run(const struct job_create *c, const char *name, int fd, int resume,
	       struct job_outcome *o)
{
	struct op op;

	op_start(&op, 30);
	fake.op = &op;
	return job_create(c, &op, name, fd, (uint64_t)lseek(fd, 0, SEEK_END),
			  resume, o);
}

static void cuts(void)
{
	struct job_create c;
	struct job_outcome o;
	char *text;
	size_t ends[8];
	int fd;

	/* At the byte limit: lines of 100 bytes, parts of at most 250:
	 * two lines each; a part ends exactly at its limit too. */
	reset();
	stores_up();
	fd = input(7, 100, NULL, &text);
	c = jc(250, 0);
	CHECK(run(&c, "q", fd, 0, &o) == 0 && o.nparts == 4);
	for (int i = 0; i < 4; i++)
		ends[i] = i < 3 ? 200 * (size_t)(i + 1) : 700;
	CHECK(parts_on_server("q", text, ends, 4));
	CHECK(o.parts[0].state == JOB_PART_MADE &&
	      o.parts[3].state == JOB_PART_MADE && o.parts[3].batch[0]);
	CHECK(posts() == 8);
	job_outcome_free(&o);
	close(fd);
	free(text);
	stores_down();

	reset();
	stores_up();
	fd = input(6, 100, NULL, &text);
	c = jc(300, 0); /* three lines fit exactly */
	CHECK(run(&c, "exact", fd, 0, &o) == 0 && o.nparts == 2);
	ends[0] = 300, ends[1] = 600;
	CHECK(parts_on_server("exact", text, ends, 2));
	job_outcome_free(&o);
	close(fd);
	free(text);
	stores_down();

	/* At the request limit: 3 requests a part, bytes to spare. */
	reset();
	stores_up();
	fd = input(8, 0, NULL, &text);
	c = jc(0, 3);
	CHECK(run(&c, "by-count", fd, 0, &o) == 0 && o.nparts == 3);
	for (int i = 0, line = 0, at = 0; i < 3; i++) {
		for (int k = 0; k < 3 && line < 8; k++, line++)
			at += (int)(strchr(text + at, '\n') - (text + at)) + 1;
		ends[i] = (size_t)at;
	}
	CHECK(parts_on_server("by-count", text, ends, 3));
	job_outcome_free(&o);
	close(fd);
	free(text);
	stores_down();
}

static void bad_input(void)
{
	struct job_create c = jc(0, 2);
	struct job_outcome o;
	char *text, line[4096];
	size_t widths[24];
	int fd;

	/* A custom_id of line 1 again on line 18: part 9 of 12. */
	reset();
	stores_up();
	fd = input(24, 0, NULL, &text);
	request_line(line, sizeof(line), 1, 0);
	{
		char *l18 = text;

		for (int i = 1; i < 18; i++)
			l18 = strchr(l18, '\n') + 1;
		CHECK(pwrite(fd, line, strlen(line), l18 - text) ==
		      (ssize_t)strlen(line));
		/* "r1" is shorter than "r18": the rest of the file follows
		 * shifted by one byte; rewrite it after. */
		size_t rest = strlen(l18 + strlen(line) + 1);

		CHECK(pwrite(fd, l18 + strlen(line) + 1, rest,
			     l18 - text + (off_t)strlen(line)) ==
		      (ssize_t)rest);
		CHECK(ftruncate(fd, (off_t)strlen(text) - 1) == 0);
	}
	CHECK(run(&c, "dup", fd, 0, &o) == -EINVAL && o.why &&
	      strstr(o.why, "dup.jsonl:18: custom_id \"r1\" repeats line 1"));
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);
	job_outcome_free(&o);
	close(fd);
	free(text);

	/* A line over the part size (line 5 of 500 bytes, parts of 300). */
	for (int i = 0; i < 8; i++)
		widths[i] = i == 4 ? 500 : 100;
	fd = input(8, 0, widths, &text);
	c = jc(300, 0);
	CHECK(run(&c, "long", fd, 0, &o) == -EINVAL && o.why &&
	      strstr(o.why, "line 5 is longer than the part size"));
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);
	job_outcome_free(&o);

	close(fd);
	free(text);

	/* More parts than a job's names can number: one request a part. */
	fd = input(JOB_PARTS_MAX + 1, 0, NULL, &text);
	c = jc(0, 1);
	CHECK(run(&c, "many", fd, 0, &o) == -EINVAL && o.why &&
	      strstr(o.why, "needs more than 9999 parts"));
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);
	job_outcome_free(&o);

	/* Not a job's name. */
	CHECK(run(&c, "a\"b", fd, 0, &o) == -EINVAL);
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);
	job_outcome_free(&o);
	close(fd);
	free(text);
	stores_down();
}

static void room(void)
{
	struct job_create c = jc(250, 0);
	struct job_outcome o;
	char id[32], *text;
	int fd = input(7, 100, NULL, &text); /* 4 parts, 700 bytes */

	/* 997 files: room for 3 of the 4. */
	reset();
	stores_up();
	for (int i = 0; i < 997; i++) {
		snprintf(id, sizeof(id), "file-old%d", i);
		add_file(id, "old.jsonl", 10, NULL);
	}
	CHECK(run(&c, "q", fd, 0, &o) == -EDQUOT && o.why &&
	      strstr(o.why, "1 files and 0 bytes missing"));
	CHECK(posts() == 0);
	job_outcome_free(&o);
	stores_down();

	/* Bytes: 100 short of the 10 GB. */
	reset();
	stores_up();
	add_file("file-big", "big.jsonl", 10000000000LL - 100, NULL);
	CHECK(run(&c, "q", fd, 0, &o) == -EDQUOT && o.why &&
	      strstr(o.why, "0 files and 600 bytes missing"));
	CHECK(posts() == 0);
	job_outcome_free(&o);
	stores_down();
	close(fd);
	free(text);
}

/*
 * The second creation's answer lost (the batch made, or not) and the list
 * unreadable: -EINPROGRESS, why saying where to look. A resume finds the
 * batch by its tags and makes no second one; or, none made, uses the
 * part's file.
 */
static void lost_creation(const struct job_create *c, int fd, const char *text,
			  const size_t *ends, int made)
{
	struct job_outcome o;

	reset();
	stores_up();
	fake.create_fail_at = 2;
	fake.create_status = made ? 0 : -1;
	fake.lost_lists_fail = 1;
	CHECK(run(c, "q", fd, 0, &o) == -EINPROGRESS &&
	      o.parts[1].state == JOB_PART_FAILED &&
	      strstr(o.why, "input_file_id"));
	CHECK(posts() == 4); /* part 1, part 2's file and batch */
	job_outcome_free(&o);
	CHECK(run(c, "q", fd, 1, &o) == 0 &&
	      o.parts[1].state == (made ? JOB_PART_EXISTED : JOB_PART_MADE) &&
	      o.parts[1].reused == !made);
	CHECK(posts() == (made ? 4u : 5u)); /* parts 3 and 4 (and 2) */
	CHECK(parts_on_server("q", text, ends, 4));
	job_outcome_free(&o);
	stores_down();
}

static void resume(void)
{
	struct job_create c = jc(250, 0);
	struct job_outcome o;
	size_t ends[4] = {200, 400, 600, 700};
	char *text, *other_text;
	int other, fd = input(7, 100, NULL, &text);

	/* The third upload refused: parts 1 and 2 made, 3 failed. */
	reset();
	stores_up();
	fake.upload_fail_at = 3;
	fake.upload_status = 400;
	CHECK(run(&c, "q", fd, 0, &o) == -EPERM && o.nparts == 4 &&
	      o.parts[1].state == JOB_PART_MADE &&
	      o.parts[2].state == JOB_PART_FAILED &&
	      o.parts[3].state == JOB_PART_UNTRIED && strstr(o.why, "busy"));
	CHECK(posts() == 5);
	job_outcome_free(&o);
	/* Made again without resume: it exists. */
	CHECK(run(&c, "q", fd, 0, &o) == -EEXIST && posts() == 0);
	job_outcome_free(&o);
	/* Resumed from another input of as many parts: the parts that exist
	 * are not of its size, so it is another input: nothing sent. */
	other = input(7, 90, NULL, &other_text);
	CHECK(run(&c, "q", other, 1, &o) == -EEXIST && posts() == 0 && o.why &&
	      strstr(o.why, "another input"));
	job_outcome_free(&o);
	close(other);
	free(other_text);
	/* Resumed: only parts 3 and 4 sent. */
	CHECK(run(&c, "q", fd, 1, &o) == 0 &&
	      o.parts[0].state == JOB_PART_EXISTED &&
	      o.parts[1].state == JOB_PART_EXISTED &&
	      o.parts[2].state == JOB_PART_MADE &&
	      o.parts[3].state == JOB_PART_MADE);
	CHECK(posts() == 4);
	CHECK(parts_on_server("q", text, ends, 4));
	job_outcome_free(&o);
	/* Nothing is missing: nothing sent. */
	CHECK(run(&c, "q", fd, 1, &o) == 0 && posts() == 0);
	job_outcome_free(&o);
	stores_down();

	/* The second creation refused: its file is there; a resume (from
	 * another mount: fresh stores) uses it, not a second upload. */
	reset();
	stores_up();
	fake.create_fail_at = 2;
	fake.create_status = 400;
	CHECK(run(&c, "q", fd, 0, &o) == -EPERM &&
	      o.parts[1].state == JOB_PART_FAILED && o.parts[1].file[0]);
	job_outcome_free(&o);
	stores_down();
	stores_up();
	http_stub_set(&stub, answer, NULL);
	CHECK(run(&c, "q", fd, 1, &o) == 0 && o.parts[1].reused &&
	      o.parts[1].state == JOB_PART_MADE);
	CHECK(posts() == 2 + 3); /* part 2's batch; part 3 and 4 whole */
	CHECK(parts_on_server("q", text, ends, 4));
	job_outcome_free(&o);
	stores_down();

	/* The first upload's answer lost: its copy is found by name, not
	 * sent again. */
	reset();
	stores_up();
	fake.upload_fail_at = 1;
	fake.upload_status = 0;
	CHECK(run(&c, "q", fd, 0, &o) == 0);
	CHECK(posts() == 8);
	CHECK(parts_on_server("q", text, ends, 4));
	job_outcome_free(&o);
	stores_down();

	/* Files of other sizes, or of another cut, are not its parts. */
	reset();
	stores_up();
	add_file("file-size", "q.part-0002-of-0004.jsonl", 199, NULL);
	add_file("file-cut", "q.part-0002-of-0005.jsonl", 200, NULL);
	add_file("file-job", "qq.part-0002-of-0004.jsonl", 200, NULL);
	CHECK(run(&c, "q", fd, 0, &o) == 0 && !o.parts[1].reused &&
	      strcmp(o.parts[1].file, "file-size") != 0);
	CHECK(posts() == 8 && fake.files.n == 3 + 4);
	job_outcome_free(&o);
	stores_down();

	lost_creation(&c, fd, text, ends, 1);
	lost_creation(&c, fd, text, ends, 0);

	/* Ctrl-C during the second creation: that batch is made (its
	 * answer came, or it was looked for), the third part is not
	 * tried; a resume makes the rest. */
	reset();
	stores_up();
	fake.interrupt_at = 2;
	CHECK(run(&c, "q", fd, 0, &o) == -EINTR &&
	      o.parts[1].state == JOB_PART_MADE &&
	      o.parts[2].state == JOB_PART_FAILED &&
	      o.parts[3].state == JOB_PART_UNTRIED &&
	      strstr(o.why, "interrupted"));
	job_outcome_free(&o);
	CHECK(run(&c, "q", fd, 1, &o) == 0 &&
	      o.parts[2].state == JOB_PART_MADE);
	CHECK(parts_on_server("q", text, ends, 4));
	job_outcome_free(&o);
	stores_down();
	close(fd);
	free(text);
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-jobcache-XXXXXX";

	if (!mkdtemp(dir) ||
	    http_stub_api(&stub, answer, NULL, &opts, &api) < 0)
		return 1;
	cache_fd = open(dir, O_RDONLY | O_DIRECTORY);

	cuts();
	bad_input();
	room();
	resume();

	reset();
	api_destroy(&api);
	http_stub_stop(&stub);
	close(cache_fd);
	CHECK(rmdir(dir) == 0); /* the scratch files left nothing */
	curl_global_cleanup();
	return check_done("job_create");
}
