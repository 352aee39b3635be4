/*
 * fuzz_results.c - libFuzzer target: any bytes as a batch's output file
 * (and, from the same bytes, its error file). Indexing must never crash,
 * hang or leak; every name it gives must be a possible name that finds its
 * own entry, at most RESULTS_NAME_MAX bytes, free of '/' and control
 * characters, never "." or ".."; every entry's line lies inside the file
 * and renders as .json (and as .txt when the index says it has one)
 * within the size the results cache reserves for it (results.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const struct results *r, const struct result *e)
{
	const char *name = results_name(r, e);
	size_t n = strlen(name);

	if (n == 0 || n > RESULTS_NAME_MAX || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, "..") ||
	    !results_name_possible(name, n) || results_find(r, name, n) != e)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	const char *buf = (const char *)data;
	struct results *r;

	if (!quiet) {
		log_init(1, 0);
		quiet = 1;
	}
	r = results_new();
	if (!r)
		return 0;
	results_add(r, RESULTS_OUTPUT, buf, size, "fuzz");
	results_add(r, RESULTS_ERROR, buf, size, "fuzz");
	for (size_t i = 0; i < r->n; i++) {
		const struct result *e = &r->e[i];
		char *out;
		size_t len;

		check_name(r, e);
		if (e->off + e->len > size)
			abort();
		if (results_render_json(buf + e->off, e->len, &out, &len) < 0 ||
		    len > 8 * (size_t)e->len + 4096 ||
		    (len > RESULTS_PRETTY_MAX && len > (size_t)e->len + 1))
			abort();
		free(out);
		if (e->has_txt) {
			if (results_render_txt(buf + e->off, e->len, &out,
					       &len) < 0 ||
			    len == 0 || out[len - 1] != '\n' ||
			    len > (size_t)e->len + 1)
				abort();
			free(out);
		}
	}
	results_free(r);
	return 0;
}
