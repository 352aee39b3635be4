/*
 * test_results_cache.c - unit tests of the results cache over a real disk
 * cache whose downloads are a stub: a batch's output and error files
 * downloaded once and indexed, a set shared while held, a new snapshot
 * naming other files built anew, a file the server no longer has counted
 * as empty, a failed build not kept, renderings shared by their holders.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "batch.h"
#include "cache.h"
#include "check.h"
#include "fake_download.h"
#include "results.h"
#include "results_cache.h"

#define LINE(id, status, text)                                                 \
	"{\"id\":\"r\",\"custom_id\":\"" id                                    \
	"\",\"response\":{\"status_code\":" #status                            \
	",\"request_id\":\"q\",\"body\":{\"choices\":[{\"message\":"           \
	"{\"role\":\"assistant\",\"content\":\"" text "\"}}],\"usage\":"       \
	"{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}},"  \
	"\"error\":null}\n"

/* What the stub serves for each file id; others are 404. */
static const struct {
	const char *id;
	const char *content;
} served[] = {
    {"file-out", LINE("a", 200, "alpha") LINE("b", 200, "beta")},
    {"file-err", LINE("c", 500, "")},
    {"file-out2", LINE("a", 200, "again")},
};

static int stub(void *ctx, struct op *op, const char *id, int fd,
		void (*on_sink)(void *, size_t), void *arg, size_t *len,
		struct api_error *err)
{
	int r = fake_download_call();

	(void)ctx, (void)op;
	if (r) {
		snprintf(err->message, sizeof(err->message), "stub failure");
		return r;
	}
	for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
		size_t n = strlen(served[i].content);

		if (strcmp(id, served[i].id) != 0)
			continue;
		if (write(fd, served[i].content, n) != (ssize_t)n)
			return -EIO;
		on_sink(arg, n);
		*len = n;
		return 0;
	}
	snprintf(err->message, sizeof(err->message), "No such file");
	return -ENOENT;
}

/* A final batch snapshot of id with these output and error file ids
 * (NULL: none). */
static struct batch *snapshot(const char *id, const char *out, const char *err)
{
	char text[1024], why[256], o[64], e[64];
	struct batch *b = NULL;
	cJSON *obj;

	snprintf(o, sizeof(o), out ? "\"%s\"" : "null", out);
	snprintf(e, sizeof(e), err ? "\"%s\"" : "null", err);
	snprintf(text, sizeof(text),
		 "{\"id\":\"%s\",\"object\":\"batch\",\"endpoint\":"
		 "\"/v1/chat/completions\",\"input_file_id\":\"file-in\","
		 "\"completion_window\":\"24h\",\"status\":\"completed\","
		 "\"output_file_id\":%s,\"error_file_id\":%s,"
		 "\"created_at\":100,\"in_progress_at\":110,"
		 "\"expires_at\":99999,\"finalizing_at\":120,"
		 "\"completed_at\":130,\"failed_at\":null,"
		 "\"cancelling_at\":null,\"cancelled_at\":null,"
		 "\"request_counts\":{\"total\":3,\"completed\":2,"
		 "\"failed\":1},\"metadata\":null}",
		 id, o, e);
	obj = cJSON_Parse(text);
	if (batch_from_json(obj, &b, why, sizeof(why)) < 0)
		b = NULL;
	cJSON_Delete(obj);
	return b;
}

/* The .txt of name in held set s, as the cache renders it (NULL: none). */
static char *txt_of(struct results_cache *rc, struct results_set *s,
		    const char *name)
{
	const struct result *e = results_find(s->ix, name, strlen(name));
	struct results_render *rd;
	char *text;

	if (!e || results_render_get(NULL, rc, s, e, 1, &rd) < 0)
		return NULL;
	text = strndup(rd->data, rd->len);
	results_render_release(rd);
	return text;
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-results-cache-XXXXXX", why[256];
	struct batch *b = NULL, *b2 = NULL, *none = NULL, *gone = NULL;
	struct results_set *s = NULL, *again = NULL, *s2 = NULL;
	struct results_cache rc;
	struct cache disk;
	char *text;
	int r;

	if (!mkdtemp(dir) ||
	    cache_init(&disk, dir, 1 << 20, stub, NULL, why, sizeof(why)) < 0)
		return 1;
	results_cache_init(&rc, &disk);
	b = snapshot("batch_one", "file-out", "file-err");
	b2 = snapshot("batch_one", "file-out2", NULL);
	none = snapshot("batch_two", NULL, NULL);
	gone = snapshot("batch_three", "file-gone", NULL);
	CHECK(b && b2 && none && gone);

	/* The output and the error file, downloaded once and indexed. */
	CHECK(results_get(&rc, NULL, b, &s) == 0 && s && s->ix->n == 3);
	CHECK(fake_download_count() == 2);
	text = txt_of(&rc, s, "a");
	CHECK(text && strcmp(text, "alpha\n") == 0);
	free(text);
	CHECK(txt_of(&rc, s, "c") == NULL); /* a failure has no .txt */

	/* A second caller shares the held set: nothing downloaded. */
	CHECK(results_get(&rc, NULL, b, &again) == 0 && again == s);
	CHECK(fake_download_count() == 2);
	results_release(&rc, again);
	results_release(&rc, s);

	/* Kept after release: still nothing downloaded. */
	CHECK(results_get(&rc, NULL, b, &s) == 0 && s &&
	      fake_download_count() == 2);
	results_release(&rc, s);

	/* A snapshot naming another output file is a set of its own. */
	CHECK(results_get(&rc, NULL, b2, &s2) == 0 && s2 && s2->ix->n == 1);
	CHECK(fake_download_count() == 3);
	text = txt_of(&rc, s2, "a");
	CHECK(text && strcmp(text, "again\n") == 0);
	free(text);
	results_release(&rc, s2);

	/* No files yet: no set, nothing sent. */
	s = (struct results_set *)1;
	CHECK(results_get(&rc, NULL, none, &s) == 0 && s == NULL);
	CHECK(fake_download_count() == 3);

	/* A file the server no longer has counts as empty. */
	CHECK(results_get(&rc, NULL, gone, &s) == 0 && s && s->ix->n == 0);
	results_release(&rc, s);

	/* A failed build is not kept: the next caller tries again. The
	 * downloads so far end first (one still renaming its file into
	 * place would serve the content the test forgets). */
	fake_download_settle(&disk);
	fake_download_fail(-EIO, 0);
	cache_forget(&disk, "file-out");
	cache_forget(&disk, "file-err");
	{
		struct batch *b3 = snapshot("batch_four", "file-out", NULL);

		r = results_get(&rc, NULL, b3, &s);
		CHECK(r == -EIO);
		fake_download_fail(0, 0);
		CHECK(results_get(&rc, NULL, b3, &s) == 0 && s &&
		      s->ix->n == 2);
		results_release(&rc, s);
		batch_unref(b3);
	}

	results_cache_destroy(&rc);
	cache_destroy(&disk);
	batch_unref(b);
	batch_unref(b2);
	batch_unref(none);
	batch_unref(gone);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return check_done("test_results_cache");
}
