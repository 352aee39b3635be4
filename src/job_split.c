/*
 * job_split.c - cutting a job's input into parts at line ends under the
 * limits of one batch (job_split.h).
 */
#include "job_split.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void job_split_init(struct job_split *s, uint64_t max_bytes,
		    uint64_t max_requests, size_t max_parts)
{
	memset(s, 0, sizeof(*s));
	s->max_bytes = max_bytes;
	s->max_requests = max_requests;
	s->max_parts = max_parts;
}

/* Close the open part at end. */
static int close_part(struct job_split *s, uint64_t end)
{
	if (s->nparts == s->max_parts)
		return -E2BIG;
	if (util_grow((char **)&s->ends, &s->cap,
		      (s->nparts + 1) * sizeof(*s->ends),
		      16 * sizeof(*s->ends)) < 0)
		return -ENOMEM;
	s->ends[s->nparts++] = end;
	s->start = end;
	s->requests = 0;
	return 0;
}

int job_split_line(struct job_split *s, uint64_t len, int request)
{
	int r = 0;

	if (s->failed)
		return s->failed;
	if (!request) {
		s->at += len; /* trailing white space: see job_split_end */
		return 0;
	}
	if (s->at != s->req_end)
		r = -EINVAL; /* a request after a blank line */
	else if (len > s->max_bytes)
		r = -EFBIG;
	else if (s->requests > 0 && (s->at - s->start + len > s->max_bytes ||
				     s->requests == s->max_requests))
		r = close_part(s, s->at);
	if (r < 0)
		return s->failed = r;
	s->at += len;
	s->req_end = s->at;
	s->requests++;
	return 0;
}

int job_split_end(struct job_split *s)
{
	int r;

	if (s->failed)
		return s->failed;
	if (s->requests == 0)
		return -ENODATA;
	/* Blank lines at the end go with the last part when they fit; else
	 * they are left out (they hold nothing). */
	r = close_part(s,
		       s->at - s->start <= s->max_bytes ? s->at : s->req_end);
	return r < 0 ? (s->failed = r) : 0;
}

void job_split_free(struct job_split *s)
{
	free(s->ends);
	memset(s, 0, sizeof(*s));
}
