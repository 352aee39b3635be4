/*
 * log.c - where kimifs's log lines go: stderr in the foreground (with a
 * level prefix), syslog (facility daemon) once daemonized, and a ring of
 * the last LOG_RECENT lines (all but debug ones) for MOUNT/log.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static struct {
	int foreground;
	int debug;
	pthread_mutex_t lock; /* guards the ring */
	char *ring[LOG_RECENT];
	size_t next; /* where the next line goes */
	size_t count;
} log_state = {1, 0, PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

void log_init(int foreground, int debug)
{
	log_state.foreground = foreground;
	log_state.debug = debug;
	if (!foreground)
		openlog("kimifs", LOG_PID, LOG_DAEMON);
}

int log_debug_enabled(void)
{
	return log_state.debug;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Keep line, stamped with the wall-clock time (UTC) and its level, in the
 * ring; the oldest goes when it is full. Memory failures lose the line. */
static void remember(int level, const char *line)
{
	char stamp[32], *entry;
	time_t now = time(NULL);
	struct tm tm;
	size_t len;

	if (!gmtime_r(&now, &tm) ||
	    !strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	len = strlen(stamp) + strlen(level_name(level)) + strlen(line) + 5;
	entry = malloc(len);
	if (!entry)
		return;
	snprintf(entry, len, "%s %s: %s\n", stamp, level_name(level), line);
	pthread_mutex_lock(&log_state.lock);
	free(log_state.ring[log_state.next]);
	log_state.ring[log_state.next] = entry;
	log_state.next = (log_state.next + 1) % LOG_RECENT;
	if (log_state.count < LOG_RECENT)
		log_state.count++;
	pthread_mutex_unlock(&log_state.lock);
}

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One event, one line, no terminal escapes, whatever a server said. */
	util_scrub(line);
	if (log_state.foreground)
		fprintf(stderr, "kimifs: %s: %s\n", level_name(level), line);
	else
		syslog(level, "%s", line);
	if (level != LOG_DEBUG)
		remember(level, line);
}

int log_recent(char **out, size_t *len)
{
	size_t total = 0, at = 0;
	char *text;

	pthread_mutex_lock(&log_state.lock);
	size_t first =
	    (log_state.next + LOG_RECENT - log_state.count) % LOG_RECENT;

	for (size_t i = 0; i < log_state.count; i++)
		total += strlen(log_state.ring[(first + i) % LOG_RECENT]);
	text = malloc(total + 1);
	if (!text) {
		pthread_mutex_unlock(&log_state.lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < log_state.count; i++) {
		const char *l = log_state.ring[(first + i) % LOG_RECENT];
		size_t n = strlen(l);

		memcpy(text + at, l, n);
		at += n;
	}
	pthread_mutex_unlock(&log_state.lock);
	text[at] = '\0';
	*out = text;
	*len = at;
	return 0;
}

void log_forget(void)
{
	pthread_mutex_lock(&log_state.lock);
	for (size_t i = 0; i < LOG_RECENT; i++) {
		free(log_state.ring[i]);
		log_state.ring[i] = NULL;
	}
	log_state.next = log_state.count = 0;
	pthread_mutex_unlock(&log_state.lock);
}
