/*
 * test_inode.c - unit tests of the inode table: numbers are stable for a
 * name while referenced, never reused, freed when forgotten, found by batch
 * id (only while the kernel holds them), and the table grows past its first
 * buckets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "inode.h"

int main(void)
{
	struct inodes t;
	struct node root, n, got;
	uint64_t a, a2, b, c, many[2000];
	char name[32];

	tree_root(&root);
	CHECK(inodes_init(&t, &root) == 0);
	CHECK(inodes_get(&t, INODE_ROOT, &got) == 0);
	CHECK(got.type == root.type);
	CHECK(inodes_get(&t, 999, &got) == -ESTALE);

	memset(&n, 0, sizeof(n));
	n.type = root.type;
	strcpy(n.name, "batches");
	a = inodes_add(&t, INODE_ROOT, "batches", &n);
	a2 = inodes_add(&t, INODE_ROOT, "batches", &n);
	b = inodes_add(&t, a, "batches", &n); /* same name, other parent */
	CHECK(a > INODE_ROOT && a == a2 && b != a);
	CHECK(inodes_get(&t, a, &got) == 0 && strcmp(got.name, "batches") == 0);

	inodes_forget(&t, a, 1); /* one of two references */
	CHECK(inodes_get(&t, a, &got) == 0);
	inodes_forget(&t, a, 1);
	CHECK(inodes_get(&t, a, &got) == -ESTALE);
	c = inodes_add(&t, INODE_ROOT, "batches", &n);
	CHECK(c != a && c > b); /* never reused */

	inodes_forget(&t, INODE_ROOT, 1000); /* the root stays */
	CHECK(inodes_get(&t, INODE_ROOT, &got) == 0);

	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "batch_%d", i);
		many[i] = inodes_add(&t, c, name, &n);
	}
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "batch_%d", i);
		CHECK(inodes_add(&t, c, name, &n) == many[i]);
		inodes_forget(&t, many[i], 2);
		CHECK(inodes_get(&t, many[i], &got) == -ESTALE);
	}
	CHECK(t.count == 3); /* the root, b and c */

	/* by batch: a batch directory and its files, past a growth */
	{
		struct node d = n, f = n;
		uint64_t dir, st, other, *inos;
		size_t k;

		strcpy(d.id, "batch_a");
		strcpy(f.id, "batch_a");
		dir = inodes_add(&t, c, "batch_a", &d);
		st = inodes_add(&t, dir, "status", &f);
		strcpy(f.id, "batch_b");
		other = inodes_add(&t, c, "batch_b", &f);
		CHECK(inodes_of_batch(&t, "batch_none", &inos) == 0 && !inos);
		for (int i = 0; i < 600; i++) { /* the buckets double */
			snprintf(name, sizeof(name), "x_%d", i);
			many[i] = inodes_add(&t, c, name, &n);
		}
		k = inodes_of_batch(&t, "batch_a", &inos);
		CHECK(k == 2 && inos &&
		      ((inos[0] == dir && inos[1] == st) ||
		       (inos[0] == st && inos[1] == dir)));
		free(inos);
		k = inodes_of_batch(&t, "batch_b", &inos);
		CHECK(k == 1 && inos && inos[0] == other);
		free(inos);
		inodes_forget(&t, st, 1); /* forgotten: no longer listed */
		k = inodes_of_batch(&t, "batch_a", &inos);
		CHECK(k == 1 && inos && inos[0] == dir);
		free(inos);
		for (int i = 0; i < 600; i++)
			inodes_forget(&t, many[i], 1);
		inodes_forget(&t, dir, 1);
		inodes_forget(&t, other, 1);
		CHECK(inodes_of_batch(&t, "batch_a", &inos) == 0);
	}
	inodes_destroy(&t);
	return check_done("inode");
}
