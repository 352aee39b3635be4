"""How the listing keeps listed batches fresh (docs/filesystem.md:
Freshness, Listing refresh, The mount's ctl): a stale read of a listed
batch refreshes the listing, shared by every reader, instead of one GET per
batch; a refresh stops at the first page of batches already known as
final; MOUNT/ctl asks for a full listing. Every test checks what the user
reads and which requests reached the simulator."""

import errno
import os
import subprocess
import threading
import urllib.parse

from conftest import read_text, try_write, wait_for


def list_pages(sim):
    """The query of every GET /v1/batches in the log, as dicts."""
    return [dict(urllib.parse.parse_qsl(r["query"]))
            for r in sim.requests("GET", "/v1/batches")]


def retrieves(sim):
    """Every logged GET of one batch."""
    return [r for r in sim.log()
            if r["method"] == "GET" and r["path"].startswith("/v1/batches/")]


def cat_all(m, ids, name="status"):
    """One cat of `name` of every batch in ids, by explicit path (no
    readdir): (rc, the lines read)."""
    rc, out, err = m.sh("cat " + " ".join("batches/%s/%s" % (b, name) for b in ids))
    assert rc == 0, err
    return out.splitlines()


def account(sim, old_running=0, completed=0, running=0):
    """Seed, oldest first: old_running batches in_progress, then completed
    ones, then running ones (in_progress). Returns their ids newest
    first."""
    ids = []
    if old_running:
        ids += sim.seed(old_running, status="in_progress")
    if completed:
        ids += sim.seed(completed, status="completed")
    if running:
        ids += sim.seed(running, status="in_progress")
    return ids[::-1]


# --------------------------------------------------------------------------
# A stale read of a listed batch refreshes the listing


def test_a_read_of_stale_listed_batches_costs_one_listing_refresh(sim, mount):
    newest = account(sim, running=250)
    m = mount(cache_ttl=2)
    assert len(os.listdir(m.batches)) == 250
    changed = newest[120]
    sim.state(changed, "finalizing")
    sim.clear_log()
    # Reads by explicit path (no readdir): while the copies are young
    # nothing is sent; the first read after cache_ttl refreshes the listing
    # once, which brings every batch, the changed one included.
    wait_for(lambda: "finalizing" in cat_all(m, newest), timeout=20,
             what="the change to show")
    assert retrieves(sim) == []
    assert len(list_pages(sim)) == 3
    assert cat_all(m, newest).count("in_progress") == 249


def test_concurrent_stale_readers_share_one_refresh(sim, mount):
    newest = account(sim, running=250)
    m = mount(cache_ttl=1)
    assert len(os.listdir(m.batches)) == 250
    changed, others = newest[0], newest[100:108]
    sim.state(changed, "finalizing")
    # The first page of the next listing answers late, so every reader
    # below arrives while that refresh is under way.
    sim.fault(method="GET", path="^/v1/batches$", action="delay", seconds=1.5)
    sim.clear_log()

    def round_of_readers():
        outs = {}

        def read(bid):
            outs[bid] = subprocess.run(["cat", m.batch(bid, "status")],
                                       capture_output=True, text=True,
                                       timeout=60).stdout
        threads = [threading.Thread(target=read, args=(b,))
                   for b in [changed] + others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return outs

    outs = wait_for(lambda: (lambda o: o if o[changed] == "finalizing\n" else None)(
        round_of_readers()), timeout=30, what="the change to show")
    assert all(outs[b] == "in_progress\n" for b in others)
    assert retrieves(sim) == []
    assert len(list_pages(sim)) == 3


def test_a_failed_refresh_serves_the_stale_copy(sim, mount):
    newest = account(sim, running=3)
    m = mount(cache_ttl=0.5, options=["retries=0"])
    assert len(os.listdir(m.batches)) == 3
    sim.fault(method="GET", path="^/v1/batches$", action="status", status=503, count=-1)
    sim.state(newest[0], "finalizing")
    sim.clear_log()
    # Once the copy is stale a read tries the listing, which fails for a
    # passing reason, and is served the copy it has.
    wait_for(lambda: read_text(m.batch(newest[0], "status")) == "in_progress\n"
             and sim.requests("GET", "/v1/batches"), timeout=20,
             what="a listing refresh")
    assert retrieves(sim) == []
    assert "serving the cached copy" in m.stderr_text()


def test_with_cache_ttl_0_each_open_of_a_listed_batch_is_one_get(sim, mount):
    # cache_ttl=0 asks on every open: one GET is the cheapest question for
    # one batch, so the listing is not refreshed for it.
    newest = account(sim, running=3)
    m = mount(cache_ttl=0)
    assert os.listdir(m.batches) == newest
    sim.clear_log()
    for _ in range(3):
        assert read_text(m.batch(newest[1], "status")) == "in_progress\n"
    assert [(r["method"], r["path"]) for r in sim.log()] == [
        ("GET", "/v1/batches/" + newest[1])] * 3


# --------------------------------------------------------------------------
# Listing freshness counts from its end


def test_a_listing_is_fresh_from_its_last_page(sim, mount):
    sim.seed(250, status="in_progress")
    m = mount(cache_ttl=2)
    # Three pages 1 s apart: counted from its first page, the listing (and
    # the copies it brought) would be stale before it ended.
    sim.config(latency=1.0)
    rc, out, err = m.sh("ls batches | wc -l; ls batches | wc -l; "
                        "cat batches/*/status | sort | uniq -c")
    assert rc == 0, err
    assert out.split() == ["250", "250", "250", "in_progress"]
    assert len(list_pages(sim)) == 3
    assert retrieves(sim) == []


# --------------------------------------------------------------------------
# A refresh stops at the first page of batches known as final


def wait_for_refresh(sim, m):
    """ls batches/ until a listing is sent (the kept one got old); returns
    the names in readdir order."""
    box = {}

    def listed():
        box["names"] = os.listdir(m.batches)
        return sim.requests("GET", "/v1/batches")

    wait_for(listed, timeout=20, what="a listing refresh")
    return box["names"]


def test_a_refresh_stops_after_a_page_of_known_final_batches(sim, mount):
    newest = account(sim, completed=150, running=50)
    m = mount(cache_ttl=1, page_size=50)
    assert os.listdir(m.batches) == newest
    assert len(list_pages(sim)) == 4
    sim.clear_log()
    names = wait_for_refresh(sim, m)
    # Page 1 holds running batches; page 2 only batches already known as
    # completed: the rest cannot have changed.
    assert list_pages(sim) == [{"limit": "50"}, {"limit": "50", "after": newest[49]}]
    assert names == newest
    sim.clear_log()
    assert cat_all(m, newest[100:]) == ["completed"] * 100
    assert sim.log() == []


def test_an_old_running_batch_behind_completed_ones_is_still_refreshed(sim, mount):
    newest = account(sim, old_running=1, completed=150, running=49)
    old = newest[-1]
    m = mount(cache_ttl=1, page_size=50)
    assert os.listdir(m.batches) == newest
    sim.state(old, "completed")
    sim.clear_log()
    # The refresh goes on past the completed pages until it has seen the
    # batch it knew as running.
    wait_for(lambda: read_text(m.batch(old, "status")) == "completed\n",
             timeout=20, what="the old batch to read completed")
    assert retrieves(sim) == []
    assert len(list_pages(sim)) == 4
    # Now it is known as final: the next refresh stops at page 2.
    sim.clear_log()
    assert wait_for_refresh(sim, m) == newest
    assert len(list_pages(sim)) == 2


def test_a_new_batch_appears_after_a_refresh(sim, mount):
    newest = account(sim, completed=200)
    m = mount(cache_ttl=1, page_size=50)
    assert os.listdir(m.batches) == newest
    new = sim.create({"status": "in_progress"})["id"]
    sim.clear_log()
    names = wait_for_refresh(sim, m)
    # The new batch pushes every other one down by one: page 1 holds it,
    # page 2 only known completed ones; the rest comes from the previous
    # listing, with no batch twice.
    assert names == [new] + newest
    assert len(list_pages(sim)) == 2


# --------------------------------------------------------------------------
# MOUNT/ctl


def test_ctl_refresh_lists_every_page(sim, mount):
    newest = account(sim, completed=150, running=50)
    m = mount(cache_ttl=3600, page_size=50)
    assert os.listdir(m.batches) == newest
    assert read_text(os.path.join(m.path, "ctl")) == ""
    new = sim.create({"status": "in_progress"})["id"]
    sim.clear_log()
    rc, out, err = m.sh("echo refresh > ctl")
    assert (rc, err) == (0, "")
    assert len(list_pages(sim)) == 5
    assert retrieves(sim) == []
    assert read_text(os.path.join(m.path, "ctl")) == "refresh: ok\n"
    # The listing it made is the kept one, young for cache_ttl.
    assert os.listdir(m.batches) == [new] + newest
    assert len(list_pages(sim)) == 5


def test_ctl_is_in_the_mount_root(sim, mount):
    m = mount()
    assert sorted(os.listdir(m.path)) == ["batches", "ctl", "files", "jobs", "log", "progress",
                                        "stats"]
    st = os.stat(os.path.join(m.path, "ctl"))
    assert oct(st.st_mode & 0o777) == oct(0o600)
    assert sim.log() == []


def test_bad_ctl_commands_are_einval_and_send_nothing(sim, mount):
    sim.seed(3, status="in_progress")
    m = mount(cache_ttl=0)
    ctl = os.path.join(m.path, "ctl")
    for data in (b"cancel\n", b"bogus\n", b"refresh refresh\n", b"refresh\0"):
        assert try_write(ctl, data) == errno.EINVAL, data
    assert try_write(ctl, b"refresh", offset=3) == errno.EINVAL
    rc, out, err = m.sh("echo cancel > ctl")
    assert rc != 0 and "Invalid argument" in err
    assert sim.log() == []
    assert read_text(ctl) == ""


def test_a_failed_ctl_refresh_is_reported_and_the_listing_kept(sim, mount):
    newest = account(sim, running=3)
    m = mount(cache_ttl=0)
    assert os.listdir(m.batches) == newest
    sim.fault(method="GET", path="^/v1/batches$", action="status", status=401,
              message="Invalid Authentication", count=1)
    rc, out, err = m.sh("echo refresh > ctl")
    assert rc != 0 and os.strerror(errno.EACCES) in err
    assert read_text(os.path.join(m.path, "ctl")).startswith("refresh: failed: ")
    assert os.listdir(m.batches) == newest
