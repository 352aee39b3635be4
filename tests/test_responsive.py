"""The mount stays responsive however many requests wait on a slow server
(README: Running it, time bounds): `df`, a stat of the root and reads of
cached batches answer at once while 16 or 64 other reads each hold a hung
request, and the waiting reads still end with an answer once the server
comes back. Ctrl-C on a command that waits on the server ends it at once.
"""

import os
import threading

import pytest

from conftest import interrupted_after, read_text, timed, wait_for

FAST = ["connect_timeout=1"]
QUICK = 2.0  # seconds a non-waiting operation may take on a loaded machine


def retrieves_in_flight(sim, ids):
    wanted = set("/v1/batches/" + b for b in ids)
    return len({r["path"] for r in sim.log() if r["method"] == "GET"} & wanted)


@pytest.mark.parametrize("waiting", [16, 64])
def test_df_and_cached_reads_answer_while_many_requests_hang(sim, mount, waiting):
    ids = sim.seed(waiting, status="in_progress")
    (done,) = sim.seed(1, status="completed")
    # cache_ttl=0: every open of a running batch fetches it again, so each
    # reader below holds one hung request of its own.
    m = mount(cache_ttl=0, timeout=60, options=FAST)
    assert sorted(os.listdir(m.batches)) == sorted(ids + [done])
    assert read_text(m.batch(done, "status")) == "completed\n"
    sim.fault(method="GET", path="^/v1/batches/batch_", count=-1, action="hang", seconds=120)
    sim.clear_log()

    results = []
    readers = [threading.Thread(target=lambda b=b: results.append(
        timed(read_text, m.batch(b, "status"), limit=90)), daemon=True) for b in ids]
    for t in readers:
        t.start()
    wait_for(lambda: retrieves_in_flight(sim, ids) == waiting, timeout=30,
             what="all %d reads to hold a hung request" % waiting)

    def quick(what, fn, *args):
        err, value, elapsed = timed(fn, *args, limit=30)
        assert err == 0, "%s failed: %s" % (what, os.strerror(err))
        assert elapsed < QUICK, "%s took %.2f s with %d requests hung" % (what, elapsed, waiting)
        return value

    before = len(sim.log())
    quick("statvfs", os.statvfs, m.path)
    assert quick("stat of the root", os.stat, m.path).st_mode & 0o777 == 0o555
    assert quick("cat of a final batch", read_text, m.batch(done, "status")) == "completed\n"
    assert len(sim.log()) == before, "df, stat or a final batch sent a request"
    assert all(t.is_alive() for t in readers), "a hung read ended early"

    sim.clear_faults()  # the server comes back: hung answers are closed
    for t in readers:
        t.join(60)
    assert not any(t.is_alive() for t in readers)
    assert len(results) == waiting
    # A closed connection is retried (or the cached copy served): every
    # waiting read ends with the value.
    for err, value, elapsed in results:
        assert (err, value) == (0, "in_progress\n")


@pytest.mark.parametrize("what", ["cat", "ls", "cancel"])
def test_ctrl_c_ends_a_wait_on_a_hung_server_at_once(sim, mount, what):
    """Ctrl-C on a command waiting on the server ends it at once (the
    kernel's interrupt aborts the request), not after -o timeout."""
    bid, other = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=30, options=FAST)
    assert sorted(os.listdir(m.batches)) == sorted([bid, other])
    path, cmd = {
        "cat": ("^/v1/batches/%s$" % bid, "exec cat batches/%s/status" % bid),
        "ls": ("^/v1/batches$", "exec ls batches"),
        "cancel": ("^/v1/batches/%s/cancel$" % bid, "echo cancel > batches/%s/ctl" % bid),
    }[what]
    sim.fault(path=path, count=-1, action="hang", seconds=120)
    sim.clear_log()
    elapsed, rc = interrupted_after(m.path, cmd, lambda: sim.log(),
                                    "the request to reach the server")
    assert elapsed < QUICK + 3, "the interrupt waited for the timeout"
    assert rc != 0
    sim.clear_faults()
    # The daemon goes on serving, the interrupted batch included.
    assert read_text(m.batch(other, "status")) == "in_progress\n"
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
