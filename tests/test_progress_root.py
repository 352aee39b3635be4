"""MOUNT/progress: one line per running job and per running batch in no
job, each the line of its own progress file prefixed by what it is,
sorted by the estimate of time left (none last, then by name), from the
batch listing alone; "nothing running" when nothing runs."""

import os
import time

from conftest import read_text


def batch(sim, status="in_progress", total=100, completed=0, failed=0,
          ago=100, meta=None):
    """A batch begun `ago` seconds ago with these counts: its id."""
    fields = {"status": status, "created_at": int(time.time()) - ago,
              "request_counts": {"total": total, "completed": completed,
                                 "failed": failed}}
    if meta:
        fields["metadata"] = meta
    return sim.create(fields)["id"]


def part(sim, job, i, n, **kw):
    return batch(sim, meta={"kimifs_job": job, "kimifs_part": "%d/%d" % (i, n)},
                 **kw)


def listing_only(sim):
    """Whether every request logged is a page of the batch listing."""
    return all(r["method"] == "GET" and r["path"] == "/v1/batches"
               for r in sim.log())


def progress(m):
    return read_text(os.path.join(m.path, "progress"))


def test_jobs_and_loose_batches_by_time_left(sim, mount):
    # slow: 10% in 100 s (about 15 min left); quick: 50% (about 100 s).
    part(sim, "slow", 1, 2, total=100, completed=10)
    part(sim, "slow", 2, 2, total=100, completed=10)
    part(sim, "quick", 1, 1, total=100, completed=40, failed=10)
    loose = batch(sim, total=100, completed=90)       # about 11 s left
    fresh = batch(sim, status="validating", total=100)  # no estimate yet
    part(sim, "over", 1, 1, status="completed", total=10, completed=10)
    gone = batch(sim, status="completed", total=10, completed=10)
    m = mount()
    rc, out, err = m.sh("cat progress")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert [l.split()[:2] for l in lines] == [
        ["batch", loose], ["job", "quick"], ["job", "slow"], ["batch", fresh]]
    # Each is the line of its own progress file, lined up after the names.
    assert lines[1].endswith(read_text(os.path.join(m.path, "jobs", "quick",
                                                    "progress")).rstrip("\n"))
    assert lines[0].endswith(read_text(m.batch(loose, "progress")).rstrip("\n"))
    assert "50/100 done, 10 failed, 1 of 1 batch running" in lines[1]
    assert "20/200 done, 0 failed, 2 of 2 batches running" in lines[2]
    assert len({l.index("[") for l in lines}) == 1
    assert "left" not in lines[3]
    assert "over" not in out and gone not in out
    # Its size is its text's, as stat tells it.
    assert os.stat(os.path.join(m.path, "progress")).st_size == len(out)


def test_costs_only_the_listing(sim, mount):
    for i in range(5):
        batch(sim, total=10, completed=i)
    part(sim, "j", 1, 2, total=10, completed=1)
    part(sim, "j", 2, 2, total=10, completed=1)
    m = mount(cache_ttl=0, page_size=3)

    def sent(cmd):
        sim.clear_log()
        rc, out, err = m.sh(cmd)
        assert (rc, err) == (0, "") and listing_only(sim)
        return len(sim.log())

    # The first read: the listing pages, no more than ls batches/ plus
    # ls jobs/; after it, those of one listing, as ls batches/.
    first = sent("cat progress")
    assert 0 < first <= sent("ls batches; ls jobs")
    assert sent("cat progress") == sent("ls batches") == 3
    assert len(progress(m).splitlines()) == 6


def test_repeated_reads_follow_the_account(sim, mount):
    a = batch(sim, total=10, completed=2)
    j = part(sim, "j", 1, 1, total=10, completed=5)
    m = mount(cache_ttl=0)
    rc, out, err = m.sh("cat progress; cat progress")
    assert rc == 0 and out.count("\n") == 4
    sim.set(a, {"request_counts": {"total": 10, "completed": 4, "failed": 0}})
    assert "4/10 done" in progress(m)
    sim.set(a, {"status": "completed",
                "request_counts": {"total": 10, "completed": 10, "failed": 0}})
    out = progress(m)
    assert a not in out and out.startswith("job  ")
    sim.set(j, {"status": "completed",
                "request_counts": {"total": 10, "completed": 10, "failed": 0}})
    assert progress(m) == "nothing running\n"


def test_nothing_running(sim, mount):
    m = mount()
    rc, out, err = m.sh("cat progress")
    assert (rc, out, err) == (0, "nothing running\n", "")
    batch(sim, status="completed", total=1, completed=1)
    m2 = mount()
    assert progress(m2) == "nothing running\n"
    assert listing_only(sim)
