/*
 * test_content.c - unit tests of the complete content of a file
 * (content.c) over a real disk cache whose downloads are a stub: an id
 * that cannot be a file's is no file (no download), a content comes whole
 * as a read-only descriptor and is downloaded once, a failure or a file
 * gone is said and nothing kept, a wait ends with its operation
 * (interrupted, out of time), a content cut short on disk is downloaded
 * again; and the temporary files of the cache directory (cache_tmp_open):
 * new names of their kind, made by this process, never an existing name,
 * mode 0600, read-write, close-on-exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "cache_dir.h"
#include "check.h"
#include "fake_download.h"
#include "content.h"
#include "util.h"

#define TEXT "the whole content\n"

/* The stub: TEXT for every id but "file-gone" (-ENOENT), or the failure
 * the test set (fake_download_fail). */
static int stub(void *ctx, struct op *op, const char *id, int fd,
		void (*on_sink)(void *, size_t), void *arg, size_t *len,
		struct api_error *err)
{
	int r = fake_download_call();

	(void)ctx, (void)op;
	if (!r && strcmp(id, "file-gone") == 0)
		r = -ENOENT;
	if (r) {
		snprintf(err->message, sizeof(err->message), "stub failure");
		return r;
	}
	if (write(fd, TEXT, strlen(TEXT)) != (ssize_t)strlen(TEXT))
		return -EIO;
	on_sink(arg, strlen(TEXT));
	*len = strlen(TEXT);
	return 0;
}

/* Whether fd reads TEXT whole, and only reads. */
static int whole(int fd)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	return fd >= 0 && n == (ssize_t)strlen(TEXT) &&
	       memcmp(buf, TEXT, (size_t)n) == 0 &&
	       (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY;
}

static void contents(const char *dir)
{
	struct cache c;
	struct op op;
	char why[256], path[600];
	uint64_t size;
	int fd;

	CHECK(cache_init(&c, dir, 1 << 20, stub, NULL, why, sizeof(why)) == 0);
	op_start(&op, 5);

	/* No file has such an id: nothing asked. */
	CHECK(content_open(&c, &op, "../file-a", &fd) == -ENOENT && fd == -1);
	CHECK(content_open(&c, &op, "", &fd) == -ENOENT && fd == -1);
	CHECK(fake_download_count() == 0);

	/* Whole, read-only, downloaded once. */
	CHECK(content_open(&c, &op, "file-a", &fd) == 0 && whole(fd));
	close(fd);
	fake_download_settle(&c);
	CHECK(content_open(&c, &op, "file-a", &fd) == 0 && whole(fd));
	close(fd);
	CHECK(fake_download_count() == 1);
	CHECK(cache_size_of(&c, "file-a", &size) && size == strlen(TEXT));

	/* A failure is said, and nothing kept: the next open downloads. */
	fake_download_fail(-EIO, 1);
	CHECK(content_open(&c, &op, "file-b", &fd) == -EIO && fd == -1);
	fake_download_settle(&c);
	CHECK(!cache_size_of(&c, "file-b", &size));
	CHECK(content_open(&c, &op, "file-b", &fd) == 0 && whole(fd));
	close(fd);
	CHECK(fake_download_count() == 3);
	CHECK(content_open(&c, &op, "file-gone", &fd) == -ENOENT && fd == -1);
	fake_download_settle(&c);

	/* A wait ends with its operation; the download goes on for the
	 * next reader. */
	fake_download_hold(1);
	op.interrupted = 1;
	CHECK(content_open(&c, &op, "file-c", &fd) == -EINTR && fd == -1);
	op_start(&op, 5);
	op.deadline = util_now() - 1;
	CHECK(content_open(&c, &op, "file-c", &fd) == -ETIMEDOUT && fd == -1);
	fake_download_hold(0);
	op_start(&op, 5);
	CHECK(content_open(&c, &op, "file-c", &fd) == 0 && whole(fd));
	close(fd);
	fake_download_settle(&c);
	CHECK(fake_download_count() == 5);

	/* Cut short on disk behind the cache's back: the size is not the
	 * one known, so it is downloaded again, whole. */
	snprintf(path, sizeof(path), "%s/file-a", dir);
	CHECK(truncate(path, 4) == 0);
	CHECK(content_open(&c, &op, "file-a", &fd) == 0 && whole(fd));
	close(fd);
	fake_download_settle(&c);
	CHECK(fake_download_count() == 6);
	cache_destroy(&c);
}

static void tmp_files(const char *dir)
{
	static const struct {
		enum cache_tmp kind;
		const char *id;
		const char *prefix;
	} kinds[] = {
	    {CACHE_TMP_STAGE, NULL, ".tmp-stage-"},
	    {CACHE_TMP_RETRY, "batch_r", ".tmp-retry_batch_r-"},
	    {CACHE_TMP_TAG, NULL, ".tmp-"},
	    {CACHE_TMP_SCRATCH, NULL, ".tmp-scratch-"},
	    {CACHE_TMP_DOWNLOAD, "file-d", ".tmp-file-d-"},
	};
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	char name[CACHE_TMP_NAME_MAX], first[CACHE_TMP_NAME_MAX];
	struct stat st;
	long pid;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int fd = cache_tmp_open(dirfd, kinds[i].kind, kinds[i].id,
					first, sizeof(first));
		int fd2 = cache_tmp_open(dirfd, kinds[i].kind, kinds[i].id,
					 name, sizeof(name));

		/* Of its kind, this process's, swept once it is gone. */
		CHECK(fd >= 0 && fd2 >= 0 && strcmp(first, name) != 0);
		CHECK(strncmp(name, kinds[i].prefix, strlen(kinds[i].prefix)) ==
		      0);
		CHECK(cache_tmp_kind(name, &pid) && pid == (long)getpid());
		CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600 &&
		      S_ISREG(st.st_mode));
		CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
		CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		close(fd);
		close(fd2);
		unlinkat(dirfd, first, 0);
		unlinkat(dirfd, name, 0);
	}
	/* No room for the name: nothing made. */
	CHECK(cache_tmp_open(dirfd, CACHE_TMP_DOWNLOAD, "file-d", name, 8) ==
	      -ENAMETOOLONG);
	close(dirfd);
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-content-XXXXXX", cmd[100];

	if (!mkdtemp(dir))
		return 1;
	contents(dir);
	tmp_files(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return check_done("content");
}
