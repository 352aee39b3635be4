"""`echo retry > batches/<id>/ctl`: a final batch's requests without a
successful result sent again as a new batch: the input's lines copied
byte for byte into NAME.retry-N.jsonl, the endpoint, window and metadata
kept; EBUSY while it runs, nothing sent when everything succeeded, and a
failed upload reported in ctl and by the errno."""

import errno
import json
import os

import pytest

from conftest import read_text, try_write, wait_for

# An input written by hand: odd spacing, non-ASCII text, key order, a blank
# line and a last line without a newline; ids request-1..request-6 (those
# the simulator writes results for).
LINES = [
    '{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "kimi-k2", "messages": [{"role": "user", "content": "one"}]}}',
    '{ "custom_id" : "request-2","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"kimi-k2","messages":[{"role":"user","content":"d\u00e9j\u00e0 vu \u2603"}]}}',
    '{"method": "POST", "custom_id": "request-3", "url": "/v1/chat/completions", '
    '"body": {"model": "kimi-k2", "messages": [{"role": "user", "content": "three"}]}}',
    '{"custom_id": "request-4", "method": "POST", "url": "/v1/chat/completions",   '
    '"body": {"model": "kimi-k2", "messages": [{"role": "user", "content": "4\\n4"}]}}',
    '{"custom_id": "request-5", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "kimi-k2", "messages": [{"role": "user", "content": "five"}]}}',
    '{"custom_id": "request-6", "method": "POST", "url": "/v1/chat/completions", '
    '"body": {"model": "kimi-k2", "messages": [{"role": "user", "content": "six"}]}}',
]
CONTENT = "\n".join(LINES[:3]) + "\n\n" + "\n".join(LINES[3:])  # no final \n
META = {"project": "retry test", "owner": "qa"}


def make_batch(sim, status, failed=0, name="q.jsonl", window="48h", meta=META):
    """A batch of status over the hand-written input, `failed` of its
    requests failed. Returns its id."""
    f = sim._call("POST", "/_sim/files", {"filename": name, "content": CONTENT})
    counts = {"total": 6, "failed": failed}
    if status == "completed":
        counts["completed"] = 6 - failed
    obj = sim.create({"status": status, "input_file_id": f["id"],
                      "completion_window": window, "metadata": meta,
                      "request_counts": counts})
    return obj["id"]


def succeeded_ids(sim, bid):
    """The custom_ids with a 2xx line in the batch's output file."""
    obj = sim.get(bid)
    ok = set()
    if obj.get("output_file_id"):
        for line in sim.content(obj["output_file_id"]).decode().splitlines():
            if line.strip():
                r = json.loads(line)
                if 200 <= r["response"]["status_code"] < 300:
                    ok.add(r["custom_id"])
    return ok


def expected_input(sim, bid, content=CONTENT):
    """The lines of content whose request did not succeed, each with a
    newline, bytes as written."""
    ok = succeeded_ids(sim, bid)
    out = []
    for line in content.split("\n"):
        if line.strip() and json.loads(line)["custom_id"] not in ok:
            out.append(line + "\n")
    return "".join(out).encode()


def retry(m, bid):
    """echo retry > ctl through a shell; returns (rc, stderr, ctl text)."""
    rc, _, err = m.sh("echo retry > batches/%s/ctl" % bid)
    return rc, err, read_text(m.batch(bid, "ctl"))


def new_batch_of(text):
    assert text.startswith("retry: ok batch_") and text.endswith("\n"), text
    return text[len("retry: ok "):-1]


def posts(sim):
    return [r for r in sim.log() if r["method"] == "POST"]


def test_retry_sends_exactly_the_failed_lines_as_a_new_batch(sim, mount):
    bid = make_batch(sim, "completed", failed=2)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    new = new_batch_of(text)
    obj = sim.get(new)
    old = sim.get(bid)
    assert obj["endpoint"] == old["endpoint"]
    assert obj["completion_window"] == "48h"
    # The user's pairs, and the mark every mount reads: round 1 of bid.
    assert obj["metadata"] == dict(META, kimifs_retry="1 " + bid)
    f = sim.api("GET", "/v1/files/" + obj["input_file_id"])[1]
    assert f["filename"] == "q.retry-1.jsonl" and f["purpose"] == "batch"
    want = expected_input(sim, bid)
    assert want.count(b"\n") == 2
    assert sim.content(obj["input_file_id"]) == want
    # One upload, one creation; the new batch shows at once.
    assert [r["path"] for r in posts(sim)] == ["/v1/files", "/v1/batches"]
    assert new in os.listdir(m.batches)
    assert read_text(m.batch(new, "status")) == "validating\n"
    assert "retry %s: ok %s" % (bid, new) in m.stderr_text()


def test_a_second_retry_of_a_batch_names_the_first_and_sends_nothing(sim, mount):
    bid = make_batch(sim, "completed", failed=2)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    first = new_batch_of(text)
    # Run twice by mistake (a script run again, a shell history): no
    # second batch of the same requests; ctl names the first, the one to
    # retry next.
    m.sh("echo refresh > batches/%s/ctl" % bid)
    sim.clear_log()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    assert text == "retry: ok %s (retried already: retry that batch to go on)\n" % first
    assert posts(sim) == []
    # Concurrent retries of one batch: one runs, the others wait their
    # turn or name it; never two new batches.
    other = make_batch(sim, "completed", failed=1)
    sim.clear_log()
    rc, out, err = m.sh("for i in 1 2 3 4; do (echo retry > batches/%s/ctl) & done; wait"
                        % other)
    creates = [r for r in posts(sim) if r["path"] == "/v1/batches"]
    assert len(creates) == 1, creates


def test_the_staged_input_is_removed(sim, mount, tmp_path):
    bid = make_batch(sim, "completed", failed=1)
    cache = str(tmp_path / "cache")
    m = mount(options=["cache_dir=" + cache])
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    new_batch_of(text)
    assert not [n for n in os.listdir(cache) if "retry" in n]


@pytest.mark.parametrize("status", ["cancelled", "expired", "failed"])
def test_a_batch_that_did_not_run_everything_retries_the_rest(sim, mount, status):
    bid = make_batch(sim, "in_progress")
    sim.state(bid, status)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    new = new_batch_of(text)
    want = expected_input(sim, bid)
    # Some ran (but for failed), the others did not.
    assert 0 < want.count(b"\n") <= 6 if status != "failed" else want.count(b"\n") == 6
    assert sim.content(sim.get(new)["input_file_id"]) == want


def test_a_running_batch_is_ebusy_and_sends_nothing(sim, mount):
    bid = make_batch(sim, "in_progress")
    m = mount()
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    assert try_write(m.batch(bid, "ctl"), b"retry\n") == errno.EBUSY
    assert read_text(m.batch(bid, "ctl")) == \
        "retry: failed: batch is in_progress (not final yet)\n"
    assert posts(sim) == []


def test_nothing_to_retry_succeeds_and_sends_nothing(sim, mount):
    bid = make_batch(sim, "completed", failed=0)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    assert text == "retry: nothing to retry\n"
    assert posts(sim) == []


def test_a_retry_of_a_retry_is_named_retry_2(sim, mount):
    bid = make_batch(sim, "completed", failed=3)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    first = new_batch_of(text)
    retried = sim.content(sim.get(first)["input_file_id"]).decode()
    sim.state(first, "expired")     # half of them ran
    rc, err, text = retry(m, first)
    assert rc == 0, err
    second = new_batch_of(text)
    f = sim.api("GET", "/v1/files/" + sim.get(second)["input_file_id"])[1]
    assert f["filename"] == "q.retry-2.jsonl"
    assert sim.content(f["id"]) == expected_input(sim, first, retried.rstrip("\n"))
    assert sim.get(second)["metadata"] == dict(META, kimifs_retry="2 " + first)


def test_a_failed_upload_is_reported_in_ctl_and_by_the_errno(sim, mount, tmp_path):
    bid = make_batch(sim, "completed", failed=2)
    cache = str(tmp_path / "cache")
    m = mount(options=["cache_dir=" + cache])
    sim.fault(method="POST", path="^/v1/files$", count=-1, action="status",
              status=400)
    assert try_write(m.batch(bid, "ctl"), b"retry\n") == errno.EPERM
    text = read_text(m.batch(bid, "ctl"))
    assert text.startswith("retry: failed: ") and "400" in text, text
    assert [r for r in sim.log() if r["path"] == "/v1/batches" and r["method"] == "POST"] == []
    assert not [n for n in os.listdir(cache) if "retry" in n]


def test_an_input_file_gone_from_the_server_is_enoent(sim, mount):
    bid = make_batch(sim, "completed", failed=2)
    fid = sim.get(bid)["input_file_id"]
    assert sim.api("DELETE", "/v1/files/" + fid)[0] == 200
    m = mount()
    assert try_write(m.batch(bid, "ctl"), b"retry\n") == errno.ENOENT
    text = read_text(m.batch(bid, "ctl"))
    assert text.startswith("retry: failed: ") and fid in text, text
    assert posts(sim) == []


def request(cid, method="POST", model="kimi-k2"):
    return json.dumps({"custom_id": cid, "method": method, "url": "/v1/chat/completions",
                       "body": {"model": model, "messages": [{"role": "user", "content": cid}]}})


@pytest.mark.parametrize("lines, reason", [
    ([request("request-1"), request("request-2", method="GET")],
     'q.retry-1.jsonl:2: method must be "POST"'),
    ([request("request-1"), request("request-2", model="other")],
     'q.retry-1.jsonl:2: model "other" differs from "kimi-k2" of line 1'),
    ([request("request-1"), request("request-2"), request("request-1")],
     'q.retry-1.jsonl:3: custom_id "request-1" repeats line 1'),
])
def test_a_retry_input_that_breaks_a_rule_is_refused_and_sends_nothing(sim, mount, lines, reason):
    """The server may hold an input kimifs would refuse: the retry's input
    gets the same check as any upload, and nothing is sent."""
    f = sim._call("POST", "/_sim/files", {"filename": "q.jsonl",
                                          "content": "\n".join(lines) + "\n"})
    bid = sim.create({"status": "in_progress", "input_file_id": f["id"],
                      "request_counts": {"total": len(lines)}})["id"]
    sim.state(bid, "failed")
    m = mount()
    assert try_write(m.batch(bid, "ctl"), b"retry\n") == errno.EINVAL
    text = read_text(m.batch(bid, "ctl"))
    assert text == "retry: failed: refused: %s\n" % reason, text
    log = read_text(os.path.join(m.path, "log"))
    assert "retry %s: refused, q.retry-1.jsonl breaks the rules" % bid in log
    assert reason in log
    assert posts(sim) == []


# --------------------------------------------------------------------------
# A retry is marked on the server: every mount, on every machine and after
# a restart, knows a batch was retried


def creations_and_uploads(sim):
    return [r for r in posts(sim) if r["path"] in ("/v1/batches", "/v1/files")]


def test_a_batch_retried_by_one_mount_is_not_retried_again_by_another(sim, mount, tmp_path):
    bid = make_batch(sim, "completed", failed=2)
    a = mount(options=["cache_dir=%s" % (tmp_path / "cache-a")])
    b = mount(options=["cache_dir=%s" % (tmp_path / "cache-b")])
    rc, err, text = retry(a, bid)
    assert rc == 0, err
    made = new_batch_of(text)
    sim.clear_log()
    rc, err, text = retry(b, bid)
    assert rc == 0, err
    assert text == "retry: ok %s (retried already: retry that batch to go on)\n" % made
    assert creations_and_uploads(sim) == []
    # The retry of the retry, from the other mount, is round 2 of made.
    sim.state(made, "expired")
    rc, err, text = retry(b, made)
    assert rc == 0, err
    second = new_batch_of(text)
    assert sim.get(second)["metadata"]["kimifs_retry"] == "2 " + made
    sim.clear_log()
    rc, err, text = retry(a, made)
    assert text == "retry: ok %s (retried already: retry that batch to go on)\n" % second
    assert creations_and_uploads(sim) == []


def test_a_remount_knows_what_it_retried_before(sim, mount):
    bid = make_batch(sim, "completed", failed=2)
    m = mount()
    rc, err, text = retry(m, bid)
    made = new_batch_of(text)
    m.stop()
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    assert text == "retry: ok %s (retried already: retry that batch to go on)\n" % made
    assert creations_and_uploads(sim) == []


def test_a_retry_that_cannot_read_the_list_of_batches_sends_nothing(sim, mount):
    """Whether another mount retried the batch is unknown: nothing is
    uploaded or made, and a later retry may go on."""
    bid = make_batch(sim, "completed", failed=2)
    m = mount(timeout=3, options=["retries=0"])
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="status", status=500)
    rc, err, text = retry(m, bid)
    assert rc != 0
    assert text.startswith("retry: failed: cannot tell whether it was retried already"), text
    assert creations_and_uploads(sim) == []
    sim.clear_faults()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    new_batch_of(text)


def test_a_batch_with_sixteen_pairs_of_its_own_is_retried_unmarked(sim, mount):
    """A batch made elsewhere may use all 16 metadata pairs: its retry keeps
    them (none is dropped to make room) and says so in the log."""
    meta = {"k%02d" % i: "v" for i in range(16)}
    bid = make_batch(sim, "completed", failed=2, meta=meta)
    m = mount()
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    made = new_batch_of(text)
    assert sim.get(made)["metadata"] == meta
    assert "not marked as its retry" in read_text(os.path.join(m.path, "log"))
