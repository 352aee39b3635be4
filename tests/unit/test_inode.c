/*
 * test_inode.c - unit tests of the inode table: numbers are stable for a
 * name while referenced, never reused, freed when forgotten, and the table
 * grows past its first buckets.
 */
#include <errno.h>
#include <stdio.h>
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
	inodes_destroy(&t);
	return check_done("inode");
}
