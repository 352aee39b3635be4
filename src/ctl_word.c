/*
 * ctl_word.c - which command a write to a ctl file is (ctl_word.h): pure,
 * also used by the fuzz targets.
 */
#include "ctl_word.h"

#include <string.h>

int ctl_word(const char *buf, size_t size, off_t off, const char *const *words,
	     size_t n)
{
	size_t a = 0, b = size;

	if (off != 0 || size > CTL_MAX || memchr(buf, '\0', size))
		return -1;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	for (size_t i = 0; i < n; i++)
		if (strlen(words[i]) == b - a &&
		    memcmp(buf + a, words[i], b - a) == 0)
			return (int)i;
	return -1;
}

enum ctl_cmd ctl_parse(const char *buf, size_t size, off_t off)
{
	/* In the order of enum ctl_cmd, after CMD_NONE. */
	static const char *const words[] = {"cancel", "refresh", "retry"};

	return (enum ctl_cmd)(ctl_word(buf, size, off, words, 3) + 1);
}
