/*
 * ctl_word.h - which command a write to a ctl file is: one word of a table
 * of command words, white space around it ignored. Pure.
 */
#ifndef KIMIFS_CTL_WORD_H
#define KIMIFS_CTL_WORD_H

#include <stddef.h>
#include <sys/types.h>

#define CTL_MAX 4096 /* longest write to ctl that can be a command */

enum ctl_cmd { CMD_NONE, CMD_CANCEL, CMD_REFRESH, CMD_RETRY };

/*
 * Which of the n words (a command each) a write of size bytes at offset
 * off to a ctl file is: its index, or -1. Surrounding white space is
 * ignored; anything else (NUL bytes, two words, a write past offset 0 or
 * over CTL_MAX) is none.
 */
int ctl_word(const char *buf, size_t size, off_t off, const char *const *words,
	     size_t n);

/*
 * The one command in a write of size bytes at offset off to a batch's ctl,
 * or CMD_NONE (ctl_word).
 */
enum ctl_cmd ctl_parse(const char *buf, size_t size, off_t off);

#endif
