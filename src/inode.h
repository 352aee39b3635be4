/*
 * inode.h - the inode table: the numbers the kernel knows, each standing for
 * one node of the tree (see tree.h), kept while the kernel holds a lookup
 * reference to it. Numbers are never reused, so the generation is always 0.
 */
#ifndef KIMIFS_INODE_H
#define KIMIFS_INODE_H

#include <pthread.h>
#include <stdint.h>

#include "tree.h"

#define INODE_ROOT 1

struct inode;

struct inodes {
	pthread_mutex_t lock; /* guards every field below and every inode */
	struct inode **by_ino;
	struct inode **by_name;	 /* by (parent, name) */
	struct inode **by_batch; /* inodes under batches/<id>/, by id */
	size_t nbuckets;
	size_t count;
	uint64_t next_ino;
};

/* Set up the table with the root inode standing for root. 0 or -ENOMEM. */
int inodes_init(struct inodes *t, const struct node *root);
void inodes_destroy(struct inodes *t);

/* Copy the node that ino stands for into *out. 0, or -ESTALE when the
 * kernel asks for a number it was never given or has forgotten. */
int inodes_get(struct inodes *t, uint64_t ino, struct node *out);

/*
 * The inode for name under parent, standing for n: the existing one (its
 * node updated to n) or a new one. Adds one lookup reference. Returns the
 * number, or 0 when out of memory.
 */
uint64_t inodes_add(struct inodes *t, uint64_t parent, const char *name,
		    const struct node *n);

/* Drop nlookup references to ino; an inode left with none is freed. */
void inodes_forget(struct inodes *t, uint64_t ino, uint64_t nlookup);

/*
 * The numbers of the inodes the kernel holds of batch id (its directory
 * and everything under it), for telling the kernel that the batch changed:
 * a malloc'd array in *out (NULL when none) and their count. Linear in the
 * inodes of that batch, not in the table. 0 also when out of memory.
 */
size_t inodes_of_batch(struct inodes *t, const char *id, uint64_t **out);

#endif
