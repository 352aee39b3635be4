/*
 * test_util.c - unit tests of the shared helpers: trimming, scrubbing,
 * hashing, the UTF-8 check, the monotonic clock, growing a buffer.
 */
#include <stdlib.h>
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
	/* FNV-1a's published values, and a hash continued. */
	CHECK(util_hash_bytes("", 0, UTIL_HASH_SEED) == 0xcbf29ce484222325ull);
	CHECK(util_hash_bytes("a", 1, UTIL_HASH_SEED) == 0xaf63dc4c8601ec8cull);
	CHECK(util_hash_bytes("foobar", 6, UTIL_HASH_SEED) ==
	      0x85944171f73967e8ull);
	CHECK(util_hash_bytes("bar", 3,
			      util_hash_bytes("foo", 3, UTIL_HASH_SEED)) ==
	      0x85944171f73967e8ull);
	CHECK(util_hash("foobar") ==
	      (size_t)util_hash_bytes("foobar", 6, 1469598103934665603ull));

	/* UTF-8: the length of one character, and whole texts. */
	CHECK(util_utf8_len("a", 1) == 1);
	CHECK(util_utf8_len("\xc3\xa9", 2) == 2);
	CHECK(util_utf8_len("\xc3", 1) == 0);	      /* cut short */
	CHECK(util_utf8_len("\xc0\xaf", 2) == 0);     /* overlong */
	CHECK(util_utf8_len("\xe0\x80\xaf", 3) == 0); /* overlong */
	CHECK(util_utf8_len("\xe2\x82\xac", 3) == 3);
	CHECK(util_utf8_len("\xed\xa0\x80", 3) == 0); /* surrogate */
	CHECK(util_utf8_len("\xf0\x9f\x98\x80", 4) == 4);
	CHECK(util_utf8_len("\xf4\x90\x80\x80", 4) == 0); /* > U+10FFFF */
	CHECK(util_utf8_len("\x80", 1) == 0);
	CHECK(util_utf8_len("\xe2\x28\xa1", 3) == 0);
	CHECK(util_utf8_valid("", 0));
	CHECK(util_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
	CHECK(!util_utf8_valid("caf\xc3", 4));
	CHECK(!util_utf8_valid("\xed\xbf\xbf", 3));
	CHECK(!util_utf8_valid("a\xff!", 3));
	/* Words of ASCII skipped whole: a bad byte in or after one. */
	CHECK(util_utf8_valid("0123456789abcdef\xc3\xa9", 18));
	CHECK(!util_utf8_valid("0123456789abcdef\xc3", 17));
	CHECK(!util_utf8_valid("01234567\x80", 9));
	CHECK(!util_utf8_valid("0123\xff"
			       "567",
			       8));

	t0 = util_now();
	t1 = util_now();
	CHECK(t0 > 0 && t1 >= t0);
	/* util_grow: doubles from the first size until the need fits, and
	 * leaves a buffer that fits as it is. */
	{
		char *buf = NULL;
		size_t cap = 0;

		CHECK(util_grow(&buf, &cap, 10, 16) == 0 && buf && cap == 16);
		CHECK(util_grow(&buf, &cap, 16, 16) == 0 && cap == 16);
		CHECK(util_grow(&buf, &cap, 17, 16) == 0 && cap == 32);
		CHECK(util_grow(&buf, &cap, 100, 16) == 0 && cap == 128);
		memset(buf, 'x', cap);
		free(buf);
	}
	return check_done("util");
}
