"""MOUNT/stats: what the mount has cost, as JSON, one snapshot per open
(README: See what it costs). The counts agree with the simulator's log;
SIGUSR1 writes the same to the log."""

import json
import os
import signal
import stat

from conftest import batch_path, read_text, try_write, wait_for

FAST = ["connect_timeout=1"]


def stats(m):
    return json.loads(read_text(os.path.join(m.path, "stats")))


def delta(before, after):
    """after - before, for every number, nested as the JSON is."""
    if isinstance(after, dict):
        return {k: delta(before[k], v) for k, v in after.items()}
    return after - before


def test_stats_is_a_read_only_json_file_sending_nothing(sim, mount):
    m = mount()
    st = os.stat(os.path.join(m.path, "stats"))
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o444
    s = stats(m)
    assert set(s) >= {"requests", "responses", "retries", "throttled", "timeouts",
                      "stale_served", "cache", "disk_cache", "bytes_down", "bytes_up",
                      "uptime_s"}
    assert set(s["requests"]) >= {"list", "retrieve", "cancel", "create", "upload",
                                  "content", "delete"}
    assert set(s["responses"]) == {"2xx", "4xx", "5xx", "network"}
    assert set(s["cache"]) == {"hits", "misses"}
    assert set(s["disk_cache"]) == {"hits", "misses", "bytes"}
    assert s["requests"]["list"] == 1  # the mount check
    assert s["responses"]["2xx"] == 1 and s["bytes_down"] > 0
    assert sim.log() == []
    assert try_write(os.path.join(m.path, "stats"), b"{}") != 0


def test_the_requests_of_a_command_are_counted_by_kind(sim, mount):
    ids = sim.seed(3, status="in_progress")
    m = mount(cache_ttl=0)
    before = stats(m)
    rc, out, err = m.sh("ls batches >/dev/null; cat batches/%s/status batches/%s/status; "
                        "echo cancel > batches/%s/ctl" % (ids[0], ids[1], ids[2]))
    assert rc == 0, err
    d = delta(before, stats(m))
    log = sim.log()
    kinds = {"list": [r for r in log if r["path"] == "/v1/batches"],
             "retrieve": [r for r in log if r["method"] == "GET" and r["path"] != "/v1/batches"],
             "cancel": [r for r in log if r["method"] == "POST"]}
    assert d["requests"] == {"list": len(kinds["list"]), "retrieve": len(kinds["retrieve"]),
                             "cancel": 1, "create": 0, "upload": 0, "content": 0,
                             "delete": 0, "other": 0}
    assert d["requests"]["list"] >= 1 and d["requests"]["retrieve"] >= 2
    assert d["responses"]["2xx"] == len(log)
    assert d["retries"] == d["throttled"] == d["timeouts"] == 0
    assert d["cache"]["misses"] >= 2 and d["cache"]["hits"] >= 1


def test_retries_throttling_and_stale_copies_are_counted(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=10, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    before = stats(m)
    sim.clear_log()
    sim.faults([{"method": "GET", "path": batch_path(bid), "count": 1, "action": "status",
                 "status": 429, "headers": {"Retry-After": "1"}},
                {"method": "GET", "path": batch_path(bid), "count": 1, "action": "status",
                 "status": 503}])
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    d = delta(before, stats(m))
    assert [r["status"] for r in sim.retrieves(bid)] == [429, 503, 200]
    assert d["requests"]["retrieve"] == 3 and d["retries"] == 2
    assert d["throttled"] == 1
    assert (d["responses"]["4xx"], d["responses"]["5xx"], d["responses"]["2xx"]) == (1, 1, 1)
    # a refresh that fails for good serves the cached copy, and says so
    sim.clear_log()
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="drop")
    before = stats(m)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    d = delta(before, stats(m))
    assert d["stale_served"] == 1
    # (libcurl may send a request again by itself on a kept-alive
    # connection the server closed: the log can hold one more than kimifs
    # counted attempts)
    assert 1 <= d["responses"]["network"] <= len(sim.retrieves(bid))


def test_sigusr1_writes_the_stats_to_the_log(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    for n in (1, 2):
        m.proc.send_signal(signal.SIGUSR1)
        lines = wait_for(lambda: [l for l in m.stderr_text().splitlines()
                                  if "info: stats:" in l][n - 1:], timeout=10,
                         what="a stats line in the log")
        logged = json.loads(lines[0].split("stats:", 1)[1])
        assert logged["requests"]["list"] >= 1
        assert set(logged) == set(stats(m))
    assert m.proc.poll() is None
    assert m.stop() == 0
