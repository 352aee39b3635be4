/*
 * test_events.c - unit tests of MOUNT/events' stream (events.h): the lines
 * as printed, a reader from its open on, a backlog, a line read in pieces,
 * a reader that fell behind (the missed line, then the oldest kept), the
 * size fstat shows, wake-ups and their withdrawal, the end of the stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "events.h"

static int woken;

static void wake(void *arg)
{
	woken += *(int *)arg;
}

/* Add a batch line for id. */
static void batch(const char *id)
{
	events_add(&(struct event){.kind = "batch",
				   .id = id,
				   .status = "completed",
				   .was = "in_progress"});
}

/* Everything r has at off on, into buf (size bytes): its length. */
static size_t drain(struct events_reader *r, char *buf, size_t size,
		    uint64_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < size - 1 &&
	       (n = events_read(r, buf + got, size - 1 - got, off + got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	return got;
}

static size_t lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_lines(void)
{
	struct events_reader *r;
	char buf[4096];
	uint64_t size;
	time_t mtime;

	CHECK(events_open(7, 0, &r) == 0);
	CHECK(events_read(r, buf, sizeof(buf), 0) == -EAGAIN);
	CHECK(events_read(r, buf, 0, 0) == -EAGAIN);
	CHECK(events_size(7, &size, &mtime) == 0 && size == 0);
	events_add(&(struct event){.kind = "upload",
				   .file = "file-1",
				   .name = "q\x1b\"\xff.jsonl",
				   .bytes = 4711});
	batch("batch_1");
	events_add(&(struct event){
	    .kind = "cancel", .id = "batch_2", .error = "429: slow down"});
	CHECK(events_read(r, buf, 0, 0) == 0);
	CHECK(events_size(7, &size, &mtime) == 0 && size > 100 && mtime > 0);
	CHECK(drain(r, buf, sizeof(buf), 0) == size);
	CHECK(lines(buf) == 3);
	CHECK(strncmp(buf, "{\"t\":\"20", 8) == 0);
	CHECK(strstr(buf,
		     "Z\",\"kind\":\"upload\",\"file\":\"file-1\",\"name\":"
		     "\"q?\\\"?.jsonl\",\"bytes\":4711}\n") != NULL);
	CHECK(strstr(buf, "\"kind\":\"batch\",\"id\":\"batch_1\",\"status\":"
			  "\"completed\",\"was\":\"in_progress\"}\n") != NULL);
	CHECK(strstr(buf, "\"kind\":\"cancel\",\"id\":\"batch_2\",\"error\":"
			  "\"429: slow down\"}\n") != NULL);
	CHECK(strstr(buf, "upload") < strstr(buf, "batch_1"));
	/* A read at the end an lseek showed is the end of file, once. */
	events_end_shown(r, size);
	CHECK(events_read(r, buf, sizeof(buf), size) == 0);
	CHECK(events_read(r, buf, sizeof(buf), size) == -EAGAIN);
	events_end_shown(r, size + 1);
	CHECK(events_read(r, buf, sizeof(buf), size) == -EAGAIN);
	events_end_shown(r, 0);
	CHECK(events_read(r, buf, sizeof(buf), size) == 0);
	CHECK(events_read(r, buf, sizeof(buf), size) == -EAGAIN);
	/* Read again where it was: the same bytes. */
	CHECK(events_read(r, buf, 10, 5) == 10);
	CHECK(events_read(r, buf, 10, size) == -EAGAIN);
	/* A reader opened now starts after them; one with a backlog, that
	 * many lines before. */
	{
		struct events_reader *late, *back;

		CHECK(events_open(8, 0, &late) == 0);
		CHECK(events_read(late, buf, sizeof(buf), 0) == -EAGAIN);
		CHECK(events_open(9, 2, &back) == 0);
		CHECK(drain(back, buf, sizeof(buf), 0) > 0 && lines(buf) == 2);
		CHECK(strstr(buf, "batch_1") && strstr(buf, "batch_2"));
		CHECK(events_size(9, &size, &mtime) == 0 &&
		      size == strlen(buf));
		events_close(late);
		events_close(back);
	}
	events_close(r);
	/* A token of no reader: empty. */
	CHECK(events_size(8, &size, &mtime) == 0 && size == 0);
}

/* A line read in pieces is read whole, even once it left the ring. */
static void test_pieces(void)
{
	struct events_reader *r;
	char buf[4096], first[4096];
	size_t len;
	ssize_t n;

	events_forget();
	CHECK(events_open(1, 0, &r) == 0);
	batch("batch_piece");
	n = events_read(r, buf, 10, 0);
	CHECK(n == 10);
	memcpy(first, buf, 10);
	for (int i = 0; i < EVENTS_KEEP + 5; i++)
		batch("batch_x");
	/* The rest of it, the missed line, and a piece of the next. */
	len = drain(r, buf, 400, 10);
	CHECK(len == 399);
	memcpy(first + 10, buf, len + 1);
	CHECK(strstr(first, "batch_piece\",\"status\":\"completed\","
			    "\"was\":\"in_progress\"}\n{\"t\":") != NULL);
	CHECK(lines(first) >= 2);
	CHECK(strstr(first, "\"kind\":\"missed\",\"count\":5}\n{") != NULL);
	events_close(r);
}

/* A reader that fell behind: one missed line, then the oldest kept; the
 * size it showed never goes down. */
static void test_behind(void)
{
	struct events_reader *r;
	static char buf[4 << 20];
	uint64_t size, before;
	time_t mtime;
	size_t len;

	events_forget();
	CHECK(events_open(2, 0, &r) == 0);
	for (int i = 0; i < EVENTS_KEEP + 123; i++) {
		char id[32];

		snprintf(id, sizeof(id), "batch_%d", i);
		batch(id);
	}
	CHECK(events_count() == EVENTS_KEEP + 123);
	CHECK(events_size(2, &before, &mtime) == 0);
	len = drain(r, buf, sizeof(buf), 0);
	CHECK(lines(buf) == EVENTS_KEEP + 1);
	CHECK(strstr(buf, "\"kind\":\"missed\",\"count\":123}\n") <
	      strchr(buf, '\n'));
	CHECK(strstr(buf, "\"batch_122\"") == NULL);
	CHECK(strstr(buf, "\"batch_123\"") != NULL);
	CHECK(events_size(2, &size, &mtime) == 0 && size >= len &&
	      size >= before);
	/* Caught up: the next line follows. */
	batch("batch_next");
	CHECK(drain(r, buf, sizeof(buf), len) > 0 && lines(buf) == 1 &&
	      strstr(buf, "batch_next"));
	events_close(r);
}

static void test_wakes(void)
{
	struct events_reader *r;
	uint64_t a, b, size;
	int one = 1, ten = 10;
	char buf[64];
	time_t mtime;

	events_forget();
	woken = 0;
	CHECK(events_wake_add(wake, &one, &a) == 0);
	CHECK(events_wake_add(wake, &ten, &b) == 0);
	CHECK(events_wake_cancel(b) == 0);
	CHECK(events_wake_cancel(b) == -ENOENT);
	batch("batch_w");
	CHECK(woken == 1);
	CHECK(events_wake_cancel(a) == -ENOENT);
	batch("batch_w2");
	CHECK(woken == 1); /* once */
	CHECK(events_open(3, 0, &r) == 0);
	CHECK(events_wake_add(wake, &ten, &a) == 0);
	CHECK(events_stop() == 1 && woken == 11);
	CHECK(events_read(r, buf, sizeof(buf), 0) == -ENOTCONN);
	CHECK(events_size(3, &size, &mtime) == -ENOTCONN);
	CHECK(events_wake_add(wake, &ten, &a) == -ENOTCONN);
	events_close(r);
	CHECK(events_open(4, 0, &r) == -ENOTCONN && r == NULL);
	events_forget();
	CHECK(events_open(4, 0, &r) == 0);
	events_close(r);
}

/* Add a line of kind with every string field s, and error. */
static void add_all(const char *kind, const char *s, const char *error)
{
	events_add(&(struct event){.kind = kind,
				   .name = s,
				   .file = s,
				   .id = s,
				   .job = s,
				   .of = s,
				   .status = s,
				   .was = s,
				   .error = error});
}

/* Long strings are cut, so a line stays within EVENTS_LINE_MAX. */
static void test_bounds(void)
{
	struct events_reader *r;
	char big[8192], buf[8192];

	events_forget();
	memset(big, 'e', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(events_open(5, 0, &r) == 0);
	add_all("upload", big, big);
	CHECK(drain(r, buf, sizeof(buf), 0) <= EVENTS_LINE_MAX);
	CHECK(lines(buf) == 1);
	/* Quotes and backslashes print as two bytes each: still one line
	 * within the bound (a line past it could not be printed). */
	memset(big, '"', sizeof(big) / 2);
	memset(big + sizeof(big) / 2, '\\', sizeof(big) / 2 - 1);
	add_all(big, big, big + sizeof(big) / 2 - 3);
	CHECK(events_count() == 2);
	CHECK(drain(r, buf, sizeof(buf), strlen(buf)) > 1000);
	CHECK(strlen(buf) <= EVENTS_LINE_MAX && lines(buf) == 1);
	CHECK(strstr(buf, "\"error\":\"\\\"\\\"\\\"\\\\\\\\") != NULL);
	events_close(r);
	events_forget();
}

int main(void)
{
	test_lines();
	test_pieces();
	test_behind();
	test_wakes();
	test_bounds();
	return check_done("test_events");
}
