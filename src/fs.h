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

const struct fuse_lowlevel_ops *fs_operations(void);

#endif
