/*
 * test_job_keep.c - kept inputs of jobs over a real cache directory: a
 * staged file kept by a link (its bytes, no copy), found again by a new
 * job_keep over the same directory (a mount started again), replaced,
 * dropped (the subdirectory goes with the last; one kept by another mount
 * too), and none for a name never kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "job_keep.h"

/* Write text into a new file dir/name; its path into path. */
static void make_file(const char *dir, const char *name, const char *text,
		      char *path, size_t size)
{
	int fd;

	snprintf(path, size, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

/* Whether the kept input of name holds text. */
static int kept_is(struct job_keep *k, const char *name, const char *text)
{
	char buf[64] = "";
	uint64_t size = 0;
	int fd, ok;

	if (job_keep_open(k, name, &fd, &size) < 0)
		return 0;
	ok = size == strlen(text) &&
	     pread(fd, buf, sizeof(buf) - 1, 0) == (ssize_t)size &&
	     strcmp(buf, text) == 0;
	close(fd);
	return ok;
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-keep-XXXXXX", staged[300], sub[300];
	struct job_keep k, again;
	struct stat st, kst;
	uint64_t size;
	int dirfd, fd;

	if (!mkdtemp(dir))
		return 1;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	snprintf(sub, sizeof(sub), "%s/" JOB_KEEP_DIR, dir);

	CHECK(job_keep_init(&k, dir, dirfd) == 0);
	CHECK(!job_keep_has(&k, "q"));
	CHECK(job_keep_open(&k, "q", &fd, &size) == -ENOENT && fd == -1);
	CHECK(job_keep_drop(&k, "q") == 0);

	/* Kept by a link: the same file, whatever happens to the staged
	 * name (unstaged: unlinked). */
	make_file(dir, ".tmp-stage-1-1", "a\nb\n", staged, sizeof(staged));
	CHECK(job_keep_put(&k, "q", staged) == 0);
	CHECK(job_keep_has(&k, "q") && kept_is(&k, "q", "a\nb\n"));
	CHECK(stat(staged, &st) == 0 && st.st_nlink == 2);
	CHECK(stat(sub, &kst) == 0 && S_ISDIR(kst.st_mode) &&
	      (kst.st_mode & 0777) == 0700);
	unlink(staged);
	CHECK(kept_is(&k, "q", "a\nb\n"));

	/* Another input of the same job replaces it. */
	make_file(dir, ".tmp-stage-1-2", "c\n", staged, sizeof(staged));
	CHECK(job_keep_put(&k, "q", staged) == 0 && kept_is(&k, "q", "c\n"));
	unlink(staged);
	make_file(dir, ".tmp-stage-1-3", "r\n", staged, sizeof(staged));
	CHECK(job_keep_put(&k, "r", staged) == 0);
	unlink(staged);

	/* A mount started again over the same directory finds both. */
	CHECK(job_keep_init(&again, dir, dirfd) == 0);
	CHECK(job_keep_has(&again, "q") && job_keep_has(&again, "r") &&
	      !job_keep_has(&again, "s"));
	CHECK(kept_is(&again, "q", "c\n"));

	/* Dropped: gone from the disk; the directory goes with the last. */
	CHECK(job_keep_drop(&again, "q") == 1 && !job_keep_has(&again, "q"));
	CHECK(job_keep_open(&again, "q", &fd, &size) == -ENOENT);
	CHECK(job_keep_drop(&again, "q") == 0);
	CHECK(stat(sub, &kst) == 0);
	CHECK(job_keep_drop(&again, "r") == 1);
	CHECK(stat(sub, &kst) < 0 && errno == ENOENT);
	/* Kept by another mount of the directory: dropped from the disk. */
	make_file(dir, ".tmp-stage-1-4", "u\n", staged, sizeof(staged));
	CHECK(job_keep_put(&k, "u", staged) == 0);
	unlink(staged);
	CHECK(!job_keep_has(&again, "u") && job_keep_drop(&again, "u") == 1);
	CHECK(stat(sub, &kst) < 0 && errno == ENOENT);
	/* A put that fails (no such staged file) keeps nothing. */
	CHECK(job_keep_put(&again, "t", "/nonexistent/x") == -ENOENT);
	CHECK(!job_keep_has(&again, "t"));

	job_keep_destroy(&again);
	job_keep_destroy(&k);
	rmdir(sub);
	close(dirfd);
	CHECK(rmdir(dir) == 0); /* nothing left behind */
	return check_done("job_keep");
}
