"""One job, two machines: what one mount makes, the other sees, waits
for, retries and reads, and a remount repeats nothing. Each mount has a
cache directory of its own, as two machines would; they share only the
server (the simulator)."""

import json
import os

from conftest import read_text, wait_for
from test_jobs_retry import INPUT, LINES, job_batches, jobs, wait_job


def machine(mount, tmp_path, name):
    return mount(options=["part_requests=3", "poll_interval=1",
                          "cache_dir=" + str(tmp_path / ("cache-" + name))],
                 cache_ttl=1)


def posts(sim):
    return [(r["method"], r["path"]) for r in sim.log() if r["method"] != "GET"]


def test_made_on_one_machine_waited_retried_and_read_on_the_other(
        sim, mount, tmp_path):
    sim.config(auto=True, fail_ids={"q-1": 1, "q-4": 1})
    src = tmp_path / "q.jsonl"
    src.write_bytes(INPUT)
    one = machine(mount, tmp_path, "one")
    two = machine(mount, tmp_path, "two")

    rc, _, err = one.sh("cp %s jobs/" % src)
    assert (rc, err) == (0, "")
    # The other machine sees the job, its parts and its status.
    wait_for(lambda: os.listdir(os.path.join(two.path, "jobs")) == ["q"],
             timeout=20, what="the job on the second mount")
    assert read_text(jobs(two, "q", "parts")) == "3\n"
    assert sorted(os.listdir(jobs(two, "q", "batches"))) == \
        ["part-0001", "part-0002", "part-0003"]

    # Waited for there; two requests failed.
    assert wait_job(sim, two, "q") == "completed_with_failures\n"
    assert read_text(jobs(two, "q", "request_counts", "failed")) == "2\n"

    # Retried there: one round of the two, made once.
    sim.clear_log()
    rc, _, err = two.sh("echo retry > jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert read_text(jobs(two, "q", "ctl")) == \
        "retry: ok: round 1 made: 2 requests in 1 batches\n"
    assert posts(sim) == [("POST", "/v1/files"), ("POST", "/v1/batches")]
    (r1,) = job_batches(sim, "q", 1)
    assert sim.content(r1["input_file_id"]) == (LINES[1] + LINES[4]).encode()

    # The first machine waits for the round it did not make, then reads
    # the merged results: every request a success.
    assert wait_job(sim, one, "q") == "completed\n"
    assert sorted(os.listdir(jobs(one, "q", "batches"))) == \
        ["part-0001", "part-0001.retry-1", "part-0002", "part-0003"]
    assert read_text(jobs(one, "q", "request_counts", "completed")) == "7\n"
    out = read_text(jobs(one, "q", "output.jsonl")).splitlines()
    assert sorted(eval_id(x) for x in out) == ["q-%d" % i for i in range(7)]
    assert read_text(jobs(one, "q", "errors.jsonl")) == ""
    # q-1's result is round 1's success, as its batch shows it.
    assert read_text(jobs(one, "q", "results", "q-1.txt")) == \
        read_text(one.batch(r1["id"], "results", "q-1.txt"))

    # A retry on the first machine finds nothing to retry: nothing sent.
    sim.clear_log()
    rc, _, err = one.sh("echo retry > jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert read_text(jobs(one, "q", "ctl")) == "retry: ok: nothing to retry\n"
    assert posts(sim) == []

    # A remount of the first machine (the same cache dir) shows the same
    # and repeats nothing.
    one.stop()
    again = machine(mount, tmp_path, "one")
    assert read_text(jobs(again, "q", "status")) == "completed\n"
    assert read_text(jobs(again, "q", "results", "q-4.txt")) == \
        read_text(again.batch(r1["id"], "results", "q-4.txt"))
    sim.clear_log()
    rc, out, err = again.sh("echo resume > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: every part exists already; nothing sent\n", out
    assert posts(sim) == []
    assert len(job_batches(sim, "q")) == 4


def eval_id(line):
    return json.loads(line)["custom_id"]
