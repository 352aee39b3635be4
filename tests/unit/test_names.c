/*
 * test_names.c - unit tests of the name rules: which strings can be batch
 * ids (directory names) and which are safe as file names.
 */
#include <string.h>

#include "batch.h"
#include "check.h"

int main(void)
{
	char longest[BATCH_ID_MAX + 2];

	CHECK(batch_id_valid("batch_abc123"));
	CHECK(batch_id_valid("A.b-c_9"));
	CHECK(!batch_id_valid(""));
	CHECK(!batch_id_valid(NULL));
	CHECK(!batch_id_valid(".hidden"));
	CHECK(!batch_id_valid(".."));
	CHECK(!batch_id_valid("a/b"));
	CHECK(!batch_id_valid("a b"));
	CHECK(!batch_id_valid("pct%2F"));
	CHECK(!batch_id_valid("line\nbreak"));
	memset(longest, 'b', BATCH_ID_MAX);
	longest[BATCH_ID_MAX] = '\0';
	CHECK(batch_id_valid(longest));
	longest[BATCH_ID_MAX] = 'b';
	longest[BATCH_ID_MAX + 1] = '\0';
	CHECK(!batch_id_valid(longest));

	CHECK(batch_name_safe("project"));
	CHECK(batch_name_safe("a b.c"));
	CHECK(batch_name_safe("..."));
	CHECK(!batch_name_safe(""));
	CHECK(!batch_name_safe("."));
	CHECK(!batch_name_safe(".."));
	CHECK(!batch_name_safe("a/b"));
	CHECK(!batch_name_safe("tab\there"));
	CHECK(!batch_name_safe("del\x7f"));

	CHECK(batch_status_final("completed"));
	CHECK(batch_status_final("failed"));
	CHECK(batch_status_final("expired"));
	CHECK(batch_status_final("cancelled"));
	CHECK(!batch_status_final("cancelling"));
	CHECK(!batch_status_final("in_progress"));
	CHECK(!batch_status_final(""));
	return check_done("names");
}
