/*
 * test_progress.c - unit tests of the progress line: the bar, the percent,
 * counts with thousands separators, the estimate from the rate so far (none
 * before there is one, none once nothing runs), and in seconds.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "progress.h"

static char line[PROGRESS_LINE_MAX];

static const char *show(uint64_t total, uint64_t done, uint64_t failed,
			unsigned batches, unsigned running, double spent)
{
	struct progress p = {total,   done, failed,	 batches,
			     running, 1000, 1000 + spent};

	progress_line(&p, line, sizeof(line));
	return line;
}

static int is(const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return 1;
	fprintf(stderr, "got  %swant %s", got, want);
	return 0;
}

int main(void)
{
	char n[32];

	progress_count(0, n, sizeof(n));
	CHECK(strcmp(n, "0") == 0);
	progress_count(999, n, sizeof(n));
	CHECK(strcmp(n, "999") == 0);
	progress_count(1000, n, sizeof(n));
	CHECK(strcmp(n, "1,000") == 0);
	progress_count(1234567, n, sizeof(n));
	CHECK(strcmp(n, "1,234,567") == 0);

	/* 5,812 of 10,000 in 1,160 s: 4,188 more at that rate, 14 min. */
	CHECK(is(show(10000, 5812, 37, 12, 3, 1160),
		 "[#######.....] 58%  5,812/10,000 done, 37 failed, 3 of 12 "
		 "batches running, about 14 min left\n"));
	/* Nothing done yet: no rate, no estimate. */
	CHECK(is(show(10000, 0, 0, 1, 1, 60),
		 "[............] 0%  0/10,000 done, 0 failed, 1 of 1 batch "
		 "running\n"));
	/* Seconds, hours. */
	CHECK(strstr(show(100, 50, 0, 1, 1, 30), "about 30 s left\n"));
	CHECK(strstr(show(100, 10, 0, 1, 1, 3600), "about 9 h left\n"));
	CHECK(strstr(show(100, 1, 0, 1, 1, 86400), "about 99 d left\n"));
	/* Nearly done at a fast rate: at least a second, never 0. */
	CHECK(strstr(show(100, 99, 0, 1, 1, 0.1), "about 1 s left\n"));
	/* All done, or nothing running: no estimate; the bar full. */
	CHECK(is(show(10, 10, 2, 2, 0, 50),
		 "[############] 100%  10/10 done, 2 failed, 0 of 2 batches "
		 "running\n"));
	CHECK(!strstr(show(10, 5, 0, 2, 0, 50), "left"));
	/* A total of 0 (a batch still validating) and counts over it. */
	CHECK(strncmp(show(0, 0, 0, 1, 1, 5), "[............] 0%", 17) == 0);
	CHECK(strncmp(show(5, 9, 0, 1, 1, 5), "[############] 100%", 19) == 0);
	/* The estimate in seconds, for sorting: -1 where the line has none. */
	{
		struct progress p = {100, 50, 0, 1, 1, 1000, 1030};

		CHECK(progress_left(&p) == 30);
		p.done = 0;
		CHECK(progress_left(&p) == -1);
		p.done = 100;
		CHECK(progress_left(&p) == -1);
		p.done = 50, p.running = 0;
		CHECK(progress_left(&p) == -1);
	}
	return check_done("test_progress");
}
