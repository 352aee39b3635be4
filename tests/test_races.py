"""Requests that overlap: an answer that comes back after a newer one, a
fetch that several readers share, and lookups of names never seen that the
kernel queues one behind the other (docs/filesystem.md: Freshness, Names,
ctl). The simulator's `delay` (stale), `hang` and `endless` faults play
the slow server; what the user reads is checked, and what the server
received is read back from the simulator's log.
"""

import errno
import os
import subprocess
import threading
import time

import pytest

from conftest import batch_path, read_text, try_write, wait_for

FAST = ["connect_timeout=1"]
SLACK = 4.0      # seconds allowed beyond a configured bound on a loaded machine


def background(fn, *args):
    """Run fn(*args) in a thread; returns (thread, box) where box gets
    "value" or "errno" once it returns."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
            box["errno"] = 0
        except OSError as e:
            box["errno"] = e.errno

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# --------------------------------------------------------------------------
# An older answer never replaces a newer one


@pytest.mark.parametrize("late", ["refresh", "listing"])
def test_a_late_answer_never_takes_a_cancel_back(sim, mount, late):
    (bid,) = sim.seed(1, status="in_progress")
    sim.config(cancel_delay=3600)            # stays cancelling for the test
    m = mount(cache_ttl=3600, timeout=10, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    path = "/v1/batches/" + bid if late == "refresh" else "/v1/batches"
    # The answer is made when the request arrives (in_progress) and comes
    # back 3 s later, after the cancel has been answered.
    sim.fault(method="GET", path="^%s$" % path, action="delay", seconds=3, stale=True)
    sim.clear_log()
    if late == "refresh":
        thread, box = background(try_write, m.batch(bid, "ctl"), b"refresh\n")
    else:
        thread, box = background(os.listdir, m.batches)
    wait_for(lambda: [r for r in sim.requests("GET", path) if r["status"] == 200],
             timeout=10, what="the late answer to be made")
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == 0
    assert read_text(m.batch(bid, "status")) == "cancelling\n"
    thread.join(20)
    assert not thread.is_alive()
    assert box["errno"] == 0               # the late request itself succeeded
    assert len(sim.requests("GET", path)) == 1
    for _ in range(3):
        assert read_text(m.batch(bid, "status")) == "cancelling\n"
    rc, out, err = m.sh("cat batches/%s/status batches/%s/ctl" % (bid, bid))
    assert (rc, out) == (0, "cancelling\ncancel: ok\n"), err
    assert sim.get(bid)["status"] == "cancelling"


def test_a_late_listing_never_moves_a_status_backwards(sim, mount):
    # The listing was sent before the refresh that saw `finalizing` was
    # answered, and comes back after it: its `in_progress` is older.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=10, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="GET", path="^/v1/batches$", action="delay", seconds=3, stale=True)
    thread, box = background(os.listdir, m.batches)
    wait_for(lambda: [r for r in sim.requests("GET", "/v1/batches") if r["status"] == 200],
             timeout=10, what="the late listing to be made")
    sim.state(bid, "finalizing")
    assert try_write(m.batch(bid, "ctl"), b"refresh\n") == 0
    assert read_text(m.batch(bid, "status")) == "finalizing\n"
    thread.join(20)
    assert box == {"value": [bid], "errno": 0}
    assert read_text(m.batch(bid, "status")) == "finalizing\n"


# --------------------------------------------------------------------------
# A refresh reports the failure of the fetch it shared


def test_a_refresh_sharing_a_failed_fetch_reports_the_failure(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=3, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="hang", seconds=60)
    sim.clear_log()
    # A reader whose refetch times out gets the cached copy ...
    reader, box = background(read_text, m.batch(bid, "status"))
    wait_for(lambda: sim.retrieves(bid), timeout=5, what="the reader's GET to reach the server")
    # ... but a refresh that waited on that same fetch must not say ok.
    t0 = time.monotonic()
    assert try_write(m.batch(bid, "ctl"), b"refresh\n") == errno.ETIMEDOUT
    assert time.monotonic() - t0 < 3 + SLACK
    outcome = read_text(m.batch(bid, "ctl"))
    assert outcome.startswith("refresh: failed: "), outcome
    reader.join(10)
    assert box == {"value": "in_progress\n", "errno": 0}
    assert len(sim.retrieves(bid)) == 1         # one fetch, shared
    sim.clear_faults()
    assert try_write(m.batch(bid, "ctl"), b"refresh\n") == 0
    assert read_text(m.batch(bid, "ctl")) == "refresh: ok\n"


# --------------------------------------------------------------------------
# Lookups of unseen names do not each wait on a request of their own


def proc_state(pid):
    """The one-letter state of process pid, or None once it has exited."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@pytest.mark.parametrize("n, probe", [(5, "cat"), (16, "stat")])
def test_unseen_names_do_not_queue_behind_each_other(sim, mount, n, probe):
    (cached,) = sim.seed(1, status="in_progress")
    timeout = 2
    m = mount(cache_ttl=3600, timeout=timeout, options=FAST)
    # Cached by the listing only: the kernel has not looked the name up
    # yet, so its lookup waits for the directory like the others.
    assert os.listdir(m.batches) == [cached]
    sim.fault(method="GET", path="^/v1/batches/batch_unseen", count=-1, action="hang",
              seconds=60)
    sim.clear_log()
    t0 = time.monotonic()
    procs = [subprocess.Popen(["cat", m.batch("batch_unseen%02d" % i, "status")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(n)]
    ends = {}

    def reap(p):
        out, err = p.communicate(timeout=120)
        ends[p.pid] = (time.monotonic() - t0, p.returncode, err.decode())

    reapers = [threading.Thread(target=reap, args=(p,), daemon=True) for p in procs]
    for t in reapers:
        t.start()
    try:
        # Every cat is inside the filesystem: one waits on its GET, the
        # others wait for the directory behind it.
        wait_for(lambda: sim.requests("GET"), timeout=10, what="a GET to reach the server")
        wait_for(lambda: all(proc_state(p.pid) in ("S", "D", "Z", None) for p in procs),
                 timeout=10, what="every cat to wait in the filesystem")
        t1 = time.monotonic()
        cmd = ("cat batches/%s/status" if probe == "cat" else "stat -c %%F batches/%s") % cached
        rc, out, err = m.sh(cmd, timeout=120)
        elapsed = time.monotonic() - t1
        assert rc == 0, err
        assert out == ("in_progress\n" if probe == "cat" else "directory\n")
        assert elapsed < timeout + SLACK, \
            "%s of a cached batch took %.1f s behind %d unseen names" % (probe, elapsed, n)
        for t in reapers:
            t.join(120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert len(ends) == n
    for took, rc, err in ends.values():
        assert rc != 0 and os.strerror(errno.ETIMEDOUT) in err, err
        assert took < timeout + SLACK, "a cat of an unseen name took %.1f s" % took
    unseen = [r for r in sim.log() if r["path"].startswith("/v1/batches/batch_unseen")]
    assert 1 <= len(unseen) <= 2, [r["path"] for r in unseen]
    # Once the server answers again, so do unseen names.
    sim.clear_faults()
    (new,) = sim.seed(1, status="completed")
    wait_for(lambda: m.sh("cat batches/%s/status" % new)[1] == "completed\n",
             timeout=timeout + SLACK, what="a new batch to be found by name")
    rc, out, err = m.sh("cat batches/batch_unseen00/status")
    assert rc != 0 and os.strerror(errno.ENOENT) in err
