/*
 * test_stage.c - unit tests of the table of staged files: one writer per
 * name and directory, sizes from writes at any offset and from resizes,
 * listings, unstaging on release (the file leaves the disk), the names an
 * upload may have, the size limit at write time, and the batch made last;
 * the flush of close() (stage_submit) against an in-process HTTP stub:
 * nothing new sends nothing, another process's close is not the writer's,
 * a file that breaks the rules or whose write failed (poisoned) is never
 * sent, a good one is checked, uploaded once and unstaged.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "http_stub.h"
#include "jsonl_check.h"
#include "stage.h"
#include "store_batches.h"
#include "store_files.h"
#include "submit.h"
#include "util.h"

#define LINE(id)                                                               \
	"{\"custom_id\":\"" id "\",\"method\":\"POST\",\"url\":"               \
	"\"/v1/chat/completions\",\"body\":{\"model\":\"m\","                  \
	"\"messages\":[]}}\n"

/* Files in dir, "." and ".." aside. */
static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	const struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* The names stage_each gives, the first few. */
struct names {
	char name[4][64];
	size_t n;
};

static int add_name(void *ctx, const char *name)
{
	struct names *l = ctx;

	if (l->n < 4)
		snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->n++;
	return 0;
}

/* The stub server: every upload answered with the file "file-up". */
static int answer(void *ctx, const char *method, const char *target,
		  const char *body, size_t len, char **reply)
{
	(void)ctx, (void)body, (void)len;
	if (strcmp(method, "POST") != 0 || strcmp(target, "/v1/files") != 0)
		return 404;
	*reply = strdup("{\"id\":\"file-up\",\"object\":\"file\",\"bytes\":1,"
			"\"created_at\":1,\"filename\":\"q.jsonl\","
			"\"purpose\":\"batch\",\"status\":\"ready\"}");
	return 200;
}

/* Write a file named name into s's files/ with text, by owner 7. */
static struct staged *staged_with(struct stage *s, const char *name,
				  const char *text)
{
	struct staged *st = NULL;

	CHECK(stage_create(s, STAGE_FILES, name, &st) == 0);
	if (st)
		CHECK(stage_write(st, text, strlen(text), 0, 7) ==
		      (ssize_t)strlen(text));
	return st;
}

/* The flush of close (stage_submit) against the stub. */
static void flushes(struct stage *s, const char *dir)
{
	static struct http_stub stub;
	struct opts o;
	struct api api;
	struct batches batches;
	struct files files;
	struct submit sb = {&api, &batches, &files, &o};
	struct rlimit lim, small;
	struct staged *st;
	struct file *f;
	struct op op;
	uint64_t size;
	time_t mtime;

	if (http_stub_api(&stub, answer, NULL, &o, &api) < 0)
		return;
	CHECK(batches_init(&batches, &api, 60, 5, 100) == 0);
	CHECK(files_init(&files, &api, 60, 5, 100) == 0);

	/* Nothing written since the last flush: nothing sent, still staged;
	 * another process's close of the descriptor is not the writer's. */
	CHECK(stage_create(s, STAGE_FILES, "q.jsonl", &st) == 0);
	op_start(&op, 5);
	CHECK(stage_submit(&sb, &op, st, 7, &f) == 0 && !f);
	CHECK(stage_write(st, LINE("a"), strlen(LINE("a")), 0, 7) > 0);
	CHECK(stage_submit(&sb, &op, st, 8, &f) == 0 && !f);
	CHECK(stage_stat(s, STAGE_FILES, "q.jsonl", &size, &mtime) == 0);
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 0);

	/* The writer's close: checked, uploaded once, unstaged; the
	 * operation's deadline moved to the upload's bound. */
	op.deadline = 0;
	CHECK(stage_submit(&sb, &op, st, 7, &f) == 1 && f &&
	      strcmp(f->id, "file-up") == 0);
	CHECK(op.deadline > util_now() + o.timeout - 1);
	file_unref(f);
	CHECK(http_stub_seen(&stub, 0, NULL, 0) == 1);
	CHECK(stage_stat(s, STAGE_FILES, "q.jsonl", &size, &mtime) == -ENOENT);
	CHECK(files_in(dir) == 0);
	CHECK(stage_write(st, "x", 1, 0, 7) == -EBADF);
	CHECK(stage_submit(&sb, &op, st, 7, &f) == 0);
	stage_release(st);

	/* A file that breaks the rules: refused, never sent, unstaged. */
	st = staged_with(s, "q.jsonl", "{\"custom_id\":\"a\"}\n");
	CHECK(stage_submit(&sb, &op, st, 7, &f) == -EINVAL && !f);
	CHECK(files_in(dir) == 0 && http_stub_seen(&stub, 0, NULL, 1) == 1);
	stage_release(st);

	/* A write refused past the API's limit poisons the file: what was
	 * written is never sent, a later good write notwithstanding. */
	st = staged_with(s, "q.jsonl", LINE("a"));
	CHECK(stage_write(st, "x", 1, (off_t)JSONL_MAX_BYTES, 7) == -EFBIG);
	CHECK(stage_write(st, LINE("b"), strlen(LINE("b")), 0, 7) > 0);
	CHECK(stage_submit(&sb, &op, st, 7, &f) == -EFBIG && !f);
	CHECK(files_in(dir) == 0 && http_stub_seen(&stub, 0, NULL, 1) == 1);
	stage_release(st);

	/* So does a write the disk refuses (here: past the file size
	 * limit), and a resize that fails. */
	st = staged_with(s, "q.jsonl", LINE("a"));
	getrlimit(RLIMIT_FSIZE, &lim);
	small = (struct rlimit){4096, lim.rlim_max};
	signal(SIGXFSZ, SIG_IGN);
	CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
	CHECK(stage_write(st, "x", 1, 8192, 7) == -EFBIG);
	CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	CHECK(stage_write(st, "x", 1, 8192, 7) == 1);
	CHECK(stage_submit(&sb, &op, st, 7, &f) == -EFBIG && !f);
	CHECK(files_in(dir) == 0 && http_stub_seen(&stub, 0, NULL, 1) == 1);
	stage_release(st);
	st = staged_with(s, "q.jsonl", LINE("a"));
	CHECK(stage_resize(st, JSONL_MAX_BYTES + 1) == -EFBIG);
	CHECK(stage_resize(st, 3) == 0);
	CHECK(stage_submit(&sb, &op, st, 7, &f) == -EFBIG && !f);
	CHECK(files_in(dir) == 0 && http_stub_seen(&stub, 0, NULL, 1) == 1);
	stage_release(st);

	files_destroy(&files);
	batches_destroy(&batches);
	api_destroy(&api);
	http_stub_stop(&stub);
	curl_global_cleanup();
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-stage-XXXXXX";
	struct stage s;
	struct staged *a, *b, *again;
	struct names l = {0};
	char buf[16], last[BATCH_ID_MAX + 1];
	uint64_t size;
	time_t mtime;
	int dirfd;

	if (!mkdtemp(dir))
		return 1;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	stage_init(&s, dir, dirfd);

	/* Names: *.jsonl only, and safe as a name. */
	CHECK(stage_upload_name("q.jsonl"));
	CHECK(!stage_upload_name(".jsonl") && !stage_upload_name("q.json"));
	CHECK(!stage_upload_name("q.jsonl.txt"));
	CHECK(stage_check_name("q.jsonl") == 0);
	CHECK(stage_check_name("q.txt") == -EINVAL);

	/* One writer per name and directory. */
	CHECK(stage_create(&s, STAGE_FILES, "a.jsonl", &a) == 0);
	CHECK(stage_create(&s, STAGE_FILES, "a.jsonl", &again) == -EBUSY);
	CHECK(stage_create(&s, STAGE_BATCHES, "a.jsonl", &b) == 0);
	CHECK(files_in(dir) == 2);
	CHECK(strcmp(stage_name(a), "a.jsonl") == 0);
	CHECK(stage_dir_of(b) == STAGE_BATCHES);

	/* Writes at any offset: the size is the furthest end. */
	CHECK(stage_write(a, "world", 5, 6, 0) == 5);
	CHECK(stage_write(a, "hello ", 6, 0, 0) == 6);
	CHECK(stage_stat(&s, STAGE_FILES, "a.jsonl", &size, &mtime) == 0 &&
	      size == 11);
	CHECK(stage_read(a, buf, sizeof(buf), 0) == 11 &&
	      memcmp(buf, "hello world", 11) == 0);
	CHECK(stage_resize(a, 5) == 0);
	CHECK(stage_stat(&s, STAGE_FILES, "a.jsonl", &size, &mtime) == 0 &&
	      size == 5);
	CHECK(stage_stat(&s, STAGE_FILES, "b.jsonl", &size, &mtime) == -ENOENT);

	/* Past the API's limit a write or resize is EFBIG at once, and the
	 * size is unchanged. */
	CHECK(stage_write(a, "x", 1, (off_t)JSONL_MAX_BYTES, 0) == -EFBIG);
	CHECK(stage_write(a, "x", 1, (off_t)100 << 30, 0) == -EFBIG);
	CHECK(stage_resize(a, JSONL_MAX_BYTES + 1) == -EFBIG);
	CHECK(stage_stat(&s, STAGE_FILES, "a.jsonl", &size, &mtime) == 0 &&
	      size == 5);
	CHECK(stage_write(a, "x", 1, (off_t)JSONL_MAX_BYTES - 1, 0) == 1);
	CHECK(stage_resize(a, 5) == 0);

	/* Each directory lists its own. */
	CHECK(stage_each(&s, STAGE_FILES, add_name, &l) == 0 && l.n == 1 &&
	      strcmp(l.name[0], "a.jsonl") == 0);

	/* Release unstages a file never uploaded: off the table and the
	 * disk; its name may be staged again. */
	stage_release(a);
	CHECK(stage_stat(&s, STAGE_FILES, "a.jsonl", &size, &mtime) == -ENOENT);
	CHECK(files_in(dir) == 1);
	CHECK(stage_create(&s, STAGE_FILES, "a.jsonl", &a) == 0);
	stage_release(a);
	stage_release(b);
	CHECK(files_in(dir) == 0);

	/* The batch made last. */
	stage_get_last(&s, last);
	CHECK(last[0] == '\0');
	stage_set_last(&s, "batch_abc");
	stage_get_last(&s, last);
	CHECK(strcmp(last, "batch_abc") == 0);

	flushes(&s, dir);

	stage_destroy(&s);
	close(dirfd);
	rmdir(dir);
	return check_done("stage");
}
