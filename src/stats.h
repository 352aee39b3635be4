/*
 * stats.h - what a mount has cost: requests by kind, answers by class,
 * retries, throttling, time-outs, stale copies served, store hits and
 * misses, bytes moved, requests from the kernel. Counters only (atomic,
 * lock-free, from any thread); MOUNT/stats shows them as JSON.
 */
#ifndef KIMIFS_STATS_H
#define KIMIFS_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What a request is for (struct http_request.kind). */
enum stat_kind {
	STAT_OTHER, /* 0: a request that says nothing else */
	STAT_LIST,
	STAT_RETRIEVE,
	STAT_CANCEL,
	STAT_CREATE,
	STAT_UPLOAD,
	STAT_CONTENT,
	STAT_DELETE,
	STAT_NKINDS
};

/* How an attempt ended. */
enum stat_class { STAT_2XX, STAT_4XX, STAT_5XX, STAT_NETWORK, STAT_NCLASSES };

struct stats {
	time_t started;
	uint64_t requests[STAT_NKINDS];	   /* every attempt sent */
	uint64_t responses[STAT_NCLASSES]; /* how each attempt ended */
	uint64_t retries;		   /* attempts after the first */
	uint64_t throttled;		   /* 429 answers */
	uint64_t timeouts;     /* attempts that got no answer in time */
	uint64_t stale_served; /* copies served after a failed refresh */
	uint64_t hits;	       /* store answers with no request */
	uint64_t misses;       /* store answers that needed a fetch */
	uint64_t bytes_down;
	uint64_t bytes_up;
	uint64_t disk_hits;   /* contents opened from the disk cache */
	uint64_t disk_misses; /* contents that had to be downloaded */
	uint64_t disk_bytes;  /* bytes the disk cache holds now */
	/* Requests of the kernel that reached the daemon (what the kernel's
	 * caches did not answer): lookups, getattrs, opens, reads. */
	uint64_t fuse_lookups;
	uint64_t fuse_getattrs;
	uint64_t fuse_opens;
	uint64_t fuse_reads;
};

/* Add n to the counter c (NULL stats: nothing). */
#define STAT_ADD(st, field, n)                                                 \
	do {                                                                   \
		if (st)                                                        \
			__atomic_add_fetch(&(st)->field, (n),                  \
					   __ATOMIC_RELAXED);                  \
	} while (0)

/* Set the gauge c to v (NULL stats: nothing). */
#define STAT_SET(st, field, v)                                                 \
	do {                                                                   \
		if (st)                                                        \
			__atomic_store_n(&(st)->field, (v), __ATOMIC_RELAXED); \
	} while (0)

void stats_init(struct stats *st);

/*
 * The counters as one JSON object, newline-terminated, malloc'd into *out
 * (length *len). 0 or -ENOMEM.
 */
int stats_json(const struct stats *st, char **out, size_t *len);

/*
 * Write the counters to the log, one line, whenever SIGUSR1 comes: a thread
 * of its own waits for the signal, which is blocked in the calling thread
 * and so in every thread it starts from now on. 0 or -errno. Call
 * stats_signals_stop before st goes away.
 */
int stats_signals_start(struct stats *st);
void stats_signals_stop(void);

#endif
