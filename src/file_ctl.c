/*
 * file_ctl.c - the commands of a file's ctl file: "delete". Input is
 * checked before anything is sent; each outcome is logged and kept as one
 * line for reads of ctl.
 */
#include "file_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kimifs.h"
#include "log.h"

struct file_line {
	struct file_line *next;
	char *id;
	char *text;
};

enum file_cmd file_ctl_parse(const char *buf, size_t size, off_t off)
{
	size_t a = 0, b = size;

	if (off != 0 || size > CTL_MAX || memchr(buf, '\0', size))
		return FCMD_NONE;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	if (b - a == 6 && memcmp(buf + a, "delete", 6) == 0)
		return FCMD_DELETE;
	return FCMD_NONE;
}

void file_ctl_init(struct file_ctl *c)
{
	c->lines = NULL;
	pthread_mutex_init(&c->lock, NULL);
}

void file_ctl_destroy(struct file_ctl *c)
{
	while (c->lines) {
		struct file_line *l = c->lines;

		c->lines = l->next;
		free(l->id);
		free(l->text);
		free(l);
	}
	pthread_mutex_destroy(&c->lock);
}

static struct file_line *find(struct file_ctl *c, const char *id)
{
	struct file_line *l = c->lines;

	while (l && strcmp(l->id, id) != 0)
		l = l->next;
	return l;
}

char *file_ctl_outcome(struct file_ctl *c, const char *id)
{
	struct file_line *l;
	char *text = NULL;

	pthread_mutex_lock(&c->lock);
	l = find(c, id);
	if (l)
		text = strdup(l->text);
	pthread_mutex_unlock(&c->lock);
	return text;
}

/* Log the outcome of cmd on id and keep it as its line. */
static void outcome(struct file_ctl *c, const char *id, const char *cmd, int r,
		    const char *why)
{
	char line[700];
	struct file_line *l;
	char *text;

	if (r == 0) {
		snprintf(line, sizeof(line), "%s: ok\n", cmd);
		log_info("%s %s: ok", cmd, id);
	} else {
		snprintf(line, sizeof(line), "%s: failed: %s\n", cmd, why);
		log_err("%s %s: failed: %s", cmd, id, why);
	}
	text = strdup(line);
	if (!text)
		return;
	pthread_mutex_lock(&c->lock);
	l = find(c, id);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (l && (l->id = strdup(id))) {
			l->next = c->lines;
			c->lines = l;
		} else {
			free(l);
			l = NULL;
		}
	}
	if (l) {
		free(l->text);
		l->text = text;
		text = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(text);
}

static int do_delete(struct kimifs *k, struct api_op *op, const char *id)
{
	struct api_error err;
	char why[600] = "";
	int r = api_delete_file(&k->api, op, id, &err);

	if (r < 0 && err.http_status)
		snprintf(why, sizeof(why), "%d %s", err.http_status,
			 err.message);
	else if (r < 0)
		snprintf(why, sizeof(why), "%s",
			 err.message[0] ? err.message : strerror(-r));
	/* Deleted, or already gone: either way no longer on the server. */
	if (r == 0 || r == -ENOENT) {
		files_forget(&k->files, id);
		cache_forget(&k->cache, id);
	}
	outcome(&k->file_ctl, id, "delete", r, why);
	return r;
}

int file_ctl_write(struct kimifs *k, struct api_op *op, const char *id,
		   const char *buf, size_t size, off_t off)
{
	int r;

	if (file_ctl_parse(buf, size, off) == FCMD_NONE) {
		log_warn("ctl of file %s: not a command (write \"delete\", "
			 "once, at the start)",
			 id);
		return -EINVAL;
	}
	r = do_delete(k, op, id);
	return r < 0 ? r : (int)size;
}
