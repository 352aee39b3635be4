/*
 * job_split.h - where a job's input is cut into parts: at line ends only,
 * each part at most max_bytes bytes and max_requests request lines, as
 * few parts as that allows (a part ends only when the next line would not
 * fit). Fed the lengths of the input's lines in order, so the input is
 * never in memory; keeps one offset per part. Pure: no I/O.
 */
#ifndef KIMIFS_JOB_SPLIT_H
#define KIMIFS_JOB_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Request lines of a part at most: -o part_requests, its default and most. */
#define JOB_PART_REQUESTS 50000

struct job_split {
	uint64_t max_bytes;    /* of one part */
	uint64_t max_requests; /* request lines of one part */
	size_t max_parts;      /* parts in all */
	uint64_t *ends;	       /* ends[i]: the offset where part i ends */
	size_t nparts;	       /* parts closed so far */
	size_t cap;
	uint64_t start;	   /* where the open part starts */
	uint64_t at;	   /* the end of the lines fed so far */
	uint64_t req_end;  /* the end of the last request line */
	uint64_t requests; /* request lines in the open part */
	int failed;	   /* the first error, sticky (-errno) */
};

/* Start a split into parts of at most max_bytes bytes and max_requests
 * requests, at most max_parts parts. Never fails. */
void job_split_init(struct job_split *s, uint64_t max_bytes,
		    uint64_t max_requests, size_t max_parts);

/*
 * The next line of the input: len bytes with its newline (the last line
 * may have none), request whether it holds a request (else it is blank:
 * the upload check allows those only after the last request). 0, or
 * -EFBIG when a request line alone is over max_bytes, -E2BIG when more
 * than max_parts parts would be needed, -EINVAL for a request after a
 * blank line, -ENOMEM; the first error stays (later calls return it).
 */
int job_split_line(struct job_split *s, uint64_t len, int request);

/*
 * End of the input: closes the last part (with the blank lines at the end
 * when they fit in it; else they are left out). 0 with the parts in
 * ends[0 .. nparts - 1] (part i runs from ends[i - 1], or 0, to ends[i]),
 * -ENODATA when no line holds a request, or the first error.
 */
int job_split_end(struct job_split *s);

void job_split_free(struct job_split *s);

#endif
