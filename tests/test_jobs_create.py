"""Creating a job: `cp NAME.jsonl MOUNT/jobs/` checks the input as a
whole, cuts it at line ends into parts of at most -o part_size bytes and
-o part_requests requests, uploads each as NAME.part-000i-of-000n.jsonl and
makes it a batch tagged with the job's keys; the close says whether every
part was made. Bad input, a name in use and a full account send nothing."""

import errno
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


def test_cp_sends_per_part_one_upload_then_its_creation_and_nothing_else(sim, mount, tmp_path):
    # The lists are read once, before the first upload; then each part is
    # one upload and its batch's creation, nothing between them (no list
    # page, no lookup per part: a job of 20 parts is 40 requests and the
    # lists, as split plus curl). cache_ttl=0: a list read again would be
    # sent.
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(cache_ttl=0, options=["part_requests=3"])
    sim.clear_log()
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert (rc, out, err) == (0, "", "")
    sent = [(r["method"], r["path"]) for r in sim.log()]
    first = sent.index(("POST", "/v1/files"))
    assert all(method == "GET" for method, _ in sent[:first])
    assert sent[first:] == [("POST", "/v1/files"), ("POST", "/v1/batches")] * 3


def test_cat_into_jobs_then_status_at_once_with_a_long_cache_ttl(sim, mount, tmp_path):
    # The listing learns the new batches: no wait for cache_ttl.
    m = mount(cache_ttl=3600, options=["part_size=%d" % (len(LINES[0]) * 3)])
    rc, out, err = m.sh("ls jobs; cat > jobs/r.jsonl", input=INPUT)
    assert (rc, out, err) == (0, "", "")
    rc, out, err = m.sh("ls jobs; cat jobs/r/status jobs/r/parts; ls jobs/r/batches")
    assert (rc, err) == (0, "")
    n = len(job_batches(sim, "r"))
    assert n == 3
    assert out.split() == ["r", "validating", str(n)] + \
        ["part-%04d" % i for i in range(1, n + 1)]


def test_parts_cut_by_size_hold_the_exact_bytes(sim, mount, tmp_path):
    size = len(LINES[0]) * 2 + 1  # two lines fit, three do not
    src = write_input(tmp_path, "s.jsonl", INPUT)
    m = mount(options=["part_size=%d" % size, "part_requests=50000"])
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert (rc, err) == (0, "")
    batches = job_batches(sim, "s")
    assert [b["metadata"]["kimifs_part"] for b in batches] == ["1/4", "2/4", "3/4", "4/4"]
    got = [sim.content(b["input_file_id"]) for b in batches]
    assert got == [("".join(LINES[i:i + 2])).encode() for i in (0, 2, 4, 6)]
    assert b"".join(got) == INPUT


def test_a_repeated_custom_id_in_the_last_part_sends_nothing(sim, mount, tmp_path):
    data = INPUT + line("q-1").encode()  # line 8 repeats line 2
    src = write_input(tmp_path, "d.jsonl", data)
    m = mount(options=["part_requests=3"])
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "Invalid argument" in err, err
    assert 'd.jsonl:8: custom_id "q-1" repeats line 2' in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == []


def test_a_line_over_the_part_size_sends_nothing(sim, mount, tmp_path):
    data = "".join(LINES[:2] + [line("long", "x" * 2000)] + LINES[2:]).encode()
    src = write_input(tmp_path, "l.jsonl", data)
    m = mount(options=["part_size=1K"])
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "Invalid argument" in err, err
    assert "l.jsonl:3: line 3 is longer than the part size (1024 bytes)" in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == []


@pytest.mark.parametrize("name", ["q.txt", "q", ".jsonl"])
def test_a_name_that_is_no_job_input_is_refused_at_create(sim, mount, tmp_path, name):
    src = write_input(tmp_path, "in", INPUT)
    m = mount()
    rc, out, err = m.sh("cp %s 'jobs/%s'" % (src, name))
    assert rc != 0 and "Invalid argument" in err, err
    assert "%s: " % name in log_text(m) and "nothing was staged" in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == []


def test_the_name_of_a_job_is_refused_and_nothing_is_sent(sim, mount, tmp_path):
    sim.create({"status": "completed",
                "metadata": {"kimifs_job": "q", "kimifs_part": "1/1"}})
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount()
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "File exists" in err, err
    assert "job q: a job of that name exists; nothing was staged" in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == ["q"]


def test_an_input_being_written_is_busy(sim, mount, tmp_path):
    m = mount()
    with open(jobs(m, "w.jsonl"), "wb") as f:
        f.write(LINES[0].encode())
        f.flush()
        assert "w.jsonl" in os.listdir(jobs(m))
        with pytest.raises(OSError) as e:
            open(jobs(m, "w.jsonl"), "wb")
        assert e.value.errno == errno.EBUSY
    assert os.listdir(jobs(m)) == ["w"]
    assert len(sim.requests("POST", "/v1/batches")) == 1


def test_a_full_account_is_edquot_and_sends_nothing(sim, mount, tmp_path):
    for i in range(998):
        sim._call("POST", "/_sim/files", {"filename": "f%d.jsonl" % i, "size": 10})
    src = write_input(tmp_path, "f.jsonl", INPUT)
    m = mount(options=["part_requests=3"])
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "Disk quota exceeded" in err, err
    assert "the job needs 3 files of %d bytes, the account holds 998 of 1000 files" \
        % len(INPUT) in log_text(m)
    assert "1 files and 0 bytes missing" in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == []


def test_a_server_failure_on_part_2_leaves_part_1_and_says_so(sim, mount, tmp_path):
    src = write_input(tmp_path, "p.jsonl", INPUT)
    m = mount(options=["part_requests=3", "retries=0"])
    sim.fault(method="POST", path="^/v1/files$", action="status", status=400,
              skip=1, count=-1)
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0, err
    (b,) = job_batches(sim, "p")
    assert b["metadata"] == {"kimifs_job": "p", "kimifs_part": "1/3"}
    text = log_text(m)
    kept = tmp_path / "xdg-cache" / "kimifs" / "jobs" / "p.jsonl"
    assert "job p: 1 of 3 parts exist; its input is kept in %s (%d bytes of the cache " \
        "dir's disk, outside cache_size) until every part exists: echo resume > " \
        "jobs/p/ctl makes the others" % (kept, len(INPUT)) in text
    assert kept.read_bytes() == INPUT
    assert "job p: part 1/3 exists: batch %s" % b["id"] in text
    assert "job p: part 2/3 not made (failed)" in text
    assert "job p: part 3/3 not made (untried)" in text
    assert os.listdir(jobs(m)) == ["p"]
    assert read_text(jobs(m, "p", "parts")) == "3\n"


def test_an_input_is_bounded_by_the_account_room_not_the_file_limit(sim, mount):
    m = mount()
    # Past 100 MiB is taken (the file's size only: the staged input is
    # sparse); past 10 GB, the account's room, is EFBIG at once.
    with open(jobs(m, "big.jsonl"), "wb") as f:
        f.truncate((100 << 20) + 1)
        assert os.fstat(f.fileno()).st_size == (100 << 20) + 1
        with pytest.raises(OSError) as e:
            f.truncate(10 ** 10 + 1)
        assert e.value.errno == errno.EFBIG
        with pytest.raises(OSError) as e:
            os.pwrite(f.fileno(), b"x", 10 ** 10)
        assert e.value.errno == errno.EFBIG
        with pytest.raises(OSError) as e:
            f.close()
        assert e.value.errno == errno.EFBIG
    assert "big.jsonl: a write or resize to 10000000001 bytes is past the account's " \
        "room of 10 GB, the limit for a job's input; refused" in log_text(m)
    assert sent_nothing(sim)
    assert os.listdir(jobs(m)) == []
