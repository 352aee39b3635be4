/*
 * fuzz_jsonl.c - libFuzzer target: any batch input file, fed in chunks
 * whose size the first byte picks. The check ends, says yes with an empty
 * report or no with a report of printable lines, and answers the same
 * whatever the chunking.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const char *s, size_t size, size_t step, char **report)
{
	struct jsonl_check c;
	int r;

	jsonl_check_init(&c, "in.jsonl");
	for (size_t i = 0; i < size; i += step)
		jsonl_check_feed(&c, s + i, size - i < step ? size - i : step);
	r = jsonl_check_end(&c);
	*report = strdup(jsonl_check_report(&c));
	jsonl_check_free(&c);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t step;
	char *a, *b;
	int ra, rb;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	ra = run(s + 1, size - 1, size, &a);
	rb = run(s + 1, size - 1, step, &b);
	if (!a || !b || ra != rb || strcmp(a, b) != 0)
		abort();
	if ((ra == 0) != (a[0] == '\0') || (ra != 0 && ra != -EINVAL))
		abort();
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			abort();
	free(a);
	free(b);
	return 0;
}
