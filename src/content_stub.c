/*
 * content_stub.c - a stand-in for content.h until the disk cache of file
 * contents exists: each call downloads the file (GET
 * /v1/files/{id}/content) into an unlinked temporary file and returns it.
 * No caching, no shared downloads. Replaced by the real cache at merge.
 */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content.h"
#include "kimifs.h"
#include "log.h"

/* An unlinked temporary file open for reading and writing, or -errno. */
static int temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/kimifs-content-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

int content_open(struct kimifs *k, struct api_op *op, const char *file_id,
		 int *fd)
{
	char path[1024];
	struct http_request rq = {
	    .method = HTTP_GET, .kind = STAT_CONTENT, .retries = -1};
	struct http_answer ans = {0};
	struct api_error err = {0};
	char *esc = curl_easy_escape(NULL, file_id, 0);
	int r;

	if (!esc)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/v1/files/%.900s/content", esc);
	curl_free(esc);
	rq.path = path;
	rq.sink_fd = temp_fd();
	if (rq.sink_fd < 0)
		return rq.sink_fd;
	r = http_call(&k->api.http, op, &rq, &ans, &err);
	http_answer_free(&ans);
	if (r == 0 && lseek(rq.sink_fd, 0, SEEK_SET) < 0)
		r = -errno;
	if (r < 0) {
		if (r != -ENOENT)
			log_err("file %s: %s", file_id,
				err.message[0] ? err.message : strerror(-r));
		close(rq.sink_fd);
		return r;
	}
	*fd = rq.sink_fd;
	return 0;
}
