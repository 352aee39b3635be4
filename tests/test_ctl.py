"""The ctl file: cancel and refresh, what is sent for them, and how
failures reach the user (docs/filesystem.md: ctl, Errors)."""

import errno
import os

import pytest

from conftest import read_text, try_write, wait_for


# --------------------------------------------------------------------------
# cancel


def test_echo_cancel(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    assert [(r["method"], r["path"], r["auth"]) for r in sim.log()] == [
        ("POST", "/v1/batches/%s/cancel" % bid, True)]
    # The answer to the POST replaced the cached object: no GET needed.
    assert m.sh("cat batches/%s/status" % bid)[1] == "cancelling\n"
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "cancel: ok\n"
    assert m.sh("ls batches/%s" % bid)[1].split().count("cancelling_at") == 1
    assert len(sim.log()) == 1


def test_a_cancelled_batch_ends_cancelled(sim, mount):
    sim.config(cancel_delay=1)
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=1)
    assert m.sh("echo cancel > batches/%s/ctl" % bid)[0] == 0
    assert m.sh("cat batches/%s/status" % bid)[1] == "cancelling\n"
    sim.advance(2)
    wait_for(lambda: m.sh("cat batches/%s/status" % bid)[1] == "cancelled\n",
             timeout=10, what="status to become cancelled")
    assert m.sh("cat batches/%s/cancelled_at" % bid)[0] == 0


def test_write_returns_the_full_length(sim, mount):
    (bid,) = sim.seed(1, status="validating")
    m = mount()
    fd = os.open(m.batch(bid, "ctl"), os.O_WRONLY)
    try:
        assert os.write(fd, b"cancel\n") == 7
    finally:
        os.close(fd)
    assert len(sim.cancels(bid)) == 1


@pytest.mark.parametrize("command", ["printf '  cancel \\n'", "printf cancel",
                                     "printf '\\tcancel\\r\\n'"])
def test_white_space_around_the_command_is_ignored(sim, mount, command):
    (bid,) = sim.seed(1, status="finalizing")
    m = mount()
    rc, out, err = m.sh("%s > batches/%s/ctl" % (command, bid))
    assert rc == 0, err
    assert len(sim.cancels(bid)) == 1
    assert m.sh("cat batches/%s/status" % bid)[1] == "cancelling\n"


def test_echo_appended_with_double_redirect(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    assert m.sh("echo refresh >> batches/%s/ctl" % bid)[0] == 0
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "refresh: ok\n"
    # ctl now holds a line, and >> still works.
    rc, out, err = m.sh("echo cancel >> batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    assert len(sim.cancels(bid)) == 1
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "cancel: ok\n"


@pytest.mark.parametrize("state", ["cancelling", "cancelled"])
def test_cancelling_again_succeeds_without_a_request(sim, mount, state):
    sim.config(cancel_delay=100000)
    (bid,) = sim.seed(1, status=state)
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == state + "\n"
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    assert sim.cancels(bid) == []
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "cancel: ok\n"


@pytest.mark.parametrize("state", ["completed", "failed", "expired"])
def test_cancelling_a_finished_batch_fails_without_a_request(sim, mount, state):
    (bid,) = sim.seed(1, status=state)
    m = mount()
    assert m.sh("cat batches/%s/status" % bid)[1] == state + "\n"
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert rc != 0
    assert "Operation not permitted" in err
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.EPERM
    assert sim.cancels(bid) == []
    assert m.sh("cat batches/%s/ctl" % bid)[1].startswith("cancel: failed: ")
    assert m.sh("cat batches/%s/status" % bid)[1] == state + "\n"


def test_server_refuses_a_cancel_the_cache_thought_possible(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.state(bid, "completed")          # the cache does not know yet
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert rc != 0
    assert "Operation not permitted" in err
    log = [(r["method"], r["path"], r["status"]) for r in sim.log()]
    assert log == [("POST", "/v1/batches/%s/cancel" % bid, 400),
                   ("GET", "/v1/batches/" + bid, 200)]
    ctl = read_text(m.batch(bid, "ctl"))
    # What the server said, asked directly (after the log was checked).
    status, body = sim.api("POST", "/v1/batches/%s/cancel" % bid)
    message = body["error"]["message"]
    assert status == 400 and message
    assert ctl == "cancel: failed: 400 %s\n" % message
    assert message in m.stderr_text()


def test_a_400_for_a_batch_already_cancelling_is_a_success(sim, mount):
    sim.config(cancel_delay=100000)
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.state(bid, "cancelling")          # someone else cancelled it
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    log = [(r["method"], r["path"], r["status"]) for r in sim.log()]
    assert log == [("POST", "/v1/batches/%s/cancel" % bid, 400),
                   ("GET", "/v1/batches/" + bid, 200)]
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "cancel: ok\n"
    assert m.sh("cat batches/%s/status" % bid)[1] == "cancelling\n"


# --------------------------------------------------------------------------
# What is not a command


@pytest.mark.parametrize("data", [
    b"foo\n", b"\n", b"cancel\nrefresh\n", b"CANCEL\n", b"cancel now\n",
    b"cancel\x00", b"\x00\x01\xfe\xffcancel", b"cancel" + b" " * 5000,
    b"x" * (1 << 20),
], ids=["foo", "empty-line", "two-commands", "upper-case", "extra-word",
        "nul", "binary", "over-4096", "1MiB"])
def test_anything_else_is_einval_and_sends_nothing(sim, mount, data):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    assert try_write(m.batch(bid, "ctl"), data) == errno.EINVAL
    assert sim.log() == []
    assert read_text(m.batch(bid, "status")) == "in_progress\n"


@pytest.mark.parametrize("cmd", ["echo foo > ctl", "echo > ctl",
                                 "echo cancelled > ctl",
                                 "head -c 1048576 /dev/zero | tr '\\0' x > ctl"])
def test_shell_sees_invalid_argument(sim, mount, cmd):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.clear_log()
    rc, out, err = m.sh("cd batches/%s && %s" % (bid, cmd))
    assert rc != 0
    assert "Invalid argument" in err
    assert sim.log() == []


def test_a_write_at_an_offset_is_einval(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    assert try_write(m.batch(bid, "ctl"), b"cancel", offset=3) == errno.EINVAL
    assert sim.log() == []


def test_opening_ctl_sends_nothing_and_reads_empty(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert m.sh("ls batches/%s" % bid)[0] == 0
    sim.clear_log()
    ctl = m.batch(bid, "ctl")
    os.close(os.open(ctl, os.O_RDWR))
    os.close(os.open(ctl, os.O_WRONLY))
    assert read_text(ctl) == ""
    assert sim.log() == []


# --------------------------------------------------------------------------
# refresh


def test_refresh_fetches_now(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.state(bid, "completed")
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    sim.clear_log()
    rc, out, err = m.sh("echo refresh > batches/%s/ctl" % bid)
    assert (rc, err) == (0, "")
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches/" + bid)]
    assert m.sh("cat batches/%s/status" % bid)[1] == "completed\n"
    assert m.sh("cat batches/%s/completed_at" % bid)[0] == 0
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "refresh: ok\n"
    assert len(sim.log()) == 1


def test_ctl_reports_the_last_command(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    assert m.sh("echo refresh > batches/%s/ctl" % bid)[0] == 0
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "refresh: ok\n"
    assert m.sh("echo cancel > batches/%s/ctl" % bid)[0] == 0
    assert m.sh("cat batches/%s/ctl" % bid)[1] == "cancel: ok\n"


# --------------------------------------------------------------------------
# Errors of the cancel request


@pytest.mark.parametrize("code, expected, retried", [
    (400, errno.EPERM, False),
    (401, errno.EACCES, False),
    (403, errno.EACCES, False),
    (404, errno.ENOENT, False),
    (408, errno.ETIMEDOUT, True),
    (429, errno.EAGAIN, True),
    (500, errno.EIO, True),
    (503, errno.EIO, True),
])
def test_cancel_errors_map_to_errno(sim, mount, code, expected, retried):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    message = "simulated failure %d for this cancel" % code
    sim.fault(method="POST", path="/cancel$", count=-1, action="status",
              status=code, message=message)
    sim.clear_log()
    rc, out, err = m.sh("echo cancel > batches/%s/ctl" % bid)
    assert rc != 0
    assert os.strerror(expected) in err
    posts = sim.cancels(bid)
    assert len(posts) >= 1 if retried else len(posts) == 1
    assert read_text(m.batch(bid, "ctl")) == "cancel: failed: %d %s\n" % (code, message)
    assert message in m.stderr_text()
    if not retried:
        assert m.stderr_text().count(message) == 1


def test_cancel_errno_seen_by_write(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    sim.fault(method="POST", path="/cancel$", count=-1, action="status",
              status=429, message="slow down")
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.EAGAIN
    sim.clear_faults()
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == 0
    assert read_text(m.batch(bid, "status")) == "cancelling\n"


def test_cancel_timeout_is_etimedout(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(timeout=1)
    sim.fault(method="POST", path="/cancel$", count=-1, action="hang", seconds=5)
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.ETIMEDOUT
    assert len(sim.cancels(bid)) >= 1


def test_cancel_malformed_answer_is_eio(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    sim.fault(method="POST", path="/cancel$", count=-1, action="body",
              status=200, body="<html>not json</html>")
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.EIO
    assert len(sim.cancels(bid)) >= 1
