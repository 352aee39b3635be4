/*
 * file_ctl.c - the commands of a file's ctl file: "delete". Input is
 * checked before anything is sent; each outcome is logged and kept as one
 * line for reads of ctl (its own map of outcome lines, ctl_outcome.h).
 */
#include "file_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "ctl_word.h"
#include "log.h"
#include "store_files.h"

void file_ctl_init(struct file_ctl *fc, struct api *api, struct files *files,
		   struct cache *cache)
{
	ctl_outcomes_init(&fc->outcomes);
	fc->api = api;
	fc->files = files;
	fc->cache = cache;
}

void file_ctl_destroy(struct file_ctl *fc)
{
	ctl_outcomes_destroy(&fc->outcomes);
}

enum file_cmd file_ctl_parse(const char *buf, size_t size, off_t off)
{
	static const char *const words[] = {"delete"};

	return ctl_word(buf, size, off, words, 1) == 0 ? FCMD_DELETE
						       : FCMD_NONE;
}

int file_ctl_delete(struct file_ctl *fc, struct op *op, const char *id,
		    char *why, size_t len)
{
	struct api_error err;
	int r = api_delete_file(fc->api, op, id, &err);

	if (r < 0)
		api_error_text(&err, r, why, len);
	/* Deleted, or already gone: either way no longer on the server. */
	if (r == 0 || r == -ENOENT) {
		files_forget(fc->files, id);
		cache_forget(fc->cache, id);
	}
	return r;
}

static int do_delete(struct file_ctl *fc, struct op *op, const char *id)
{
	char why[600] = "";
	int r = file_ctl_delete(fc, op, id, why, sizeof(why));

	ctl_record(&fc->outcomes, id, "delete", r, why);
	return r;
}

int file_ctl_write(struct file_ctl *fc, struct op *op, const char *id,
		   const char *buf, size_t size, off_t off)
{
	int r;

	if (file_ctl_parse(buf, size, off) == FCMD_NONE) {
		log_warn("ctl of file %s: not a command (write \"delete\", "
			 "once, at the start)",
			 id);
		return -EINVAL;
	}
	r = do_delete(fc, op, id);
	return r < 0 ? r : (int)size;
}
