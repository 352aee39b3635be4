/*
 * progress.h - the one-line picture of work under way that `progress`
 * files show (a job's, a batch's), made for watch(1):
 *
 *   [#######.....] 58%  5,812/10,000 done, 37 failed, 3 of 12 batches
 *   running, about 14 min left
 *
 * (one line). Done counts every request that ended, failed among them;
 * the estimate comes from the rate so far and is left out before there is
 * one. Pure.
 */
#ifndef KIMIFS_PROGRESS_H
#define KIMIFS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_BAR	  12  /* cells of the bar */
#define PROGRESS_LINE_MAX 200 /* bytes of a line, its newline and NUL */

struct progress {
	uint64_t total;	  /* requests */
	uint64_t done;	  /* requests that ended, failed ones included */
	uint64_t failed;  /* of done */
	unsigned batches; /* batches of the work */
	unsigned running; /* of those, not final */
	double started;	  /* when the work began (Unix time) */
	double now;	  /* when it is looked at */
};

/* The line of p, with its newline, into out (PROGRESS_LINE_MAX bytes). */
void progress_line(const struct progress *p, char *out, size_t size);

/* The seconds left by the rate so far, or -1 when there is no estimate
 * (nothing running, nothing done yet, all done). */
double progress_left(const struct progress *p);

/* n with a comma every three digits ("5,812") into out (32 bytes). */
void progress_count(uint64_t n, char *out, size_t size);

#endif
