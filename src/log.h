/*
 * log.h - kimifs logging: one line per event, to stderr when running in the
 * foreground and to syslog once daemonized. Nothing logged may contain the
 * API key; callers pass only URLs paths, statuses and server messages.
 */
#ifndef KIMIFS_LOG_H
#define KIMIFS_LOG_H

#include <syslog.h>

/* Choose the sink and verbosity; call once before any other log call. */
void log_init(int foreground, int debug);

/* Whether debug lines are wanted (-d). */
int log_debug_enabled(void);

/* Log one printf-style line at a syslog level (LOG_ERR, LOG_WARNING...). */
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_debug_enabled())                                       \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
