/*
 * test_names.c - unit tests of the name rules: which strings can be batch
 * ids (directory names), which are safe as file names, and which can be
 * a batch input file's (each refused one with its own reason).
 */
#include <string.h>

#include "batch.h"
#include "check.h"
#include "jsonl_check.h"

/* Whether name is refused for the reason that holds words. */
static int refused_for(const char *name, const char *words)
{
	const char *why = jsonl_name_problem(name);

	return why && strstr(why, words) != NULL;
}

static void upload_names(void)
{
	char longest[300];

	CHECK(jsonl_name_problem("q.jsonl") == NULL);
	CHECK(jsonl_name_problem("a b;c=d's 50%.jsonl") == NULL);
	CHECK(jsonl_name_problem("d\xc3\xa9j\xc3\xa0 vu.jsonl") == NULL);
	CHECK(jsonl_name_problem("x.jsonl") == NULL);
	CHECK(jsonl_name_problem("a\xc2\xa0"
				 "b.jsonl") == NULL); /* inside */
	CHECK(refused_for("q.json", "must end in .jsonl"));
	CHECK(refused_for("q.jsonl.txt", "must end in .jsonl"));
	CHECK(refused_for("", "must end in .jsonl"));
	CHECK(refused_for(".jsonl", "needs a stem"));
	CHECK(refused_for("cr\rx.jsonl", "control character"));
	CHECK(refused_for("a.jsonl\r", "control character"));
	CHECK(refused_for("lf\n.jsonl", "control character"));
	CHECK(refused_for("tab\t.jsonl", "control character"));
	CHECK(refused_for("del\x7f.jsonl", "control character"));
	CHECK(refused_for("bad\xff.jsonl", "not UTF-8"));
	CHECK(refused_for("cut\xc3.jsonl", "not UTF-8"));
	CHECK(refused_for("long\xc0\xaf.jsonl", "not UTF-8"));
	CHECK(refused_for("sur\xed\xa0\x80.jsonl", "not UTF-8"));
	CHECK(refused_for("quo\"te.jsonl", "\" or \\"));
	CHECK(refused_for("back\\slash.jsonl", "\" or \\"));
	CHECK(refused_for(" lead.jsonl", "starts with white space"));
	CHECK(refused_for("\xc2\xa0nbsp.jsonl", "starts with white space"));
	CHECK(refused_for("\xe3\x80\x80ideo.jsonl", "starts with white space"));
	memset(longest, 'a', 249);
	strcpy(longest + 249, ".jsonl");
	CHECK(jsonl_name_problem(longest) == NULL);
	memset(longest, 'a', 250);
	strcpy(longest + 250, ".jsonl");
	CHECK(refused_for(longest, "longer than 255 bytes"));
}

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

	upload_names();
	return check_done("names");
}
