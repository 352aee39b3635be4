/*
 * events.h - MOUNT/events: one JSON line per change kimifs observes or
 * makes (a batch's status, an upload, a creation, a cancel, a deletion, a
 * retry, a job's status or round, and the failures of these), the last
 * EVENTS_KEEP lines kept in memory, and the readers of that stream. Like
 * the log, one stream per process, so any layer adds its lines. Each
 * reader reads from where it opened (or a backlog of lines before), is
 * told in a line of its own how many it missed when it fell behind the
 * kept ones, and is woken when a line comes; the stream never waits for a
 * reader.
 */
#ifndef KIMIFS_EVENTS_H
#define KIMIFS_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Lines kept in memory; a line is at most EVENTS_LINE_MAX bytes, so the
 * stream holds at most EVENTS_KEEP * EVENTS_LINE_MAX bytes of text. */
#define EVENTS_KEEP	10000
#define EVENTS_LINE_MAX 2048

/*
 * One change, as events_add prints it: {"t":"<UTC time>","kind":kind,
 * then each field that is set (a string not NULL, a number not 0), in
 * this order}. Strings are cut to keep the line within EVENTS_LINE_MAX
 * (an error message first) and made printable UTF-8.
 */
struct event {
	const char *kind;   /* "batch", "job", "upload", "create", ... */
	const char *id;	    /* a batch's id */
	const char *file;   /* a file's id */
	const char *name;   /* a file's or a job's name */
	const char *status; /* the status now */
	const char *was;    /* the status before */
	const char *job;    /* the job a batch is in */
	const char *of;	    /* the batch a retry retries */
	int64_t round;	    /* a job's retry round */
	int64_t batches;    /* batches made */
	int64_t bytes;	    /* an upload's size */
	const char *error;  /* a failure: what went wrong */
};

/* Add ev to the stream and wake every reader waiting for a line. Never
 * blocks on a reader; a line that cannot be made (memory) is lost. */
void events_add(const struct event *ev);

/* The lines added so far since the start (or events_forget). */
uint64_t events_count(void);

struct events_reader;

/*
 * A reader of the stream from now on, after the last `backlog` lines kept
 * (0: none), known by token (events_size). 0 with *out, -ENOTCONN once
 * the stream ended (events_stop), or -ENOMEM.
 */
int events_open(uint64_t token, unsigned backlog, struct events_reader **out);
void events_close(struct events_reader *r);

/*
 * Read up to size bytes of r's stream at offset off (its offsets count
 * from where it opened) into buf: the bytes (> 0), -EAGAIN when there are
 * none yet at off (0 at the end shown, events_end_shown), -EIO when those
 * at off are gone (behind r's own reads),
 * -ENOTCONN once the stream ended. When r fell behind the kept lines, a
 * read at its end gets first a line {"t":..,"kind":"missed","count":N}.
 * A line cut by size is read whole by the next read, even when it is no
 * longer kept. size 0: 0 when a read at r's end would give bytes now,
 * else -EAGAIN (a poll).
 */
ssize_t events_read(struct events_reader *r, char *buf, size_t size,
		    uint64_t off);

/*
 * The size of r's stream shown through its open file (an lseek to its
 * end): the first read at or past that offset with nothing there yet
 * gives the end of file (0), instead of -EAGAIN, as a program that asked
 * where the end is expects (tail reads a file whose size is 0 to its end
 * before it follows it, and a line may come in between).
 */
void events_end_shown(struct events_reader *r, uint64_t size);

/*
 * What fstat shows of the reader known by token: the bytes its stream
 * holds now (never less than it showed before) and the time of the last
 * line. 0 (a token of no reader: 0 bytes), or -ENOTCONN once the stream
 * ended.
 */
int events_size(uint64_t token, uint64_t *size, time_t *mtime);

/*
 * Call done(arg) once, from the thread that adds the next line (or from
 * events_stop), with no lock held: 0 with *token to withdraw it, or
 * -ENOTCONN once the stream ended (done is not called).
 */
int events_wake_add(void (*done)(void *arg), void *arg, uint64_t *token);

/* Withdraw the wake-up token: 0 when withdrawn before done was called,
 * -ENOENT when it is called or was. */
int events_wake_cancel(uint64_t token);

/* End the stream (the mount ends): reads and sizes say -ENOTCONN, every
 * wake-up is called. Returns how many were. */
size_t events_stop(void);

/* Free every line and start over (at exit; tests). No reader may be
 * open. */
void events_forget(void);

#endif
