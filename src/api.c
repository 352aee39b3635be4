/*
 * api.c - the API client as the rest of kimifs sees it: its set-up and
 * tear-down over the HTTP client, which failures are passing ones or say
 * the server is down, and the one text of a failure. The endpoints are in
 * api_*.c.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int api_init(struct api *api, const struct opts *o, const char *api_key,
	     struct stats *stats)
{
	int r = http_init(&api->http, o, api_key);

	if (r == 0)
		api->http.stats = stats;
	return r;
}

void api_destroy(struct api *api)
{
	http_destroy(&api->http);
}

void api_stop(struct api *api)
{
	http_stop(&api->http);
}

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

void api_error_text(const struct api_error *err, int r, char *buf, size_t len)
{
	if (err->http_status)
		snprintf(buf, len, "%d %s", err->http_status, err->message);
	else
		snprintf(buf, len, "%s",
			 err->message[0] ? err->message : strerror(-r));
}
