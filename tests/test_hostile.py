"""A hostile server and hostile local input: whatever it is fed, kimifs
does not crash (it is still mounted and answers afterwards), logs why,
answers with the errno of the contract, and shows a correct tree
(docs/filesystem.md: Values, Names, ctl, Errors, Hostile answers).

The server side is played by the simulator's `body` and `truncate` faults
and raw stored objects (docs/simulator.md); the local side by plain os
calls on the mount.
"""

import errno
import json
import os
import signal
import threading
import time
import urllib.parse

import pytest

from conftest import (batch_path, errno_of, expected_entries, read_text, timed,
                      try_write, wait_for)

FAST = ["connect_timeout=1"]
LIST = "^/v1/batches$"           # fault path regex of the listing only


def bounded(fn, *args, limit=30):
    """fn(*args) in a thread: (errno or 0, result); fails the test if the
    call does not return within `limit` seconds."""
    err, value, _ = timed(fn, *args, limit=limit)
    return err, value


def alive_and_well(m, sim, good):
    """No crash: the daemon still runs, is still mounted, and a good batch
    and a brand-new one read back."""
    assert m.proc.poll() is None, "kimifs died:\n" + m.stderr_text()[-3000:]
    assert os.path.ismount(m.path)
    assert bounded(read_text, m.batch(good, "status")) == (0, "in_progress\n")
    (new,) = sim.seed(1, status="completed")
    assert bounded(read_text, m.batch(new, "status")) == (0, "completed\n")
    assert os.statvfs(m.path).f_namemax == 255


def stored(sim, bid):
    """The simulator's object of bid, as a plain dict to tamper with."""
    return json.loads(json.dumps(sim.get(bid)))


# --------------------------------------------------------------------------
# Bad answers to GET /v1/batches/<id>

BIG = 20 << 20      # the daemon caps an answer at 16 MiB


def _body(text):
    return {"action": "body", "status": 200, "body": text}


BAD_BODIES = {
    "malformed": (_body('{"id": '), "malformed JSON"),
    "not-json": (dict(_body("<html>Bad gateway</html>"), content_type="text/html"),
                 "malformed JSON"),
    "empty": (_body(""), "malformed JSON"),
    "array": (_body("[]"), "not a JSON object"),
    "string": (_body('"batch"'), "not a JSON object"),
    "null": (_body("null"), "not a JSON object"),
    "error-object": (_body('{"error":{"message":"boom"}}'), "boom"),
    "deeply-nested": (_body("[" * 100000), "malformed JSON"),
    "deeply-nested-object": (_body('{"a":' * 100000), "malformed JSON"),
    "huge-spaces": (_body(" " * BIG), "too large"),
    "huge-string": (_body('{"id": "%s"}' % ("x" * BIG)), "too large"),
    "truncated": ({"action": "truncate", "count": -1}, None),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_a_bad_batch_answer_is_eio(sim, mount, name):
    fault, logged = BAD_BODIES[name]
    good, bad = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(**dict({"method": "GET", "path": batch_path(bad), "count": -1}, **fault))
    rc, out, err = m.sh("cat batches/%s/status" % bad, timeout=30)
    assert rc != 0 and "Input/output error" in err, (rc, out, err)
    assert out == ""
    assert sim.retrieves(bad)
    text = m.stderr_text()
    assert bad in text
    if logged:
        assert text.count(logged) == 1, text      # logged, once
    # Asking again does not crash it either, and still fails the same way.
    assert bounded(read_text, m.batch(bad, "status"))[0] == errno.EIO
    alive_and_well(m, sim, good)
    # Once the server is sane again, the batch reads back.
    sim.clear_faults()
    assert bounded(read_text, m.batch(bad, "status")) == (0, "in_progress\n")


def test_an_answer_for_another_batch_is_eio(sim, mount):
    good, bad = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=batch_path(bad), count=-1,
              **_body(json.dumps(sim.get(good))))
    assert bounded(read_text, m.batch(bad, "status"))[0] == errno.EIO
    assert bad in m.stderr_text()
    # The answer was not taken as this batch's copy.
    assert bounded(read_text, m.batch(bad, "batch.json"))[0] == errno.EIO
    err, names = bounded(os.listdir, m.batches)
    assert err == 0 and sorted(names) == sorted([good, bad])
    alive_and_well(m, sim, good)


def test_a_redirect_is_not_followed(sim, mount):
    good, bad = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    target = "/v1/batches/" + good
    sim.fault(method="GET", path=batch_path(bad), count=-1, action="body", status=302,
              body="", headers={"Location": sim.url + target})
    err, _ = bounded(read_text, m.batch(bad, "status"))
    assert err == errno.EIO
    assert sim.requests("GET", target) == []
    assert bad in m.stderr_text()
    alive_and_well(m, sim, good)


def test_a_server_message_cannot_break_the_ctl_line(sim, mount):
    # ctl reads "one line"; the server's message is not trusted to be one.
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    message = "refused\ncancel: ok\r\nthird line" + "x" * 100000
    sim.fault(method="POST", path="/cancel$", count=-1, action="status",
              status=400, message=message)
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.EPERM
    ctl = read_text(m.batch(bid, "ctl"))
    assert ctl.startswith("cancel: failed: 400 refused")
    assert ctl.endswith("\n") and ctl.count("\n") == 1 and "\r" not in ctl, repr(ctl[:200])
    assert len(ctl) <= 4096
    assert m.proc.poll() is None


def tamper(obj, change):
    change(obj)
    return obj


BAD_OBJECTS = {
    "status-number": (lambda o: o.update(status=42), "status"),
    "status-null": (lambda o: o.update(status=None), "status"),
    "status-missing": (lambda o: o.pop("status"), "status"),
    "created_at-missing": (lambda o: o.pop("created_at"), "created_at"),
    "created_at-string": (lambda o: o.update(created_at="yesterday"), "created_at"),
    "created_at-fraction": (lambda o: o.update(created_at=1.5), "created_at"),
    "created_at-huge": (lambda o: o.update(created_at=1e300), "created_at"),
    "endpoint-object": (lambda o: o.update(endpoint={"url": "/v1/x"}), "endpoint"),
    "request_counts-string": (lambda o: o.update(request_counts="10/0/0"), "request_counts"),
    "request_counts-missing": (lambda o: o.pop("request_counts"), "request_counts"),
    "total-string": (lambda o: o["request_counts"].update(total="10"), "total"),
    "total-missing": (lambda o: o["request_counts"].pop("total"), "total"),
    "metadata-list": (lambda o: o.update(metadata=["a", "b"]), "metadata"),
    # Counts and times are never negative (docs/filesystem.md: Hostile answers).
    "total-negative": (lambda o: o["request_counts"].update(total=-1), "total"),
    "completed-negative": (lambda o: o["request_counts"].update(completed=-10), "completed"),
    "failed-negative": (lambda o: o["request_counts"].update(failed=-1.0), "failed"),
    "created_at-negative": (lambda o: o.update(created_at=-1), "created_at"),
    "in_progress_at-negative": (lambda o: o.update(in_progress_at=-1700000000), "in_progress_at"),
    "expires_at-negative": (lambda o: o.update(expires_at=-86400), "expires_at"),
    "cancelled_at-negative": (lambda o: o.update(cancelled_at=-9007199254740992), "cancelled_at"),
    # A value holding a NUL is refused, not cut short at the NUL.
    "status-nul": (lambda o: o.update(status="completed\x00in_progress"), "status"),
    "endpoint-nul": (lambda o: o.update(endpoint="/v1/chat/completions\x00"), "endpoint"),
    "output_file_id-nul": (lambda o: o.update(output_file_id="file-a\x00b"), "output_file_id"),
}


@pytest.mark.parametrize("name", list(BAD_OBJECTS))
def test_a_batch_of_the_wrong_shape_is_eio(sim, mount, name):
    # The message says which field, and why.
    change, field = BAD_OBJECTS[name]
    good, bad = sim.seed(2, status="in_progress")
    sim.raw(bad, tamper(stored(sim, bad), change))
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    rc, out, err = m.sh("cat batches/%s/status" % bad, timeout=30)
    assert rc != 0 and "Input/output error" in err, (rc, out, err)
    assert 1 <= len(sim.retrieves(bad)) <= 4     # retries=3 at most
    text = m.stderr_text()
    assert bad in text and field in text
    if name.endswith("-negative"):
        assert "negative" in text
    if name.endswith("-nul"):
        assert "NUL" in text
    # The listing leaves the broken object out and still shows the rest.
    rc, out, err = m.sh("ls batches", timeout=30)
    assert rc == 0, err
    assert good in out.split()
    assert bounded(read_text, m.batch(bad, "batch.json"))[0] == errno.EIO
    alive_and_well(m, sim, good)


def test_a_good_copy_is_not_replaced_by_a_broken_one(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.raw(bid, tamper(stored(sim, bid), lambda o: o.update(status=["x"])))
    err, value = bounded(read_text, m.batch(bid, "status"))
    # Either the error, or the old copy: never a value made of the bad one.
    assert (err, value) in ((errno.EIO, None), (0, "in_progress\n"))
    assert "status" in m.stderr_text()
    sim.raw(bid, tamper(stored(sim, bid), lambda o: o.update(status="finalizing")))
    assert bounded(read_text, m.batch(bid, "status")) == (0, "finalizing\n")


def test_unknown_fields_are_ignored_and_kept_in_batch_json(sim, mount):
    (bid,) = sim.seed(1, status="in_progress", metadata={"team": "a"})
    obj = stored(sim, bid)
    obj["x_new_field"] = {"nested": [1, {"deep": None}], "text": "kept"}
    obj["x_number"] = 12.5
    obj["request_counts"]["x_retried"] = 3
    obj["status_details"] = None
    sim.raw(bid, obj)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert set(os.listdir(m.batch(bid))) == expected_entries(obj)
    assert sorted(os.listdir(m.batch(bid, "request_counts"))) == ["completed", "failed", "total"]
    assert os.listdir(m.batch(bid, "metadata")) == ["team"]
    assert json.loads(read_text(m.batch(bid, "batch.json"))) == obj
    assert errno_of(os.stat, m.batch(bid, "x_new_field")) == errno.ENOENT


@pytest.mark.parametrize("status", ["paused", "IN_PROGRESS", "queued-for-later", "\u00e9tat"])
def test_an_unknown_status_is_shown_as_it_is(sim, mount, status):
    (bid,) = sim.seed(1, status="in_progress")
    sim.raw(bid, tamper(stored(sim, bid), lambda o: o.update(status=status)))
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == status + "\n"
    assert json.loads(read_text(m.batch(bid, "batch.json")))["status"] == status
    # Not a final state: it is fetched again when it ages.
    sim.clear_log()
    assert read_text(m.batch(bid, "status")) == status + "\n"
    assert len(sim.retrieves(bid)) == 1


# --------------------------------------------------------------------------
# Bad list answers


def page(objs, has_more, last_id="last"):
    """A list answer of these objects."""
    if last_id == "last":
        last_id = objs[-1]["id"] if objs else None
    return json.dumps({"object": "list", "data": objs,
                       "first_id": objs[0]["id"] if objs else None,
                       "last_id": last_id, "has_more": has_more})


@pytest.mark.parametrize("body, logged", [
    ('{"object":"list","data":{},"has_more":false}', "data is not an array"),
    ('{"object":"list","data":"batch_x","has_more":false}', "data is not an array"),
    ('{"object":"list","has_more":false}', "data is not an array"),
    ('{"object":"list","data":[],"has_more":"yes"}', "has_more"),
    ('{"object":"list","data":[', "malformed JSON"),
    ('[]', "data is not an array"),
    ('{"error":{"message":"list exploded"}}', "list exploded"),
], ids=["data-object", "data-string", "data-missing", "has_more-string",
        "malformed", "array", "error-object"])
def test_a_bad_list_answer_is_eio(sim, mount, body, logged):
    (good,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=LIST, count=-1, **_body(body))
    rc, out, err = m.sh("ls batches", timeout=30)
    assert rc != 0 and "Input/output error" in err, (rc, out, err)
    assert logged in m.stderr_text()
    alive_and_well(m, sim, good)
    sim.clear_faults()
    assert bounded(os.listdir, m.batches)[0] == 0


def test_has_more_forever_with_a_repeated_cursor_ends(sim, mount):
    a, b = sim.seed(2, status="in_progress")
    objs = [sim.get(b), sim.get(a)]
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=LIST, count=-1, **_body(page(objs, True)))
    t0 = time.monotonic()
    err, names = bounded(os.listdir, m.batches, limit=20)
    assert err == 0
    assert time.monotonic() - t0 < 5
    assert sorted(names) == sorted([a, b])
    assert len(sim.requests("GET", "/v1/batches")) <= 3
    assert "cursor" in m.stderr_text()
    alive_and_well(m, sim, a)


def test_has_more_without_a_cursor_ends(sim, mount):
    (a,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=LIST, count=-1, **_body(page([], True)))
    err, names = bounded(os.listdir, m.batches, limit=20)
    assert (err, names) == (0, [])
    assert len(sim.requests("GET", "/v1/batches")) == 1
    alive_and_well(m, sim, a)


def test_an_ever_changing_cursor_is_bounded_by_the_timeout(sim, mount):
    # Each page names a new cursor and says there is more: only the time
    # budget of the operation can end the listing.
    a, b = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=1, options=FAST)
    template = sim.get(a)
    pages = [dict(_body(page([dict(template, id="batch_fake%05d" % i)], True)),
                  method="GET", path=LIST) for i in range(500)]
    pages.append(dict(_body(page([], False)), method="GET", path=LIST, count=-1))
    sim.faults(pages)
    sim.config(latency=0.05)         # 500 pages take 25 s
    t0 = time.monotonic()
    err, names = bounded(os.listdir, m.batches, limit=20)
    elapsed = time.monotonic() - t0
    sim.config(latency=0)
    assert err == errno.ETIMEDOUT
    assert elapsed < 1 + 2
    assert 2 <= len(sim.requests("GET", "/v1/batches")) < 100
    alive_and_well(m, sim, a)


def test_duplicate_ids_across_pages_are_listed_once(sim, mount):
    a, b, c = sim.seed(3, status="in_progress")
    ca, cb, cc = sim.get(a), sim.get(b), sim.get(c)
    m = mount(cache_ttl=0, page_size=2, timeout=5, options=FAST)
    sim.faults([
        dict(_body(page([cc, cb], True)), method="GET", path=LIST),
        dict(_body(page([cb, ca], False)), method="GET", path=LIST),
    ])
    err, names = bounded(os.listdir, m.batches)
    assert err == 0
    assert sorted(names) == sorted([a, b, c])
    queries = [dict(urllib.parse.parse_qsl(r["query"]))
               for r in sim.requests("GET", "/v1/batches")]
    assert queries == [{"limit": "2"}, {"limit": "2", "after": b}]
    for bid in (a, b, c):
        assert read_text(m.batch(bid, "status")) == "in_progress\n"


def test_duplicate_ids_within_a_page_are_listed_once(sim, mount):
    a, b = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    objs = [sim.get(b), sim.get(a), sim.get(b), sim.get(a), sim.get(b)]
    sim.fault(method="GET", path=LIST, count=-1, **_body(page(objs, False)))
    err, names = bounded(os.listdir, m.batches)
    assert err == 0 and sorted(names) == sorted([a, b])


UNSAFE_IDS = ["a/b", "/", "..", ".", ".hidden", "line\nbreak", "tab\tid",
              "ctl\x01char", "del\x7f", "x" * 300, "y" * 129, "", "sp ace",
              "pct%2F", "q?x=1", "frag#x", "caf\u00e9", "../../etc/passwd"]


def test_unsafe_ids_in_a_list_answer_are_not_listed(sim, mount):
    good, template = sim.seed(2, status="in_progress")
    base = stored(sim, template)
    sim.delete(template)
    for i, bad in enumerate(UNSAFE_IDS):
        sim.raw("hostile%d" % i, dict(base, id=bad))
    sim.raw("hostile-number", dict(base, id=42))
    sim.raw("hostile-null", dict(base, id=None))
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    err, names = bounded(os.listdir, m.batches)
    assert err == 0
    assert names == [good]
    assert [r["path"] for r in sim.log()] == ["/v1/batches"]
    assert "unusable" in m.stderr_text() or "malformed" in m.stderr_text()
    # The same objects, sent as one page by a fault, and with paging.
    everything = [dict(base, id=bad) for bad in UNSAFE_IDS] + [sim.get(good)]
    sim.fault(method="GET", path=LIST, count=-1, **_body(page(everything, False)))
    err, names = bounded(os.listdir, m.batches)
    assert (err, names) == (0, [good])
    alive_and_well(m, sim, good)


def test_unsafe_ids_as_cursors_are_sent_escaped(sim, mount):
    # The last object of a page has an id that is not listed; the next
    # page is still asked for with that cursor, percent-encoded.
    good, template = sim.seed(2, status="in_progress")
    bad = dict(stored(sim, template), id="a&limit=1 b/c?d#e")
    m = mount(cache_ttl=0, page_size=2, timeout=5, options=FAST)
    sim.faults([
        dict(_body(page([sim.get(good), bad], True)), method="GET", path=LIST),
        dict(_body(page([], False)), method="GET", path=LIST),
    ])
    err, names = bounded(os.listdir, m.batches)
    assert (err, names) == (0, [good])
    queries = [r["query"] for r in sim.requests("GET", "/v1/batches")]
    assert len(queries) == 2
    assert urllib.parse.parse_qs(queries[1]) == {"limit": ["2"], "after": [bad["id"]]}


def test_unsafe_metadata_keys_are_not_shown(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = stored(sim, bid)
    safe = {"good": "1", "k" * 255: "2", "with space": "3"}
    unsafe = {"a/b": "x", "..": "x", ".": "x", "": "x", "ctl\x01": "x",
              "nl\nkey": "x", "del\x7f": "x", "k" * 256: "x", "/": "x"}
    obj["metadata"] = dict(safe, **unsafe)
    sim.raw(bid, obj)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    err, names = bounded(os.listdir, m.batch(bid, "metadata"))
    assert err == 0
    assert sorted(names) == sorted(safe)
    for key, value in safe.items():
        assert read_text(m.batch(bid, "metadata", key)) == value + "\n"
    assert json.loads(read_text(m.batch(bid, "batch.json")))["metadata"] == obj["metadata"]
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert errno_of(os.stat, m.batch(bid, "metadata", "a")) == errno.ENOENT


def test_zero_times_are_shown(sim, mount):
    # 0 is the lower bound: the epoch is shown, only a negative time is refused.
    (bid,) = sim.seed(1, status="in_progress")
    sim.raw(bid, tamper(stored(sim, bid), lambda o: o.update(created_at=0, in_progress_at=0)))
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "created_at")) == "0\n"
    assert read_text(m.batch(bid, "in_progress_at")) == "0\n"
    assert os.stat(m.batch(bid)).st_mtime == 0
    assert os.stat(m.batch(bid, "status")).st_mtime == 0


# --------------------------------------------------------------------------
# NUL characters: cJSON decodes \u0000 into a NUL byte, and C strings stop
# there. An id, key or value holding one is never shown cut short.

NUL_ID = "batch_nul\x00evil"        # sent as "batch_nul\u0000evil"


def posts(sim):
    return [r for r in sim.log() if r["method"] == "POST"]


def test_an_id_holding_a_nul_is_not_listed(sim, mount):
    good, template = sim.seed(2, status="in_progress")
    base = stored(sim, template)
    sim.delete(template)
    sim.raw("hostile", dict(base, id=NUL_ID))
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    err, names = bounded(os.listdir, m.batches)
    assert (err, names) == (0, [good])
    text = m.stderr_text()
    assert "NUL" in text and "id holds a NUL character" in text
    # The same object with a good one on one page, from a fault.
    sim.fault(method="GET", path=LIST, count=-1,
              **_body(page([dict(base, id=NUL_ID), sim.get(good)], False)))
    err, names = bounded(os.listdir, m.batches)
    assert (err, names) == (0, [good])
    assert "batch_nul" not in names
    # Looked up by name, batch_nul is what the server says it is: unknown.
    sim.clear_faults()
    sim.clear_log()
    assert errno_of(os.stat, m.batch("batch_nul")) == errno.ENOENT
    rc, out, err = m.sh("echo cancel > batches/batch_nul/ctl", timeout=30)
    assert rc != 0 and "No such file or directory" in err, err
    assert posts(sim) == []
    alive_and_well(m, sim, good)


def test_a_lookup_answered_by_an_id_holding_a_nul_is_eio(sim, mount):
    # GET /v1/batches/batch_nul answered with "batch_nul\u0000evil": not
    # taken as batch_nul, so nothing can be cancelled through it.
    (good,) = sim.seed(1, status="in_progress")
    hostile = dict(stored(sim, good), id=NUL_ID)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=batch_path("batch_nul"), count=-1, **_body(json.dumps(hostile)))
    sim.fault(method="POST", count=-1, **_body(json.dumps(hostile)))
    assert bounded(read_text, m.batch("batch_nul", "status"))[0] == errno.EIO
    assert errno_of(os.stat, m.batch("batch_nul")) == errno.EIO
    assert try_write(m.batch("batch_nul", "ctl"), b"cancel\n") == errno.EIO
    rc, out, err = m.sh("echo cancel > batches/batch_nul/ctl", timeout=30)
    assert rc != 0 and "Input/output error" in err, err
    assert posts(sim) == []
    assert sim.retrieves("batch_nul")
    text = m.stderr_text()
    assert "batch_nul" in text and "id holds a NUL character" in text
    # The listing does not show it either.
    assert bounded(os.listdir, m.batches) == (0, [good])
    alive_and_well(m, sim, good)


def test_metadata_holding_a_nul_is_left_out(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = stored(sim, bid)
    obj["metadata"] = {"good": "1", "key\x00evil": "2", "value": "bad\x00tail",
                       "both\x00": "x\x00", "escaped": "\\u0000 is text"}
    sim.raw(bid, obj)
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    mounted = len(m.stderr_text())  # the mount check read one answer too
    err, names = bounded(os.listdir, m.batch(bid, "metadata"))
    assert err == 0
    # Neither "key" nor "both" (the keys cut short), nor "value".
    assert sorted(names) == ["escaped", "good"]
    assert read_text(m.batch(bid, "metadata", "good")) == "1\n"
    assert read_text(m.batch(bid, "metadata", "escaped")) == "\\u0000 is text\n"
    for name in ("key", "value", "both"):
        assert errno_of(os.stat, m.batch(bid, "metadata", name)) == errno.ENOENT, name
    # batch.json keeps the value as sent; a member whose key holds a NUL
    # cannot be named, and is left out.
    shown = json.loads(read_text(m.batch(bid, "batch.json")))["metadata"]
    assert shown == {"good": "1", "value": "bad\x00tail", "escaped": "\\u0000 is text"}
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    # One answer, one line about it.
    assert m.stderr_text()[mounted:].count("NUL character") == 1, m.stderr_text()
    assert m.proc.poll() is None


def test_a_key_holding_a_nul_does_not_stand_for_a_field(sim, mount):
    # "status\u0000x" would read as "status", and come first.
    (bid,) = sim.seed(1, status="in_progress")
    orig = stored(sim, bid)
    obj = {"status\x00x": "completed", "request_counts\x00": {"total": 99}}
    obj.update(orig)
    sim.raw(bid, obj)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert read_text(m.batch(bid, "request_counts", "total")) == "10\n"
    shown = json.loads(read_text(m.batch(bid, "batch.json")))
    assert shown == orig
    assert "NUL" in m.stderr_text()


# --------------------------------------------------------------------------
# Large answers: parsing is linear in the size of the answer, so every
# operation ends within the timeout (plus the time to parse 16 MiB at most)
# and a SIGTERM is not held up.

SLACK = 5           # seconds on top of the timeout (parsing, a slow build)


def test_metadata_past_the_cap_is_left_out_in_time(sim, mount):
    # 200,000 pairs, 4 MB: used to take a minute of CPU per parse.
    pairs = 200000
    good, bid = sim.seed(2, status="in_progress")
    obj = stored(sim, bid)
    obj["metadata"] = {"k%06d" % i: "v%d" % i for i in range(pairs)}
    sim.raw(bid, obj)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    err, value, took = timed(read_text, m.batch(bid, "status"))
    assert (err, value) == (0, "in_progress\n")
    assert took < 5 + SLACK, took
    err, names, took = timed(os.listdir, m.batch(bid, "metadata"))
    assert err == 0 and took < 5 + SLACK, took
    # The first 1000 pairs, in order.
    assert names == ["k%06d" % i for i in range(1000)]
    assert read_text(m.batch(bid, "metadata", "k000999")) == "v999\n"
    assert errno_of(os.stat, m.batch(bid, "metadata", "k001000")) == errno.ENOENT
    # batch.json has them all.
    assert len(json.loads(read_text(m.batch(bid, "batch.json")))["metadata"]) == pairs
    assert "metadata has %d pairs; only the first 1000 are shown" % pairs in m.stderr_text()
    err, names = bounded(os.listdir, m.batches)
    assert err == 0 and sorted(names) == sorted([good, bid])
    assert m.proc.poll() is None
    # A SIGTERM during a fetch of it ends the daemon at once.
    before = len(sim.retrieves(bid))
    reader = threading.Thread(target=errno_of, args=(read_text, m.batch(bid, "status")),
                              daemon=True)
    reader.start()
    wait_for(lambda: len(sim.retrieves(bid)) > before, what="the next fetch")
    t0 = time.monotonic()
    assert m.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - t0 < 3
    reader.join(10)


def test_repeated_metadata_keys_take_linear_time(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = stored(sim, bid)
    obj["metadata"] = None
    text = json.dumps(obj)
    pairs = ", ".join('"k": "%d"' % i for i in range(100000))
    body = text.replace('"metadata": null',
                        '"metadata": {"first": "1", %s, "last": "x"}' % pairs)
    assert len(body) > 1000000
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, **_body(body))
    err, names, took = timed(os.listdir, m.batch(bid, "metadata"))
    assert err == 0 and took < 5 + SLACK, took
    # A repeated key shows its first value; "last" is past the cap.
    assert names == ["first", "k"]
    assert read_text(m.batch(bid, "metadata", "k")) == "0\n"
    assert m.proc.poll() is None


def test_many_unknown_fields_take_linear_time(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = stored(sim, bid)
    obj.update(("x_field_%06d" % i, i) for i in range(100000))
    sim.raw(bid, obj)
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    err, value, took = timed(read_text, m.batch(bid, "status"))
    assert (err, value) == (0, "in_progress\n") and took < 5 + SLACK, took
    err, text, took = timed(read_text, m.batch(bid, "batch.json"))
    assert err == 0 and took < 5 + SLACK, took
    assert json.loads(text) == obj
    assert set(os.listdir(m.batch(bid))) == expected_entries(stored(sim, bid))


def test_deep_nesting_does_not_blow_up_batch_json(sim, mount):
    # 300 objects nested 990 deep (1.8 MB): indented, batch.json would be
    # 600 MB. It is shown on one line instead, exactly as sent.
    (bid,) = sim.seed(1, status="in_progress")
    deep = '{"a":' * 990 + "0" + "}" * 990
    compact = json.dumps(stored(sim, bid), separators=(",", ":"))
    body = compact[:-1] + ',"x_deep":[' + ",".join([deep] * 300) + "]}"
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=batch_path(bid), count=-1, **_body(body))
    err, value, took = timed(read_text, m.batch(bid, "status"))
    assert (err, value) == (0, "in_progress\n") and took < 5 + SLACK, took
    size = os.stat(m.batch(bid, "batch.json")).st_size
    assert size == len(body) + 1, size
    err, text, took = timed(read_text, m.batch(bid, "batch.json"))
    assert err == 0 and text == body + "\n"
    assert "nested too deep to indent" in m.stderr_text()
    # A shallow object is still indented.
    sim.clear_faults()
    assert read_text(m.batch(bid, "batch.json")).startswith('{\n  "id": ')


def test_a_list_page_with_very_many_items_is_listed_in_time(sim, mount):
    (good,) = sim.seed(1, status="in_progress")
    template = stored(sim, good)
    many = [dict(template, id="batch_many%05d" % i) for i in range(10000)]
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    sim.fault(method="GET", path=LIST, count=1, **_body(page(many + [template], False)))
    err, names, took = timed(os.listdir, m.batches)
    assert err == 0 and took < 5 + SLACK, took
    assert len(names) == len(many) + 1 and set(names) == {b["id"] for b in many} | {good}
    # As many malformed objects: left out with one line, not one each.
    broken = [{"id": "batch_broken%05d" % i} for i in range(10000)]
    sim.fault(method="GET", path=LIST, count=1, **_body(page(broken + [template], False)))
    err, names, took = timed(os.listdir, m.batches)
    assert (err, names) == (0, [good]) and took < 5 + SLACK, took
    text = m.stderr_text()
    assert text.count("left out 10000 malformed batches") == 1, text[-2000:]
    assert text.count("malformed batch") == 1
    alive_and_well(m, sim, good)


# --------------------------------------------------------------------------
# Bad local input on ctl


@pytest.fixture
def cancellable(sim, mount):
    """An in_progress batch, cached, its cancel held in cancelling; the log
    cleared. Returns (mount, batch id)."""
    sim.config(cancel_delay=100000)
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    return m, bid


def nothing_happened(sim, m, bid):
    assert sim.log() == []
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert sim.get(bid)["status"] == "in_progress"
    assert read_text(m.batch(bid, "ctl")) == ""
    assert m.proc.poll() is None


def write_on_one_fd(path, pieces):
    """Write each piece with its own write() on one fd; the errno of each."""
    out = []
    fd = os.open(path, os.O_WRONLY)
    try:
        for p in pieces:
            try:
                n = os.write(fd, p)
                out.append(0 if n == len(p) else -1)
            except OSError as e:
                out.append(e.errno)
    finally:
        os.close(fd)
    return out


def test_an_empty_write_does_nothing(sim, cancellable):
    m, bid = cancellable
    assert try_write(m.batch(bid, "ctl"), b"") in (0, errno.EINVAL)
    nothing_happened(sim, m, bid)


GARBAGE = {
    "1MiB-random": os.urandom(1 << 20).replace(b"cancel", b"xxxxxx"),
    "nul-after": b"cancel\x00", "nul-before": b"\x00cancel",
    "nul-inside": b"can\x00cel", "nul-after-newline": b"cancel\n\x00",
    "binary": b"\xff\xfe\x00\x01cancel", "two-commands": b"cancel\nrefresh\n",
    "twice": b"cancel\ncancel\n", "semicolon": b"cancel;cancel",
    "space-twice": b"cancel cancel", "over-4096": b"cancel" + b" " * 4096,
    "glued": b"cancelrefresh", "prefix": b"cance", "upper": b"CANCEL\n",
}


def test_garbage_is_einval_and_sends_nothing(sim, cancellable):
    m, bid = cancellable
    for name, data in GARBAGE.items():
        assert try_write(m.batch(bid, "ctl"), data) == errno.EINVAL, name
    for offset in (1, 3, 6, 4096, 1 << 40):
        assert try_write(m.batch(bid, "ctl"), b"cancel", offset=offset) == errno.EINVAL, offset
    assert "not a command" in m.stderr_text()
    nothing_happened(sim, m, bid)


def test_a_command_split_over_two_writes_is_einval(sim, cancellable):
    m, bid = cancellable
    err, results = bounded(write_on_one_fd, m.batch(bid, "ctl"), [b"can", b"cel"])
    assert (err, results) == (0, [errno.EINVAL, errno.EINVAL])
    err, results = bounded(write_on_one_fd, m.batch(bid, "ctl"), [b"cancel", b"\n"])
    # The first write is a whole command; the second is not one.
    assert err == 0 and results[0] == 0 and results[1] == errno.EINVAL
    assert [(r["method"], r["path"]) for r in sim.log()] == [
        ("POST", "/v1/batches/%s/cancel" % bid)]
    assert read_text(m.batch(bid, "status")) == "cancelling\n"


def test_concurrent_cancels_all_succeed_with_at_most_one_post_each(sim, cancellable):
    m, bid = cancellable
    writers = 8
    barrier = threading.Barrier(writers)
    results = [None] * writers

    def write(i):
        fd = os.open(m.batch(bid, "ctl"), os.O_WRONLY)
        try:
            barrier.wait(10)
            try:
                results[i] = 0 if os.write(fd, b"cancel\n") == 7 else -1
            except OSError as e:
                results[i] = e.errno
        finally:
            os.close(fd)

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a cancel write never returned"
    # Cancelling a batch that is (by then) cancelling is a success.
    assert results == [0] * writers, [os.strerror(e) if e > 0 else e for e in results]
    posts = sim.cancels(bid)
    assert 1 <= len(posts) <= writers
    assert [r for r in sim.log()
            if (r["method"], r["path"]) not in (("POST", "/v1/batches/%s/cancel" % bid),
                                                 ("GET", "/v1/batches/" + bid))] == []
    assert sim.get(bid)["status"] in ("cancelling", "cancelled")
    assert read_text(m.batch(bid, "status")) == "cancelling\n"
    assert read_text(m.batch(bid, "ctl")) == "cancel: ok\n"
    assert m.proc.poll() is None


def test_concurrent_mixed_writers_do_only_what_they_asked(sim, cancellable):
    m, bid = cancellable
    payloads = [b"refresh\n", b"garbage\n", b"refresh", b"\x00", b"cancelx"] * 2
    barrier = threading.Barrier(len(payloads))
    results = [None] * len(payloads)

    def write(i):
        fd = os.open(m.batch(bid, "ctl"), os.O_WRONLY)
        try:
            barrier.wait(10)
            try:
                results[i] = 0 if os.write(fd, payloads[i]) == len(payloads[i]) else -1
            except OSError as e:
                results[i] = e.errno
        finally:
            os.close(fd)

    threads = [threading.Thread(target=write, args=(i,), daemon=True)
               for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    for data, res in zip(payloads, results):
        assert res == (0 if data.strip() == b"refresh" else errno.EINVAL), (data, res)
    # Only refreshes were asked for: GETs of this batch, at most one each.
    log = sim.log()
    assert {(r["method"], r["path"]) for r in log} == {("GET", "/v1/batches/" + bid)}
    assert 1 <= len(log) <= 4
    assert sim.get(bid)["status"] == "in_progress"
    assert read_text(m.batch(bid, "ctl")) == "refresh: ok\n"


# --------------------------------------------------------------------------
# Everything but ctl is read-only

ROFS_XATTR = (errno.EROFS, errno.EPERM, errno.ENOTSUP, errno.EACCES)


def test_nothing_but_ctl_can_be_changed(sim, mount):
    (bid,) = sim.seed(1, status="in_progress", metadata={"team": "a"})
    m = mount(cache_ttl=3600, timeout=5, options=FAST)
    before = {p: read_text(m.batch(bid, *p.split("/")))
              for p in ("status", "batch.json", "metadata/team", "request_counts/total")}
    sim.clear_log()
    d = m.batch(bid)
    for rel in before:
        path = m.batch(bid, *rel.split("/"))
        assert errno_of(os.open, path, os.O_WRONLY) == errno.EROFS, rel
        assert errno_of(os.open, path, os.O_RDWR) == errno.EROFS, rel
        assert errno_of(os.open, path, os.O_WRONLY | os.O_APPEND) == errno.EROFS, rel
        assert errno_of(os.truncate, path, 0) == errno.EROFS, rel
        assert errno_of(os.chmod, path, 0o666) == errno.EROFS, rel
        assert errno_of(os.chown, path, os.getuid(), os.getgid()) == errno.EROFS, rel
        assert errno_of(os.utime, path, (0, 0)) == errno.EROFS, rel
        assert errno_of(os.unlink, path) == errno.EROFS, rel
        assert errno_of(os.rename, path, path + ".new") == errno.EROFS, rel
        assert errno_of(os.setxattr, path, "user.x", b"1") in ROFS_XATTR, rel
    assert errno_of(os.open, os.path.join(d, "new"), os.O_WRONLY | os.O_CREAT, 0o644) == errno.EROFS
    assert errno_of(os.open, os.path.join(d, "metadata", "new"),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644) == errno.EROFS
    assert errno_of(os.mkdir, os.path.join(d, "newdir")) == errno.EROFS
    assert errno_of(os.mkdir, os.path.join(m.path, "newdir")) == errno.EROFS
    assert errno_of(os.mkfifo, os.path.join(d, "fifo")) == errno.EROFS
    assert errno_of(os.symlink, "status", os.path.join(d, "link")) == errno.EROFS
    assert errno_of(os.link, m.batch(bid, "status"), os.path.join(d, "hard")) == errno.EROFS
    assert errno_of(os.rmdir, m.batch(bid, "metadata")) == errno.EROFS
    assert errno_of(os.rmdir, d) == errno.EROFS
    assert errno_of(os.rename, d, d + "x") == errno.EROFS
    assert errno_of(os.rmdir, m.batches) == errno.EROFS
    assert errno_of(os.chmod, d, 0o777) == errno.EROFS
    assert errno_of(os.chmod, m.path, 0o777) == errno.EROFS
    assert errno_of(os.setxattr, d, "user.x", b"1") in ROFS_XATTR
    assert errno_of(os.removexattr, m.batch(bid, "status"), "user.x") in ROFS_XATTR + (errno.ENODATA,)
    # The shell says so.
    for cmd in ("echo completed > batches/{0}/status", "rm -f batches/{0}/status",
                "mv batches/{0}/status batches/{0}/s2", "mkdir batches/{0}/d",
                "touch batches/{0}/new", "chmod 600 batches/{0}/status"):
        rc, out, err = m.sh(cmd.format(bid), timeout=30)
        assert rc != 0 and "Read-only file system" in err, (cmd, err)
    # Nothing changed, and nothing but GETs was sent.
    for rel, text in before.items():
        assert read_text(m.batch(bid, *rel.split("/"))) == text
    assert os.stat(m.batch(bid, "status")).st_mode & 0o777 == 0o444
    assert os.stat(m.batch(bid, "ctl")).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(d)) == sorted(expected_entries(sim.get(bid)))
    assert [r for r in sim.log() if r["method"] != "GET"] == []
    assert sim.get(bid)["status"] == "in_progress"


# --------------------------------------------------------------------------
# Odd names


ODD_NAMES = ["a b", "50%", "%2F", "x%2F..%2Fy", "q?x", "q?limit=1", "frag#x",
             "caf\u00e9", "\u00e9", "a\\b", "a*b", "a:b", "a'b", 'a"b', "a;b",
             "tab\tname", "nl\nname", "ctl\x01", "a" * 255, "a" * 129,
             ".hidden", "..x", "...", "a b/c"]


def test_odd_names_are_enoent_without_a_request(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, timeout=5, options=FAST)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    for name in ODD_NAMES:
        path = os.path.join(m.batches, name)
        assert errno_of(os.stat, path) == errno.ENOENT, name
        assert errno_of(os.lstat, os.path.join(path, "status")) == errno.ENOENT, name
        assert errno_of(os.open, os.path.join(path, "ctl"), os.O_WRONLY) == errno.ENOENT, name
        assert errno_of(os.listdir, path) == errno.ENOENT, name
        assert errno_of(os.stat, os.path.join(m.batch(bid), name)) == errno.ENOENT, name
        assert errno_of(os.stat, os.path.join(m.path, name)) == errno.ENOENT, name
        assert sim.log() == [], name
    rc, out, err = m.sh("cat 'batches/a b/status' batches/caf\u00e9/status 'batches/q?x/ctl'",
                        timeout=30)
    assert rc != 0 and err.count("No such file or directory") == 3, err
    assert sim.log() == []
    assert m.proc.poll() is None


@pytest.mark.parametrize("name", ["batch_doesnotexist", "a..b", "x-y.z_1", "-",
                                  "A" * 128, "0", "batch_" + "z" * 24])
def test_a_valid_looking_unknown_name_costs_one_exact_get(sim, mount, name):
    sim.seed(1, status="in_progress")
    m = mount(cache_ttl=60, timeout=5, options=FAST)
    rc, out, err = m.sh("cat 'batches/%s/status'" % name, timeout=30)
    assert rc != 0 and "No such file or directory" in err
    assert [(r["method"], r["path"], r["query"], r["status"]) for r in sim.log()] == [
        ("GET", "/v1/batches/" + name, "", 404)]
    assert errno_of(os.stat, os.path.join(m.batches, name)) == errno.ENOENT
    assert len(sim.log()) == 1
