/*
 * api.c - the API client as the rest of kimifs sees it: its set-up and
 * tear-down over the HTTP client. The endpoints are in api_*.c, what a
 * failure means in api_error.c.
 */
#include "api.h"

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
