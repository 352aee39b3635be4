/*
 * api.c - the API client as the rest of kimifs sees it: its set-up and
 * tear-down over the HTTP client, the start of an operation, and which
 * failures are passing ones. The endpoints are in api_*.c.
 */
#include "api.h"

#include <errno.h>

int api_init(struct api *api, const struct opts *o, const char *api_key)
{
	return http_init(&api->http, o, api_key);
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
