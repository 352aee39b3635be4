/*
 * test_listing.c - unit tests of the paged listing with a stub list-page
 * function: every page gathered in order, listed objects handed to the
 * store under the newer-answer rule, invalid and repeated ids left out, a
 * repeated or missing cursor ending the listing, the bounds on objects,
 * bytes and pages, the previous listing served after a failure, a
 * listing younger than ttl reused, and the early stop of a refresh at a
 * page of objects known as final (with the rest of the previous listing
 * after it). The store's time is a fake clock the tests move on: a page
 * that takes long moves it, and nothing waits for real time.
 */
#include "fake_kind.h"

#include "check.h"
#include "listing.h"
#include "log.h"

/* The pages the stub serves: ids separated by spaces, and the cursor it
 * gives (NULL: the last id of the page; "-": none). */
struct script_page {
	const char *ids;
	const char *last;
	int has_more;
};

static const struct script_page *script; /* ends with ids == NULL */
static size_t script_at;		 /* the next page to serve */
static int pages_asked;
static char cursors[16][64]; /* the cursors received */
static size_t big_bytes;     /* bytes of every object (0: 100) */
static struct store *racing; /* store_put there while a page is asked */
static const char *finals;   /* " id id ": also served as final */
static double page_delay;    /* each page answers this late (s) */

/* Whether the stub serves id as final: ids starting with F, and those in
 * finals. */
static int stub_final(const char *id)
{
	char word[80];

	snprintf(word, sizeof(word), " %s ", id);
	return id[0] == 'F' || (finals && strstr(finals, word));
}

static int stub_page(void *ctx, const struct object_kind *k, struct op *op,
		     const char *after, unsigned limit, struct store_page *page,
		     struct api_error *err)
{
	const struct script_page *p;
	char ids[512], *save = NULL, *id;
	size_t n = 0;

	(void)ctx;
	(void)k;
	(void)op;
	(void)limit;
	if (pages_asked < 16)
		snprintf(cursors[pages_asked], 64, "%s", after ? after : "");
	pages_asked++;
	if (page_delay)
		fake_clock_advance(&fake_time, page_delay);
	if (racing) {
		struct fake *f = fake_new("b", 4, "cancelling");

		store_put(racing, f, store_clock(racing));
		fake_unref(f);
		racing = NULL;
	}
	p = script[script_at].ids ? &script[script_at++] : NULL;
	if (!p) {
		snprintf(err->message, sizeof(err->message), "stub: no page");
		err->fail = API_FAIL_SERVER_DOWN;
		return -EIO;
	}
	page->items = calloc(32, sizeof(*page->items));
	snprintf(ids, sizeof(ids), "%s", p->ids);
	for (id = strtok_r(ids, " ", &save); id && n < 32;
	     id = strtok_r(NULL, " ", &save)) {
		struct fake *f = fake_new(id, 2, "listed");

		if (stub_final(id)) {
			f->rank = 5;
			f->final = 1;
		}
		if (big_bytes)
			f->bytes = big_bytes;
		page->items[n++] = f;
	}
	page->nitems = n;
	if (p->last && strcmp(p->last, "-") != 0)
		page->last_id = strdup(p->last);
	else if (!p->last && n)
		page->last_id = strdup(((struct fake *)page->items[n - 1])->id);
	page->has_more = p->has_more;
	return 0;
}

static const struct store_source source = {
    .fetch = fake_fetch,
    .list_page = stub_page,
};

/* The listing as one string of ids separated by spaces, or the -errno. */
static int list(struct listing *l, const struct script_page *pages, char *out,
		size_t len)
{
	char **ids;
	size_t n, used = 0;
	int r;

	script = pages;
	script_at = 0;
	pages_asked = 0;
	out[0] = '\0';
	r = listing_get(l, NULL, &ids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 i ? " " : "", ids[i]);
	listing_free_ids(ids, n);
	return 0;
}

static void test_pages(void)
{
	static const struct script_page pages[] = {
	    {"a b", NULL, 1}, {"c .hidden", NULL, 1}, {"c d", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];
	void *obj;
	int n;

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	listing_init(&l, &s, 2);
	CHECK(l.max_objects == LISTING_MAX_OBJECTS);
	CHECK(l.max_bytes == LISTING_MAX_BYTES);
	CHECK(list(&l, pages, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b c d") == 0);
	CHECK(pages_asked == 3);
	/* The cursor is the last id, even one left out. */
	CHECK(strcmp(cursors[0], "") == 0 && strcmp(cursors[1], "b") == 0);
	CHECK(strcmp(cursors[2], ".hidden") == 0);
	/* The store holds what was listed: no fetch. */
	n = fake_fetches;
	CHECK(store_get(&s, NULL, "c", STORE_FRESH, &obj, NULL) == 0);
	CHECK(strcmp(((struct fake *)obj)->text, "listed") == 0);
	fake_unref(obj);
	CHECK(fake_fetches == n);
	/* Younger than ttl: reused, no page asked. */
	CHECK(list(&l, pages, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b c d") == 0 && pages_asked == 0);
	listing_destroy(&l);
	store_destroy(&s);
}

static void test_cursors(void)
{
	static const struct script_page repeated[] = {
	    {"a b", NULL, 1}, {"c d", "b", 1}, {"e", NULL, 0}, {0}};
	static const struct script_page listed[] = {
	    {"a b", NULL, 1}, {"c", "a", 1}, {"e", NULL, 0}, {0}};
	static const struct script_page missing[] = {
	    {"a b", NULL, 1}, {"", "-", 1}, {"e", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];

	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	listing_init(&l, &s, 2);
	/* A cursor sent before ends the listing; what came is listed. */
	CHECK(list(&l, repeated, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b c d") == 0 && pages_asked == 2);
	/* So does the id of an object already listed. */
	CHECK(list(&l, listed, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b c") == 0 && pages_asked == 2);
	/* And has_more without a cursor. */
	CHECK(list(&l, missing, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b") == 0 && pages_asked == 2);
	listing_destroy(&l);
	store_destroy(&s);
}

static void test_bounds(void)
{
	static const struct script_page ok[] = {{"x y", NULL, 0}, {0}};
	static const struct script_page many[] = {
	    {"a b c", NULL, 1}, {"d e f", NULL, 1}, {"g", NULL, 0}, {0}};
	static const struct script_page endless[] = {
	    {"a", NULL, 1}, {"", "k1", 1}, {"", "k2", 1},  {"", "k3", 1},
	    {"", "k4", 1},  {"", "k5", 1}, {"z", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];

	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	listing_init(&l, &s, 3);
	l.max_objects = 5;
	l.max_pages = 4;
	l.max_bytes = 1000;

	/* No listing yet: the failure is the answer. */
	CHECK(list(&l, many, got, sizeof(got)) == -EIO);
	CHECK(list(&l, ok, got, sizeof(got)) == 0 && strcmp(got, "x y") == 0);
	/* Past the bounds: the previous listing is served. */
	CHECK(list(&l, many, got, sizeof(got)) == 0 && strcmp(got, "x y") == 0);
	CHECK(list(&l, endless, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "x y") == 0 && pages_asked == 4);
	big_bytes = 400;
	CHECK(list(&l, many, got, sizeof(got)) == 0 && strcmp(got, "x y") == 0);
	CHECK(pages_asked == 1);
	big_bytes = 0;
	/* A server that fails: the previous listing too. */
	CHECK(list(&l, (const struct script_page[]){{0}}, got, sizeof(got)) ==
	      0);
	CHECK(strcmp(got, "x y") == 0);
	/* Within the bounds again. */
	l.max_pages = 10;
	l.max_objects = 7;
	CHECK(list(&l, many, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b c d e f g") == 0);
	listing_destroy(&l);
	store_destroy(&s);
}

/* A listing under way when a newer answer came (a cancel) does not bring
 * the older lifecycle stage back. */
static void test_newer_answer(void)
{
	static const struct script_page pages[] = {{"a b", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];
	void *obj;

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	listing_init(&l, &s, 10);
	racing = &s;
	CHECK(list(&l, pages, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "a b") == 0);
	CHECK(store_get(&s, NULL, "b", STORE_ANY, &obj, NULL) == 0);
	CHECK(((struct fake *)obj)->rank == 4);
	fake_unref(obj);
	CHECK(store_get(&s, NULL, "a", STORE_ANY, &obj, NULL) == 0);
	CHECK(((struct fake *)obj)->rank == 2);
	fake_unref(obj);
	listing_destroy(&l);
	store_destroy(&s);
}

/* A refresh stops after a page of objects known as final once every
 * object known as not final was seen; the rest is the previous listing's. */
static void test_early_stop(void)
{
	static const struct script_page first[] = {
	    {"r1 F1", NULL, 1}, {"F2 F3", NULL, 1}, {"F4 F5", NULL, 0}, {0}};
	/* n is new: it pushes every other object down by one. */
	static const struct script_page again[] = {{"n r1", NULL, 1},
						   {"F1 F2", NULL, 1},
						   {"F3 F4", NULL, 1},
						   {"F5", NULL, 0},
						   {0}};
	/* o still runs behind final pages. */
	static const struct script_page old[] = {
	    {"F9 F8", NULL, 1}, {"F7 F6", NULL, 1}, {"o", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];

	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	listing_init(&l, &s, 2);
	/* The first listing is full. */
	CHECK(list(&l, first, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "r1 F1 F2 F3 F4 F5") == 0 && pages_asked == 3);
	CHECK(!l.stopped);
	/* Page 2 is all known final and r1 was seen: stop; the previous
	 * listing goes on after F2, with no id twice. */
	CHECK(list(&l, again, got, sizeof(got)) == 0);
	CHECK(strcmp(got, "n r1 F1 F2 F3 F4 F5") == 0);
	CHECK(pages_asked == 2 && l.stopped);
	CHECK(strcmp(cursors[1], "r1") == 0);
	/* n and r1 ended meanwhile: page 1 is final but not known as final,
	 * so the refresh goes on to page 2. */
	finals = " n r1 ";
	CHECK(list(&l, again, got, sizeof(got)) == 0);
	CHECK(pages_asked == 2 && l.stopped);
	CHECK(strcmp(got, "n r1 F1 F2 F3 F4 F5") == 0);
	/* Known final now: page 1 alone. */
	CHECK(list(&l, again, got, sizeof(got)) == 0);
	CHECK(pages_asked == 1 && l.stopped);
	CHECK(strcmp(got, "n r1 F1 F2 F3 F4 F5") == 0);
	finals = NULL;
	/* A full refresh (asked for) lists every page. */
	script = again;
	script_at = 0;
	pages_asked = 0;
	CHECK(listing_refresh(&l, NULL, store_clock(&s), 1) == 0);
	CHECK(pages_asked == 4 && !l.stopped);
	listing_destroy(&l);
	store_destroy(&s);

	/* An object known as running behind final pages is reached. */
	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	listing_init(&l, &s, 2);
	CHECK(list(&l, old, got, sizeof(got)) == 0 && pages_asked == 3);
	CHECK(list(&l, old, got, sizeof(got)) == 0);
	CHECK(pages_asked == 3 && !l.stopped);
	CHECK(strcmp(got, "F9 F8 F7 F6 o") == 0);
	/* full_every 0: never stops early. */
	l.full_every = 0;
	CHECK(list(&l, again, got, sizeof(got)) == 0 && pages_asked == 4);
	listing_destroy(&l);
	store_destroy(&s);
}

/* A listing is young for ttl from its end, or for as long as it took when
 * that was longer. */
static void test_age(void)
{
	static const struct script_page pages[] = {
	    {"a b", NULL, 1}, {"c", NULL, 0}, {0}};
	struct store s;
	struct listing l;
	char got[512];
	void *obj;
	int fetches = fake_fetches;

	CHECK(fake_store_init(&s, &source, 0.2, 5) == 0);
	listing_init(&l, &s, 2);
	page_delay = 0.4; /* the listing takes 0.8 s */
	CHECK(list(&l, pages, got, sizeof(got)) == 0 && pages_asked == 2);
	page_delay = 0;
	/* 0.4 s later: older than ttl, younger than the listing took. */
	fake_clock_advance(&fake_time, 0.4);
	CHECK(list(&l, pages, got, sizeof(got)) == 0 && pages_asked == 0);
	CHECK(strcmp(got, "a b c") == 0);
	/* So are the copies it brought, even from its first page. */
	CHECK(store_stale(&s, "a") == 0);
	CHECK(store_get(&s, NULL, "a", STORE_FRESH, &obj, NULL) == 0);
	fake_unref(obj);
	CHECK(fake_fetches == fetches);
	listing_destroy(&l);
	store_destroy(&s);
}

int main(void)
{
	log_init(1, 0);
	fake_clock_init(&fake_time);
	test_pages();
	test_cursors();
	test_bounds();
	test_newer_answer();
	test_early_stop();
	test_age();
	fake_clock_destroy(&fake_time);
	return check_done("listing");
}
