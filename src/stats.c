/*
 * stats.c - the counters of a mount rendered as JSON (see stats.h).
 */
#include "stats.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"

static const char *const kind_names[STAT_NKINDS] = {
    "other",  "list",	"retrieve", "cancel",
    "create", "upload", "content",  "delete"};
static const char *const class_names[STAT_NCLASSES] = {"2xx", "4xx", "5xx",
						       "network"};

void stats_init(struct stats *st)
{
	memset(st, 0, sizeof(*st));
	st->started = time(NULL);
}

static uint64_t get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Add name: value to obj; NULL when out of memory. */
static cJSON *put(cJSON *obj, const char *name, uint64_t value)
{
	return cJSON_AddNumberToObject(obj, name, (double)value);
}

int stats_json(const struct stats *st, char **out, size_t *len)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *req = cJSON_AddObjectToObject(root, "requests");
	cJSON *resp = cJSON_AddObjectToObject(root, "responses");
	cJSON *cache = cJSON_AddObjectToObject(root, "cache");
	cJSON *disk = cJSON_AddObjectToObject(root, "disk_cache");
	cJSON *kernel = NULL;
	int ok = root && req && resp && cache && disk;
	char *text = NULL;

	for (int i = 0; ok && i < STAT_NKINDS; i++)
		ok = put(req, kind_names[i], get(&st->requests[i])) != NULL;
	for (int i = 0; ok && i < STAT_NCLASSES; i++)
		ok = put(resp, class_names[i], get(&st->responses[i])) != NULL;
	ok = ok && put(root, "retries", get(&st->retries)) &&
	     put(root, "throttled", get(&st->throttled)) &&
	     put(root, "timeouts", get(&st->timeouts)) &&
	     put(root, "stale_served", get(&st->stale_served)) &&
	     put(cache, "hits", get(&st->hits)) &&
	     put(cache, "misses", get(&st->misses)) &&
	     put(disk, "hits", get(&st->disk_hits)) &&
	     put(disk, "misses", get(&st->disk_misses)) &&
	     put(disk, "bytes", get(&st->disk_bytes)) &&
	     put(root, "bytes_down", get(&st->bytes_down)) &&
	     put(root, "bytes_up", get(&st->bytes_up)) &&
	     put(root, "uptime_s", (uint64_t)(time(NULL) - st->started)) &&
	     (kernel = cJSON_AddObjectToObject(root, "kernel")) &&
	     put(kernel, "lookup", get(&st->fuse_lookups)) &&
	     put(kernel, "getattr", get(&st->fuse_getattrs)) &&
	     put(kernel, "open", get(&st->fuse_opens)) &&
	     put(kernel, "read", get(&st->fuse_reads));
	if (ok)
		text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	*len = strlen(text);
	*out = malloc(*len + 2);
	if (*out) {
		memcpy(*out, text, *len);
		(*out)[(*len)++] = '\n';
		(*out)[*len] = '\0';
	}
	cJSON_free(text);
	return *out ? 0 : -ENOMEM;
}

/* The SIGUSR1 thread: what it logs, and whether it must end. */
static struct {
	pthread_t thread;
	struct stats *st;
	volatile int stop;
	int running;
} usr1;

static void *usr1_run(void *arg)
{
	sigset_t set;
	int sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwait(&set, &sig) == 0 && !usr1.stop) {
		char *text;
		size_t len;

		if (stats_json(usr1.st, &text, &len) < 0)
			continue;
		/* One line: the JSON without its layout. */
		for (char *p = text; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		log_info("stats:%s", text);
		free(text);
	}
	return NULL;
}

int stats_signals_start(struct stats *st)
{
	sigset_t set;
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	r = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (r)
		return -r;
	usr1.st = st;
	usr1.stop = 0;
	r = pthread_create(&usr1.thread, NULL, usr1_run, NULL);
	usr1.running = r == 0;
	return -r;
}

void stats_signals_stop(void)
{
	if (!usr1.running)
		return;
	usr1.stop = 1;
	pthread_kill(usr1.thread, SIGUSR1);
	pthread_join(usr1.thread, NULL);
	usr1.running = 0;
}
