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
