"""The HTTP layer (src/http.c) against the simulator, through a small
command over it (tests/probe/http_probe.c): each kind of request the
endpoints build on (a JSON body, a multipart upload streamed from a file,
DELETE, an answer written to a file descriptor) sends what the API expects
and gets back what the server holds, retries included."""

import errno
import json
import os
import subprocess

import pytest

from conftest import KEY, KIMIFS, batch_path

PROBE = KIMIFS.parent / "http_probe"


def probe(sim, *args):
    """Run http_probe against sim; returns (exit status, stdout, stderr)."""
    if not PROBE.exists():
        pytest.fail("http_probe not built: %s" % PROBE)
    env = dict(os.environ, MOONSHOT_API_KEY=KEY)
    p = subprocess.run([str(PROBE), sim.url] + [str(a) for a in args], env=env,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def jsonl(n):
    return b"".join(json.dumps({"custom_id": "q-%d" % i, "method": "POST",
                                "url": "/v1/chat/completions",
                                "body": {"model": "kimi", "messages": []}}).encode() + b"\n"
                    for i in range(n))


def upload(sim, tmp_path, data, name="input.jsonl"):
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    rc, out, err = probe(sim, "upload", "/v1/files", path, name)
    assert rc == 0, err
    return json.loads(out.rsplit("\n", 2)[0])


def test_a_multipart_upload_sends_the_file_as_it_is(sim, tmp_path):
    data = jsonl(3)
    f = upload(sim, tmp_path, data, "questions.jsonl")
    assert (f["filename"], f["bytes"], f["purpose"]) == ("questions.jsonl", len(data), "batch")
    assert [(r["method"], r["path"]) for r in sim.log()] == [("POST", "/v1/files")]
    assert sim.content(f["id"]) == data


def test_an_upload_of_a_range_sends_those_bytes_alone(sim, tmp_path):
    """A part of a job is a range of its staged input, read as it is sent:
    the server gets exactly those bytes; a file shorter than the range
    fails the request and nothing is kept."""
    data = jsonl(5)
    lines = data.splitlines(keepends=True)
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    start, length = len(lines[0]), len(lines[1]) + len(lines[2])
    rc, out, err = probe(sim, "upload-range", "/v1/files", path, "q.part-0002-of-0003.jsonl",
                         start, length)
    assert rc == 0, err
    f = json.loads(out.rsplit("\n", 2)[0])
    assert (f["filename"], f["bytes"]) == ("q.part-0002-of-0003.jsonl", length)
    assert sim.content(f["id"]) == lines[1] + lines[2]
    sim.clear_log()
    rc, out, err = probe(sim, "upload-range", "/v1/files", path, "q.jsonl", start, len(data))
    assert rc == errno.EIO and "cannot read the file being sent: it ended early" in err
    assert len(sim.log()) <= 1          # not tried again
    assert [f["filename"] for f in sim.api("GET", "/v1/files")[1]["data"]] == \
        ["q.part-0002-of-0003.jsonl"]


def test_a_json_body_creates_a_batch(sim, tmp_path):
    f = upload(sim, tmp_path, jsonl(2))
    body = json.dumps({"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                       "completion_window": "24h", "metadata": {"k": "v"}})
    rc, out, err = probe(sim, "post-json", "/v1/batches", body)
    assert rc == 0, err
    obj = json.loads(out.rsplit("\n", 2)[0])
    assert obj["status"] == "validating" and obj["metadata"] == {"k": "v"}
    assert sim.get(obj["id"])["input_file_id"] == f["id"]


def test_a_bad_json_body_is_eperm_with_the_servers_message(sim):
    rc, out, err = probe(sim, "post-json", "/v1/batches", '{"endpoint": 7}')
    assert rc == errno.EPERM
    assert "400" in err and "input_file_id" in err


def test_an_answer_written_to_a_file_is_the_servers_bytes(sim, tmp_path):
    data = jsonl(500)
    f = upload(sim, tmp_path, data)
    out = tmp_path / "content"
    rc, stdout, err = probe(sim, "download", "/v1/files/%s/content" % f["id"], out)
    assert rc == 0, err
    assert stdout.strip() == "%d bytes sunk" % len(data)
    assert out.read_bytes() == data


def test_a_retried_download_starts_the_file_over(sim, tmp_path):
    data = jsonl(500)
    f = upload(sim, tmp_path, data)
    sim.fault(method="GET", path="/content$", count=1, action="truncate")
    sim.clear_log()
    out = tmp_path / "content"
    rc, stdout, err = probe(sim, "download", "/v1/files/%s/content" % f["id"], out)
    assert rc == 0, err
    assert len(sim.log()) == 2  # the truncated answer, then the whole one
    assert out.read_bytes() == data


def test_an_error_answer_is_not_written_to_the_file(sim, tmp_path):
    out = tmp_path / "content"
    rc, stdout, err = probe(sim, "download", "/v1/files/file-missing/content", out)
    assert rc == errno.ENOENT
    assert "404" in err
    assert out.read_bytes() == b""


def test_delete_removes_the_file(sim, tmp_path):
    f = upload(sim, tmp_path, jsonl(1))
    rc, out, err = probe(sim, "delete", "/v1/files/" + f["id"])
    assert rc == 0, err
    assert json.loads(out.rsplit("\n", 2)[0])["deleted"] is True
    assert ("DELETE", "/v1/files/" + f["id"]) in [(r["method"], r["path"]) for r in sim.log()]
    assert sim.api("GET", "/v1/files/" + f["id"])[0] == 404


def test_429s_until_the_bound_end_in_eagain(sim, mount):
    """Each 429 comes after 1 s and -o timeout=3 ends the retries: a retry
    cut short by the bound does not replace the server's last answer, so
    the read fails with EAGAIN (429), not ETIMEDOUT."""
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=3, cache_ttl=0)
    sim.config(latency=1)
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status", status=429)
    rc, out, err = m.sh("cat batches/%s/status" % bid)
    assert rc != 0 and "Resource temporarily unavailable" in err, err
    # Two 429s at least; a last retry cut short may be still unanswered.
    assert [r["status"] for r in sim.retrieves(bid)][:2] == [429, 429]
