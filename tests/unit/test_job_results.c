/*
 * test_job_results.c - unit tests of a job's merged results over a real
 * disk cache whose downloads are a stub: the latest success of each
 * custom_id, else its latest failure, across parts and rounds; entries by
 * position and by name; both streams whole and read in pieces; the token
 * sums; an index kept for its snapshot and made anew for another; a job
 * large enough to grow the table several times.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "cache.h"
#include "check.h"
#include "fake_download.h"
#include "job.h"
#include "job_results.h"
#include "job_tag.h"
#include "results_cache.h"

#define OK(id, text)                                                           \
	"{\"custom_id\":\"" id "\",\"response\":{\"status_code\":200,"         \
	"\"body\":{\"choices\":[{\"message\":{\"content\":\"" text "\"}}],"    \
	"\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"              \
	"\"total_tokens\":3}}}}"
#define FAIL(id, why)                                                          \
	"{\"custom_id\":\"" id "\",\"response\":{\"status_code\":400,"         \
	"\"body\":{\"error\":{\"message\":\"" why "\"}}}}"

#define BIG 5000 /* custom_ids of the large job */

/* What the stub serves for each file id; others are 404. */
static struct {
	const char *id;
	const char *content;
} served[] = {
    {"file-p1out", OK("a", "alpha") "\n" OK("b", "beta") "\n"},
    {"file-p1err", FAIL("c", "first") "\n"},
    {"file-p2out", OK("d", "delta") "\n"},
    {"file-p2err", FAIL("e", "first") "\n"},
    {"file-r1out", OK("c", "gamma") "\n"},
    /* a succeeded in round 0: a later failure does not replace it. */
    {"file-r1err", FAIL("e", "second") "\n" FAIL("a", "late")},
    {"file-r1out2", OK("c", "gamma") "\n" OK("e", "epsilon") "\n"},
    {"file-bigout", NULL},
    {"file-bigretry", NULL},
};

static int stub(void *ctx, struct op *op, const char *id, int fd,
		void (*on_sink)(void *, size_t), void *arg, size_t *len,
		struct api_error *err)
{
	(void)ctx, (void)op;
	fake_download_call();
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
		size_t n;

		if (strcmp(id, served[i].id) != 0 || !served[i].content)
			continue;
		n = strlen(served[i].content);
		if (write(fd, served[i].content, n) != (ssize_t)n)
			return -EIO;
		on_sink(arg, n);
		*len = n;
		return 0;
	}
	snprintf(err->message, sizeof(err->message), "No such file");
	return -ENOENT;
}

static char *big_out, *big_retry;

/* The lines of the large job: every id answered in part 1, every 7th
 * failed there and answered in round 1. */
static void make_big(void)
{
	size_t cap = (size_t)BIG * 160, n = 0, m = 0;
	char *out = malloc(cap), *retry = malloc(cap);

	for (int i = 0; out && retry && i < BIG; i++) {
		if (i % 7)
			n += (size_t)snprintf(out + n, cap - n,
					      "{\"custom_id\":\"id-%05d\","
					      "\"response\":{\"status_code\":"
					      "200}}\n",
					      i);
		else
			n += (size_t)snprintf(out + n, cap - n,
					      "{\"custom_id\":\"id-%05d\","
					      "\"response\":{\"status_code\":"
					      "500}}\n",
					      i);
		if (i % 7 == 0)
			m += (size_t)snprintf(retry + m, cap - m,
					      "{\"custom_id\":\"id-%05d\","
					      "\"response\":{\"status_code\":"
					      "201}}\n",
					      i);
	}
	served[7].content = big_out = out;
	served[8].content = big_retry = retry;
}

#define MAXB 8
static struct batch *bs[MAXB];
static struct job_tag ts[MAXB];
static size_t nb;

/* Add a final batch of job q: its part, round (or NULL) and files. */
static void add(const char *id, const char *part, const char *retry,
		const char *out, const char *err)
{
	char text[1024], meta[256], o[64], e[64], why[256];
	cJSON *obj;
	int r;

	snprintf(meta, sizeof(meta),
		 "{\"kimifs_job\":\"q\",\"kimifs_part\":\"%s\"%s%s%s}", part,
		 retry ? ",\"kimifs_retry\":\"" : "", retry ? retry : "",
		 retry ? "\"" : "");
	snprintf(o, sizeof(o), out ? "\"%s\"" : "null", out);
	snprintf(e, sizeof(e), err ? "\"%s\"" : "null", err);
	snprintf(text, sizeof(text),
		 "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		 "\"/v1/chat/completions\",\"input_file_id\":\"file-a\","
		 "\"completion_window\":\"24h\",\"status\":\"completed\","
		 "\"created_at\":100,\"metadata\":%s,\"output_file_id\":%s,"
		 "\"error_file_id\":%s,\"request_counts\":{\"total\":1,"
		 "\"completed\":1,\"failed\":0}}",
		 id, meta, o, e);
	obj = cJSON_Parse(text);
	r = batch_from_json(obj, &bs[nb], why, sizeof(why));
	CHECK(r == 0);
	cJSON_Delete(obj);
	if (r < 0)
		return;
	CHECK(job_tag_of(bs[nb], &ts[nb], why, sizeof(why)) == 1);
	nb++;
}

/* The job of the batches added so far (then cleared). */
static struct job *make(void)
{
	struct job *j = NULL;

	CHECK(job_make("q", bs, ts, nb, &j) == 0);
	for (size_t i = 0; i < nb; i++)
		batch_unref(bs[i]);
	nb = 0;
	return j;
}

/* Stream s of x read whole in pieces of step bytes, NUL-terminated. */
static char *stream(struct job_index *x, enum job_stream s, size_t step)
{
	size_t total = (size_t)job_index_size(x, s), have = 0, len;
	char *all = malloc(total + 1), *piece;

	while (all && have < total) {
		if (job_index_read(x, NULL, s, have, step, &piece, &len) < 0 ||
		    len == 0) {
			free(all);
			return NULL;
		}
		memcpy(all + have, piece, len);
		have += len;
		free(piece);
	}
	if (all)
		all[have] = '\0';
	return all;
}

/* The .txt-less line of name in x, NUL-terminated (NULL: none). */
static char *line_of(struct job_index *x, const char *name, int *ok)
{
	struct job_entry e;
	char *line;

	if (job_index_find(x, name, strlen(name), &e) < 0 ||
	    job_index_line(x, NULL, &e, &line) < 0)
		return NULL;
	*ok = e.ok;
	return line;
}

static void test_two_rounds(struct job_results *jr)
{
	struct job *j, *j2;
	struct job_index *x = NULL, *again = NULL, *x2 = NULL;
	struct job_cursor *c;
	struct job_entry e;
	const char *order[] = {"a", "b", "c", "d", "e"};
	char *text;
	int ok = 0, calls;

	add("batch_p1", "1/2", NULL, "file-p1out", "file-p1err");
	add("batch_p2", "2/2", NULL, "file-p2out", "file-p2err");
	add("batch_r1", "1/1", "1", "file-r1out", "file-r1err");
	j = make();
	CHECK(j && job_results_get(jr, NULL, j, &x) == 0 && x);
	if (!x)
		return;
	CHECK(job_index_count(x) == 5);
	/* By first appearance: part 1's output, its error file, part 2. */
	c = job_cursor_new(x);
	for (size_t i = 0; c && i < 5; i++)
		CHECK(job_cursor_entry(c, i, &e) == 0 &&
		      strcmp(e.name, order[i]) == 0);
	CHECK(c && job_cursor_entry(c, 5, &e) == -ENOENT);
	job_cursor_free(c);
	/* The latest success wins; a request that failed twice shows its
	 * latest failure. */
	text = line_of(x, "c", &ok);
	CHECK(text && ok && strcmp(text, OK("c", "gamma")) == 0);
	free(text);
	text = line_of(x, "e", &ok);
	CHECK(text && !ok && strcmp(text, FAIL("e", "second")) == 0);
	free(text);
	CHECK(job_index_find(x, "z", 1, &e) == -ENOENT);
	CHECK(job_index_find(x, "a", 1, &e) == 0 && e.has_txt && e.ok);
	text = line_of(x, "a", &ok);
	CHECK(text && ok && strcmp(text, OK("a", "alpha")) == 0);
	free(text);
	/* The streams, whole and in odd pieces. */
	for (size_t step = 1; step < 400; step += 37) {
		char *out = stream(x, JOB_OUTPUT, step),
		     *err = stream(x, JOB_ERRORS, step);

		CHECK(
		    out &&
		    strcmp(out, OK("a", "alpha") "\n" OK("b", "beta") "\n" OK(
				    "c", "gamma") "\n" OK("d", "delta") "\n") ==
			0);
		CHECK(err && strcmp(err, FAIL("e", "second") "\n") == 0);
		free(out);
		free(err);
	}
	/* A rendering is shared while held; a failure has no .txt. */
	{
		struct job_render *r1 = NULL, *r2 = NULL, *r3 = NULL;

		CHECK(job_index_find(x, "c", 1, &e) == 0);
		CHECK(job_render_get(jr, NULL, x, &e, 1, &r1) == 0 && r1 &&
		      r1->len == 6 && memcmp(r1->data, "gamma\n", 6) == 0);
		CHECK(job_render_get(jr, NULL, x, &e, 1, &r2) == 0 && r2 == r1);
		CHECK(jr->render_bytes == 6);
		CHECK(job_index_find(x, "e", 1, &e) == 0);
		CHECK(job_render_get(jr, NULL, x, &e, 1, &r3) == -ENOENT);
		job_render_release(r1);
		job_render_release(r2);
		CHECK(jr->render_bytes == 0 && !jr->renders);
	}
	/* Every output line of every batch, the retry's included. */
	CHECK(job_index_usage(x, USAGE_TOTAL) == 4 * 3);
	CHECK(job_index_usage(x, USAGE_PROMPT) == 4);

	/* The same snapshot: the index kept, nothing downloaded. */
	calls = fake_download_count();
	CHECK(job_results_get(jr, NULL, j, &again) == 0 && again == x);
	CHECK(fake_download_count() == calls);
	job_index_release(again);

	/* A round's batch that names another file: a new index. */
	add("batch_p1", "1/2", NULL, "file-p1out", "file-p1err");
	add("batch_p2", "2/2", NULL, "file-p2out", "file-p2err");
	add("batch_r1", "1/1", "1", "file-r1out2", NULL);
	j2 = make();
	CHECK(j2 && job_results_get(jr, NULL, j2, &x2) == 0 && x2 && x2 != x);
	if (x2) {
		char *err = stream(x2, JOB_ERRORS, 4096);

		text = line_of(x2, "e", &ok);
		CHECK(text && ok && strcmp(text, OK("e", "epsilon")) == 0);
		free(text);
		CHECK(err && strcmp(err, "") == 0);
		free(err);
	}
	job_index_release(x2);
	job_index_release(x);
	job_unref(j2);
	job_unref(j);
}

/* Enough custom_ids to grow the table from 1024 slots several times. */
static void test_big(struct job_results *jr)
{
	struct job_index *x = NULL;
	struct job_entry e;
	struct job *j;
	char name[16], *out;
	size_t n = 0;
	int ok = 0;

	make_big();
	add("batch_big", "1/1", NULL, "file-bigout", NULL);
	add("batch_bigr", "1/1", "1", "file-bigretry", NULL);
	j = make();
	CHECK(j && job_results_get(jr, NULL, j, &x) == 0 && x);
	if (!x) {
		job_unref(j);
		return;
	}
	CHECK(job_index_count(x) == BIG);
	for (int i = 0; i < BIG; i += 1) {
		char *line;

		snprintf(name, sizeof(name), "id-%05d", i);
		line = line_of(x, name, &ok);
		CHECK(line && ok &&
		      strstr(line, i % 7 ? "200" : "201") != NULL);
		free(line);
	}
	CHECK(job_index_find(x, "id-99999", 8, &e) == -ENOENT);
	out = stream(x, JOB_OUTPUT, 65536);
	for (const char *p = out; p && *p; p++)
		n += *p == '\n';
	CHECK(out && n == BIG);
	free(out);
	CHECK(job_index_size(x, JOB_ERRORS) == 0);
	job_index_release(x);
	job_unref(j);
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-job-results-XXXXXX", why[256];
	struct results_cache rc;
	struct job_results jr;
	struct cache disk;

	if (!mkdtemp(dir) ||
	    cache_init(&disk, dir, 64 << 20, stub, NULL, why, sizeof(why)) < 0)
		return 1;
	results_cache_init(&rc, &disk);
	job_results_init(&jr, &rc, &disk);
	test_two_rounds(&jr);
	test_big(&jr);
	job_results_destroy(&jr);
	results_cache_destroy(&rc);
	cache_destroy(&disk);
	free(big_out);
	free(big_retry);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return check_done("job_results");
}
