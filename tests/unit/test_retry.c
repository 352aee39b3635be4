/*
 * test_retry.c - unit tests of the retry input: the lines without a
 * successful result, byte for byte; the retry file names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "retry.h"

/* Succeeded: ids starting with "ok". */
static int ok(void *ctx, const char *id)
{
	(*(int *)ctx)++;
	return strncmp(id, "ok", 2) == 0;
}

static int tmp(const char *content)
{
	char path[] = "/tmp/kimifs-test-retry-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (content && write(fd, content, strlen(content)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static char *slurp(int fd)
{
	static char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static int name_is(const char *in, const char *want)
{
	char out[64];

	return retry_name(in, out, sizeof(out)) == 0 && strcmp(out, want) == 0;
}

int main(void)
{
	int in = tmp("{\"custom_id\":\"ok-1\",\"body\":{}}\n"
		     "{\"custom_id\": \"bad-1\",  \"body\": {\"x\": 1}}\n"
		     "\n"
		     "not json\n"
		     "{\"custom_id\":7}\n"
		     "{\"custom_id\":\"ok-2\"}\n"
		     "{\"custom_id\":\"never-ran\"}");
	int out = tmp(NULL), none = tmp(NULL), calls = 0;

	CHECK(in >= 0 && out >= 0 && none >= 0);
	/* The input's position does not matter: it is read from its start. */
	CHECK(retry_lines(in, out, ok, &calls) == 2);
	CHECK(strcmp(slurp(out),
		     "{\"custom_id\": \"bad-1\",  \"body\": "
		     "{\"x\": 1}}\n{\"custom_id\":\"never-ran\"}\n") == 0);
	CHECK(calls == 4);
	CHECK(ftruncate(in, 0) == 0 &&
	      pwrite(in, "{\"custom_id\":\"ok\"}\n", 19, 0) == 19);
	CHECK(retry_lines(in, none, ok, &calls) == 0);
	CHECK(strcmp(slurp(none), "") == 0);
	CHECK(retry_lines(-1, none, ok, &calls) < 0);
	CHECK(retry_lines(in, -1, ok, &calls) == 0); /* nothing written */
	CHECK(pwrite(in, "{\"custom_id\":\"no\"}\n", 19, 0) == 19);
	CHECK(retry_lines(in, -1, ok, &calls) == -EBADF);
	{
		/* A full disk is told as such, not as an I/O error. */
		int full = open("/dev/full", O_WRONLY);

		CHECK(full >= 0);
		CHECK(retry_lines(in, full, ok, &calls) == -ENOSPC);
		close(full);
	}
	close(in);
	close(out);
	close(none);

	CHECK(name_is("q.jsonl", "q.retry-1.jsonl"));
	CHECK(name_is("q.retry-1.jsonl", "q.retry-2.jsonl"));
	CHECK(name_is("q.retry-9.jsonl", "q.retry-10.jsonl"));
	CHECK(name_is("q.retry-.jsonl", "q.retry-.retry-1.jsonl"));
	CHECK(name_is("q.retry-01.jsonl", "q.retry-01.retry-1.jsonl"));
	CHECK(name_is("data", "data.retry-1.jsonl"));
	CHECK(name_is("a.b.jsonl", "a.b.retry-1.jsonl"));
	{
		char small[8];

		CHECK(retry_name("q.jsonl", small, sizeof(small)) ==
		      -ENAMETOOLONG);
	}
	return check_done("retry");
}
