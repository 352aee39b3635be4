/*
 * store.h - the object store: snapshots of one kind of server object by id,
 * how old they are, and who waits for them. It decides when an object must
 * be fetched again (ttl; final objects never), makes concurrent readers
 * share one fetch, remembers 404s for ttl, never lets an older answer
 * replace a newer one, and gives each entry a change stamp that readers can
 * wait on. What an object is and how it ages is its kind's descriptor
 * (kind.h), where it comes from the store's source (struct store_source);
 * the store knows nothing of HTTP, FUSE or batches. No lock is held across a
 * fetch.
 */
#ifndef KIMIFS_STORE_H
#define KIMIFS_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "clock.h"
#include "kind.h"
#include "stats.h"

/* The freshness a reader asks of the store. */
enum store_mode {
	STORE_ANY,   /* any cached copy; fetch only when there is none */
	STORE_FRESH, /* a copy younger than ttl (final objects: any) */
	STORE_FORCE, /* fetch now (final objects: the cached copy) */
};

struct store_entry;
struct store_waiter;

/* One page of a kind's listing; see store_source.list_page. */
struct store_page {
	void **items; /* objects, one reference each; NULL once taken */
	size_t nitems;
	char *last_id; /* malloc'd id of the page's last object, listed or not
			  (the cursor for the next page); may be NULL */
	int has_more;
};

/*
 * Where a store's objects come from: the API (store_api, store_object.c),
 * or a test's stub. ctx is the source's own (the API client); kind is the
 * store's. What an object is, how it ages and compares, is its kind's
 * descriptor (kind.h).
 */
struct store_source {
	/* Fetch object id as part of op (NULL: on its own): 0 with one
	 * reference in *out, or -errno with err filled in (-ENOENT: the
	 * server has no such object; -EINTR: op was interrupted). Bounded in
	 * time; called with no lock held. */
	int (*fetch)(void *ctx, const struct object_kind *kind, struct op *op,
		     const char *id, void **out, struct api_error *err);
	/* For listings (listing.h); NULL for sources that cannot list. One
	 * page of every object, after cursor after (NULL: the first), at
	 * most limit objects: 0 with page filled, or -errno with err. */
	int (*list_page)(void *ctx, const struct object_kind *kind,
			 struct op *op, const char *after, unsigned limit,
			 struct store_page *page, struct api_error *err);
	/* Make every fetch under way end at once (for store_destroy). */
	void (*stop)(void *ctx);
};

struct store {
	const struct object_kind *kind;	   /* what its objects are */
	const struct store_source *source; /* where they come from */
	void *ctx;	     /* the source's, passed to its functions */
	double ttl;	     /* seconds a fetched object stays fresh */
	double timeout;	     /* seconds a caller waits behind another's probe */
	struct stats *stats; /* hits, misses, stale copies; or NULL */
	/* What the store reads time by and waits on: real_clock unless a
	 * test sets another after store_init. Deadlines (an op's too) and
	 * the times given to store_put count on it. */
	const struct clock *clock;
	/* Called with the id whenever an entry's change stamp is raised,
	 * without the store's lock held (after the change is visible to
	 * store_get); NULL: nobody is told. Set before the store is used. */
	void (*on_change)(void *arg, const char *id);
	void *on_change_arg;

	pthread_mutex_t lock; /* guards every field below and every entry */
	pthread_condattr_t condattr; /* waits use the store clock */
	struct store_entry **buckets;
	size_t nbuckets;
	size_t nentries;
	size_t inserts; /* since the last sweep of dead entries */
	uint64_t stamp; /* the last change stamp given to an entry */

	/* Fetches of ids with no object (names never seen) go one at a time:
	 * the probe (see store_get). */
	int probe_inflight;
	int probe_err;		    /* the last probe found the server down:
				       its -errno; 0 once anything answers */
	int probe_last;		    /* the result of the last probe */
	struct api_error probe_why; /* its reason */
	double probe_ended;	    /* when the last probe ended */
	int probe_threads;	    /* probes running in the background */
	struct store_waiter *probe_waiters; /* woken when a probe ends */
};

/* Set up an empty store of kind's objects from source (with its ctx); 0
 * or -ENOMEM. */
int store_init(struct store *s, const struct object_kind *kind,
	       const struct store_source *source, void *ctx, double ttl,
	       double timeout);
/* Free every entry. Probes still running in the background are stopped
 * (source->stop) and waited for; nobody may be waiting in the store. */
void store_destroy(struct store *s);

/* Seconds now on s's clock, which stamps requests and deadlines: take it
 * just before sending a request whose answer goes to store_put. */
double store_clock(const struct store *s);

/*
 * Get object id as mode asks, fetching it when needed; concurrent callers
 * share one fetch. Returns 0 with a new reference in *out, -ENOENT when the
 * server says there is no such object (remembered for ttl), or another
 * -errno from the fetch, with the reason in err when err is not NULL. When
 * a fetch in STORE_ANY or STORE_FRESH mode fails for a passing reason
 * (api_error_transient) and a copy exists, the copy is served and the
 * failure logged; STORE_FORCE reports the failure instead, also when it
 * shared a fetch that another reader started. *out is the newest object the
 * store holds, which is not the fetched one when that answer was older (see
 * store_put).
 *
 * An id with no object (a name never seen, or a 404 older than ttl) is
 * fetched by one probe at a time in STORE_ANY and STORE_FRESH mode: a
 * caller waits for the probe under way, and when the last probe found the
 * server down (no answer in time, no connection, a 5xx), fails at once with
 * that failure while a probe is under way or when one ended since it asked;
 * the first caller after that sends its request in the background and
 * waits for the answer at most 1 s. Waits behind a probe end by the
 * store's timeout (-ETIMEDOUT).
 *
 * The fetch is part of op (NULL: on its own), and so are the waits: they
 * end at op's deadline (-ETIMEDOUT; but a wait on another caller's fetch
 * then serves the stored copy, as a failed refresh would, except in
 * STORE_FORCE mode) or when op is interrupted (-EINTR). A
 * fetch that ended because its op was interrupted is nobody else's
 * result: the callers that shared it fetch again.
 */
int store_get(struct store *s, struct op *op, const char *id,
	      enum store_mode mode, void **out, struct api_error *err);

/*
 * Store an object the server just returned (e.g. from a cancel) to a
 * request sent at `sent` (store_clock(s)), if it is newer than the stored
 * one: yes when its request was sent after the stored one's was answered;
 * no when it was answered before that one was sent; when the two requests
 * overlapped, only when its rank is later (kind->rank). store_get and
 * listings apply the same rule. Takes no reference of obj.
 */
void store_put(struct store *s, void *obj, double sent);

/* One object of a listing and the request of the page it came in. */
struct store_item {
	void *obj; /* one reference; the store takes it (NULL after) */
	double sent;
	double answered;
	double checked; /* when the listing ended: the copy's ttl counts from
			   here (0: from answered) */
};

/*
 * Learn the n objects of a listing, each as store_put does with the times
 * of its page (a kept copy is fresh from its item's checked time), taking
 * their references; the server answered, so the probe
 * no longer counts it down. Returns 0, or -ENOMEM (items not taken keep
 * their reference).
 */
int store_learn_listing(struct store *s, struct store_item *items, size_t n);

/*
 * Whether id has a copy that is not final and is as old as ttl or older
 * (counted from when it was last known current): a STORE_FRESH read of it
 * would fetch it again. Sends nothing.
 */
int store_stale(struct store *s, const char *id);

/* Whether the copy of id the store holds is final. Sends nothing. */
int store_known_final(struct store *s, const char *id);

/*
 * The change stamp of entry id: 0 for an id never seen; raised (from one
 * store-wide sequence, so it only grows) whenever the entry's object is
 * replaced by one that says something else (kind->same), appears, or
 * becomes gone (404). To follow an object, read the stamp first, then the
 * object, then store_wait for that stamp. id NULL: the latest stamp of
 * any entry (whether anything in the store changed).
 */
uint64_t store_changes(struct store *s, const char *id);

/*
 * Wait until the change stamp of id passes seen, or the store clock reaches
 * deadline (or op's; op may be NULL). Sends nothing: it waits for others'
 * fetches and answers. Returns 0 with the stamp in *now (may be NULL),
 * -ETIMEDOUT when the deadline passed first (*now: the stamp then), -EINTR
 * when op was interrupted, or -ENOMEM. Only the waiters of this entry are
 * woken by its changes.
 */
int store_wait(struct store *s, const struct op *op, const char *id,
	       uint64_t seen, double deadline, uint64_t *now);

#endif
