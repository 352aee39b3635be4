/*
 * api_error.c - what a failure of an API call means (see api_error.h):
 * whether it is a passing one, whether it says the server is down, and its
 * text.
 */
#include "api_error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int api_error_transient(int err)
{
	return err == -ETIMEDOUT || err == -EAGAIN || err == -EIO ||
	       err == -EHOSTUNREACH;
}

int api_error_down(const struct api_error *err)
{
	return err->fail == API_FAIL_TIMED_OUT ||
	       err->fail == API_FAIL_UNREACHABLE ||
	       err->fail == API_FAIL_SERVER_DOWN;
}

int api_error_answered(const struct api_error *err)
{
	return err->http_status != 0;
}

const char *api_error_message(const struct api_error *err, int r)
{
	return err->message[0] ? err->message : strerror(-r);
}

void api_error_text(const struct api_error *err, int r, char *buf, size_t len)
{
	if (err->http_status)
		snprintf(buf, len, "%d %s", err->http_status, err->message);
	else
		snprintf(buf, len, "%s", api_error_message(err, r));
}
