"""MOUNT/events as its readers use it: `tail -f events | jq`, a `cat` that
waits at the end, a non-blocking read (EAGAIN), poll(2), many readers at
once, a reader that falls behind the kept lines (told how many it missed),
-o events_backlog, a file found by name that no listing shows, and the end
of the mount ending every reader. What each kind of line says is
tests/test_events_lines.py's."""

import errno
import json
import os
import re
import select
import signal
import subprocess
import threading
import time

import pytest

from conftest import is_mounted, read_text, wait_for

SLACK = 10
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
REQUEST = ('{"custom_id":"q-%d","method":"POST","url":"/v1/chat/completions",'
           '"body":{"model":"moonshot-v1-8k","messages":[{"role":"user",'
           '"content":"hi"}]}}\n')


def holds_events(pid, m):
    """Whether process pid has MOUNT/events open."""
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == os.path.join(m.path, "events"):
                return True
        except OSError:
            pass
    return False


def wchan(proc):
    """Where /proc/<proc> waits in the kernel ("" when it cannot tell)."""
    try:
        with open("/proc/%s/wchan" % proc) as f:
            return f.read()
    except OSError:
        return ""


# read(2)'s number, as /proc/<pid>/syscall gives it.
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}[os.uname().machine]


def waits_in_read(pid):
    """Whether process pid waits for the mount's answer to a read(2) (not
    to its open's or fstat's requests: an interrupt of one of those that
    came after its answer would stay in libfuse's list of interrupts)."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            in_read = f.read().split()[0] == str(READ_SYSCALL)
    except (OSError, IndexError):
        return False
    return in_read and wchan(pid) == "request_wait_answer"


def session_pids(sid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == sid:
                    pids.append(int(name))
            except OSError:
                pass
    return pids


class Follower:
    """A shell pipeline reading MOUNT/events in the mount (by default
    `tail -f events | jq -c --unbuffered .`), in a session of its own; its
    output lines are collected, parsed, by a thread."""

    def __init__(self, m, cmd="tail -f events | jq -c --unbuffered .", parse=True):
        self.m = m
        self.proc = subprocess.Popen(["bash", "-c", cmd], cwd=m.path,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True,
                                     env=dict(os.environ, LC_ALL="C"))
        self.lines = []
        self.parse = parse
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()
        wait_for(lambda: any(holds_events(p, m) for p in session_pids(self.proc.pid)),
                 timeout=SLACK, what="the reader to open events")

    def _collect(self):
        for text in self.proc.stdout:
            self.lines.append(json.loads(text) if self.parse else text)

    def wait_lines(self, n, timeout=SLACK):
        wait_for(lambda: len(self.lines) >= n, timeout=timeout,
                 what="%d lines (have %d: %r)" % (n, len(self.lines), self.lines[-3:]))
        return self.lines

    def stop(self):
        """Kill the pipeline; its stderr."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(SLACK)
        self.thread.join(SLACK)
        return self.proc.stderr.read()


@pytest.fixture
def followers():
    made = []

    def start(m, *args, **kw):
        f = Follower(m, *args, **kw)
        made.append(f)
        return f

    yield start
    for f in made:
        f.stop()


def without_t(line):
    assert STAMP.match(line["t"]), line
    return {k: v for k, v in line.items() if k != "t"}


def test_tail_f_through_jq_shows_a_finish_a_cancel_and_an_upload_in_order(
        sim, mount, followers, tmp_path):
    done, running, last = sim.seed(3, status="in_progress")
    sim.config(cancel_delay=3600)   # cancelling until the test ends
    m = mount(options=["poll_interval=1"])
    os.listdir(os.path.join(m.path, "batches"))
    tail = followers(m)
    t0 = time.time()
    sim.state(done, "completed")
    assert m.sh("cat batches/%s/wait" % done) == (0, "completed\n", "")
    assert m.sh("echo cancel > batches/%s/ctl" % running) == (0, "", "")
    src = tmp_path / "q.jsonl"
    src.write_text("".join(REQUEST % i for i in range(3)))
    assert m.sh("cp %s files/" % src) == (0, "", "")
    (fid,) = [f["id"] for f in sim.api("GET", "/v1/files")[1]["data"]
              if f["filename"] == "q.jsonl"]
    lines = tail.wait_lines(4)
    assert [without_t(x) for x in lines] == [
        {"kind": "batch", "id": done, "status": "completed", "was": "in_progress"},
        {"kind": "cancel", "id": running, "status": "cancelling"},
        {"kind": "batch", "id": running, "status": "cancelling", "was": "in_progress"},
        {"kind": "upload", "file": fid, "name": "q.jsonl", "bytes": src.stat().st_size},
    ]
    for x in lines:
        t = time.mktime(time.strptime(x["t"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert t0 - 2 <= t <= time.time() + 1, x
    # One more change: the next line is its, so each above came once.
    sim.state(last, "failed")
    assert m.sh("cat batches/%s/wait" % last) == (0, "failed\n", "")
    lines = tail.wait_lines(5)
    assert [(x["id"], x["status"]) for x in lines[4:]] == [(last, "failed")]


def test_a_reader_gets_the_lines_from_its_open_on(sim, mount, followers):
    a, b = sim.seed(2, status="in_progress")
    m = mount(cache_ttl=0)
    os.listdir(os.path.join(m.path, "batches"))
    sim.state(a, "completed")
    assert read_text(m.batch(a, "status")) == "completed\n"
    tail = followers(m)
    sim.state(b, "failed")
    assert read_text(m.batch(b, "status")) == "failed\n"
    lines = tail.wait_lines(1)
    assert [(x["id"], x["status"]) for x in lines] == [(b, "failed")]


def test_cat_waits_at_the_end_and_a_non_blocking_read_is_eagain(sim, mount, followers):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, options=["max_threads=2"])
    os.listdir(os.path.join(m.path, "batches"))
    cat = followers(m, "cat events", parse=False)
    fd = os.open(os.path.join(m.path, "events"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
        # Waiting reads hold no thread: other requests are served.
        assert read_text(m.batch(bid, "status")) == "in_progress\n"
        assert cat.proc.poll() is None and cat.lines == []
        sim.state(bid, "completed")
        assert read_text(m.batch(bid, "status")) == "completed\n"
        (line,) = cat.wait_lines(1)
        assert json.loads(line)["status"] == "completed"
        text = os.read(fd, 4096).decode()
        assert text == line
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
    finally:
        os.close(fd)
    assert cat.proc.poll() is None


def test_ctrl_c_ends_a_waiting_cat_at_once(sim, mount):
    m = mount()
    cat = subprocess.Popen(["cat", "events"], cwd=m.path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    wait_for(lambda: waits_in_read(cat.pid), timeout=SLACK, what="cat to wait in its read")
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)
    assert cat.wait(SLACK) == -signal.SIGINT
    assert time.monotonic() - t0 < 2


def test_poll_wakes_when_a_line_comes(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    os.listdir(os.path.join(m.path, "batches"))
    fd = os.open(os.path.join(m.path, "events"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(300) == []
        woke, tid = [], []

        def poller():
            tid.append(threading.get_native_id())
            woke.append(p.poll(SLACK * 1000))

        t = threading.Thread(target=poller)
        t.start()
        wait_for(lambda: tid and "poll" in wchan("self/task/%d" % tid[0]), timeout=SLACK,
                 what="the poll to wait")
        sim.state(bid, "completed")
        assert read_text(m.batch(bid, "status")) == "completed\n"
        t.join(SLACK)
        assert woke and woke[0] and woke[0][0][1] & select.POLLIN
        assert json.loads(os.read(fd, 4096))["status"] == "completed"
        assert p.poll(300) == []
    finally:
        os.close(fd)


def test_fifty_changes_a_second_nothing_lost(sim, mount, followers):
    ids = sim.seed(200, status="in_progress")
    m = mount(cache_ttl=0)
    os.listdir(os.path.join(m.path, "batches"))
    tail = followers(m)
    py = followers(m, "exec python3 -c 'import sys\n"
                      "with open(\"events\", \"rb\", buffering=0) as f:\n"
                      "    for l in f: sys.stdout.write(l.decode()); sys.stdout.flush()'")
    t0 = time.monotonic()
    for i, bid in enumerate(ids):
        # 50 a second: each change one batch the mount sees end.
        delay = t0 + i / 50 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sim.state(bid, "completed")
        with open(m.batch(bid, "status")) as f:
            assert f.read() == "completed\n"
    for reader in (tail, py):
        lines = reader.wait_lines(200, timeout=30)
        assert [x["id"] for x in lines] == ids
        assert all(x["kind"] == "batch" and x["status"] == "completed" for x in lines)


def test_many_readers_each_get_every_line(sim, mount, followers):
    ids = sim.seed(3, status="in_progress")
    m = mount(cache_ttl=0, options=["max_threads=4"])
    os.listdir(os.path.join(m.path, "batches"))
    readers = [followers(m, "cat events | jq -c --unbuffered .") for _ in range(12)]
    readers += [followers(m) for _ in range(4)]
    # Sixteen waiting readers, four threads: the mount still answers.
    assert read_text(m.batch(ids[0], "status")) == "in_progress\n"
    for bid in ids:
        sim.state(bid, "expired")
        assert read_text(m.batch(bid, "status")) == "expired\n"
    for r in readers:
        assert [x["id"] for x in r.wait_lines(3)] == ids
    # Half of them go; the others go on.
    for r in readers[::2]:
        r.stop()
    (more,) = sim.seed(1, status="in_progress")
    assert read_text(m.batch(more, "status")) == "in_progress\n"
    sim.state(more, "completed")
    assert read_text(m.batch(more, "status")) == "completed\n"
    for r in readers[1::2]:
        assert r.wait_lines(4)[3]["id"] == more


def test_a_slow_reader_is_told_how_many_lines_it_missed(sim, mount):
    n = 10050
    sim.seed(n, status="in_progress")
    m = mount(page_size=100, options=["timeout=60"])
    fd = os.open(os.path.join(m.path, "events"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert len(os.listdir(os.path.join(m.path, "batches"))) == n
        # Every batch ends; one listing sees them all: more lines than
        # are kept, while this reader reads nothing.
        sim.config(auto=True)
        sim.advance(3600)
        assert m.sh("echo refresh > ctl", timeout=120) == (0, "", "")
        data = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            data += chunk
        lines = [json.loads(x) for x in data.decode().splitlines()]
        assert without_t(lines[0]) == {"kind": "missed", "count": n - 10000}
        assert len(lines) == 10001
        assert all(x["kind"] == "batch" and x["status"] == "completed" for x in lines[1:])
        assert len({x["id"] for x in lines[1:]}) == 10000
    finally:
        os.close(fd)


def test_backlog_gives_lines_from_before_the_open(sim, mount, followers):
    ids = sim.seed(4, status="in_progress")
    m = mount(cache_ttl=0, options=["events_backlog=3"])
    os.listdir(os.path.join(m.path, "batches"))
    for bid in ids:
        sim.state(bid, "failed")
        assert read_text(m.batch(bid, "status")) == "failed\n"
    # `tail -n 100 -f`: all it is given, the last three.
    tail = followers(m, "tail -n 100 -f events | jq -c --unbuffered .")
    assert [x["id"] for x in tail.wait_lines(3)] == ids[1:]
    # Plain tail -f: the last 10 lines of what it is given, then on.
    plain = followers(m)
    assert [x["id"] for x in plain.wait_lines(3)] == ids[1:]
    (more,) = sim.seed(1, status="in_progress")
    assert read_text(m.batch(more, "status")) == "in_progress\n"
    sim.state(more, "completed")
    assert read_text(m.batch(more, "status")) == "completed\n"
    assert [x["id"] for x in tail.wait_lines(4)] == ids[1:] + [more]
    assert [x["id"] for x in plain.wait_lines(4)] == ids[1:] + [more]


def test_events_is_found_by_name_and_never_listed(sim, mount):
    sim.seed(2, status="in_progress")
    m = mount()
    assert "events" not in os.listdir(m.path)
    st = os.stat(os.path.join(m.path, "events"))
    assert oct(st.st_mode) == oct(0o100444) and st.st_size == 0
    # Tools that walk the tree never open it, so never wait on it.
    rc, out, err = m.sh("ls -a; find . -name events; grep -r -l zzz . ; "
                        "tar cf - . | tar tf -", timeout=60)
    assert "events" not in out and "batches/" in out
    assert errno_of_write(m) == errno.EROFS


def errno_of_write(m):
    try:
        os.open(os.path.join(m.path, "events"), os.O_WRONLY)
    except OSError as e:
        return e.errno
    return 0


@pytest.mark.parametrize("how", ["lazy unmount", "SIGTERM"])
def test_the_end_of_the_mount_ends_every_reader(sim, mount, followers, how):
    m = mount()
    tail = followers(m)
    cat = followers(m, "cat events", parse=False)
    m.expect_running = False
    t0 = time.monotonic()
    if how == "SIGTERM":
        assert m.stop() == 0
    else:
        r = subprocess.run(["fusermount3", "-u", "-z", m.path],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    # cat's read fails; tail's next look at the file fails, and it ends
    # ("no files remaining", with tail's own status 0).
    assert cat.proc.wait(5 + SLACK) == 1
    assert tail.proc.wait(5 + SLACK) == 0
    assert "Transport endpoint is not connected" in cat.proc.stderr.read()
    err = tail.proc.stderr.read()
    assert "Transport endpoint is not connected" in err and "no files remaining" in err
    assert time.monotonic() - t0 < 5 + SLACK
    assert m.wait_exit(timeout=SLACK) == 0
    assert not is_mounted(m.path)
    if how == "lazy unmount":
        assert "1 pending read of events ended" in m.stderr_text()
