/*
 * cache_dir.h - the disk cache's directory. It is kimifs's only when it
 * holds kimifs's CACHEDIR.TAG (the Cache Directory Tagging convention);
 * kimifs makes and tags a missing one, tags an empty one, and refuses one
 * that holds anything else, touching nothing in it. No directory's mode
 * is ever changed. The temporary files kimifs makes there have names of
 * a few known kinds (cache_tmp_kind), so that only they are ever swept.
 */
#ifndef KIMIFS_CACHE_DIR_H
#define KIMIFS_CACHE_DIR_H

#include <dirent.h>
#include <stddef.h>

/* The tag's name, and how every temporary name kimifs makes there
 * starts. */
#define CACHE_TAG_NAME	 "CACHEDIR.TAG"
#define CACHE_TMP_PREFIX ".tmp-"

/* $XDG_CACHE_HOME/kimifs, else $HOME/.cache/kimifs, else the passwd
 * entry's home's; malloc'd, or NULL when there is none. */
char *cache_dir_default(void);

/*
 * Make dir when missing (mode 0700, its parents too) and open it (a link
 * to a directory is followed) as kimifs's cache: one with kimifs's tag is
 * taken as it is; one made now, or empty, is tagged (its mode kept,
 * logged when others may enter it). With legacy (the default directory),
 * one that holds only what a kimifs from before the tag made there (0600
 * files of the user's named by file ids, kimifs's temporary files) is
 * tagged too (logged). Anything else, or another user's directory, is
 * refused and left as it is. 0 with the directory's descriptor in
 * *dirfd, or -1 with one line in why (whylen bytes).
 */
int cache_dir_open(const char *dir, int legacy, int *dirfd, char *why,
		   size_t whylen);

/* A new stream over the entries of the open directory dirfd, from its
 * first (the descriptor's offset is shared with every earlier stream of
 * it); closedir it. NULL with errno. */
DIR *cache_dir_list(int dirfd);

/* The kinds of temporary file kimifs makes in the cache directory. */
enum cache_tmp {
	CACHE_TMP_STAGE,    /* a file being written into files/ or batches/ */
	CACHE_TMP_RETRY,    /* the input of a retry, for the batch id given */
	CACHE_TMP_TAG,	    /* the cache's tag being written */
	CACHE_TMP_SCRATCH,  /* a scratch file (a job's check, a job's results
			       index), unlinked by its maker at once: met only
			       after a crash */
	CACHE_TMP_DOWNLOAD, /* a content downloading, for the file id given */
};

/* Room for any temporary name (the longest id included). */
#define CACHE_TMP_NAME_MAX 160

/*
 * Make a new temporary file of kind in the cache directory dirfd, named
 * so that a later mount sweeps it once this process is gone
 * (<prefix>[<id>-]<pid>-<seq>; id: the batch or file id it is for, NULL
 * for CACHE_TMP_STAGE, CACHE_TMP_TAG and CACHE_TMP_SCRATCH): created, never an
 * existing name or a link, mode 0600, open read-write and close-on-exec; its
 * name in name (namelen bytes, CACHE_TMP_NAME_MAX is enough). The descriptor,
 * or -errno
 * (-ENAMETOOLONG when name is too small).
 */
int cache_tmp_open(int dirfd, enum cache_tmp kind, const char *id, char *name,
		   size_t namelen);

/* What the temporary file name is, when kimifs makes such names in the
 * cache directory ("an unfinished download", "a staged upload", ...), with
 * the process that made it in *pid (may be NULL); NULL for any other
 * name. */
const char *cache_tmp_kind(const char *name, long *pid);

/* Whether text (a CACHEDIR.TAG's first bytes, NUL-terminated) is a tag
 * kimifs wrote: the convention's signature line, then kimifs's line. */
int cache_tag_ours(const char *text);

#endif
