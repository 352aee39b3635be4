/*
 * test_stage.c - unit tests of the table of staged files: one writer per
 * name and directory, sizes from writes at any offset and from resizes,
 * listings, unstaging on release (the file leaves the disk), the names an
 * upload may have, the size limit at write time, and the batch made last.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "jsonl_check.h"
#include "stage.h"

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

	stage_destroy(&s);
	close(dirfd);
	rmdir(dir);
	return check_done("stage");
}
