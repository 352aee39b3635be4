/*
 * fuzz_list.c - libFuzzer target: any bytes as the answer to
 * GET /v1/batches. Parsing must never crash or leak; on success every item
 * is a parsed batch.
 */
#include <stdint.h>
#include <stdlib.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_page page;
	struct api_error err;

	if (api_parse_list(&batch_kind, (const char *)data, size, &page,
			   &err) == 0) {
		for (size_t i = 0; i < page.nitems; i++) {
			const struct batch *b = page.items[i];

			if (!b || !b->id)
				abort();
		}
		api_page_free(&page);
	}
	return 0;
}
