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

from conftest import (KEY, KIMIFS, is_mounted, kimifs_env, read_text, run_kimifs,
                      try_write, wait_for)


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
    assert (rc, out) == (0, "batches\nctl\nfiles\njobs\nlog\nprogress\nstats\n")


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


# The numeric options and their ranges, as --help and the README give them.
RANGES = {
    "cache_ttl": "0 to 86400",
    "page_size": "1 to 100",
    "timeout": "0.1 to 3600",
    "connect_timeout": "0.1 to 3600",
    "retries": "0 to 10",
}
SECONDS = ["cache_ttl", "timeout", "connect_timeout"]
COUNTS = ["page_size", "retries"]

# Values no numeric option takes: not numbers, not finite, not written
# out in plain decimal, or not the whole value.
NOT_A_NUMBER = ["", "nan", "NaN", "inf", "-inf", "infinity", "1e30", "1e1",
                "0x10", "0x1p3", " 5", "5 ", "\t5", "5abc", "abc", ".", "1.2.3",
                "+5", "-1", "-0", "1_0", "\u0665"]
# Out of range, or a fraction where a whole number is wanted.
OUT_OF_RANGE = [
    ("cache_ttl", "86400.5"), ("cache_ttl", "99999999999999999999999"),
    ("cache_ttl", "-0.5"),
    ("timeout", "0"), ("timeout", "0.0001"), ("timeout", "0.09"),
    ("timeout", "3600.5"), ("timeout", "1" + "0" * 400),
    ("connect_timeout", "0"), ("connect_timeout", "0.05"),
    ("connect_timeout", "3601"),
    ("page_size", "0"), ("page_size", "101"), ("page_size", "1.0"),
    ("page_size", "1x"), ("page_size", "4294967297"),
    ("retries", "11"), ("retries", "4294967296"),
    ("retries", "18446744073709551616"), ("retries", "2.5"),
]
BAD_NUMBERS = ([(name, value) for name in RANGES for value in NOT_A_NUMBER]
               + OUT_OF_RANGE)


@pytest.mark.parametrize("name, value", BAD_NUMBERS,
                         ids=["%s=%r" % nv for nv in BAD_NUMBERS])
def test_a_bad_number_is_refused_in_one_line_before_any_request(sim, mount, name,
                                                                value):
    m = mount(options=["%s=%s" % (name, value)], wait=False)
    line = assert_start_fails(m)
    assert line.startswith("kimifs: %s must be " % name), line
    assert RANGES[name] in line, line
    assert sim.log() == []


@pytest.mark.parametrize("name", sorted(RANGES))
def test_a_number_option_without_a_value_is_refused(sim, mount, name):
    m = mount(options=[name], wait=False)
    line = assert_start_fails(m)
    assert name in line and RANGES[name] in line, line
    assert sim.log() == []


# The edges of each range, and the forms a value may take.
GOOD_NUMBERS = [
    ("cache_ttl", "0"), ("cache_ttl", "86400"), ("cache_ttl", "0.5"),
    ("cache_ttl", ".5"), ("cache_ttl", "2."), ("cache_ttl", "007"),
    ("page_size", "1"), ("page_size", "100"), ("page_size", "0100"),
    ("timeout", "3600"), ("timeout", "2.5"),
    ("connect_timeout", "0.1"), ("connect_timeout", "3600"),
    ("retries", "0"), ("retries", "10"),
]


@pytest.mark.parametrize("name, value", GOOD_NUMBERS,
                         ids=["%s=%s" % nv for nv in GOOD_NUMBERS])
def test_the_edges_of_each_range_are_accepted(sim, mount, name, value):
    sim.seed(2, status="in_progress")
    m = mount(options=["%s=%s" % (name, value)])
    rc, out, err = m.sh("ls batches | wc -l")
    assert (rc, out.strip()) == (0, "2"), err
    assert m.stderr_text() == ""


def test_the_lowest_timeout_is_accepted(sim, mount):
    # timeout=0.1 bounds the start-up request too, which a loaded machine
    # may not answer within 0.1 s: the option is accepted when that request
    # is sent, whatever its outcome.
    m = mount(options=["timeout=0.1"], wait=False)

    def started():
        return is_mounted(m.path) or m.proc.poll() is not None
    wait_for(started, timeout=10, what="kimifs to mount or exit")
    assert [(r["method"], r["path"]) for r in sim.log()] == [("GET", "/v1/batches")]
    if is_mounted(m.path):
        m.expect_running = True
    else:
        assert "must be" not in m.stderr_text(), m.stderr_text()


@pytest.mark.parametrize("option, words", [
    ("base_url=ftp://127.0.0.1/", "base_url"),
    ("base_url=http://127.0.0.1:1/ x", "base_url"),
    ("api_key_file=/nonexistent/key", "/nonexistent/key"),
])
def test_a_bad_option_is_refused_before_any_request(sim, mount, option, words):
    m = mount(options=[option], wait=False)
    line = assert_start_fails(m)
    assert words in line, line
    assert sim.log() == []


@pytest.mark.parametrize("name, body", [
    ("html", "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
             "<body><h1>It works!</h1></body></html>\n"),
    ("empty-object", "{}"),
    ("array", "[]"),
    ("array-of-batches", '[{"id": "batch_abc"}]'),
    ("truncated", '{"object": "list", "data": [{"id": "batch_a'),
    ("data-not-an-array", '{"object": "list", "data": {}, "has_more": false}'),
    ("has_more-not-a-boolean", '{"object": "list", "data": [], "has_more": "no"}'),
    ("null", "null"),
    ("empty", ""),
])
def test_a_200_that_is_not_a_batch_list_does_not_mount(sim, mount, name, body):
    # A wrong base_url (a web server, a proxy's landing page) answers 200 to
    # GET /v1/batches: that is refused at once, not mounted to fail later.
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="body",
              body=body, content_type="text/html" if name == "html" else
              "application/json")
    m = mount(wait=False)
    line = assert_start_fails(m)
    assert sim.url in line and "not a batch list" in line, line
    assert "base_url" in line, line
    assert KEY not in m.stderr_text()
    # One request, not retried.
    assert [(r["method"], r["path"], r["query"]) for r in sim.log()] == [
        ("GET", "/v1/batches", "limit=1")]


def test_a_minimal_batch_list_mounts(sim, mount):
    # The check asks for a list: `data` an array (`has_more` may be left out).
    sim.fault(method="GET", path="^/v1/batches$", count=1, action="body",
              body='{"data": []}')
    m = mount()
    assert m.proc.poll() is None
    assert m.stderr_text() == ""


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


@pytest.mark.parametrize("size", [4097, 4200, 1 << 20])
def test_an_api_key_file_over_4096_bytes_is_refused(sim, mount, tmp_path, size):
    # The key first, then padding: cut at 4096 bytes it would still make a
    # (wrong) key, so the file is refused rather than cut.
    keyfile = tmp_path / "key"
    keyfile.write_bytes((KEY + "x" * size).encode()[:size])
    keyfile.chmod(0o600)
    m = mount(key=None, api_key_file=keyfile, wait=False)
    line = assert_start_fails(m)
    assert str(keyfile) in line and "4096" in line, line
    assert KEY not in m.stderr_text()
    assert sim.log() == []


def test_an_api_key_file_of_4096_bytes_is_accepted(sim, mount, tmp_path):
    keyfile = tmp_path / "key"
    data = (KEY + "\n").encode()
    keyfile.write_bytes(data + b" " * (4095 - len(data)) + b"\n")
    keyfile.chmod(0o600)
    assert keyfile.stat().st_size == 4096
    m = mount(key=None, api_key_file=keyfile)
    rc, out, err = m.sh("ls batches")
    assert rc == 0, err
    assert all(r["auth"] for r in sim.log())


def test_an_api_key_file_with_a_nul_byte_is_refused(sim, mount, tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_bytes(KEY.encode() + b"\0rest\n")
    keyfile.chmod(0o600)
    m = mount(key=None, api_key_file=keyfile, wait=False)
    line = assert_start_fails(m)
    assert str(keyfile) in line and "NUL" in line, line
    assert KEY not in m.stderr_text()
    assert sim.log() == []


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


@pytest.fixture
def started(tmp_path):
    """Factory: started(*args) runs `kimifs -f *args` (the mount point is
    tmp_path/mnt, named in args as MNT) and waits for the mount; teardown
    stops it and lazily unmounts."""
    started = []
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def start(*args):
        err = tmp_path / ("kimifs%d.stderr" % len(started))
        argv = [str(KIMIFS), "-f"] + [str(mnt) if a == "MNT" else a for a in args]
        m = run_kimifs(argv, mnt, err, kimifs_env(KEY))
        started.append(m)
        return m

    yield start
    for m in started:
        m.cleanup()


def test_a_source_argument_is_taken_as_mount_gives_it(sim, started):
    # mount.fuse3 (mount -t fuse.kimifs, fstab) calls: kimifs SOURCE MOUNTPOINT -o ...
    (bid,) = sim.seed(1, status="in_progress")
    m = started("kimifs", "MNT", "-o", "base_url=" + sim.url)
    assert os.listdir(m.batches) == [bid]
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert m.stop() == 0


def test_a_url_source_is_the_base_url_unless_one_is_given(sim, started):
    (bid,) = sim.seed(1, status="completed")
    m = started(sim.url, "MNT")
    assert os.listdir(m.batches) == [bid]
    assert m.stop() == 0
    # -o base_url wins over a source that looks like a URL
    m = started("http://127.0.0.1:%d" % closed_port(), "MNT", "-o", "base_url=" + sim.url)
    assert os.listdir(m.batches) == [bid]
    assert m.stop() == 0


def test_more_than_a_source_and_a_mountpoint_is_refused(sim, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run([str(KIMIFS), "-f", "kimifs", "extra", str(mnt),
                           "-o", "base_url=" + sim.url],
                          env=kimifs_env(), capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "kimifs: too many arguments: give [SOURCE] MOUNTPOINT"]
    assert not is_mounted(str(mnt))
    assert sim.log() == []


def test_debug_http_logs_each_request_and_no_secret(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0, options=["debug_http"])
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    lines = [l for l in m.stderr_text().splitlines() if ": http: " in l]
    assert any(re.search(r"http: GET /v1/batches\?limit=1 -> 200 \(\d+ ms\)$", l)
               for l in lines), lines
    assert any(re.search(r"http: GET /v1/batches/%s -> 200 \(\d+ ms\)$" % bid, l)
               for l in lines), lines
    assert KEY not in m.stderr_text() and "Bearer" not in m.stderr_text()


def test_without_debug_http_requests_are_not_logged(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    assert ": http: " not in m.stderr_text()


def test_version_names_kimifs_and_its_libraries():
    r = subprocess.run([str(KIMIFS), "--version"], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for name in ("kimifs", "libfuse", "libcurl", "cJSON"):
        assert re.search(r"^%s \d+\.\d+" % name, r.stdout, re.M), (name, r.stdout)


def mount8(args):
    """Run mount(8) with args; returns (status, stderr). The daemon it
    starts runs detached: callers unmount in a finally."""
    r = subprocess.run(["mount"] + args, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr


@pytest.mark.parametrize("how", ["mount -t", "fstab noauto", "fstab mount -a"])
def test_mount_8_and_fstab_mount_it(sim, tmp_path, how):
    """mount(8) and fstab reach kimifs through mount.fuse3, which calls
    `kimifs SOURCE MOUNTPOINT -o OPTIONS`. With `-t fuse` and the program's
    path before '#' that is the very call `-t fuse.kimifs` makes once kimifs
    is installed, without installing it."""
    (bid,) = sim.seed(1, status="in_progress")
    keyfile = tmp_path / "kimi.key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    source = "%s#kimifs" % KIMIFS
    opts = "base_url=%s,api_key_file=%s,_netdev" % (sim.url, keyfile)
    fstab = tmp_path / "fstab"
    if how == "mount -t":
        args = ["-t", "fuse", source, str(mnt), "-o", opts]
    elif how == "fstab noauto":
        fstab.write_text("%s %s fuse %s,noauto,x-systemd.automount 0 0\n" % (source, mnt, opts))
        args = ["-T", str(fstab), str(mnt)]
    else:
        fstab.write_text("%s %s fuse %s 0 0\n" % (source, mnt, opts))
        args = ["-a", "-T", str(fstab)]
    try:
        rc, err = mount8(args)
        assert rc == 0, err
        assert is_mounted(str(mnt))
        assert os.listdir(mnt / "batches") == [bid]
        assert read_text(mnt / "batches" / bid / "status") == "in_progress\n"
        with open("/proc/self/mountinfo") as f:
            assert any(" %s " % mnt in l and " fuse.kimifs kimifs " in l for l in f)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    wait_for(lambda: not is_mounted(str(mnt)), timeout=10, what="the unmount")


@pytest.mark.parametrize("flag, expected", [("--help", "base_url"), ("--version", "kimifs")])
def test_help_and_version(flag, expected):
    r = subprocess.run([str(KIMIFS), flag], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert expected in (r.stdout + r.stderr).lower()


def test_help_gives_the_range_of_each_number():
    r = subprocess.run([str(KIMIFS), "--help"], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for name, span in RANGES.items():
        at = text.index("-o %s=" % name)
        assert span in text[at:text.index(" -o ", at + 1)], name
    assert "4096 bytes" in text


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
