/*
 * retry.c - building the input of a retry batch (retry.h): the input file
 * read line by line, each request's custom_id looked up among the
 * successful results, the others copied as they were written.
 */
#include "retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

/* Write all of buf to fd; 0 or the write's -errno (-ENOSPC on a full
 * disk; -EIO when it writes nothing without one). */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether line (len bytes, no newline) is a request whose custom_id
 * succeeded(): 1 yes, 0 no (copy it), -1 not a request (leave it out). */
static int line_done(const char *line, size_t len, retry_succeeded_fn succeeded,
		     void *ctx)
{
	size_t nuls;
	cJSON *req = json_parse(line, len, &nuls);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "custom_id");
	int r = -1;

	if (cJSON_IsObject(req) && cJSON_IsString(id))
		r = succeeded(ctx, id->valuestring) ? 1 : 0;
	cJSON_Delete(req);
	return r;
}

long retry_lines(int in_fd, int out_fd, retry_succeeded_fn succeeded, void *ctx)
{
	int fd = dup(in_fd);
	FILE *in;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long copied = 0;

	if (fd < 0)
		return -errno;
	in = fdopen(fd, "r");
	if (!in) {
		close(fd);
		return -ENOMEM;
	}
	if (fseeko(in, 0, SEEK_SET) < 0) {
		copied = -EIO;
		goto out;
	}
	while ((len = getline(&line, &cap, in)) > 0) {
		size_t n = (size_t)len;
		int w;

		if (line[n - 1] == '\n')
			n--;
		if (line_done(line, n, succeeded, ctx) != 0)
			continue;
		w = write_all(out_fd, line, n);
		if (w == 0)
			w = write_all(out_fd, "\n", 1);
		if (w < 0) {
			copied = w;
			goto out;
		}
		copied++;
	}
	if (ferror(in))
		copied = -EIO;
out:
	free(line);
	fclose(in);
	return copied;
}

int retry_name(const char *name, char *out, size_t size)
{
	size_t len = strlen(name), stem = len;
	unsigned long n = 0;
	int w;

	if (len > 6 && strcmp(name + len - 6, ".jsonl") == 0)
		stem = len - 6;
	/* A retry of a retry counts on: "q.retry-3" -> "q.retry-4". */
	for (size_t i = stem; i > 0; i--) {
		if (name[i - 1] >= '0' && name[i - 1] <= '9')
			continue;
		if (i < stem && i >= 7 &&
		    strncmp(name + i - 7, ".retry-", 7) == 0 &&
		    name[i] != '0') {
			n = strtoul(name + i, NULL, 10);
			stem = i - 7;
		}
		break;
	}
	w = snprintf(out, size, "%.*s.retry-%lu.jsonl", (int)stem, name, n + 1);
	return w < 0 || (size_t)w >= size ? -ENAMETOOLONG : 0;
}
