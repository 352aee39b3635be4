"""A bounded soak: 16 threads use the tree at once for KIMIFS_SOAK_SECONDS
(default 20; CI sets 60) against a simulator that is slow (20 ms a
request), fails 10% of the requests with 500 and about 5% with 429 (Retry-After
0 or 1), and whose batches change and multiply meanwhile.

It checks that every operation ends within its bound, that nothing
deadlocks or dies, that what is read is well formed, that the tree agrees
with the server once the faults stop, and that the daemon's memory stays
flat."""

import errno
import json
import os
import random
import threading
import time

from conftest import KIMIFS, STATES, read_text, wait_for

# A build with AddressSanitizer (scripts/test --asan) carries its runtime.
SANITIZED = b"__asan_init" in KIMIFS.read_bytes()

SOAK_SECONDS = float(os.environ.get("KIMIFS_SOAK_SECONDS", "20"))
WORKERS = 16
TIMEOUT = 5                 # -o timeout: bound on one API call, retries included
OP_BOUND = TIMEOUT + 2      # bound on one operation of a worker
CACHE_TTL = 0.5
PAGE_SIZE = 25              # listings take several pages
SEEDED = 60
UNKNOWN = ["batch_unknown%02d" % i for i in range(20)]
TRANSIENT = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT}
COUNT_NAMES = ["total", "completed", "failed"]

FAULTS = [
    # The first matching fault applies; a request that a fault's
    # probability spares falls through to the next one: about 10% 500s,
    # 2.2% 429 with Retry-After 0, 2.2% with Retry-After 1.
    {"count": -1, "probability": 0.10, "action": "status", "status": 500,
     "message": "soak 500"},
    {"count": -1, "probability": 0.025, "action": "status", "status": 429,
     "message": "soak 429 now", "headers": {"Retry-After": "0"}},
    {"count": -1, "probability": 0.025, "action": "status", "status": 429,
     "message": "soak 429 later", "headers": {"Retry-After": "1"}},
]


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class Soak:
    """The workers' shared record: per operation kind, the outcomes and
    the slowest call; and every outcome that is not allowed."""

    def __init__(self, m, seeded):
        self.m = m
        self.seeded = list(seeded)
        self.lock = threading.Lock()
        self.outcomes = {}          # kind -> {outcome: count}
        self.slowest = (0.0, None)  # (seconds, kind)
        self.slowest_by_kind = {}
        self.over_1s = {}           # kind -> operations slower than 1 s
        self.bad = []               # (kind, what, detail)

    def record(self, kind, outcome, seconds):
        with self.lock:
            d = self.outcomes.setdefault(kind, {})
            d[outcome] = d.get(outcome, 0) + 1
            if seconds > self.slowest[0]:
                self.slowest = (seconds, kind)
            if seconds > self.slowest_by_kind.get(kind, 0):
                self.slowest_by_kind[kind] = round(seconds, 2)
            if seconds > 1:
                self.over_1s[kind] = self.over_1s.get(kind, 0) + 1

    def wrong(self, kind, what, detail):
        with self.lock:
            if len(self.bad) < 50:
                self.bad.append((kind, what, detail))

    # ---- the operations: each returns normally, or raises OSError -------

    def op_listdir(self, rng):
        names = os.listdir(self.m.batches)
        missing = set(self.seeded) - set(names)
        if missing or len(names) != len(set(names)):
            self.wrong("listdir", "incomplete or repeated listing",
                       (len(names), sorted(missing)[:3]))

    def op_status(self, rng):
        text = read_text(self.m.batch(rng.choice(self.seeded), "status"))
        if text.rstrip("\n") not in STATES or not text.endswith("\n"):
            self.wrong("status", "bad status", text)

    def op_count(self, rng):
        name = rng.choice(COUNT_NAMES)
        text = read_text(self.m.batch(rng.choice(self.seeded), "request_counts", name))
        if not text.endswith("\n") or not text.strip().isdigit():
            self.wrong("count", "bad count", text)

    def op_json(self, rng):
        bid = rng.choice(self.seeded)
        text = read_text(self.m.batch(bid, "batch.json"))
        try:
            obj = json.loads(text)
        except ValueError:
            self.wrong("json", "not JSON", text[:200])
            return
        if obj.get("id") != bid or obj.get("status") not in STATES:
            self.wrong("json", "wrong object", text[:200])

    def op_stat(self, rng):
        bid = rng.choice(self.seeded)
        os.stat(self.m.batch(bid, rng.choice(["", "status", "ctl", "batch.json",
                                              "request_counts"])))

    def op_statfs(self, rng):
        os.statvfs(self.m.path)

    def op_cancel(self, rng):
        fd = os.open(self.m.batch(rng.choice(self.seeded), "ctl"), os.O_WRONLY)
        try:
            n = os.write(fd, b"cancel\n")
        finally:
            os.close(fd)
        if n != 7:
            self.wrong("cancel", "short write", n)

    def op_unknown(self, rng):
        # mostly from a small set (the remembered 404s), some never seen
        # before (each one a request, and an entry the cache must sweep)
        name = rng.choice(UNKNOWN) if rng.random() < 0.9 else \
            "batch_unknown%016x" % rng.getrandbits(64)
        try:
            os.stat(os.path.join(self.m.batches, name))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return
            raise
        self.wrong("unknown", "an unknown name exists", None)

    ALLOWED = {
        # besides success, the transient failures (after retries) ...
        "listdir": TRANSIENT, "status": TRANSIENT, "count": TRANSIENT,
        "json": TRANSIENT, "stat": TRANSIENT, "statfs": set(),
        # ... a cancel the batch's status forbids ...
        "cancel": TRANSIENT | {errno.EPERM},
        "unknown": TRANSIENT,
    }

    # How often each kind is picked. Listings of batches/ and lookups of
    # names not yet known in it run one at a time here (the kernel
    # serialises them per directory: libfuse 3.14's INIT reply does not
    # carry FUSE_PARALLEL_DIROPS, even for a minimal filesystem that wants
    # it), so they are the rarer kinds: otherwise most workers would queue
    # there and the rest of the tree would see little traffic.
    WEIGHTS = {"listdir": 1, "unknown": 1, "status": 3, "count": 3, "json": 3,
               "stat": 3, "statfs": 1, "cancel": 1}

    def worker(self, seed, deadline):
        rng = random.Random(seed)
        kinds = sorted(self.WEIGHTS)
        weights = [self.WEIGHTS[k] for k in kinds]
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            t0 = time.monotonic()
            try:
                getattr(self, "op_" + kind)(rng)
                outcome = "ok"
            except OSError as e:
                outcome = errno.errorcode.get(e.errno, str(e.errno))
                if e.errno not in self.ALLOWED[kind]:
                    self.wrong(kind, "errno", str(e))
            except Exception as e:          # a worker must never die silently
                outcome = "exception"
                self.wrong(kind, "exception", repr(e))
            self.record(kind, outcome, time.monotonic() - t0)
            # Pace the loop: the point is concurrency, not flooding loopback.
            time.sleep(rng.uniform(0.0005, 0.002))


def churn(sim, stop, created, rng, errors, seed_until):
    """The server side moves on: new batches appear (during the warm-up
    only, so that the memory samples compare like with like), running ones
    change status (never out of a final state, which the contract says is
    never refetched)."""
    try:
        churn_loop(sim, stop, created, rng, seed_until)
    except Exception as e:
        errors.append(repr(e))


def churn_loop(sim, stop, created, rng, seed_until):
    last_seed = time.monotonic()
    while not stop.wait(0.25):
        now = time.monotonic()
        if now < seed_until and now - last_seed >= 0.5:
            last_seed = time.monotonic()
            created.extend(sim.seed(1, status=rng.choice(["validating", "in_progress"])))
            continue
        live = [b for b in sim.batches()
                if b["status"] in ("validating", "in_progress", "finalizing")]
        if live:
            b = rng.choice(live)
            sim.state(b["id"], rng.choice(["validating", "in_progress", "finalizing"]))


def test_soak(sim, mount, monkeypatch):
    seeded = sim.seed(SEEDED)               # the eight statuses in turn
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")     # see the memory check
    sim.config(latency=0.02, cancel_delay=1)
    m = mount(timeout=TIMEOUT, cache_ttl=CACHE_TTL, page_size=PAGE_SIZE)
    pid = m.proc.pid
    sim.faults(FAULTS)
    soak = Soak(m, seeded)
    start = time.monotonic()
    deadline = start + SOAK_SECONDS
    threads = [threading.Thread(target=soak.worker, args=(i, deadline), daemon=True)
               for i in range(WORKERS)]
    stop_churn = threading.Event()
    created, churn_errors = [], []
    churner = threading.Thread(target=churn, daemon=True,
                               args=(sim, stop_churn, created, random.Random(99), churn_errors,
                                     start + SOAK_SECONDS / 4))
    for t in threads + [churner]:
        t.start()

    # Memory: one sample once the first quarter has warmed the daemon up
    # (threads spawned, every batch cached, allocator arenas grown), one at
    # the end. The test's own schedule, not synchronisation.
    time.sleep(SOAK_SECONDS / 4)
    rss_warm = vm_rss_kb(pid)
    samples = [rss_warm]
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        assert m.proc.poll() is None, "kimifs died: %s" % m.stderr_text()[-3000:]
        samples.append(vm_rss_kb(pid))

    # No deadlock: every worker ends within one operation's bound.
    for t in threads:
        t.join(max(0.0, deadline + OP_BOUND + 1 - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    stop_churn.set()
    churner.join(30)
    assert not stuck, "workers stuck past the deadline: %s" % stuck
    assert not churner.is_alive()
    assert churn_errors == [] and len(created) >= SOAK_SECONDS / 10, churn_errors
    rss_end = vm_rss_kb(pid)
    samples.append(rss_end)

    summary = ("outcomes %s; slowest %.2fs (%s), by kind %s, over 1 s %s; "
               "rss warm %d kB, end %d kB, samples %s") % (
        soak.outcomes, soak.slowest[0], soak.slowest[1], soak.slowest_by_kind,
        soak.over_1s, rss_warm, rss_end, samples)

    # The daemon lives and is still mounted.
    assert m.proc.poll() is None, m.stderr_text()[-3000:]
    assert os.path.ismount(m.path)

    # Every operation ended in time, with an allowed outcome and well-formed
    # content.
    assert soak.slowest[0] < OP_BOUND, summary
    assert soak.bad == [], summary

    # The soak did what it says: every kind of operation ran and the faults
    # were really served; and retries (and cached copies) hid them: with
    # 4 attempts at ~15% failures each, a transient error reaching a worker
    # should be rare, far below 5% of any kind.
    transient = {errno.errorcode[e] for e in TRANSIENT}
    for kind in Soak.ALLOWED:
        d = soak.outcomes.get(kind, {})
        assert d.get("ok", 0) >= 10, (kind, summary)
        failed = sum(n for k, n in d.items() if k in transient)
        assert failed <= 0.05 * sum(d.values()), (kind, summary)
    statuses = [r["status"] for r in sim.log()]
    summary += "; %d requests (%d 500s, %d 429s)" % (
        len(statuses), statuses.count(500), statuses.count(429))
    print(summary)
    assert statuses.count(500) >= 5 and statuses.count(429) >= 2, summary
    assert statuses.count(200) >= 50, summary

    # Memory stays flat. The daemon runs with one malloc arena
    # (MALLOC_ARENA_MAX=1, set above): with glibc's default of one arena per
    # thread, each of the ~10 FUSE threads grows its own arena to its own
    # high-water mark over the first tens of seconds, which hides small
    # leaks in noise (measured: +1.6 MB after the warm-up, flattening
    # only after a minute). With one arena and no new batches after the
    # warm-up, the RSS grows by 0.3 to 0.6 MB after the warm-up sample and
    # then stays put (measured over 20, 60 and 100 s soaks), so 1.5 MB is
    # about three times the noise and does not grow with the duration,
    # while a leak does. Measured with deliberately leaky builds: losing
    # the handle of every open (with the snapshot it pins) adds 3 MB in a
    # 20 s soak; losing every list answer adds 1.1 MB in 20 s, which only
    # the 60 s CI soak catches. Smaller leaks (a string per request) are
    # below what RSS can show; test_valgrind.py is there for them.
    # Under AddressSanitizer freed memory sits in its quarantine, so RSS
    # grows by design; there LeakSanitizer (at exit) is the leak check.
    if not SANITIZED:
        assert rss_end <= rss_warm + 1536, summary

    # Once the faults stop, the tree catches up with the server within a
    # few cache lifetimes (cancels still settling included).
    sim.clear_faults()
    sim.config(latency=0)

    def agrees():
        objs = {b["id"]: b["status"] for b in sim.batches()}
        names = os.listdir(m.batches)
        if sorted(names) != sorted(objs):
            return False
        return all(read_text(m.batch(bid, "status")) == status + "\n"
                   for bid, status in objs.items())

    wait_for(agrees, timeout=15, interval=0.2, what="the tree to match the simulator")
    assert set(created) <= set(os.listdir(m.batches))
    assert m.proc.poll() is None
