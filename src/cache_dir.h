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

/* What the temporary file name is, when kimifs makes such names in the
 * cache directory ("an unfinished download", "a staged upload", ...), with
 * the process that made it in *pid (may be NULL); NULL for any other
 * name. */
const char *cache_tmp_kind(const char *name, long *pid);

/* Whether text (a CACHEDIR.TAG's first bytes, NUL-terminated) is a tag
 * kimifs wrote: the convention's signature line, then kimifs's line. */
int cache_tag_ours(const char *text);

#endif
