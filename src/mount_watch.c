/*
 * mount_watch.c - a thread that notices the lazy unmount of the tree (see
 * mount_watch.h): the parsing of /proc/self/mountinfo, and the poll of it.
 */
#include "mount_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define MAX_FIELD 4096

/*
 * Copy the space-separated field at *p into out (size MAX_FIELD), the
 * kernel's octal escapes (\040 for a space) undone, and move *p past it.
 * 0, or -1 when the line has no more fields.
 */
static int next_field(const char **p, char *out)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (*s == '\0' || *s == '\n')
		return -1;
	while (*s && *s != ' ' && *s != '\n') {
		char c = *s++;

		if (c == '\\' && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' &&
		    s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 +
				   (s[2] - '0'));
			s += 3;
		}
		if (n + 1 < MAX_FIELD)
			out[n++] = c;
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

/* One mountinfo line's device, mount point and type; 0 or -1 when it is
 * not a whole line. */
static int parse_line(const char *line, unsigned *major, unsigned *minor,
		      char *point, char *type)
{
	char f[MAX_FIELD];
	int i;

	/* id, parent id, major:minor, root, mount point */
	for (i = 0; i < 5; i++) {
		if (next_field(&line, i == 4 ? point : f) < 0)
			return -1;
		if (i == 2 && sscanf(f, "%u:%u", major, minor) != 2)
			return -1;
	}
	/* optional fields up to "-", then the type */
	do {
		if (next_field(&line, f) < 0)
			return -1;
	} while (strcmp(f, "-") != 0);
	return next_field(&line, type);
}

/*
 * Call match(arg, major, minor, point, type) for each whole line of text;
 * stop at the first non-zero answer and return it, else 0.
 */
static int each_mount(const char *text,
		      int (*match)(void *arg, unsigned major, unsigned minor,
				   const char *point, const char *type),
		      void *arg)
{
	char *point = malloc(MAX_FIELD), *type = malloc(MAX_FIELD);
	const char *line = text;
	int r = -ENOMEM;

	if (!point || !type)
		goto out;
	r = 0;
	while (r == 0 && line && *line) {
		unsigned major, minor;

		if (parse_line(line, &major, &minor, point, type) == 0)
			r = match(arg, major, minor, point, type);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
out:
	free(point);
	free(type);
	return r;
}

struct find {
	const char *path, *fstype;
	unsigned major, minor;
	int found;
};

static int match_find(void *arg, unsigned major, unsigned minor,
		      const char *point, const char *type)
{
	struct find *f = arg;

	if (strcmp(point, f->path) == 0 && strcmp(type, f->fstype) == 0) {
		/* The last one: a later mount on the same point is on top. */
		f->major = major;
		f->minor = minor;
		f->found = 1;
	}
	return 0;
}

int mountinfo_find(const char *text, const char *path, const char *fstype,
		   unsigned *major, unsigned *minor)
{
	struct find f = {path, fstype, 0, 0, 0};
	int r = each_mount(text, match_find, &f);

	if (r < 0)
		return r;
	if (!f.found)
		return -ENOENT;
	*major = f.major;
	*minor = f.minor;
	return 0;
}

static int match_dev(void *arg, unsigned major, unsigned minor,
		     const char *point, const char *type)
{
	const unsigned *dev = arg;

	(void)point;
	(void)type;
	return major == dev[0] && minor == dev[1];
}

int mountinfo_has(const char *text, unsigned major, unsigned minor)
{
	unsigned dev[2] = {major, minor};

	return each_mount(text, match_dev, dev) == 1;
}

/* The whole of fd from its start, NUL-terminated, or NULL. */
static char *read_all(int fd)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap);

	if (!buf || lseek(fd, 0, SEEK_SET) < 0)
		goto fail;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				goto fail;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
fail:
	free(buf);
	return NULL;
}

/* Whether w's device is still mounted: 1, 0, or 1 when it cannot tell. */
static int still_mounted(const struct mount_watch *w)
{
	char *text = read_all(w->mounts_fd);
	int r = text ? mountinfo_has(text, w->major, w->minor) : 1;

	free(text);
	return r;
}

static void *watch_thread(void *arg)
{
	struct mount_watch *w = arg;
	struct pollfd p[2] = {{.fd = w->mounts_fd, .events = POLLPRI},
			      {.fd = w->stop_fd[0], .events = POLLIN}};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("mount watch: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if ((p[0].revents & (POLLPRI | POLLERR)) && !still_mounted(w)) {
			w->on_detach(w->arg);
			break;
		}
	}
	return NULL;
}

int mount_watch_start(struct mount_watch *w, const char *path,
		      const char *fstype, void (*on_detach)(void *arg),
		      void *arg)
{
	char *text = NULL;
	int r;

	memset(w, 0, sizeof(*w));
	w->stop_fd[0] = w->stop_fd[1] = -1;
	w->on_detach = on_detach;
	w->arg = arg;
	w->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (w->mounts_fd < 0) {
		r = -errno;
		goto fail;
	}
	text = read_all(w->mounts_fd);
	if (!text) {
		r = -EIO;
		goto fail;
	}
	r = mountinfo_find(text, path, fstype, &w->major, &w->minor);
	if (r < 0)
		goto fail;
	if (pipe(w->stop_fd) < 0 ||
	    fcntl(w->stop_fd[0], F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(w->stop_fd[1], F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&w->thread, NULL, watch_thread, w);
	if (r < 0)
		goto fail;
	w->started = 1;
	free(text);
	return 0;
fail:
	free(text);
	mount_watch_stop(w);
	return r;
}

void mount_watch_stop(struct mount_watch *w)
{
	if (w->started) {
		ssize_t n;

		do
			n = write(w->stop_fd[1], "x", 1);
		while (n < 0 && errno == EINTR);
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
	for (int i = 0; i < 2; i++)
		if (w->stop_fd[i] >= 0)
			close(w->stop_fd[i]);
	if (w->mounts_fd >= 0)
		close(w->mounts_fd);
	w->stop_fd[0] = w->stop_fd[1] = w->mounts_fd = -1;
}
