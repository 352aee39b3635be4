/*
 * inodes_memory.c - the memory of the inode table (inode.h) when the
 * kernel holds N inodes at once (`ls -l` of a job's results/: a
 * million names, each looked up), alone, in one process: N inodes under
 * one parent, each of a node with an id and a name of a result's length.
 * Prints the RSS they take in all and per inode; exits 1 when the peak
 * passes --max-mib.
 *
 *     build/bench_inodes_memory [--inodes N] [--max-mib M]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"
#include "peak_rss.h"

int main(int argc, char **argv)
{
	static const struct node_type type = {.what = "result"};
	long n = 1000000, max_mib = 0, before, after;
	struct node root = {.type = &type}, node = {.type = &type};
	struct inodes t;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--inodes") == 0)
			n = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--max-mib") == 0)
			max_mib = atol(argv[i + 1]);
	}
	if (inodes_init(&t, &root) < 0)
		return 1;
	snprintf(node.id, sizeof(node.id), "questions");
	before = peak_kib();
	for (long i = 0; i < n; i++) {
		snprintf(node.name, sizeof(node.name), "q-%07ld.json", i);
		if (!inodes_add(&t, 2, node.name, &node))
			return 1;
	}
	after = peak_kib();
	printf("%ld inodes: %.1f MiB, %.0f bytes an inode (peak RSS %.1f MiB "
	       "before, %.1f MiB after)\n",
	       n, (double)(after - before) / 1024,
	       (double)(after - before) * 1024 / (double)n,
	       (double)before / 1024, (double)after / 1024);
	inodes_destroy(&t);
	if (max_mib && after > max_mib * 1024) {
		printf("FAIL: peak RSS past %ld MiB\n", max_mib);
		return 1;
	}
	return 0;
}
