"""A job whose creation stopped halfway (a 5xx, a lost answer, Ctrl-C, the
daemon killed) keeps its input in the cache dir until every part exists;
`echo resume > jobs/NAME/ctl` makes the missing parts from it, never a part
twice. Without the kept input (another machine), resume says so and sends
nothing, and a cp of the same input makes the missing parts."""

import os
import signal
import subprocess

from conftest import STOP_TIMEOUT, interrupted_after, is_mounted, read_text, wait_for
from test_jobs_create import INPUT, LINES, job_batches, jobs, line, log_text, \
    server_files, write_input

OPTIONS = ["part_requests=3", "retries=0"]  # INPUT: parts of 3, 3 and 1 requests
PARTS = [("".join(LINES[0:3])).encode(), ("".join(LINES[3:6])).encode(),
         LINES[6].encode()]


def kept(tmp_path, name="q"):
    """Where the mounts of a test (one cache dir) keep job name's input."""
    return tmp_path / "xdg-cache" / "kimifs" / "jobs" / (name + ".jsonl")


def posts(sim, path):
    return len(sim.requests("POST", path))

def cp_hung_at_part_2(sim, m, src):
    """cp of src into m's jobs/ whose second upload hangs on the server:
    the cp, once that upload has reached it."""
    sim.fault(method="POST", path="^/v1/files$", action="hang", seconds=120, skip=1)
    cp = subprocess.Popen(["cp", str(src), "jobs/"], cwd=m.path,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: posts(sim, "/v1/files") >= 2, timeout=10,
                 what="part 2's upload to reach the server")
    except BaseException:
        cp.kill()
        cp.wait()
        raise
    return cp



def assert_whole(sim, name="q"):
    """Every part of the job exists once on the server, with its exact
    bytes, and each part's file was uploaded once."""
    batches = job_batches(sim, name)
    assert [b["metadata"]["kimifs_part"] for b in batches] == ["1/3", "2/3", "3/3"]
    assert [sim.content(b["input_file_id"]) for b in batches] == PARTS
    names = sorted(f["filename"] for f in server_files(sim))
    assert names == ["%s.part-%04d-of-0003.jsonl" % (name, i) for i in (1, 2, 3)]


def test_a_5xx_at_part_2_keeps_the_input_and_resume_makes_the_rest(sim, mount, tmp_path):
    m = mount(options=OPTIONS)
    # A creation that makes no part keeps nothing: a bad input, a first
    # part refused.
    bad = write_input(tmp_path, "d.jsonl", INPUT + line("q-1").encode())
    rc, out, err = m.sh("cp %s jobs/" % bad)
    assert rc != 0 and "Invalid argument" in err
    sim.fault(method="POST", path="^/v1/files$", action="status", status=400)
    good = write_input(tmp_path, "e.jsonl", INPUT)
    rc, out, err = m.sh("cp %s jobs/" % good)
    assert rc != 0
    assert os.listdir(jobs(m)) == []
    assert not kept(tmp_path, "d").exists() and not kept(tmp_path, "e").exists()
    src = write_input(tmp_path, "q.jsonl", INPUT)
    sim.fault(method="POST", path="^/v1/batches$", action="status", status=503, skip=1)
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "Input/output error" in err, err
    assert len(job_batches(sim, "q")) == 1
    assert kept(tmp_path).read_bytes() == INPUT
    assert "job q: 1 of 3 parts exist; its input is kept in %s (%d bytes" \
        % (kept(tmp_path), len(INPUT)) in log_text(m)
    assert read_text(jobs(m, "q", "parts")) == "3\n"
    sim.clear_log()
    rc, out, err = m.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: 2 of 3 parts made, every part exists\n"
    # Part 2's file, uploaded before its creation failed, is used again.
    assert (posts(sim, "/v1/files"), posts(sim, "/v1/batches")) == (1, 2)
    assert_whole(sim)
    assert not kept(tmp_path).exists()
    # Once whole, a resume sends nothing and says so.
    sim.clear_log()
    rc, out, err = m.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: every part exists already; nothing sent\n"
    assert [r for r in sim.log() if r["method"] == "POST"] == []


def test_a_lost_answer_is_found_by_its_tags_not_made_twice(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=OPTIONS)
    m.sh("ls jobs")  # the listing, young: the close lists once before its parts
    # Part 2's batch is made but its answer is lost, and the list that
    # would find it fails: whether it was made is unknown.
    sim.faults([{"method": "POST", "path": "^/v1/batches$", "action": "lost", "skip": 1},
                {"method": "GET", "path": "^/v1/batches$", "action": "status",
                 "status": 500, "skip": 1, "count": -1}])
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0 and "Input/output error" in err, err
    assert len(job_batches(sim, "q")) == 2
    assert "whether a batch was made is unknown" in log_text(m)
    assert kept(tmp_path).read_bytes() == INPUT
    sim.clear_faults()
    sim.clear_log()
    rc, out, err = m.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: 1 of 3 parts made, every part exists\n"
    assert (posts(sim, "/v1/files"), posts(sim, "/v1/batches")) == (1, 1)
    assert_whole(sim)
    assert not kept(tmp_path).exists()


def test_ctrl_c_of_the_cp_keeps_the_input_for_resume(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=OPTIONS, timeout=30)
    sim.fault(method="POST", path="^/v1/files$", action="hang", seconds=120, skip=1)
    elapsed, rc = interrupted_after(m.path, "exec cp %s jobs/" % src,
                                    lambda: posts(sim, "/v1/files") >= 2,
                                    "part 2's upload to reach the server")
    assert rc != 0
    sim.clear_faults()
    wait_for(lambda: "q.jsonl" not in os.listdir(jobs(m)), timeout=10,
             what="the staged name to go")
    assert len(job_batches(sim, "q")) == 1
    assert kept(tmp_path).read_bytes() == INPUT
    rc, out, err = m.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: 2 of 3 parts made, every part exists\n"
    assert_whole(sim)
    assert not kept(tmp_path).exists()


def test_sigkill_between_parts_then_a_remount_resumes(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=OPTIONS, timeout=30)
    cp = cp_hung_at_part_2(sim, m, src)
    try:
        m.expect_running = False
        m.proc.kill()
        assert m.proc.wait(STOP_TIMEOUT) == -signal.SIGKILL
        assert cp.wait(10) != 0
    finally:
        if cp.poll() is None:
            cp.kill()
            cp.wait()
    subprocess.run(["fusermount3", "-u", "-z", m.path], check=True)
    assert not is_mounted(m.path)
    sim.clear_faults()
    assert len(job_batches(sim, "q")) == 1
    assert kept(tmp_path).read_bytes() == INPUT

    m2 = mount(options=OPTIONS)  # the same cache dir
    rc, out, err = m2.sh("cat jobs/q/status; echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out.splitlines()[-1] == "resume: ok: 2 of 3 parts made, every part exists"
    assert_whole(sim)
    assert not kept(tmp_path).exists()


def stop_at_part_2(sim, m, src):
    sim.fault(method="POST", path="^/v1/batches$", action="status", status=503, skip=1)
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert rc != 0
    assert len(job_batches(sim, "q")) == 1


def test_a_mount_without_the_input_says_so_and_a_cp_again_resumes(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    a = mount(options=OPTIONS)
    stop_at_part_2(sim, a, src)
    assert kept(tmp_path).exists()
    # Another machine: a cache dir of its own.
    b = mount(options=OPTIONS + ["cache_dir=%s" % (tmp_path / "other-cache")])
    sim.clear_log()
    rc, out, err = b.sh("echo resume > jobs/q/ctl")
    assert rc != 0 and "No data available" in err, err
    assert [r for r in sim.log() if r["method"] != "GET"] == []
    line_ = read_text(jobs(b, "q", "ctl"))
    assert line_.startswith("resume: failed: its input is not kept on this mount"), line_
    assert "copy the same input again (cp q.jsonl MOUNT/jobs/)" in line_
    assert "job q: resume: failed: its input is not kept" in log_text(b)
    # The same input copied again makes only the missing parts.
    sim.clear_log()
    rc, out, err = b.sh("cp %s jobs/ && cat jobs/q/parts" % src)
    assert (rc, out, err) == (0, "3\n", "")
    assert (posts(sim, "/v1/files"), posts(sim, "/v1/batches")) == (1, 2)
    assert_whole(sim)
    # The first mount, finding every part, lets its kept input go.
    rc, out, err = a.sh("echo refresh > jobs/q/ctl && cat jobs/q/status")
    assert (rc, err) == (0, "")
    assert not kept(tmp_path).exists()
    assert "job q: every part exists: its kept input is removed" in log_text(a)


def test_a_cp_of_another_input_under_an_incomplete_name_is_eexist(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=OPTIONS)
    stop_at_part_2(sim, m, src)
    sim.clear_faults()
    (tmp_path / "other").mkdir()
    other = write_input(tmp_path / "other", "q.jsonl",
                        ("".join([line("x-0", "longer text")] + LINES[1:])).encode())
    sim.clear_log()
    rc, out, err = m.sh("cp %s jobs/" % other)
    assert rc != 0 and "File exists" in err, err
    assert "is not that of this input" in log_text(m)
    assert [r for r in sim.log() if r["method"] == "POST"] == []
    assert len(job_batches(sim, "q")) == 1
    assert kept(tmp_path).read_bytes() == INPUT  # the first input stays kept


def test_a_resume_while_the_cp_makes_the_parts_is_ebusy(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    m = mount(options=OPTIONS, timeout=30)
    cp = cp_hung_at_part_2(sim, m, src)
    try:
        rc, out, err = m.sh("echo resume > jobs/q/ctl")
        assert rc != 0 and "Device or resource busy" in err, err
        assert read_text(jobs(m, "q", "ctl")) == \
            "resume: failed: the job's parts are being made (a cp or a resume of it runs)\n"
        assert (posts(sim, "/v1/files"), posts(sim, "/v1/batches")) == (2, 1)
        sim.clear_faults()
        cp.wait(30)
    finally:
        if cp.poll() is None:
            cp.kill()
            cp.wait()
    rc, out, err = m.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, ""), log_text(m)
    assert_whole(sim)


def test_a_resume_on_one_mount_is_seen_not_repeated_on_the_other(sim, mount, tmp_path):
    src = write_input(tmp_path, "q.jsonl", INPUT)
    a = mount(options=OPTIONS)
    stop_at_part_2(sim, a, src)
    b = mount(options=OPTIONS + ["cache_dir=%s" % (tmp_path / "other-cache")],
              cache_ttl=3600)
    assert read_text(jobs(b, "q", "parts")) == "3\n"  # b's listing: part 1 alone
    sim.clear_faults()
    rc, out, err = a.sh("echo resume > jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert_whole(sim)
    sim.clear_log()
    rc, out, err = b.sh("echo resume > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "resume: ok: every part exists already; nothing sent\n"
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches")]
    assert_whole(sim)
