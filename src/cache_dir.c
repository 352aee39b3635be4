/*
 * cache_dir.c - the disk cache's directory (cache_dir.h): where it is by
 * default, made or found, tagged as kimifs's with a CACHEDIR.TAG or
 * refused, never changed otherwise; and the temporary names kimifs makes
 * in it.
 */
#include "cache_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"

/* The tag that makes a directory kimifs's cache (the Cache Directory
 * Tagging convention, so backup tools skip it too): its text, and
 * the temporary name it is written under. */
#define CACHE_TAG_SIGNATURE "Signature: 8a477f597d28d172789f06886806bc55"
#define CACHE_TAG_OWNER                                                        \
	"# This file is a cache directory tag created by kimifs."
#define CACHE_TAG_TEXT                                                         \
	CACHE_TAG_SIGNATURE "\n" CACHE_TAG_OWNER "\n"                          \
			    "# For information about cache directory tags, "   \
			    "see https://bford.info/cachedir/\n"
#define CACHE_TAG_TMP CACHE_TMP_PREFIX "tag-"

/* ------------------------------------------------------------------ */
/* Names */

/* The temporary files kimifs makes in the cache directory, each named
 * <prefix>[<id>-]<pid>-<seq> (its process and a number of its own): the
 * first prefix that fits names it. Staged uploads are stage.c's, retry
 * inputs ctl_retry.c's, scratch files job_create.c's and
 * job_results.c's. */
static const struct tmp_kind {
	const char *prefix;
	int named; /* an id (file or batch) before <pid> */
	const char *what;
} tmp_kinds[] = {
    [CACHE_TMP_STAGE] = {CACHE_TMP_PREFIX "stage-", 0, "a staged upload"},
    [CACHE_TMP_RETRY] = {CACHE_TMP_PREFIX "retry_", 1,
			 "the staged input of a retry"},
    [CACHE_TMP_TAG] = {CACHE_TAG_TMP, 0, "a cache tag being written"},
    [CACHE_TMP_SCRATCH] = {CACHE_TMP_PREFIX "scratch-", 0,
			   "a scratch file of a job's check or results"},
    /* Last: its prefix starts every other. */
    [CACHE_TMP_DOWNLOAD] = {CACHE_TMP_PREFIX, 1, "an unfinished download"},
};

int cache_tmp_open(int dirfd, enum cache_tmp kind, const char *id, char *name,
		   size_t namelen)
{
	static unsigned seq;
	const struct tmp_kind *k = &tmp_kinds[kind];
	unsigned n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	int len, fd;

	if (k->named)
		len = snprintf(name, namelen, "%s%s-%ld-%u", k->prefix, id,
			       (long)getpid(), n);
	else
		len = snprintf(name, namelen, "%s%ld-%u", k->prefix,
			       (long)getpid(), n);
	if (len < 0 || (size_t)len >= namelen)
		return -ENAMETOOLONG;
	fd = openat(dirfd, name,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* The length of the run of digits that s starts with (at most 19). */
static size_t digits(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n <= 19 ? n : 0;
}

const char *cache_tmp_kind(const char *name, long *pid)
{
	for (size_t i = 0; i < sizeof(tmp_kinds) / sizeof(tmp_kinds[0]); i++) {
		const struct tmp_kind *k = &tmp_kinds[i];
		size_t plen = strlen(k->prefix);
		const char *rest = name + plen, *p;
		char id[FILE_ID_MAX + 1];
		size_t n;

		if (strncmp(name, k->prefix, plen) != 0)
			continue;
		if (k->named) {
			/* <id>-<pid>-<seq>: the id is what is before the
			 * last two dashes. */
			const char *seq = strrchr(rest, '-');

			for (p = seq ? seq - 1 : NULL; p && p > rest; p--)
				if (*p == '-')
					break;
			if (!p || p <= rest || (size_t)(p - rest) > FILE_ID_MAX)
				continue;
			snprintf(id, sizeof(id), "%.*s", (int)(p - rest), rest);
			if (!file_id_valid(id))
				continue;
			rest = p + 1;
		}
		n = digits(rest);
		if (n == 0 || rest[n] != '-' || digits(rest + n + 1) == 0 ||
		    rest[n + 1 + digits(rest + n + 1)] != '\0')
			continue;
		if (pid)
			*pid = strtol(rest, NULL, 10);
		return k->what;
	}
	return NULL;
}

int cache_tag_ours(const char *text)
{
	size_t n = strlen(CACHE_TAG_SIGNATURE);

	return strncmp(text, CACHE_TAG_SIGNATURE, n) == 0 &&
	       (text[n] == '\n' || (text[n] == '\r' && text[n + 1] == '\n')) &&
	       strstr(text, "\n" CACHE_TAG_OWNER "\n") != NULL;
}

/* ------------------------------------------------------------------ */
/* The directory */

/* A new DIR stream of the open directory dirfd, from its start (the
 * descriptor's offset is shared with every earlier stream of it), or
 * NULL with errno. */
DIR *cache_dir_list(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		errno = e;
		return NULL;
	}
	rewinddir(d);
	return d;
}

/* Make every missing directory of path (mode 0700), path included; *made
 * says whether path itself was made now. 0 or -errno. */
static int make_dirs(const char *path, int *made)
{
	char *p = strdup(path);
	int r = 0;

	*made = 0;
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; r == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char end = *s;

		*s = '\0';
		if (mkdir(p, 0700) == 0)
			*made = end == '\0';
		else if (errno != EEXIST)
			r = -errno;
		*s = end;
		if (end == '\0')
			break;
	}
	free(p);
	return r;
}

/* $XDG_CACHE_HOME/kimifs, else $HOME/.cache/kimifs, else the passwd
 * entry's home; malloc'd, or NULL. */
char *cache_dir_default(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	const struct passwd *pw;
	char *out = NULL;

	const char *base = NULL, *tail = NULL;
	size_t n;

	if (xdg && xdg[0] == '/') {
		base = xdg;
		tail = "/kimifs";
	} else {
		if (!home || home[0] != '/') {
			pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (home && home[0] == '/') {
			base = home;
			tail = "/.cache/kimifs";
		}
	}
	if (!base)
		return NULL;
	n = strlen(base) + strlen(tail) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s", base, tail);
	return out;
}

/* What the tag of a directory says (tag_read). */
enum tag_state { TAG_NONE, TAG_OURS, TAG_OTHER };

/* The tag of the directory dirfd: TAG_OURS when CACHEDIR.TAG is a regular
 * file (not a link) that starts with the signature and names kimifs,
 * TAG_NONE when there is none, TAG_OTHER for anything else there. */
static enum tag_state tag_read(int dirfd)
{
	char buf[sizeof(CACHE_TAG_TEXT)];
	struct stat st;
	ssize_t n;
	int fd = openat(dirfd, CACHE_TAG_NAME,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? TAG_NONE : TAG_OTHER;
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
		? read(fd, buf, sizeof(buf) - 1)
		: -1;
	close(fd);
	if (n < 0)
		return TAG_OTHER;
	buf[n] = '\0';
	return cache_tag_ours(buf) ? TAG_OURS : TAG_OTHER;
}

/* Write kimifs's tag into the directory dirfd, whole or not at all: it is
 * written under a temporary name and linked into place, so a concurrent
 * mount sees either no tag or the whole of it (and one that came first is
 * taken when it is ours). 0, or -errno (-EEXIST: another tag came first). */
static int tag_write(int dirfd)
{
	char tmp[CACHE_TMP_NAME_MAX];
	size_t len = strlen(CACHE_TAG_TEXT);
	ssize_t w;
	int fd, r = 0;

	fd = cache_tmp_open(dirfd, CACHE_TMP_TAG, NULL, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	w = write(fd, CACHE_TAG_TEXT, len);
	if (w != (ssize_t)len)
		r = w < 0 ? -errno : -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && linkat(dirfd, tmp, dirfd, CACHE_TAG_NAME, 0) < 0)
		r = errno == EEXIST && tag_read(dirfd) == TAG_OURS ? 0 : -errno;
	unlinkat(dirfd, tmp, 0);
	return r;
}

/* Whether the entry name of dirfd is one that an earlier kimifs (before
 * the tag) made in its default directory: a content (a regular 0600 file
 * of ours named by an id) or a temporary file of ours. */
static int legacy_entry(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_uid != getuid())
		return 0;
	if (cache_tmp_kind(name, NULL))
		return 1;
	return file_id_valid(name) && strcmp(name, CACHE_TAG_NAME) != 0 &&
	       (st.st_mode & 07777) == 0600;
}

/* Whether the entry name of dirfd is the lost+found directory that a new
 * file system has at its root: a file system of its own made for the
 * cache is empty all the same. */
static int lost_found(int dirfd, const char *name)
{
	struct stat st;

	return strcmp(name, "lost+found") == 0 &&
	       fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* What an untagged directory holds: 0 nothing (a tag being written by a
 * concurrent mount, or a file system's lost+found, aside), 1 only what an
 * earlier kimifs made (see legacy_entry), 2 anything else; or -errno. */
static int untagged_holds(int dirfd)
{
	DIR *d = cache_dir_list(dirfd);
	const struct dirent *de;
	int holds = 0;

	if (!d)
		return -errno;
	while (holds < 2 && (de = readdir(d))) {
		const char *name = de->d_name;

		/* A tag that a concurrent mount just put there, or is
		 * writing, is no content (tag_write checks whose it is). */
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    strcmp(name, CACHE_TAG_NAME) == 0 ||
		    (strncmp(name, CACHE_TAG_TMP, strlen(CACHE_TAG_TMP)) == 0 &&
		     cache_tmp_kind(name, NULL)))
			continue;
		if (lost_found(dirfd, name))
			continue;
		holds = legacy_entry(dirfd, name) ? 1 : 2;
	}
	closedir(d);
	return holds;
}

/*
 * Take the open directory dirfd (dir) for the cache, touching nothing
 * that is not kimifs's: one with kimifs's tag is taken as it is; one made
 * now (made), or empty, is tagged; with legacy, one that holds only what
 * an earlier kimifs made (the default directory of a version before the
 * tag) is tagged too. Anything else is refused and left as it is. The
 * directory's mode is never changed. 0, or -1 with why.
 */
static int claim(int dirfd, const char *dir, int made, int legacy, char *why,
		 size_t whylen)
{
	enum tag_state tag = made ? TAG_NONE : tag_read(dirfd);
	int holds = 0, r;

	if (tag == TAG_OURS)
		return 0;
	if (tag == TAG_NONE && !made) {
		holds = untagged_holds(dirfd);
		if (holds < 0) {
			snprintf(why, whylen, "cannot read cache_dir %s: %s",
				 dir, strerror(-holds));
			return -1;
		}
	}
	/* A concurrent mount may have tagged it (and filled it) meanwhile. */
	if (holds == 2 && tag_read(dirfd) == TAG_OURS)
		return 0;
	if (tag == TAG_OTHER || holds == 2 || (holds == 1 && !legacy))
		r = -ENOTEMPTY;
	else
		r = tag_write(dirfd);
	if (r == -ENOTEMPTY || r == -EEXIST) {
		snprintf(why, whylen,
			 "cache_dir %s is not empty and not a kimifs cache "
			 "(no CACHEDIR.TAG of kimifs in it); nothing in it "
			 "was touched: name a new or empty folder",
			 dir);
		return -1;
	}
	if (r < 0) {
		snprintf(why, whylen, "cannot write %s/" CACHE_TAG_NAME ": %s",
			 dir, strerror(-r));
		return -1;
	}
	if (holds == 1)
		log_info("cache_dir %s: the cache of an earlier kimifs, now "
			 "tagged " CACHE_TAG_NAME,
			 dir);
	return 0;
}

int cache_dir_open(const char *dir, int legacy, int *dirfd, char *why,
		   size_t whylen)
{
	struct stat st;
	int made, fd = -1;
	int r = make_dirs(dir, &made);

	*dirfd = -1;
	if (r < 0) {
		snprintf(why, whylen, "cannot make cache_dir %s: %s", dir,
			 strerror(-r));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whylen, "cannot open cache_dir %s: %s", dir,
			 strerror(errno));
		goto fail;
	}
	if (st.st_uid != getuid()) {
		snprintf(why, whylen,
			 "cache_dir %s belongs to another user (uid %u)", dir,
			 (unsigned)st.st_uid);
		goto fail;
	}
	if (claim(fd, dir, made, legacy, why, whylen) < 0)
		goto fail;
	if (st.st_mode & 0077)
		log_warn("cache_dir %s is mode %03o: others may enter it "
			 "(kimifs's files in it are 0600)",
			 dir, (unsigned)(st.st_mode & 0777));
	*dirfd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}
