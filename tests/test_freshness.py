"""When kimifs asks the server, and when it answers from its cache
(docs/filesystem.md: Names, Freshness, Errors). Every test checks what the
user reads and which requests reached the simulator."""

import errno
import json
import os
import threading
import time
import urllib.parse

import pytest

from conftest import FINAL_STATES, KIMIFS, errno_of, read_text, try_write, wait_for

# A build with AddressSanitizer (scripts/test --asan) carries its runtime.
SANITIZED = b"__asan_init" in KIMIFS.read_bytes()


def list_pages(sim):
    """The query of every GET /v1/batches in the log, as dicts."""
    return [dict(urllib.parse.parse_qsl(r["query"]))
            for r in sim.requests("GET", "/v1/batches")]


# --------------------------------------------------------------------------
# Listing


def test_listing_fetches_every_page(sim, mount):
    newest_first = sim.seed(250, status="in_progress")[::-1]
    m = mount()
    rc, out, err = m.sh("ls batches | wc -l")
    assert (rc, out.strip()) == (0, "250"), err
    assert list_pages(sim) == [
        {"limit": "100"},
        {"limit": "100", "after": newest_first[99]},
        {"limit": "100", "after": newest_first[199]},
    ]
    assert len(sim.log()) == 3


def test_page_size_option(sim, mount):
    newest_first = sim.seed(250, status="in_progress")[::-1]
    m = mount(page_size=50)
    rc, out, err = m.sh("ls batches | wc -l")
    assert out.strip() == "250"
    assert list_pages(sim) == [{"limit": "50"}] + [
        {"limit": "50", "after": newest_first[i]} for i in (49, 99, 149, 199)]


def test_ls_then_cat_all_costs_only_the_list_pages(sim, mount):
    states = ["in_progress", "completed", "validating", "finalizing", "failed"]
    sim.seed(250, status=states)
    m = mount(cache_ttl=60)
    rc, out, err = m.sh("ls batches > /dev/null; cat batches/*/status | sort | uniq -c")
    assert rc == 0, err
    counts = {word: int(n) for n, word in (l.split() for l in out.splitlines())}
    assert counts == {s: 50 for s in states}
    assert [r for r in sim.log() if r["path"] != "/v1/batches"] == []
    assert len(list_pages(sim)) == 3


def test_a_young_listing_is_reused(sim, mount):
    sim.seed(5, status="in_progress")
    m = mount(cache_ttl=60)
    first = m.sh("ls batches")[1]
    sim.create({"status": "in_progress"})
    assert m.sh("ls batches")[1] == first
    assert len(list_pages(sim)) == 1


def test_an_old_listing_is_fetched_again(sim, mount):
    sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0)
    assert len(m.sh("ls batches")[1].split()) == 2
    new = sim.create({"status": "in_progress"})["id"]
    out = m.sh("ls batches")[1].split()
    assert len(out) == 3 and new in out
    assert len(list_pages(sim)) == 2


# --------------------------------------------------------------------------
# Listing: bounded whatever the server says

LIST = "^/v1/batches$"           # fault path regex of the listing only
FAST = ["connect_timeout=1"]


def rss_mib(pid):
    """(VmRSS, VmHWM) of process pid in MiB."""
    with open("/proc/%d/status" % pid) as f:
        kb = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    return int(kb["VmRSS"].split()[0]) // 1024, int(kb["VmHWM"].split()[0]) // 1024


@pytest.mark.parametrize("last", ["unsafe", "malformed"])
def test_a_page_ending_in_a_left_out_batch_stops_at_the_repeated_cursor(sim, mount, last):
    # The cursor of the next page is the id of the page's last object, even
    # one that is not listed: when the server answers the same page again,
    # that cursor repeats and the listing ends with what was good.
    a, b = sim.seed(2, status="in_progress")
    objs = [sim.get(b), sim.get(a)]
    if last == "unsafe":
        tail = dict(objs[1], id="../escape")
    else:
        tail = {k: v for k, v in objs[1].items() if k != "status"}
        tail["id"] = "batch_" + "m" * 24
    body = json.dumps({"object": "list", "data": objs + [tail], "first_id": objs[0]["id"],
                       "last_id": tail["id"], "has_more": True})
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=LIST, count=-1, action="body", status=200, body=body)
    t0 = time.monotonic()
    assert sorted(os.listdir(m.batches)) == sorted([a, b])
    assert time.monotonic() - t0 < 5
    assert list_pages(sim) == [{"limit": "100"}, {"limit": "100", "after": tail["id"]}]
    log = m.stderr_text()
    assert log.count("cursor") == 1, log[-2000:]
    assert len(log.splitlines()) <= 4, log[-2000:]
    assert read_text(m.batch(a, "status")) == "in_progress\n"


LARGEST_METADATA = {("key%02d" % i).ljust(64, "k"): "v" * 512 for i in range(16)}


@pytest.mark.parametrize("metadata, rss_limit", [(None, 600), (LARGEST_METADATA, 1300)],
                         ids=["small-batches", "largest-batches"])
def test_an_endless_listing_is_bounded_and_keeps_the_last_one(sim, mount, metadata, rss_limit):
    # A server that answers has_more forever, with new ids on every page:
    # the listing gives up at its documented bound (200,000 batches or
    # 1 GiB of batch objects) long before the time bound, logs why, keeps
    # the previous listing, and gives the memory back. (Without the bound
    # the daemon passes the RSS limit within seconds.) AddressSanitizer
    # pads and quarantines every allocation: there the limit is wider and
    # freed memory is not given back by design.
    if SANITIZED:
        rss_limit = rss_limit * 5 // 2
    (a,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=300, options=FAST)
    assert os.listdir(m.batches) == [a]
    sim.fault(method="GET", path=LIST, count=-1, action="endless", metadata=metadata)
    sim.clear_log()
    box = {}

    def ls():
        try:
            box["value"] = os.listdir(m.batches)
        except OSError as e:
            box["errno"] = e.errno

    thread = threading.Thread(target=ls, daemon=True)
    thread.start()
    t0 = time.monotonic()
    while thread.is_alive():
        rss, peak = rss_mib(m.proc.pid)
        assert peak < rss_limit, "kimifs grew to %d MiB on an endless listing" % peak
        assert time.monotonic() - t0 < 120, "the endless listing was not cut off"
        thread.join(0.05)
    assert box == {"value": [a]}
    log = m.stderr_text()
    assert "giving up" in log and "serving the cached listing" in log, log[-2000:]
    assert len(log.splitlines()) <= 4, log[-2000:]
    pages = len(list_pages(sim))
    assert 2 <= pages <= 200000 // 100 + 1
    sim.clear_faults()
    rss, peak = rss_mib(m.proc.pid)
    if not SANITIZED:
        assert rss < 200, "kimifs still holds %d MiB after the listing failed" % rss
    assert os.listdir(m.batches) == [a]


# --------------------------------------------------------------------------
# cache_ttl


def test_cache_ttl_0_refetches_on_every_open(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.clear_log()
    for _ in range(3):
        assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches/" + bid)] * 3


def test_within_cache_ttl_nothing_is_sent(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.clear_log()
    sim.state(bid, "finalizing")
    for _ in range(3):
        assert m.sh("cat batches/%s/status batches/%s/created_at" % (bid, bid))[0] == 0
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    assert m.sh("ls batches/%s" % bid)[0] == 0
    assert sim.log() == []


def test_stat_never_sends_for_a_cached_batch(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert m.sh("cat batches/%s/status" % bid)[0] == 0
    sim.clear_log()
    rc, out, err = m.sh("stat batches/{0} batches/{0}/status batches/{0}/created_at "
                        "batches/{0}/request_counts/total".format(bid))
    assert rc == 0, err
    assert sim.log() == []


def test_a_change_shows_after_cache_ttl(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=1)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.state(bid, "finalizing")
    wait_for(lambda: m.sh("cat batches/%s/status" % bid)[1] == "finalizing\n",
             timeout=10, what="status to read finalizing")


@pytest.mark.parametrize("state", FINAL_STATES)
def test_final_batches_are_never_refetched(sim, mount, state):
    (bid,) = sim.seed(1, status=state)
    m = mount(cache_ttl=0)
    for _ in range(3):
        assert m.sh("cat batches/%s/status" % bid)[1] == state + "\n"
        assert m.sh("cat batches/%s/batch.json > /dev/null; ls batches/%s > /dev/null"
                    % (bid, bid))[0] == 0
    assert len(sim.retrieves(bid)) <= 1


def test_a_final_batch_from_the_listing_is_never_fetched(sim, mount):
    (bid,) = sim.seed(1, status="completed")
    m = mount(cache_ttl=0)
    assert m.sh("ls batches")[1] == bid + "\n"
    for _ in range(3):
        assert m.sh("cat batches/%s/status" % bid)[1] == "completed\n"
    assert sim.retrieves(bid) == []


# --------------------------------------------------------------------------
# Names


def test_unknown_name_is_enoent_and_remembered(sim, mount):
    sim.seed(1, status="in_progress")
    m = mount(cache_ttl=60)
    rc, out, err = m.sh("cat batches/batch_doesnotexist/status")
    assert rc != 0 and "No such file or directory" in err
    assert [(r["method"], r["path"], r["status"]) for r in sim.log()] == [
        ("GET", "/v1/batches/batch_doesnotexist", 404)]
    sim.clear_log()
    rc, out, err = m.sh("cat batches/batch_doesnotexist/status; ls batches/batch_doesnotexist")
    assert rc != 0
    assert errno_of(os.stat, os.path.join(m.batches, "batch_doesnotexist")) == errno.ENOENT
    assert sim.log() == []


@pytest.mark.parametrize("name", [".hidden", "a b", "x%2F", "n" * 200, "semi;colon",
                                  "caf\u00e9", "q?x", "tab\tname"])
def test_a_name_that_cannot_be_an_id_sends_nothing(sim, mount, name):
    sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    path = os.path.join(m.batches, name)
    assert errno_of(os.stat, path) == errno.ENOENT
    assert errno_of(os.stat, os.path.join(path, "status")) == errno.ENOENT
    rc, out, err = m.sh("cat 'batches/%s/status'" % name)
    assert rc != 0 and "No such file or directory" in err
    assert sim.log() == []


def test_a_name_that_no_batch_has_costs_nothing_inside_a_batch(sim, mount):
    # Only three names can be under request_counts/, and only the fields of
    # the schema beside them: others are ENOENT at once, however old the
    # copy (cache_ttl=0), with no request.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    for rel in ("request_counts/bogus", "request_counts/totals", "bogus",
                "status.txt", "request_counts/total/x"):
        assert errno_of(os.stat, m.batch(bid, rel)) in (errno.ENOENT, errno.ENOTDIR), rel
    assert sim.log() == []


def test_a_batch_created_after_the_listing_is_reachable_by_name(sim, mount):
    sim.seed(2, status="in_progress")
    m = mount(cache_ttl=60)
    assert len(m.sh("ls batches")[1].split()) == 2
    sim.clear_log()
    new = sim.create({"status": "in_progress"})["id"]
    rc, out, err = m.sh("cat batches/%s/status" % new)
    assert (rc, out) == (0, "in_progress\n"), err
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches/" + new)]


# --------------------------------------------------------------------------
# Snapshots


@pytest.mark.parametrize("before, after", [("validating", "in_progress"),
                                           ("in_progress", "completed")])
def test_one_fd_sees_one_snapshot_of_the_right_size(sim, mount, before, after):
    (bid,) = sim.seed(1, status=before)
    m = mount(cache_ttl=0)
    status = m.batch(bid, "status")
    assert read_text(status) == before + "\n"
    sim.state(bid, after)
    fd = os.open(status, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = b""
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    assert data == (after + "\n").encode()
    assert size == len(data)
    assert m.sh("cat batches/%s/status" % bid)[1] == after + "\n"


def test_a_file_read_in_pieces_comes_from_one_snapshot(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    with open(m.batch(bid, "batch.json"), "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        sim.state(bid, "completed")
        assert try_write(m.batch(bid, "ctl"), b"refresh\n") == 0
        assert read_text(m.batch(bid, "status")) == "completed\n"
        rest = f.read()
    old = json.loads(head + rest)
    assert old["status"] == "in_progress"
    assert size == len(head + rest)
    assert json.loads(read_text(m.batch(bid, "batch.json")))["status"] == "completed"


def test_a_null_field_appears_once_the_step_happens(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=1)
    rc, out, err = m.sh("cat batches/%s/completed_at" % bid)
    assert rc != 0 and "No such file or directory" in err
    sim.state(bid, "completed")
    completed_at = sim.get(bid)["completed_at"]
    wait_for(lambda: m.sh("cat batches/%s/completed_at" % bid)[0] == 0,
             timeout=10, what="completed_at to appear")
    assert m.sh("cat batches/%s/completed_at" % bid)[1] == "%d\n" % completed_at
    assert m.sh("cat batches/%s/status" % bid)[1] == "completed\n"


def test_a_null_field_of_a_young_copy_is_answered_from_the_cache(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[0] == 0
    sim.state(bid, "completed")
    sim.clear_log()
    assert errno_of(os.stat, m.batch(bid, "completed_at")) == errno.ENOENT
    assert sim.log() == []


# --------------------------------------------------------------------------
# Errors while reading


@pytest.mark.parametrize("fault, expected", [
    ({"action": "status", "status": 401, "message": "Invalid Authentication"}, errno.EACCES),
    ({"action": "status", "status": 403, "message": "Forbidden for this key"}, errno.EACCES),
    ({"action": "status", "status": 500, "message": "upstream exploded"}, errno.EIO),
    ({"action": "status", "status": 429, "message": "rate limit reached"}, errno.EAGAIN),
    ({"action": "body", "status": 200, "body": "{not json"}, errno.EIO),
    ({"action": "hang", "seconds": 5}, errno.ETIMEDOUT),
], ids=["401", "403", "500", "429", "malformed", "timeout"])
def test_errors_while_looking_up_a_batch(sim, mount, fault, expected):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=1)
    sim.fault(method="GET", path="^/v1/batches/%s$" % bid, count=-1, **fault)
    rc, out, err = m.sh("cat batches/%s/status" % bid)
    assert rc != 0
    assert os.strerror(expected) in err
    assert len(sim.retrieves(bid)) >= 1
    if "message" in fault:
        assert fault["message"] in m.stderr_text()
    sim.clear_faults()
    wait_for(lambda: m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n",
             timeout=10, what="the batch to be readable once the fault is gone")
