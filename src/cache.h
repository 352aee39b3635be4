/*
 * cache.h - the freshness a reader asks of the object store (store.h): any
 * copy, a copy younger than the ttl, or a fetch now. The store that used to
 * be called the cache lives in store.c; the modes keep their name because
 * the tree (tree.h) and the FUSE glue (fs.c) pass them through.
 */
#ifndef KIMIFS_CACHE_H
#define KIMIFS_CACHE_H

enum cache_mode {
	CACHE_ANY,   /* any cached copy; fetch only when there is none */
	CACHE_FRESH, /* a copy younger than ttl (final objects: any) */
	CACHE_FORCE, /* fetch now (final objects: the cached copy) */
};

#endif
