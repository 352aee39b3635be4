/*
 * inode.c - the inode table: three chained hash tables over the same
 * inodes, one by number (for every request), one by (parent, name) (so a
 * name looked up again gets the number it had) and one by batch id (the
 * inodes to invalidate when a batch changes), under one mutex. An inode
 * keeps its node in a few bytes (its type, and its id and own name in one
 * allocation of their lengths), not as a struct node of two full names:
 * the kernel may hold a million of them (`ls -l` of a job's results).
 */
#include "inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct inode {
	struct inode *next_ino;	 /* chain in by_ino */
	struct inode *next_name; /* chain in by_name */
	struct inode
	    *next_batch; /* chain in by_batch, when its node has an id */
	uint64_t ino;
	uint64_t parent;
	uint64_t nlookup; /* the kernel's references; the root has one more */
	const struct node_type *type; /* its node's */
	char *strs;  /* its node's id, NUL, own name, NUL (inode_set) */
	char name[]; /* the name it was looked up by, in its parent */
};

/* The id of i's node ("" for none). */
static const char *inode_id(const struct inode *i)
{
	return i->strs;
}

/* Make i stand for n: 0, or -ENOMEM (i unchanged). */
static int inode_set(struct inode *i, const struct node *n)
{
	size_t a = strlen(n->id) + 1, b = strlen(n->name) + 1;
	char *strs = malloc(a + b);

	if (!strs)
		return -ENOMEM;
	memcpy(strs, n->id, a);
	memcpy(strs + a, n->name, b);
	free(i->strs);
	i->strs = strs;
	i->type = n->type;
	return 0;
}

/* The node i stands for, into *out. */
static void inode_node(const struct inode *i, struct node *out)
{
	const char *name = i->strs + strlen(i->strs) + 1;

	memset(out, 0, sizeof(*out));
	out->type = i->type;
	memcpy(out->id, i->strs, strlen(i->strs) + 1);
	memcpy(out->name, name, strlen(name) + 1);
}

/* A new inode looked up by name, standing for n, or NULL. */
static struct inode *inode_new(const char *name, const struct node *n)
{
	size_t len = strlen(name) + 1;
	struct inode *i = calloc(1, sizeof(*i) + len);

	if (!i)
		return NULL;
	memcpy(i->name, name, len);
	if (inode_set(i, n) < 0) {
		free(i);
		return NULL;
	}
	return i;
}

static void inode_free(struct inode *i)
{
	free(i->strs);
	free(i);
}

static size_t ino_slot(const struct inodes *t, uint64_t ino)
{
	return (size_t)(ino * 11400714819323198485ull) % t->nbuckets;
}

static size_t name_slot(const struct inodes *t, uint64_t parent,
			const char *name)
{
	return (util_hash(name) ^ (size_t)(parent * 11400714819323198485ull)) %
	       t->nbuckets;
}

static size_t batch_slot(const struct inodes *t, const char *id)
{
	return util_hash(id) % t->nbuckets;
}

static void link_batch(struct inodes *t, struct inode *i)
{
	size_t c = batch_slot(t, inode_id(i));

	if (!inode_id(i)[0])
		return;
	i->next_batch = t->by_batch[c];
	t->by_batch[c] = i;
}

static void link_in(struct inodes *t, struct inode *i)
{
	size_t a = ino_slot(t, i->ino), b = name_slot(t, i->parent, i->name);

	i->next_ino = t->by_ino[a];
	t->by_ino[a] = i;
	i->next_name = t->by_name[b];
	t->by_name[b] = i;
	link_batch(t, i);
}

/* Double the buckets; on failure the chains just get longer. */
static void grow(struct inodes *t)
{
	struct inodes bigger = *t;
	struct inode *list = NULL, *i, *next;

	bigger.nbuckets = t->nbuckets * 2;
	bigger.by_ino = calloc(bigger.nbuckets, sizeof(*bigger.by_ino));
	bigger.by_name = calloc(bigger.nbuckets, sizeof(*bigger.by_name));
	bigger.by_batch = calloc(bigger.nbuckets, sizeof(*bigger.by_batch));
	if (!bigger.by_ino || !bigger.by_name || !bigger.by_batch) {
		free(bigger.by_ino);
		free(bigger.by_name);
		free(bigger.by_batch);
		return;
	}
	for (size_t s = 0; s < t->nbuckets; s++) {
		for (i = t->by_ino[s]; i; i = next) {
			next = i->next_ino;
			i->next_ino = list;
			list = i;
		}
	}
	free(t->by_ino);
	free(t->by_name);
	free(t->by_batch);
	t->by_ino = bigger.by_ino;
	t->by_name = bigger.by_name;
	t->by_batch = bigger.by_batch;
	t->nbuckets = bigger.nbuckets;
	for (i = list; i; i = next) {
		next = i->next_ino;
		link_in(t, i);
	}
}

int inodes_init(struct inodes *t, const struct node *root)
{
	struct inode *i;

	memset(t, 0, sizeof(*t));
	t->nbuckets = 256;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_name = calloc(t->nbuckets, sizeof(*t->by_name));
	t->by_batch = calloc(t->nbuckets, sizeof(*t->by_batch));
	i = inode_new("", root);
	if (!t->by_ino || !t->by_name || !t->by_batch || !i) {
		if (i)
			inode_free(i);
		free(t->by_ino);
		free(t->by_name);
		free(t->by_batch);
		return -ENOMEM;
	}
	i->ino = INODE_ROOT;
	i->nlookup = 1; /* never forgotten */
	link_in(t, i);
	t->count = 1;
	t->next_ino = INODE_ROOT + 1;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void inodes_destroy(struct inodes *t)
{
	for (size_t s = 0; s < t->nbuckets; s++) {
		struct inode *i = t->by_ino[s], *next;

		for (; i; i = next) {
			next = i->next_ino;
			inode_free(i);
		}
	}
	free(t->by_ino);
	free(t->by_name);
	free(t->by_batch);
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof(*t));
}

/* Caller holds t->lock. */
static struct inode *by_ino(const struct inodes *t, uint64_t ino)
{
	struct inode *i = t->by_ino[ino_slot(t, ino)];

	while (i && i->ino != ino)
		i = i->next_ino;
	return i;
}

int inodes_get(struct inodes *t, uint64_t ino, struct node *out)
{
	struct inode *i;

	pthread_mutex_lock(&t->lock);
	i = by_ino(t, ino);
	if (i)
		inode_node(i, out);
	pthread_mutex_unlock(&t->lock);
	return i ? 0 : -ESTALE;
}

/* Take i out of a chain linked through field `next`. */
#define UNLINK(head, i, next)                                                  \
	do {                                                                   \
		struct inode **p_ = (head);                                    \
		while (*p_ != (i))                                             \
			p_ = &(*p_)->next;                                     \
		*p_ = (i)->next;                                               \
	} while (0)

/* Take i out of by_batch, if it is in it. Caller holds t->lock. */
static void unlink_batch(struct inodes *t, struct inode *i)
{
	if (inode_id(i)[0])
		UNLINK(&t->by_batch[batch_slot(t, inode_id(i))], i, next_batch);
}

uint64_t inodes_add(struct inodes *t, uint64_t parent, const char *name,
		    const struct node *n)
{
	struct inode *i;
	uint64_t ino = 0;

	pthread_mutex_lock(&t->lock);
	for (i = t->by_name[name_slot(t, parent, name)]; i; i = i->next_name)
		if (i->parent == parent && strcmp(i->name, name) == 0)
			break;
	if (!i) {
		if (t->count >= t->nbuckets)
			grow(t);
		i = inode_new(name, n);
		if (!i)
			goto out;
		i->ino = t->next_ino++;
		i->parent = parent;
		link_in(t, i);
		t->count++;
	} else if (strcmp(inode_id(i), n->id) != 0) {
		unlink_batch(t, i);
		if (inode_set(i, n) < 0) {
			link_batch(t, i);
			goto out;
		}
		link_batch(t, i);
	} else if (i->type != n->type ||
		   strcmp(inode_id(i) + strlen(inode_id(i)) + 1, n->name) !=
		       0) {
		if (inode_set(i, n) < 0)
			goto out;
	}
	i->nlookup++;
	ino = i->ino;
out:
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void inodes_forget(struct inodes *t, uint64_t ino, uint64_t nlookup)
{
	struct inode *i;

	pthread_mutex_lock(&t->lock);
	i = by_ino(t, ino);
	if (i && ino != INODE_ROOT) {
		i->nlookup = nlookup < i->nlookup ? i->nlookup - nlookup : 0;
		if (i->nlookup == 0) {
			UNLINK(&t->by_ino[ino_slot(t, ino)], i, next_ino);
			UNLINK(&t->by_name[name_slot(t, i->parent, i->name)], i,
			       next_name);
			unlink_batch(t, i);
			t->count--;
			inode_free(i);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

size_t inodes_of_batch(struct inodes *t, const char *id, uint64_t **out)
{
	struct inode *i;
	size_t n = 0, k = 0;

	*out = NULL;
	pthread_mutex_lock(&t->lock);
	for (i = t->by_batch[batch_slot(t, id)]; i; i = i->next_batch)
		n += strcmp(inode_id(i), id) == 0;
	if (n && (*out = malloc(n * sizeof(**out))))
		for (i = t->by_batch[batch_slot(t, id)]; i; i = i->next_batch)
			if (strcmp(inode_id(i), id) == 0)
				(*out)[k++] = i->ino;
	pthread_mutex_unlock(&t->lock);
	return k;
}
