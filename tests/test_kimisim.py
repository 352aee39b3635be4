"""Quick self-test of the API simulator (tests/kimisim.py).

Starts the simulator as a subprocess and talks to it over HTTP with
urllib, checking the public API (shapes, auth, pagination, cancel rules,
files) and the control endpoint (seed, state, advance, faults, log)
against docs/simulator.md. Needs no kimifs binary and mounts nothing.
"""

import http.client
import json
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).resolve().parent / "kimisim.py"
KEY = "sk-selftest-key"
BATCH_FIELDS = ["id", "object", "endpoint", "input_file_id", "completion_window", "status",
                "output_file_id", "error_file_id", "created_at", "in_progress_at",
                "expires_at", "finalizing_at", "completed_at", "failed_at",
                "cancelling_at", "cancelled_at", "request_counts", "metadata"]


def start(*args):
    """Start the simulator; returns (process, base URL)."""
    proc = subprocess.Popen([sys.executable, str(SIMULATOR), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline().decode() if ready else ""
    m = re.fullmatch(r"kimisim listening on (http://127\.0\.0\.1:\d+)\n", line)
    if not m:
        proc.kill()
        pytest.fail("no banner from the simulator: %r" % line)
    return proc, m.group(1)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Client:
    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None, key=KEY, headers=None, raw=None, timeout=10):
        """(status, headers, parsed body or text) of one request."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if key is not None:
            req.add_header("Authorization", "Bearer " + key)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, hdrs, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, text = e.code, e.headers, e.read()
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def api(self, method, path, body=None, **kw):
        status, _, out = self.call(method, path, body, **kw)
        return status, out

    def ctl(self, method, path, body=None):
        status, _, out = self.call(method, "/_sim/" + path, body, key=None)
        assert status == 200, (path, out)
        return out

    def content(self, fid):
        """The raw bytes of a file."""
        req = urllib.request.Request("%s/v1/files/%s/content" % (self.url, fid))
        req.add_header("Authorization", "Bearer " + KEY)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def upload(self, content, filename="input.jsonl", purpose="batch"):
        boundary = uuid.uuid4().hex
        parts = []
        if purpose is not None:
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n%s\r\n'
                         % (boundary.encode(), purpose.encode()))
        if content is not None:
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                         b'Content-Type: application/octet-stream\r\n\r\n%s\r\n'
                         % (boundary.encode(), filename.encode(), content))
        data = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
        return self.api("POST", "/v1/files", raw=data, headers={
            "Content-Type": "multipart/form-data; boundary=" + boundary})


@pytest.fixture(scope="module")
def server():
    proc, url = start("--key", KEY)
    yield Client(url)
    stop(proc)


@pytest.fixture
def sim(server):
    server.ctl("POST", "reset", {})
    yield server


def lines(n):
    return b"".join(b'{"custom_id": "req-%d", "method": "POST", "url": "/v1/chat/completions", '
                    b'"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n'
                    % i for i in range(n))


def test_auth_and_log(sim):
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "in_progress"})["ids"]
    unauthorized = {"error": {"message": "Invalid Authentication",
                              "type": "invalid_authentication_error"}}
    assert sim.api("GET", "/v1/batches", key=None) == (401, unauthorized)
    assert sim.api("GET", "/v1/batches/" + bid, key="wrong") == (401, unauthorized)
    assert sim.api("GET", "/v1/batches?limit=5&after=" + bid)[0] == 200
    log = sim.ctl("GET", "log")["requests"]
    assert log == [
        {"method": "GET", "path": "/v1/batches", "query": "", "status": 401, "auth": False},
        {"method": "GET", "path": "/v1/batches/" + bid, "query": "", "status": 401, "auth": False},
        {"method": "GET", "path": "/v1/batches", "query": "limit=5&after=" + bid,
         "status": 200, "auth": True}]
    assert KEY not in json.dumps(log)
    sim.ctl("DELETE", "log")
    assert sim.ctl("GET", "log") == {"requests": []}


def test_pagination_newest_first(sim):
    ids = sim.ctl("POST", "seed", {"count": 250, "status": ["in_progress", "completed"]})["ids"]
    assert len(set(ids)) == 250 and all(re.fullmatch(r"batch_[a-z0-9]{24}", i) for i in ids)
    seen, after, pages = [], None, []
    while True:
        query = "limit=100" + ("&after=" + after if after else "")
        status, page = sim.api("GET", "/v1/batches?" + query)
        assert status == 200 and page["object"] == "list"
        got = [b["id"] for b in page["data"]]
        assert (page["first_id"], page["last_id"]) == (got[0], got[-1])
        pages.append((len(got), page["has_more"]))
        seen += got
        created = [b["created_at"] for b in page["data"]]
        assert created == sorted(created, reverse=True) and len(set(created)) == len(created)
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == [(100, True), (100, True), (50, False)]
    assert seen == list(reversed(ids))
    status, page = sim.api("GET", "/v1/batches")
    assert [b["id"] for b in page["data"]] == seen[:20] and page["has_more"] is True
    status, page = sim.api("GET", "/v1/batches?limit=50&after=" + ids[0])
    assert page["data"] == [] and page["has_more"] is False and page["first_id"] is None
    for query in ("limit=101", "limit=0", "limit=x", "after=batch_unknown"):
        status, err = sim.api("GET", "/v1/batches?" + query)
        assert status == 400 and err["error"]["type"] == "invalid_request_error", query


def test_batch_shape_and_404(sim):
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "validating",
                                      "metadata": {"k": "v"}, "total": 7})["ids"]
    status, obj = sim.api("GET", "/v1/batches/" + bid)
    assert status == 200 and list(obj) == BATCH_FIELDS
    assert obj["status"] == "validating" and obj["object"] == "batch"
    assert obj["request_counts"] == {"total": 7, "completed": 0, "failed": 0}
    assert obj["metadata"] == {"k": "v"} and obj["in_progress_at"] is None
    assert obj["expires_at"] == obj["created_at"] + 86400
    status, err = sim.api("GET", "/v1/batches/batch_nope")
    assert status == 404
    assert err["error"]["message"] == "No batch found with id 'batch_nope'."
    assert err["error"]["type"] == "invalid_request_error"
    status, err = sim.api("GET", "/v1/nothing")
    assert status == 404 and "message" in err["error"]


def test_cancel_rules(sim):
    seeded = sim.ctl("POST", "seed", {"count": 2, "status": ["completed", "in_progress"]})
    done, running = seeded["ids"]
    status, err = sim.api("POST", "/v1/batches/%s/cancel" % done)
    assert status == 400 and "completed" in err["error"]["message"]
    assert sim.api("POST", "/v1/batches/batch_nope/cancel")[0] == 404
    sim.ctl("POST", "config", {"cancel_delay": 30})
    status, obj = sim.api("POST", "/v1/batches/%s/cancel" % running)
    assert status == 200 and obj["status"] == "cancelling" and obj["cancelling_at"] is not None
    assert obj["cancelled_at"] is None
    assert sim.api("POST", "/v1/batches/%s/cancel" % running)[0] == 400
    assert sim.api("GET", "/v1/batches/" + running)[1]["status"] == "cancelling"
    sim.ctl("POST", "advance", {"seconds": 30})
    obj = sim.api("GET", "/v1/batches/" + running)[1]
    assert obj["status"] == "cancelled"
    assert obj["cancelled_at"] >= obj["cancelling_at"] + 29


@pytest.mark.parametrize("state", ["validating", "failed", "in_progress", "finalizing",
                                   "completed", "expired", "cancelling", "cancelled"])
def test_state_control_is_consistent(sim, state):
    sim.ctl("POST", "config", {"cancel_delay": 1000})
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "validating", "total": 4})["ids"]
    sim.ctl("POST", "advance", {"seconds": 100})
    obj = sim.ctl("POST", "batches/%s/state" % bid, {"status": state})
    assert sim.api("GET", "/v1/batches/" + bid)[1] == obj
    expected = {"validating": [], "failed": ["failed_at"], "in_progress": ["in_progress_at"],
                "finalizing": ["in_progress_at", "finalizing_at"],
                "completed": ["in_progress_at", "finalizing_at", "completed_at"],
                "expired": ["in_progress_at"], "cancelling": ["in_progress_at", "cancelling_at"],
                "cancelled": ["in_progress_at", "cancelling_at", "cancelled_at"]}[state]
    steps = [f for f in BATCH_FIELDS if f.endswith("_at") and f not in ("created_at", "expires_at")
             and obj[f] is not None]
    assert steps == expected
    times = [obj["created_at"]] + [obj[f] for f in steps]
    assert times == sorted(times)
    rc = obj["request_counts"]
    assert rc["total"] == 4 and rc["completed"] + rc["failed"] <= 4
    if state == "completed":
        assert rc["completed"] == 4 and obj["error_file_id"] is None
        content = sim.content(obj["output_file_id"])
        assert [json.loads(l)["custom_id"] for l in content.splitlines()] == \
            ["request-%d" % i for i in range(1, 5)]
    elif state == "expired":
        assert obj["expires_at"] <= int(time.time()) + 100
    else:
        assert obj["output_file_id"] is None or state == "cancelled"


def test_faults(sim):
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "in_progress"})["ids"]
    sim.ctl("POST", "faults", {"faults": [
        {"path": "^/v1/batches$", "action": "status", "status": 429, "message": "slow down",
         "headers": {"Retry-After": "1"}},
        {"method": "GET", "path": "/v1/batches/", "action": "drop"},
        {"method": "POST", "action": "body", "status": 200, "body": "{not json", "count": 2}]})
    status, headers, err = sim.call("GET", "/v1/batches")
    assert status == 429 and headers["Retry-After"] == "1"
    assert err == {"error": {"message": "slow down", "type": "rate_limit_reached_error"}}
    assert sim.api("GET", "/v1/batches")[0] == 200           # count 1: used up
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        sim.call("GET", "/v1/batches/" + bid)
    assert sim.api("GET", "/v1/batches/" + bid)[0] == 200
    for _ in range(2):
        assert sim.call("POST", "/v1/batches/%s/cancel" % bid)[::2] == (200, b"{not json")
    assert sim.ctl("GET", "faults") == {"faults": []}
    statuses = [(r["method"], r["status"]) for r in sim.ctl("GET", "log")["requests"]]
    assert statuses == [("GET", 429), ("GET", 200), ("GET", 0), ("GET", 200),
                        ("POST", 200), ("POST", 200)]
    assert sim.api("GET", "/v1/batches/" + bid)[1]["status"] == "in_progress"


def test_hang_truncate_and_keep_alive(sim):
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "completed"})["ids"]
    sim.ctl("POST", "faults", {"faults": [{"path": "hang", "action": "hang", "seconds": 60},
                                          {"path": "/v1/batches$", "action": "truncate"}]})
    t0 = time.monotonic()
    with pytest.raises(Exception):       # a client timeout; the server stays responsive
        sim.call("GET", "/v1/hang", timeout=0.3)
    assert sim.api("GET", "/v1/batches/" + bid)[0] == 200
    assert time.monotonic() - t0 < 3
    with pytest.raises(http.client.IncompleteRead):
        sim.call("GET", "/v1/batches")
    conn = http.client.HTTPConnection(sim.url[len("http://"):], timeout=5)
    for _ in range(3):       # one connection, several answers
        conn.request("GET", "/v1/batches/" + bid, headers={"Authorization": "Bearer " + KEY})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["id"] == bid
    conn.close()
    sim.ctl("DELETE", "faults")    # also ends the hang


def test_a_stale_delay_answers_the_state_at_arrival(sim):
    (bid,) = sim.ctl("POST", "seed", {"count": 1, "status": "in_progress"})["ids"]
    # Cancelling must still be cancelling when the late list answer is made,
    # however slow the machine.
    sim.ctl("POST", "config", {"cancel_delay": 1000})
    sim.ctl("POST", "faults", {"faults": [
        {"method": "GET", "path": "^/v1/batches/", "action": "delay", "seconds": 1,
         "stale": True},
        {"method": "GET", "path": "^/v1/batches$", "action": "delay", "seconds": 1}]})
    answers = {}

    def get(path):
        answers[path] = sim.api("GET", path)

    threads = [threading.Thread(target=get, args=(p,)) for p in
               ("/v1/batches/" + bid, "/v1/batches")]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(sim.ctl("GET", "log")["requests"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    assert sim.api("POST", "/v1/batches/%s/cancel" % bid)[1]["status"] == "cancelling"
    assert time.monotonic() - t0 < 0.5          # other requests are not held
    for t in threads:
        t.join(10)
    status, obj = answers["/v1/batches/" + bid]
    assert (status, obj["status"]) == (200, "in_progress")       # made on arrival
    status, page = answers["/v1/batches"]
    assert (status, page["data"][0]["status"]) == (200, "cancelling")   # made after


def test_an_endless_listing(sim):
    sim.ctl("POST", "faults", {"faults": [
        {"method": "GET", "path": "^/v1/batches$", "action": "endless", "count": 3,
         "metadata": {"k": "v" * 512}}]})
    seen, after, last_created = set(), "", None
    for _ in range(3):
        status, page = sim.api("GET", "/v1/batches?limit=50" + after)
        assert status == 200 and page["has_more"] is True
        assert len(page["data"]) == 50
        assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"],
                                                        page["data"][-1]["id"])
        for obj in page["data"]:
            assert list(obj) == BATCH_FIELDS
            assert re.fullmatch(r"batch_[a-z0-9]{24}", obj["id"]) and obj["id"] not in seen
            assert obj["status"] == "in_progress" and obj["metadata"] == {"k": "v" * 512}
            assert last_created is None or obj["created_at"] < last_created
            seen.add(obj["id"])
            last_created = obj["created_at"]
        after = "&after=" + page["last_id"]
    assert sim.ctl("GET", "faults") == {"faults": []}
    assert sim.api("GET", "/v1/batches/" + page["last_id"])[0] == 404
    assert sim.api("GET", "/v1/batches")[1]["data"] == []     # used up: the real listing
    status, err = sim.api("POST", "/_sim/faults", {"faults": [
        {"action": "endless", "metadata": {"k": 1}}]}, key=None)
    assert status == 400


def test_raw_set_and_delete(sim):
    a, b = sim.ctl("POST", "seed", {"count": 2, "status": "in_progress"})["ids"]
    sim.ctl("POST", "batches/%s/raw" % a, {"id": "weird", "anything": [1, None]})
    page = sim.api("GET", "/v1/batches")[1]
    assert page["data"][1] == {"id": "weird", "anything": [1, None]}
    assert sim.api("GET", "/v1/batches/weird")[1] == {"id": "weird", "anything": [1, None]}
    obj = sim.ctl("POST", "batches/%s/set" % b, {"metadata": None, "x_extra": 1})
    assert obj["metadata"] is None and obj["x_extra"] == 1
    assert [o["id"] for o in sim.ctl("GET", "batches")] == [b, "weird"]
    sim.ctl("DELETE", "batches/" + b)
    assert sim.api("GET", "/v1/batches/" + b)[0] == 404


def test_files_and_batch_creation(sim):
    status, f = sim.upload(lines(3))
    assert status == 200 and re.fullmatch(r"file-[A-Za-z0-9]{24}", f["id"])
    assert (f["object"], f["bytes"], f["filename"], f["purpose"]) == \
        ("file", len(lines(3)), "input.jsonl", "batch")
    assert sim.api("GET", "/v1/files/" + f["id"]) == (200, f)
    assert f in sim.api("GET", "/v1/files")[1]["data"]
    assert sim.content(f["id"]) == lines(3)
    assert sim.upload(b"x", filename="input.txt")[0] == 400
    assert sim.upload(b"", filename="empty.jsonl")[0] == 400
    assert sim.upload(b"x", purpose="nonsense")[0] == 400
    assert sim.upload(None)[0] == 400
    status, img = sim.upload(b"\x89PNG", filename="a.png", purpose="image")
    assert status == 200

    good = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
            "completion_window": "24h", "metadata": {"project": "x"}}
    status, obj = sim.api("POST", "/v1/batches", good)
    assert status == 200 and obj["status"] == "validating" and list(obj) == BATCH_FIELDS
    assert obj["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    assert obj["expires_at"] - obj["created_at"] == 86400
    status, obj2 = sim.api("POST", "/v1/batches", dict(good, completion_window="3d"))
    assert obj2["created_at"] > obj["created_at"]
    assert [b["id"] for b in sim.api("GET", "/v1/batches")[1]["data"]] == [obj2["id"], obj["id"]]
    bad = [{"completion_window": "1h"}, {"completion_window": "8d"}, {"completion_window": 24},
           {"endpoint": "/v1/embeddings"}, {"input_file_id": "file-missing"},
           {"input_file_id": img["id"]}, {"metadata": {"k%d" % i: "v" for i in range(17)}},
           {"metadata": {"k" * 65: "v"}}, {"metadata": {"k": "v" * 513}},
           {"metadata": {"k": 1}}, {"metadata": []}]
    for change in bad:
        status, err = sim.api("POST", "/v1/batches", dict(good, **change))
        assert status == 400 and err["error"]["message"], change
    for name in ("input_file_id", "endpoint", "completion_window"):
        body = {k: v for k, v in good.items() if k != name}
        status, err = sim.api("POST", "/v1/batches", body)
        assert status == 400 and name in err["error"]["message"]
    assert sim.api("POST", "/v1/batches", raw=b"{oops")[0] == 400
    assert sim.api("DELETE", "/v1/files/" + f["id"]) == \
        (200, {"id": f["id"], "object": "file", "deleted": True})
    assert sim.api("GET", "/v1/files/" + f["id"])[0] == 404


def test_auto_lifecycle(sim):
    sim.ctl("POST", "config", {"auto": True})
    content = lines(4) + b'{"custom_id": "bad", "body": {}}\n'
    status, f = sim.upload(content)
    status, obj = sim.api("POST", "/v1/batches", {
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "12h"})
    bid = obj["id"]
    get = lambda: sim.api("GET", "/v1/batches/" + bid)[1]
    sim.ctl("POST", "advance", {"seconds": 4})
    obj = get()
    assert obj["status"] == "in_progress" and obj["in_progress_at"] >= obj["created_at"]
    sim.ctl("POST", "advance", {"seconds": 10})
    rc = get()["request_counts"]
    assert 0 < rc["completed"] + rc["failed"] < 5
    sim.ctl("POST", "advance", {"seconds": 10})      # 3 s validating + 20 s processing
    assert get()["status"] == "finalizing"
    sim.ctl("POST", "advance", {"seconds": 4})
    obj = get()
    assert obj["status"] == "completed"
    assert obj["request_counts"] == {"total": 5, "completed": 4, "failed": 1}
    times = [obj[k] for k in ("created_at", "in_progress_at", "finalizing_at", "completed_at")]
    assert times == sorted(times)
    out = sim.content(obj["output_file_id"])
    assert [json.loads(l)["custom_id"] for l in out.splitlines()] == ["req-0", "req-1", "req-2",
                                                                      "req-3"]
    err = sim.content(obj["error_file_id"])
    assert [json.loads(l)["custom_id"] for l in err.splitlines()] == ["bad"]
    # an in_progress batch expires when its window passes
    status, other = sim.api("POST", "/v1/batches", {
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "12h"})
    sim.ctl("POST", "config", {"auto": False})
    sim.ctl("POST", "batches/%s/state" % other["id"], {"status": "in_progress"})
    sim.ctl("POST", "advance", {"seconds": 12 * 3600})
    assert sim.api("GET", "/v1/batches/" + other["id"])[1]["status"] == "expired"


def test_start_seed_and_sigterm(tmp_path):
    port_file = tmp_path / "port"
    t0 = time.monotonic()
    proc, url = start("--seed", "12", "--port-file", str(port_file))
    try:
        assert time.monotonic() - t0 < 5
        assert url.endswith(":" + port_file.read_text().strip())
        client = Client(url)
        status, page = client.api("GET", "/v1/batches?limit=100", key="sk-test")
        assert status == 200 and len(page["data"]) == 12
        assert len({b["status"] for b in page["data"]}) >= 6
        assert any(b["metadata"] for b in page["data"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        stop(proc)


def test_strict_accept_answers_406_when_accept_does_not_admit_the_answer(sim):
    f = sim.ctl("POST", "files", {"filename": "a.jsonl", "content": "x\n"})
    content = "/v1/files/%s/content" % f["id"]
    assert sim.ctl("POST", "config", {"strict_accept": True})["strict_accept"] is True
    for path, accept, status in (
            (content, "application/json", 406),
            (content, "application/octet-stream", 200),
            (content, "text/plain, application/*;q=0.5", 200),
            (content, "*/*;q=0", 406),
            (content, None, 200),
            ("/v1/batches", "application/octet-stream", 406),
            ("/v1/batches", "application/json", 200),
            ("/v1/files", "application/*", 200)):
        got, _, body = sim.call("GET", path, headers={"Accept": accept} if accept else {})
        assert got == status, (path, accept, body)
        if status == 406:
            assert body["error"]["code"] == "not_acceptable"
    # Refused before it is acted on.
    assert sim.api("DELETE", "/v1/files/" + f["id"],
                   headers={"Accept": "text/plain"})[0] == 406
    assert sim.api("GET", "/v1/files/" + f["id"])[0] == 200
    sim.ctl("POST", "config", {"strict_accept": False})
    assert sim.call("GET", content, headers={"Accept": "application/json"})[0] == 200


def test_a_handled_status_fault_does_the_work_and_answers_the_status(sim):
    f = sim.ctl("POST", "files", {"filename": "a.jsonl", "content": "x\n"})
    sim.ctl("POST", "faults", {"faults": [{"method": "DELETE", "action": "status",
                                           "status": 500, "handled": True}]})
    status, body = sim.api("DELETE", "/v1/files/" + f["id"])
    assert status == 500 and body["error"]["type"] == "server_error"
    assert sim.api("GET", "/v1/files/" + f["id"])[0] == 404      # deleted all the same
    assert sim.api("DELETE", "/v1/files/" + f["id"])[0] == 404
    assert [r["status"] for r in sim.ctl("GET", "log")["requests"]] == [500, 404, 404]
    # Without it, a status fault does nothing.
    g = sim.ctl("POST", "files", {"filename": "b.jsonl", "content": "y\n"})
    sim.ctl("POST", "faults", {"faults": [{"method": "DELETE", "action": "status"}]})
    assert sim.api("DELETE", "/v1/files/" + g["id"])[0] == 500
    assert sim.api("GET", "/v1/files/" + g["id"])[0] == 200
    status, err = sim.call("POST", "/_sim/faults", {"faults": [{"action": "status",
                                                                "handled": 1}]}, key=None)[::2]
    assert status == 400


def test_a_full_account_refuses_uploads(sim):
    """At most max_files files and max_storage bytes in the account (1000
    and 10 GB by default, as documented); a full account refuses an upload
    with 400 and keeps nothing of it."""
    assert sim.ctl("GET", "config")["max_files"] == 1000
    assert sim.ctl("GET", "config")["max_storage"] == 10 * 1000 ** 3
    sim.ctl("POST", "config", {"max_files": 2, "max_storage": 3 * len(lines(2))})
    first = sim.upload(lines(2))[1]
    assert sim.upload(lines(2))[0] == 200
    status, err = sim.upload(lines(1))
    assert status == 400 and err["error"]["code"] == "file_count_limit_exceeded"
    assert len(sim.api("GET", "/v1/files")[1]["data"]) == 2
    sim.api("DELETE", "/v1/files/" + first["id"])
    status, err = sim.upload(lines(5))              # 2 + 5 lines > 3 * 2 lines of room
    assert status == 400 and err["error"]["code"] == "storage_limit_exceeded"
    assert sim.upload(lines(4))[0] == 200           # 2 + 4 lines: exactly the room
    assert sim.call("POST", "/_sim/config", {"max_files": -1}, key=None)[0] == 400


def spooled(proc, spool):
    """The simulator's open files in the spool directory (unnamed: deleted)."""
    fds = Path("/proc/%d/fd" % proc.pid)
    return [t for t in (str(p.readlink()) for p in fds.iterdir())
            if t.startswith(str(spool) + "/")]


def test_a_large_upload_is_kept_on_disk(tmp_path):
    """An upload over 1 MiB is kept in an unnamed file of --spool, not in
    memory, and reads back whole; a batch of it counts its requests (blank
    lines not, a line that starts with a blank yes); the file goes when it
    is deleted and no batch holds it. A large body without its closing
    boundary keeps nothing."""
    proc, url = start("--key", KEY, "--spool", str(tmp_path))
    try:
        sim = Client(url)
        data = lines(6000) + b"\n  \n" + b" " + lines(1) + b"\t\n" + lines(3000)
        assert len(data) > 1 << 20
        status, f = sim.upload(data)
        assert status == 200 and f["bytes"] == len(data)
        assert len(spooled(proc, tmp_path)) == 1 and list(tmp_path.iterdir()) == []
        assert sim.content(f["id"]) == data
        status, b = sim.api("POST", "/v1/batches", {
            "input_file_id": f["id"], "endpoint": "/v1/chat/completions",
            "completion_window": "24h"})
        assert status == 200 and b["request_counts"]["total"] == 9001
        sim.ctl("POST", "config", {"auto": True})       # its lines read when it validates
        sim.ctl("POST", "advance", {"seconds": 4})
        assert sim.api("GET", "/v1/batches/" + b["id"])[1]["status"] == "failed"  # req-0 twice
        status, g = sim.upload(lines(9000))
        assert status == 200 and len(spooled(proc, tmp_path)) == 2
        assert sim.api("DELETE", "/v1/files/" + g["id"])[0] == 200
        assert len(spooled(proc, tmp_path)) == 1
        boundary = "b" * 16
        raw = (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; "
               b"filename=\"a.jsonl\"\r\n\r\n%s\r\n" % (boundary.encode(), lines(9000)))
        status, err = sim.api("POST", "/v1/files", raw=raw, headers={
            "Content-Type": "multipart/form-data; boundary=" + boundary})
        assert status == 400 and err["error"]["code"] == "invalid_multipart"
        assert [x["id"] for x in sim.api("GET", "/v1/files")[1]["data"]] == [f["id"]]
    finally:
        stop(proc)
