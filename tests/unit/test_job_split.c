/*
 * test_job_split.c - unit tests of where a job's input is cut: at line
 * ends, under both limits, as few parts as they allow, blank lines at the
 * end, and the errors (a line over the part size, too many parts).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "job_split.h"

/* Split lines (lengths, 0 for a blank line of 1 byte) under the limits;
 * returns job_split_end's result with s filled. */
static int split(struct job_split *s, uint64_t max_bytes, uint64_t max_req,
		 size_t max_parts, const uint64_t *lens, size_t n)
{
	job_split_init(s, max_bytes, max_req, max_parts);
	for (size_t i = 0; i < n; i++)
		job_split_line(s, lens[i] ? lens[i] : 1, lens[i] != 0);
	return job_split_end(s);
}

static int ends_are(const struct job_split *s, const uint64_t *want, size_t n)
{
	if (s->nparts != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s->ends[i] != want[i])
			return 0;
	return 1;
}

int main(void)
{
	struct job_split s;

	/* Everything fits: one part, the whole input. */
	{
		const uint64_t l[] = {10, 10, 10}, e[] = {30};
		CHECK(split(&s, 100, 10, 10, l, 3) == 0 && ends_are(&s, e, 1));
		job_split_free(&s);
	}
	/* By bytes: a part ends when the next line would not fit; a line
	 * that fills a part exactly stays in it. */
	{
		const uint64_t l[] = {40, 40, 20, 50, 50, 1},
			       e[] = {100, 200, 201};
		CHECK(split(&s, 100, 10, 10, l, 6) == 0 && ends_are(&s, e, 3));
		job_split_free(&s);
	}
	/* By requests. */
	{
		const uint64_t l[] = {1, 1, 1, 1, 1}, e[] = {2, 4, 5};
		CHECK(split(&s, 100, 2, 10, l, 5) == 0 && ends_are(&s, e, 3));
		job_split_free(&s);
	}
	/* Blank lines at the end join the last part when they fit, else are
	 * left out. */
	{
		const uint64_t l[] = {50, 0, 0}, e[] = {52};
		CHECK(split(&s, 100, 10, 10, l, 3) == 0 && ends_are(&s, e, 1));
		job_split_free(&s);
	}
	{
		const uint64_t l[] = {60, 50, 0}, e[] = {60, 111};
		CHECK(split(&s, 100, 10, 10, l, 3) == 0 && ends_are(&s, e, 2));
		job_split_free(&s);
	}
	{
		const uint64_t l[] = {60, 40, 0}, e[] = {100};
		CHECK(split(&s, 100, 10, 10, l, 3) == 0 && ends_are(&s, e, 1));
		job_split_free(&s);
	}
	/* Errors: a line alone over the part size, too many parts, a request
	 * after a blank line, no request at all; the first error stays. */
	{
		const uint64_t l[] = {10, 101, 10};
		CHECK(split(&s, 100, 10, 10, l, 3) == -EFBIG);
		CHECK(job_split_line(&s, 1, 1) == -EFBIG);
		job_split_free(&s);
	}
	{
		const uint64_t l[] = {1, 1, 1, 1};
		CHECK(split(&s, 100, 1, 3, l, 4) == -E2BIG);
		job_split_free(&s);
		CHECK(split(&s, 100, 1, 4, l, 4) == 0 && s.nparts == 4);
		job_split_free(&s);
	}
	{
		const uint64_t l[] = {1, 0, 1};
		CHECK(split(&s, 100, 10, 10, l, 3) == -EINVAL);
		job_split_free(&s);
	}
	{
		const uint64_t l[] = {0, 0};
		CHECK(split(&s, 100, 10, 10, l, 2) == -ENODATA);
		job_split_free(&s);
	}
	/* Many parts: the offsets grow past the first allocation. */
	job_split_init(&s, 10, 1000, 100000);
	{
		int bad = 0;

		for (int i = 0; i < 1000; i++)
			bad += job_split_line(&s, 10, 1) != 0;
		CHECK(bad == 0);
	}
	CHECK(job_split_end(&s) == 0 && s.nparts == 1000 &&
	      s.ends[999] == 10000 && s.ends[0] == 10);
	job_split_free(&s);
	return check_done("test_job_split");
}
