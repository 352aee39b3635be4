/*
 * test_log.c - unit tests of the ring of recent log lines behind MOUNT/log:
 * stamped lines, oldest first, the last LOG_RECENT kept, debug lines not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"

static size_t lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

int main(void)
{
	char *text;
	size_t len;

	/* The lines also go to stderr: not here. */
	if (!freopen("/dev/null", "w", stderr))
		return 1;
	log_init(1, 1);
	CHECK(log_recent(&text, &len) == 0 && len == 0 && text[0] == '\0');
	free(text);

	log_err("first %d", 1);
	log_debug("not kept");
	log_info("second\x1b[2J");
	CHECK(log_recent(&text, &len) == 0 && lines(text) == 2);
	CHECK(strlen(text) == len);
	CHECK(strstr(text, "Z error: first 1\n") != NULL);
	CHECK(strstr(text, "Z info: second [2J\n") != NULL);
	CHECK(strstr(text, "not kept") == NULL);
	CHECK(strstr(text, "first") < strstr(text, "second"));
	CHECK(len > 20 && text[4] == '-' && text[10] == 'T');
	free(text);

	for (int i = 0; i < LOG_RECENT + 500; i++)
		log_warn("line %d", i);
	CHECK(log_recent(&text, &len) == 0 && lines(text) == LOG_RECENT);
	CHECK(strstr(text, "warning: line 500\n") != NULL);
	CHECK(strstr(text, "warning: line 499\n") == NULL);
	CHECK(strstr(text, "first") == NULL);
	CHECK(len > 19 && strcmp(text + len - 19, "warning: line 1499\n") == 0);
	free(text);
	log_forget();
	CHECK(log_recent(&text, &len) == 0 && len == 0);
	free(text);
	return check_done("log");
}
