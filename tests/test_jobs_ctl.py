"""A job's ctl, jobs/NAME/ctl: one word a write, as a batch's ctl.
`cancel` cancels every batch of the job that is not final (one cancel
each), `refresh` reads its batches again through one listing refresh,
`clean` deletes the input files of a final job's batches (never outputs).
The outcome of the last command reads back."""

import errno
import os

import pytest

from conftest import errno_of, read_text, try_write
from test_jobs_create import INPUT, job_batches, jobs, log_text, write_input
from test_user import as_user, home, start_as_user, user  # noqa: F401 (fixtures)

OPTIONS = ["part_requests=3"]  # INPUT: parts of 3, 3 and 1 requests


def make_job(sim, m, tmp_path, name="q"):
    """cp NAME.jsonl into jobs/: a job of three parts; its batches."""
    src = write_input(tmp_path, name + ".jsonl", INPUT)
    rc, out, err = m.sh("cp %s jobs/" % src)
    assert (rc, err) == (0, ""), log_text(m)
    batches = job_batches(sim, name)
    assert len(batches) == 3
    sim.clear_log()
    return [b["id"] for b in batches]


def cancels(sim):
    return sorted(r["path"] for r in sim.log()
                  if r["method"] == "POST" and r["path"].endswith("/cancel"))


def test_ctl_is_listed_0600_empty_and_takes_one_word(sim, mount, tmp_path):
    m = mount(options=OPTIONS)
    make_job(sim, m, tmp_path)
    ctl = jobs(m, "q", "ctl")
    assert "ctl" in os.listdir(jobs(m, "q"))
    assert os.stat(ctl).st_mode & 0o777 == 0o600
    assert read_text(ctl) == ""
    for bad in (b"cancel cancel\n", b"retry-all\n", b"cancel\0",
                b"\n", b"CANCEL\n", b"x" * 5000):
        assert try_write(ctl, bad) == errno.EINVAL, bad
    assert try_write(ctl, b"cancel\n", offset=3) == errno.EINVAL
    assert sim.log() == []
    assert read_text(ctl) == ""
    assert "ctl of job q: not a command" in log_text(m)
    assert errno_of(os.stat, jobs(m, "nope", "ctl")) == errno.ENOENT


def test_cancel_sends_one_cancel_per_running_batch_and_skips_final_ones(
        sim, mount, tmp_path):
    m = mount(options=OPTIONS, cache_ttl=0)
    ids = make_job(sim, m, tmp_path)
    sim.state(ids[0], "in_progress")
    sim.state(ids[1], "completed")
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "cancel: ok: 2 of 3 batches cancelled, 1 final\n"
    assert cancels(sim) == sorted("/v1/batches/%s/cancel" % i for i in (ids[0], ids[2]))
    assert sim.get(ids[1])["status"] == "completed"
    assert {sim.get(i)["status"] for i in (ids[0], ids[2])} <= {"cancelling", "cancelled"}
    assert read_text(jobs(m, "q", "status")) in ("cancelling\n", "cancelled\n")
    # Again: the batches cancelling already get no second cancel.
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > jobs/q/ctl; cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert cancels(sim) == []


def test_cancel_of_a_final_job_sends_nothing(sim, mount, tmp_path):
    m = mount(options=OPTIONS, cache_ttl=0)
    ids = make_job(sim, m, tmp_path)
    for i in ids:
        sim.state(i, "completed")
    m.sh("cat jobs/q/status")
    rc, out, err = m.sh("echo cancel > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "cancel: ok: 0 of 3 batches cancelled, 3 final\n"
    assert cancels(sim) == []


def test_a_failed_cancel_does_not_stop_the_others_and_is_the_error(sim, mount, tmp_path):
    m = mount(options=OPTIONS + ["retries=0"])
    ids = make_job(sim, m, tmp_path)
    sim.fault(method="POST", path="^/v1/batches/%s/cancel$" % ids[0], action="status",
              status=500, count=-1)
    rc, out, err = m.sh("echo cancel > jobs/q/ctl")
    assert rc != 0 and "Input/output error" in err, err
    assert cancels(sim) == sorted("/v1/batches/%s/cancel" % i for i in ids)
    text = read_text(jobs(m, "q", "ctl"))
    assert text.startswith("cancel: failed: 1 of 3 batches not cancelled (%s: 500 "
                           % ids[0]), text
    assert sim.get(ids[1])["status"] in ("cancelling", "cancelled")


def test_refresh_reads_the_job_again_through_one_listing_page(sim, mount, tmp_path):
    m = mount(options=OPTIONS, cache_ttl=3600)
    ids = make_job(sim, m, tmp_path)
    assert read_text(jobs(m, "q", "status")) == "validating\n"
    for i in ids:
        sim.state(i, "completed")
    sim.clear_log()
    assert read_text(jobs(m, "q", "status")) == "validating\n"  # young copies
    assert sim.log() == []
    rc, out, err = m.sh("echo refresh > jobs/q/ctl; cat jobs/q/ctl jobs/q/status")
    assert (rc, err) == (0, "")
    assert out == "refresh: ok: completed\ncompleted\n"
    # One page of the listing brought every batch: no retrieve of each.
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches")]


def file_ids(sim):
    status, body = sim.api("GET", "/v1/files")
    assert status == 200
    return {f["id"]: f for f in body["data"]}


def test_clean_is_ebusy_while_the_job_runs_and_sends_nothing(sim, mount, tmp_path):
    m = mount(options=OPTIONS)
    ids = make_job(sim, m, tmp_path)
    sim.state(ids[0], "completed")
    sim.clear_log()
    rc, out, err = m.sh("echo clean > jobs/q/ctl")
    assert rc != 0 and "Device or resource busy" in err, err
    assert [r for r in sim.log() if r["method"] == "DELETE"] == []
    assert read_text(jobs(m, "q", "ctl")) == \
        "clean: failed: job is validating (not final yet)\n"


def test_clean_deletes_the_inputs_of_a_final_job_never_its_outputs(sim, mount, tmp_path):
    m = mount(options=OPTIONS)
    ids = make_job(sim, m, tmp_path)
    for i in ids:
        sim.state(i, "completed")
    batches = [sim.get(i) for i in ids]
    inputs = [b["input_file_id"] for b in batches]
    outputs = [b["output_file_id"] for b in batches]
    before = file_ids(sim)
    freed = sum(before[f]["bytes"] for f in inputs)
    assert freed == len(INPUT)
    sim.clear_log()
    rc, out, err = m.sh("echo clean > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "clean: ok: 3 files deleted, %d bytes freed (0 gone already)\n" % freed
    after = file_ids(sim)
    assert not set(inputs) & set(after)
    assert set(outputs) <= set(after)
    assert sorted(r["path"] for r in sim.log() if r["method"] == "DELETE") == \
        sorted("/v1/files/" + f for f in inputs)
    assert not set(inputs) & set(os.listdir(os.path.join(m.path, "files")))
    # Again: nothing left to delete, nothing sent.
    sim.clear_log()
    rc, out, err = m.sh("echo clean > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out == "clean: ok: 0 files deleted, 0 bytes freed (3 gone already)\n"
    assert [r for r in sim.log() if r["method"] == "DELETE"] == []


def test_clean_takes_files_deleted_elsewhere_as_gone(sim, mount, tmp_path):
    m = mount(options=OPTIONS)
    ids = make_job(sim, m, tmp_path)
    for i in ids:
        sim.state(i, "completed")
    gone = sim.get(ids[0])["input_file_id"]
    assert sim.api("DELETE", "/v1/files/%s" % gone)[0] == 200
    rc, out, err = m.sh("echo clean > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert out.startswith("clean: ok: 2 files deleted, ")
    assert out.endswith("(1 gone already)\n")


def test_cancel_on_one_mount_is_seen_on_the_other(sim, mount, tmp_path):
    a = mount(options=OPTIONS)
    ids = make_job(sim, a, tmp_path)
    b = mount(options=OPTIONS, cache_ttl=0)
    assert read_text(jobs(b, "q", "status")) == "validating\n"
    rc, out, err = a.sh("echo cancel > jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert read_text(jobs(b, "q", "status")) in ("cancelling\n", "cancelled\n")
    # The other mount's cancel sends nothing more: they are cancelling.
    sim.clear_log()
    rc, out, err = b.sh("echo cancel > jobs/q/ctl && cat jobs/q/ctl")
    assert (rc, err) == (0, "")
    assert cancels(sim) == []
    assert len(ids) == 3


@pytest.mark.xdist_group("machine-settings")
def test_a_user_writes_ctl_words_on_their_own_mount(sim, user, home):
    for part in (1, 2):
        sim.create({"status": "in_progress",
                    "metadata": {"kimifs_job": "u", "kimifs_part": "%d/2" % part}})
    m = start_as_user(sim, user, home, "cache_ttl=0")
    try:
        rc, out, err = as_user(user, "stat -c '%u %a' mnt/jobs/u/ctl; "
                                     "echo refresh > mnt/jobs/u/ctl && "
                                     "echo cancel > mnt/jobs/u/ctl && "
                                     "cat mnt/jobs/u/ctl mnt/jobs/u/status; "
                                     "echo bogus > mnt/jobs/u/ctl", home)
        assert out == "%d 600\ncancel: ok: 2 of 2 batches cancelled, 0 final\n" \
            "cancelling\n" % user.pw_uid, err
        assert rc != 0 and "Invalid argument" in err, err
        assert len(cancels(sim)) == 2
    finally:
        m.cleanup()
