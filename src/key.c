/*
 * key.c - reading the API key (see key.h), leaving no copy behind: buffers
 * are cleared with explicit_bzero and the environment's copy is blanked.
 */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Read the key from path, refusing a file others may read, a file over
 * KEY_MAX bytes (a key file holds the key and nothing else: cutting it
 * would send a wrong key) and a NUL byte. 0 or -1 with one line. */
static int read_key_file(char **key, const char *path)
{
	char buf[KEY_MAX + 2];
	struct stat st;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = -1;

	if (fd < 0) {
		fprintf(stderr, "kimifs: cannot open api_key_file %s: %s\n",
			path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "kimifs: api_key_file %s is not a file\n",
			path);
		goto out;
	}
	if (st.st_mode & 077) {
		fprintf(stderr,
			"kimifs: api_key_file %s is open to group or others "
			"(mode %03o); run: chmod 600 %s\n",
			path, (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	/* Read one byte past the limit, to tell a full file from a cut one. */
	while (len <= KEY_MAX) {
		ssize_t n = read(fd, buf + len, KEY_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr,
				"kimifs: cannot read api_key_file %s: %s\n",
				path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len > KEY_MAX) {
		fprintf(stderr,
			"kimifs: api_key_file %s is over %d bytes; it must "
			"hold the API key only\n",
			path, KEY_MAX);
		goto out;
	}
	if (memchr(buf, '\0', len)) {
		fprintf(stderr, "kimifs: api_key_file %s holds a NUL byte\n",
			path);
		goto out;
	}
	*key = strdup(util_trim(buf));
	r = *key ? 0 : -1;
out:
	explicit_bzero(buf, sizeof(buf)); /* not optimised away */
	close(fd);
	return r;
}

char *key_load(const char *path)
{
	char *env = getenv("MOONSHOT_API_KEY");
	char *key = NULL;

	if (path) {
		if (read_key_file(&key, path) < 0)
			return NULL;
	} else if (env && *env) {
		key = strdup(util_trim(env));
		if (!key)
			return NULL;
	}
	if (env) {
		/* /proc/PID/environ shows the original block: blank it. */
		memset(env, 'x', strlen(env));
		unsetenv("MOONSHOT_API_KEY");
	}
	if (!key || !*key) {
		fprintf(stderr, "kimifs: no API key: set MOONSHOT_API_KEY or "
				"use -o api_key_file=PATH\n");
		key_free(key);
		return NULL;
	}
	for (const char *p = key; *p; p++) {
		if ((unsigned char)*p < 0x21 || *p == 0x7f) {
			fprintf(stderr, "kimifs: the API key holds a space or "
					"control character\n");
			key_free(key);
			return NULL;
		}
	}
	return key;
}

void key_free(char *key)
{
	if (key) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
}
