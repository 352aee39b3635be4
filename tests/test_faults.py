"""A misbehaving network or server: kimifs never hangs, never crashes and
never leaks (README: Errors, Running it; docs/filesystem.md: Errors).

Every operation here is bounded by `-o timeout=S` (retries included), is
retried only where the contract says so, serves the cached copy when a
refresh fails for a passing reason, and never holds up the rest of the
tree. The simulator's faults (docs/simulator.md) play the bad server; the
daemon's answers are measured with a monotonic clock and the requests it
sent are read back from the simulator's log.
"""

import errno
import os
import signal
import threading
import time

import pytest

from conftest import batch_path, is_mounted, read_text, timed, try_write, wait_for

FAST = ["connect_timeout=1"]   # a refused connection must not eat the budget
SLACK = 2.0                     # seconds allowed beyond a configured bound


def still_serving(m, sim):
    """The daemon is alive and answers: a fresh batch reads back."""
    assert m.proc.poll() is None, "kimifs died:\n" + m.stderr_text()[-3000:]
    (other,) = sim.seed(1, status="completed")
    assert read_text(m.batch(other, "status")) == "completed\n"


# --------------------------------------------------------------------------
# Time bounds: a server that does not answer, or answers too slowly


def start_hung_read(sim, m, bid):
    """Make GETs of batch `bid` hang, start reading its status in a thread
    and return (thread, result) once the hung request has reached the
    server; result["value"] is set by `timed` when the read ends."""
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="hang", seconds=60)
    sim.clear_log()
    result = {}

    def read():
        result["value"] = timed(read_text, m.batch(bid, "status"), limit=30)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: sim.retrieves(bid), timeout=5, what="the hung GET to reach the server")
    return reader, result


@pytest.mark.parametrize("fault", [
    {"action": "hang", "seconds": 60},
    {"action": "slow", "interval": 1},
], ids=["hang", "slow"])
def test_a_silent_server_times_out_within_the_bound(sim, mount, fault):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=2, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, **fault)
    t0 = time.monotonic()
    rc, out, text = m.sh("cat batches/%s/status" % bid, timeout=20)
    elapsed = time.monotonic() - t0
    assert rc != 0 and "Connection timed out" in text, text
    assert 1.5 <= elapsed < 2 + SLACK, elapsed
    assert len(sim.retrieves(bid)) >= 1
    assert bid in m.stderr_text()          # the failure is logged
    sim.clear_faults()
    still_serving(m, sim)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"


def test_a_dropped_connection_is_eio_after_the_retries(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=10, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="drop")
    err, _, elapsed = timed(read_text, m.batch(bid, "status"))
    assert err == errno.EIO
    assert elapsed < 10 + SLACK
    # retries=3 (the default): the first try and three more, at least.
    # (libcurl may itself resend once on a reused connection it finds
    # closed, so the count is a lower bound.)
    assert len(sim.retrieves(bid)) >= 4
    sim.clear_faults()
    still_serving(m, sim)


def test_a_dropped_connection_serves_the_cached_copy(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="drop")
    sim.clear_log()
    err, value, elapsed = timed(read_text, m.batch(bid, "status"))
    assert (err, value) == (0, "in_progress\n")
    assert elapsed < 5 + SLACK
    assert len(sim.retrieves(bid)) >= 2
    assert "serving the cached copy" in m.stderr_text()


def test_a_listing_that_hangs_times_out(sim, mount):
    sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=2, options=FAST)
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="hang", seconds=60)
    err, _, elapsed = timed(os.listdir, m.batches)
    assert err == errno.ETIMEDOUT
    assert elapsed < 2 + SLACK


# --------------------------------------------------------------------------
# Retries


def test_a_503_once_is_retried(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=5, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=1, action="status", status=503)
    rc, out, err = m.sh("cat batches/%s/status" % bid, timeout=20)
    assert (rc, out) == (0, "in_progress\n"), err
    assert [r["status"] for r in sim.retrieves(bid)] == [503, 200]
    assert [r for r in sim.log() if r["path"] != "/v1/batches/" + bid] == []


def test_a_429_waits_for_retry_after(sim, mount):
    # timeout=10: the one wait of 1 s fits with room on a loaded machine.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=10, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=1, action="status",
              status=429, headers={"Retry-After": "1"})
    err, value, elapsed = timed(read_text, m.batch(bid, "status"))
    assert (err, value) == (0, "in_progress\n")
    assert elapsed >= 0.9, "retried %.2f s after a Retry-After of 1 s" % elapsed
    assert elapsed < 10 + SLACK
    assert [r["status"] for r in sim.retrieves(bid)] == [429, 200]


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(sim, mount):
    # Waiting 30 s would break the 2 s bound: kimifs gives up instead.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=2, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=1, action="status",
              status=429, headers={"Retry-After": "30"})
    err, _, elapsed = timed(read_text, m.batch(bid, "status"))
    assert err == errno.EAGAIN
    assert elapsed < 2 + SLACK
    assert len(sim.retrieves(bid)) == 1


def test_429_forever_is_eagain_after_the_retries(sim, mount):
    # timeout=30: the three waits (at most 0.2 + 0.4 + 0.8 s) fit with room
    # to spare however loaded the machine, so the retry count, not the
    # deadline, ends the run here (the deadline's turn is the next test).
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=30, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status",
              status=429, message="rate limit reached for this test")
    err, _, elapsed = timed(read_text, m.batch(bid, "status"), limit=60)
    assert err == errno.EAGAIN
    assert elapsed < 30 + SLACK
    assert [r["status"] for r in sim.retrieves(bid)] == [429] * 4
    assert "rate limit reached for this test" in m.stderr_text()


@pytest.mark.parametrize("code, expected", [(429, errno.EAGAIN), (503, errno.EIO)],
                         ids=["429", "503"])
@pytest.mark.parametrize("pace", ["retry-after", "backoff"])
def test_when_the_deadline_ends_the_retries_the_last_error_stays(sim, mount, code,
                                                                   expected, pace):
    # retries=10, far more than fit in the bound: the deadline ends the run,
    # and the caller still gets the error the server gave (EAGAIN for 429,
    # EIO for 5xx, with its message), never ETIMEDOUT: no attempt timed out.
    #
    # "retry-after": every answer takes 0.3 s and asks for a wait of 1 s, so
    # attempts end at 0.3 s and 1.6 s; a third would start at 2.6 s with
    # 0.1 s of the 2.7 s bound left, less than its answer takes. kimifs
    # gives up instead of sending it (the old loop sent it, and the caller
    # got ETIMEDOUT). The second attempt has 1.4 s for an answer of 0.3 s:
    # a busy machine ends the run sooner, with the same error.
    # "backoff": no Retry-After; the shortest waits are 0.1, 0.2, 0.4 s
    # and a retry needs 0.25 s of the 1.5 s bound left: at most four
    # attempts.
    (bid,) = sim.seed(1, status="in_progress")
    message = "still %d for this test" % code
    if pace == "retry-after":
        timeout, headers = 2.7, {"Retry-After": "1"}
    else:
        timeout, headers = 1.5, {}
    m = mount(timeout=timeout, options=FAST + ["retries=10"])
    if pace == "retry-after":
        sim.config(latency=0.3)
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status",
              status=code, message=message, headers=headers)
    err, _, elapsed = timed(read_text, m.batch(bid, "status"))
    assert err == expected, os.strerror(err)
    statuses = [r["status"] for r in sim.retrieves(bid)]
    assert 1 <= len(statuses) < 11, statuses     # the deadline ended the run
    assert statuses == [code] * len(statuses)    # every attempt was answered
    if pace == "backoff":
        assert len(statuses) <= 4, statuses
    assert elapsed < timeout + SLACK
    assert message in m.stderr_text()
    sim.config(latency=0)
    sim.clear_faults()
    still_serving(m, sim)


@pytest.mark.parametrize("fault", [
    {"action": "status", "status": 500},
    {"action": "status", "status": 503},
    {"action": "status", "status": 429},
    {"action": "drop"},
], ids=["500", "503", "429", "drop"])
def test_retries_back_off(sim, mount, fault):
    # "Retries use exponential backoff with jitter": three retries that
    # follow each other within milliseconds are no backoff at all. (No
    # Retry-After header here; 0.1 s for three waits is a very low floor.)
    # timeout=30: all four attempts fit with room on a loaded machine.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=30, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, **fault)
    err, _, elapsed = timed(read_text, m.batch(bid, "status"), limit=60)
    assert err == (errno.EAGAIN if fault.get("status") == 429 else errno.EIO)
    assert len(sim.retrieves(bid)) >= 4
    assert elapsed >= 0.1, "4 attempts in %.3f s: no backoff between retries" % elapsed
    assert elapsed < 30 + SLACK


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_the_retries_option_bounds_the_attempts(sim, mount, retries):
    # timeout=30: the retry count, not the deadline, ends the run.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=30, options=FAST + ["retries=%d" % retries])
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status", status=503)
    err, _, _ = timed(read_text, m.batch(bid, "status"), limit=60)
    assert err == errno.EIO
    assert [r["status"] for r in sim.retrieves(bid)] == [503] * (retries + 1)


def test_retries_0_fails_on_a_single_503(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=5, options=FAST + ["retries=0"])
    sim.fault(method="GET", path=batch_path(bid), count=1, action="status", status=503)
    rc, out, err = m.sh("cat batches/%s/status" % bid, timeout=20)
    assert rc != 0 and "Input/output error" in err
    assert [r["status"] for r in sim.retrieves(bid)] == [503]


@pytest.mark.parametrize("code, expected", [
    (400, errno.EPERM), (401, errno.EACCES), (403, errno.EACCES),
])
def test_a_4xx_other_than_429_is_not_retried(sim, mount, code, expected):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=5, options=FAST)
    message = "no retry for %d please" % code
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status",
              status=code, message=message)
    err, _, elapsed = timed(read_text, m.batch(bid, "status"))
    assert err == expected
    assert elapsed < 1.0
    assert [r["status"] for r in sim.retrieves(bid)] == [code]
    assert m.stderr_text().count(message) == 1


# --------------------------------------------------------------------------
# Stale on error


@pytest.mark.parametrize("fault", [
    {"action": "status", "status": 500, "message": "upstream is on fire"},
    {"action": "status", "status": 502},
    {"action": "status", "status": 429},
    {"action": "hang", "seconds": 60},
    {"action": "truncate"},
], ids=["500", "502", "429", "hang", "truncate"])
def test_a_failed_refresh_serves_the_cached_copy(sim, mount, fault):
    (bid,) = sim.seed(1, status="in_progress", metadata={"team": "a"})
    m = mount(cache_ttl=0, timeout=1, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    before = read_text(m.batch(bid, "batch.json"))
    sim.fault(method="GET", path=batch_path(bid), count=-1, **fault)
    sim.clear_log()
    t0 = time.monotonic()
    rc, out, err = m.sh("cat batches/%s/status" % bid, timeout=20)
    assert (rc, out, err) == (0, "in_progress\n", "")
    assert time.monotonic() - t0 < 1 + SLACK
    assert len(sim.retrieves(bid)) >= 1
    assert "serving the cached copy" in m.stderr_text()
    if "message" in fault:
        assert fault["message"] in m.stderr_text()
    # The whole tree of the batch still reads from the cached copy.
    assert read_text(m.batch(bid, "batch.json")) == before
    assert read_text(m.batch(bid, "metadata", "team")) == "a\n"
    assert m.sh("ls batches/%s" % bid, timeout=20)[0] == 0
    # Once the server is back, the next open refreshes.
    sim.clear_faults()
    sim.state(bid, "finalizing")
    assert read_text(m.batch(bid, "status")) == "finalizing\n"


def test_a_404_after_caching_removes_the_batch(sim, mount):
    keep, gone = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=2, options=FAST)
    assert sorted(os.listdir(m.batches)) == sorted([keep, gone])
    assert read_text(m.batch(gone, "status")) == "in_progress\n"
    sim.delete(gone)
    rc, out, err = m.sh("cat batches/%s/status" % gone, timeout=20)
    assert rc != 0 and "No such file or directory" in err
    assert "serving the cached copy" not in m.stderr_text()
    assert os.listdir(m.batches) == [keep]
    rc, out, err = m.sh("ls batches/%s" % gone, timeout=20)
    assert rc != 0 and "No such file or directory" in err


def test_a_failed_listing_serves_the_cached_listing(sim, mount):
    ids = sim.seed(3, status="in_progress")
    m = mount(cache_ttl=0, timeout=2, options=FAST)
    assert sorted(os.listdir(m.batches)) == sorted(ids)
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="status", status=500)
    sim.clear_log()
    err, value, _ = timed(os.listdir, m.batches)
    assert err == 0 and sorted(value) == sorted(ids)
    assert len(sim.requests("GET", "/v1/batches")) >= 2
    assert "serving the cached listing" in m.stderr_text()


# --------------------------------------------------------------------------
# No global lock: one stuck request holds up nothing else


def test_a_hung_batch_holds_up_nothing_else(sim, mount):
    stuck, cached, fresh = sim.seed(3, status=["in_progress", "completed", "in_progress"])
    m = mount(cache_ttl=0, timeout=10, options=FAST)
    assert read_text(m.batch(stuck, "status")) == "in_progress\n"
    assert read_text(m.batch(cached, "status")) == "completed\n"
    reader, stuck_result = start_hung_read(sim, m, stuck)
    hung_at = time.monotonic()

    def quick(what, fn, *args):
        err, value, elapsed = timed(fn, *args, limit=15)
        assert err == 0, "%s failed with %s" % (what, os.strerror(err))
        assert elapsed < 1.0, "%s took %.2f s while another batch hung" % (what, elapsed)
        return value

    assert quick("cat of a cached batch", read_text, m.batch(cached, "status")) == "completed\n"
    assert quick("stat of the root", os.stat, m.path).st_mode & 0o777 == 0o555
    log_before = len(sim.log())
    quick("statvfs", os.statvfs, m.path)
    assert len(sim.log()) == log_before, "statfs sent a request"
    listing = quick("ls batches", os.listdir, m.batches)
    assert sorted(listing) == sorted([stuck, cached, fresh])
    assert sim.requests("GET", "/v1/batches"), "the listing was not fetched"
    assert quick("cat of an uncached batch", read_text, m.batch(fresh, "status")) == "in_progress\n"
    rc, out, err = m.sh("cat batches/%s/status batches/%s/status" % (cached, fresh), timeout=15)
    assert (rc, out) == (0, "completed\nin_progress\n"), err

    # All of that happened while the first read was still waiting.
    assert reader.is_alive() and time.monotonic() - hung_at < 10
    sim.clear_faults()               # ends the hung answer
    reader.join(15)
    assert not reader.is_alive()
    err, value, elapsed = stuck_result["value"]
    # Whatever it got (a retry, or the cached copy), it is an answer.
    assert (err, value) == (0, "in_progress\n")
    assert elapsed < 10 + SLACK


def test_concurrent_readers_of_a_hung_batch_all_get_the_cached_copy(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=2, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="hang", seconds=60)
    sim.clear_log()
    results = []

    def read():
        results.append(timed(read_text, m.batch(bid, "status"), limit=20))

    threads = [threading.Thread(target=read, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 4
    for err, value, elapsed in results:
        assert (err, value) == (0, "in_progress\n")
        assert elapsed < 2 + SLACK
    assert 1 <= len(sim.retrieves(bid)) <= 4


def test_sigterm_during_a_hung_request_exits_at_once(sim, mount):
    # The signal aborts the request under way: the exit does not wait for
    # the 30 s timeout.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=30, options=FAST)
    reader, result = start_hung_read(sim, m, bid)
    t0 = time.monotonic()
    status = m.stop(signal.SIGTERM, timeout=20)
    assert time.monotonic() - t0 < SLACK
    assert status == 0
    assert not is_mounted(m.path)
    reader.join(10)
    assert not reader.is_alive()
    assert result["value"][0] != 0


# --------------------------------------------------------------------------
# ctl over a bad network


def test_a_dropped_cancel_is_retried(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="POST", path="/cancel$", count=1, action="drop")
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid, timeout=20)
    assert (rc, err) == (0, "")
    posts = sim.cancels(bid)
    assert len(posts) >= 2 and posts[-1]["status"] == 200
    assert read_text(m.batch(bid, "ctl")) == "cancel: ok\n"
    assert read_text(m.batch(bid, "status")) == "cancelling\n"
    assert sim.get(bid)["status"] in ("cancelling", "cancelled")


def test_a_cancel_whose_answer_is_lost_still_succeeds(sim, mount):
    # The server cancels, then the answer is cut: the retry gets a 400
    # (already cancelling), and kimifs checks the batch before failing.
    sim.config(cancel_delay=100000)
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="POST", path="/cancel$", count=1, action="truncate")
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid, timeout=20)
    assert (rc, err) == (0, "")
    assert sim.get(bid)["status"] == "cancelling"
    assert [r["status"] for r in sim.cancels(bid)][-1] == 400
    assert sim.retrieves(bid)
    assert read_text(m.batch(bid, "ctl")) == "cancel: ok\n"
    assert read_text(m.batch(bid, "status")) == "cancelling\n"


def test_a_cancel_behind_our_back_is_a_success(sim, mount):
    sim.config(cancel_delay=100000)
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.state(bid, "cancelling")
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid, timeout=20)
    assert (rc, err) == (0, "")
    assert [(r["method"], r["path"], r["status"]) for r in sim.log()] == [
        ("POST", "/v1/batches/%s/cancel" % bid, 400),
        ("GET", "/v1/batches/" + bid, 200)]
    assert read_text(m.batch(bid, "ctl")) == "cancel: ok\n"
    assert read_text(m.batch(bid, "status")) == "cancelling\n"


def test_a_hung_cancel_times_out_within_the_bound(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=2, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="POST", path="/cancel$", count=-1, action="hang", seconds=60)
    t0 = time.monotonic()
    assert try_write(m.batch(bid, "ctl"), b"cancel\n", timeout=20) == errno.ETIMEDOUT
    assert time.monotonic() - t0 < 2 + SLACK
    assert read_text(m.batch(bid, "ctl")).startswith("cancel: failed: ")
    sim.clear_faults()
    still_serving(m, sim)


# --------------------------------------------------------------------------
# No leaks


def open_fds(m):
    return len(os.listdir("/proc/%d/fd" % m.proc.pid))


def test_failures_leak_no_descriptors(sim, mount):
    good, bad = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=1, options=FAST + ["retries=1"])
    for _ in range(3):
        assert read_text(m.batch(good, "status")) == "in_progress\n"
    before = open_fds(m)
    faults = [{"action": "drop"}, {"action": "status", "status": 500},
              {"action": "truncate"}, {"action": "body", "body": "{"},
              {"action": "status", "status": 404}, {"action": "hang", "seconds": 60}]
    for round_ in range(2):
        for f in faults:
            timeout = f["action"] == "hang"
            sim.fault(**dict(f, method="GET", path=batch_path(bad), count=-1))
            err, _, _ = timed(read_text, m.batch(bad, "status"))
            assert err != 0, f
            sim.clear_faults()
            if timeout:
                assert err == errno.ETIMEDOUT
            assert read_text(m.batch(good, "status")) == "in_progress\n"
    after = open_fds(m)
    assert after <= before + 2, "descriptors went from %d to %d" % (before, after)
    assert m.proc.poll() is None
