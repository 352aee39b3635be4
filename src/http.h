/*
 * http.h - the HTTP client of kimifs, over libcurl: a request descriptor
 * (method, path, JSON or multipart body, answer to memory or to a file
 * descriptor, retries), a pool of easy handles (connections kept alive),
 * retries of passing failures with jittered exponential backoff that
 * honours Retry-After, every call bounded by its operation's deadline and
 * abortable, failures mapped to -errno and classified (api_error.h) with
 * the server's message kept. It knows no endpoint: the api_* modules
 * build the paths.
 */
#ifndef KIMIFS_HTTP_H
#define KIMIFS_HTTP_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_error.h"
#include "op.h"
#include "opts.h"
#include "stats.h"

struct curl_slist;

struct http {
	const struct opts *opts;    /* base_url, timeouts, retries, insecure */
	struct stats *stats;	    /* counted into, or NULL */
	struct curl_slist *headers; /* Authorization (never logged) */
	volatile sig_atomic_t stopping; /* set by http_stop: abort all calls */
	pthread_mutex_t lock;		/* guards the idle handle pool below */
	void **idle;			/* CURL easy handles ready for reuse */
	size_t nidle;
};

enum http_method { HTTP_GET, HTTP_POST, HTTP_DELETE };

/* Bytes of an open file: length bytes from offset, read with pread(2) as
 * they are sent (the descriptor's position is never moved, so one file may
 * feed several requests at once). */
struct http_range {
	int fd;
	uint64_t offset;
	uint64_t length;
};

/* One field of a multipart/form-data body: text, or a file's content. */
struct http_part {
	const char *name;
	const char *value;    /* a text field, or NULL */
	const char *path;     /* a file field: the file sent (streamed) */
	const char *filename; /* the file's name in the form */
	/* A file field from part of an open file instead of path (streamed;
	 * a file that ends before offset + length fails the request). */
	const struct http_range *range;
};

struct http_request {
	enum http_method method;
	enum stat_kind kind;	       /* what it is for, in MOUNT/stats */
	const char *path;	       /* "/v1/...", escaped, with any query */
	const char *json;	       /* a JSON body (POST), or NULL */
	const struct http_part *parts; /* a multipart body, or NULL */
	size_t nparts;
	int sink_fd; /* >= 0: a 2xx answer's body goes to this fd */
	/* With a sink_fd: called after each piece written, with the bytes
	 * of this attempt written so far (a retry starts again from 0). */
	void (*on_sink)(void *arg, size_t sunk);
	void *sink_arg;
	/* A long download: bounded by op's deadline only, not by -o timeout,
	 * and ended (ETIMEDOUT) when no byte comes for -o timeout seconds. */
	int stall_bound;
	/* The media types the answer may have (Accept): NULL for
	 * application/json, the type of every answer but a content's. */
	const char *accept;
	int retries;  /* -1: -o retries; else this many */
	int no_retry; /* never retried (e.g. a POST whose effect may stay) */
};

/* An answer: its body when kept in memory (at most HTTP_MAX_BODY bytes,
 * NUL-terminated), or how many bytes went to the request's sink_fd. */
struct http_answer {
	char *data;
	size_t len;
	size_t sunk;
	long status;
};

#define HTTP_MAX_BODY (16u << 20) /* larger answers in memory are refused */

/* Set up a client for the options o (kept by pointer: they must outlive
 * it) and the API key (copied into the request headers); 0 or -errno. */
int http_init(struct http *h, const struct opts *o, const char *api_key);
void http_destroy(struct http *h);

/*
 * Make every call under way end at once (-EINTR) and every later call fail
 * the same way. Async-signal-safe: meant for the signal handler that
 * unmounts, so that a hung request cannot hold the exit up.
 */
void http_stop(struct http *h);

/*
 * Send rq as part of op (NULL: on its own). Returns 0 with a 2xx answer in
 * *ans (free with http_answer_free), or -errno with err filled in and
 * classified (enum api_fail): 400, 409 and 422 EPERM, 401/403 EACCES, 404
 * ENOENT, 408 and time-outs ETIMEDOUT, 429 EAGAIN, 5xx, other statuses and
 * answers too large EIO, no connection EHOSTUNREACH, an interrupted or
 * stopped call EINTR. 429, 5xx and network failures are
 * tried again up to the retries; the whole call, retries and backoff
 * included, ends within the timeout or op's deadline, whichever is sooner.
 * When the deadline ends the retries, the error of the last answer stays:
 * a retry cut short by the deadline reports the answer before it (EAGAIN
 * for 429s until the bound), and ETIMEDOUT comes only when no attempt got
 * an answer in time. With a sink_fd, a
 * retried download starts over at the fd's position of the first attempt.
 */
int http_call(struct http *h, const struct op *op,
	      const struct http_request *rq, struct http_answer *ans,
	      struct api_error *err);

void http_answer_free(struct http_answer *ans);

/*
 * Fill err for a failure of the client's own, found out of a transfer:
 * r is -ENOMEM (API_FAIL_LOCAL) or -EIO for an answer that is not what the
 * API sends (API_FAIL_BAD_ANSWER); the message is made from fmt. Returns
 * r.
 */
int http_error(struct api_error *err, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The JSON of a 2xx answer (json_parse: strings holding a NUL marked, and
 * logged once), or NULL with err filled in (API_FAIL_BAD_ANSWER) when it is not
 * JSON or is an error object. Free with cJSON_Delete.
 */
cJSON *http_json(const struct http_answer *ans, struct api_error *err);

#endif
