/*
 * file_ctl.h - the commands of a file's ctl file ("delete"): parsing (pure),
 * running them, and the outcome line of each file's last command.
 */
#ifndef KIMIFS_FILE_CTL_H
#define KIMIFS_FILE_CTL_H

#include <stddef.h>
#include <sys/types.h>

#include "api.h"
#include "ctl_outcome.h"

struct cache;
struct files;

/* What a file's ctl commands use: the API, the file kind of the store,
 * the disk cache (none owned; all outlive it), and the outcome lines of
 * each file's last command (its own). */
struct file_ctl {
	struct api *api;
	struct files *files;
	struct cache *cache;
	struct ctl_outcomes outcomes;
};

/* Set up fc over api, files and cache, with no outcome line yet;
 * file_ctl_destroy frees the lines. */
void file_ctl_init(struct file_ctl *fc, struct api *api, struct files *files,
		   struct cache *cache);
void file_ctl_destroy(struct file_ctl *fc);

enum file_cmd { FCMD_NONE, FCMD_DELETE };

/* The one command in a write of size bytes at offset off, or FCMD_NONE:
 * "delete" with surrounding white space, at offset 0, at most CTL_MAX
 * bytes, no NUL. */
enum file_cmd file_ctl_parse(const char *buf, size_t size, off_t off);

/*
 * DELETE /v1/files/<id>: 0, -ENOENT when the server has no such file
 * (either way the id is forgotten by the file kind and the disk cache at
 * once), or -errno with why (len bytes). Records no outcome line.
 */
int file_ctl_delete(struct file_ctl *fc, struct op *op, const char *id,
		    char *why, size_t len);

/*
 * Run one command written to file id's ctl. "delete" sends DELETE
 * /v1/files/<id>; once the server has no such file (deleted, or a 404),
 * the directory is gone from the tree at once and the content leaves the
 * disk cache. Returns size on success, -EINVAL with nothing sent for
 * anything else, or the -errno of the failure; records the outcome line.
 */
int file_ctl_write(struct file_ctl *fc, struct op *op, const char *id,
		   const char *buf, size_t size, off_t off);

#endif
