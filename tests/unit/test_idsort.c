/*
 * test_idsort.c - unit tests of finding repeated ids with bounded memory:
 * the same repeats whether everything fits in memory or the records are
 * merged from many runs of a scratch file, each repeat told against the
 * first line of its id, and a hash collision of two different ids never
 * told.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "idsort.h"

#define N 50000

/* Line i (from 1) holds id ids[i]; its token is at offset 10 * i. The
 * hash is the id itself, except that ids 7 and 8 share one hash. */
static unsigned ids[N + 1];
static unsigned told_first[N + 1]; /* line -> the first line told */
static size_t ntold, compared;
static int fail_with; /* what found returns, when not 0 */

static uint64_t hash_of(unsigned id)
{
	return id == 8 ? 7 : id;
}

static int same(void *ctx, uint64_t a, uint64_t b)
{
	(void)ctx;
	compared++;
	return ids[a / 10] == ids[b / 10];
}

static int found(void *ctx, uint64_t line, uint64_t first, uint64_t off)
{
	(void)ctx;
	if (fail_with)
		return fail_with;
	if (off != 10 * line || told_first[line])
		return -EPROTO;
	told_first[line] = (unsigned)first;
	ntold++;
	return 0;
}

/* Run idsort over every line with mem bytes; 0 or the failure. */
static int run(size_t mem, size_t *runs)
{
	struct idsort s;
	FILE *f = tmpfile();
	int r = idsort_init(&s, fileno(f), mem);

	memset(told_first, 0, sizeof(told_first));
	ntold = compared = 0;
	for (unsigned i = 1; r == 0 && i <= N; i++)
		r = idsort_add(&s, hash_of(ids[i]), 10 * (uint64_t)i, i);
	if (r == 0)
		r = idsort_repeats(&s, same, found, NULL);
	*runs = s.nruns;
	idsort_free(&s);
	fclose(f);
	return r;
}

/* Whether what was told is every repeat, each against its id's first
 * line. */
static int told_right(void)
{
	static unsigned first_of[2 * N + 10]; /* id -> its first line */
	size_t want = 0;

	memset(first_of, 0, sizeof(first_of));
	for (unsigned i = 1; i <= N; i++) {
		unsigned id = ids[i];

		if (!first_of[id]) {
			first_of[id] = i;
			if (told_first[i])
				return 0;
			continue;
		}
		want++;
		if (told_first[i] != first_of[id]) {
			fprintf(stderr, "line %u: told %u, first %u\n", i,
				told_first[i], first_of[id]);
			return 0;
		}
	}
	if (want != ntold)
		fprintf(stderr, "%zu repeats told of %zu\n", ntold, want);
	return want == ntold;
}

int main(void)
{
	size_t runs;

	srand(7);
	for (unsigned i = 1; i <= N; i++)
		ids[i] = (unsigned)(rand() % (N * 2)) + 9;
	ids[100] = 7, ids[200] = 8, ids[300] = 8, ids[400] = 7;
	for (unsigned i = 1000; i < 1100; i++)
		ids[i] = 5; /* one id a hundred times */

	CHECK(run(64u << 20, &runs) == 0 && runs == 0);
	CHECK(told_right());
	CHECK(told_first[300] == 200 && told_first[400] == 100);
	CHECK(told_first[200] == 0 && told_first[1099] == 1000);

	/* The smallest memory: tens of runs, merged; the same answer. */
	CHECK(run(1, &runs) == 0 && runs > 10);
	CHECK(told_right());
	CHECK(told_first[300] == 200 && told_first[400] == 100);

	/* No repeat at all: nothing told; found's failure stops it. */
	for (unsigned i = 1; i <= N; i++)
		ids[i] = i + 10;
	CHECK(run(1, &runs) == 0 && ntold == 0 && compared == 0);
	ids[N] = ids[1];
	CHECK(run(1, &runs) == 0 && ntold == 1 && told_first[N] == 1);
	fail_with = -ENOSPC;
	CHECK(run(1, &runs) == -ENOSPC);
	CHECK(run(64u << 20, &runs) == -ENOSPC);
	fail_with = 0;

	/* Orders a sort finds hard, in memory and in runs: descending, a
	 * few ids in turn, one id everywhere. */
	for (unsigned i = 1; i <= N; i++)
		ids[i] = 2 * N + 9 - i;
	ids[N / 2] = ids[N / 3];
	for (size_t mem = 1; mem <= (64u << 20); mem += (64u << 20) - 1) {
		CHECK(run(mem, &runs) == 0 && ntold == 1);
		CHECK(told_first[N / 2] == N / 3);
	}
	for (unsigned i = 1; i <= N; i++)
		ids[i] = 9 + i % 3;
	CHECK(run(64u << 20, &runs) == 0 && told_right());
	for (unsigned i = 1; i <= N; i++)
		ids[i] = 9;
	CHECK(run(64u << 20, &runs) == 0 && ntold == N - 1);
	CHECK(told_first[N] == 1 && told_first[2] == 1);
	return check_done("test_idsort");
}
