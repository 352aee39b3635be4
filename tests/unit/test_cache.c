/*
 * test_cache.c - unit tests of the disk cache (cache.c) with a stub
 * download: one download shared by concurrent readers, a wait for the
 * complete content that gives a read-only descriptor which outlives
 * eviction, least recently used eviction at the cap, a failed download
 * that leaves nothing and is tried again, contents kept across a new
 * cache on the same directory, temporary files of dead processes swept,
 * a content cut short on disk downloaded again; the directory: tagged
 * when made or empty (its mode kept), refused when it holds anything
 * else (left as it was), followed when a link; the names it makes.
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

/* The stub's answers: size bytes of 'a'+i%26, or the failure the test
 * set (fake_download_fail). */
static size_t size = 100000;

static int stub(void *ctx, struct op *op, const char *id, int fd,
		void (*on_sink)(void *, size_t), void *arg, size_t *len,
		struct api_error *err)
{
	char buf[1000];
	size_t done = 0;
	int r = fake_download_call();

	(void)ctx;
	(void)op;
	(void)id;
	if (r) {
		snprintf(err->message, sizeof(err->message), "stub failure");
		if (write(fd, "cut", 3) != 3)
			return -EIO;
		return r;
	}
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	while (done < size) {
		size_t n =
		    size - done < sizeof(buf) ? size - done : sizeof(buf);

		if (write(fd, buf, n) != (ssize_t)n)
			return -EIO;
		done += n;
		on_sink(arg, done);
	}
	*len = done;
	return 0;
}

static int exists(const char *dir, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static int entries(const char *dir)
{
	char cmd[600];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | wc -l", dir);
	f = popen(cmd, "r");
	if (f && fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	return n;
}

/* Whether buf holds the stub's n bytes at off. */
static int pattern_at(const char *buf, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != (char)('a' + ((off + i) % 1000) % 26))
			return 0;
	return 1;
}

/* Open id and wait for it whole: the descriptor, or -errno. */
static int whole(struct cache *c, const char *id)
{
	struct cache_reader *r;
	struct op op = {.deadline = 1e18};
	int fd = -1, e = cache_reader_open(c, id, -1, &r);

	if (e < 0)
		return e;
	e = cache_reader_wait(r, &op, &fd);
	cache_reader_close(r);
	return e < 0 ? e : fd;
}

/* Make dir/name, a file of n bytes of mode mode; 0 or -1. */
static int put(const char *dir, const char *name, size_t n, mode_t mode)
{
	char p[512];
	int fd, r = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)n) < 0 || fchmod(fd, mode) < 0)
		r = -1;
	close(fd);
	return r;
}

static mode_t mode_of(const char *dir, const char *name)
{
	char p[1100];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* The names kimifs makes and its tag. */
static void names(void)
{
	long pid = 0;

	CHECK(cache_tmp_kind(".tmp-file-abc-123-4", &pid) &&
	      strcmp(cache_tmp_kind(".tmp-file-abc-123-4", NULL),
		     "an unfinished download") == 0 &&
	      pid == 123);
	CHECK(cache_tmp_kind(".tmp-stage-77-0", &pid) &&
	      strcmp(cache_tmp_kind(".tmp-stage-77-0", NULL),
		     "a staged upload") == 0 &&
	      pid == 77);
	CHECK(cache_tmp_kind(".tmp-retry_batch_x-9-1", &pid) &&
	      strstr(cache_tmp_kind(".tmp-retry_batch_x-9-1", NULL), "retry") &&
	      pid == 9);
	CHECK(cache_tmp_kind(".tmp-tag-5-0", &pid) && pid == 5);
	CHECK(!cache_tmp_kind("notes.txt", NULL));
	CHECK(!cache_tmp_kind(".tmp-notes", NULL));
	CHECK(!cache_tmp_kind(".tmp-x-12", NULL));
	CHECK(!cache_tmp_kind(".tmp-x-12-3b", NULL));
	CHECK(!cache_tmp_kind(".tmp--12-3", NULL));
	CHECK(!cache_tmp_kind(".tmp-stage-12", NULL));
	CHECK(!cache_tmp_kind(".tmp-a b-12-3", NULL));
	CHECK(!cache_tmp_kind(".tmpfile-1-2", NULL));

	CHECK(cache_tag_ours(
	    "Signature: 8a477f597d28d172789f06886806bc55\n"
	    "# This file is a cache directory tag created by kimifs.\n"));
	CHECK(!cache_tag_ours(
	    "Signature: 8a477f597d28d172789f06886806bc55\n# other\n"));
	CHECK(!cache_tag_ours(
	    "Signature: 8a477f597d28d172789f06886806bc56\n"
	    "# This file is a cache directory tag created by kimifs.\n"));
	CHECK(!cache_tag_ours(""));
}

/* One of two mounts taking the same new directory at once. */
struct taker {
	const char *dir;
	int r, fd;
};

static void *take(void *arg)
{
	struct taker *t = arg;
	char why[256];

	t->r = cache_dir_open(t->dir, 0, &t->fd, why, sizeof(why));
	if (t->r < 0)
		fprintf(stderr, "%s\n", why);
	return NULL;
}

/* Which directories the cache takes, under the test's directory top. */
static void dir_rules(const char *top)
{
	char d[512], link[512], why[256], p[600];
	struct cache c;
	struct stat st;

	/* A folder of the user's: refused, every file and mode kept. */
	snprintf(d, sizeof(d), "%s/home", top);
	CHECK(mkdir(d, 0751) == 0 && chmod(d, 0751) == 0);
	CHECK(put(d, "notes.txt", 10, 0644) == 0);
	CHECK(put(d, "vm.img", 3000000, 0600) == 0);
	CHECK(put(d, ".tmp-x", 1, 0600) == 0);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) < 0);
	CHECK(strstr(why, "not a kimifs cache") &&
	      strstr(why, "name a new or empty folder"));
	CHECK(mode_of(d, ".") == 0751 && mode_of(d, "notes.txt") == 0644 &&
	      mode_of(d, "vm.img") == 0600 && mode_of(d, ".tmp-x") == 0600);
	CHECK(entries(d) == 3);

	/* Another program's cache: refused. */
	snprintf(d, sizeof(d), "%s/other", top);
	CHECK(mkdir(d, 0700) == 0);
	CHECK(put(d, "CACHEDIR.TAG", 44, 0644) == 0);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) < 0);
	CHECK(entries(d) == 1);

	/* An empty 0755 folder: tagged, its mode kept; then taken as it is
	 * with what it holds; through a link too. */
	snprintf(d, sizeof(d), "%s/empty", top);
	CHECK(mkdir(d, 0755) == 0 && chmod(d, 0755) == 0);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) == 0);
	cache_destroy(&c);
	CHECK(mode_of(d, ".") == 0755 && mode_of(d, "CACHEDIR.TAG") == 0600);
	snprintf(p, sizeof(p), "%s/CACHEDIR.TAG", d);
	CHECK(stat(p, &st) == 0 && st.st_size > 44);
	CHECK(put(d, "mine.txt", 10, 0644) == 0);
	CHECK(put(d, "f1", 20, 0600) == 0);
	snprintf(link, sizeof(link), "%s/link", top);
	CHECK(symlink(d, link) == 0);
	CHECK(cache_init(&c, link, 1048576, stub, NULL, why, sizeof(why)) == 0);
	CHECK(c.used == 20); /* a file no one else may read, only */
	cache_destroy(&c);
	CHECK(entries(d) == 3 && mode_of(d, ".") == 0755);

	/* Two mounts that take one empty directory at once both have it,
	 * tagged once. */
	for (int i = 0; i < 20; i++) {
		struct taker t[2];
		pthread_t th[2];

		snprintf(d, sizeof(d), "%s/race%d", top, i);
		CHECK(mkdir(d, 0700) == 0);
		for (int j = 0; j < 2; j++) {
			t[j] = (struct taker){.dir = d, .fd = -1};
			pthread_create(&th[j], NULL, take, &t[j]);
		}
		for (int j = 0; j < 2; j++) {
			pthread_join(th[j], NULL);
			CHECK(t[j].r == 0);
			if (t[j].fd >= 0)
				close(t[j].fd);
		}
		CHECK(entries(d) == 1 && mode_of(d, "CACHEDIR.TAG") == 0600);
	}

	/* The root of a new file system (its lost+found) is empty; a file
	 * of that name is not. */
	snprintf(d, sizeof(d), "%s/fs", top);
	snprintf(p, sizeof(p), "%s/fs/lost+found", top);
	CHECK(mkdir(d, 0755) == 0 && mkdir(p, 0700) == 0);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) == 0);
	cache_destroy(&c);
	CHECK(entries(d) == 2 && mode_of(p, ".") == 0700);
	snprintf(d, sizeof(d), "%s/fs2", top);
	CHECK(mkdir(d, 0755) == 0 && put(d, "lost+found", 1, 0600) == 0);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) < 0);

	/* A missing one is made 0700, parents too, and tagged. */
	snprintf(d, sizeof(d), "%s/new/sub", top);
	CHECK(cache_init(&c, d, 1048576, stub, NULL, why, sizeof(why)) == 0);
	cache_destroy(&c);
	CHECK(mode_of(d, ".") == 0700 && entries(d) == 1 &&
	      mode_of(d, "CACHEDIR.TAG") == 0600);
}

int main(void)
{
	char dir[] = "/tmp/kimifs-test-cache-XXXXXX", why[256], tmp[600];
	struct cache c;
	struct cache_reader *r1, *r2;
	struct op op = {.deadline = 1e18};
	char b1[10], b2[10];
	size_t n;
	uint64_t sz;
	int fd, rfd;
	struct stat st;

	if (!mkdtemp(dir))
		return 1;
	names();
	CHECK(cache_init(&c, dir, 250000, stub, NULL, why, sizeof(why)) == 0);
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);

	/* Two readers while the download is held: one download. */
	fake_download_hold(1);
	CHECK(cache_reader_open(&c, "f1", 100000, &r1) == 0);
	CHECK(cache_reader_open(&c, "f1", 100000, &r2) == 0);
	CHECK(!cache_reader_complete(r1));
	fake_download_hold(0);
	CHECK(cache_reader_read(r1, &op, 10, 99990, &rfd, &n) == 0 && n == 10);
	CHECK(pread(rfd, b1, 10, 99990) == 10 && pattern_at(b1, 99990, 10));
	CHECK(cache_reader_read(r2, &op, 10, 0, &rfd, &n) == 0 && n == 10);
	CHECK(pread(rfd, b2, 10, 0) == 10 && memcmp(b2, "abcdefghij", 10) == 0);
	CHECK(cache_reader_read(r2, &op, 10, 100000, &rfd, &n) == 0 && n == 0);
	CHECK(fake_download_count() == 1);
	cache_reader_close(r1);
	cache_reader_close(r2);
	fake_download_settle(&c);
	CHECK(cache_size_of(&c, "f1", &sz) && sz == 100000);
	CHECK(exists(dir, "f1") && entries(dir) == 2);

	/* On disk: no download, complete, exact. */
	CHECK(cache_reader_open(&c, "f1", -1, &r1) == 0);
	CHECK(cache_reader_complete(r1) && cache_reader_size(r1) == 100000);
	cache_reader_close(r1);
	CHECK(fake_download_count() == 1);

	/* A failed download leaves nothing; the next open tries again. */
	fake_download_fail(-EIO, 1);
	CHECK(whole(&c, "f2") == -EIO);
	CHECK(fake_download_count() == 2 && !exists(dir, "f2") &&
	      entries(dir) == 2);
	fd = whole(&c, "f2");
	CHECK(fd >= 0 && fake_download_count() == 3);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
	fake_download_settle(&c);

	/* f1 used again, then f3: past the cap, f2 (least recent) goes, and
	 * its open descriptor still reads it all. */
	close(whole(&c, "f1"));
	close(whole(&c, "f3"));
	fake_download_settle(&c);
	CHECK(exists(dir, "f1") && !exists(dir, "f2") && exists(dir, "f3"));
	memset(b1, 0, sizeof(b1));
	CHECK(fd >= 0 && pread(fd, b1, 10, 99990) == 10 &&
	      pattern_at(b1, 99990, 10));
	if (fd >= 0)
		close(fd);

	/* A temporary file of a dead process is swept; contents kept. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp-f9-999999999-0", dir);
	fd = open(tmp, O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	cache_destroy(&c);
	CHECK(cache_init(&c, dir, 250000, stub, NULL, why, sizeof(why)) == 0);
	CHECK(!exists(dir, ".tmp-f9-999999999-0"));
	/* Known whole only once opened against the FileObject's size. */
	CHECK(!cache_size_of(&c, "f1", &sz) && !cache_size_of(&c, "f3", &sz));
	n = (size_t)fake_download_count();
	close(whole(&c, "f3"));
	CHECK((size_t)fake_download_count() == n &&
	      !cache_size_of(&c, "f3", &sz));
	CHECK(cache_reader_open(&c, "f3", 100000, &r1) == 0);
	CHECK(cache_reader_complete(r1) && cache_size_of(&c, "f3", &sz) &&
	      sz == 100000);
	cache_reader_close(r1);
	CHECK((size_t)fake_download_count() == n);

	/* A content cut short on disk is downloaded again, also one cut
	 * short while the cache knew it. */
	cache_destroy(&c);
	snprintf(tmp, sizeof(tmp), "%s/f1", dir);
	CHECK(truncate(tmp, 5000) == 0);
	CHECK(cache_init(&c, dir, 250000, stub, NULL, why, sizeof(why)) == 0);
	CHECK(cache_reader_open(&c, "f1", 100000, &r1) == 0);
	CHECK(!cache_reader_complete(r1));
	CHECK(cache_reader_wait(r1, &op, &fd) == 0);
	cache_reader_close(r1);
	CHECK(fake_download_count() == (int)n + 1);
	if (fd >= 0)
		close(fd);
	fake_download_settle(&c);
	CHECK(truncate(tmp, 10) == 0);
	CHECK(cache_reader_open(&c, "f1", -1, &r1) == 0);
	CHECK(!cache_reader_complete(r1));
	cache_reader_close(r1);
	fake_download_settle(&c);
	CHECK(fake_download_count() == (int)n + 2);
	CHECK(stat(tmp, &st) == 0 && st.st_size == 100000);

	/* A file gone (deleted) leaves the disk, also when it was still
	 * coming. */
	cache_forget(&c, "f3");
	CHECK(!exists(dir, "f3"));
	fake_download_hold(1);
	CHECK(cache_reader_open(&c, "f4", -1, &r1) == 0);
	cache_forget(&c, "f4");
	fake_download_hold(0);
	CHECK(cache_reader_wait(r1, &op, &fd) == 0);
	cache_reader_close(r1);
	cache_destroy(&c); /* waits for the download's end */
	CHECK(!exists(dir, "f4") && entries(dir) == 2);
	CHECK(fd >= 0 && pread(fd, b1, 10, 0) == 10 && pattern_at(b1, 0, 10));
	if (fd >= 0)
		close(fd);
	CHECK(cache_init(&c, dir, 250000, stub, NULL, why, sizeof(why)) == 0);
	cache_destroy(&c);

	/* A cache_dir that cannot be made is refused with a reason. */
	snprintf(tmp, sizeof(tmp), "%s/f1/sub", dir);
	CHECK(cache_init(&c, tmp, 250000, stub, NULL, why, sizeof(why)) < 0);
	CHECK(strstr(why, "cannot make cache_dir") != NULL);

	dir_rules(dir);

	snprintf(tmp, sizeof(tmp), "rm -rf %s", dir);
	if (system(tmp) != 0)
		return 1;
	return check_done("cache");
}
