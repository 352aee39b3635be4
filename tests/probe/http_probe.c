/*
 * http_probe.c - a small command over kimifs's HTTP layer (http.h), so that
 * tests/test_http.py can try each kind of request against the simulator:
 *
 *   http_probe URL get PATH               the answer on stdout
 *   http_probe URL post-json PATH JSON    POST with a JSON body
 *   http_probe URL upload PATH FILE NAME  POST a multipart form: purpose=batch
 *                                         and FILE as the field "file"
 *   http_probe URL upload-range PATH FILE NAME OFFSET LENGTH
 *                                         the same with LENGTH bytes of FILE
 *                                         from OFFSET as the field "file"
 *   http_probe URL download PATH OUT      GET, the answer written to OUT
 *   http_probe URL delete PATH            DELETE
 *
 * The key comes from MOONSHOT_API_KEY. On failure it prints the errno's
 * name and the message on stderr and exits with the errno.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

int main(int argc, char **argv)
{
	struct opts o = {.timeout = 10, .connect_timeout = 5, .retries = 3};
	struct http_part parts[2] = {{"purpose", "batch", NULL, NULL, NULL},
				     {"file", NULL, NULL, NULL, NULL}};
	struct http_request rq = {.sink_fd = -1, .retries = -1};
	struct http_range range;
	struct http_answer ans;
	struct api_error err;
	const char *key = getenv("MOONSHOT_API_KEY");
	struct http h;
	int r, fd = -1;

	if (argc < 4 || !key) {
		fprintf(stderr, "usage: see http_probe.c\n");
		return 2;
	}
	o.base_url = argv[1];
	rq.path = argv[3];
	if (strcmp(argv[2], "get") == 0) {
		rq.method = HTTP_GET;
	} else if (strcmp(argv[2], "post-json") == 0 && argc == 5) {
		rq.method = HTTP_POST;
		rq.json = argv[4];
	} else if (strcmp(argv[2], "upload") == 0 && argc == 6) {
		rq.method = HTTP_POST;
		parts[1].path = argv[4];
		parts[1].filename = argv[5];
		rq.parts = parts;
		rq.nparts = 2;
	} else if (strcmp(argv[2], "upload-range") == 0 && argc == 8) {
		fd = open(argv[4], O_RDONLY);
		if (fd < 0)
			return 2;
		range.fd = fd;
		range.offset = strtoull(argv[6], NULL, 10);
		range.length = strtoull(argv[7], NULL, 10);
		rq.method = HTTP_POST;
		parts[1].range = &range;
		parts[1].filename = argv[5];
		rq.parts = parts;
		rq.nparts = 2;
	} else if (strcmp(argv[2], "download") == 0 && argc == 5) {
		rq.method = HTTP_GET;
		fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return 2;
		rq.sink_fd = fd;
	} else if (strcmp(argv[2], "delete") == 0) {
		rq.method = HTTP_DELETE;
	} else {
		fprintf(stderr, "usage: see http_probe.c\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (http_init(&h, &o, key) < 0)
		return 2;
	r = http_call(&h, NULL, &rq, &ans, &err);
	if (r == 0) {
		if (ans.len)
			fwrite(ans.data, 1, ans.len, stdout);
		printf("%s%zu bytes sunk\n", ans.len ? "\n" : "", ans.sunk);
	} else {
		fprintf(stderr, "%s: %d %s\n", strerror(-r), err.http_status,
			err.message);
	}
	http_answer_free(&ans);
	http_destroy(&h);
	curl_global_cleanup();
	if (fd >= 0)
		close(fd);
	return r < 0 ? -r : 0;
}
