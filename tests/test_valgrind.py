"""The daemon under valgrind's memcheck: every path a user can take (the
listing over several pages, values, batch.json, cancel and its refusals,
bad ctl input, 404s, server failures with and without a cached copy,
malformed and cut answers) runs without a memory error, and a SIGTERM
leaves no definite or indirect leak.

The binary is KIMIFS_BIN, or build/kimifs when KIMIFS_BIN is a sanitizer
build (valgrind cannot run those), started
with a valgrind command prefix; the mount fixture cannot take one, so the
test starts the process itself with the same teardown guarantees."""

import errno
import os
import shutil
import signal
import subprocess

import pytest

from conftest import (KEY, KIMIFS, REPO, Mount, is_mounted, kimifs_env,
                      read_text, try_write, wait_for)

VALGRIND = shutil.which("valgrind")
# valgrind cannot run an AddressSanitizer build: use the normal one then.
BINARY = (REPO / "build" / "kimifs"
          if KIMIFS.exists() and b"__asan_init" in KIMIFS.read_bytes()
          else KIMIFS)
VG_START_TIMEOUT = 30       # valgrind is slow to start a program
VG_STOP_TIMEOUT = 120       # and slow to check the heap at exit
API_TIMEOUT = 20            # -o timeout, generous: everything runs ~30x slower


@pytest.fixture
def vg_mount(sim, tmp_path):
    """Start kimifs under valgrind on a fresh mountpoint and wait for the
    mount; returns (Mount, path of valgrind's log). Teardown stops it and
    lazily unmounts, whatever state it is in."""
    if not VALGRIND:
        pytest.fail("valgrind is not installed")
    if not BINARY.exists():
        pytest.fail("kimifs binary not found: %s" % BINARY)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    vglog = tmp_path / "valgrind.log"
    stderr = tmp_path / "kimifs.stderr"
    args = [VALGRIND, "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
            "--track-fds=no", "--log-file=%s" % vglog,
            str(BINARY), "-f",
            "-o", "base_url=" + sim.url, "-o", "cache_ttl=0", "-o", "page_size=2",
            "-o", "timeout=%d" % API_TIMEOUT, "-o", "retries=1", str(mnt)]
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(args, env=kimifs_env(KEY), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    m = Mount(mnt, proc, stderr, args)
    try:
        def mounted():
            if proc.poll() is not None:
                pytest.fail("kimifs under valgrind exited with %s before mounting:\n%s\n%s"
                            % (proc.returncode, m.stderr_text(), vglog.read_text()))
            return os.path.ismount(m.path)

        wait_for(mounted, timeout=VG_START_TIMEOUT, interval=0.1,
                 what="kimifs under valgrind to mount")
        sim.clear_log()
        yield m, vglog
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(VG_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if is_mounted(m.path):
            subprocess.run(["fusermount3", "-u", "-z", m.path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def statuses(sim, path):
    return [r["status"] for r in sim.requests("GET", path)]


def test_no_memory_errors_and_no_leaks(sim, vg_mount):
    m, vglog = vg_mount
    done, running, other, gone, refused = sim.seed(
        5, status=["completed", "in_progress", "in_progress", "in_progress", "validating"],
        metadata={"owner": "team-a", "run": "7"}, failed=2)

    # the listing, over three pages
    assert sorted(os.listdir(m.batches)) == sorted([done, running, other, gone, refused])
    assert len(sim.requests("GET", "/v1/batches")) == 3

    # MOUNT/events: a reader whose read waits (answered line by line,
    # ended by the SIGTERM below) and one that never waits
    cat = subprocess.Popen(["cat", "events"], cwd=m.path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    events = os.open(os.path.join(m.path, "events"), os.O_RDONLY | os.O_NONBLOCK)

    # every value, batch.json, counts, metadata
    rc, out, err = m.sh("cat batches/*/status batches/*/*_at batches/*/*_id "
                        "batches/*/request_counts/* batches/*/metadata/* batches/*/batch.json")
    assert rc == 0, err
    assert "completed\n" in out and '"owner": "team-a"' in out
    assert m.sh("ls -l batches/%s batches/%s/metadata" % (done, done))[0] == 0

    # cancel: accepted; refused by kimifs (final); refused by the server
    # (changed behind kimifs's back: 400, then the one retrieval)
    assert try_write(m.batch(running, "ctl"), b"cancel\n") == 0
    assert read_text(m.batch(running, "ctl")) == "cancel: ok\n"
    # (cancelled once the simulator's cancel_delay has passed: valgrind is slow)
    assert read_text(m.batch(running, "status")) in ("cancelling\n", "cancelled\n")
    assert try_write(m.batch(running, "ctl"), b"cancel\n") == 0     # no request
    assert b'"kind":"cancel","id":"%s"' % running.encode() in os.read(events, 1 << 16)
    os.close(events)
    assert try_write(m.batch(done, "ctl"), b"cancel\n") == errno.EPERM
    sim.state(refused, "failed")
    assert try_write(m.batch(refused, "ctl"), b"cancel\n") == errno.EPERM
    assert read_text(m.batch(refused, "ctl")).startswith("cancel: failed: 400 ")

    # bad ctl input: not a command, a non-zero offset, too long
    assert try_write(m.batch(other, "ctl"), b"bogus\n") == errno.EINVAL
    assert try_write(m.batch(other, "ctl"), b"cancel", offset=3) == errno.EINVAL
    assert try_write(m.batch(other, "ctl"), b" " * 5000 + b"cancel") == errno.EINVAL
    assert try_write(m.batch(other, "ctl"), b"refresh\n") == 0
    assert try_write(m.batch(other, "status"), b"x") == errno.EROFS

    # unknown names: a 404 (and its remembered answer), a name that cannot
    # be an id
    rc, out, err = m.sh("cat batches/batch_nosuchbatch/status")
    assert rc != 0 and os.strerror(errno.ENOENT) in err
    assert statuses(sim, "/v1/batches/batch_nosuchbatch") == [404]
    assert m.sh("cat 'batches/not an id/status'")[0] != 0

    # a batch deleted on the server: the 404 drops the cached copy
    sim.delete(gone)
    assert m.sh("cat batches/%s/status" % gone)[0] != 0

    # 500s with a cached copy: the stale path serves it
    sim.fault(method="GET", path="/v1/batches/%s$" % other, count=-1, action="status",
              status=500, message="valgrind 500")
    assert read_text(m.batch(other, "status")) == "in_progress\n"
    assert statuses(sim, "/v1/batches/" + other)[-2:] == [500, 500]
    # ... and the listing's stale path
    sim.fault(method="GET", path="^/v1/batches$", count=-1, action="status", status=503)
    assert other in os.listdir(m.batches)
    sim.clear_faults()

    # failures without a cached copy: 500, malformed JSON, a cut answer, a
    # dropped connection, 429, 401
    cases = [
        ({"action": "status", "status": 500}, errno.EIO),
        ({"action": "body", "body": "{\"id\": \"batch_x\", \"status\": "}, errno.EIO),
        ({"action": "body", "body": {"id": 7, "status": []}}, errno.EIO),
        ({"action": "truncate"}, errno.EIO),
        ({"action": "drop"}, errno.EIO),
        ({"action": "status", "status": 429, "headers": {"Retry-After": "0"}}, errno.EAGAIN),
        ({"action": "status", "status": 401}, errno.EACCES),
    ]
    for i, (fault, expected) in enumerate(cases):
        name = "batch_fault%d" % i
        sim.fault(path="/v1/batches/%s$" % name, count=-1, **fault)
        assert errno_of_stat(m.batch(name)) == expected, fault
        sim.clear_faults()

    # a cancel whose answer is an error object with 200
    sim.fault(method="POST", count=1, action="body",
              body={"error": {"message": "odd", "type": "server_error"}})
    assert try_write(m.batch(other, "ctl"), b"cancel\n") == errno.EIO
    sim.clear_faults()
    assert m.sh("cat batches/*/ctl")[0] == 0

    # SIGTERM: a clean exit, and valgrind found nothing
    m.expect_running = False
    m.proc.send_signal(signal.SIGTERM)
    try:
        rc = m.proc.wait(VG_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("kimifs under valgrind did not exit within %ss of SIGTERM"
                    % VG_STOP_TIMEOUT)
    out, err = cat.communicate(timeout=VG_STOP_TIMEOUT)
    assert cat.returncode == 1 and b"Transport endpoint is not connected" in err
    assert b'"kind":"cancel","id":"%s"' % running.encode() in out
    report = vglog.read_text()
    assert "Memcheck" in report, report
    assert rc == 0, "exit status %s\n%s\n%s" % (rc, m.stderr_text()[-2000:], report)
    assert "ERROR SUMMARY: 0 errors" in report, report
    assert not is_mounted(m.path)


def errno_of_stat(path):
    try:
        os.stat(path)
    except OSError as e:
        return e.errno
    return 0
