"""Mounting as an unprivileged user, the way most people run kimifs: their
own key file (0600, theirs), their own mount point, `fusermount3 -u` to
unmount; with and without `-o allow_other`. CI runs as root, so the test
makes the user (`kimifs-test`), lets everyone open /dev/fuse, and, for
allow_other, sets `user_allow_other` in /etc/fuse.conf, each for the test
only."""

import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile

import pytest

from conftest import KEY, KIMIFS, is_mounted, run_kimifs

USER = "kimifs-test"

# /dev/fuse's mode and /etc/fuse.conf are the machine's: these tests change
# them, so one worker runs them all (scripts/test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("machine-settings")


@pytest.fixture(scope="module")
def user():
    """The test user's passwd entry, made when missing; /dev/fuse opens for
    everyone meanwhile (as on a desktop Debian, where udev makes it 0666),
    and gets its mode back afterwards."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", USER], check=True,
                       capture_output=True)
        pw = pwd.getpwnam(USER)
    mode = os.stat("/dev/fuse").st_mode & 0o7777
    os.chmod("/dev/fuse", mode | 0o666)
    yield pw
    os.chmod("/dev/fuse", mode)


@pytest.fixture
def home(user):
    """A private directory of the user's, outside root's own temp dirs,
    with the user's key file in it."""
    d = tempfile.mkdtemp(prefix="kimifs-user-", dir="/tmp")
    os.chown(d, user.pw_uid, user.pw_gid)
    os.chmod(d, 0o700)
    key = os.path.join(d, "kimi.key")
    with open(key, "w") as f:
        f.write(KEY + "\n")
    os.chown(key, user.pw_uid, user.pw_gid)
    os.chmod(key, 0o600)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    os.chown(mnt, user.pw_uid, user.pw_gid)
    yield d
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def user_allow_other():
    """/etc/fuse.conf with user_allow_other for the test; put back after."""
    path = "/etc/fuse.conf"
    before = open(path).read() if os.path.exists(path) else None
    with open(path, "a") as f:
        f.write("\nuser_allow_other\n")
    yield
    if before is None:
        os.unlink(path)
    else:
        with open(path, "w") as f:
            f.write(before)


def as_user(user, cmd, cwd):
    """Run a shell command as the user; (status, stdout, stderr)."""
    r = subprocess.run(["bash", "-c", cmd], user=user.pw_uid, group=user.pw_gid,
                       extra_groups=[], cwd=cwd, capture_output=True, text=True,
                       timeout=60, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return r.returncode, r.stdout, r.stderr


def start_as_user(sim, user, home, *options):
    """kimifs run by the user in the foreground on home/mnt."""
    mnt = os.path.join(home, "mnt")
    argv = [str(KIMIFS), "-f", "-o", "base_url=" + sim.url,
            "-o", "api_key_file=" + os.path.join(home, "kimi.key")]
    for o in options:
        argv += ["-o", o]
    argv.append(mnt)
    return run_kimifs(argv, mnt, os.path.join(home, "kimifs.stderr"),
                      {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, user=user.pw_uid,
                      group=user.pw_gid, extra_groups=[], cwd=home)


@pytest.mark.parametrize("allow_other", [False, True], ids=["private", "allow_other"])
def test_a_user_mounts_uses_and_unmounts_it(sim, user, home, request, allow_other):
    (bid,) = sim.seed(1, status="in_progress")
    if allow_other:
        request.getfixturevalue("user_allow_other")
    m = start_as_user(sim, user, home, *(["allow_other"] if allow_other else []))
    try:
        st = os.lstat(m.path) if allow_other else None
        rc, out, err = as_user(user, "ls mnt/batches; cat mnt/batches/%s/status; "
                                     "stat -c '%%u %%a' mnt/batches/%s/ctl" % (bid, bid), home)
        assert rc == 0, err
        assert out.split("\n")[:2] == [bid, "in_progress"]
        assert out.split("\n")[2] == "%d 600" % user.pw_uid
        rc, out, err = as_user(user, "echo cancel > mnt/batches/%s/ctl && "
                                     "cat mnt/batches/%s/status" % (bid, bid), home)
        assert (rc, out) == (0, "cancelling\n"), err
        # Anyone else (root included) gets in only with allow_other, and
        # then as the modes say: the user's ctl stays theirs.
        status = os.path.join(m.path, "batches", bid, "status")
        if allow_other:
            assert st.st_uid == user.pw_uid
            with open(status) as f:
                assert f.read() == "cancelling\n"
        else:
            with pytest.raises(PermissionError):
                open(status).close()
        rc, out, err = as_user(user, "fusermount3 -u mnt", home)
        assert rc == 0, err
        assert m.wait_exit() == 0
        assert not is_mounted(m.path)
    finally:
        m.cleanup()
    assert "sk-" not in m.stderr_text()


def test_a_user_reads_jobs_and_waits_on_one(sim, user, home):
    meta = {"kimifs_job": "q", "kimifs_part": "1/1"}
    bid = sim.create({"status": "completed", "metadata": meta})["id"]
    m = start_as_user(sim, user, home)
    try:
        rc, out, err = as_user(user, "ls mnt/jobs; cat mnt/jobs/q/status "
                                     "mnt/jobs/q/wait; readlink mnt/jobs/q/batches/*; "
                                     "stat -c '%u %a' mnt/jobs/q mnt/jobs/q/status; "
                                     "touch mnt/jobs/q/x", home)
        assert out.split("\n")[:6] == ["q", "completed", "completed",
                                         "../../../batches/" + bid,
                                         "%d 555" % user.pw_uid,
                                         "%d 444" % user.pw_uid]
        # 0555: the kernel refuses it before kimifs would (EROFS).
        assert rc != 0 and "Permission denied" in err
        rc, out, err = as_user(user, "fusermount3 -u mnt", home)
        assert rc == 0, err
        assert m.wait_exit() == 0
    finally:
        m.cleanup()


def test_a_user_makes_a_job_with_cp(sim, user, home):
    req = ('{"custom_id":"q-%d","method":"POST","url":"/v1/chat/completions",'
           '"body":{"model":"moonshot-v1-8k","messages":[{"role":"user","content":"hi"}]}}\n')
    src = os.path.join(home, "q.jsonl")
    with open(src, "w") as f:
        f.write("".join(req % i for i in range(3)))
    os.chown(src, user.pw_uid, user.pw_gid)
    m = start_as_user(sim, user, home, "part_requests=2")
    try:
        rc, out, err = as_user(user, "cp q.jsonl mnt/jobs/ && ls mnt/jobs && "
                                     "cat mnt/jobs/q/parts", home)
        assert (rc, out, err) == (0, "q\n2\n", "")
        parts = sorted(b["metadata"]["kimifs_part"] for b in sim.batches()
                       if b["metadata"].get("kimifs_job") == "q")
        assert parts == ["1/2", "2/2"]
        rc, out, err = as_user(user, "fusermount3 -u mnt", home)
        assert rc == 0, err
        assert m.wait_exit() == 0
    finally:
        m.cleanup()


def test_a_key_file_others_may_read_is_refused_for_a_user_too(sim, user, home):
    key = os.path.join(home, "kimi.key")
    os.chmod(key, 0o644)
    rc, out, err = as_user(user, "%s -f -o base_url=%s -o api_key_file=%s mnt"
                           % (KIMIFS, sim.url, key), home)
    assert rc != 0
    assert "chmod 600" in err and len(err.strip().splitlines()) == 1
    assert not is_mounted(os.path.join(home, "mnt"))
    assert sim.log() == []


@pytest.mark.parametrize("allow_other", [False, True], ids=["private", "allow_other"])
def test_a_user_reads_events_and_others_only_with_allow_other(sim, user, home, request,
                                                             allow_other):
    (bid,) = sim.seed(1, status="in_progress")
    if allow_other:
        request.getfixturevalue("user_allow_other")
    m = start_as_user(sim, user, home, "events_backlog=10",
                      *(["allow_other"] if allow_other else []))
    read = ("import os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)\n"
            "print(os.read(fd, 65536).decode(), end='')\n")
    try:
        rc, out, err = as_user(user, "ls mnt/batches >/dev/null && "
                                     "echo cancel > mnt/batches/%s/ctl" % bid, home)
        assert rc == 0, err
        rc, out, err = as_user(user, "stat -c '%%u %%a' mnt/events && "
                                     "python3 -c %s mnt/events"
                               % shlex.quote(read), home)
        assert rc == 0, err
        first, *lines = out.splitlines()
        assert first == "%d 444" % user.pw_uid
        kinds = [(json.loads(x)["kind"], json.loads(x)["id"]) for x in lines]
        assert kinds == [("cancel", bid), ("batch", bid)]
        # Anyone else (root included) reads it only with allow_other.
        path = os.path.join(m.path, "events")
        if allow_other:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                assert [json.loads(x)["kind"] for x in
                        os.read(fd, 65536).decode().splitlines()] == ["cancel", "batch"]
            finally:
                os.close(fd)
        else:
            with pytest.raises(PermissionError):
                os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        rc, out, err = as_user(user, "fusermount3 -u mnt", home)
        assert rc == 0, err
        assert m.wait_exit() == 0
    finally:
        m.cleanup()
