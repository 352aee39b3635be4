/*
 * retry_input.c - the lines of a batch's input without a success
 * (retry_input.h): its results index says which custom_ids succeeded,
 * retry_lines copies the others.
 */
#include "retry_input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "content.h"
#include "json.h"
#include "results_cache.h"
#include "retry.h"

/* Whether the result line of request custom_id in set is a success: in the
 * output file, for this very id, with a 2xx status code. */
static int succeeded(void *ctx, const char *custom_id)
{
	const struct results_set *set = ctx;
	char name[RESULTS_NAME_MAX + 1];
	const struct result *e;
	const cJSON *id, *resp, *code;
	char *line = NULL;
	size_t len, nuls;
	cJSON *obj;
	int shortened, ok = 0;

	if (!set)
		return 0;
	len = results_escape(custom_id, strlen(custom_id), 0, name, &shortened);
	e = results_find(set->ix, name, len);
	if (!e || e->src != RESULTS_OUTPUT || results_line(set, e, &line) < 0)
		return 0;
	obj = json_parse(line, e->len, &nuls);
	id = cJSON_GetObjectItemCaseSensitive(obj, "custom_id");
	resp = cJSON_GetObjectItemCaseSensitive(obj, "response");
	code = cJSON_GetObjectItemCaseSensitive(resp, "status_code");
	if (cJSON_IsString(id) && strcmp(id->valuestring, custom_id) == 0 &&
	    cJSON_IsNumber(code) && code->valuedouble >= 200 &&
	    code->valuedouble < 300)
		ok = 1;
	cJSON_Delete(obj);
	free(line);
	return ok;
}

long retry_input(struct cache *cache, struct results_cache *results,
		 struct op *op, const struct batch *b, int out_fd, char *why,
		 size_t whylen)
{
	char input[BATCH_ID_MAX + 1];
	struct results_set *set = NULL;
	int in_fd = -1;
	long r;

	if (batch_file_id(b, "input_file_id", input, sizeof(input)) < 0) {
		snprintf(why, whylen, "the batch has no input file");
		return -ENOENT;
	}
	r = results_get(results, op, b, &set);
	if (r < 0) {
		snprintf(why, whylen, "cannot read the results: %s",
			 strerror((int)-r));
		goto out;
	}
	r = content_open(cache, op, input, &in_fd);
	if (r < 0) {
		snprintf(why, whylen, "cannot read the input file %s: %s",
			 input, strerror((int)-r));
		goto out;
	}
	r = retry_lines(in_fd, out_fd, succeeded, set);
	if (r < 0)
		snprintf(why, whylen, "cannot stage the retry input: %s",
			 strerror((int)-r));
out:
	if (in_fd >= 0)
		close(in_fd);
	results_release(results, set);
	return r;
}
