/*
 * test_util.c - unit tests of the shared helpers: trimming, scrubbing,
 * hashing, the monotonic clock.
 */
#include <string.h>

#include "check.h"
#include "util.h"

int main(void)
{
	char a[] = "  \t cancel\r\n", b[] = "", c[] = " \n ", d[] = "x";
	char e[] = "one\nline\x1b[31m\x7f!";
	double t0, t1;

	CHECK(strcmp(util_trim(a), "cancel") == 0);
	CHECK(strcmp(util_trim(b), "") == 0);
	CHECK(strcmp(util_trim(c), "") == 0);
	CHECK(strcmp(util_trim(d), "x") == 0);

	util_scrub(e);
	CHECK(strcmp(e, "one line [31m !") == 0);

	CHECK(util_hash("batch_a") == util_hash("batch_a"));
	CHECK(util_hash("batch_a") != util_hash("batch_b"));
	CHECK(util_hash("") == (size_t)1469598103934665603ull);

	t0 = util_now();
	t1 = util_now();
	CHECK(t0 > 0 && t1 >= t0);
	return check_done("util");
}
