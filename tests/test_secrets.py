"""Secrets and access: the API key never leaks (process listing, the
daemon's environment, its debug log, the tree, ctl messages), is never
taken from the command line, is read only from a private file; TLS is
verified unless `-o insecure` says otherwise, loudly; and only the
mounting user gets in unless `-o allow_other` is asked for, with the modes
enforced by the kernel (`default_permissions`).

test_mount.py already covers: no key, a wrong key, an unreachable URL, the
basics of api_key_file (0600 accepted, 0644/0640/0604 refused) and a first
look at the key in the log and the command line."""

import errno
import json
import os
import re
import secrets
import select
import shlex
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import (KEY, KIMIFS, PYTHON, Mount, is_mounted, kimifs_env,
                      read_text, try_write)

NOBODY = 65534


def new_secret():
    return "sk-SECRET-" + secrets.token_hex(16)


def leaks(secret, text):
    """The places in `text` where the key, or a recognisable part of it,
    shows (its random half is enough to rebuild most of it)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    tail = secret[len("sk-SECRET-"):]
    found = []
    for needle in (secret, tail, tail[:12], tail[-12:]):
        i = text.find(needle)
        if i >= 0:
            found.append(text[max(0, i - 80):i + len(needle) + 20])
    return found


def mount_options(path):
    """(mount options, super options, fstype) of the mount at `path`, from
    /proc/self/mountinfo."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].encode().decode("unicode_escape")
            if mp != path:
                continue
            sep = fields.index("-")
            return (set(fields[5].split(",")), set(fields[sep + 3].split(",")),
                    fields[sep + 1])
    pytest.fail("%s is not in /proc/self/mountinfo" % path)


def first_line(m):
    """kimifs exited non-zero by itself, mounted nothing; returns its
    stderr's first line that is not a warning."""
    rc = m.wait_exit()
    err = m.stderr_text()
    assert rc != 0, err
    assert not is_mounted(m.path)
    assert os.listdir(m.path) == []
    lines = [l for l in err.splitlines() if l.strip() and "warning:" not in l]
    assert lines, "kimifs refused without saying why"
    return lines[0]


@pytest.fixture
def spawn(tmp_path):
    """Factory: spawn(argv, env) runs kimifs with exactly these arguments
    (for command lines the mount fixture cannot build); teardown stops it
    and lazily unmounts whatever it mounted."""
    started = []

    def start(argv, env, mountpoint):
        err = tmp_path / ("spawn%d.stderr" % len(started))
        with open(err, "wb") as f:
            proc = subprocess.Popen([str(KIMIFS)] + argv, env=env,
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=f)
        m = Mount(mountpoint, proc, err, argv)
        started.append(m)
        return m

    yield start
    for m in started:
        m.cleanup()


# --------------------------------------------------------------------------
# The key never shows


def exercise_everything(m, server, secret):
    """Drive the mount through success and every kind of failure; returns
    the ids used. Each failure is checked to have really happened, so that
    the later leak checks look at logs that hold those paths."""
    done, r1, r2, r3, val = server.seed(
        5, status=["completed", "in_progress", "in_progress", "in_progress", "validating"],
        metadata={"owner": "team-a"})

    # listing and reads
    rc, out, err = m.sh("ls -l batches && cat batches/*/status batches/*/batch.json "
                        "batches/*/request_counts/* batches/*/metadata/*")
    assert rc == 0, err
    assert "in_progress\n" in out and '"owner": "team-a"' in out

    # a cancel that works, one refused by kimifs, one refused by the server
    assert try_write(m.batch(r1, "ctl"), b"cancel\n") == 0
    assert try_write(m.batch(done, "ctl"), b"cancel\n") == errno.EPERM
    server.state(r2, "completed")            # behind kimifs's back: the server says 400
    assert try_write(m.batch(r2, "ctl"), b"cancel\n") == errno.EPERM
    assert read_text(m.batch(r2, "ctl")).startswith("cancel: failed: 400 Cannot cancel")
    assert try_write(m.batch(r1, "ctl"), b"bogus\n") == errno.EINVAL

    # the key is revoked while mounted: 401 everywhere
    server.config(key="sk-revoked-" + secrets.token_hex(4))
    rc, out, err = m.sh("cat batches/%s/status" % r3)
    assert rc != 0 and os.strerror(errno.EACCES) in err, (rc, out, err)
    rc, out, err = m.sh("ls batches/batch_never_seen_before")
    assert rc != 0 and os.strerror(errno.EACCES) in err, (rc, out, err)
    assert try_write(m.batch(r3, "ctl"), b"refresh\n") == errno.EACCES
    assert read_text(m.batch(r3, "ctl")).startswith("refresh: failed")
    assert any(r["status"] == 401 for r in server.log())
    server.config(key=secret)

    # a server that does not answer: time-outs (timeout=2 on this mount)
    server.fault(method="GET", path=r"/v1/batches/batch_hangs_forever$", count=-1,
                 action="hang", seconds=60)
    server.fault(method="POST", path=r"/cancel$", count=-1, action="hang", seconds=60)
    rc, out, err = m.sh("cat batches/batch_hangs_forever/status")
    assert rc != 0 and os.strerror(errno.ETIMEDOUT) in err, (rc, out, err)
    assert try_write(m.batch(val, "ctl"), b"cancel\n") == errno.ETIMEDOUT
    assert read_text(m.batch(val, "ctl")).startswith("cancel: failed")
    server.clear_faults()

    # 5xx with the server's message, served from the cached copy
    server.fault(method="GET", path=r"/v1/batches/", count=-1, action="status",
                 status=503, message="overloaded-7731")
    assert read_text(m.batch(r3, "status")) == "in_progress\n"
    server.clear_faults()
    return [done, r1, r2, r3, val]


@pytest.mark.parametrize("key_source", ["environment", "api_key_file"])
def test_the_key_never_shows_anywhere(private_sim, mount, tmp_path, key_source):
    secret = new_secret()
    server = private_sim(secret)
    if key_source == "environment":
        m = mount(key=secret, server=server, cache_ttl=0, timeout=2, debug=True,
                  options=["retries=1"])
    else:
        keyfile = tmp_path / "kimi.key"
        keyfile.write_text(secret + "\n")
        keyfile.chmod(0o600)
        m = mount(key=None, api_key_file=keyfile, server=server, cache_ttl=0,
                  timeout=2, debug=True, options=["retries=1"])
    pid = m.proc.pid
    ids = exercise_everything(m, server, secret)

    # the process listing and the process's own records
    # (the simulator is the one process that was given the key as an
    # argument: its line is left out)
    ps = subprocess.run(["ps", "-eww", "-o", "pid=,args="], capture_output=True,
                        text=True, timeout=10).stdout
    assert re.search(r"^\s*%d .*kimifs" % pid, ps, re.M), ps
    ps = [l for l in ps.splitlines() if l.split()[0] != str(server.proc.pid)]
    assert leaks(secret, "\n".join(ps)) == []
    ps_ef = subprocess.run(["ps", "-efww"], capture_output=True, text=True, timeout=10).stdout
    ps_ef = [l for l in ps_ef.splitlines()[1:] if l.split()[1] != str(server.proc.pid)]
    assert any(l.split()[1] == str(pid) for l in ps_ef)
    assert leaks(secret, "\n".join(ps_ef)) == []
    for name in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            data = f.read()
        assert data, name
        assert leaks(secret, data) == [], name
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/environ" % (pid, tid), "rb") as f:
            assert leaks(secret, f.read()) == []

    # the tree: every file, ctl included (grep must have searched: it finds
    # the ids, and it has no error to report); `wait` of a running batch
    # has nothing to give yet (EAGAIN to grep's non-blocking read)
    rc, out, err = m.sh("grep -rlF -- %s ." % shlex.quote(ids[1]))
    assert rc == 0 and "/batch.json" in out, (rc, out, err)
    for needle in (secret, secret[len("sk-SECRET-"):]):
        rc, out, err = m.sh("grep -rlF -- %s ." % shlex.quote(needle))
        assert (rc, out, err) == (1, "", "")

    # what ctl tells the user after failures
    outcomes = m.sh("cat batches/*/ctl")[1]
    assert "failed" in outcomes and "ok" in outcomes
    assert leaks(secret, outcomes) == []

    # the debug log, once the daemon is done writing it
    assert m.stop() == 0
    err = m.stderr_text()
    assert re.search(r"GET /v1/batches\S* -> 200 \(\d+ ms\)", err), err[-2000:]
    assert re.search(r"POST /v1/batches/\S+/cancel -> 200", err), err[-2000:]
    assert "unique:" in err or "opcode" in err.lower(), "no libfuse debug output"
    for seen in ("Invalid Authentication", "Cannot cancel", "overloaded-7731"):
        assert seen in err, seen          # the failures were logged ...
    assert leaks(secret, err) == []       # ... but never the key
    assert "Bearer" not in err and "Authorization" not in err


# --------------------------------------------------------------------------
# Never from the command line


@pytest.mark.parametrize("form", ["-o api_key=", "-o ro,api_key=", "-oapi_key="])
@pytest.mark.parametrize("env_key", [True, False])
def test_api_key_option_is_refused(sim, spawn, tmp_path, form, env_key):
    secret = new_secret()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    argv = ["-f", "-o", "base_url=" + sim.url] + shlex.split(form + secret) + [str(mnt)]
    m = spawn(argv, kimifs_env(KEY if env_key else None), mnt)
    line = first_line(m)
    assert "MOONSHOT_API_KEY" in line or "api_key_file" in line, line
    assert leaks(secret, m.stderr_text()) == []
    assert sim.log() == []


# --------------------------------------------------------------------------
# The key file


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606])
def test_key_file_open_to_others_is_refused_naming_chmod(sim, mount, tmp_path, mode):
    secret = new_secret()
    keyfile = tmp_path / "kimi.key"
    keyfile.write_text(secret + "\n")
    keyfile.chmod(mode)
    m = mount(key=None, api_key_file=keyfile, wait=False)
    line = first_line(m)
    assert "chmod" in line and str(keyfile) in line, line
    assert leaks(secret, m.stderr_text()) == []
    assert sim.log() == []


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_file_is_accepted(private_sim, mount, tmp_path, mode):
    secret = new_secret()
    server = private_sim(secret)
    ids = server.seed(2, status="in_progress")
    keyfile = tmp_path / "kimi.key"
    keyfile.write_text(secret + "\n")
    keyfile.chmod(mode)
    m = mount(key=None, api_key_file=keyfile, server=server)
    assert sorted(os.listdir(m.batches)) == sorted(ids)
    log = server.log()
    assert log and all(r["auth"] for r in log)


# --------------------------------------------------------------------------
# TLS


def make_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


class TlsProxy:
    """HTTPS in front of the plain-HTTP simulator, with a self-signed
    certificate that no client should trust by default."""

    def __init__(self, target_port, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.handshakes_failed = 0
        self.handshakes_done = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        self.handshakes_done += 1
        tls.settimeout(None)
        try:
            up = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            up.settimeout(None)
        except OSError:
            tls.close()
            return
        try:
            while True:
                ready, _, _ = select.select([tls, up], [], [], 60)
                if not ready:
                    return
                if tls in ready:
                    data = tls.recv(65536)
                    if not data:
                        return
                    while tls.pending():
                        data += tls.recv(tls.pending())
                    up.sendall(data)
                if up in ready:
                    data = up.recv(65536)
                    if not data:
                        return
                    tls.sendall(data)
        except (ssl.SSLError, OSError):
            return
        finally:
            tls.close()
            up.close()

    def close(self):
        self.lsock.close()


@pytest.fixture
def tls_proxy(sim, tmp_path):
    cert, key = make_certificate(tmp_path)
    port = int(sim.url.rsplit(":", 1)[1])
    p = TlsProxy(port, cert, key)
    yield p
    p.close()


def test_insecure_warns_loudly_about_tls(sim, mount):
    sim.seed(1)
    plain = mount()
    insecure = mount(options=["insecure"])
    assert os.listdir(insecure.batches)
    warnings = [l for l in insecure.stderr_text().splitlines() if "TLS" in l]
    assert warnings and all("warning" in l.lower() for l in warnings), insecure.stderr_text()
    assert "TLS" not in plain.stderr_text()


def test_https_to_a_plain_http_server_does_not_mount(sim, mount):
    port = sim.url.rsplit(":", 1)[1]
    m = mount(base_url="https://127.0.0.1:%s" % port, wait=False)
    line = first_line(m)
    assert "https://127.0.0.1:%s" % port in line, line
    assert re.search(r"SSL|TLS|reach", line), line
    assert sim.log() == []


def test_a_self_signed_certificate_is_refused(sim, mount, tls_proxy):
    sim.seed(1)
    m = mount(base_url="https://127.0.0.1:%d" % tls_proxy.port, wait=False)
    line = first_line(m)
    assert re.search(r"certificate", line, re.I), line
    assert tls_proxy.handshakes_done == 0
    assert sim.log() == []          # not one request got through


def test_insecure_accepts_a_self_signed_certificate(sim, mount, tls_proxy):
    ids = sim.seed(2, status="in_progress")
    m = mount(base_url="https://127.0.0.1:%d" % tls_proxy.port, options=["insecure"])
    assert sorted(os.listdir(m.batches)) == sorted(ids)
    assert read_text(m.batch(ids[0], "status")) == "in_progress\n"
    assert tls_proxy.handshakes_done >= 1
    assert all(r["auth"] for r in sim.log())


# --------------------------------------------------------------------------
# Who gets in


CHILD = r"""
import json, os, sys
fd = int(sys.argv[1])
out = []
for kind, path, data in json.loads(sys.argv[2]):
    try:
        if kind == "stat":
            st = os.stat(path, dir_fd=fd)
            res = [st.st_mode, st.st_uid]
        elif kind == "list":
            d = os.open(path, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                res = sorted(os.listdir(d))
            finally:
                os.close(d)
        elif kind == "read":
            f = os.open(path, os.O_RDONLY, dir_fd=fd)
            try:
                res = os.read(f, 65536).decode()
            finally:
                os.close(f)
        else:
            f = os.open(path, os.O_WRONLY, dir_fd=fd)
            try:
                res = os.write(f, data.encode())
            finally:
                os.close(f)
        out.append([0, res])
    except OSError as e:
        out.append([e.errno, None])
print(json.dumps(out))
"""


def as_nobody(root, ops):
    """Run `ops` ([kind, path relative to the mount root, data]) in a
    process of user and group nobody; returns [errno, result] per op. The
    process starts from a descriptor of the mount root that root opened,
    so the test's private temporary directories are not in its way."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        r = subprocess.run([PYTHON, "-c", CHILD, str(fd), json.dumps(ops)],
                           user=NOBODY, group=NOBODY, extra_groups=[], pass_fds=(fd,),
                           cwd="/", env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_only_the_mounting_user_gets_in_by_default(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    opts, sopts, fstype = mount_options(m.path)
    assert fstype == "fuse.kimifs" or fstype.startswith("fuse"), fstype
    assert "default_permissions" in sopts, sopts
    assert "allow_other" not in sopts | opts, (opts, sopts)
    assert "user_id=%d" % os.getuid() in sopts, sopts
    # everything belongs to the mounting user; only ctl, batches/ and
    # files/ (which take uploads) are writable, by that user alone
    for rel, mode in (("", 0o40555), ("batches", 0o40755), ("files", 0o40755),
                      ("batches/" + bid, 0o40555),
                      ("batches/%s/status" % bid, 0o100444),
                      ("batches/%s/ctl" % bid, 0o100600)):
        st = os.stat(os.path.join(m.path, rel))
        assert (st.st_mode, st.st_uid, st.st_gid) == (mode, os.getuid(), os.getgid()), rel
    # the owner can do everything the modes allow ...
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    # ... nobody else can even look
    sim.clear_log()
    res = as_nobody(m.path, [["stat", "batches", None],
                             ["list", "batches", None],
                             ["read", "batches/%s/status" % bid, None],
                             ["write", "batches/%s/ctl" % bid, "cancel\n"]])
    assert [e for e, _ in res] == [errno.EACCES] * 4, res
    assert sim.log() == []


def test_allow_other_passes_through_and_modes_are_enforced(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=["allow_other"], cache_ttl=3600)
    opts, sopts, fstype = mount_options(m.path)
    assert "allow_other" in sopts | opts, (opts, sopts)
    assert "default_permissions" in sopts, sopts
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
    sim.clear_log()
    res = as_nobody(m.path, [["stat", "batches", None],
                             ["list", "batches", None],
                             ["read", "batches/%s/status" % bid, None],
                             ["stat", "batches/%s/ctl" % bid, None],
                             ["read", "batches/%s/ctl" % bid, None],
                             ["write", "batches/%s/ctl" % bid, "cancel\n"],
                             ["write", "batches/%s/status" % bid, "cancelled\n"]])
    stat_b, list_b, read_s, stat_c, read_c, write_c, write_s = res
    assert stat_b[0] == 0 and stat_b[1][1] == os.getuid()
    assert list_b == [0, [bid]]
    assert read_s == [0, "in_progress\n"]
    assert stat_c[0] == 0 and stat_c[1][0] & 0o7777 == 0o600
    # ctl is 0600 and belongs to the mounting user: the kernel says no
    assert read_c[0] == errno.EACCES, res
    assert write_c[0] == errno.EACCES, res
    assert write_s[0] in (errno.EACCES, errno.EROFS), res
    assert [r for r in sim.log() if r["method"] == "POST"] == []
    assert read_text(m.batch(bid, "status")) == "in_progress\n"
