"""Starting and stopping kimifs: the start-up check, the API key (from the
environment or a file, never shown), --help/--version, signals, and a
server that goes away."""

import errno
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import KEY, KIMIFS, is_mounted, kimifs_env, try_write, wait_for


def closed_port():
    """A local TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_start_fails(m):
    """kimifs exited non-zero, mounted nothing, and said why in one line.
    Returns that line."""
    rc = m.wait_exit()
    err = m.stderr_text()
    assert rc != 0
    assert not is_mounted(m.path)
    assert os.listdir(m.path) == []
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_starts_with_one_request_and_shows_batches(sim, mount):
    sim.seed(2, status="in_progress")
    m = mount(wait=False)

    def mounted():
        assert m.proc.poll() is None, m.stderr_text()
        return os.path.ismount(m.path)

    wait_for(mounted, timeout=10, what="the mount")
    m.expect_running = True
    log = sim.log()
    assert [(r["method"], r["path"], r["query"], r["auth"]) for r in log] == [
        ("GET", "/v1/batches", "limit=1", True)]
    rc, out, err = m.sh("ls")
    assert (rc, out) == (0, "batches\n")


def test_no_key(sim, mount):
    m = mount(key=None, wait=False)
    line = assert_start_fails(m)
    assert "MOONSHOT_API_KEY" in line
    assert sim.log() == []


def test_wrong_key(sim, mount):
    m = mount(key="sk-wrong-key-4711", wait=False)
    line = assert_start_fails(m)
    assert re.search(r"401|refused", line, re.I), line
    assert "sk-wrong-key-4711" not in m.stderr_text()
    assert [(r["method"], r["path"], r["auth"]) for r in sim.log()] == [
        ("GET", "/v1/batches", False)]


def test_unreachable_server(sim, mount):
    port = closed_port()
    m = mount(base_url="http://127.0.0.1:%d" % port, wait=False)
    line = assert_start_fails(m)
    assert str(port) in line, line
    assert KEY not in m.stderr_text()


@pytest.mark.parametrize("option, words", [
    ("page_size=0", "page_size"),
    ("page_size=101", "page_size"),
    ("cache_ttl=-1", "cache_ttl"),
    ("timeout=0", "timeout"),
    ("connect_timeout=0", "connect_timeout"),
    ("retries=11", "retries"),
    ("base_url=ftp://127.0.0.1/", "base_url"),
    ("api_key_file=/nonexistent/key", "/nonexistent/key"),
])
def test_a_bad_option_is_refused_before_any_request(sim, mount, option, words):
    m = mount(options=[option], wait=False)
    line = assert_start_fails(m)
    assert words in line, line
    assert sim.log() == []


def test_no_mountpoint_is_a_usage_error(sim):
    proc = subprocess.run([str(KIMIFS), "-o", "base_url=" + sim.url],
                          env=kimifs_env(), capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert "usage:" in proc.stderr
    assert sim.log() == []


def test_api_key_file(sim, mount, tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    m = mount(key=None, api_key_file=keyfile)
    rc, out, err = m.sh("ls batches")
    assert rc == 0, err
    assert all(r["auth"] for r in sim.log())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_api_key_file_readable_by_others_is_refused(sim, mount, tmp_path, mode):
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(mode)
    m = mount(key=None, api_key_file=keyfile, wait=False)
    line = assert_start_fails(m)
    assert str(keyfile) in line or "api_key_file" in line, line
    assert sim.log() == []


def test_the_key_never_shows(private_sim, mount, tmp_path):
    secret = "sk-kimifs-leakcheck-5e1f09c2a7b34d68"
    server = private_sim(secret)
    completed, running = server.seed(2, status=["completed", "in_progress"])
    m = mount(key=secret, server=server, cache_ttl=0, debug=True)
    m.sh("ls -l batches; cat batches/*/status batches/*/batch.json")
    m.sh("cat batches/batch_doesnotexist/status")
    m.sh("echo cancel > batches/%s/ctl" % completed)           # EPERM, no request
    server.fault(method="GET", count=-1, action="status", status=500, message="boom")
    m.sh("cat batches/%s/status" % running)                      # EIO
    server.clear_faults()
    server.fault(method="POST", count=1, action="status", status=401, message="nope")
    m.sh("echo cancel > batches/%s/ctl" % running)               # EACCES
    m.sh("echo refresh > batches/%s/ctl" % running)

    with open("/proc/%d/cmdline" % m.proc.pid, "rb") as f:
        assert secret.encode() not in f.read()
    ps = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(m.proc.pid)],
                        capture_output=True, text=True).stdout
    assert "kimifs" in ps and secret not in ps
    assert m.stop() == 0
    err = m.stderr_text()
    assert "boom" in err and "nope" in err      # the errors were logged ...
    assert secret not in err                    # ... but never the key
    assert secret[:16] not in err


def test_key_from_file_is_not_on_the_command_line(sim, mount, tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY)
    keyfile.chmod(0o600)
    m = mount(key=None, api_key_file=keyfile)
    with open("/proc/%d/cmdline" % m.proc.pid, "rb") as f:
        assert KEY.encode() not in f.read()


@pytest.mark.parametrize("flag, expected", [("--help", "base_url"), ("--version", "kimifs")])
def test_help_and_version(flag, expected):
    r = subprocess.run([str(KIMIFS), flag], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert expected in (r.stdout + r.stderr).lower()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_unmounts_cleanly(sim, mount, sig):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    assert m.stop(sig) == 0
    assert not is_mounted(m.path)
    assert os.listdir(m.path) == []


def test_server_gone_after_mount(private_sim, mount):
    server = private_sim()
    (bid,) = server.seed(1, status="in_progress")
    m = mount(server=server, cache_ttl=0)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    server.stop()
    rc, out, err = m.sh("cat batches/batch_notseenyet/status")
    assert rc != 0
    assert os.strerror(errno.EHOSTUNREACH) in err
    assert try_write(m.batch(bid, "ctl"), b"cancel\n") == errno.EHOSTUNREACH
    assert try_write(m.batch(bid, "ctl"), b"refresh\n") == errno.EHOSTUNREACH
    assert m.sh("cat batches/%s/ctl" % bid)[1].startswith("refresh: failed: ")
    assert m.proc.poll() is None


def test_a_refetch_that_cannot_connect_serves_the_cached_copy(private_sim, mount):
    # cache_ttl=0: every open refetches first. When the server is gone, a
    # batch with a cached copy still reads (the copy), and the log says
    # why; one never seen fails with EHOSTUNREACH.
    server = private_sim()
    (bid,) = server.seed(1, status="in_progress")
    m = mount(server=server, cache_ttl=0)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    server.stop()
    assert m.sh("cat batches/%s/status" % bid)[:2] == (0, "in_progress\n")
    assert "serving the cached copy" in m.stderr_text()
    rc, out, err = m.sh("cat batches/batch_neverseen/status")
    assert rc != 0 and out == ""
    assert os.strerror(errno.EHOSTUNREACH) in err
