/*
 * fuzz_params.c - libFuzzer target: any write to batches/new. Accepted
 * parameters always meet the documented limits and make a JSON body;
 * refusals always say why, on one printable line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct batch_params p;
	char why[256];
	int r =
	    params_parse((const char *)data, size, "24h", &p, why, sizeof(why));
	cJSON *o;

	if (r == -EINVAL) {
		if (!why[0] || p.input_file_id)
			abort();
		for (const char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20)
				abort();
		return 0;
	}
	if (r != 0)
		abort();
	if (!batch_id_valid(p.input_file_id) ||
	    params_window_hours(p.completion_window) < 0 ||
	    strncmp(p.endpoint, "/v1/", 4) != 0 || p.nmeta > PARAMS_META_MAX)
		abort();
	o = params_json(&p);
	if (!o)
		abort();
	cJSON_Delete(o);
	params_free(&p);
	return 0;
}
