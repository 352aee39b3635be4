"""MOUNT/log: the mount's recent log lines, read-only, newest last, each with
a UTC timestamp and its level (README: Errors). It holds what stderr or
syslog got, so a user without access to either can read why something
failed."""

import errno
import os
import re
import stat

from conftest import KEY, batch_path, read_text, try_write

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (error|warning|info): .+$")


def test_log_is_a_read_only_file_of_stamped_lines_sending_nothing(sim, mount):
    m = mount()
    path = os.path.join(m.path, "log")
    st = os.stat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o444
    sim.clear_log()
    for line in read_text(path).splitlines():
        assert STAMPED.match(line), line
    assert sim.log() == []
    assert try_write(path, b"x\n") in (errno.EACCES, errno.EROFS)


def test_a_failure_is_in_the_log_newest_last(sim, mount):
    first, second = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0)
    for bid, message in ((first, "first simulated refusal"),
                         (second, "second simulated refusal")):
        sim.clear_faults()
        sim.fault(method="GET", path=batch_path(bid), count=-1, action="status",
                  status=400, message=message)
        rc, _, _ = m.sh("cat batches/%s/status" % bid)
        assert rc != 0
    rc, out, _ = m.sh("tail -n 2 log")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 2, out
    for line in lines:
        assert STAMPED.match(line), line
    assert "error: batch %s:" % first in lines[0] and "first simulated refusal" in lines[0]
    assert "error: batch %s:" % second in lines[1] and "second simulated refusal" in lines[1]
    # The same lines went to stderr; the key is in neither.
    assert "second simulated refusal" in m.stderr_text()
    assert KEY not in read_text(os.path.join(m.path, "log"))


def status_lines(m):
    """The status change lines of MOUNT/log, as (id, old, new)."""
    return re.findall(r"info: batch (\S+): (\S+) -> (\S+)$",
                      read_text(os.path.join(m.path, "log")), re.M)


def test_a_wait_that_sees_a_batch_complete_logs_the_change(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    rc, out, _ = m.sh("cat batches/%s/status" % bid)
    assert (rc, out) == (0, "in_progress\n")
    assert status_lines(m) == []          # a batch seen the first time: none
    sim.state(bid, "completed")
    rc, out, _ = m.sh("cat batches/%s/wait" % bid)
    assert rc == 0 and "completed" in out
    assert status_lines(m) == [(bid, "in_progress", "completed")]


def test_listings_refreshes_and_cancels_log_each_change_once(sim, mount):
    first, second = sim.seed(2, status="in_progress")
    sim.config(cancel_delay=1000)
    m = mount(cache_ttl=0)
    assert m.sh("ls batches")[0] == 0
    assert status_lines(m) == []
    sim.state(first, "finalizing")
    assert m.sh("ls batches")[0] == 0
    assert m.sh("ls batches")[0] == 0       # nothing new: no line
    assert status_lines(m) == [(first, "in_progress", "finalizing")]
    sim.state(first, "completed")
    assert m.sh("echo refresh > batches/%s/ctl" % first)[0] == 0
    assert m.sh("echo cancel > batches/%s/ctl" % second)[0] == 0
    assert status_lines(m) == [(first, "in_progress", "finalizing"),
                               (first, "finalizing", "completed"),
                               (second, "in_progress", "cancelling")]
