"""What reading results/ costs in memory (docs/filesystem.md, Results): a
line past 8 MiB is left out and logged, a line is indexed without a tree of
it however it nests, open directories share one index, open result files
share one rendering within a stated budget; and a lone surrogate escape,
valid JSON, is a result like any other."""

import errno
import json
import os

from conftest import errno_of, read_text, wait_for
from test_content import SANITIZED
from test_results import ok_line, with_output

MIB = 1024 * 1024


def status_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


def answer_line(cid, content):
    """A minimal successful result line, as the server would write it."""
    return (json.dumps({"custom_id": cid, "response": {
        "status_code": 200, "body": {"choices": [{"message": {"content": content}}]}}})
        + "\n").encode()


def open_all(paths):
    fds = []
    try:
        for p in paths:
            fds.append(os.open(p, os.O_RDONLY))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def test_a_line_past_8_mib_is_left_out_and_logged(sim, mount):
    lines = (ok_line("small", "hi") + answer_line("big", "x" * (8 * MIB)) +
             answer_line("mid", "y" * (7 * MIB)) + ok_line("after", "yo"))
    bid, _ = with_output(sim, lines)
    m = mount()
    assert sorted(os.listdir(m.batch(bid, "results"))) == [
        "after.json", "after.txt", "mid.json", "mid.txt", "small.json", "small.txt"]
    assert errno_of(os.stat, m.batch(bid, "results", "big.json")) == errno.ENOENT
    assert "line 2: longer than 8 MiB; skipped" in m.stderr_text()
    # A line under the bound is a result as any other.
    assert os.path.getsize(m.batch(bid, "results", "mid.txt")) == 7 * MIB + 1
    assert read_text(m.batch(bid, "results", "after.txt")) == "yo\n"


def test_a_lone_surrogate_escape_is_a_result(sim, mount):
    lines = (b'{"custom_id":"lone-\\ud800","response":{"status_code":200,'
             b'"body":{"choices":[{"message":{"content":"a\\ud800b"}}]}}}\n'
             b'{"custom_id":"plain","response":{"status_code":200,'
             b'"body":{"choices":[{"message":{"content":"x\\udc00\\ud83d\\ude00"}}]}}}\n')
    bid, _ = with_output(sim, lines)
    m = mount()
    # In a name, the surrogate is its three bytes, each written %XX; in a
    # .txt it is U+FFFD; the .json keeps the escape as the server wrote it.
    assert sorted(os.listdir(m.batch(bid, "results"))) == [
        "lone-%ED%A0%80.json", "lone-%ED%A0%80.txt", "plain.json", "plain.txt"]
    with open(m.batch(bid, "results", "plain.txt"), "rb") as f:
        assert f.read() == "x\ufffd\U0001F600\n".encode()
    with open(m.batch(bid, "results", "lone-%ED%A0%80.txt"), "rb") as f:
        assert f.read() == "a\ufffdb\n".encode()
    text = read_text(m.batch(bid, "results", "lone-%ED%A0%80.json"))
    assert '"custom_id": "lone-\\ud800"' in text
    assert "not JSON" not in m.stderr_text()


def test_a_deeply_nested_line_is_indexed_in_little_memory(sim, mount):
    # 6 MiB of empty arrays: two million values in one line.
    junk = "[" + ",".join(["[]"] * (2 * MIB)) + "]"
    line = ('{"custom_id":"nest","junk":%s,"response":{"status_code":200,'
            '"body":{"choices":[{"message":{"content":"ok"}}]}}}\n' % junk).encode()
    bid, _ = with_output(sim, ok_line("plain", "fine") + line)
    m = mount()
    before = status_kib(m.proc.pid, "VmHWM")
    assert sorted(os.listdir(m.batch(bid, "results"))) == [
        "nest.json", "nest.txt", "plain.json", "plain.txt"]
    assert read_text(m.batch(bid, "results", "nest.txt")) == "ok\n"
    grown = status_kib(m.proc.pid, "VmHWM") - before
    # A tree of the line took 160 MiB; its text and a read buffer remain.
    assert grown < 64 * 1024, "VmHWM grew %d KiB" % grown


def test_open_results_directories_share_one_index(sim, mount):
    n = 100000
    lines = b"".join(answer_line("request-%06d" % i, "a") for i in range(n))
    bid, _ = with_output(sim, lines)
    m = mount(timeout=120)
    d = m.batch(bid, "results")
    assert len(os.listdir(d)) == 2 * n  # the index is built and kept
    before = status_kib(m.proc.pid, "VmRSS")
    fds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for _ in range(10)]
    try:
        grown = status_kib(m.proc.pid, "VmRSS") - before
        # A copy of the 200,000 names took about 10 MiB for each open.
        assert grown < 24 * 1024, "VmRSS grew %d KiB for 10 open" % grown
        names = os.listdir(fds[3])
        assert names == ["request-%06d.%s" % (i, ext) for i in range(n)
                         for ext in ("json", "txt")]
    finally:
        for fd in fds:
            os.close(fd)


def test_open_result_files_share_one_rendering(sim, mount):
    text = "z" * (4 * MIB)
    bid, _ = with_output(sim, ok_line("one", "hi") + ok_line("huge", text) +
                         ok_line("twin", text))
    m = mount()
    # Eight readers at once of a file not yet rendered: one renders, the
    # others wait for it, all read the same bytes.
    rc, out, err = m.sh("cd batches/%s/results && for i in 1 2 3 4 5 6 7 8; do "
                        "sha256sum twin.json & done; wait" % bid)
    assert rc == 0, err
    sums = out.split("\n")[:-1]
    assert len(sums) == 8 and len(set(sums)) == 1, out
    paths = [m.batch(bid, "results", "huge" + ext) for ext in (".json", ".txt")]
    assert os.path.getsize(paths[1]) == 4 * MIB + 1
    before = status_kib(m.proc.pid, "VmRSS")
    fds = open_all(paths * 20)
    try:
        grown = status_kib(m.proc.pid, "VmRSS") - before
        # A rendering for each open took 160 MiB; shared, 8 MiB.
        assert grown < 48 * 1024, "VmRSS grew %d KiB for 40 open" % grown
        assert os.pread(fds[-1], 5 * MIB, 0) == (text + "\n").encode()
        assert json.loads(os.pread(fds[-2], 5 * MIB, 0))["custom_id"] == "huge"
    finally:
        for fd in fds:
            os.close(fd)


def test_open_result_files_past_64_mib_are_refused_and_logged(sim, mount):
    n = 11
    bid, _ = with_output(sim, b"".join(answer_line("r%02d" % i, chr(97 + i) * (6 * MIB))
                                       for i in range(n)))
    m = mount(timeout=60)
    paths = [m.batch(bid, "results", "r%02d.txt" % i) for i in range(n)]
    fds = open_all(paths[:10])
    try:
        # Ten renderings of 6 MiB are held: the eleventh would pass 64 MiB.
        assert errno_of(os.open, paths[10], os.O_RDONLY) == errno.ENOMEM
        assert "the results open pass 64 MiB" in m.stderr_text()
        os.close(fds.pop())
        # The kernel lets the daemon know of a last close (RELEASE) after
        # close(2) has returned: the rendering goes then.
        def opened():
            try:
                return os.open(paths[10], os.O_RDONLY)
            except OSError as e:
                if e.errno != errno.ENOMEM:
                    raise
                return None

        fd = wait_for(opened, what="the rendering of the closed file to go")
        with os.fdopen(fd, "rb") as f:
            assert f.read() == b"k" * (6 * MIB) + b"\n"
        assert os.pread(fds[0], 10, 0) == b"a" * 10
    finally:
        for fd in fds:
            os.close(fd)


def test_an_open_listing_keeps_its_index_when_the_batch_changes(sim, mount):
    bid, _ = with_output(sim, ok_line("old", "a"), status="in_progress")
    m = mount(cache_ttl=0)
    d = m.batch(bid, "results")
    old = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sim.set(bid, {"output_file_id": with_output(sim, ok_line("new", "b"))[1]})
        assert sorted(os.listdir(d)) == ["new.json", "new.txt"]
        # The listing opened first reads the index it was opened with.
        assert sorted(os.listdir(old)) == ["old.json", "old.txt"]
    finally:
        os.close(old)
    assert sorted(os.listdir(d)) == ["new.json", "new.txt"]
