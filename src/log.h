/*
 * log.h - kimifs logging: one line per event, to stderr when running in the
 * foreground and to syslog once daemonized. Nothing logged may contain the
 * API key; callers pass only URLs paths, statuses and server messages.
 */
#ifndef KIMIFS_LOG_H
#define KIMIFS_LOG_H

#include <stddef.h>
#include <syslog.h>

/* Lines MOUNT/log keeps. */
#define LOG_RECENT 1000

/* Choose the sink and verbosity; call once before any other log call. */
void log_init(int foreground, int debug);

/* Whether debug lines are wanted (-d). */
int log_debug_enabled(void);

/* Log one printf-style line at a syslog level (LOG_ERR, LOG_WARNING...). */
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The last LOG_RECENT lines logged at LOG_INFO or above, oldest first, each
 * "YYYY-MM-DDTHH:MM:SSZ level: text\n" (UTC): 0 with a malloc'd,
 * NUL-terminated copy in *out and its length in *len, or -ENOMEM.
 */
int log_recent(char **out, size_t *len);

/* Free the kept lines (at exit). */
void log_forget(void);

#define log_err(...)  log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_debug_enabled())                                       \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
