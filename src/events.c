/*
 * events.c - the stream of MOUNT/events (events.h): the lines, printed
 * with cJSON and kept in a ring of EVENTS_KEEP by sequence number, each
 * with its offset in the stream of every line since the start; the open
 * readers, each a window onto that stream; the wake-ups of waiting reads
 * and polls. One lock guards it all, and nothing is called under it.
 */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

/* The longest strings a line carries: an error message, a name (of a
 * file, a job), an id or a status. With the keys and the time, a line of
 * every field stays within EVENTS_LINE_MAX. */
#define ERROR_MAX      512
#define NAME_MAX_BYTES 256
#define ID_MAX_BYTES   128

struct line {
	uint64_t at; /* its offset in the stream since the start */
	char *text;  /* newline-terminated */
	size_t len;
};

/*
 * A reader's stream is the stream since the start seen through a window:
 * its offsets from seg_local on are the stream's from seg_global on. When
 * it fell behind the kept lines, a line saying how many it missed is put
 * at [missed_at, seg_local) and the window moves to the oldest kept line.
 */
struct events_reader {
	struct events_reader *prev, *next;
	uint64_t token;
	uint64_t seg_local, seg_global;
	uint64_t front; /* past the last byte it read */
	uint64_t seq;	/* the first line it has not read whole */
	char missed[128];
	size_t missed_len;
	uint64_t missed_at;
	/* The line its last read stopped inside, whole (it may go from the
	 * ring before the rest is read): line part_seq at part_at. */
	char *part;
	size_t part_len;
	uint64_t part_at, part_seq;
	uint64_t shown;	    /* the largest size events_size showed */
	uint64_t end_shown; /* events_end_shown's, or UINT64_MAX */
};

struct wake {
	struct wake *next;
	void (*done)(void *arg);
	void *arg;
	uint64_t token;
};

static struct {
	pthread_mutex_t lock;
	struct line ring[EVENTS_KEEP]; /* line seq at ring[seq % KEEP] */
	uint64_t first, next;	       /* the kept lines: [first, next) */
	uint64_t end;		       /* the stream's length */
	time_t mtime;		       /* when the last line came */
	int stopped;
	struct events_reader *readers;
	struct wake *wakes;
	uint64_t tokens;
} ev = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The UTC time now as the lines say it. */
static void stamp(char *out, size_t size, time_t now)
{
	struct tm tm;

	if (!gmtime_r(&now, &tm) ||
	    !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "%lld", (long long)now);
}

/* s made a line's string: at most max bytes once printed (a quote or a
 * backslash prints as two), cut on a character, each byte that is not
 * well-formed UTF-8 and each control character made '?'. A malloc'd copy,
 * or NULL. */
static char *printable(const char *s, size_t max)
{
	size_t n = strlen(s), at = 0, out = 0, printed = 0;
	char *t = malloc((n < max ? n : max) + 1);

	if (!t)
		return NULL;
	while (at < n) {
		size_t c = util_utf8_len(s + at, n - at), cost;

		if (c == 1 && ((unsigned char)s[at] < 0x20 || s[at] == 0x7f))
			c = 0;
		cost = c == 1 && (s[at] == '"' || s[at] == '\\') ? 2
		       : c					 ? c
								 : 1;
		if (printed + cost > max)
			break;
		printed += cost;
		if (c == 0) {
			t[out++] = '?';
			at++;
		} else {
			memcpy(t + out, s + at, c);
			out += c;
			at += c;
		}
	}
	t[out] = '\0';
	return t;
}

/* The string fields of struct event, in the order a line gives them. */
static const struct {
	const char *key;
	size_t at;
	size_t max;
} strings[] = {
    {"id", offsetof(struct event, id), ID_MAX_BYTES},
    {"file", offsetof(struct event, file), ID_MAX_BYTES},
    {"name", offsetof(struct event, name), NAME_MAX_BYTES},
    {"status", offsetof(struct event, status), ID_MAX_BYTES},
    {"was", offsetof(struct event, was), ID_MAX_BYTES},
    {"job", offsetof(struct event, job), NAME_MAX_BYTES},
    {"of", offsetof(struct event, of), ID_MAX_BYTES},
};

static const struct {
	const char *key;
	size_t at;
} numbers[] = {
    {"round", offsetof(struct event, round)},
    {"batches", offsetof(struct event, batches)},
    {"bytes", offsetof(struct event, bytes)},
};

/* Add key: s (made printable, at most max bytes) to o. 0 or -ENOMEM. */
static int add_string(cJSON *o, const char *key, const char *s, size_t max)
{
	char *t = printable(s, max);
	int r = t && cJSON_AddStringToObject(o, key, t) ? 0 : -ENOMEM;

	free(t);
	return r;
}

/* ev's line stamped now: malloc'd, newline-terminated (*len bytes), or
 * NULL. Printed into a buffer of the largest line, so the only memory it
 * keeps is the line's own. */
static char *print(const struct event *e, time_t now, size_t *len)
{
	cJSON *o = cJSON_CreateObject();
	char t[32], text[EVENTS_LINE_MAX + 1], *line = NULL;
	int r = o ? 0 : -ENOMEM;

	stamp(t, sizeof(t), now);
	if (r == 0 && !cJSON_AddStringToObject(o, "t", t))
		r = -ENOMEM;
	if (r == 0)
		r = add_string(o, "kind", e->kind, ID_MAX_BYTES);
	for (size_t i = 0; r == 0 && i < sizeof(strings) / sizeof(*strings);
	     i++) {
		const char *s =
		    *(const char *const *)(const void *)((const char *)e +
							 strings[i].at);

		if (s)
			r = add_string(o, strings[i].key, s, strings[i].max);
	}
	for (size_t i = 0; r == 0 && i < sizeof(numbers) / sizeof(*numbers);
	     i++) {
		int64_t v = *(const int64_t *)(const void *)((const char *)e +
							     numbers[i].at);

		if (v && !cJSON_AddNumberToObject(o, numbers[i].key, (double)v))
			r = -ENOMEM;
	}
	if (r == 0 && e->error)
		r = add_string(o, "error", e->error, ERROR_MAX);
	/* The cuts keep every line within EVENTS_LINE_MAX with its newline:
	 * one past it cannot be printed here, and is lost. */
	if (r == 0 && cJSON_PrintPreallocated(o, text, EVENTS_LINE_MAX, 0)) {
		*len = strlen(text) + 1;
		line = malloc(*len);
		if (line) {
			memcpy(line, text, *len - 1);
			line[*len - 1] = '\n';
		}
	}
	cJSON_Delete(o);
	return line;
}

/* The offset of the oldest kept byte (lock held). */
static uint64_t oldest_at(void)
{
	return ev.first < ev.next ? ev.ring[ev.first % EVENTS_KEEP].at : ev.end;
}

/* Take the wake-ups to call (lock held). */
static struct wake *take_wakes(void)
{
	struct wake *w = ev.wakes;

	ev.wakes = NULL;
	return w;
}

/* Call and free the wake-ups w (no lock held); how many. */
static size_t call_wakes(struct wake *w)
{
	size_t n = 0;

	while (w) {
		struct wake *next = w->next;

		w->done(w->arg);
		free(w);
		w = next;
		n++;
	}
	return n;
}

void events_add(const struct event *e)
{
	time_t now = time(NULL);
	size_t len = 0;
	char *text = print(e, now, &len);
	struct wake *w;

	if (!text)
		return;
	pthread_mutex_lock(&ev.lock);
	if (ev.next - ev.first == EVENTS_KEEP) {
		free(ev.ring[ev.first % EVENTS_KEEP].text);
		ev.first++;
	}
	ev.ring[ev.next % EVENTS_KEEP] =
	    (struct line){.at = ev.end, .text = text, .len = len};
	ev.next++;
	ev.end += len;
	ev.mtime = now;
	w = take_wakes();
	pthread_mutex_unlock(&ev.lock);
	call_wakes(w);
}

uint64_t events_count(void)
{
	uint64_t n;

	pthread_mutex_lock(&ev.lock);
	n = ev.next;
	pthread_mutex_unlock(&ev.lock);
	return n;
}

int events_open(uint64_t token, unsigned backlog, struct events_reader **out)
{
	struct events_reader *r = calloc(1, sizeof(*r));
	uint64_t from;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	pthread_mutex_lock(&ev.lock);
	if (ev.stopped) {
		pthread_mutex_unlock(&ev.lock);
		free(r);
		return -ENOTCONN;
	}
	from = ev.next - ev.first < backlog ? ev.first : ev.next - backlog;
	r->token = token;
	r->seq = from;
	r->end_shown = UINT64_MAX;
	r->seg_global =
	    from < ev.next ? ev.ring[from % EVENTS_KEEP].at : ev.end;
	r->next = ev.readers;
	if (r->next)
		r->next->prev = r;
	ev.readers = r;
	pthread_mutex_unlock(&ev.lock);
	*out = r;
	return 0;
}

void events_close(struct events_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&ev.lock);
	if (r->prev)
		r->prev->next = r->next;
	else
		ev.readers = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&ev.lock);
	free(r->part);
	free(r);
}

/* The kept line that holds stream offset g (oldest_at() <= g < ev.end):
 * its sequence number (lock held). */
static uint64_t line_of(uint64_t g)
{
	uint64_t lo = ev.first, hi = ev.next - 1;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;

		if (ev.ring[mid % EVENTS_KEEP].at <= g)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* r fell behind the kept lines at its end (off): put the line that says
 * how many it missed there, and move its window to the oldest kept
 * line (lock held). */
static void fall_behind(struct events_reader *r, uint64_t off)
{
	char t[32];
	int n;

	stamp(t, sizeof(t), time(NULL));
	n = snprintf(r->missed, sizeof(r->missed),
		     "{\"t\":\"%s\",\"kind\":\"missed\",\"count\":%llu}\n", t,
		     (unsigned long long)(ev.first - r->seq));
	r->missed_len = (size_t)n < sizeof(r->missed) ? (size_t)n : 0;
	r->missed_at = off;
	r->seg_local = off + r->missed_len;
	r->seg_global = oldest_at();
	r->seq = ev.first;
}

/*
 * The bytes of r's stream at local offset p, contiguous: 0 with *src and
 * *n (> 0) and, when they are a kept line's, its number in *seq and
 * *line_at its start (else *seq is UINT64_MAX); -EAGAIN at the stream's
 * end; -EIO when gone (lock held).
 */
static int bytes_at(struct events_reader *r, uint64_t p, const char **src,
		    size_t *n, uint64_t *seq, uint64_t *line_at)
{
	uint64_t g;

	*seq = UINT64_MAX;
	if (p < r->seg_local) {
		if (p < r->missed_at || p >= r->missed_at + r->missed_len)
			return -EIO;
		*src = r->missed + (p - r->missed_at);
		*n = r->missed_len - (p - r->missed_at);
		return 0;
	}
	g = r->seg_global + (p - r->seg_local);
	if (g >= ev.end)
		return -EAGAIN;
	if (r->part && g >= r->part_at && g < r->part_at + r->part_len) {
		*src = r->part + (g - r->part_at);
		*n = r->part_len - (g - r->part_at);
		*seq = r->part_seq;
		*line_at = r->part_at;
		return 0;
	}
	if (g < oldest_at())
		return -EIO;
	*seq = line_of(g);
	*line_at = ev.ring[*seq % EVENTS_KEEP].at;
	*src = ev.ring[*seq % EVENTS_KEEP].text + (g - *line_at);
	*n = ev.ring[*seq % EVENTS_KEEP].len - (size_t)(g - *line_at);
	return 0;
}

/* A read stopped inside line seq (at line_at): keep it whole in r, unless
 * it is r's copy already (lock held). */
static void keep_part(struct events_reader *r, uint64_t seq, uint64_t line_at)
{
	const struct line *l = &ev.ring[seq % EVENTS_KEEP];
	char *copy;

	if (r->part && r->part_seq == seq)
		return;
	copy = malloc(l->len);
	if (!copy)
		return; /* then the rest may be gone before it is read */
	memcpy(copy, l->text, l->len);
	free(r->part);
	r->part = copy;
	r->part_len = l->len;
	r->part_at = line_at;
	r->part_seq = seq;
}

ssize_t events_read(struct events_reader *r, char *buf, size_t size,
		    uint64_t off)
{
	size_t got = 0;
	uint64_t seq = UINT64_MAX, line_at = 0;
	const char *src;
	size_t n;
	int err;

	pthread_mutex_lock(&ev.lock);
	if (ev.stopped) {
		pthread_mutex_unlock(&ev.lock);
		return -ENOTCONN;
	}
	if (size == 0)
		off = r->front;
	err = bytes_at(r, off, &src, &n, &seq, &line_at);
	if (err == -EIO && off >= r->front && off >= r->seg_local) {
		fall_behind(r, off);
		err = bytes_at(r, off, &src, &n, &seq, &line_at);
	}
	if (size == 0) {
		pthread_mutex_unlock(&ev.lock);
		return err;
	}
	while (err == 0 && got < size) {
		size_t take = n < size - got ? n : size - got;

		memcpy(buf + got, src, take);
		got += take;
		if (seq != UINT64_MAX)
			r->seq = take < n ? seq : seq + 1;
		if (take < n && seq != UINT64_MAX)
			keep_part(r, seq, line_at);
		err = bytes_at(r, off + got, &src, &n, &seq, &line_at);
	}
	if (off + got > r->front)
		r->front = off + got;
	if (got == 0 && err == -EAGAIN && off >= r->end_shown) {
		r->end_shown = UINT64_MAX;
		err = 0;
	}
	pthread_mutex_unlock(&ev.lock);
	return got ? (ssize_t)got : err;
}

void events_end_shown(struct events_reader *r, uint64_t size)
{
	pthread_mutex_lock(&ev.lock);
	r->end_shown = size;
	pthread_mutex_unlock(&ev.lock);
}

int events_size(uint64_t token, uint64_t *size, time_t *mtime)
{
	struct events_reader *r;

	*size = 0;
	pthread_mutex_lock(&ev.lock);
	if (ev.stopped) {
		pthread_mutex_unlock(&ev.lock);
		return -ENOTCONN;
	}
	*mtime = ev.mtime;
	for (r = ev.readers; r; r = r->next)
		if (r->token == token) {
			uint64_t end = r->seg_local + (ev.end - r->seg_global);

			if (end > r->shown)
				r->shown = end;
			*size = r->shown;
			break;
		}
	pthread_mutex_unlock(&ev.lock);
	return 0;
}

int events_wake_add(void (*done)(void *arg), void *arg, uint64_t *token)
{
	struct wake *w = malloc(sizeof(*w));

	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&ev.lock);
	if (ev.stopped) {
		pthread_mutex_unlock(&ev.lock);
		free(w);
		return -ENOTCONN;
	}
	*w = (struct wake){ev.wakes, done, arg, ++ev.tokens};
	ev.wakes = w;
	*token = w->token;
	pthread_mutex_unlock(&ev.lock);
	return 0;
}

int events_wake_cancel(uint64_t token)
{
	struct wake **p, *w = NULL;

	pthread_mutex_lock(&ev.lock);
	for (p = &ev.wakes; *p; p = &(*p)->next)
		if ((*p)->token == token) {
			w = *p;
			*p = w->next;
			break;
		}
	pthread_mutex_unlock(&ev.lock);
	free(w);
	return w ? 0 : -ENOENT;
}

size_t events_stop(void)
{
	struct wake *w;

	pthread_mutex_lock(&ev.lock);
	ev.stopped = 1;
	w = take_wakes();
	pthread_mutex_unlock(&ev.lock);
	return call_wakes(w);
}

void events_forget(void)
{
	struct wake *w;

	pthread_mutex_lock(&ev.lock);
	for (uint64_t s = ev.first; s < ev.next; s++)
		free(ev.ring[s % EVENTS_KEEP].text);
	ev.first = ev.next = ev.end = 0;
	ev.mtime = 0;
	ev.stopped = 0;
	w = take_wakes();
	pthread_mutex_unlock(&ev.lock);
	while (w) {
		struct wake *next = w->next;

		free(w);
		w = next;
	}
}
