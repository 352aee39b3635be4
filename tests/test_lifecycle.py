"""The daemon's life: signals while the mount is busy, a crash (kill -9)
and the recovery the README describes, and stopping while a request to
the server hangs. test_mount.py covers the plain SIGTERM and SIGINT of an
idle mount (exit status 0, unmounted)."""

import errno
import os
import signal
import subprocess
import time

import pytest

from conftest import (KIMIFS, STOP_TIMEOUT, errno_of, is_mounted,
                      kimifs_env, read_text, run_kimifs, sh, wait_for)

SLACK = 5       # seconds a stop may take beyond the API timeout


@pytest.fixture
def remount(tmp_path):
    """Factory: remount(path, server) starts kimifs on an existing
    mountpoint (the mount fixture always makes a new one) and waits for
    the mount; teardown stops it and lazily unmounts."""
    started = []

    def start(path, server, options=()):
        err = tmp_path / ("remount%d.stderr" % len(started))
        args = [str(KIMIFS), "-f", "-o", "base_url=" + server.url]
        for o in options:
            args += ["-o", o]
        args.append(str(path))
        m = run_kimifs(args, path, err, kimifs_env(server.key))
        started.append(m)
        return m

    yield start
    for m in started:
        m.cleanup()


def fusermount(*args):
    r = subprocess.run(["fusermount3"] + list(args), capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_unmounts_a_busy_mount(sim, mount, sig):
    """A shell sits in the tree and a file is held open: the signal still
    unmounts at once and the daemon exits 0; the holders get an error,
    not a hang."""
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    holder = subprocess.Popen(["bash", "-c", "cd batches/%s && exec sleep 600" % bid],
                              cwd=m.path, start_new_session=True)
    try:
        fd = os.open(m.batch(bid, "status"), os.O_RDONLY)
        try:
            wait_for(lambda: os.readlink("/proc/%d/cwd" % holder.pid).endswith(bid),
                     timeout=10, what="the shell to enter the tree")
            t0 = time.monotonic()
            assert m.stop(sig, timeout=SLACK) == 0
            assert time.monotonic() - t0 < SLACK
            assert not is_mounted(m.path)
            assert os.listdir(m.path) == []
            # the open file now belongs to a dead connection
            assert errno_of(os.pread, fd, 100, 0) == errno.ENOTCONN
        finally:
            # close's flush cannot reach the daemon either; the fd is
            # released all the same
            assert errno_of(os.close, fd) in (0, errno.ENOTCONN)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_directories_are_open_and_partly_read(sim, mount, sig):
    """Directories held open mid-listing (a `find` or `ls` interrupted by
    the signal) and open files are freed at exit: status 0, and under the
    sanitizers no leak report (the fixture fails the test on one)."""
    ids = sim.seed(300, status="in_progress")
    m = mount()
    batches = os.scandir(m.batches)
    first = next(batches)            # one getdents: a part of the listing
    assert first.name in ids
    batch = os.scandir(m.batch(ids[0]))
    next(batch)
    f = open(m.batch(ids[0], "status"), "rb")
    try:
        assert m.stop(sig) == 0
        assert not is_mounted(m.path)
    finally:
        for h in (batches, batch, f):
            try:
                h.close()
            except OSError:
                pass


def test_after_kill_9_the_mountpoint_says_so_and_can_be_mounted_again(sim, mount, remount):
    ids = sim.seed(3, status="in_progress")
    m = mount()
    assert sorted(os.listdir(m.batches)) == sorted(ids)
    m.expect_running = False
    m.proc.kill()
    assert m.proc.wait(STOP_TIMEOUT) == -signal.SIGKILL

    # a dead FUSE mount: still in the mount table, every access ENOTCONN;
    # a stat of the mount point itself once the kernel's copy of the root's
    # attributes expires (1 s, docs/filesystem.md)
    assert is_mounted(m.path)
    assert errno_of(os.listdir, m.path) == errno.ENOTCONN
    wait_for(lambda: errno_of(os.stat, m.path) == errno.ENOTCONN, timeout=1 + 5,
             what="stat of the dead mount point to say ENOTCONN")
    assert errno_of(os.listdir, m.batches) == errno.ENOTCONN
    rc, out, err = sh("ls %s" % m.batches)
    assert rc != 0 and "Transport endpoint is not connected" in err, err

    # the README's recovery: fusermount3 -u, then mount again
    rc, err = fusermount("-u", m.path)
    assert rc == 0, err
    assert not is_mounted(m.path)
    assert os.listdir(m.path) == []
    m2 = remount(m.path, sim)
    assert sorted(os.listdir(m2.batches)) == sorted(ids)
    assert read_text(os.path.join(m2.batches, ids[0], "status")) == "in_progress\n"
    assert m2.stop() == 0
    assert not is_mounted(m.path)


def test_a_lazy_unmount_of_a_dead_mount_works_too(sim, mount, remount):
    ids = sim.seed(1, status="completed")
    m = mount()
    assert os.listdir(m.batches) == ids
    # a shell still sits inside the dead mount: -z detaches it anyway, and
    # the mountpoint is usable at once
    holder = subprocess.Popen(["bash", "-c", "cd batches && exec sleep 600"],
                              cwd=m.path, start_new_session=True)
    try:
        wait_for(lambda: os.readlink("/proc/%d/cwd" % holder.pid).endswith("batches"),
                 timeout=10, what="the shell to enter the tree")
        m.expect_running = False
        m.proc.kill()
        m.proc.wait(STOP_TIMEOUT)
        assert errno_of(os.listdir, m.path) == errno.ENOTCONN
        rc, err = fusermount("-u", "-z", m.path)
        assert rc == 0, err
        assert not is_mounted(m.path)
        m2 = remount(m.path, sim)
        assert os.listdir(m2.batches) == ids
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("lazy_unmount_first", [True, False],
                         ids=["fusermount-z-then-SIGTERM", "SIGTERM"])
def test_stopping_while_a_request_hangs_is_bounded(sim, mount, lazy_unmount_first):
    timeout = 3
    hung, other = sim.seed(2, status="in_progress")
    m = mount(timeout=timeout)
    sim.fault(path="/v1/batches/%s$" % hung, count=-1, action="hang", seconds=600)
    reader = subprocess.Popen(["cat", m.batch(hung, "status")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for(lambda: sim.requests("GET", "/v1/batches/" + hung), timeout=10,
                 what="the request that hangs to reach the server")
        assert reader.poll() is None            # blocked in the daemon
        t0 = time.monotonic()
        if lazy_unmount_first:
            rc, err = fusermount("-u", "-z", m.path)
            assert rc == 0, err
            assert not is_mounted(m.path)
        m.expect_running = False
        m.proc.send_signal(signal.SIGTERM)
        try:
            rc = m.proc.wait(timeout + SLACK)
        except subprocess.TimeoutExpired:
            pytest.fail("kimifs did not exit within %ss of SIGTERM with a request "
                        "hanging; stderr:\n%s" % (timeout + SLACK, m.stderr_text()[-3000:]))
        assert rc == 0, m.stderr_text()[-3000:]
        assert time.monotonic() - t0 < timeout + SLACK
        assert not is_mounted(m.path)
        # the blocked reader was answered (with an error), not left hanging
        try:
            out, err = reader.communicate(timeout=SLACK)
        except subprocess.TimeoutExpired:
            pytest.fail("the reader blocked in the hung request never returned")
        assert reader.returncode != 0
        assert out == b""
    finally:
        if reader.poll() is None:
            reader.kill()
        reader.wait()
