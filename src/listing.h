/*
 * listing.h - the listing of every object of a kind (batches/): the pages
 * of the kind's list, newest first, each listed object learned by the
 * store, the ids kept for ttl counted from the listing's end (or for as
 * long as the listing took, when that is longer). A refresh
 * stops early once a page holds only objects already known as final (the
 * rest of the listing cannot have changed); a full listing comes first,
 * every full_every seconds, and when asked for. Bounded: a server that
 * never stops saying has_more, or repeats its pages, cannot make kimifs
 * hold more than the limits below or loop.
 */
#ifndef KIMIFS_LISTING_H
#define KIMIFS_LISTING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define LISTING_MAX_OBJECTS 200000
#define LISTING_MAX_BYTES   (1024UL << 20)
/* Seconds between full listings (struct listing.full_every; a test may
 * set another after listing_init). */
#define LISTING_FULL_EVERY 600.0

/* A set of borrowed ids: open addressing. */
struct idset {
	const char **slots;
	size_t cap;
	size_t n;
};

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
	struct idset members; /* the same ids, as a set */
	int valid;
	uint64_t version; /* raised whenever ids change (from 1) */
	int inflight;
	double listed_at; /* when the last page of the listing was answered
			     (store clock): its age counts from there */
	double extra;	  /* how much longer than ttl the listing took (0:
			     not longer): it stays young that much longer */
	double tried;	  /* when the last listing fetch ended */
	int err;	  /* its result */
	/* Full listings (no early stop): at the first listing, every
	 * full_every seconds (0: always), and on listing_refresh(full). */
	double full_every;
	double full_at;	     /* when the last full listing ended */
	double full_started; /* when the last one that ended began */
	int full_err;	     /* its result */
	unsigned pages;	     /* pages the last fetch asked for */
	int stopped;	     /* whether it stopped early */
};

/* Set up an empty listing of store's kind (its source has list_page). */
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
int listing_get(struct listing *l, struct op *op, char ***ids, size_t *n);
void listing_free_ids(char **ids, size_t n);

/*
 * listing_get, but when the listing it would give is the one of version
 * *version (listing.version), 0 with *ids NULL and *n 0: nothing copied.
 * Otherwise *version is set to the version of the ids given.
 */
int listing_get_since(struct listing *l, struct op *op, uint64_t *version,
		      char ***ids, size_t *n);

/*
 * listing_get_since of the kept listing, whatever its age, never fetched:
 * -ENODATA when there is none yet.
 */
int listing_kept_since(struct listing *l, uint64_t *version, char ***ids,
		       size_t *n);

/*
 * Refresh the listing as listing_get does when it is old, whatever its
 * age: 0 once a fetch of it that ended at or after `asked` (store clock)
 * succeeded, shared with concurrent callers (one fetch at a time), or the
 * -errno of that fetch (the previous listing stays). With full, the fetch
 * must have begun at or after asked and list every page (no early stop).
 * Waits end with op (-ETIMEDOUT, -EINTR).
 *
 * The early stop: a fetch that is not full stops after a page (newest
 * first) whose objects are all final and all already known as final by the
 * store, once every id of the previous listing whose copy is not final has
 * been seen in this fetch, provided the page's cursor is an id of the
 * previous listing. The listing is then the pages fetched followed by the
 * previous listing's ids after that cursor, less any seen already. Safe
 * because the server never deletes objects, final objects never change,
 * and new objects come first.
 */
int listing_refresh(struct listing *l, struct op *op, double asked, int full);

/*
 * Put id first in the kept listing (an object this mount just created: the
 * newest), unless it is there already or there is no kept listing yet (the
 * next listing brings it). Its age does not change. 0 or -ENOMEM.
 */
int listing_add(struct listing *l, const char *id);

/* Whether id is in the kept listing (of whatever age). */
int listing_has(struct listing *l, const char *id);

#endif
