"""A job's retry rounds by themselves: with -o retry_rounds=N a job whose
batches have all ended and that still has requests without a success gets
up to N rounds, one at a time, each its requests without a success (only
those, byte for byte, across parts) uploaded as NAME.rR.part-000i-of-000n
.jsonl and made batches tagged kimifs_retry "R"; the count comes from the
metadata, so a remount or a second mount makes no round twice."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import read_text, wait_for

# The simulator's --auto lifecycle: validating 3 s, in_progress 20 s,
# finalizing 3 s of its clock, moved on with sim.advance.
LIFE = 30


def line(cid, text="hi"):
    req = {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "moonshot-v1-8k",
                    "messages": [{"role": "user", "content": text}]}}
    return json.dumps(req, separators=(",", ":")) + "\n"


# 7 requests: with part_requests=3, parts of 3, 3 and 1.
LINES = [line("q-%d" % i, "question %d" % i) for i in range(7)]
INPUT = "".join(LINES).encode()


def jobs(m, *names):
    return os.path.join(m.path, "jobs", *names)


def log_text(m):
    return read_text(os.path.join(m.path, "log"))


def job_batches(sim, job, round_=None):
    """The batches of job `job` on the server (of round round_ when given:
    0 for the first), by round then part."""
    def rnd(b):
        return int(b["metadata"].get("kimifs_retry", "0").split()[0])
    found = [b for b in sim.batches()
             if (b.get("metadata") or {}).get("kimifs_job") == job]
    found = [b for b in found if round_ is None or rnd(b) == round_]
    return sorted(found, key=lambda b: (rnd(b), int(b["metadata"]["kimifs_part"].split("/")[0])))


def files_by_id(sim):
    status, body = sim.api("GET", "/v1/files")
    assert status == 200
    return {f["id"]: f for f in body["data"]}


def creations(sim):
    return len(sim.requests("POST", "/v1/batches"))


def start_job(sim, mount, tmp_path, options, fail_ids, name="q", data=INPUT):
    """A mount with options, the simulator failing fail_ids, and job
    `name` made by cp of data: the mount."""
    sim.config(auto=True, fail_ids=fail_ids)
    src = tmp_path / (name + ".jsonl")
    src.write_bytes(data)
    m = mount(options=["part_requests=3"] + options)
    rc, _, err = m.sh("cp %s jobs/" % src)
    assert (rc, err) == (0, "")
    return m


def settle(sim, m, job, rounds, timeout=30):
    """Let every batch run to its end (the simulator's clock moved on),
    reading the job's status so that the mount learns it, until the job
    has `rounds` rounds on the server and all of them ended: its status."""
    def done():
        sim.advance(LIFE)
        status = read_text(jobs(m, job, "status")).strip()
        batches = job_batches(sim, job)
        rnds = {int(b["metadata"].get("kimifs_retry", "0").split()[0]) for b in batches}
        return status if len(rnds) == rounds and all(
            b["status"] in ("completed", "failed", "expired", "cancelled")
            for b in batches) and status not in (
                "validating", "in_progress", "finalizing", "cancelling") else None
    return wait_for(done, timeout=timeout, interval=0.5,
                    what="job %s with %d rounds, all ended" % (job, rounds))


def quiet(sim, m, job, seconds=4):
    """Read the job's status for a few seconds (the mount learns all
    there is): no batch is made meanwhile."""
    before = creations(sim)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sim.advance(LIFE)
        read_text(jobs(m, job, "status"))
        time.sleep(0.3)
    assert creations(sim) == before


def counts(m, job):
    return {k: int(read_text(jobs(m, job, "request_counts", k)))
            for k in ("total", "completed", "failed", "pending")}


def expected_input(sim, batches, lines):
    """The lines (of `lines`) of the requests of `batches` with no 2xx line
    in their output files."""
    ok = set()
    for b in batches:
        if b.get("output_file_id"):
            for raw in sim.content(b["output_file_id"]).decode().splitlines():
                r = json.loads(raw)
                if 200 <= r["response"]["status_code"] < 300:
                    ok.add(r["custom_id"])
    ids = {b["id"] for b in batches}
    inputs = set()
    for b in batches:
        assert b["id"] in ids
        inputs.update(json.loads(x)["custom_id"]
                      for x in sim.content(b["input_file_id"]).decode().splitlines())
    return "".join(x for x in lines
                   if json.loads(x)["custom_id"] in inputs - ok).encode()


def test_always_failing_requests_get_exactly_n_rounds(sim, mount, tmp_path):
    fail = {"q-0": True, "q-1": True, "q-2": True, "q-4": True}
    m = start_job(sim, mount, tmp_path, ["retry_rounds=2"], fail)
    assert settle(sim, m, "q", 3) == "completed_with_failures"
    quiet(sim, m, "q")
    assert len(job_batches(sim, "q", 0)) == 3
    files = files_by_id(sim)
    for r in (1, 2):
        batches = job_batches(sim, "q", r)
        # 4 requests without a success: parts of 3 and 1, tagged round r.
        assert [b["metadata"] for b in batches] == [
            {"kimifs_job": "q", "kimifs_part": "%d/2" % i, "kimifs_retry": str(r)}
            for i in (1, 2)]
        assert [files[b["input_file_id"]]["filename"] for b in batches] == [
            "q.r%d.part-0001-of-0002.jsonl" % r, "q.r%d.part-0002-of-0002.jsonl" % r]
        got = b"".join(sim.content(b["input_file_id"]) for b in batches)
        assert got == "".join(LINES[i] for i in (0, 1, 2, 4)).encode()
        assert all(b["completion_window"] == "24h" for b in batches)
    assert counts(m, "q") == {"total": 7, "completed": 3, "failed": 4, "pending": 0}
    log = log_text(m)
    for r in (1, 2):
        assert "job q: making retry round %d of 2 by itself" % r in log
        assert "job q: round %d made: 4 requests in 2 batches" % r in log
    assert "round 3" not in log


def test_a_request_failing_once_completes_in_round_1(sim, mount, tmp_path):
    m = start_job(sim, mount, tmp_path, ["retry_rounds=2"], {"q-1": 1, "q-5": 1})
    assert settle(sim, m, "q", 2) == "completed"
    quiet(sim, m, "q")
    (b,) = job_batches(sim, "q", 1)
    assert sim.content(b["input_file_id"]) == (LINES[1] + LINES[5]).encode()
    assert counts(m, "q") == {"total": 7, "completed": 7, "failed": 0, "pending": 0}
    assert len(job_batches(sim, "q")) == 4


def test_no_option_no_round(sim, mount, tmp_path):
    m = start_job(sim, mount, tmp_path, [], {"q-1": True})
    assert settle(sim, m, "q", 1) == "completed_with_failures"
    quiet(sim, m, "q")
    assert len(job_batches(sim, "q")) == 3


def test_no_round_while_a_batch_of_the_job_runs(sim, mount, tmp_path):
    m = start_job(sim, mount, tmp_path, ["retry_rounds=1"], {})
    first = job_batches(sim, "q", 0)
    for b in first[:2]:
        sim.state(b["id"], "failed")
    wait_for(lambda: read_text(jobs(m, "q", "request_counts", "failed")) == "0\n"
             and read_text(jobs(m, "q", "status")) == "validating\n", timeout=10)
    before = creations(sim)
    end = time.monotonic() + 4
    while time.monotonic() < end:
        assert read_text(jobs(m, "q", "status")) == "validating\n"
        time.sleep(0.3)
    assert creations(sim) == before
    assert "retry round" not in log_text(m)
    # Part 3 ends: one round, of the requests of the two failed parts.
    assert settle(sim, m, "q", 2) == "completed"
    batches = job_batches(sim, "q", 1)
    got = b"".join(sim.content(b["input_file_id"]) for b in batches)
    assert got == "".join(LINES[:6]).encode()


def test_a_remount_makes_no_round_again_and_counts_from_the_metadata(
        sim, mount, tmp_path):
    m = start_job(sim, mount, tmp_path, ["retry_rounds=1"], {"q-3": True})
    assert settle(sim, m, "q", 2) == "completed_with_failures"
    m.stop()
    again = mount(options=["part_requests=3", "retry_rounds=1"])
    assert read_text(jobs(again, "q", "status")) == "completed_with_failures\n"
    quiet(sim, again, "q")
    assert len(job_batches(sim, "q")) == 4
    again.stop()
    # One round more allowed: one more made, the second of the job.
    more = mount(options=["part_requests=3", "retry_rounds=2"])
    assert settle(sim, more, "q", 3) == "completed_with_failures"
    quiet(sim, more, "q")
    (b,) = job_batches(sim, "q", 2)
    assert b["metadata"]["kimifs_retry"] == "2"
    assert sim.content(b["input_file_id"]) == LINES[3].encode()
    assert len(job_batches(sim, "q")) == 5


def test_two_mounts_make_one_round_between_them(sim, mount, tmp_path):
    one = start_job(sim, mount, tmp_path,
                    ["retry_rounds=1", "cache_dir=" + str(tmp_path / "c1")],
                    {"q-2": True})
    two = mount(options=["part_requests=3", "retry_rounds=1",
                         "cache_dir=" + str(tmp_path / "c2")])
    assert read_text(jobs(two, "q", "status")) == "validating\n"
    sim.advance(LIFE)
    (failing,) = [b for b in job_batches(sim, "q", 0) if b["error_file_id"]]
    # The second mount learns first that every batch ended and starts its
    # round: its download of the error file is held back 3 s, while the
    # first mount learns it too and makes the round. The second's fresh
    # listing right before creating finds that round: it makes none.
    sim.faults([{"path": "/v1/files/%s/content$" % failing["error_file_id"],
                 "action": "delay", "seconds": 3}])
    wait_for(lambda: read_text(jobs(two, "q", "status")) == "completed_with_failures\n",
             timeout=10, interval=0.2)
    wait_for(lambda: sim.requests("GET", "/v1/files/%s/content"
                                  % failing["error_file_id"]), timeout=10)
    wait_for(lambda: read_text(jobs(one, "q", "status")) == "completed_with_failures\n",
             timeout=10, interval=0.2)
    wait_for(lambda: "no round by itself: round 1: job q has round 1 already"
             in log_text(two), timeout=20)
    quiet(sim, one, "q")
    quiet(sim, two, "q")
    assert len(job_batches(sim, "q", 1)) == 1
    assert len(job_batches(sim, "q")) == 4
    assert "round 1 made" in log_text(one)
    assert "round 1 made" not in log_text(two)


def test_a_part_cancelled_midway_has_its_unrun_requests_retried(sim, mount, tmp_path):
    m = start_job(sim, mount, tmp_path, ["retry_rounds=1"], {})
    first = job_batches(sim, "q", 0)
    assert len(first) == 3
    sim.advance(3 + 10)  # validated, half of the processing
    status, _ = sim.api("POST", "/v1/batches/%s/cancel" % first[1]["id"])
    assert status == 200
    assert settle(sim, m, "q", 2) == "completed"
    cancelled = sim.get(first[1]["id"])
    assert cancelled["status"] == "cancelled"
    done = cancelled["request_counts"]["completed"]
    assert 0 < done < 3
    (b,) = job_batches(sim, "q", 1)
    want = expected_input(sim, [cancelled], LINES[3:6])
    assert want and sim.content(b["input_file_id"]) == want
    assert counts(m, "q") == {"total": 7, "completed": 7, "failed": 0, "pending": 0}


def test_a_round_stopped_halfway_is_finished_never_a_part_twice(sim, mount, tmp_path):
    fail = {"q-0": True, "q-1": True, "q-2": True, "q-4": True}
    m = start_job(sim, mount, tmp_path, ["retry_rounds=1"], fail)
    # The round's second batch is refused (its first made): its file is
    # uploaded, its batch not made.
    sim.faults([{"method": "POST", "path": "^/v1/batches$", "action": "status",
                 "status": 400, "skip": 1}])

    def failed_once():
        sim.advance(LIFE) if not job_batches(sim, "q", 1) else None
        read_text(jobs(m, "q", "status"))
        return "retry round 1 by itself failed: round 1: part 2/2:" in log_text(m)
    wait_for(failed_once, timeout=20, interval=0.3)
    assert len(job_batches(sim, "q", 1)) == 1

    def finished():
        sim.advance(LIFE)
        read_text(jobs(m, "q", "status"))
        return len(job_batches(sim, "q", 1)) == 2
    wait_for(finished, timeout=20, interval=0.3)
    assert settle(sim, m, "q", 2) == "completed_with_failures"
    quiet(sim, m, "q")
    batches = job_batches(sim, "q", 1)
    assert [b["metadata"]["kimifs_part"] for b in batches] == ["1/2", "2/2"]
    names = [f["filename"] for f in files_by_id(sim).values()]
    assert sorted(n for n in names if n.startswith("q.r1.")) == [
        "q.r1.part-0001-of-0002.jsonl", "q.r1.part-0002-of-0002.jsonl"]
    got = b"".join(sim.content(b["input_file_id"]) for b in batches)
    assert got == "".join(LINES[i] for i in (0, 1, 2, 4)).encode()
    log = log_text(m)
    assert "job q: finishing retry round 1 of 1 by itself" in log
    assert "job q round 1: part 1/2: exists as %s" % batches[0]["id"] in log
    assert "(uploaded before)" in log


def test_a_round_keeps_the_window_endpoint_and_metadata_of_the_first(sim, mount):
    """A job made elsewhere (its first round with the user's metadata and
    a 48h window): its round is made like it."""
    sim.config(auto=True, fail_ids={"q-1": True})
    f = sim._call("POST", "/_sim/files", {"filename": "m.part-0001-of-0001.jsonl",
                                          "content": "".join(LINES[:3])})
    meta = {"project": "retry test", "owner": "qa", "kimifs_job": "m",
            "kimifs_part": "1/1"}
    body = json.dumps({"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                       "completion_window": "48h", "metadata": meta}).encode()
    req = urllib.request.Request(sim.url + "/v1/batches", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + sim.key)
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=30).read()
    m = mount(options=["retry_rounds=1"])
    assert settle(sim, m, "m", 2) == "completed_with_failures"
    (b,) = job_batches(sim, "m", 1)
    assert b["metadata"] == dict(meta, kimifs_retry="1")
    assert list(b["metadata"])[:2] == ["project", "owner"]
    assert (b["completion_window"], b["endpoint"]) == ("48h", "/v1/chat/completions")
    assert sim.content(b["input_file_id"]) == LINES[1].encode()
    assert files_by_id(sim)[b["input_file_id"]]["filename"] == "m.r1.part-0001-of-0001.jsonl"


def test_a_round_without_room_sends_nothing(sim, mount, tmp_path):
    # 993 files, the job's 3 inputs, and once its batches ended their 3
    # output files and 1 error file: the account's 1,000.
    for i in range(993):
        sim._call("POST", "/_sim/files", {"filename": "f%d.jsonl" % i, "size": 10})
    m = start_job(sim, mount, tmp_path, ["retry_rounds=1"], {"q-6": True})
    sim.advance(LIFE)
    sim.batches()  # the results made
    sim.clear_log()

    def refused():
        sim.advance(LIFE)
        read_text(jobs(m, "q", "status"))
        return "the account has no room" in log_text(m)
    wait_for(refused, timeout=30, interval=0.3)
    assert "job q: retry round 1 by itself failed: round 1: the account has no room: " \
        "the job needs 1 files of %d bytes, the account holds 1000 of 1000 files" \
        % len(LINES[6]) in log_text(m)
    quiet(sim, m, "q")
    assert sim.requests("POST", "/v1/files") == []
    assert sim.requests("POST", "/v1/batches") == []
    assert len(job_batches(sim, "q")) == 3
    # A round that failed is not waited for: the wait gives the status.
    rc, out, err = m.sh("timeout 20 cat jobs/q/wait")
    assert (rc, out, err) == (0, "completed_with_failures\n", "")


def wait_job(sim, m, job):
    """cat jobs/JOB/wait on mount m while the simulator's clock moves on:
    what it gives (it must succeed, with nothing on stderr)."""
    cat = subprocess.Popen(["cat", "jobs/%s/wait" % job], cwd=m.path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def ended():
            sim.advance(LIFE)
            return cat.poll() is not None
        wait_for(ended, timeout=60, interval=0.5, what="the job's wait")
        out, err = cat.communicate(timeout=10)
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.communicate()
    assert (cat.returncode, err) == (0, b"")
    return out.decode()


def test_wait_waits_for_the_rounds_made_by_themselves(sim, mount, tmp_path):
    """With -o retry_rounds, a job's wait ends once the rounds it is due
    are made and final, not when its first round ends."""
    m = start_job(sim, mount, tmp_path, ["retry_rounds=2", "poll_interval=1"],
                  {"q-1": 1, "q-5": 2})
    assert wait_job(sim, m, "q") == "completed\n"
    # Round 1 (q-1, q-5) and round 2 (q-5) were made and waited for.
    assert [len(job_batches(sim, "q", r)) for r in (0, 1, 2)] == [3, 1, 1]


def test_echo_retry_into_the_jobs_ctl(sim, mount, tmp_path):
    """Without -o retry_rounds: retry written to jobs/NAME/ctl is EBUSY
    while a batch runs (nothing sent), then makes one round, then nothing
    once every request has a success."""
    m = start_job(sim, mount, tmp_path, [], {"q-1": 1, "q-4": 1})
    sim.clear_log()
    rc, out, err = m.sh("echo retry > jobs/q/ctl; cat jobs/q/ctl")
    assert rc == 0 and "Device or resource busy" in err, err
    assert out == "retry: failed: 3 batches of the job run\n"
    assert sim.requests("POST", "/v1/files") == [] and creations(sim) == 0
    assert settle(sim, m, "q", 1) == "completed_with_failures"
    rc, out, err = m.sh("echo retry > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "retry: ok: round 1 made: 2 requests in 1 batches\n"
    (b,) = job_batches(sim, "q", 1)
    assert sim.content(b["input_file_id"]) == (LINES[1] + LINES[4]).encode()
    assert b["metadata"] == {"kimifs_job": "q", "kimifs_part": "1/1", "kimifs_retry": "1"}
    assert settle(sim, m, "q", 2) == "completed"
    sim.clear_log()
    rc, out, err = m.sh("echo retry > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "retry: ok: nothing to retry\n"
    assert sim.requests("POST", "/v1/files") == [] and creations(sim) == 0
    assert len(job_batches(sim, "q")) == 4


@pytest.mark.parametrize("value", ["11", "-1", "1x", ""])
def test_a_bad_retry_rounds_is_refused_before_any_request(sim, mount, value):
    m = mount(options=["retry_rounds=" + value], wait=False)
    assert m.wait_exit() != 0
    assert m.stderr_text().strip().splitlines() == [
        "kimifs: retry_rounds must be a whole number from 0 to 10"]
    assert sim.log() == []
