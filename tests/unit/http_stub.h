/*
 * http_stub.h - a tiny HTTP/1.1 server in the test's own process, for the
 * unit tests of the layers over the API: one thread on a loopback port,
 * one request per connection (Connection: close), each answered by the
 * test's function, every request line kept for the test to read back.
 * Enough for kimifs's client (libcurl): a Content-Length body, or a
 * chunked one, and Expect: 100-continue.
 */
#ifndef KIMIFS_HTTP_STUB_H
#define KIMIFS_HTTP_STUB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api.h"
#include "opts.h"

#define HTTP_STUB_LOG 64 /* request lines kept */

/*
 * What the test answers to a request (method "GET", target
 * "/v1/batches?limit=100", body of len bytes, NUL-terminated): the status,
 * with the body (malloc'd, or NULL for none) in *reply; 0 closes the
 * connection without an answer (the answer is lost).
 */
typedef int (*http_stub_fn)(void *ctx, const char *method, const char *target,
			    const char *body, size_t len, char **reply);

struct http_stub {
	int lfd;
	int port;
	char base_url[64]; /* http://127.0.0.1:<port> */
	pthread_t thread;
	http_stub_fn answer;
	void *ctx;
	pthread_mutex_t lock;	      /* guards the log and answer/ctx */
	char log[HTTP_STUB_LOG][160]; /* "GET /v1/batches?limit=100" */
	size_t nlog;		      /* requests seen (may pass the log) */
};

/* Read from fd into buf (a growing buffer) until it holds need bytes past
 * start, or the peer is done: 0, or -1. */
static inline int http_stub_fill(int fd, char **buf, size_t *len, size_t *cap,
				 size_t need)
{
	while (*len < need) {
		ssize_t n;

		if (*cap < need + 1) {
			char *b = realloc(*buf, need + 1);

			if (!b)
				return -1;
			*buf = b;
			*cap = need + 1;
		}
		n = read(fd, *buf + *len, need - *len);
		if (n <= 0)
			return -1;
		*len += (size_t)n;
	}
	return 0;
}

/* Read up to and including "\r\n\r\n"; the offset after it, or 0. */
static inline size_t http_stub_head(int fd, char **buf, size_t *len,
				    size_t *cap)
{
	for (;;) {
		char *end;

		(*buf)[*len] = '\0';
		end = strstr(*buf, "\r\n\r\n");
		if (end)
			return (size_t)(end - *buf) + 4;
		if (http_stub_fill(fd, buf, len, cap, *len + 1) < 0)
			return 0;
	}
}

/* The value of header name in head (after the colon and blanks), or
 * NULL. */
static inline const char *http_stub_header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return p + n + 1 + strspn(p + n + 1, " \t");
	}
	return NULL;
}

/* Whether header name of head is value (case aside). */
static inline int http_stub_is(const char *head, const char *name,
			       const char *value)
{
	const char *v = http_stub_header(head, name);

	return v && strncasecmp(v, value, strlen(value)) == 0;
}

/* Read a chunked body after head into body (malloc'd); 0 or -1. */
static inline int http_stub_chunked(int fd, char **buf, size_t *len,
				    size_t *cap, size_t at, char **body,
				    size_t *blen)
{
	*blen = 0;
	*body = malloc(1);
	for (;;) {
		char *eol, *b;
		size_t size;

		while (
		    ((*buf)[*len] = '\0', !(eol = strstr(*buf + at, "\r\n"))))
			if (http_stub_fill(fd, buf, len, cap, *len + 1) < 0)
				return -1;
		size = strtoul(*buf + at, NULL, 16);
		at = (size_t)(eol - *buf) + 2;
		if (http_stub_fill(fd, buf, len, cap, at + size + 2) < 0)
			return -1;
		if (!size)
			return 0; /* no trailers from libcurl */
		b = realloc(*body, *blen + size + 1);
		if (!b)
			return -1;
		*body = b;
		memcpy(*body + *blen, *buf + at, size);
		*blen += size;
		(*body)[*blen] = '\0';
		at += size + 2;
	}
}

/* One connection: its request read, answered, closed. */
static inline void http_stub_serve(struct http_stub *s, int fd)
{
	size_t len = 0, cap = 4096, at, blen = 0;
	char *buf = malloc(cap), *body = NULL, *reply = NULL;
	char method[16] = "", target[140] = "", out[256];
	http_stub_fn answer;
	void *ctx;
	long clen;
	int status, chunked;

	if (!buf || !(at = http_stub_head(fd, &buf, &len, &cap)))
		goto out;
	buf[at - 2] = '\0'; /* the head alone, for the headers' search */
	sscanf(buf, "%15s %139s", method, target);
	if (http_stub_is(buf, "Expect", "100-continue") &&
	    write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 25)
		goto out;
	clen = http_stub_header(buf, "Content-Length")
		   ? strtol(http_stub_header(buf, "Content-Length"), NULL, 10)
		   : -1;
	chunked = http_stub_is(buf, "Transfer-Encoding", "chunked");
	buf[at - 2] = '\r';
	if (chunked) {
		if (http_stub_chunked(fd, &buf, &len, &cap, at, &body, &blen) <
		    0)
			goto out;
	} else {
		if (clen < 0)
			clen = 0;
		if (http_stub_fill(fd, &buf, &len, &cap, at + (size_t)clen) < 0)
			goto out;
		blen = (size_t)clen;
		body = malloc(blen + 1);
		if (!body)
			goto out;
		memcpy(body, buf + at, blen);
		body[blen] = '\0';
	}
	pthread_mutex_lock(&s->lock);
	if (s->nlog < HTTP_STUB_LOG)
		snprintf(s->log[s->nlog], sizeof(s->log[0]), "%s %s", method,
			 target);
	s->nlog++;
	answer = s->answer;
	ctx = s->ctx;
	pthread_mutex_unlock(&s->lock);
	status = answer(ctx, method, target, body, blen, &reply);
	if (status > 0) {
		size_t rlen = reply ? strlen(reply) : 0;
		int n = snprintf(out, sizeof(out),
				 "HTTP/1.1 %d Stub\r\nContent-Type: "
				 "application/json\r\nContent-Length: %zu\r\n"
				 "Connection: close\r\n\r\n",
				 status, rlen);

		if (write(fd, out, (size_t)n) == n && rlen)
			if (write(fd, reply, rlen) < 0)
				goto out;
	}
out:
	free(reply);
	free(body);
	free(buf);
	close(fd);
}

static inline void *http_stub_main(void *arg)
{
	struct http_stub *s = arg;
	int fd;

	while ((fd = accept(s->lfd, NULL, NULL)) >= 0)
		http_stub_serve(s, fd);
	return NULL;
}

/* Start s on a free loopback port, answering with answer(ctx, ...); 0 or
 * -1. */
static inline int http_stub_start(struct http_stub *s, http_stub_fn answer,
				  void *ctx)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->answer = answer;
	s->ctx = ctx;
	pthread_mutex_init(&s->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->lfd, 16) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	s->port = ntohs(a.sin_port);
	snprintf(s->base_url, sizeof(s->base_url), "http://127.0.0.1:%d",
		 s->port);
	return pthread_create(&s->thread, NULL, http_stub_main, s) ? -1 : 0;
}

/* Answer from now on with answer(ctx, ...), and forget the requests
 * seen. */
static inline void http_stub_set(struct http_stub *s, http_stub_fn answer,
				 void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->answer = answer;
	s->ctx = ctx;
	s->nlog = 0;
	pthread_mutex_unlock(&s->lock);
}

/* Requests seen since the last http_stub_set; request i's line into
 * line (NULL: not wanted; "" past the log). */
static inline size_t http_stub_seen(struct http_stub *s, size_t i, char *line,
				    size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nlog;
	if (line)
		snprintf(line, len, "%s",
			 i < n && i < HTTP_STUB_LOG ? s->log[i] : "");
	pthread_mutex_unlock(&s->lock);
	return n;
}

/*
 * Whether the requests s got since the last http_stub_set are exactly the
 * n lines of want, in order (each one printed on stderr when not); s then
 * forgets them, for the next step. HTTP_STUB_REQUESTS(s, "GET /x", ...)
 * lists them in place.
 */
static inline int http_stub_requests(struct http_stub *s,
				     const char *const *want, size_t n)
{
	char line[160];
	size_t seen = http_stub_seen(s, 0, NULL, 0);
	int ok = seen == n;

	for (size_t i = 0; ok && i < n; i++) {
		http_stub_seen(s, i, line, sizeof(line));
		ok = strcmp(line, want[i]) == 0;
	}
	if (!ok)
		for (size_t i = 0; i < seen; i++) {
			http_stub_seen(s, i, line, sizeof(line));
			fprintf(stderr, "  request %zu: %s\n", i, line);
		}
	http_stub_set(s, s->answer, s->ctx);
	return ok;
}

#define HTTP_STUB_REQUESTS(s, ...)                                             \
	http_stub_requests((s), (const char *const[]){__VA_ARGS__},            \
			   sizeof((const char *const[]){__VA_ARGS__}) /        \
			       sizeof(const char *))

/* Stop s: its thread ends (a request under way is finished first). */
static inline void http_stub_stop(struct http_stub *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
}

/*
 * The API client of a unit test, over s started on answer(ctx, ...): o
 * set to the tests' options (-o timeout 5, connect_timeout 2, no retries,
 * page_size 100) with s as the base URL, api set up over it. 0, or -1
 * when the stub cannot start or the client cannot be made.
 */
static inline int http_stub_api(struct http_stub *s, http_stub_fn answer,
				void *ctx, struct opts *o, struct api *api)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (http_stub_start(s, answer, ctx) < 0)
		return -1;
	*o = (struct opts){.timeout = 5,
			   .connect_timeout = 2,
			   .retries = 0,
			   .page_size = 100,
			   .cache_ttl = 60,
			   .base_url = s->base_url};
	return api_init(api, o, "sk-test", NULL) == 0 ? 0 : -1;
}

#endif
