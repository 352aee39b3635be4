/*
 * key.h - where the API key comes from: a key file only its owner may read,
 * or MOONSHOT_API_KEY (whose copy in the environment is blanked). Never the
 * command line, never logged.
 */
#ifndef KIMIFS_KEY_H
#define KIMIFS_KEY_H

/* The longest key file accepted, in bytes. */
#define KEY_MAX 4096

/*
 * The API key: read from path when it is not NULL, else from the
 * environment, and checked to be sendable as a header. Returns a malloc'd
 * string (free with key_free), or NULL after one line on stderr.
 */
char *key_load(const char *path);

/* Overwrite and free a key from key_load (NULL is fine). */
void key_free(char *key);

#endif
