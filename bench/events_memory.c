/*
 * events_memory.c - the memory of MOUNT/events' stream (events.h) under
 * its worst input, alone, in one process: N lines of the longest kind
 * (every field set, each string far past its cut, so each line is as long
 * as a line can be), with R readers that each stopped inside a line (so
 * each keeps a copy of one) and fell behind. Prints the lines, their
 * bytes, the time per line, and the peak RSS (VmHWM) before and after;
 * exits 1 when the peak passes --max-mib or a reader does not get the
 * missed line and then the kept lines.
 *
 *     build/bench_events_memory [--lines N] [--readers R] [--max-mib M]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "peak_rss.h"
#include "util.h"

/* Read r from off to its end; the bytes, and the lines in *lines. */
static size_t drain(struct events_reader *r, uint64_t off, long *lines)
{
	static char buf[1 << 16];
	size_t total = 0;
	ssize_t n;

	*lines = 0;
	while ((n = events_read(r, buf, sizeof(buf), off + total)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			*lines += buf[i] == '\n';
		total += (size_t)n;
	}
	return total;
}

int main(int argc, char **argv)
{
	long lines = 3L * EVENTS_KEEP, readers = 100, max_mib = 0, got;
	static char big[8192];
	struct events_reader **rs;
	double t0, t;
	long before, after;
	char piece[10];
	int ok = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--lines") == 0)
			lines = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--readers") == 0)
			readers = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--max-mib") == 0)
			max_mib = atol(argv[i + 1]);
	}
	memset(big, 'x', sizeof(big) - 1);
	rs = calloc((size_t)readers, sizeof(*rs));
	if (!rs)
		return 1;
	before = peak_kib();
	for (long i = 0; i < readers; i++)
		if (events_open((uint64_t)i + 1, 0, &rs[i]) < 0)
			return 1;
	t0 = util_now();
	for (long i = 0; i < lines; i++) {
		events_add(&(struct event){.kind = "create",
					   .id = big,
					   .file = big,
					   .name = big,
					   .status = big,
					   .was = big,
					   .job = big,
					   .of = big,
					   .round = 9999,
					   .batches = 9999,
					   .bytes = 104857600,
					   .error = big});
		/* Each reader reads a piece of the first line: it keeps it. */
		if (i == 0)
			for (long k = 0; k < readers; k++)
				events_read(rs[k], piece, sizeof(piece), 0);
	}
	t = util_now() - t0;
	after = peak_kib();
	for (long k = 0; k < readers; k++) {
		size_t bytes = drain(rs[k], sizeof(piece), &got);

		/* The rest of the first line, the missed line, the kept. */
		if (lines > EVENTS_KEEP + 1 && got != EVENTS_KEEP + 2)
			ok = 0;
		if (k == 0)
			printf("a reader read %zu bytes, %ld lines\n", bytes,
			       got);
		events_close(rs[k]);
	}
	printf("%ld lines of %d bytes at most, %ld readers: %.2f us a line; "
	       "peak RSS %.1f MiB before, %.1f MiB after\n",
	       lines, EVENTS_LINE_MAX, readers, t * 1e6 / (double)lines,
	       (double)before / 1024, (double)after / 1024);
	events_forget();
	free(rs);
	if (!ok)
		printf("FAIL: a reader did not get the missed line and the "
		       "kept ones\n");
	if (max_mib && after > max_mib * 1024) {
		printf("FAIL: peak RSS past %ld MiB\n", max_mib);
		ok = 0;
	}
	return ok ? 0 : 1;
}
