/*
 * events_lines.h - for the unit tests of the modules that add lines to
 * MOUNT/events (events.h): whether a reader's new lines are exactly the
 * ones wanted, each compared whole but for its "t" field.
 */
#ifndef KIMIFS_EVENTS_LINES_H
#define KIMIFS_EVENTS_LINES_H

#include <stdio.h>
#include <string.h>

#include "events.h"

/* The length of {"t":"2026-12-04T14:05:18Z", before a line's fields. */
#define EVENTS_LINES_T 28

/*
 * Whether the lines r holds from *at on are exactly want: each line of
 * want written {"kind":...}\n, without the "t" field the stream's line
 * starts with (a UTC time, checked for its form). *at moves past what was
 * read; both printed on stderr when they differ.
 */
static inline int events_lines_are(struct events_reader *r, uint64_t *at,
				   const char *want)
{
	char buf[8192];
	const char *p = buf, *q = want;
	size_t got = 0;
	ssize_t n;
	int ok = 1;

	while (got < sizeof(buf) - 1 &&
	       (n = events_read(r, buf + got, sizeof(buf) - 1 - got,
				*at + got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	*at += got;
	while (ok && *p) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end + 1 - p) - EVENTS_LINES_T : 0;

		ok = end && end - p > EVENTS_LINES_T &&
		     strncmp(p, "{\"t\":\"20", 8) == 0 &&
		     strncmp(p + 25, "Z\",", 3) == 0 && q[0] == '{' &&
		     strlen(q + 1) >= len &&
		     strncmp(p + EVENTS_LINES_T, q + 1, len) == 0;
		if (ok) {
			q += 1 + len;
			p = end + 1;
		}
	}
	ok = ok && *q == '\0';
	if (!ok)
		fprintf(stderr, "lines:\n%s\nwanted:\n%s\n", buf, want);
	return ok;
}

#endif
