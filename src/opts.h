/*
 * opts.h - the options of a kimifs mount: one struct, filled from the
 * command line by fuse_opt with the table in opts.c, checked as each value
 * is parsed, and passed by pointer to every layer that needs one.
 */
#ifndef KIMIFS_OPTS_H
#define KIMIFS_OPTS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_opt.h>

#define DEFAULT_BASE_URL   "https://api.moonshot.ai"
#define DEFAULT_CACHE_SIZE (1ULL << 30)
#define CACHE_SIZE_MIN	   (1ULL << 20)
#define CACHE_SIZE_MAX	   (1ULL << 40)
#define DEFAULT_WINDOW	   "24h"
/* -o retry_rounds at most: a request that failed 10 rounds in a row fails
 * for a reason of its own (a bad request, a policy); each further round
 * would send it again and wait up to a completion window for the same. */
#define OPTS_RETRY_ROUNDS_MAX 10

struct opts {
	char *base_url;		/* no trailing '/' once opts_check has run */
	char *api_key_file;	/* or NULL: MOONSHOT_API_KEY */
	double cache_ttl;	/* seconds a fetched object stays fresh */
	unsigned page_size;	/* objects per list page */
	double timeout;		/* seconds for one filesystem operation */
	double connect_timeout; /* seconds for one connection attempt */
	unsigned retries;	/* further attempts after a passing failure */
	double poll_interval;	/* longest pause between the polls of a
				   waited batch (batches/<id>/wait) */
	int insecure;		/* skip TLS verification */
	int debug_http;		/* log each request: method, path, status */
	char *cache_dir;	/* the disk cache of file contents, or NULL:
				   $XDG_CACHE_HOME/kimifs, ~/.cache/kimifs */
	unsigned long long cache_size; /* bytes the disk cache may hold */
	char *completion_window;       /* of the batches made by a cp into
					  batches/ or jobs/, and batches/new's
					  default */
	unsigned long long part_size;  /* bytes of a job's part at most */
	unsigned part_requests;	       /* requests of a job's part at most */
	unsigned retry_rounds;	 /* automatic retry rounds of a job at most */
	unsigned events_backlog; /* lines of MOUNT/events before an open */
	char *source;	  /* mount(8)'s first argument ("kimifs"), or NULL */
	char *mountpoint; /* the last non-option argument */
	int show_help;
	int show_version;
};

/*
 * Fill o with the defaults, then with kimifs's options taken out of args
 * (the rest stay for libfuse). Each numeric value is checked as it is
 * parsed: 0, or -1 after one line on stderr naming the option and its range.
 * As mount(8) and fstab call it (mount.fuse3: SOURCE MOUNTPOINT -o ...),
 * two non-option arguments are a source and the mount point; the mount
 * point is put back into args for libfuse. More than two: -1 and one line.
 */
int opts_parse(struct fuse_args *args, struct opts *o);

/* Settle the base URL (-o base_url, else a source that starts with
 * http:// or https://, else MOONSHOT_BASE_URL, else the default) and check
 * it: 0, or -1 after one line on stderr. */
int opts_check(struct opts *o);

/* Print kimifs's own options for --help. */
void opts_usage(const char *prog);

void opts_free(struct opts *o);

#endif
