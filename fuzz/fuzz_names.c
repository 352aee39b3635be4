/*
 * fuzz_names.c - libFuzzer target: any string as a batch id or a file
 * name. An accepted id is 1 to 128 bytes of [A-Za-z0-9._-] not starting
 * with '.', so it is safe in a URL path and as a directory name; an
 * accepted name has no '/', no control character and is not "." or "..".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t n;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	n = strlen(s);
	if (batch_id_valid(s)) {
		if (n == 0 || n > BATCH_ID_MAX || s[0] == '.' ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
			      "UVWXYZ0123456789._-") != n ||
		    !batch_name_safe(s))
			abort();
	}
	if (batch_name_safe(s)) {
		if (n == 0 || n > 255 || strchr(s, '/') || !strcmp(s, ".") ||
		    !strcmp(s, ".."))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				abort();
	}
	free(s);
	return 0;
}
