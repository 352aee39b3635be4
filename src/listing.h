/*
 * listing.h - the listing of every object of a kind (batches/): every page
 * of the kind's list, each listed object learned by the store, the ids kept
 * for ttl. Bounded: a server that never stops saying has_more, or repeats
 * its pages, cannot make kimifs hold more than the limits below or loop.
 */
#ifndef KIMIFS_LISTING_H
#define KIMIFS_LISTING_H

#include <pthread.h>
#include <stddef.h>

#include "store.h"

#define LISTING_MAX_OBJECTS 200000
#define LISTING_MAX_BYTES   (1024UL << 20)

struct listing {
	struct store *store; /* its kind lists; listed objects go there */
	unsigned page_size;  /* limit for each list page */
	/* Bounds of one listing (objects, kind->bytes of them, pages):
	 * LISTING_MAX_* unless a test sets others after listing_init. */
	size_t max_objects;
	size_t max_bytes;
	size_t max_pages;

	pthread_mutex_t lock; /* guards every field below; taken before the
				 store's lock, never after */
	pthread_cond_t done;  /* broadcast when a fetch of the listing ends */
	char **ids;	      /* the listing, in the server's order */
	size_t nids;
	int valid;
	int inflight;
	double listed_at; /* when the listing was fetched (store clock) */
	double tried;	  /* when the last listing fetch ended */
	int err;	  /* its result */
};

/* Set up an empty listing of store's kind (which has list_page). */
void listing_init(struct listing *l, struct store *store, unsigned page_size);
void listing_destroy(struct listing *l);

/*
 * The ids of every object, in the server's order: the kept listing while
 * younger than the store's ttl, otherwise every page fetched again (one
 * fetch at a time; concurrent callers share it), each listed object
 * learned by the store (store_learn_listing, with the times of its page).
 * Ids the kind finds invalid, and repeated ids, are left out (logged once
 * per listing). The next page is asked for after the page's last id; one
 * sent before, or of an object already listed, ends the listing there. A
 * listing that passes max_objects, max_bytes or max_pages fails with -EIO
 * and a logged reason. Returns 0 with a malloc'd array in *ids (free with
 * listing_free_ids), or -errno when no listing can be had; when a fetch
 * fails for a passing reason (-EIO included) the previous listing is
 * served. The pages are fetched as part of op (NULL: on their own), and a
 * wait for another caller's listing ends with op (-ETIMEDOUT, -EINTR); an
 * interrupted listing is nobody's result.
 */
int listing_get(struct listing *l, struct api_op *op, char ***ids, size_t *n);
void listing_free_ids(char **ids, size_t n);

#endif
