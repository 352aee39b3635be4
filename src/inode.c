/*
 * inode.c - the inode table: three chained hash tables over the same
 * inodes, one by number (for every request), one by (parent, name) (so a
 * name looked up again gets the number it had) and one by batch id (the
 * inodes to invalidate when a batch changes), under one mutex.
 */
#include "inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct inode {
	struct inode *next_ino;	  /* chain in by_ino */
	struct inode *next_name;  /* chain in by_name */
	struct inode *next_batch; /* chain in by_batch, when node.id is set */
	uint64_t ino;
	uint64_t parent;
	uint64_t nlookup; /* the kernel's references; the root has one more */
	char *name;
	struct node node;
};

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
	size_t c = batch_slot(t, i->node.id);

	if (!i->node.id[0])
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
	i = calloc(1, sizeof(*i));
	if (i)
		i->name = strdup("");
	if (!t->by_ino || !t->by_name || !t->by_batch || !i || !i->name) {
		if (i)
			free(i->name);
		free(i);
		free(t->by_ino);
		free(t->by_name);
		free(t->by_batch);
		return -ENOMEM;
	}
	i->ino = INODE_ROOT;
	i->nlookup = 1; /* never forgotten */
	i->node = *root;
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
			free(i->name);
			free(i);
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
		*out = i->node;
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
	if (i->node.id[0])
		UNLINK(&t->by_batch[batch_slot(t, i->node.id)], i, next_batch);
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
		i = calloc(1, sizeof(*i));
		if (!i || !(i->name = strdup(name))) {
			free(i);
			goto out;
		}
		i->ino = t->next_ino++;
		i->parent = parent;
		i->node = *n;
		link_in(t, i);
		t->count++;
	} else if (strcmp(i->node.id, n->id) != 0) {
		unlink_batch(t, i);
		i->node = *n;
		link_batch(t, i);
	}
	i->node = *n;
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
			free(i->name);
			free(i);
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
		n += strcmp(i->node.id, id) == 0;
	if (n && (*out = malloc(n * sizeof(**out))))
		for (i = t->by_batch[batch_slot(t, id)]; i; i = i->next_batch)
			if (strcmp(i->node.id, id) == 0)
				(*out)[k++] = i->ino;
	pthread_mutex_unlock(&t->lock);
	return k;
}
