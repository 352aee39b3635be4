/*
 * file_ctl.h - the commands of a file's ctl file ("delete"): parsing (pure),
 * running them, and the outcome line of each file's last command.
 */
#ifndef KIMIFS_FILE_CTL_H
#define KIMIFS_FILE_CTL_H

#include <stddef.h>
#include <sys/types.h>

#include "api.h"

struct kimifs;

enum file_cmd { FCMD_NONE, FCMD_DELETE };

/* The one command in a write of size bytes at offset off, or FCMD_NONE:
 * "delete" with surrounding white space, at offset 0, at most CTL_MAX
 * bytes, no NUL. */
enum file_cmd file_ctl_parse(const char *buf, size_t size, off_t off);

/*
 * Run one command written to file id's ctl. "delete" sends DELETE
 * /v1/files/<id>; once the server has no such file (deleted, or a 404),
 * the directory is gone from the tree at once and the content leaves the
 * disk cache. Returns size on success, -EINVAL with nothing sent for
 * anything else, or the -errno of the failure; records the outcome line.
 */
int file_ctl_write(struct kimifs *k, struct op *op, const char *id,
		   const char *buf, size_t size, off_t off);

#endif
