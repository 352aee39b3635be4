/*
 * fuzz_ctl.c - libFuzzer target: any write to a ctl file. A write is a
 * command only when, white space aside, it is exactly "cancel" or
 * "refresh" at offset 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kimifs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	enum ctl_cmd cmd = ctl_parse(s, size, 0);
	size_t a = 0, b = size;

	if (ctl_parse(s, size, 1) != CMD_NONE)
		abort(); /* never at an offset */
	if (cmd == CMD_NONE)
		return 0;
	while (a < b && is_space(s[a]))
		a++;
	while (b > a && is_space(s[b - 1]))
		b--;
	if (cmd == CMD_CANCEL && !(b - a == 6 && !memcmp(s + a, "cancel", 6)))
		abort();
	if (cmd == CMD_REFRESH && !(b - a == 7 && !memcmp(s + a, "refresh", 7)))
		abort();
	return 0;
}
