"""batches/<id>/wait: a read that blocks until the batch is final, then
says its status; polls that back off and are shared by every waiter;
transient failures that do not end it, a 404, Ctrl-C and the end of the
mount that do; poll(2) on it; and -o poll_interval."""

import errno
import os
import select
import signal
import subprocess
import time

import pytest

from conftest import (FINAL_STATES, batch_path, is_mounted, read_text,
                      timed, wait_for)
from test_valgrind import VG_STOP_TIMEOUT, vg_mount  # noqa: F401 (fixture)

SLACK = 5  # seconds a loaded 2-core machine may add to a bound


def start_cat(m, *paths):
    """`cat paths` in the background, in the mount, its output piped."""
    return subprocess.Popen(["cat"] + list(paths), cwd=m.path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, LC_ALL="C"))


def finish(proc, timeout=30):
    """Wait for proc; returns (rc, stdout, stderr) as text."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("cat did not return within %ss" % timeout)
    return proc.returncode, out.decode(), err.decode()


def polls_seen(sim, bid, n, timeout=30):
    """Wait until the server has received at least n retrieves of bid."""
    return wait_for(lambda: len(sim.retrieves(bid)) >= n, timeout=timeout,
                    what="%d retrieves of %s" % (n, bid))


def test_wait_returns_the_final_status_and_polls_back_off(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=2"])
    t0 = time.monotonic()
    cat = start_cat(m, "batches/%s/wait" % bid)
    # The open fetches it, then polls come 1 s later and then every 2 s.
    polls_seen(sim, bid, 5)
    elapsed = time.monotonic() - t0
    assert cat.poll() is None, "wait returned while the batch was running"
    gets = len(sim.retrieves(bid))
    # Lookup and open, then one poll at 1 s and one each 2 s after it.
    assert gets <= 3 + elapsed / 2, (gets, elapsed)
    assert elapsed >= 4, elapsed     # not faster than the backoff allows
    sim.state(bid, "completed")
    rc, out, err = finish(cat, timeout=2 + SLACK)
    assert (rc, out) == (0, "completed\n"), err


def test_a_final_batch_answers_at_once_without_a_request(sim, mount):
    (bid,) = sim.seed(1, status="completed")
    m = mount()
    assert read_text(m.batch(bid, "status")) == "completed\n"
    sim.clear_log()
    err, out, elapsed = timed(read_text, m.batch(bid, "wait"))
    assert (err, out) == (0, "completed\n")
    assert elapsed < 2
    assert sim.log() == []


@pytest.mark.parametrize("state", FINAL_STATES)
def test_wait_says_each_final_status(sim, mount, state):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 2)
    sim.state(bid, state)
    rc, out, err = finish(cat, timeout=2 + SLACK)
    assert (rc, out) == (0, state + "\n"), err


def test_wait_is_a_size_0_file_the_kernel_does_not_keep(sim, mount):
    (bid,) = sim.seed(1, status="completed")
    m = mount()
    st = os.stat(m.batch(bid, "wait"))
    assert st.st_size == 0 and oct(st.st_mode & 0o777) == "0o444"
    # Found by name, never listed (a tree walk must not block on it).
    assert "wait" not in os.listdir(m.batch(bid))
    # Read whole even though stat says 0, twice (nothing kept as empty).
    assert read_text(m.batch(bid, "wait")) == "completed\n"
    assert read_text(m.batch(bid, "wait")) == "completed\n"


def test_a_non_blocking_read_of_a_running_wait_is_eagain(sim, mount):
    running, done = sim.seed(2, status=["in_progress", "completed"])
    m = mount()
    fd = os.open(m.batch(running, "wait"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        err, _, elapsed = timed(os.read, fd, 100)
        assert err == errno.EAGAIN and elapsed < 2
    finally:
        os.close(fd)
    fd = os.open(m.batch(done, "wait"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(fd, 100) == b"completed\n"
    finally:
        os.close(fd)


def test_tree_walks_never_meet_wait(sim, mount, tmp_path):
    running, done = sim.seed(2, status=["in_progress", "completed"])
    m = mount()
    # grep -r, find and cp -r walk the listings: wait is not in them, so
    # nothing blocks on a running batch and nothing reports an error.
    rc, out, err = m.sh("grep -rx completed batches", timeout=30)
    assert (rc, out, err) == (0, "batches/%s/status:completed\n" % done, "")
    rc, out, err = m.sh("find batches -name wait", timeout=30)
    assert (rc, out, err) == (0, "", "")
    rc, out, err = m.sh("cp -r batches/%s %s/copy" % (running, tmp_path), timeout=30)
    assert rc == 0, err
    assert read_text(os.path.join(str(tmp_path), "copy", "status")) == "in_progress\n"
    assert not os.path.exists(os.path.join(str(tmp_path), "copy", "wait"))
    # A glob names it, so cat batches/*/wait still finds every one.
    rc, out, err = m.sh("ls batches/*/wait", timeout=30)
    assert rc == 0 and len(out.split()) == 2, (out, err)


def test_many_waiters_share_one_poll(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=2"])
    t0 = time.monotonic()
    cats = [start_cat(m, "batches/%s/wait" % bid) for _ in range(5)]
    polls_seen(sim, bid, 5)
    elapsed = time.monotonic() - t0
    gets = len(sim.retrieves(bid))
    # What one waiter costs, plus one open each at most.
    assert gets <= 3 + elapsed / 2 + 5, (gets, elapsed)
    # And far from five schedules.
    assert gets <= 5 * (1 + elapsed / 2) / 2, (gets, elapsed)
    sim.state(bid, "completed")
    for cat in cats:
        rc, out, err = finish(cat, timeout=2 + SLACK)
        assert (rc, out) == (0, "completed\n"), err


def test_transient_failures_do_not_end_the_wait(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1", "retries=0"])
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 1)
    sim.fault(method="GET", path=batch_path(bid), count=-1, action="status",
              status=500)
    wait_for(lambda: len([r for r in sim.retrieves(bid) if r["status"] == 500]) >= 3,
             timeout=30, what="three failed polls")
    assert cat.poll() is None, finish(cat)
    sim.clear_faults()
    sim.state(bid, "completed")
    rc, out, err = finish(cat, timeout=2 + SLACK)
    assert (rc, out) == (0, "completed\n"), err
    assert "polling on" in m.stderr_text()


def test_a_batch_gone_from_the_server_ends_the_wait_with_enoent(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 2)
    sim.delete(bid)
    rc, out, err = finish(cat, timeout=2 + SLACK)
    assert rc != 0 and out == ""
    assert "No such file or directory" in err, err


def test_ctrl_c_ends_the_wait_at_once(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 2)       # the open, then a poll: cat is reading
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)
    rc, out, _ = finish(cat, timeout=SLACK)
    assert rc == -signal.SIGINT and out == ""
    assert time.monotonic() - t0 < 2
    # The mount serves on, and a new wait works.
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, len(sim.retrieves(bid)) + 1)
    sim.state(bid, "completed")
    rc, out, err = finish(cat, timeout=2 + SLACK)
    assert (rc, out) == (0, "completed\n"), err


def test_interrupts_racing_the_end_of_the_wait_get_one_answer_each(sim, mount):
    """Ctrl-C while the batch turns final: each cat gets exactly one
    answer, the status or EINTR, and the daemon lives (under the
    sanitizer build a second reply would be a use after free)."""
    ids = sim.seed(4, status="in_progress")
    m = mount(options=["poll_interval=1"])
    for round_ in range(3):
        cats = [start_cat(m, "batches/%s/wait" % bid) for bid in ids for _ in range(5)]
        for bid in ids:
            polls_seen(sim, bid, len(sim.retrieves(bid)) + 1)
        for i, cat in enumerate(cats):
            if i % 2 == 0:
                cat.send_signal(signal.SIGINT)
            if i % 5 == 2:
                sim.state(ids[i // 5], "completed")
        for i, cat in enumerate(cats):
            rc, out, err = finish(cat, timeout=10 + SLACK)
            assert (rc, out) in ((0, "completed\n"), (-signal.SIGINT, "")), (i, rc, out, err)
        ids = sim.seed(4, status="in_progress")
    assert m.proc.poll() is None
    assert read_text(os.path.join(m.path, "stats"))


def test_unmounting_ends_pending_waits(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 2)
    assert m.stop() == 0
    rc, out, err = finish(cat, timeout=SLACK)
    assert rc != 0 and out == ""
    assert not is_mounted(m.path)


def test_cat_of_every_wait_returns_all_statuses_and_blocks_nothing(sim, mount):
    ids = sim.seed(300, status="in_progress")
    m = mount(options=["poll_interval=2", "max_threads=4"])
    # Each wait in its own cat at once: 300 reads waiting on 4 threads,
    # and one cat of them all.
    cats = [start_cat(m, "batches/%s/wait" % bid) for bid in ids]
    glob = subprocess.Popen(["bash", "-c", "cat batches/*/wait"], cwd=m.path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Two rounds of polls (through the listing: 3 pages each) at least.
    wait_for(lambda: len(sim.requests("GET", "/v1/batches")) >= 6, timeout=60,
             what="the polls to start")
    # Other operations are served meanwhile.
    err, text, elapsed = timed(read_text, os.path.join(m.path, "stats"))
    assert err == 0 and elapsed < 2, elapsed
    err, names, elapsed = timed(os.listdir, m.batch(ids[0]))
    assert err == 0 and "status" in names and elapsed < 2, elapsed
    assert all(c.poll() is None for c in cats)
    for bid in ids:
        sim.state(bid, "completed")
    rc, out, err = finish(glob, timeout=60)
    assert rc == 0, err
    assert out == "completed\n" * 300
    for cat in cats:
        rc, out, err = finish(cat, timeout=60)
        assert (rc, out) == (0, "completed\n"), err


def retrieves_of_any(sim):
    """The logged retrieves of single batches."""
    return [r for r in sim.log()
            if r["method"] == "GET" and r["path"].startswith("/v1/batches/")]


def test_many_waited_batches_are_polled_through_the_listing(sim, mount):
    ids = sim.seed(300, status="in_progress")
    m = mount(options=["poll_interval=2"])
    assert len(os.listdir(m.batches)) == 300      # the listing is kept
    cats = [start_cat(m, "batches/%s/wait" % bid) for bid in ids]
    # Rounds of polls: a refresh of the listing (3 pages) each, not 300
    # retrieves.
    wait_for(lambda: len(sim.requests("GET", "/v1/batches")) >= 12, timeout=60,
             what="four refreshes of the listing")
    assert len(retrieves_of_any(sim)) < 30, len(retrieves_of_any(sim))
    assert all(c.poll() is None for c in cats)
    for bid in ids[:150]:
        sim.state(bid, "completed")
    for cat in cats[:150]:
        rc, out, err = finish(cat, timeout=30)
        assert (rc, out) == (0, "completed\n"), err
    assert all(c.poll() is None for c in cats[150:])
    for bid in ids[150:]:
        sim.state(bid, "failed")
    for cat in cats[150:]:
        rc, out, err = finish(cat, timeout=30)
        assert (rc, out) == (0, "failed\n"), err
    assert len(retrieves_of_any(sim)) < 30, len(retrieves_of_any(sim))
    assert "through the listing" not in m.stderr_text()


def test_a_failed_refresh_of_the_listing_polls_each_batch(sim, mount):
    ids = sim.seed(10, status="in_progress")
    m = mount(options=["poll_interval=1", "retries=0", "page_size=5"])
    assert len(os.listdir(m.batches)) == 10
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="status",
              status=500)
    cats = [start_cat(m, "batches/%s/wait" % bid) for bid in ids]
    wait_for(lambda: all(len(sim.retrieves(b)) >= 1 for b in ids), timeout=30,
             what="a retrieve of each batch")
    for bid in ids:
        sim.state(bid, "completed")
    for cat in cats:
        rc, out, err = finish(cat, timeout=2 + SLACK)
        assert (rc, out) == (0, "completed\n"), err
    assert "through the listing" in m.stderr_text()


def test_poll_reports_readable_once_the_batch_is_final(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["poll_interval=1"])
    fd = os.open(m.batch(bid, "wait"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(0) == []
        # A poll that waits leaves its handle with the wait; it polls.
        assert p.poll(1500) == []
        polls_seen(sim, bid, 2)
        assert p.poll(0) == []       # still running: not readable
        sim.state(bid, "completed")
        t0 = time.monotonic()
        events = p.poll((2 + SLACK) * 1000)
        assert events and events[0][1] & select.POLLIN, events
        assert time.monotonic() - t0 < 2 + SLACK
        assert os.read(fd, 100) == b"completed\n"
    finally:
        os.close(fd)


def test_poll_of_a_final_batch_is_readable_at_once(sim, mount):
    (bid,) = sim.seed(1, status="failed")
    m = mount()
    fd = os.open(m.batch(bid, "wait"), os.O_RDONLY)
    try:
        r, _, _ = select.select([fd], [], [], 5)
        assert r == [fd]
        assert os.read(fd, 100) == b"failed\n"
    finally:
        os.close(fd)


@pytest.mark.parametrize("value", ["0", "0.5", "3601", "", "abc", "-1", "1e3",
                                   "nan", " 5"])
def test_a_bad_poll_interval_is_refused_before_any_request(sim, mount, value):
    m = mount(options=["poll_interval=" + value], wait=False)
    assert m.wait_exit() != 0
    assert not is_mounted(m.path)
    err = m.stderr_text().strip().splitlines()
    assert err == ["kimifs: poll_interval must be a number of seconds from "
                   "1 to 3600"], err
    assert sim.log() == []


@pytest.mark.parametrize("value", ["1", "3600", "2.5"])
def test_a_good_poll_interval_mounts(sim, mount, value):
    (bid,) = sim.seed(1, status="completed")
    m = mount(options=["poll_interval=" + value])
    assert read_text(m.batch(bid, "wait")) == "completed\n"


def test_waits_retry_and_poll_under_valgrind(sim, vg_mount):
    """Every way a wait ends (final, Ctrl-C, a poll withdrawn by close, the
    end of the mount) and a retry, without a memory error or a leak."""
    m, vglog = vg_mount
    done, stopped, pending = sim.seed(3, status="in_progress")
    (failed,) = sim.seed(1, status="completed", failed=3)
    cat = start_cat(m, "batches/%s/wait" % done)
    polls_seen(sim, done, 2, timeout=60)
    sim.state(done, "completed")
    assert finish(cat, timeout=60)[:2] == (0, "completed\n")
    cat = start_cat(m, "batches/%s/wait" % stopped)
    polls_seen(sim, stopped, 2, timeout=60)
    cat.send_signal(signal.SIGINT)
    assert finish(cat, timeout=30)[0] == -signal.SIGINT
    fd = os.open(m.batch(stopped, "wait"), os.O_RDONLY)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(1000) == []
    finally:
        os.close(fd)
    rc, _, err = m.sh("echo retry > batches/%s/ctl" % failed, timeout=120)
    assert rc == 0, err
    assert read_text(m.batch(failed, "ctl")).startswith("retry: ok batch_")
    cat = start_cat(m, "batches/%s/wait" % pending)
    polls_seen(sim, pending, 2, timeout=60)
    m.expect_running = False
    m.proc.send_signal(signal.SIGTERM)
    try:
        rc = m.proc.wait(VG_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("kimifs under valgrind did not exit within %ss of SIGTERM"
                    % VG_STOP_TIMEOUT)
    assert finish(cat, timeout=30)[0] != 0
    report = vglog.read_text()
    assert "Memcheck" in report, report
    assert rc == 0, "exit status %s\n%s\n%s" % (rc, m.stderr_text()[-2000:], report)
    assert "ERROR SUMMARY: 0 errors" in report, report


# The end of the mount while a wait is pending (docs/filesystem.md, Wait).


def pending_wait(sim, mount):
    """A mount with a `cat batches/<id>/wait` pending on a running batch:
    (mount, batch id, the cat)."""
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    cat = start_cat(m, "batches/%s/wait" % bid)
    polls_seen(sim, bid, 2)         # the open's retrieve, then a poll
    assert cat.poll() is None
    return m, bid, cat


def test_fusermount_u_with_a_pending_wait_is_ebusy_and_the_wait_goes_on(sim, mount):
    m, bid, cat = pending_wait(sim, mount)
    r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C"), timeout=30)
    assert r.returncode != 0 and "Device or resource busy" in r.stderr, r.stderr
    assert is_mounted(m.path) and cat.poll() is None
    sim.state(bid, "completed")
    assert finish(cat, timeout=10 + SLACK)[:2] == (0, "completed\n")


def test_fusermount_uz_ends_pending_waits_with_enotconn_and_kimifs_exits(sim, mount):
    m, bid, cat = pending_wait(sim, mount)
    m.expect_running = False        # it exits by itself below
    t0 = time.monotonic()
    r = subprocess.run(["fusermount3", "-u", "-z", m.path], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not is_mounted(m.path)
    rc, out, err = finish(cat, timeout=10 + SLACK)
    assert (rc, out) == (1, "") and "Transport endpoint is not connected" in err, err
    assert time.monotonic() - t0 < 2 + SLACK
    # The last file closed, the kernel lets kimifs go.
    assert m.wait_exit(timeout=10 + SLACK) == 0
    assert "the mount was detached (lazy unmount): 1 pending wait ended" in m.stderr_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_kimifs_ends_pending_waits_with_enotconn(sim, mount, sig):
    m, bid, cat = pending_wait(sim, mount)
    m.expect_running = False
    t0 = time.monotonic()
    m.proc.send_signal(sig)
    rc, out, err = finish(cat, timeout=10 + SLACK)
    assert (rc, out) == (1, "") and "Transport endpoint is not connected" in err, err
    assert time.monotonic() - t0 < 2 + SLACK
    assert m.wait_exit(timeout=10 + SLACK) == 0
    assert not is_mounted(m.path)
