"""The lines of MOUNT/events, through a real mount against the simulator
(docs/filesystem.md, MOUNT/events: Kinds of lines): who says what changed.
An upload, a creation, a cancel, a batch's status change (once, whoever
saw it), a failed cancel, a job's status and a job's retry round, each
read by a reader opened before it, compared whole (but for "t", a UTC
time)."""

import datetime
import errno
import json
import os
import re
import subprocess
import time

from conftest import read_text, wait_for

# The simulator's --auto lifecycle: validating 3 s, in_progress 20 s,
# finalizing 3 s of its clock, moved on with sim.advance.
LIFE = 30

T_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def line(cid, text="hi"):
    req = {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": "moonshot-v1-8k",
                    "messages": [{"role": "user", "content": text}]}}
    return json.dumps(req, separators=(",", ":")) + "\n"


GOOD = "".join(line("q-%d" % i) for i in range(3)).encode()


class Events:
    """A reader of MOUNT/events opened now, as `tail -f` is: what it has
    read, each line parsed, its "t" checked as a UTC time of now and
    left out."""

    def __init__(self, m):
        self.fd = os.open(os.path.join(m.path, "events"),
                          os.O_RDONLY | os.O_NONBLOCK)
        self.buf = b""
        self.lines = []
        self.opened = time.time()

    def _take(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.buf += chunk
            *whole, self.buf = self.buf.split(b"\n")
            for raw in whole:
                ev = json.loads(raw)
                t = ev.pop("t")
                assert T_FORM.match(t), t
                when = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                assert self.opened - 2 <= when <= time.time() + 2, t
                self.lines.append(ev)

    def until(self, predicate, timeout=10, what="the lines"):
        """Read until predicate(lines) holds: the lines."""
        def holds():
            self._take()
            return predicate(self.lines)
        wait_for(holds, timeout=timeout, interval=0.05, what=what)
        return self.lines

    def settle(self, seconds=2.0):
        """Read for a while longer (a line that should not come would):
        the lines."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._take()
            time.sleep(0.05)
        self._take()
        return self.lines

    def of(self, kind):
        return [ev for ev in self.lines if ev["kind"] == kind]

    def close(self):
        os.close(self.fd)


def has(*kinds):
    """A predicate: the lines hold at least these kinds, in this order."""
    def check(lines):
        it = iter(ev["kind"] for ev in lines)
        return all(k in it for k in kinds)
    return check


def server_files(sim):
    status, body = sim.api("GET", "/v1/files")
    assert status == 200
    return body["data"]


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_a_cp_into_files_is_an_upload_line(sim, mount, tmp_path):
    m = mount()
    ev = Events(m)
    rc, _, err = m.sh("cp %s files/" % write(tmp_path, "q.jsonl", GOOD))
    assert (rc, err) == (0, "")
    (f,) = server_files(sim)
    assert ev.until(has("upload")) == [
        {"kind": "upload", "file": f["id"], "name": "q.jsonl", "bytes": len(GOOD)}]
    assert ev.settle(1) == [ev.lines[0]]
    ev.close()


def test_a_cp_into_batches_is_an_upload_then_a_creation(sim, mount, tmp_path):
    m = mount()
    ev = Events(m)
    rc, out, err = m.sh("cp %s batches/ && cat batches/new"
                        % write(tmp_path, "b.jsonl", GOOD))
    assert (rc, err) == (0, "")
    bid = out.strip()
    (f,) = server_files(sim)
    assert ev.until(has("upload", "create")) == [
        {"kind": "upload", "file": f["id"], "name": "b.jsonl", "bytes": len(GOOD)},
        {"kind": "create", "id": bid, "file": f["id"]}]
    assert sim.get(bid)["input_file_id"] == f["id"]
    ev.close()


def test_echo_cancel_is_a_cancel_line_then_the_batch_line(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    ev = Events(m)
    rc, _, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    assert ev.until(has("cancel", "batch")) == [
        {"kind": "cancel", "id": bid, "status": "cancelling"},
        {"kind": "batch", "id": bid, "status": "cancelling", "was": "in_progress"}]
    assert len(ev.settle(1)) == 2
    ev.close()


def test_a_failed_cancel_is_a_cancel_line_with_the_error_and_no_batch_line(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    message = "simulated refusal of this cancel"
    sim.fault(method="POST", path="/cancel$", count=-1, action="status",
              status=400, message=message)
    ev = Events(m)
    rc, _, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert rc != 0 and os.strerror(errno.EPERM) in err
    assert ev.until(has("cancel")) == [
        {"kind": "cancel", "id": bid, "error": message}]
    assert ev.settle(1.5) == [ev.lines[0]]
    ev.close()


def test_a_batch_that_ends_is_one_line_whoever_sees_it(sim, mount):
    """A batch of a job finished by the simulator: a wait's poll and a
    listing both see it; one line, with the job."""
    (bid,) = sim.seed(1, status="in_progress",
                      metadata={"kimifs_job": "qq", "kimifs_part": "1/1"})
    m = mount(cache_ttl=0, options=["poll_interval=1"])
    assert bid in m.sh("ls batches")[1].split()
    ev = Events(m)
    wait = subprocess.Popen(["cat", m.batch(bid, "wait")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        sim.state(bid, "completed")
        assert bid in m.sh("ls batches")[1].split()
        out, err = wait.communicate(timeout=30)
    finally:
        if wait.poll() is None:
            wait.kill()
            wait.communicate()
    assert (wait.returncode, out, err) == (0, b"completed\n", b"")
    assert m.sh("ls batches && cat batches/%s/status" % bid)[1].endswith("completed\n")
    ev.until(has("batch"))
    assert ev.settle(2).count(
        {"kind": "batch", "id": bid, "status": "completed", "was": "in_progress",
         "job": "qq"}) == 1
    assert ev.of("batch") == [ev.lines[0]]
    ev.close()


def test_a_job_is_a_line_when_its_batches_end_not_at_the_mount(sim, mount):
    """The jobs the mount finds first are no lines; a job's line once its
    status changes (after its batches' lines), none while only one of its
    batches ended; a job first seen later is a line without "was"."""
    meta = [{"kimifs_job": "qq", "kimifs_part": "%d/2" % i} for i in (1, 2)]
    b1 = sim.seed(1, status="in_progress", metadata=meta[0])[0]
    b2 = sim.seed(1, status="in_progress", metadata=meta[1])[0]
    sim.seed(1, status="completed", metadata={"kimifs_job": "done", "kimifs_part": "1/1"})
    m = mount(cache_ttl=0)
    ev = Events(m)
    assert m.sh("cat jobs/qq/status")[1] == "in_progress\n"
    assert ev.settle(2.5) == []             # the first look: no line
    sim.state(b1, "completed")
    assert m.sh("cat jobs/qq/status")[1] == "in_progress\n"
    assert ev.settle(2.5) == [
        {"kind": "batch", "id": b1, "status": "completed", "was": "in_progress",
         "job": "qq"}]
    sim.state(b2, "failed")
    assert m.sh("cat jobs/qq/status")[1] == "failed\n"
    ev.until(has("batch", "batch", "job"), timeout=5, what="the job's line")
    assert ev.settle(1.5)[1:] == [
        {"kind": "batch", "id": b2, "status": "failed", "was": "in_progress",
         "job": "qq"},
        {"kind": "job", "name": "qq", "status": "failed", "was": "in_progress"}]
    sim.seed(1, status="validating", metadata={"kimifs_job": "new", "kimifs_part": "1/1"})
    assert "new" in m.sh("ls jobs")[1].split()
    ev.until(has("job", "job"), timeout=5, what="the new job's line")
    assert ev.settle(1.5)[3:] == [{"kind": "job", "name": "new", "status": "validating"}]
    ev.close()


def test_echo_retry_into_a_jobs_ctl_is_a_round_line(sim, mount, tmp_path):
    """A job's retry round: its part's upload and creation, then the round
    line with the batches made."""
    sim.config(auto=True, fail_ids={"q-1": 1})
    m = mount(options=["part_requests=2"])
    rc, _, err = m.sh("cp %s jobs/" % write(tmp_path, "q.jsonl", GOOD))
    assert (rc, err) == (0, "")

    def ended():
        sim.advance(LIFE)
        return read_text(os.path.join(m.path, "jobs", "q", "status")) == \
            "completed_with_failures\n"
    wait_for(ended, timeout=30, interval=0.5, what="the job's end")
    ev = Events(m)
    rc, out, err = m.sh("echo retry > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "retry: ok: round 1 made: 1 requests in 1 batches\n"
    (made,) = [b for b in sim.batches()
               if (b.get("metadata") or {}).get("kimifs_retry") == "1"]
    ev.until(has("upload", "create", "round"))
    assert [e for e in ev.lines if e["kind"] in ("upload", "create", "round")] == [
        {"kind": "upload", "file": made["input_file_id"],
         "name": "q.r1.part-0001-of-0001.jsonl", "bytes": len(line("q-1"))},
        {"kind": "create", "id": made["id"], "file": made["input_file_id"],
         "job": "q"},
        {"kind": "round", "job": "q", "round": 1, "batches": 1}]
    ev.close()
