"""jobs/: the jobs found in the batch listing, read-only for now. A batch
whose metadata carries kimifs_job and kimifs_part (and kimifs_retry for a
later round) belongs to the job of that name, so every mount of the
account shows the same jobs: `ls jobs`, `cat jobs/NAME/status` by the
rule of docs/filesystem.md, request_counts/ over custom_ids across
rounds, progress, and batches/ links sorted by part then round."""

import errno
import os
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import errno_of, read_text, wait_for


def part(sim, job, i, n, status="completed", total=10, completed=None,
         failed=0, retry=None, created_at=None, extra_meta=None):
    """A batch of job `job`, part i of n (of round `retry`'s round): its id."""
    meta = {"kimifs_job": job, "kimifs_part": "%d/%d" % (i, n)}
    if retry is not None:
        meta["kimifs_retry"] = retry
    meta.update(extra_meta or {})
    if completed is None:
        completed = total - failed if status == "completed" else 0
    fields = {"status": status, "metadata": meta,
              "request_counts": {"total": total, "completed": completed,
                                 "failed": failed}}
    if created_at is not None:
        fields["created_at"] = created_at
    return sim.create(fields)["id"]


def jobs(m, *names):
    return os.path.join(m.path, "jobs", *names)


def listing_only(sim):
    """Whether every request logged is a page of the batch listing."""
    return all(r["method"] == "GET" and r["path"] == "/v1/batches"
               for r in sim.log())


def test_ls_jobs_and_their_files(sim, mount):
    a = part(sim, "q", 1, 2)
    b = part(sim, "q", 2, 2)
    part(sim, "p", 1, 1, status="in_progress")
    sim.create({"status": "completed", "metadata": {"project": "x"}})
    m = mount()
    rc, out, err = m.sh("ls jobs")
    assert (rc, err) == (0, "")
    assert out.split() == ["p", "q"]
    rc, out, err = m.sh("ls jobs/q")
    assert out.split() == ["batches", "created_at", "ctl", "errors.jsonl",
                           "output.jsonl", "parts", "progress",
                           "request_counts", "results", "status", "usage"]
    assert read_text(jobs(m, "q", "status")) == "completed\n"
    assert read_text(jobs(m, "p", "status")) == "in_progress\n"
    assert read_text(jobs(m, "q", "parts")) == "2\n"
    assert read_text(jobs(m, "q", "created_at")) == "%d\n" % sim.get(a)["created_at"]
    rc, out, err = m.sh("ls jobs/q/request_counts")
    assert out.split() == ["completed", "failed", "pending", "total"]
    rc, out, err = m.sh("ls -l jobs/q/batches")
    assert "part-0001 -> ../../../batches/%s" % a in out
    assert "part-0002 -> ../../../batches/%s" % b in out
    assert read_text(jobs(m, "q", "batches", "part-0002", "status")) == "completed\n"
    # A tree walk sees every file once and never the wait.
    rc, out, err = m.sh("find jobs/q | sort")
    assert (rc, err) == (0, "")
    # (Both parts answered request-1 to request-10: merged, one each.)
    results = ["jobs/q/results/request-%d.%s" % (i, ext)
               for i in range(1, 11) for ext in ("json", "txt")]
    assert out.split() == sorted([
        "jobs/q", "jobs/q/batches", "jobs/q/batches/part-0001",
        "jobs/q/batches/part-0002", "jobs/q/created_at", "jobs/q/ctl",
        "jobs/q/parts", "jobs/q/errors.jsonl", "jobs/q/output.jsonl",
        "jobs/q/progress", "jobs/q/request_counts",
        "jobs/q/request_counts/completed", "jobs/q/request_counts/failed",
        "jobs/q/request_counts/pending", "jobs/q/request_counts/total",
        "jobs/q/results", "jobs/q/status", "jobs/q/usage",
        "jobs/q/usage/completion_tokens", "jobs/q/usage/prompt_tokens",
        "jobs/q/usage/total_tokens"] + results)
    # A job's directory is read-only (jobs/ itself takes new inputs:
    # test_jobs_create.py).
    assert errno_of(os.open, jobs(m, "q", "new.jsonl"), os.O_WRONLY | os.O_CREAT) in (
        errno.EROFS, errno.EACCES)
    assert errno_of(os.open, jobs(m, "q", "status"), os.O_WRONLY) in (
        errno.EROFS, errno.EACCES)


@pytest.mark.parametrize("statuses, want", [
    # While one runs: the earliest stage among those that run.
    (["completed", "in_progress", "finalizing"], "in_progress"),
    (["cancelling", "validating"], "validating"),
    (["completed", "finalizing"], "finalizing"),
    (["cancelling", "completed"], "cancelling"),
    # Once all are final: the reason of the latest round.
    (["completed", "completed"], "completed"),
    (["failed", "cancelled"], "failed"),
    (["expired", "failed"], "failed"),
    (["expired", "cancelled"], "expired"),
    (["cancelled", "completed"], "cancelled"),
])
def test_status_rule(sim, mount, statuses, want):
    for i, s in enumerate(statuses):
        part(sim, "s", i + 1, len(statuses), status=s,
             completed=10 if s == "completed" else 3)
    m = mount()
    assert read_text(jobs(m, "s", "status")) == want + "\n"


def test_completed_with_failures_and_incomplete(sim, mount):
    part(sim, "f", 1, 2)
    part(sim, "f", 2, 2, failed=2)
    # A creation that stopped halfway: part 2 of 3 never made.
    part(sim, "h", 1, 3)
    part(sim, "h", 3, 3)
    m = mount()
    assert read_text(jobs(m, "f", "status")) == "completed_with_failures\n"
    assert read_text(jobs(m, "h", "status")) == "incomplete\n"
    assert read_text(jobs(m, "h", "parts")) == "3\n"
    rc, out, err = m.sh("ls jobs/h/batches")
    assert out.split() == ["part-0001", "part-0003"]


def test_counts_across_two_rounds(sim, mount):
    # Round 0: 10 + 6 requests, 3 + 1 failed; part 1's failures retried
    # as a batch (2 of 3 succeed), then a job round 2 of what is left.
    b1 = part(sim, "r", 1, 2, total=10, failed=3)
    b2 = part(sim, "r", 2, 2, total=6, failed=1)
    x1 = part(sim, "r", 1, 2, total=3, failed=1, retry="1 " + b1)
    m = mount(cache_ttl=0)
    counts = lambda: [read_text(jobs(m, "r", "request_counts", c)) for c in
                      ("total", "completed", "failed", "pending")]
    assert counts() == ["16\n", "14\n", "2\n", "0\n"]
    assert read_text(jobs(m, "r", "status")) == "completed_with_failures\n"
    r2 = part(sim, "r", 1, 1, status="in_progress", total=2, retry="2")
    assert read_text(jobs(m, "r", "status")) == "in_progress\n"
    assert counts() == ["16\n", "14\n", "0\n", "2\n"]
    rc, out, err = m.sh("ls jobs/r/batches")
    assert out.split() == ["part-0001", "part-0001.retry-1",
                           "part-0001.retry-2", "part-0002"]
    rc, out, err = m.sh("readlink jobs/r/batches/*")
    assert out.split() == ["../../../batches/" + i for i in (b1, x1, r2, b2)]
    sim.set(r2, {"status": "completed",
                 "request_counts": {"total": 2, "completed": 2, "failed": 0}})
    assert read_text(jobs(m, "r", "status")) == "completed\n"
    assert counts() == ["16\n", "16\n", "0\n", "0\n"]


def test_progress(sim, mount):
    part(sim, "g", 1, 2, status="in_progress", total=10, completed=4,
         failed=1)
    b = part(sim, "g", 2, 2, total=10, failed=2)
    m = mount()
    line = read_text(jobs(m, "g", "progress"))
    assert line.startswith("[")
    assert "75%" in line and "15/20 done, 3 failed, 1 of 2 batches running" in line
    assert line.endswith("\n") and line.count("\n") == 1
    line = read_text(os.path.join(m.path, "batches", b, "progress"))
    assert "100%" in line and "10/10 done, 2 failed, 0 of 1 batch running" in line


def test_malformed_keys_ignored_and_logged(sim, mount):
    good = part(sim, "k", 1, 1)
    bad = sim.create({"status": "completed",
                      "metadata": {"kimifs_job": "k", "kimifs_part": "0/1"}})["id"]
    sim.create({"status": "completed",
                "metadata": {"kimifs_job": "bad/name", "kimifs_part": "1/1"}})
    m = mount()
    rc, out, err = m.sh("ls jobs")
    assert out.split() == ["k"]
    rc, out, err = m.sh("ls jobs/k/batches; ls jobs")
    assert out.split() == ["part-0001", "k"]
    assert os.readlink(jobs(m, "k", "batches", "part-0001")).endswith(good)
    log = read_text(os.path.join(m.path, "log"))
    assert len(re.findall("batch %s: in no job: .*kimifs_part" % bad, log)) == 1
    # The batch itself is still there, with its metadata.
    assert read_text(m.batch(bad, "metadata", "kimifs_part")) == "0/1\n"


def test_odd_names(sim, mount):
    names = ["my job", "d\u00e9j\u00e0-vu \u2603", "a.b.jsonl", "-x", "."+"hidden"]
    for n in names:
        part(sim, n, 1, 1)
    m = mount()
    assert sorted(os.listdir(jobs(m))) == sorted(names)
    for n in names:
        assert read_text(jobs(m, n, "status")) == "completed\n"


def test_not_a_job_costs_only_the_listing(sim, mount):
    part(sim, "q", 1, 1)
    m = mount()
    assert errno_of(os.stat, jobs(m, "nope")) == errno.ENOENT
    assert errno_of(os.stat, jobs(m, "q", "batches", "part-0002")) == errno.ENOENT
    assert errno_of(os.stat, jobs(m, "q", "nope")) == errno.ENOENT
    assert listing_only(sim)


def test_glob_costs_the_listing_only(sim, mount):
    for j in range(20):
        for i in range(3):
            part(sim, "job-%02d" % j, i + 1, 3, status="in_progress" if i else "completed")
    m = mount()
    rc, out, err = m.sh("cat jobs/*/status")
    assert (rc, err) == (0, "")
    assert out.split() == ["in_progress"] * 20
    assert listing_only(sim)
    assert 1 <= len(sim.log()) <= 2


def test_two_mounts_and_a_remount(sim, mount, tmp_path):
    a = part(sim, "q", 1, 2, status="in_progress")
    part(sim, "q", 2, 2)
    one = mount(options=["cache_dir=" + str(tmp_path / "c1")])
    two = mount(options=["cache_dir=" + str(tmp_path / "c2")], cache_ttl=0)
    for m in (one, two):
        assert os.listdir(jobs(m)) == ["q"]
        assert read_text(jobs(m, "q", "status")) == "in_progress\n"
    sim.set(a, {"status": "completed",
                "request_counts": {"total": 10, "completed": 10, "failed": 0}})
    assert read_text(jobs(two, "q", "status")) == "completed\n"
    one.stop()
    three = mount(options=["cache_dir=" + str(tmp_path / "c1")])
    assert os.listdir(jobs(three)) == ["q"]
    assert read_text(jobs(three, "q", "status")) == "completed\n"
    assert read_text(jobs(three, "q", "request_counts", "completed")) == "20\n"


def test_wait_blocks_until_every_batch_is_final(sim, mount):
    a = part(sim, "w", 1, 2, status="in_progress")
    b = part(sim, "w", 2, 2, status="in_progress")
    m = mount(options=["poll_interval=1"])
    assert "wait" not in os.listdir(jobs(m, "w"))
    cat = subprocess.Popen(["cat", "jobs/w/wait"], cwd=m.path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(sim.retrieves(a)) >= 1, timeout=20)
    sim.set(a, {"status": "completed",
                "request_counts": {"total": 10, "completed": 10, "failed": 0}})
    wait_for(lambda: len(sim.retrieves(b)) >= 1, timeout=20)
    time.sleep(1.5)
    assert cat.poll() is None, "wait returned while a batch was running"
    sim.set(b, {"status": "failed"})
    out, err = cat.communicate(timeout=30)
    assert (cat.returncode, out, err) == (0, b"failed\n", b"")


def test_wait_of_a_final_job_and_ctrl_c(sim, mount):
    part(sim, "d", 1, 1)
    part(sim, "r", 1, 1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    assert read_text(jobs(m, "d", "wait")) == "completed\n"
    cat = subprocess.Popen(["cat", "jobs/r/wait"], cwd=m.path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    assert cat.poll() is None
    cat.send_signal(signal.SIGINT)
    cat.communicate(timeout=10)
    assert cat.returncode != 0
    assert errno_of(os.stat, jobs(m, "nope", "wait")) == errno.ENOENT


def test_wait_polls_and_does_not_block_a_nonblocking_read(sim, mount):
    a = part(sim, "p", 1, 2, status="in_progress")
    b = part(sim, "p", 2, 2, status="in_progress")
    m = mount(options=["poll_interval=1"])
    fd = os.open(jobs(m, "p", "wait"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert errno_of(os.read, fd, 100) == errno.EAGAIN
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(0) == []
        for bid in (a, b):
            sim.set(bid, {"status": "completed",
                          "request_counts": {"total": 10, "completed": 10,
                                             "failed": 0}})
        got = []

        def ready_read():
            # Readable once the batch it watches ended; a read then says
            # EAGAIN while another runs, and the next poll watches that.
            if not p.poll(100):
                return False
            try:
                got.append(os.pread(fd, 100, 0))
            except BlockingIOError:
                return False
            return True

        wait_for(ready_read, timeout=20)
        assert got == [b"completed\n"]
    finally:
        os.close(fd)


def test_a_job_read_again_holds_back_no_other_wait(sim, mount):
    """When a batch of a job is final, its wait reads the job again, which
    may fetch the listing; a listing that hangs must not delay the answer
    of another wait (the polls are not made on that read's thread). With
    250 batches the listing is 3 pages, so two waits poll their batches
    one by one, not through it."""
    for _ in range(250):
        sim.create({"status": "completed"})
    a = part(sim, "h", 1, 2, status="in_progress")
    part(sim, "h", 2, 2)
    x = sim.create({"status": "in_progress"})["id"]
    m = mount(options=["poll_interval=1", "timeout=60"], cache_ttl=1)
    job = subprocess.Popen(["cat", "jobs/h/wait"], cwd=m.path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    loose = subprocess.Popen(["cat", "batches/%s/wait" % x], cwd=m.path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(sim.retrieves(a)) >= 1 and
                 len(sim.retrieves(x)) >= 1, timeout=20)
        time.sleep(1.5)  # the listing is older than cache_ttl
        sim.fault(method="GET", path="^/v1/batches$", action="hang",
                  seconds=120)
        listed = len(sim.requests("GET", "/v1/batches"))
        sim.set(a, {"status": "completed"})
        # The job's wait reads the job again: its listing hangs.
        wait_for(lambda: len(sim.requests("GET", "/v1/batches")) > listed,
                 timeout=30)
        sim.set(x, {"status": "completed"})
        start = time.monotonic()
        out, err = loose.communicate(timeout=90)
        assert (loose.returncode, out, err) == (0, b"completed\n", b"")
        assert time.monotonic() - start < 30, \
            "a batch's wait waited for another wait's listing"
        assert job.poll() is None
    finally:
        sim.clear_faults()
        for p in (job, loose):
            if p.poll() is None:
                p.kill()
            p.communicate()
