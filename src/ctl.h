/*
 * ctl.h - the commands of a batch's ctl file ("cancel", "refresh"): parsing
 * (pure, also used by the fuzz targets) and running them.
 */
#ifndef KIMIFS_CTL_H
#define KIMIFS_CTL_H

#include <stddef.h>
#include <sys/types.h>

struct kimifs;

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
