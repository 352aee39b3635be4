/*
 * opts.c - the option table of kimifs and its checks: every numeric value
 * parsed strictly (the whole string, finite, within the range --help
 * shows), the key refused on the command line, the base URL settled.
 */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_params.h"
#include "events.h"
#include "job_split.h"
#include "jsonl_check.h"

enum { KEY_HELP, KEY_VERSION, KEY_API_KEY, KEY_NUMBER, KEY_SIZE, KEY_WINDOW };

/*
 * The numeric options. fuse_opt's %lf and %u would take "nan", "inf",
 * "0x10", " 5" or "5abc" (and wrap 4294967296 to 0), so each value is taken
 * as a string and parsed here: decimal digits (with an optional fraction
 * for seconds), the whole string, within the range that --help shows.
 */
struct number_opt {
	const char *name;
	size_t offset; /* of a double (seconds) or an unsigned (a count) */
	int is_seconds;
	double min, max;
};

#define AT(n) offsetof(struct opts, n)

static const struct number_opt numbers[] = {
    {"cache_ttl", AT(cache_ttl), 1, 0, 86400},
    {"page_size", AT(page_size), 0, 1, 100},
    {"timeout", AT(timeout), 1, 0.1, 3600},
    {"connect_timeout", AT(connect_timeout), 1, 0.1, 3600},
    {"retries", AT(retries), 0, 0, 10},
    {"poll_interval", AT(poll_interval), 1, 1, 3600},
    {"part_requests", AT(part_requests), 0, 1, JOB_PART_REQUESTS},
    {"retry_rounds", AT(retry_rounds), 0, 0, OPTS_RETRY_ROUNDS_MAX},
    {"events_backlog", AT(events_backlog), 0, 0, EVENTS_KEEP},
};

/* The options of a size in bytes: digits with an optional suffix K, M or G
 * (powers of 1024), from min to max (range: as --help says it). */
struct size_opt {
	const char *name;
	size_t offset; /* of an unsigned long long */
	unsigned long long min, max;
	const char *range;
};

static const struct size_opt sizes[] = {
    {"cache_size", AT(cache_size), CACHE_SIZE_MIN, CACHE_SIZE_MAX,
     "from 1M to 1024G"},
    {"part_size", AT(part_size), 1, JSONL_MAX_BYTES, "from 1 to 100M"},
};

#define KOPT(t, p)                                                             \
	{                                                                      \
		t, offsetof(struct opts, p), 1                                 \
	}

/* "name=" matches any value, the empty one too; a bare "name" is refused
 * as well rather than passed on to libfuse. */
#define NUMBER_KEYS(n)                                                         \
	FUSE_OPT_KEY(n "=", KEY_NUMBER), FUSE_OPT_KEY(n, KEY_NUMBER)

static const struct fuse_opt kimifs_opts[] = {
    KOPT("base_url=%s", base_url),
    KOPT("api_key_file=%s", api_key_file),
    NUMBER_KEYS("cache_ttl"),
    NUMBER_KEYS("page_size"),
    NUMBER_KEYS("timeout"),
    NUMBER_KEYS("connect_timeout"),
    NUMBER_KEYS("retries"),
    NUMBER_KEYS("poll_interval"),
    NUMBER_KEYS("part_requests"),
    NUMBER_KEYS("retry_rounds"),
    NUMBER_KEYS("events_backlog"),
    KOPT("cache_dir=%s", cache_dir),
    FUSE_OPT_KEY("cache_size=", KEY_SIZE),
    FUSE_OPT_KEY("cache_size", KEY_SIZE),
    FUSE_OPT_KEY("part_size=", KEY_SIZE),
    FUSE_OPT_KEY("part_size", KEY_SIZE),
    FUSE_OPT_KEY("completion_window=", KEY_WINDOW),
    FUSE_OPT_KEY("completion_window", KEY_WINDOW),
    KOPT("insecure", insecure),
    KOPT("debug_http", debug_http),
    FUSE_OPT_KEY("api_key=", KEY_API_KEY),
    FUSE_OPT_KEY("api_key", KEY_API_KEY),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END};

/*
 * Parse "name=value" (or a bare "name") of a numeric option into o. The
 * value is decimal digits, for seconds with an optional fraction ("2",
 * "0.5", ".5", "2."): no sign, exponent, hex, white space or anything after
 * it; finite and within [min, max]. 0, or -1 after one line naming the
 * option and its range (not the value, which could be anything).
 */
static int parse_number(struct opts *opts, const char *arg)
{
	static const char digits[] = "0123456789";
	const struct number_opt *o = NULL;
	const char *val = strchr(arg, '='), *p;
	size_t n;
	char *end;
	double d;

	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		size_t len = strlen(numbers[i].name);

		if (strncmp(arg, numbers[i].name, len) == 0 &&
		    (arg[len] == '=' || arg[len] == '\0'))
			o = &numbers[i];
	}
	if (!o)
		return -1; /* not reached: every key of the table is here */
	val = val ? val + 1 : "";
	n = strspn(val, digits);
	p = val + n;
	if (o->is_seconds && *p == '.') {
		n += strspn(p + 1, digits);
		p += 1 + strspn(p + 1, digits);
	}
	if (n == 0 || *p != '\0')
		goto bad;
	errno = 0;
	if (o->is_seconds)
		d = strtod(val, &end);
	else
		d = (double)strtoul(val, &end, 10);
	if (errno == ERANGE || *end != '\0' || !isfinite(d) || d < o->min ||
	    d > o->max)
		goto bad;
	if (o->is_seconds)
		*(double *)(void *)((char *)opts + o->offset) = d;
	else
		*(unsigned *)(void *)((char *)opts + o->offset) = (unsigned)d;
	return 0;
bad:
	if (o->is_seconds)
		fprintf(stderr,
			"kimifs: %s must be a number of seconds from %g to "
			"%g\n",
			o->name, o->min, o->max);
	else
		fprintf(stderr,
			"kimifs: %s must be a whole number from %g to %g\n",
			o->name, o->min, o->max);
	return -1;
}

/* The option of sizes that arg ("name=value" or a bare "name") sets. */
static const struct size_opt *size_opt_of(const char *arg)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = strlen(sizes[i].name);

		if (strncmp(arg, sizes[i].name, len) == 0 &&
		    (arg[len] == '=' || arg[len] == '\0'))
			return &sizes[i];
	}
	return NULL;
}

/*
 * Parse "name=N[K|M|G]" of a size option into o: digits, then at most one
 * suffix (powers of 1024), nothing else; within the option's range. 0, or
 * -1 after one line naming the option and its range.
 */
static int parse_size(struct opts *o, const char *arg)
{
	static const struct {
		char suffix;
		unsigned shift;
	} units[] = {{'K', 10}, {'M', 20}, {'G', 30}};
	const struct size_opt *so = size_opt_of(arg);
	const char *val = strchr(arg, '=');
	unsigned long long v = 0;
	unsigned shift = 0;
	size_t n;

	if (!so)
		return -1; /* not reached: every key of the table is here */
	val = val ? val + 1 : "";
	n = strspn(val, "0123456789");
	if (n == 0 || n > 15)
		goto bad;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long long)(val[i] - '0');
	if (val[n] != '\0') {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (val[n] == units[i].suffix && val[n + 1] == '\0')
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			goto bad;
		shift = units[i].shift;
	}
	if (v > (so->max >> shift))
		goto bad;
	v <<= shift;
	if (v < so->min)
		goto bad;
	*(unsigned long long *)(void *)((char *)o + so->offset) = v;
	return 0;
bad:
	fprintf(stderr,
		"kimifs: %s must be a number of bytes %s, digits with an "
		"optional K, M or G\n",
		so->name, so->range);
	return -1;
}

/*
 * Parse "completion_window=W" into o: a window the API takes (12h to 7d,
 * params_window_hours). 0, or -1 after one line naming the option and
 * what it takes.
 */
static int parse_window(struct opts *o, const char *arg)
{
	const char *val = strchr(arg, '=');
	char *copy;

	val = val ? val + 1 : "";
	if (params_window_hours(val) < 0) {
		fprintf(stderr, "kimifs: completion_window must be hours or "
				"days from 12h to 7d, such as 24h or 3d\n");
		return -1;
	}
	copy = strdup(val);
	if (!copy)
		return -1;
	free(o->completion_window);
	o->completion_window = copy;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct opts *o = data;

	(void)out;
	switch (key) {
	case KEY_NUMBER:
		return parse_number(o, arg) < 0 ? -1 : 0;
	case KEY_SIZE:
		return parse_size(o, arg) < 0 ? -1 : 0;
	case KEY_WINDOW:
		return parse_window(o, arg);
	case KEY_API_KEY:
		fprintf(stderr,
			"kimifs: the API key is never given on the "
			"command line (it would show in ps): set "
			"MOONSHOT_API_KEY or use -o api_key_file=PATH\n");
		return -1;
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		/* SOURCE MOUNTPOINT (mount(8)), or MOUNTPOINT alone. */
		if (o->source) {
			fprintf(stderr, "kimifs: too many arguments: give "
					"[SOURCE] MOUNTPOINT\n");
			return -1;
		}
		o->source = o->mountpoint;
		o->mountpoint = strdup(arg);
		return o->mountpoint ? 0 : -1;
	default:
		return 1; /* keep it for libfuse */
	}
}

void opts_usage(const char *prog)
{
	printf(
	    "usage: %s [options] [SOURCE] MOUNTPOINT\n\n"
	    "Mounts the Moonshot (Kimi) Batch API as a filesystem.\n"
	    "The API key comes from MOONSHOT_API_KEY or api_key_file.\n\n"
	    "kimifs options (S: seconds, digits with an optional fraction; "
	    "N: digits):\n"
	    "    -o base_url=URL        API base URL (MOONSHOT_BASE_URL;\n"
	    "                           default " DEFAULT_BASE_URL ")\n"
	    "    -o api_key_file=PATH   read the API key from PATH (mode "
	    "0600 or stricter,\n"
	    "                           at most 4096 bytes)\n"
	    "    -o cache_ttl=S         seconds a fetched batch stays fresh, "
	    "0 to 86400\n"
	    "                           (default 1; 0: refetch on every "
	    "open)\n"
	    "    -o page_size=N         objects per list page, 1 to 100 "
	    "(default 100)\n"
	    "    -o timeout=S           bound on the requests of one "
	    "operation, retries\n"
	    "                           included, 0.1 to 3600 (default 30)\n"
	    "    -o connect_timeout=S   bound on one connection attempt, "
	    "0.1 to 3600\n"
	    "                           (default 10)\n"
	    "    -o retries=N           retries of 429, 5xx and network "
	    "failures, 0 to 10\n"
	    "                           (default 3)\n"
	    "    -o poll_interval=S     longest pause between the polls of a "
	    "batch waited on\n"
	    "                           (batches/<id>/wait; they start at 1 s "
	    "and double),\n"
	    "                           1 to 3600 (default 30)\n"
	    "    -o cache_dir=PATH      disk cache of file contents (default\n"
	    "                           $XDG_CACHE_HOME/kimifs, else "
	    "~/.cache/kimifs): a new\n"
	    "                           or empty folder, or one kimifs "
	    "tagged\n"
	    "    -o cache_size=N        bytes the disk cache may hold, "
	    "suffix K, M or G,\n"
	    "                           1M to 1024G (default 1G)\n"
	    "    -o completion_window=W completion window of the batches "
	    "made by a cp into\n"
	    "                           batches/ or jobs/ and by batches/new, "
	    "12h to 7d\n"
	    "                           (default " DEFAULT_WINDOW ")\n"
	    "    -o part_size=N         bytes of one part of a job (cp into "
	    "jobs/) at most,\n"
	    "                           suffix K, M or G, 1 to 100M (default "
	    "100M)\n"
	    "    -o part_requests=N     requests of one part of a job at "
	    "most, 1 to 50000\n"
	    "                           (default 50000)\n"
	    "    -o retry_rounds=N      rounds of retry a job whose batches "
	    "all ended gets\n"
	    "                           by itself while requests lack a "
	    "success, 0 to 10\n"
	    "                           (default 0)\n"
	    "    -o events_backlog=N    lines of MOUNT/events before the "
	    "open a reader gets,\n"
	    "                           0 to 10000 (default 0)\n"
	    "    -o insecure            do not verify TLS certificates\n"
	    "    -o debug_http          log each request: method, path, "
	    "status, time\n"
	    "\n"
	    "SOURCE, as mount(8) and fstab give it, is any word (kimifs by "
	    "convention);\n"
	    "one that starts with http:// or https:// is the base URL unless "
	    "-o base_url\n"
	    "is given. kimifs runs up to 1024 worker threads (libfuse's "
	    "-o max_threads\n"
	    "below says 10; another number sets it).\n"
	    "\n",
	    prog);
}

int opts_parse(struct fuse_args *args, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cache_ttl = 1;
	o->page_size = 100;
	o->timeout = 30;
	o->connect_timeout = 10;
	o->retries = 3;
	o->poll_interval = 30;
	o->cache_size = DEFAULT_CACHE_SIZE;
	o->part_size = JSONL_MAX_BYTES;
	o->part_requests = JOB_PART_REQUESTS;
	o->completion_window = strdup(DEFAULT_WINDOW);
	if (!o->completion_window)
		return -1;
	if (fuse_opt_parse(args, o, kimifs_opts, opt_proc) < 0)
		return -1;
	/* libfuse takes the mount point from the arguments. */
	return o->mountpoint ? fuse_opt_add_arg(args, o->mountpoint) : 0;
}

int opts_check(struct opts *o)
{
	const char *env = getenv("MOONSHOT_BASE_URL");
	size_t n;

	if (!o->base_url && o->source &&
	    (strncmp(o->source, "https://", 8) == 0 ||
	     strncmp(o->source, "http://", 7) == 0))
		o->base_url = strdup(o->source);
	if (!o->base_url)
		o->base_url = strdup(env && *env ? env : DEFAULT_BASE_URL);
	if (!o->base_url)
		return -1;
	if (strncmp(o->base_url, "https://", 8) != 0 &&
	    strncmp(o->base_url, "http://", 7) != 0) {
		fprintf(stderr, "kimifs: base_url must start with https:// "
				"or http://\n");
		return -1;
	}
	n = strlen(o->base_url);
	while (n > 0 && o->base_url[n - 1] == '/')
		o->base_url[--n] = '\0';
	for (const char *p = o->base_url; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			fprintf(stderr, "kimifs: base_url holds a space or "
					"control character\n");
			return -1;
		}
	}
	return 0;
}

void opts_free(struct opts *o)
{
	free(o->base_url);
	free(o->api_key_file);
	free(o->cache_dir);
	free(o->completion_window);
	free(o->source);
	free(o->mountpoint);
	memset(o, 0, sizeof(*o));
}
