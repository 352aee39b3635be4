/*
 * kimifs.h - the one state struct of a kimifs mount, shared by main, the
 * filesystem operations and the ctl commands.
 */
#ifndef KIMIFS_H
#define KIMIFS_H

#define FUSE_USE_VERSION 314

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "api.h"
#include "cache.h"

struct kimifs {
	/* Options (see main.c's option table). */
	char *base_url;
	char *api_key_file;
	double cache_ttl;
	unsigned page_size;
	double timeout;
	double connect_timeout;
	unsigned retries;
	int insecure;
	int show_help;
	int show_version;

	char *api_key; /* never logged, never shown */
	struct api api;
	struct cache cache;
	pthread_mutex_t open_lock; /* guards open_files */
	struct handle *open_files; /* open files and directories (fs.c) */
	time_t mount_time;
	uid_t uid;
	gid_t gid;
};

struct fuse_operations;
struct handle;

/* The FUSE operations; private data is the struct kimifs. */
const struct fuse_operations *fs_operations(void);

#define CTL_MAX 4096 /* longest write to ctl that can be a command */

enum ctl_cmd { CMD_NONE, CMD_CANCEL, CMD_REFRESH };

/*
 * The one command in a write of size bytes at offset off to ctl, or
 * CMD_NONE. Surrounding white space is ignored; anything else (NUL bytes,
 * two commands, a write past offset 0 or over CTL_MAX) is not a command.
 */
enum ctl_cmd ctl_parse(const char *buf, size_t size, off_t off);

/*
 * Run one command written to batch id's ctl file: buf (size bytes) written
 * at offset off. Returns size when the command did what it says, -EINVAL for
 * anything that is not exactly one known command (nothing is sent), or the
 * -errno of the failure. Records the outcome line for reads of ctl.
 */
int ctl_write(struct kimifs *k, const char *id, const char *buf, size_t size,
	      off_t off);

#endif
