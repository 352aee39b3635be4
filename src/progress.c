/*
 * progress.c - the one-line picture of a job's or a batch's progress
 * (progress.h).
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>

void progress_count(uint64_t n, char *out, size_t size)
{
	char digits[32];
	size_t len, o = 0;

	snprintf(digits, sizeof(digits), "%llu", (unsigned long long)n);
	len = strlen(digits);
	for (size_t i = 0; i < len && o + 2 < size; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

double progress_left(const struct progress *p)
{
	double spent = p->now - p->started;

	if (p->running == 0 || p->done == 0 || p->done >= p->total ||
	    spent <= 0)
		return -1;
	return spent * (double)(p->total - p->done) / (double)p->done;
}

/* The time left as "about 14 min left" into out, or "" when there is no
 * rate to tell it from. */
static void estimate(const struct progress *p, char *out, size_t size)
{
	static const struct {
		double unit;
		const char *name;
	} units[] = {{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}};
	double left = progress_left(p);
	size_t i = 0;

	out[0] = '\0';
	if (left < 0)
		return;
	while (i + 1 < sizeof(units) / sizeof(units[0]) &&
	       left < 2 * units[i].unit)
		i++;
	left /= units[i].unit;
	snprintf(out, size, ", about %.0f %s left", left < 1 ? 1 : left,
		 units[i].name); /* never "about 0 s": not done yet */
}

void progress_line(const struct progress *p, char *out, size_t size)
{
	char bar[PROGRESS_BAR + 1], done[32], total[32], failed[32], eta[48];
	uint64_t d = p->done < p->total ? p->done : p->total;
	unsigned pct = p->total ? (unsigned)(100 * d / p->total) : 0;
	unsigned cells =
	    p->total ? (unsigned)((PROGRESS_BAR * d + p->total / 2) / p->total)
		     : 0;

	for (unsigned i = 0; i < PROGRESS_BAR; i++)
		bar[i] = i < cells ? '#' : '.';
	bar[PROGRESS_BAR] = '\0';
	progress_count(p->done, done, sizeof(done));
	progress_count(p->total, total, sizeof(total));
	progress_count(p->failed, failed, sizeof(failed));
	estimate(p, eta, sizeof(eta));
	snprintf(out, size,
		 "[%s] %u%%  %s/%s done, %s failed, %u of %u %s running%s\n",
		 bar, pct, done, total, failed, p->running, p->batches,
		 p->batches == 1 ? "batch" : "batches", eta);
}
