"""A job's merged results (docs/filesystem.md, Jobs): results/ over every
batch of the job, parts and rounds (the latest success of each custom_id,
else its latest failure, named as in a batch's results/), output.jsonl and
errors.jsonl (one line per custom_id, as the server wrote it), usage/ (the
sums over every batch, retries included), a running job, two mounts, and
what it costs: each result file downloaded once."""

import errno
import hashlib
import json
import os
import time

import pytest

from conftest import errno_of, read_text, wait_for


def stored_file(sim, data):
    """A batch_output file on the simulator holding exactly data (text)."""
    return sim._call("POST", "/_sim/files",
                     {"content": data, "filename": "result.jsonl",
                      "purpose": "batch_output"})["id"]


def ok_line(cid, text, usage=(12, 8, 20), rid="x"):
    body = {"id": "chatcmpl-" + rid, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"),
                              usage))}
    return json.dumps({"id": "batch_req_" + rid, "custom_id": cid,
                       "response": {"status_code": 200, "request_id": "req-" + rid,
                                    "body": body}, "error": None}) + "\n"


def err_line(cid, message, rid="x"):
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    return json.dumps({"id": "batch_req_" + rid, "custom_id": cid,
                       "response": {"status_code": 400, "request_id": "req-" + rid,
                                    "body": body}, "error": None}) + "\n"


def job_batch(sim, job, part, out=None, err=None, retry=None,
              status="completed"):
    """A batch of job `job` (part "i/n") whose output and error files hold
    exactly the lines out and err (None: no such file). Returns its id."""
    meta = {"kimifs_job": job, "kimifs_part": part}
    if retry is not None:
        meta["kimifs_retry"] = retry
    n_ok, n_err = len(out or []), len(err or [])
    return sim.create({
        "status": status, "metadata": meta,
        "request_counts": {"total": n_ok + n_err, "completed": n_ok,
                           "failed": n_err},
        "output_file_id": stored_file(sim, "".join(out)) if out else None,
        "error_file_id": stored_file(sim, "".join(err)) if err else None,
    })["id"]


def jobs(m, *names):
    return os.path.join(m.path, "jobs", *names)


def downloads(sim):
    return sorted(r["path"] for r in sim.log() if r["path"].endswith("/content"))


def file_paths(sim, bids):
    """The content paths of every result file of these batches."""
    paths = []
    for bid in bids:
        obj = sim.get(bid)
        for f in ("output_file_id", "error_file_id"):
            if obj.get(f):
                paths.append("/v1/files/%s/content" % obj[f])
    return sorted(paths)


def two_rounds(sim):
    """Job q: 3 parts with failures, then a round 1 (made by hand) where
    a3 and b2 succeed and b3 fails again. Returns (the lines by name, the
    batch ids)."""
    L = {
        "a1": ok_line("a1", "answer a1", (10, 1, 11), "a1"),
        "a2": ok_line("a2", "answer a2", (20, 2, 22), "a2"),
        "a3": err_line("a3", "first failure of a3", "a3"),
        "b1": ok_line("b1", "answer b1", (30, 3, 33), "b1"),
        "b2": err_line("b2", "first failure of b2", "b2"),
        "b3": err_line("b3", "first failure of b3", "b3"),
        "c1": ok_line("c1", "answer c1", (40, 4, 44), "c1"),
        "c2": ok_line("c2", "answer c2", (50, 5, 55), "c2"),
        "a3.1": ok_line("a3", "answer a3 in round 1", (60, 6, 66), "a3r1"),
        "b2.1": ok_line("b2", "answer b2 in round 1", (70, 7, 77), "b2r1"),
        "b3.1": err_line("b3", "second failure of b3", "b3r1"),
    }
    bids = [
        job_batch(sim, "q", "1/3", [L["a1"], L["a2"]], [L["a3"]]),
        job_batch(sim, "q", "2/3", [L["b1"]], [L["b2"], L["b3"]]),
        job_batch(sim, "q", "3/3", [L["c1"], L["c2"]]),
        job_batch(sim, "q", "1/1", [L["a3.1"], L["b2.1"]], [L["b3.1"]],
                  retry="1"),
    ]
    return L, bids


def test_results_merged_across_parts_and_rounds(sim, mount):
    L, bids = two_rounds(sim)
    m = mount()
    rc, out, err = m.sh("ls jobs/q")
    assert (rc, err) == (0, "")
    assert {"results", "output.jsonl", "errors.jsonl", "usage"} <= set(out.split())
    rc, out, err = m.sh("ls jobs/q/results")
    assert (rc, err) == (0, "")
    ids = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2"]
    answered = [i for i in ids if i != "b3"]
    assert out.split() == sorted(["%s.json" % i for i in ids] +
                                 ["%s.txt" % i for i in answered])
    # The latest success wins: a3 and b2 show round 1's answer.
    assert read_text(jobs(m, "q", "results", "a3.txt")) == "answer a3 in round 1\n"
    assert read_text(jobs(m, "q", "results", "b2.txt")) == "answer b2 in round 1\n"
    assert read_text(jobs(m, "q", "results", "a1.txt")) == "answer a1\n"
    # A request that failed twice shows its latest error, and no .txt.
    b3 = json.loads(read_text(jobs(m, "q", "results", "b3.json")))
    assert b3["response"]["body"]["error"]["message"] == "second failure of b3"
    assert errno_of(os.stat, jobs(m, "q", "results", "b3.txt")) == errno.ENOENT
    # Each file is the one its batch shows, byte for byte.
    for name, bid in (("a3.json", bids[3]), ("a1.json", bids[0]),
                      ("b3.json", bids[3]), ("c2.txt", bids[2])):
        assert read_text(jobs(m, "q", "results", name)) == \
            read_text(m.batch(bid, "results", name))
    # output.jsonl: one line per custom_id with a success, as the server
    # wrote it, by part, then the order of the part's files; errors.jsonl
    # the rest.
    want_out = "".join(L[k] for k in ("a1", "a2", "a3.1", "b1", "b2.1", "c1", "c2"))
    with open(jobs(m, "q", "output.jsonl"), "rb") as f:
        assert f.read().decode() == want_out
    assert os.stat(jobs(m, "q", "output.jsonl")).st_size == len(want_out)
    assert read_text(jobs(m, "q", "errors.jsonl")) == L["b3.1"]
    assert os.stat(jobs(m, "q", "errors.jsonl")).st_size == len(L["b3.1"])
    rc, out, err = m.sh("jq -r .custom_id jobs/q/output.jsonl | tr '\\n' ' '")
    if rc == 0:
        assert out == "a1 a2 a3 b1 b2 c1 c2 "
    # A read from the middle of output.jsonl.
    with open(jobs(m, "q", "output.jsonl"), "rb") as f:
        f.seek(len(L["a1"]) + 5)
        assert f.read(len(L["a2"])) == (L["a2"][5:] + L["a3.1"][:5]).encode()
    # usage/: every output line of every batch, round 1 included.
    rc, out, err = m.sh("ls jobs/q/usage")
    assert out.split() == ["completion_tokens", "prompt_tokens", "total_tokens"]
    assert read_text(jobs(m, "q", "usage", "prompt_tokens")) == "%d\n" % (
        10 + 20 + 30 + 40 + 50 + 60 + 70)
    assert read_text(jobs(m, "q", "usage", "completion_tokens")) == "%d\n" % 28
    assert read_text(jobs(m, "q", "usage", "total_tokens")) == "%d\n" % 308
    # Each result file downloaded once, whatever was read (the batches'
    # own results/ read above included).
    m.sh("cat jobs/q/results/* jobs/q/output.jsonl jobs/q/errors.jsonl >/dev/null")
    assert downloads(sim) == file_paths(sim, bids)


def test_names_that_cannot_be_results_cost_nothing(sim, mount):
    two_rounds(sim)
    m = mount()
    assert os.listdir(jobs(m, "q", "results"))
    sim.clear_log()
    for name in ("a1", "a1.jso", "%41.json", ".json", "zz.json"):
        assert errno_of(os.stat, jobs(m, "q", "results", name)) == errno.ENOENT
    assert errno_of(os.stat, jobs(m, "q", "usage", "tokens")) == errno.ENOENT
    assert downloads(sim) == []


def test_odd_custom_ids_are_named_as_in_a_batch(sim, mount):
    odd = ["a/b", "..", "", "sp ace", "100%", "tab\there", "caf\u00e9",
           "x" * 300, "x" * 299 + "y"]
    out = [ok_line(c, "answer %d" % i, rid="o%d" % i) for i, c in enumerate(odd)]
    # A lone surrogate escape in a custom_id, as the server may write it.
    out.append(ok_line("lone-\ud800", "lone", rid="lone"))
    bid = job_batch(sim, "odd", "1/1", out)
    m = mount()
    names = sorted(os.listdir(jobs(m, "odd", "results")))
    assert names == sorted(os.listdir(m.batch(bid, "results")))
    assert "a%2Fb.json" in names and "%2E%2E.json" in names and "%.json" in names
    assert "lone-%ED%A0%80.txt" in names
    for n in names:
        with open(jobs(m, "odd", "results", n), "rb") as a, \
                open(m.batch(bid, "results", n), "rb") as b:
            assert a.read() == b.read()
    with open(jobs(m, "odd", "output.jsonl")) as f:
        assert f.read() == "".join(out)


def test_a_running_job_shows_what_is_there_so_far(sim, mount):
    first = [ok_line("r%d" % i, "answer %d" % i, rid="r%d" % i) for i in range(3)]
    bid = job_batch(sim, "run", "1/2", first[:1], status="in_progress")
    job_batch(sim, "run", "2/2", first[1:2])
    m = mount(cache_ttl=1)
    assert read_text(jobs(m, "run", "status")) == "in_progress\n"
    assert sorted(os.listdir(jobs(m, "run", "results"))) == [
        "r0.json", "r0.txt", "r1.json", "r1.txt"]
    assert read_text(jobs(m, "run", "output.jsonl")) == first[0] + first[1]
    assert read_text(jobs(m, "run", "usage", "total_tokens")) == "40\n"
    # The batch ends with a new output file: the job shows it once its
    # copy is read again (cache_ttl).
    sim.set(bid, {"status": "completed",
                  "output_file_id": stored_file(sim, first[0] + first[2]),
                  "request_counts": {"total": 2, "completed": 2, "failed": 0}})
    wait_for(lambda: "r2.txt" in os.listdir(jobs(m, "run", "results")),
             timeout=10, what="the job's new result")
    # Looked up by name at once when the copy is older than the file.
    assert read_text(jobs(m, "run", "results", "r2.txt")) == "answer 2\n"
    assert read_text(jobs(m, "run", "output.jsonl")) == first[0] + first[2] + first[1]


def test_a_result_looked_up_by_name_follows_the_listing(sim, mount):
    bid = job_batch(sim, "late", "1/1", [ok_line("e0", "zero", rid="e0")],
                    status="in_progress")
    m = mount(cache_ttl=1)
    assert read_text(jobs(m, "late", "results", "e0.txt")) == "zero\n"
    sim.set(bid, {"output_file_id": stored_file(
        sim, ok_line("e0", "zero", rid="e0") + ok_line("e1", "one", rid="e1"))})
    time.sleep(1.2)
    # Looked up by name, with no listing of results/: the job's copy is
    # older than cache_ttl, so the batch listing is read again and brings
    # the new file.
    assert read_text(jobs(m, "late", "results", "e1.txt")) == "one\n"


def test_a_second_mount_with_its_own_cache_sees_the_same(sim, mount, tmp_path):
    L, bids = two_rounds(sim)
    a = mount()
    b = mount(options=["cache_dir=%s" % (tmp_path / "other-cache")])
    for name in ("output.jsonl", "errors.jsonl", "usage/total_tokens"):
        assert read_text(jobs(a, "q", name)) == read_text(jobs(b, "q", name))
    assert sorted(os.listdir(jobs(a, "q", "results"))) == \
        sorted(os.listdir(jobs(b, "q", "results")))
    assert read_text(jobs(b, "q", "results", "a3.txt")) == "answer a3 in round 1\n"
    # Each mount downloaded each file once.
    assert downloads(sim) == sorted(file_paths(sim, bids) * 2)


def test_a_job_without_result_files_has_empty_results(sim, mount):
    job_batch(sim, "none", "1/1", status="in_progress")
    m = mount()
    assert os.listdir(jobs(m, "none", "results")) == []
    assert read_text(jobs(m, "none", "output.jsonl")) == ""
    assert read_text(jobs(m, "none", "errors.jsonl")) == ""
    assert read_text(jobs(m, "none", "usage", "prompt_tokens")) == "0\n"
    assert downloads(sim) == []


@pytest.mark.parametrize("n", [3000])
def test_many_results_over_many_batches(sim, mount, n):
    """Enough custom_ids to grow the index's table several times, spread
    over parts and a round that retries every third."""
    parts = 5
    per = n // parts
    bids = []
    for p in range(parts):
        out = [ok_line("id-%05d" % i, "a%d" % i, rid="p%d" % i)
               for i in range(p * per, (p + 1) * per) if i % 3]
        err = [err_line("id-%05d" % i, "no", rid="f%d" % i)
               for i in range(p * per, (p + 1) * per) if i % 3 == 0]
        bids.append(job_batch(sim, "big", "%d/%d" % (p + 1, parts), out, err))
    retry = {i: ok_line("id-%05d" % i, "again %d" % i, rid="r%d" % i)
             for i in range(0, n, 3)}
    bids.append(job_batch(sim, "big", "1/1", list(retry.values()), retry="1"))
    # By part; in a part its output file's lines, then those first seen in
    # its error file (answered in round 1).
    want = "".join(
        "".join(ok_line("id-%05d" % i, "a%d" % i, rid="p%d" % i)
                for i in range(p * per, (p + 1) * per) if i % 3) +
        "".join(retry[i] for i in range(p * per, (p + 1) * per) if i % 3 == 0)
        for p in range(parts)).encode()
    m = mount()
    rc, out, err = m.sh("ls jobs/big/results | wc -l")
    assert (rc, err) == (0, "") and out.strip() == str(2 * n)
    assert read_text(jobs(m, "big", "results", "id-00300.txt")) == "again 300\n"
    assert read_text(jobs(m, "big", "results", "id-00301.txt")) == "a301\n"
    assert read_text(jobs(m, "big", "errors.jsonl")) == ""
    with open(jobs(m, "big", "output.jsonl"), "rb") as f:
        assert f.read() == want
    # Read in odd pieces, each from where the last ended.
    rc, out, err = m.sh("dd if=jobs/big/output.jsonl bs=4093 2>/dev/null | md5sum")
    assert out.split()[0] == hashlib.md5(want).hexdigest()
    assert os.stat(jobs(m, "big", "output.jsonl")).st_size == len(want)


def test_open_result_files_past_64_mib_are_refused_and_logged(sim, mount):
    """A rendering is held by its open file; those of a job count against
    64 MiB as a batch's do: one more is ENOMEM, logged, until some close."""
    mib = 1024 * 1024
    n = 11
    bid = job_batch(sim, "wide", "1/1",
                    [ok_line("r%02d" % i, chr(97 + i) * (6 * mib), rid="w%d" % i)
                     for i in range(n)])
    m = mount(timeout=60)
    paths = [jobs(m, "wide", "results", "r%02d.txt" % i) for i in range(n)]
    fds = [os.open(p, os.O_RDONLY) for p in paths[:10]]
    try:
        # Ten renderings of 6 MiB are held: the eleventh would pass 64 MiB.
        assert errno_of(os.open, paths[10], os.O_RDONLY) == errno.ENOMEM
        assert "result r10.txt: the results open pass 64 MiB" in m.stderr_text()
        assert os.pread(fds[3], 4, 0) == b"dddd"
        os.close(fds.pop())

        # The last close reaches the daemon after close(2) returns.
        def opened():
            try:
                fds.append(os.open(paths[10], os.O_RDONLY))
                return True
            except OSError as e:
                assert e.errno == errno.ENOMEM
                return False
        wait_for(opened, timeout=10, what="room for one more rendering")
        assert os.pread(fds[-1], 4, 0) == b"kkkk"
    finally:
        for fd in fds:
            os.close(fd)
    assert bid


def index_blocks(m, cache_dir, files=False):
    """The bytes on disk of the daemon's merged results indexes: its open
    scratch files of the cache directory (unlinked); or how many they are."""
    total = count = 0
    fds = "/proc/%d/fd" % m.proc.pid
    for fd in os.listdir(fds):
        try:
            target = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if target.startswith(str(cache_dir) + "/") and target.endswith(" (deleted)"):
            total += os.stat(os.path.join(fds, fd)).st_blocks * 512
            count += 1
    return count if files else total


def contents_on_disk(cache_dir):
    return {n: os.stat(os.path.join(cache_dir, n)).st_size
            for n in os.listdir(cache_dir) if n.startswith("file-")}


def test_a_merged_index_counts_against_cache_size(sim, mount, tmp_path):
    """The indexes' scratch files are counted with the contents against
    -o cache_size: the least recently used contents go to make room, and a
    dropped index gives its bytes back."""
    # 1,000 results: an output of 367,560 bytes, an index of about 86,000
    # on disk; with the big content, 1,007,560 fit in 1 MiB, not the index.
    big = sim._call("POST", "/_sim/files", {"content": "x" * 640000,
                                            "filename": "big.jsonl",
                                            "purpose": "batch"})["id"]
    n = 1000
    out = [ok_line("id-%05d" % i, "a%d" % i, rid="p%d" % i) for i in range(n)]
    job_batch(sim, "big", "1/1", out)
    for k in range(8):
        job_batch(sim, "j%d" % k, "1/1", [ok_line("x", "y")])
    cache_dir = tmp_path / "xdg-cache" / "kimifs"
    m = mount(options=["cache_size=1M"])
    disk = lambda: json.loads(read_text(os.path.join(m.path, "stats")))["disk_cache"]["bytes"]
    with open(os.path.join(m.path, "files", big, "content"), "rb") as f:
        assert len(f.read()) == 640000
    # Kept once its download is counted (after it served its reader).
    wait_for(lambda: disk() == 640000, timeout=10, what="the content kept")
    assert contents_on_disk(cache_dir) == {big: 640000}
    # The job's output and its index: past 1 MiB with the big content,
    # which goes.
    rc, out_, err = m.sh("ls jobs/big/results | wc -l")
    assert (rc, out_.strip()) == (0, str(2 * n))
    wait_for(lambda: disk() != 640000 and big not in contents_on_disk(cache_dir),
             timeout=10, what="the big content to go")
    kept = contents_on_disk(cache_dir)
    index, per = index_blocks(m, cache_dir), index_blocks(m, cache_dir, files=True)
    assert 40000 < index and big not in kept and list(kept.values()) == [367560]
    assert disk() == sum(kept.values()) + index <= 1 << 20
    # Eight other jobs' indexes drop this one (JOB_RESULTS_KEPT): its bytes
    # are given back.
    for k in range(8):
        assert read_text(jobs(m, "j%d" % k, "results", "x.txt")) == "y\n"
    assert index_blocks(m, cache_dir, files=True) == 8 * per
    wait_for(lambda: disk() == sum(contents_on_disk(cache_dir).values())
             + index_blocks(m, cache_dir), timeout=10, what="the bytes given back")
