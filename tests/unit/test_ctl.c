/*
 * test_ctl.c - unit tests of ctl command parsing (ctl_word.c): one command
 * per write, surrounding white space ignored, anything else refused; a
 * write is looked up in any table of words by its index.
 */
#include <string.h>

#include "check.h"
#include "ctl.h"
#include "ctl_word.h"

static enum ctl_cmd parse(const char *s, off_t off)
{
	return ctl_parse(s, strlen(s), off);
}

int main(void)
{
	static char big[CTL_MAX + 2];

	CHECK(parse("cancel", 0) == CMD_CANCEL);
	CHECK(parse("cancel\n", 0) == CMD_CANCEL);
	CHECK(parse(" \t cancel \r\n", 0) == CMD_CANCEL);
	CHECK(parse("refresh\n", 0) == CMD_REFRESH);
	CHECK(parse("retry\n", 0) == CMD_RETRY);
	CHECK(parse(" retry ", 0) == CMD_RETRY);
	CHECK(parse("retry retry", 0) == CMD_NONE);
	CHECK(parse("retryx", 0) == CMD_NONE);
	CHECK(parse("retry", 1) == CMD_NONE);

	CHECK(parse("", 0) == CMD_NONE);
	CHECK(parse("\n", 0) == CMD_NONE);
	CHECK(parse("Cancel", 0) == CMD_NONE);
	CHECK(parse("cancelx", 0) == CMD_NONE);
	CHECK(parse("cancel cancel", 0) == CMD_NONE);
	CHECK(parse("cancel\nrefresh", 0) == CMD_NONE);
	CHECK(parse("cancel", 1) == CMD_NONE);
	CHECK(ctl_parse("cancel\0", 7, 0) == CMD_NONE);
	CHECK(ctl_parse("can\0cel", 7, 0) == CMD_NONE);

	memset(big, ' ', sizeof(big));
	memcpy(big, "cancel", 6);
	CHECK(ctl_parse(big, CTL_MAX, 0) == CMD_CANCEL);
	CHECK(ctl_parse(big, CTL_MAX + 1, 0) == CMD_NONE);

	/* Any table: the index of the word, or -1. */
	static const char *const words[] = {"refresh", "stop", "st"};

	CHECK(ctl_word("stop\n", 5, 0, words, 3) == 1);
	CHECK(ctl_word(" st", 3, 0, words, 3) == 2);
	CHECK(ctl_word("refresh", 7, 0, words, 1) == 0);
	CHECK(ctl_word("stop", 4, 0, words, 1) == -1);
	CHECK(ctl_word("sto", 3, 0, words, 3) == -1);
	CHECK(ctl_word("", 0, 0, words, 3) == -1);
	CHECK(ctl_word("stop", 4, 0, words, 0) == -1);
	return check_done("ctl");
}
