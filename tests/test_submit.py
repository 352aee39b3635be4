"""Starting work from the shell: `cp q.jsonl MOUNT/files/` uploads a batch
input file, `cp q.jsonl MOUNT/batches/` uploads it and makes a batch of it,
and `batches/new` makes a batch from parameters and gives its id back.
Each test acts through a real shell and counts what the simulator got."""

import errno
import json
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

from conftest import KIMIFS, PYTHON, errno_of, interrupted_after, read_text, wait_for
from test_user import as_user, home, start_as_user, user  # noqa: F401 (fixtures)

NOBODY = 65534
# A build with AddressSanitizer (scripts/test --asan) carries its runtime.
SANITIZED = b"__asan_init" in KIMIFS.read_bytes()


def line(cid, model="moonshot-v1-8k", **over):
    req = {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": model, "messages": [{"role": "user", "content": "hi " + cid}]}}
    req.update(over)
    return json.dumps(req) + "\n"


GOOD = "".join(line("q-%d" % i) for i in range(3)).encode()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def server_files(sim):
    status, body = sim.api("GET", "/v1/files")
    assert status == 200, body
    return body["data"]


def uploads(sim):
    return sim.requests("POST", "/v1/files")


def creates(sim):
    return sim.requests("POST", "/v1/batches")


def log_text(m):
    return read_text(os.path.join(m.path, "log"))


def entries(m, d):
    return sorted(os.listdir(os.path.join(m.path, d)))


# --------------------------------------------------------------------------
# files/


def test_cp_into_files_uploads_once_with_its_name_and_bytes(sim, mount, tmp_path):
    src = write(tmp_path, "requests.jsonl", GOOD)
    m = mount()
    rc, out, err = m.sh("cp %s files/" % src)
    assert rc == 0, err
    assert len(uploads(sim)) == 1
    (f,) = server_files(sim)
    assert (f["filename"], f["purpose"], f["bytes"]) == ("requests.jsonl", "batch", len(GOOD))
    assert sim.content(f["id"]) == GOOD
    # files/<id>/ is there at once, by-name points at it, the staged name is gone
    assert entries(m, "files") == sorted(["by-name", f["id"]])
    assert os.readlink(os.path.join(m.path, "files/by-name/requests.jsonl")) == "../" + f["id"]
    assert errno_of(os.stat, os.path.join(m.path, "files/requests.jsonl")) == errno.ENOENT
    assert read_text(os.path.join(m.path, "files", f["id"], "filename")) == "requests.jsonl\n"
    assert "upload requests.jsonl: %s (%d bytes)" % (f["id"], len(GOOD)) in log_text(m)
    assert len(uploads(sim)) == 1


@pytest.mark.parametrize("how", [
    "cat > files/{n} < {src}",
    "tee files/{n} < {src} > /dev/null",
    "cat {src} > files/{n}",
    "exec 4> files/{n}; cat {src} >&4; exec 4>&-",
    "dd if={src} of=files/{n} bs=7 status=none",
    "cp -p {src} files/{n}",
])
def test_shell_writes_upload_once(sim, mount, tmp_path, how):
    """Redirections close the file once before anything is written: that
    flush sends nothing; the close after the data uploads it."""
    src = write(tmp_path, "in.jsonl", GOOD)
    m = mount()
    rc, out, err = m.sh(how.format(n="s.jsonl", src=src))
    assert rc == 0, err
    assert len(uploads(sim)) == 1
    (f,) = server_files(sim)
    assert f["filename"] == "s.jsonl"
    assert sim.content(f["id"]) == GOOD
    assert "s.jsonl" not in entries(m, "files")


BAD = [
    ("dup.jsonl", line("q-17") + line("x") + line("q-17"),
     'dup.jsonl:3: custom_id "q-17" repeats line 1'),
    ("json.jsonl", line("a") + "not json\n", "json.jsonl:2: not a JSON object"),
    ("utf8.jsonl", line("a").encode() + b"\xff\xfe\n", "utf8.jsonl:2: not UTF-8 text"),
    ("noid.jsonl", json.dumps({"method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": "m"}}) + "\n",
     "noid.jsonl:1: custom_id must be a non-empty string"),
    ("get.jsonl", line("a", method="GET"), 'get.jsonl:1: method must be "POST"'),
    ("url.jsonl", line("a", url="/v1/embeddings"),
     'url.jsonl:1: url must be "/v1/chat/completions"'),
    ("body.jsonl", line("a", body="hi"), "body.jsonl:1: body must be an object"),
    ("model.jsonl", line("a", body={"model": 1}), "model.jsonl:1: body.model must be a string"),
    ("two.jsonl", line("a", "m1") + line("b", "m2"),
     'two.jsonl:2: model "m2" differs from "m1" of line 1'),
    ("gap.jsonl", line("a") + "\n" + line("b"), "gap.jsonl:2: empty line"),
    ("blank.jsonl", "\n\n", "blank.jsonl: holds no request lines"),
    ("many.jsonl", "x\n" * 15, "many.jsonl: 5 more problems not shown"),
]


@pytest.mark.parametrize("dest", ["files", "batches"])
def test_every_rule_is_checked_before_any_byte_is_sent(sim, mount, tmp_path, dest):
    m = mount()
    for name, data, message in BAD:
        src = write(tmp_path, name, data if isinstance(data, bytes) else data.encode())
        rc, out, err = m.sh("cp %s %s/" % (src, dest))
        assert rc != 0 and "Invalid argument" in err, (name, rc, err)
        text = log_text(m)
        assert message in text, (name, text[-2000:])
        assert name not in entries(m, dest)
    assert "many.jsonl:10: not a JSON object" in log_text(m)
    assert "many.jsonl:11:" not in log_text(m)
    assert sim.log() == [] or all(r["method"] == "GET" for r in sim.log())
    assert uploads(sim) == [] and creates(sim) == []
    assert server_files(sim) == []


def test_names_sizes_and_empty_files_are_refused(sim, mount, tmp_path):
    m = mount()
    # a name that is not a batch input file's: refused at once
    src = write(tmp_path, "q.json", GOOD)
    rc, out, err = m.sh("cp %s files/" % src)
    assert rc != 0 and "Invalid argument" in err, err
    assert "q.json: the name must end in .jsonl" in log_text(m)
    # more than 100 MiB (a sparse file: cp seeks, then sets the size):
    # the resize past the limit is refused at once
    big = tmp_path / "big.jsonl"
    big.write_bytes(GOOD)
    os.truncate(big, (100 << 20) + 1)
    rc, out, err = m.sh("cp --sparse=always %s files/" % big)
    assert rc != 0 and "File too large" in err, err
    assert "big.jsonl: a write or resize to 104857601 bytes is past the API's limit " \
        "of 100 MiB" in log_text(m)
    # empty: nothing to send; refused in the log when closed for good
    rc, out, err = m.sh(": > files/empty.jsonl")
    assert "empty.jsonl: refused: the file is empty" in log_text(m)
    assert "empty.jsonl" not in entries(m, "files")
    assert uploads(sim) == [] and server_files(sim) == []


# A writer in a process of its own, told what to do line by line (a file
# open in the test's own process would be closed, and so uploaded, by each
# command the test runs: Python opens files close-on-exec).
WRITER = r"""
import os, subprocess, sys
fd = None
for ln in sys.stdin:
    cmd = ln.split()
    try:
        if cmd[0] == "open":
            fd = os.open(cmd[1], os.O_WRONLY | os.O_CREAT, 0o644)
        elif cmd[0] == "pwrite":
            os.pwrite(fd, bytes.fromhex(cmd[2]), int(cmd[1]))
        elif cmd[0] == "close":
            os.close(fd)
        elif cmd[0] == "spawn":     # a child whose exec closes fd
            subprocess.run(["true"], check=True)
        print("ok", flush=True)
    except OSError as e:
        print("err %d" % e.errno, flush=True)
"""


class Writer:
    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", WRITER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def do(self, *words):
        self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def end(self):
        self.proc.stdin.close()
        self.proc.wait(60)


def test_a_staged_file_shows_while_written_and_has_one_writer(sim, mount, tmp_path):
    m = mount()
    path = os.path.join(m.path, "files", "grow.jsonl")
    w = Writer()
    try:
        assert w.do("open", path) == "ok"
        assert w.do("pwrite", 0, GOOD[:50].hex()) == "ok"
        st = os.stat(path)
        assert "grow.jsonl" in entries(m, "files")
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_uid, st.st_gid, st.st_size) == (os.getuid(), os.getgid(), 50)
        rc, out, err = m.sh("ls -l files/ | grep grow.jsonl")
        assert rc == 0 and " 50 " in out, out
        # a second writer of the same name: EBUSY (EEXIST when exclusive)
        assert errno_of(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == errno.EBUSY
        assert errno_of(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL) == errno.EEXIST
        rc, out, err = m.sh("cp %s files/grow.jsonl" % write(tmp_path, "x.jsonl", GOOD))
        assert rc != 0 and "busy" in err, err
        assert errno_of(os.truncate, path, 0) == errno.EBUSY
        # writes at any offset: the end first, then the middle
        assert w.do("pwrite", 100, GOOD[100:].hex()) == "ok"
        assert os.stat(path).st_size == len(GOOD)
        assert w.do("pwrite", 50, GOOD[50:100].hex()) == "ok"
        assert uploads(sim) == []
        assert w.do("close") == "ok"
    finally:
        w.end()
    (f,) = server_files(sim)
    assert sim.content(f["id"]) == GOOD and f["filename"] == "grow.jsonl"
    assert len(uploads(sim)) == 1
    assert "grow.jsonl" not in entries(m, "files")


def test_a_child_closing_its_copy_is_not_the_writers_close(sim, mount):
    """A program that runs another while it writes: the child's exec closes
    its copy of the descriptor (close-on-exec), which is not the writer's
    close: nothing is sent until the writer closes."""
    m = mount()
    path = os.path.join(m.path, "files", "half.jsonl")
    w = Writer()
    try:
        assert w.do("open", path) == "ok"
        assert w.do("pwrite", 0, GOOD[:100].hex()) == "ok"
        assert w.do("spawn") == "ok"
        assert uploads(sim) == []
        assert "half.jsonl" in entries(m, "files")
        assert w.do("pwrite", 100, GOOD[100:].hex()) == "ok"
        assert w.do("close") == "ok"
    finally:
        w.end()
    (f,) = server_files(sim)
    assert sim.content(f["id"]) == GOOD
    assert len(uploads(sim)) == 1


def test_commands_writing_one_file_in_turn_upload_at_the_first_exit(sim, mount, tmp_path):
    """The upload belongs to the writer's close: in `{ cat a; cat b; } > f`
    the first cat's exit uploads a, and the second cat's writes fail."""
    m = mount()
    a = write(tmp_path, "a.jsonl", line("a").encode())
    b = write(tmp_path, "b.jsonl", line("b").encode())
    rc, out, err = m.sh("{ cat %s; cat %s; } > files/g.jsonl" % (a, b))
    assert rc != 0 and "Bad file descriptor" in err, err
    (f,) = server_files(sim)
    assert sim.content(f["id"]) == line("a").encode()
    assert len(uploads(sim)) == 1
    assert "g.jsonl" not in entries(m, "files")


def test_other_changes_in_files_are_refused(sim, mount, tmp_path):
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "a.jsonl", GOOD))
    assert rc == 0, err
    (f,) = server_files(sim)
    d = os.path.join(m.path, "files", f["id"])
    content = os.path.join(d, "content")
    sim.clear_log()
    assert errno_of(os.mkdir, os.path.join(m.path, "files", "dir")) == errno.EROFS
    assert errno_of(os.mkdir, os.path.join(m.path, "batches", "dir")) == errno.EROFS
    assert errno_of(os.open, content, os.O_WRONLY | os.O_APPEND) == errno.EROFS
    assert errno_of(os.truncate, content, 0) == errno.EROFS
    assert errno_of(os.rename, d, d + "x") == errno.EROFS
    assert errno_of(os.rename, os.path.join(m.path, "files/by-name/a.jsonl"),
                    os.path.join(m.path, "files/b.jsonl")) == errno.EROFS
    assert errno_of(os.open, os.path.join(d, "new.jsonl"), os.O_WRONLY | os.O_CREAT) == errno.EROFS
    rc, out, err = m.sh("echo x >> files/%s/content" % f["id"])
    assert rc != 0 and "Read-only file system" in err, err
    assert uploads(sim) == [] and creates(sim) == []


def test_a_100mb_upload_keeps_the_daemon_small(sim, mount, tmp_path):
    pad = "x" * 900
    src = tmp_path / "big.jsonl"
    with open(src, "w") as f:
        for i in range(100_000):
            f.write(line("r-%06d" % i, body={"model": "m", "pad": pad}))
    size = os.path.getsize(src)
    assert 95e6 < size < (100 << 20)
    m = mount()

    def rss():
        with open("/proc/%d/status" % m.proc.pid) as s:
            for ln in s:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) * 1024
        return 0

    before = rss()
    peak = [before]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        rc, out, err = m.sh("cp %s files/" % src, timeout=300)
    finally:
        done.set()
        t.join()
    assert rc == 0, err
    (f,) = server_files(sim)
    assert f["bytes"] == size and len(uploads(sim)) == 1
    # AddressSanitizer keeps freed memory in quarantine (256 MiB by
    # default), which the check of 100,000 lines fills: allowed on top.
    quarantine = 256 << 20 if SANITIZED else 0
    assert peak[0] - before < (64 << 20) + quarantine, (before, peak[0])


def test_the_time_bound_of_an_upload_grows_with_its_size(sim, mount, tmp_path):
    """-o timeout plus a second per MiB: an answer that takes about 4 s
    ends a small upload's wait (it is then looked for in the file list),
    not that of an 8 MiB one."""
    m = mount(timeout=1)
    small = write(tmp_path, "small.jsonl", GOOD)
    pad = "y" * 1000
    big = tmp_path / "big.jsonl"
    with open(big, "w") as f:
        for i in range(8000):
            f.write(line("b-%d" % i, body={"model": "m", "pad": pad}))
    slow = {"method": "POST", "path": "^/v1/files$", "action": "slow",
            "chunk": 24, "interval": 0.25}
    sim.fault(**slow)
    rc, out, err = m.sh("cp %s files/" % big)
    assert rc == 0, err
    assert len(uploads(sim)) == 1 and sim.requests("GET", "/v1/files") == []
    sim.clear_log()
    sim.fault(**slow)
    rc, out, err = m.sh("cp %s files/" % small)
    assert rc == 0, err
    assert len(uploads(sim)) == 1 and len(sim.requests("GET", "/v1/files")) >= 1
    assert "upload small.jsonl: no answer, but the server has it as" in log_text(m)
    assert sorted(f["filename"] for f in server_files(sim)) == ["big.jsonl", "small.jsonl"]


# --------------------------------------------------------------------------
# failures on the way


@pytest.mark.parametrize("fault", [
    {"action": "status", "status": 500},
    {"action": "status", "status": 429},
    {"action": "hang", "seconds": 30},
    {"action": "drop"},
], ids=["500", "429", "hang", "drop"])
def test_a_failed_upload_leaves_nothing(sim, mount, tmp_path, fault):
    m = mount(timeout=2, options=["retries=2"])
    sim.fault(method="POST", path="^/v1/files$", count=-1, **fault)
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "f.jsonl", GOOD))
    assert rc != 0, err
    sim.clear_faults()
    assert 1 <= len(uploads(sim)) <= 3
    assert server_files(sim) == []
    assert "f.jsonl" not in entries(m, "files")
    assert "upload f.jsonl: failed" in log_text(m)


def test_a_passing_failure_is_retried_into_one_copy(sim, mount, tmp_path):
    m = mount(options=["retries=3"])
    sim.fault(method="POST", path="^/v1/files$", count=2, action="status", status=429)
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "r.jsonl", GOOD))
    assert rc == 0, err
    assert len(uploads(sim)) == 3
    assert [f["filename"] for f in server_files(sim)] == ["r.jsonl"]


def test_an_upload_whose_answer_is_lost_is_found_not_sent_again(sim, mount, tmp_path):
    m = mount()
    sim.fault(method="POST", path="^/v1/files$", action="lost")
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "l.jsonl", GOOD))
    assert rc == 0, err
    (f,) = server_files(sim)
    assert len(uploads(sim)) == 1
    assert f["id"] in entries(m, "files")
    assert "no answer, but the server has it as %s" % f["id"] in log_text(m)


# --------------------------------------------------------------------------
# batches/


def test_cp_into_batches_makes_one_batch(sim, mount, tmp_path):
    m = mount()
    rc, out, err = m.sh("cp %s batches/ && cat batches/new"
                        % write(tmp_path, "b.jsonl", GOOD))
    assert rc == 0, err
    bid = out.strip()
    assert len(uploads(sim)) == 1 and len(creates(sim)) == 1
    (f,) = server_files(sim)
    obj = sim.get(bid)
    assert (obj["input_file_id"], obj["completion_window"], obj["endpoint"]) == \
        (f["id"], "24h", "/v1/chat/completions")
    sim.clear_log()
    assert entries(m, "batches") == [bid]
    rc, out, err = m.sh("cat batches/*/status | wc -l; cat batches/%s/status" % bid)
    assert out.split() == ["1", "validating"] or out.split() == ["1", "in_progress"], out
    assert read_text(m.batch(bid, "input_file_id")) == f["id"] + "\n"
    assert "b.jsonl" not in entries(m, "batches")
    assert "create batch from %s: %s" % (f["id"], bid) in log_text(m)


def test_a_failed_create_keeps_the_upload(sim, mount, tmp_path):
    m = mount()
    sim.fault(method="POST", path="^/v1/batches$", action="status", status=500, count=-1)
    rc, out, err = m.sh("cp %s batches/" % write(tmp_path, "c.jsonl", GOOD))
    assert rc != 0, err
    sim.clear_faults()
    (f,) = server_files(sim)
    assert len(uploads(sim)) == 1 and len(creates(sim)) == 1
    assert sim.batches() == []
    assert "c.jsonl: uploaded as %s, which stays" % f["id"] in log_text(m)
    assert read_text(os.path.join(m.batches, "new")) == ""
    assert entries(m, "batches") == []


def test_new_is_a_clone_file(sim, mount, tmp_path):
    m = mount()
    assert read_text(os.path.join(m.batches, "new")) == ""
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "n.jsonl", GOOD))
    (f,) = server_files(sim)
    sim.clear_log()
    rc, out, err = m.sh("exec 3<> batches/new && "
                        "echo input_file_id=%s completion_window=48h metadata.team=ml >&3 && "
                        "read id <&3 && echo $id && cat batches/new" % f["id"])
    assert rc == 0, err
    bid, again = out.split()
    assert bid == again and bid.startswith("batch_")
    assert len(creates(sim)) == 1
    obj = sim.get(bid)
    assert (obj["input_file_id"], obj["completion_window"], obj["metadata"]) == \
        (f["id"], "48h", {"team": "ml"})
    assert entries(m, "batches") == [bid]
    assert "new" not in entries(m, "batches")
    # a script's way: write, then read on another descriptor
    rc, out, err = m.sh("echo input_file_id=%s > batches/new && cat batches/new" % f["id"])
    assert rc == 0 and out.strip() != bid and out.strip() in entries(m, "batches"), (out, err)


@pytest.mark.parametrize("text, why", [
    ("completion_window=24h", "input_file_id is required"),
    ("input_file_id=file-x completion_window=1h", "completion_window"),
    ("input_file_id=file-x colour=red", 'unknown parameter "colour"'),
    ("input_file_id=file-x input_file_id=file-y", "input_file_id is given twice"),
    ("input_file_id=file-x endpoint=/v1/embeddings", "endpoint must be /v1/chat/completions"),
    # 3 of the API's 16 pairs are kimifs's own
    ("input_file_id=file-x " + " ".join("metadata.k%d=v" % i for i in range(14)),
     "at most 13 metadata pairs (kimifs keeps 3 of the API's 16 for its own keys), not 14"),
    ("input_file_id=file-x metadata.kimifs_job=q",
     "metadata keys starting with kimifs_ are kimifs's own (kimifs_job)"),
])
def test_bad_parameters_to_new_send_nothing(sim, mount, text, why):
    m = mount()
    rc, out, err = m.sh("echo '%s' > batches/new" % text)
    assert rc != 0 and "Invalid argument" in err, err
    assert why in log_text(m)
    assert sim.log() == []
    assert read_text(os.path.join(m.batches, "new")) == ""


def test_thirteen_metadata_pairs_are_the_users(sim, mount, tmp_path):
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "m.jsonl", GOOD))
    fid = next(f["id"] for f in sim.api("GET", "/v1/files")[1]["data"])
    pairs = {"k%02d" % i: "v%d" % i for i in range(13)}
    rc, out, err = m.sh("echo input_file_id=%s %s > batches/new && cat batches/new"
                        % (fid, " ".join("metadata.%s=%s" % kv for kv in pairs.items())))
    assert rc == 0, err
    assert sim.get(out.strip())["metadata"] == pairs


def test_completion_window_option(sim, mount, tmp_path):
    m = mount(options=["completion_window=3d"])
    rc, out, err = m.sh("cp %s batches/ && cat batches/new" % write(tmp_path, "w.jsonl", GOOD))
    assert rc == 0, err
    assert sim.get(out.strip())["completion_window"] == "3d"


@pytest.mark.parametrize("value", ["1h", "8d", "24", "abc", ""])
def test_a_bad_completion_window_is_refused_at_mount(sim, mount, value):
    sim.clear_log()
    m = mount(options=["completion_window=" + value], wait=False)
    assert m.wait_exit() != 0
    lines = m.stderr_text().strip().splitlines()
    assert lines == ["kimifs: completion_window must be hours or days from 12h to 7d, "
                     "such as 24h or 3d"], lines
    assert sim.log() == []


# --------------------------------------------------------------------------
# who may upload


CREATE = r"""
import os, sys
fd = int(sys.argv[1])
try:
    f = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(f, sys.argv[3].encode())
    os.close(f)
    print(0)
except OSError as e:
    print(e.errno)
"""


def create_as_nobody(root, rel, data):
    """Create and write root/rel as user nobody; the errno (0: it worked).
    The process starts from a descriptor of the mount root that root
    opened, so the test's private directories are not in its way."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run([PYTHON, "-c", CREATE, str(fd), rel, data], user=NOBODY,
                           group=NOBODY, extra_groups=[], pass_fds=(fd,), cwd="/",
                           env={"LC_ALL": "C"}, capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


@pytest.mark.parametrize("allow_other", [False, True], ids=["private", "allow_other"])
def test_others_cannot_upload(sim, mount, allow_other):
    """Without allow_other nobody else gets in; with it (and
    default_permissions) files/ and batches/ are 0755, the mounting
    user's: EACCES either way, and nothing is sent."""
    m = mount(options=["allow_other"] if allow_other else [])
    for d in ("files", "batches"):
        assert create_as_nobody(m.path, d + "/x.jsonl", GOOD.decode()) == errno.EACCES
    assert uploads(sim) == [] and creates(sim) == []
    assert "x.jsonl" not in entries(m, "files")


@pytest.mark.xdist_group("machine-settings")
def test_a_user_uploads_into_their_own_mount(sim, user, home):
    with open(os.path.join(home, "q.jsonl"), "wb") as f:
        f.write(GOOD)
    m = start_as_user(sim, user, home)
    try:
        sim.clear_log()
        rc, out, err = as_user(user, "cp q.jsonl mnt/files/ && cp q.jsonl mnt/batches/ && "
                                     "cat mnt/batches/new && ls mnt/files", home)
        assert rc == 0, err
        bid = out.split()[0]
        assert sim.get(bid)["status"] in ("validating", "in_progress")
        assert len(uploads(sim)) == 2 and len(creates(sim)) == 1
        # root is another user here: kept out without allow_other
        assert errno_of(os.open, os.path.join(m.path, "files", "r.jsonl"),
                        os.O_WRONLY | os.O_CREAT) == errno.EACCES
        assert len(uploads(sim)) == 2
    finally:
        m.cleanup()


@pytest.mark.parametrize("fault", [
    {"action": "hang", "seconds": 120},
    {"action": "delay", "stale": True, "seconds": 120},
], ids=["not_stored", "stored"])
def test_ctrl_c_ends_an_upload_and_leaves_nothing(sim, mount, tmp_path, fault):
    """Ctrl-C on a cp waiting for its upload's answer ends it at once; a
    copy that reached the server is deleted, so nothing is half done."""
    m = mount(timeout=30)
    src = write(tmp_path, "i.jsonl", GOOD)
    sim.fault(method="POST", path="^/v1/files$", **fault)
    elapsed, rc = interrupted_after(m.path, "exec cp %s files/" % src, lambda: uploads(sim),
                                    "the upload to reach the server")
    assert elapsed < 10, "the interrupt waited for the timeout"
    assert rc != 0
    sim.clear_faults()
    wait_for(lambda: "i.jsonl" not in entries(m, "files"), timeout=10,
             what="the staged name to go")
    assert server_files(sim) == []
    assert len(uploads(sim)) == 1


# --------------------------------------------------------------------------
# under valgrind

from test_valgrind import VG_STOP_TIMEOUT, vg_mount  # noqa: E402,F401 (fixture)


def test_uploads_under_valgrind(sim, vg_mount, tmp_path):
    """Every path of an upload and of a new batch runs without a memory
    error, and a staged file still open at SIGTERM leaks nothing."""
    m, vglog = vg_mount
    good = write(tmp_path, "v.jsonl", GOOD)
    bad = write(tmp_path, "bad.jsonl", (line("a") + line("a") + "\n\nx\n").encode())
    assert m.sh("cp %s files/ && cat %s > files/w.jsonl" % (good, good))[0] == 0
    assert m.sh("cp %s batches/ && cat batches/new" % good)[0] == 0
    assert m.sh("cp %s files/" % bad)[0] != 0
    assert m.sh("cp %s files/" % write(tmp_path, "n.json", GOOD))[0] != 0
    assert m.sh(": > files/empty.jsonl")[0] == 0
    fid = server_files(sim)[0]["id"]
    rc, out, err = m.sh("exec 3<> batches/new && echo input_file_id=%s metadata.k=v >&3 "
                        "&& read id <&3 && echo $id" % fid)
    assert rc == 0 and out.startswith("batch_"), err
    assert m.sh("echo 'input_file_id=%s bogus' > batches/new" % fid)[0] != 0
    sim.fault(method="POST", path="^/v1/files$", action="lost")
    assert m.sh("cp %s files/l.jsonl" % good)[0] == 0
    sim.fault(method="POST", path="^/v1/files$", count=-1, action="status", status=500)
    assert m.sh("cp %s files/f.jsonl" % good)[0] != 0
    sim.clear_faults()
    sim.fault(method="POST", path="^/v1/batches$", action="status", status=400)
    assert m.sh("cp %s batches/c.jsonl" % good)[0] != 0
    sim.clear_faults()
    # a writer that never closes: its file is still staged at SIGTERM
    w = Writer()
    try:
        assert w.do("open", os.path.join(m.path, "files", "open.jsonl")) == "ok"
        assert w.do("pwrite", 0, GOOD.hex()) == "ok"
        m.expect_running = False
        m.proc.send_signal(signal.SIGTERM)
        rc = m.proc.wait(VG_STOP_TIMEOUT)
    finally:
        w.proc.kill()
        w.proc.wait()
    report = vglog.read_text()
    assert "Memcheck" in report, report
    assert rc == 0, "exit status %s\n%s\n%s" % (rc, m.stderr_text()[-2000:], report)
    assert "ERROR SUMMARY: 0 errors" in report, report
    assert "upload open.jsonl: closed before it was sent" in m.stderr_text()
