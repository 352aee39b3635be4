/*
 * log.c - where kimifs's log lines go: stderr in the foreground (with a
 * level prefix), syslog (facility daemon) once daemonized.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static struct {
	int foreground;
	int debug;
} log_state = {1, 0};

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
}
