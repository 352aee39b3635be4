"""batches/<id>/results/ and usage/ (docs/filesystem.md, Results): one
<name>.json per request with a result and one <name>.txt per answer, names
escaped from the custom_id, the token sums, what bad result files do, and
what it all costs (one download per file per index, none for names that
cannot exist)."""

import errno
import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import errno_of, interrupted_after, read_text, timed, wait_for

ENDPOINT = "/v1/chat/completions"


# -- helpers: batches with given requests, result files with given lines ---

def upload(sim, data, filename="input.jsonl", purpose="batch"):
    """Upload bytes as a file through the public API; returns its id."""
    boundary = uuid.uuid4().hex
    body = (("--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n%s\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n")
            % (boundary, purpose, boundary, filename)).encode() + data + \
        ("\r\n--%s--\r\n" % boundary).encode()
    req = urllib.request.Request(sim.url + "/v1/files", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + sim.key)
    req.add_header("Content-Type", "multipart/form-data; boundary=" + boundary)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["id"]


def request_line(cid, ok=True):
    body = {"model": "moonshot-v1-8k"}
    if ok:
        body["messages"] = [{"role": "user", "content": "Question %s" % cid}]
    return json.dumps({"custom_id": cid, "method": "POST", "url": ENDPOINT,
                       "body": body}) + "\n"


def batch_of(sim, ids, failing=(), status="completed"):
    """A batch created through the API from requests with these custom_ids
    (those in `failing` have no messages, so they fail), moved to status.
    Returns its id."""
    data = "".join(request_line(c, c not in failing) for c in ids).encode()
    fid = upload(sim, data)
    req = urllib.request.Request(
        sim.url + "/v1/batches", method="POST",
        data=json.dumps({"input_file_id": fid, "endpoint": ENDPOINT,
                         "completion_window": "24h"}).encode())
    req.add_header("Authorization", "Bearer " + sim.key)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        bid = json.loads(r.read())["id"]
    sim.set(bid, {"request_counts": {"total": len(ids), "completed": 0,
                                     "failed": len(failing)}})
    sim.state(bid, status)
    return bid


def with_output(sim, lines, error_lines=None, status="completed"):
    """A batch in `status` whose output file (and error file) hold exactly
    these bytes. Returns (batch id, output file id)."""
    (bid,) = sim.seed(1, status=status, total=1)
    fields = {"output_file_id": upload(sim, lines, "out.jsonl"),
              "error_file_id": None}
    if error_lines is not None:
        fields["error_file_id"] = upload(sim, error_lines, "err.jsonl")
    sim.set(bid, fields)
    return bid, fields["output_file_id"]


def ok_line(cid, text, usage=(12, 8, 20), status=200):
    body = {"id": "chatcmpl-x", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"),
                              usage))}
    return (json.dumps({"id": "batch_req_x", "custom_id": cid,
                        "response": {"status_code": status, "request_id": "req-x",
                                     "body": body}, "error": None}) + "\n").encode()


def contents(sim):
    """The logged file content downloads."""
    return [r for r in sim.log() if r["path"].endswith("/content")]


def disk_cache(m):
    """MOUNT/stats' disk_cache counters."""
    return json.loads(read_text(os.path.join(m.path, "stats")))["disk_cache"]


def listing(m, bid, sub="results"):
    return sorted(os.listdir(m.batch(bid, sub)))


# -- the tree ---------------------------------------------------------------

def test_results_has_a_json_per_request_and_a_txt_per_answer(sim, mount):
    ids = ["task-%03d" % i for i in range(1, 7)]
    bid = batch_of(sim, ids, failing={"task-002", "task-005"})
    m = mount()
    d = "batches/%s/results" % bid
    rc, out, err = m.sh("ls %s" % d)
    assert rc == 0, err
    answers = ["task-001", "task-003", "task-004", "task-006"]
    assert out.split() == sorted(["%s.json" % c for c in ids] +
                                 ["%s.txt" % c for c in answers])
    assert m.sh("ls %s/*.txt | wc -l" % d)[1].strip() == "4"
    assert m.sh("ls %s/*.json | wc -l" % d)[1].strip() == "6"
    rc, out, err = m.sh("grep -l 'task-004' %s/*.txt" % d)
    assert (rc, out) == (0, "%s/task-004.txt\n" % d)
    # A failed request (a line of the error file) has no .txt.
    rc, out, err = m.sh("cat %s/task-002.txt" % d)
    assert rc != 0 and "No such file or directory" in err
    assert errno_of(os.stat, m.batch(bid, "results", "task-005.txt")) == errno.ENOENT
    assert json.loads(read_text(m.batch(bid, "results", "task-002.json")))[
        "response"]["status_code"] == 400
    # results/ and usage/ are subdirectories `find` walks into.
    assert os.stat(m.batch(bid)).st_nlink == 6
    rc, out, err = m.sh("find batches/%s -type d | sort" % bid)
    assert out.split() == ["batches/%s%s" % (bid, s) for s in
                           ("", "/metadata", "/request_counts", "/results", "/usage")]
    # One download per file, whatever was read.
    m.sh("cat %s/*.json %s/*.txt >/dev/null" % (d, d))
    obj = sim.get(bid)
    assert sorted(r["path"] for r in contents(sim)) == sorted(
        "/v1/files/%s/content" % obj[f] for f in ("output_file_id", "error_file_id"))


def test_json_is_the_server_line_pretty_printed_and_txt_the_answer(sim, mount):
    bid = batch_of(sim, ["a", "b"], failing={"b"})
    obj = sim.get(bid)
    out_lines = sim.content(obj["output_file_id"]).decode().splitlines()
    err_lines = sim.content(obj["error_file_id"]).decode().splitlines()
    m = mount()
    text = read_text(m.batch(bid, "results", "a.json"))
    assert text.startswith("{\n  \"id\": ") and text.endswith("}\n")
    assert json.loads(text) == json.loads(out_lines[0])
    assert json.loads(read_text(m.batch(bid, "results", "b.json"))) == json.loads(err_lines[0])
    with open(m.batch(bid, "results", "a.txt"), "rb") as f:
        assert f.read() == b"Simulated answer to a.\n"
    st = os.stat(m.batch(bid, "results", "a.txt"))
    assert st.st_size == len(b"Simulated answer to a.\n")
    assert oct(st.st_mode & 0o777) == "0o444"


def test_txt_is_exactly_the_content_and_a_newline(sim, mount):
    texts = {"plain": "one line", "multi": "two\nlines\n", "empty": "",
             "unicode": "caf\u00e9 \u20ac \U0001F600", "nul": "a\u0000b",
             "quotes": "say \"hi\" \\ back"}
    data = b"".join(ok_line(c, t) for c, t in texts.items())
    bid, _ = with_output(sim, data)
    m = mount()
    for cid, t in texts.items():
        with open(m.batch(bid, "results", cid + ".txt"), "rb") as f:
            assert f.read() == t.encode() + b"\n", cid


def test_names_are_the_custom_id_escaped(sim, mount):
    long1, long2 = "L" * 299 + "1", "L" * 299 + "2"
    ids = {"task-042": "task-042", "a/b": "a%2Fb", "100%": "100%25",
           "line\nbreak": "line%0Abreak", "tab\there": "tab%09here",
           "nul\u0000id": "nul%00id", "del\u007f": "del%7F",
           ".": "%2E", "..": "%2E%2E", "": "%", "...": "...", ".hidden": ".hidden",
           "caf\u00e9": "caf\u00e9", "sp ace*?": "sp ace*?"}
    bid = batch_of(sim, list(ids) + [long1, long2])
    m = mount()
    names = listing(m, bid)
    for cid, name in ids.items():
        assert name + ".json" in names, repr(cid)
        assert name + ".txt" in names, repr(cid)
        got = json.loads(read_text(m.batch(bid, "results", name + ".json")))
        assert got["custom_id"] == cid
        with open(m.batch(bid, "results", name + ".txt"), "rb") as f:
            assert f.read() == ("Simulated answer to %s.\n" % cid).encode()
    longs = [n for n in names if n.startswith("LLL") and n.endswith(".json")]
    assert len(longs) == 2 and len(set(longs)) == 2
    for n in longs:
        assert len(n.encode()) == 240 + len(".json")
        assert n.startswith("L" * 222 + "%~")
    assert sorted(json.loads(read_text(m.batch(bid, "results", n)))["custom_id"]
                  for n in longs) == [long1, long2]
    assert len(names) == 2 * (len(ids) + 2)
    # The shell sees the same names.
    rc, out, err = m.sh("ls batches/%s/results/a%%2Fb.txt" % bid)
    assert rc == 0, err


def test_usage_sums_the_output_lines(sim, mount):
    data = (ok_line("a", "x", (10, 5, 15)) + ok_line("b", "y", (7, 3, 10)) +
            ok_line("c", "z", (1, 1, 2), status=400))
    bid, _ = with_output(sim, data, error_lines=b'{"custom_id":"d","response":null,'
                         b'"error":{"code":"x","message":"m"}}\n')
    m = mount()
    assert listing(m, bid, "usage") == ["completion_tokens", "prompt_tokens", "total_tokens"]
    assert read_text(m.batch(bid, "usage", "prompt_tokens")) == "18\n"
    assert read_text(m.batch(bid, "usage", "completion_tokens")) == "9\n"
    assert read_text(m.batch(bid, "usage", "total_tokens")) == "27\n"
    # A 4xx line of the output file: a .json, no .txt.
    assert listing(m, bid) == ["a.json", "a.txt", "b.json", "b.txt", "c.json", "d.json"]
    # The seeded batches' files: the sums of what the server wrote.
    (sid,) = sim.seed(1, status="completed", total=7, failed=2)
    lines = sim.content(sim.get(sid)["output_file_id"]).decode().splitlines()
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        want = sum(json.loads(x)["response"]["body"]["usage"][k] for x in lines)
        assert read_text(m.batch(sid, "usage", k)) == "%d\n" % want
    assert errno_of(os.stat, m.batch(sid, "usage", "cached_tokens")) == errno.ENOENT


def test_results_fill_in_when_the_output_appears(sim, mount):
    bid = batch_of(sim, ["q1", "q2", "q3"], status="in_progress")
    m = mount(cache_ttl=0)
    assert listing(m, bid) == []
    assert listing(m, bid, "usage") == []
    assert errno_of(os.stat, m.batch(bid, "results", "q1.json")) == errno.ENOENT
    assert contents(sim) == []
    # A running batch whose output file the server already shows.
    fid = upload(sim, ok_line("early", "so far"), "partial.jsonl")
    sim.set(bid, {"output_file_id": fid})
    assert wait_for(lambda: listing(m, bid) == ["early.json", "early.txt"],
                    what="the running batch's output in results/")
    assert listing(m, bid, "usage") == []   # not final yet
    sim.state(bid, "completed")
    want = ["q1.json", "q1.txt", "q2.json", "q2.txt", "q3.json", "q3.txt"]
    assert wait_for(lambda: listing(m, bid) == want, what="results/ of the completed batch")
    assert read_text(m.batch(bid, "results", "q2.txt")) == "Simulated answer to q2.\n"
    assert read_text(m.batch(bid, "usage", "total_tokens")) == "60\n"


def test_a_copy_older_than_the_batch_end_is_fetched_again_once(sim, mount):
    """As for a null field: a result or usage file missing from a copy that
    is not final and older than cache_ttl costs one retrieve, then shows
    what the batch has now (a lookup otherwise uses any copy)."""
    bid = batch_of(sim, ["q1", "q2"], status="in_progress")
    m = mount(cache_ttl=0)
    assert listing(m, bid) == [] and listing(m, bid, "usage") == []
    sim.state(bid, "completed")
    sim.clear_log()
    assert read_text(m.batch(bid, "usage", "total_tokens")) == "40\n"
    assert read_text(m.batch(bid, "results", "q1.txt")) == "Simulated answer to q1.\n"
    assert len(sim.retrieves(bid)) == 1
    assert len(contents(sim)) == 1


def test_a_cancelled_batch_shows_its_partial_output(sim, mount):
    ids = ["r%d" % i for i in range(9)]
    bid = batch_of(sim, ids, status="cancelled")
    obj = sim.get(bid)
    done = obj["request_counts"]["completed"]
    assert 0 < done < len(ids)
    m = mount()
    names = listing(m, bid)
    assert len([n for n in names if n.endswith(".txt")]) == done
    assert len([n for n in names if n.endswith(".json")]) == done
    assert read_text(m.batch(bid, "usage", "total_tokens")) == "%d\n" % (20 * done)


def test_bad_result_files_are_skipped_line_by_line(sim, mount):
    huge = b'{"custom_id":"huge","pad":"' + b"x" * (17 << 20) + b'"}\n'
    out = (ok_line("good-1", "one") +
           b'{"custom_id":"broken",\n' +                 # line 2: cut short
           b'{"no_custom_id":true}\n' +                    # line 3
           b'{"custom_id":42}\n' +                         # line 4
           b'\x00\x01\xff\xfe binary junk \x80\n' +        # line 5
           b'[1,2,3]\n' +                                  # line 6
           huge +                                          # line 7
           ok_line("dup", "first") +                       # line 8
           b'{"custom_id":"bad\xffutf8"}\n' +              # line 9
           b'{"custom_id":"trail"} junk\n' +               # line 10
           ok_line("dup", "second") +                      # line 11
           ok_line("last", "no newline").rstrip(b"\n"))    # line 12
    err = b'\xff\xfe\n{"custom_id":"failed-1","response":null,"error":{"message":"m"}}'
    bid, _ = with_output(sim, out, err)
    m = mount()
    t0 = time.monotonic()
    names = listing(m, bid)
    assert time.monotonic() - t0 < 20
    assert names == ["bad%FFutf8.json", "dup.json", "dup.txt", "failed-1.json",
                     "good-1.json", "good-1.txt", "last.json", "last.txt"]
    assert read_text(m.batch(bid, "results", "dup.txt")) == "second\n"
    assert read_text(m.batch(bid, "results", "last.txt")) == "no newline\n"
    assert json.loads(read_text(m.batch(bid, "results", "failed-1.json")))["error"] == {"message": "m"}
    log = m.stderr_text()
    for n in (2, 3, 4, 5, 6, 7, 10):
        assert "line %d:" % n in log, n
    assert "line 11: custom_id \"dup\" again" in log
    assert "error file" in log and "output file" in log


def test_bad_lines_are_logged_within_a_bound(sim, mount):
    out = b"junk\n" * 5000 + ok_line("fine", "still here")
    bid, _ = with_output(sim, out)
    m = mount()
    assert listing(m, bid) == ["fine.json", "fine.txt"]
    log = m.stderr_text()
    assert log.count("not JSON; skipped") == 10
    assert "5000 lines skipped or replaced in all, 4990 not logged" in log


def test_reading_results_costs_one_download_per_file(sim, mount):
    ids = ["c%02d" % i for i in range(40)]
    bid = batch_of(sim, ids, failing={"c07"})
    obj = sim.get(bid)
    m = mount()
    d = "batches/%s/results" % bid
    # Names that cannot be results cost nothing, not even the index.
    assert "results" in os.listdir(m.batch(bid))
    sim.clear_log()
    for name in ("c01", "c01.jsonl", "%41.txt", "c01.TXT", ".json", "..txt", "a%2f.json",
                 "x" * 241 + ".json"):
        assert errno_of(os.stat, m.batch(bid, "results", name)) == errno.ENOENT, name
    for name in ("cached_tokens", "total"):
        assert errno_of(os.stat, m.batch(bid, "usage", name)) == errno.ENOENT, name
    assert sim.log() == []
    rc, out, err = m.sh("ls %s | wc -l; cat %s/*.txt | wc -l; cat %s/*.json >/dev/null; "
                        "ls -l %s >/dev/null; cat batches/%s/usage/*" % (d, d, d, d, bid))
    assert rc == 0, err
    assert out.split()[:2] == ["79", "39"]
    got = sorted(r["path"] for r in contents(sim))
    assert got == sorted("/v1/files/%s/content" % obj[f]
                         for f in ("output_file_id", "error_file_id"))
    # The index of a final batch is kept: nothing more, however often.
    sim.clear_log()
    m.sh("ls %s >/dev/null; cat %s/c01.txt %s/c39.json >/dev/null" % (d, d, d))
    assert contents(sim) == []
    # A name that could be a result but is not: no request either.
    assert errno_of(os.stat, m.batch(bid, "results", "c99.txt")) == errno.ENOENT
    assert errno_of(os.stat, m.batch(bid, "results", "c07.txt")) == errno.ENOENT
    assert sim.log() == []


def test_at_most_64_indexes_are_kept_the_least_recently_used_go(sim, mount):
    ids = sim.seed(66, status="completed", total=2)
    m = mount()
    for bid in ids:
        assert len(listing(m, bid)) == 4
    assert len(contents(sim)) == 66
    # A download is put in the disk cache's count once it has ended, which
    # may be after its reader was served: wait for every content.
    total = sum(sim.api("GET", "/v1/files/" + fid)[1]["bytes"]
                for bid in ids for fid in (sim.get(bid)["output_file_id"],
                                           sim.get(bid)["error_file_id"]) if fid)
    wait_for(lambda: disk_cache(m)["bytes"] == total, what="every download to be counted")
    # The most recent 64 are kept; the two least recently used are not.
    sim.clear_log()
    before = disk_cache(m)
    for bid in ids[2:]:
        assert len(listing(m, bid)) == 4
    assert contents(sim) == []
    assert disk_cache(m) == before  # the kept indexes need no content
    # The least recently used index was dropped: it is built again from
    # the disk cache (one content opened there, nothing downloaded).
    before = disk_cache(m)
    assert len(listing(m, ids[0])) == 4
    assert contents(sim) == []
    assert disk_cache(m)["hits"] - before["hits"] == 1
    assert disk_cache(m)["misses"] == before["misses"]


def test_a_batch_without_files_costs_no_download(sim, mount):
    (bid,) = sim.seed(1, status="failed")
    m = mount()
    assert listing(m, bid) == []
    assert listing(m, bid, "usage") == []
    assert errno_of(os.stat, m.batch(bid, "usage", "total_tokens")) == errno.ENOENT
    assert contents(sim) == []


def test_a_missing_output_file_is_logged_and_shows_nothing(sim, mount):
    (bid,) = sim.seed(1, status="completed", total=3)
    sim.set(bid, {"output_file_id": "file-gone0000000000000000000", "error_file_id": None})
    m = mount()
    assert listing(m, bid) == []
    assert "not on the server" in m.stderr_text()
    assert listing(m, bid, "usage") == []


def test_a_failed_download_is_an_error_and_tried_again(sim, mount):
    (bid,) = sim.seed(1, status="completed", total=3)
    m = mount(options=["retries=0"])
    sim.fault(path="/content$", action="status", status=500, count=1)
    assert errno_of(os.listdir, m.batch(bid, "results")) == errno.EIO
    assert len(listing(m, bid)) == 6


def test_concurrent_readers_share_one_download(sim, mount):
    bid = batch_of(sim, ["a", "b", "c"], failing={"c"})
    m = mount()
    assert "results" in os.listdir(m.batch(bid))
    # Slow downloads, so that the three commands overlap: a lookup in
    # results/, a listing of it and a lookup in usage/ all need the index.
    sim.fault(path="/content$", action="delay", seconds=1, count=-1)
    sim.clear_log()
    d = "batches/%s" % bid
    cmds = ["cat %s/results/a.txt" % d, "ls %s/results" % d, "cat %s/usage/total_tokens" % d]
    procs = [subprocess.Popen(["bash", "-c", c], cwd=m.path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for c in cmds]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert outs[0][0] == b"Simulated answer to a.\n"
    assert outs[1][0].split() == [b"a.json", b"a.txt", b"b.json", b"b.txt", b"c.json"]
    assert outs[2][0] == b"40\n"
    assert len(contents(sim)) == 2


def test_a_hung_download_ends_within_the_bound_and_is_tried_again(sim, mount):
    (bid,) = sim.seed(1, status="completed", total=3)
    m = mount(timeout=2)
    assert "results" in os.listdir(m.batch(bid))
    sim.fault(path="/content$", action="hang", seconds=120, count=-1)
    err, _, elapsed = timed(os.listdir, m.batch(bid, "results"))
    assert err == errno.ETIMEDOUT and elapsed < 2 + 3, (err, elapsed)
    err, _, elapsed = timed(os.stat, m.batch(bid, "results", "request-1.txt"))
    assert err == errno.ETIMEDOUT and elapsed < 2 + 3, (err, elapsed)
    sim.clear_faults()
    assert len(listing(m, bid)) == 6


def test_ctrl_c_ends_a_wait_on_a_download_at_once(sim, mount):
    (bid,) = sim.seed(1, status="completed", total=3)
    m = mount(timeout=30)
    assert "results" in os.listdir(m.batch(bid))
    sim.fault(path="/content$", action="hang", seconds=120, count=-1)
    sim.clear_log()
    elapsed, rc = interrupted_after(m.path, "exec ls batches/%s/results" % bid,
                                    lambda: contents(sim), "the download to reach the server")
    assert elapsed < 5, "the interrupt waited for the timeout"
    assert rc != 0
    sim.clear_faults()
    assert len(listing(m, bid)) == 6


@pytest.mark.xdist_group("heavy")
def test_fifty_thousand_results_list_and_read_quickly(sim, mount):
    n = 50000
    data = b"".join(b'{"id":"batch_req_%d","custom_id":"task-%05d","response":'
                    b'{"status_code":200,"request_id":"req-%d","body":{"choices":'
                    b'[{"index":0,"message":{"role":"assistant","content":"answer %d"}}],'
                    b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}},'
                    b'"error":null}\n' % (i, i, i, i) for i in range(n))
    bid, _ = with_output(sim, data)
    m = mount()
    rc, out, err = m.sh("ls batches/%s/results | wc -l" % bid, timeout=120)
    assert (rc, out.strip()) == (0, str(2 * n)), err
    t0 = time.monotonic()
    rc, out, err = m.sh("ls batches/%s/results | wc -l" % bid)
    listed = time.monotonic() - t0
    t0 = time.monotonic()
    rc2, out2, err2 = m.sh("cat batches/%s/results/task-31337.txt" % bid)
    read = time.monotonic() - t0
    assert (rc, out.strip(), rc2, out2) == (0, str(2 * n), 0, "answer 31337\n")
    # Well under a second each on an idle machine (docs/benchmarks.md);
    # slack for a loaded one.
    assert listed < 3 and read < 2, (listed, read)
    assert read_text(m.batch(bid, "usage", "total_tokens")) == "%d\n" % (3 * n)
    assert len(contents(sim)) == 1
