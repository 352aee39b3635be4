/*
 * fuzz_batch.c - libFuzzer target: any bytes as a BatchObject. Parsing must
 * never crash, leak or accept an object without its required fields, and
 * every rendered file must end with exactly one newline.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_file(const struct bfile *f)
{
	if (f->len == 0 || f->data[f->len - 1] != '\n' ||
	    strlen(f->data) > f->len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);
	struct batch *b;
	char err[256];

	if (!root)
		return 0;
	if (batch_from_json(root, &b, err, sizeof(err)) == 0) {
		if (!b->id || !b->status || !batch_value(b, "status") ||
		    !batch_value(b, "created_at"))
			abort();
		for (size_t i = 0; i < b->nvalues; i++)
			check_file(&b->values[i]);
		for (size_t i = 0; i < b->nmeta; i++) {
			check_file(&b->meta[i]);
			if (!batch_name_safe(b->meta[i].name))
				abort();
		}
		for (int i = 0; i < 3; i++)
			check_file(&b->counts[i]);
		check_file(&b->json);
		batch_unref(b);
	}
	cJSON_Delete(root);
	return 0;
}
