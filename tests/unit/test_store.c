/*
 * test_store.c - unit tests of the object store with a fake kind whose
 * fetch is a stub: freshness (ttl, final objects, 404s remembered, the
 * copy served after a passing failure), the rule that only a newer answer
 * replaces an object, single flight, the probe while the server is down,
 * the change stamp with its per-entry wait and deadline, and the kind told
 * of each change (old and new) without the store's lock. The store's
 * time is a fake clock the tests move on: nothing waits for real time.
 */
#include "fake_kind.h"

#include "check.h"
#include "log.h"

static const struct store_source source = {
    .fetch = fake_fetch,
};

static int fetches(void)
{
	int n;

	pthread_mutex_lock(&fake_lock);
	n = fake_fetches;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

static void answer(int result, int rank, const char *text, int final)
{
	pthread_mutex_lock(&fake_lock);
	fake_result = result;
	fake_rank = rank;
	fake_text = text;
	fake_final = final;
	pthread_mutex_unlock(&fake_lock);
}

/* store_get, and the text of what it gave ("" for none). */
static int get(struct store *s, const char *id, enum store_mode mode,
	       char *text, int *rank)
{
	void *obj = NULL;
	int r = store_get(s, NULL, id, mode, &obj, NULL);
	struct fake *f = obj;

	snprintf(text, 64, "%s", f ? f->text : "");
	if (rank)
		*rank = f ? f->rank : 0;
	fake_unref(f);
	return r;
}

static void put(struct store *s, const char *id, int rank, const char *text,
		double sent)
{
	struct fake *f = fake_new(id, rank, text);

	store_put(s, f, sent);
	fake_unref(f);
}

static void test_freshness_long_ttl(void)
{
	struct store s;
	char t[64];
	int n = fetches();

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	answer(0, 2, "a", 0);
	CHECK(get(&s, "a", STORE_ANY, t, NULL) == 0 && strcmp(t, "a") == 0);
	CHECK(fetches() == n + 1);
	CHECK(get(&s, "a", STORE_FRESH, t, NULL) == 0 && fetches() == n + 1);
	answer(0, 2, "b", 0);
	CHECK(get(&s, "a", STORE_FORCE, t, NULL) == 0 && strcmp(t, "b") == 0);
	CHECK(fetches() == n + 2);

	/* A 404 is remembered for ttl. */
	answer(-ENOENT, 0, "", 0);
	CHECK(get(&s, "gone", STORE_FRESH, t, NULL) == -ENOENT);
	CHECK(get(&s, "gone", STORE_ANY, t, NULL) == -ENOENT);
	CHECK(fetches() == n + 3);

	/* A final object is never fetched again, not even by force. */
	answer(0, 5, "done", 1);
	CHECK(get(&s, "f", STORE_ANY, t, NULL) == 0 && fetches() == n + 4);
	CHECK(get(&s, "f", STORE_FORCE, t, NULL) == 0 && fetches() == n + 4);
	store_destroy(&s);
}

static void test_freshness_no_ttl(void)
{
	struct store s;
	struct api_error err;
	void *obj;
	char t[64];
	int n = fetches();

	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	answer(0, 2, "a", 0);
	CHECK(get(&s, "a", STORE_FRESH, t, NULL) == 0 && fetches() == n + 1);
	CHECK(get(&s, "a", STORE_FRESH, t, NULL) == 0 && fetches() == n + 2);
	CHECK(get(&s, "a", STORE_ANY, t, NULL) == 0 && fetches() == n + 2);

	answer(-ENOENT, 0, "", 0);
	CHECK(get(&s, "gone", STORE_FRESH, t, NULL) == -ENOENT);
	CHECK(get(&s, "gone", STORE_FRESH, t, NULL) == -ENOENT);
	CHECK(fetches() == n + 4);

	/* A passing failure serves the copy, but to STORE_FORCE. */
	answer(-EIO, 0, "", 0);
	CHECK(get(&s, "a", STORE_FRESH, t, NULL) == 0 && strcmp(t, "a") == 0);
	CHECK(fetches() == n + 5);
	CHECK(store_get(&s, NULL, "a", STORE_FORCE, &obj, &err) == -EIO);
	CHECK(obj == NULL && strcmp(err.message, "stub says -5") == 0);
	CHECK(err.fail == API_FAIL_SERVER_DOWN);
	/* Not a passing one: reported. */
	answer(-EACCES, 0, "", 0);
	CHECK(get(&s, "a", STORE_FRESH, t, NULL) == -EACCES);
	/* No copy to serve. */
	answer(-EIO, 0, "", 0);
	CHECK(get(&s, "new", STORE_FRESH, t, NULL) == -EIO);
	store_destroy(&s);
}

static void test_newer_answer(void)
{
	struct store s;
	char t[64];
	int rank;
	double before;

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	before = store_clock(&s);
	put(&s, "x", 2, "running", store_clock(&s));
	CHECK(get(&s, "x", STORE_ANY, t, &rank) == 0 && rank == 2);
	/* Overlapping requests: only a later rank replaces. */
	put(&s, "x", 1, "earlier", before);
	CHECK(get(&s, "x", STORE_ANY, t, &rank) == 0 && rank == 2);
	put(&s, "x", 4, "cancelling", before);
	CHECK(get(&s, "x", STORE_ANY, t, &rank) == 0 && rank == 4);
	/* Sent after the stored answer came: the server's word. */
	put(&s, "x", 1, "back", store_clock(&s));
	CHECK(get(&s, "x", STORE_ANY, t, &rank) == 0 && rank == 1);
	/* Answered before the stored one was sent: never. */
	put(&s, "x", 3, "future", store_clock(&s) + 100);
	put(&s, "x", 5, "older", store_clock(&s));
	CHECK(get(&s, "x", STORE_ANY, t, NULL) == 0 &&
	      strcmp(t, "future") == 0);
	store_destroy(&s);
}

struct getter {
	struct store *s;
	const char *id;
	enum store_mode mode;
	int r;
	int rank;
	void *obj;
	pthread_t t;
};

static void *getter_run(void *arg)
{
	struct getter *g = arg;
	struct fake *f;

	g->r = store_get(g->s, NULL, g->id, g->mode, &g->obj, NULL);
	f = g->obj;
	g->rank = f ? f->rank : 0;
	return NULL;
}

/* A fetch under way when a newer answer came (a cancel) does not bring
 * the older lifecycle stage back; its caller gets the newer one. */
static void test_overlapping_fetch(void)
{
	struct store s;
	struct getter g;
	char t[64];
	int rank;

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	put(&s, "x", 2, "running", store_clock(&s));
	answer(0, 2, "running", 0);
	fake_close();
	g = (struct getter){&s, "x", STORE_FORCE, 0, 0, NULL, 0};
	pthread_create(&g.t, NULL, getter_run, &g);
	fake_wait_entered(1);
	put(&s, "x", 4, "cancelling", store_clock(&s));
	fake_open();
	pthread_join(g.t, NULL);
	CHECK(g.r == 0 && g.rank == 4);
	fake_unref(g.obj);
	CHECK(get(&s, "x", STORE_ANY, t, &rank) == 0 && rank == 4);
	store_destroy(&s);
}

/* A caller waiting on another's fetch stops at once when its own
 * operation is interrupted (-EINTR) or reaches its deadline (-ETIMEDOUT);
 * the fetch under way goes on for its own caller. */
struct op_getter {
	struct store *s;
	struct op *op;
	int r;
	void *obj;
	pthread_t t;
};

static void *op_getter_run(void *arg)
{
	struct op_getter *g = arg;

	g->r = store_get(g->s, g->op, "i", STORE_FRESH, &g->obj, NULL);
	return NULL;
}

static void test_interrupted_waits(void)
{
	struct store s;
	struct op a, b, c;
	struct op_getter ga = {&s, &a, 0, NULL, 0};
	struct op_getter gb = {&s, &b, 0, NULL, 0};
	struct op_getter gc = {&s, &c, 0, NULL, 0};

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	a = (struct op){store_clock(&s) + 30, 0};
	b = (struct op){store_clock(&s) + 30, 0};
	c = (struct op){store_clock(&s) + 0.2, 0};
	answer(0, 2, "one", 0);
	fake_close();
	pthread_create(&ga.t, NULL, op_getter_run, &ga);
	fake_wait_entered(1); /* a's fetch is under way */
	b.interrupted = 1;
	pthread_create(&gb.t, NULL, op_getter_run, &gb);
	pthread_join(gb.t, NULL);
	CHECK(gb.r == -EINTR && gb.obj == NULL);
	/* c waits behind a's fetch until its deadline comes. */
	pthread_create(&gc.t, NULL, op_getter_run, &gc);
	CHECK(fake_clock_sleeping(&fake_time, 1, NULL));
	fake_clock_advance(&fake_time, 0.2);
	pthread_join(gc.t, NULL);
	CHECK(gc.r == -ETIMEDOUT && gc.obj == NULL);
	fake_open(); /* neither waited for the fetch */
	pthread_join(ga.t, NULL);
	CHECK(ga.r == 0 && ga.obj != NULL);
	fake_unref(ga.obj);
	store_destroy(&s);
}

/* Concurrent readers of one id share one fetch. */
static void test_single_flight(void)
{
	struct store s;
	struct getter g[8];
	int n = fetches();

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	answer(0, 2, "one", 0);
	fake_close();
	for (int i = 0; i < 8; i++) {
		g[i] = (struct getter){&s, "s", STORE_FRESH, 0, 0, NULL, 0};
		pthread_create(&g[i].t, NULL, getter_run, &g[i]);
	}
	fake_wait_entered(1);
	fake_open();
	for (int i = 0; i < 8; i++) {
		pthread_join(g[i].t, NULL);
		CHECK(g[i].r == 0 && g[i].obj == g[0].obj);
		fake_unref(g[i].obj);
	}
	CHECK(fetches() == n + 1);
	store_destroy(&s);
}

/* While the server is down, a probe for another unseen id goes to the
 * background and its caller waits at most a glance; a probe under way
 * fails the next ones at once; its answer is kept when it comes. */
static void test_probe_server_down(void)
{
	struct store s;
	struct getter g;
	double glance;
	char t[64];
	int n;

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	answer(-ETIMEDOUT, 0, "", 0);
	CHECK(get(&s, "p1", STORE_FRESH, t, NULL) == -ETIMEDOUT);
	answer(0, 2, "late", 0);
	fake_close();
	g = (struct getter){&s, "p2", STORE_FRESH, 0, 0, NULL, 0};
	pthread_create(&g.t, NULL, getter_run, &g);
	/* It glances at the probe for a second at most. */
	CHECK(fake_clock_sleeping(&fake_time, 1, &glance));
	CHECK(glance <= store_clock(&s) + 1.0);
	fake_clock_set(&fake_time, glance);
	pthread_join(g.t, NULL);
	CHECK(g.r == -ETIMEDOUT && g.obj == NULL);
	fake_wait_entered(1); /* the probe in the background */
	n = fetches();
	CHECK(get(&s, "p3", STORE_FRESH, t, NULL) == -ETIMEDOUT);
	CHECK(fetches() == n); /* failed at once, no request */
	fake_open();
	CHECK(store_wait(&s, NULL, "p2", 0, store_clock(&s) + 10, NULL) == 0);
	CHECK(get(&s, "p2", STORE_ANY, t, NULL) == 0 && strcmp(t, "late") == 0);
	CHECK(fetches() == n);
	store_destroy(&s);
}

struct waiter {
	struct store *s;
	const char *id;
	uint64_t seen;
	double deadline;
	uint64_t now;
	int r;
	pthread_t t;
};

static void *waiter_run(void *arg)
{
	struct waiter *w = arg;

	w->r = store_wait(w->s, NULL, w->id, w->seen, w->deadline, &w->now);
	return NULL;
}

static void test_changes_and_wait(void)
{
	struct store s;
	struct waiter w, other;
	uint64_t c1, c2, c3, now;
	double t0;
	char t[64];

	CHECK(fake_store_init(&s, &source, 3600, 5) == 0);
	CHECK(store_changes(&s, "w") == 0);
	put(&s, "w", 2, "a", store_clock(&s));
	c1 = store_changes(&s, "w");
	CHECK(c1 > 0);
	put(&s, "w", 2, "a", store_clock(&s)); /* says the same */
	CHECK(store_changes(&s, "w") == c1);
	put(&s, "w", 2, "b", store_clock(&s));
	c2 = store_changes(&s, "w");
	CHECK(c2 > c1);

	/* The deadline ends a wait for a change that does not come. */
	t0 = store_clock(&s);
	w = (struct waiter){&s, "w", c2, t0 + 0.1, 0, 1, 0};
	pthread_create(&w.t, NULL, waiter_run, &w);
	CHECK(fake_clock_sleeping(&fake_time, 1, NULL));
	fake_clock_advance(&fake_time, 0.1);
	pthread_join(w.t, NULL);
	CHECK(w.r == -ETIMEDOUT && w.now == c2);
	CHECK(store_wait(&s, NULL, "w", c1, t0 + 10, &now) == 0 && now == c2);

	/* A waiter of w is woken by w's change, not held till its deadline;
	 * one of v sleeps through changes of w. */
	t0 = store_clock(&s);
	w = (struct waiter){&s, "w", c2, t0 + 30, 0, 1, 0};
	other = (struct waiter){&s, "v", 0, t0 + 0.2, 0, 1, 0};
	pthread_create(&w.t, NULL, waiter_run, &w);
	pthread_create(&other.t, NULL, waiter_run, &other);
	CHECK(fake_clock_sleeping(&fake_time, 2, NULL));
	put(&s, "u", 2, "elsewhere", store_clock(&s));
	put(&s, "w", 3, "c", store_clock(&s));
	pthread_join(w.t, NULL); /* long before its deadline */
	CHECK(w.r == 0 && w.now > c2);
	CHECK(fake_clock_sleeping(&fake_time, 1, NULL)); /* v sleeps on */
	fake_clock_advance(&fake_time, 0.2);
	pthread_join(other.t, NULL);
	CHECK(other.r == -ETIMEDOUT && other.now == 0);
	c3 = store_changes(&s, "w");
	CHECK(c3 == w.now);

	/* Gone is a change; a 404 for an id never seen is not. */
	answer(-ENOENT, 0, "", 0);
	CHECK(get(&s, "w", STORE_FORCE, t, NULL) == -ENOENT);
	CHECK(store_changes(&s, "w") > c3);
	CHECK(get(&s, "n", STORE_FORCE, t, NULL) == -ENOENT);
	CHECK(store_changes(&s, "n") == 0);
	store_destroy(&s);
}

/* The changes the kind was told of ("a>b c>d "), and whether it was
 * ever told under the store's lock. */
static struct store *told_store;
static char told[256];
static int told_locked;

static void told_changed(const void *old, const void *obj)
{
	const struct fake *a = old, *b = obj;
	size_t n = strlen(told);

	/* events_add wakes readers: no lock of the store may be held. */
	if (pthread_mutex_trylock(&told_store->lock) == 0)
		pthread_mutex_unlock(&told_store->lock);
	else
		told_locked = 1;
	snprintf(told + n, sizeof(told) - n, "%s>%s ", a->text, b->text);
}

static void test_changed_unlocked(void)
{
	struct object_kind kind = fake_kind;
	struct store s;
	struct store_item items[2];
	char t[64];

	kind.changed = told_changed;
	CHECK(fake_store_init(&s, &source, 0, 5) == 0);
	s.kind = &kind;
	told_store = &s;
	/* A first copy is no change; the same again neither. */
	put(&s, "x", 2, "a", store_clock(&s));
	put(&s, "x", 2, "a", store_clock(&s));
	put(&s, "x", 2, "b", store_clock(&s));
	answer(0, 2, "c", 0);
	CHECK(get(&s, "x", STORE_FORCE, t, NULL) == 0);
	items[0] = (struct store_item){fake_new("x", 2, "d"), store_clock(&s),
				       store_clock(&s), 0};
	items[1] = (struct store_item){fake_new("y", 2, "e"), store_clock(&s),
				       store_clock(&s), 0};
	CHECK(store_learn_listing(&s, items, 2) == 0);
	/* Gone is no change of what an object says. */
	answer(-ENOENT, 0, "", 0);
	CHECK(get(&s, "x", STORE_FORCE, t, NULL) == -ENOENT);
	CHECK(strcmp(told, "a>b b>c c>d ") == 0);
	CHECK(!told_locked);
	store_destroy(&s);
}

int main(void)
{
	log_init(1, 0);
	fake_clock_init(&fake_time);
	test_freshness_long_ttl();
	test_freshness_no_ttl();
	test_newer_answer();
	test_overlapping_fetch();
	test_single_flight();
	test_probe_server_down();
	test_changes_and_wait();
	test_interrupted_waits();
	test_changed_unlocked();
	fake_clock_destroy(&fake_time);
	return check_done("store");
}
