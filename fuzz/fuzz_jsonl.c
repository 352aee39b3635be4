/*
 * fuzz_jsonl.c - libFuzzer target: any batch input file, fed in chunks
 * whose size the first byte picks. The check ends, says yes with an empty
 * report or no with a report of printable lines, and answers the same
 * whatever the chunking and whether or not it was told the size and a
 * reader of earlier lines (the table of ids then made once, repeats read
 * back). A file it says yes to holds no control byte but tab, LF and CR
 * (NULs of holes, \x01: JSON has no such white space, and strings must
 * escape them), and each of its request lines is a JSON object to cJSON
 * with no key twice in any of its objects.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonl_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const char *s;
	size_t len;
};

static ssize_t mem_pread(void *ctx, char *buf, size_t len, uint64_t off)
{
	const struct mem *m = ctx;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = m->len - (size_t)off;
	memcpy(buf, m->s + off, len);
	return (ssize_t)len;
}

static int run(const char *s, size_t size, size_t step, int told, char **report)
{
	struct jsonl_check c;
	struct mem m = {s, size};
	int r;

	jsonl_check_init(&c, "in.jsonl");
	if (told)
		jsonl_check_source(&c, size, mem_pread, &m);
	for (size_t i = 0; i < size; i += step)
		jsonl_check_feed(&c, s + i, size - i < step ? size - i : step);
	r = jsonl_check_end(&c);
	*report = strdup(jsonl_check_report(&c));
	jsonl_check_free(&c);
	return r;
}

/* Whether v holds an object with a key twice (quadratic: inputs are
 * small). */
static int key_twice(const cJSON *v)
{
	const cJSON *a, *b;

	if (cJSON_IsObject(v))
		cJSON_ArrayForEach (a, v)
			for (b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return 1;
	if (cJSON_IsObject(v) || cJSON_IsArray(v))
		cJSON_ArrayForEach (a, v)
			if (key_twice(a))
				return 1;
	return 0;
}

/* The promises of a file the check said yes to (s, size bytes). */
static void check_accepted(const char *s, size_t size)
{
	const char *end = s + size;

	for (size_t i = 0; i < size; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b < 0x20 && b != '\t' && b != '\n' && b != '\r')
			abort();
	}
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
		size_t nuls;
		cJSON *v = json_parse(s, len, &nuls);

		int blank = 1;

		for (size_t i = 0; i < len; i++)
			if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
				blank = 0;

		/* Never more lenient than cJSON: each request line is an
		 * object to it, with no key twice. */
		if (!blank && (!cJSON_IsObject(v) || key_twice(v)))
			abort();
		cJSON_Delete(v);
		s += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t step;
	char *a, *b, *t;
	int ra, rb, rt;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	ra = run(s + 1, size - 1, size, 0, &a);
	rb = run(s + 1, size - 1, step, 0, &b);
	rt = run(s + 1, size - 1, step, 1, &t);
	if (!a || !b || !t || ra != rb || strcmp(a, b) != 0 || ra != rt ||
	    strcmp(a, t) != 0)
		abort();
	if ((ra == 0) != (a[0] == '\0') || (ra != 0 && ra != -EINVAL))
		abort();
	for (const char *p = a; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			abort();
	if (ra == 0)
		check_accepted(s + 1, size - 1);
	free(a);
	free(b);
	free(t);
	return 0;
}
