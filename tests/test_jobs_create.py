"""Creating a job: `cp NAME.jsonl MOUNT/jobs/` checks the input as a
whole, cuts it at line ends into parts of at most -o part_size bytes and
-o part_requests requests, uploads each as NAME.part-000i-of-000n.jsonl and
makes it a batch tagged with the job's keys; the close says whether every
part was made. Bad input, a name in use and a full account send nothing."""

import json
import os

import pytest

from conftest import read_text


@pytest.mark.parametrize("option,value,message", [
    ("part_size", "0", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_size", "101M", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_size", "1k", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_requests", "0", "part_requests must be a whole number from 1 to 50000"),
    ("part_requests", "50001", "part_requests must be a whole number from 1 to 50000"),
    ("part_requests", "5x", "part_requests must be a whole number from 1 to 50000"),
])
def test_a_bad_part_option_is_refused_before_any_request(sim, mount, option, value,
                                                          message):
    m = mount(options=["%s=%s" % (option, value)], wait=False)
    assert m.wait_exit() != 0
    assert m.stderr_text().strip().splitlines() == ["kimifs: " + message]
    assert sim.log() == []


def line(cid, text="hi"):
    req = {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "moonshot-v1-8k",
                    "messages": [{"role": "user", "content": text}]}}
    return json.dumps(req, separators=(",", ":")) + "\n"


# 7 requests of one size each: with part_requests=3, parts of 3, 3 and 1.
LINES = [line("q-%d" % i) for i in range(7)]
INPUT = "".join(LINES).encode()


def log_text(m):
    return read_text(os.path.join(m.path, "log"))


def jobs(m, *names):
    return os.path.join(m.path, "jobs", *names)


def server_files(sim):
    status, body = sim.api("GET", "/v1/files")
    assert status == 200
    return body["data"]


def job_batches(sim, job):
    """The batches of job `job` on the server, by part."""
    found = [b for b in sim.batches()
             if (b.get("metadata") or {}).get("kimifs_job") == job]
    return sorted(found, key=lambda b: int(b["metadata"]["kimifs_part"].split("/")[0]))


def sent_nothing(sim):
    """Whether no upload and no creation reached the server."""
    return sim.requests("POST", "/v1/files") == [] and \
        sim.requests("POST", "/v1/batches") == []


def write_input(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_cp_makes_a_job_of_three_parts(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=["part_requests=3"])
    rc, out, err = m.sh("cp %s jobs/ && ls jobs && cat jobs/q/status jobs/q/parts"
                        % src)
    assert (rc, err) == (0, "")
    assert out.split() == ["q", "validating", "3"]
    batches = job_batches(sim, "q")
    assert [b["metadata"] for b in batches] == [
        {"kimifs_job": "q", "kimifs_part": "%d/3" % i} for i in (1, 2, 3)]
    files = {f["id"]: f for f in server_files(sim)}
    want = ["".join(LINES[0:3]), "".join(LINES[3:6]), LINES[6]]
    for i, b in enumerate(batches):
        f = files[b["input_file_id"]]
        assert f["filename"] == "q.part-%04d-of-0003.jsonl" % (i + 1)
        assert sim.content(f["id"]) == want[i].encode()
    assert sorted(os.listdir(jobs(m, "q", "batches"))) == sorted(
        os.listdir(jobs(m, "q", "batches")))
    links = sorted(os.readlink(jobs(m, "q", "batches", n))
                   for n in os.listdir(jobs(m, "q", "batches")))
    assert links == sorted("../../../batches/" + b["id"] for b in batches)
    # The staged input is gone: only the job is listed.
    assert os.listdir(jobs(m)) == ["q"]
    assert len(sim.requests("POST", "/v1/files")) == 3
    assert len(sim.requests("POST", "/v1/batches")) == 3
