/*
 * api_error.h - how a call to the API failed, as the layers above it see
 * it: a class (what they act on), a message for the user (the server's own
 * when it sent one) and the attempts sent, with the one text of a failure
 * that logs and ctl outcome lines print. Filled by the HTTP client and the
 * endpoints (http.c, api_*.c); it depends on nothing.
 */
#ifndef KIMIFS_API_ERROR_H
#define KIMIFS_API_ERROR_H

#include <stddef.h>

/*
 * The class of a failure: what the layers above the API act on (a passing
 * failure, a server that is down, a refusal), so that none of them reads
 * an HTTP status.
 */
enum api_fail {
	API_FAIL_NONE,	      /* no failure, or one not classified */
	API_FAIL_REFUSED,     /* 400, 409, 422: the request is refused */
	API_FAIL_DENIED,      /* 401, 403: the key is refused */
	API_FAIL_NOT_FOUND,   /* 404 */
	API_FAIL_THROTTLED,   /* 429 */
	API_FAIL_TIMED_OUT,   /* 408, or no answer in time */
	API_FAIL_SERVER_DOWN, /* a 5xx answer */
	API_FAIL_UNREACHABLE, /* no connection */
	API_FAIL_NETWORK,     /* the transfer broke off */
	API_FAIL_BAD_ANSWER,  /* not what the API sends: malformed, too
				 large, of another status */
	API_FAIL_INTERRUPTED, /* the operation was interrupted, or kimifs is
				 stopping */
	API_FAIL_LOCAL,	      /* out of memory, the answer not written down */
};

/*
 * What went wrong with a call, filled by the API layer: its class, a
 * message for the user (the server's own when it sent one) and the
 * attempts sent. The HTTP status is read only by http.c and api*.c: the
 * layers above print a failure with api_error_text and act on its class.
 */
struct api_error {
	enum api_fail fail;
	int http_status; /* 0 if no answer came */
	/* Attempts sent: more than 1 when the answer came to a retry, so an
	 * earlier attempt whose answer was lost may have had its effect. */
	unsigned attempts;
	char message[512];
};

/* Whether an -errno from this client is a passing failure (worth serving a
 * cached copy for): timeouts, 429, 5xx, malformed answers, no connection. */
int api_error_transient(int err);

/*
 * Whether a failure says that the server is not answering at all (no
 * answer in time, no connection, a 5xx), rather than something about one
 * object.
 */
int api_error_down(const struct api_error *err);

/* Whether the server answered the failed call (with an error status). */
int api_error_answered(const struct api_error *err);

/* The message of a failed call r: err's, else the errno's text. */
const char *api_error_message(const struct api_error *err, int r);

/*
 * The reason for a failed call r, as logs and ctl outcome lines give it:
 * "<status> <server message>" when the server answered, else the client's
 * message, else the errno's text; in buf (len bytes, always terminated).
 */
void api_error_text(const struct api_error *err, int r, char *buf, size_t len);

#endif
