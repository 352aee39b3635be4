/*
 * fs.h - the FUSE glue of kimifs: libfuse's low-level operations over the
 * inode table and the node types of the tree. The session's user data is
 * the struct kimifs.
 */
#ifndef KIMIFS_FS_H
#define KIMIFS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

struct kimifs;

/*
 * The most a read request asks for, as the mount option max_read (main
 * passes "-omax_read=" this) and the init reply must both say. A direct
 * I/O read pins as many pages of the reader's buffer as it asks for
 * (cat's is 128 KiB) though a value file is a few bytes: one page makes
 * each read of a changing file much cheaper; big files take more reads.
 */
#define FS_MAX_READ	16384
#define FS_MAX_READ_OPT "max_read=16384"

const struct fuse_lowlevel_ops *fs_operations(void);

/*
 * From now on, tell the kernel through se whenever the store learns that a
 * batch changed: the attributes and page contents of every inode of that
 * batch are dropped (fuse_lowlevel_notify_inval_inode), so what the kernel
 * keeps is never older than what the daemon holds. fs_detach stops it
 * (before se is unmounted); it waits for a notification under way.
 */
void fs_attach(struct kimifs *k, struct fuse_session *se);
void fs_detach(struct kimifs *k);

#endif
