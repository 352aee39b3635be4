"""The disk cache's directory (cache_dir) and what kimifs does in it: it
keeps its contents only in a folder it made or found empty, tagged with
its CACHEDIR.TAG; a folder that holds anything else is refused at mount
with one line, and every file in it, and its mode, stays as it was; a
folder's mode is never changed; a link to a folder works; the files that
processes which ended left are swept and logged as what they were; a
content cut short on disk is downloaded again; a full disk is logged with
its errno. Checked as root and as an unprivileged user."""

import os
import re
import stat
import subprocess

import pytest

from conftest import KIMIFS, kimifs_env, read_text, run_kimifs, wait_for
from test_user import as_user, home, user  # noqa: F401 (home, user: fixtures)

TAG = "CACHEDIR.TAG"
SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
REFUSED = ("is not empty and not a kimifs cache (no CACHEDIR.TAG of kimifs in it); "
           "nothing in it was touched: name a new or empty folder")
# A process id no process has (above any pid_max).
DEAD = 999999999
OLD = 946684800  # 2000-01-01: an mtime older than anything kimifs made


def add_file(sim, **fields):
    """A file stored in the simulator, with its bytes as "data"."""
    f = sim._call("POST", "/_sim/files", fields)
    f["data"] = sim.content(f["id"])
    return f


def content_gets(sim, fid):
    return sim.requests("GET", "/v1/files/%s/content" % fid)


def content(m, fid):
    return os.path.join(m.path, "files", fid, "content")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def user_files(folder, uid=None, gid=None):
    """Fill folder with a user's files: old mtimes, big and small, names
    that fit the id syntax, dot files, a subfolder. Returns what each is
    (mode, size, mtime), to compare with what is there afterwards."""
    files = {"notes.txt": (0o644, 10), "vm.img": (0o600, 2 << 30),
             "thesis.pdf": (0o600, 3 << 20), ".bashrc": (0o644, 100),
             ".tmp-notes": (0o600, 5), "file-abc": (0o600, 50)}
    for name, (mode, size) in files.items():
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            if name == "thesis.pdf":
                f.write(os.urandom(size))
            else:
                f.truncate(size)
        os.chmod(path, mode)
        os.utime(path, (OLD, OLD))
        if uid is not None:
            os.chown(path, uid, gid)
    os.mkdir(os.path.join(folder, "sub"), 0o755)
    if uid is not None:
        os.chown(os.path.join(folder, "sub"), uid, gid)
    return what_is_in(folder)


def what_is_in(folder):
    """Every entry of folder, the folder itself as ".": (mode, size, mtime
    to the ns, owner)."""
    out = {}
    for name in [".", *os.listdir(folder)]:
        st = os.lstat(os.path.join(folder, name))
        out[name] = (stat.S_IMODE(st.st_mode), st.st_size if name != "." else 0,
                     st.st_mtime_ns if name != "." else 0, st.st_uid)
    return out


def refused(m):
    """The daemon's exit status and its stderr lines, once it exited."""
    return m.wait_exit(), m.stderr_text().strip().splitlines()


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "folder"
    d.mkdir()
    return str(d)


# --------------------------------------------------------------------------
# As root


@pytest.mark.parametrize("mode", [0o751, 0o1777], ids=["home", "tmp"])
def test_a_folder_of_user_files_is_refused_and_left_as_it_was(sim, mount, folder, mode):
    os.chmod(folder, mode)
    before = user_files(folder)
    m = mount(options=["cache_dir=" + folder, "cache_size=1M"], wait=False)
    rc, err = refused(m)
    assert rc != 0
    assert err == ["kimifs: cache_dir %s %s" % (folder, REFUSED)]
    assert what_is_in(folder) == before
    assert sim.log() == []


def test_an_empty_0755_folder_keeps_its_mode_and_is_tagged(sim, mount, folder):
    os.chmod(folder, 0o755)
    f = add_file(sim, size=1000)
    m = mount(options=["cache_dir=" + folder])
    assert read_bytes(content(m, f["id"])) == f["data"]
    wait_for(lambda: f["id"] in os.listdir(folder), timeout=30, what="the content kept")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert sorted(os.listdir(folder)) == sorted([TAG, f["id"]])
    tag = read_text(os.path.join(folder, TAG)).splitlines()
    assert tag[0] == SIGNATURE and "kimifs" in tag[1]
    for name in (TAG, f["id"]):
        assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o600
    assert ("cache_dir %s is mode 755: others may enter it" % folder) in m.stderr_text()
    # Tagged, it is kimifs's from then on: a second mount takes it as is.
    assert m.stop() == 0
    sim.clear_log()
    m2 = mount(options=["cache_dir=" + folder])
    assert read_bytes(content(m2, f["id"])) == f["data"]
    assert content_gets(sim, f["id"]) == []
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755


def test_a_missing_cache_dir_is_made_0700_and_tagged(sim, mount, tmp_path):
    where = tmp_path / "a" / "b"
    mount(options=["cache_dir=%s" % where])
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
    assert os.listdir(where) == [TAG]
    assert read_text(where / TAG).startswith(SIGNATURE + "\n")


def test_another_programs_cache_is_refused(sim, mount, folder):
    with open(os.path.join(folder, TAG), "w") as f:
        f.write(SIGNATURE + "\n# made by another program\n")
    before = what_is_in(folder)
    m = mount(options=["cache_dir=" + folder], wait=False)
    rc, err = refused(m)
    assert rc != 0 and err == ["kimifs: cache_dir %s %s" % (folder, REFUSED)]
    assert what_is_in(folder) == before


def test_a_cache_dir_given_as_a_link_to_a_folder(sim, mount, folder, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(folder)
    f = add_file(sim, content="through the link\n")
    m = mount(options=["cache_dir=%s" % link])
    assert read_bytes(content(m, f["id"])) == b"through the link\n"
    wait_for(lambda: f["id"] in os.listdir(folder), timeout=30, what="the content kept")
    assert os.path.islink(link)
    assert sorted(os.listdir(folder)) == sorted([TAG, f["id"]])


def test_what_ended_processes_left_is_swept_and_named(sim, mount, folder):
    mount(options=["cache_dir=" + folder]).stop()
    left = {".tmp-stage-%d-0" % DEAD: "a staged upload",
            ".tmp-retry_batch_abc-%d-1" % DEAD: "the staged input of a retry",
            ".tmp-file-abc-%d-2" % DEAD: "an unfinished download"}
    mine = [".tmp-notes", ".tmp-x-%d" % DEAD, "notes.txt"]
    for name in [*left, *mine]:
        with open(os.path.join(folder, name), "w") as f:
            f.write("x")
        os.chmod(os.path.join(folder, name), 0o644)
    m = mount(options=["cache_dir=" + folder])
    assert sorted(os.listdir(folder)) == sorted([TAG, *mine])
    log = read_text(os.path.join(m.path, "log"))
    for name, what in left.items():
        assert "cache: removed %s, %s left by a process that ended" % (name, what) in log
    assert [l for l in log.splitlines() if "unfinished download" in l] == \
        [l for l in log.splitlines() if ".tmp-file-abc-" in l]


def test_a_content_cut_short_on_disk_is_downloaded_again(sim, mount, folder):
    f = add_file(sim, size=500000)
    m = mount(options=["cache_dir=" + folder])
    assert read_bytes(content(m, f["id"])) == f["data"]
    wait_for(lambda: f["id"] in os.listdir(folder), timeout=30, what="the content kept")
    assert m.stop() == 0
    os.truncate(os.path.join(folder, f["id"]), 1000)
    m2 = mount(options=["cache_dir=" + folder])
    rc, out, err = m2.sh("cat files/%s/content | wc -c" % f["id"])
    assert (rc, out.strip()) == (0, "500000"), err
    assert read_bytes(content(m2, f["id"])) == f["data"]
    assert len(content_gets(sim, f["id"])) == 1
    assert ("file %s: the content kept in %s is 1000 bytes, its FileObject says 500000; "
            "downloading it again" % (f["id"], folder)) in read_text(os.path.join(m2.path, "log"))
    # The download is renamed into place when complete: until then the
    # name is missing (the cut copy was removed), never short.
    kept = os.path.join(folder, f["id"])
    wait_for(lambda: os.path.exists(kept) and os.path.getsize(kept) == 500000, timeout=30,
             what="the whole content kept")


def test_the_default_cache_of_an_earlier_kimifs_is_taken_and_tagged(sim, tmp_path):
    """A default cache (~/.cache/kimifs) made before the tag holds only
    0600 files named by ids: it is taken as kimifs's, tagged, and its
    contents served; one that holds anything else is refused, and this
    mount uses a private temporary folder instead (logged)."""
    f = add_file(sim, content="kept before\n")
    for case in ("earlier", "other"):
        home_dir = tmp_path / case
        where = home_dir / ".cache" / "kimifs"
        where.mkdir(parents=True)
        where.chmod(0o700)
        (where / f["id"]).write_bytes(f["data"])
        (where / f["id"]).chmod(0o600)
        if case == "other":
            (where / "notes.txt").write_text("mine\n")
            (where / "notes.txt").chmod(0o644)
        before = what_is_in(str(where))
        mnt = tmp_path / ("mnt-" + case)
        mnt.mkdir()
        env = kimifs_env(extra={"HOME": str(home_dir)})
        env.pop("XDG_CACHE_HOME", None)
        sim.clear_log()
        m = run_kimifs([str(KIMIFS), "-f", "-o", "base_url=" + sim.url, str(mnt)], mnt,
                       tmp_path / ("err-" + case), env)
        try:
            assert read_bytes(os.path.join(m.path, "files", f["id"], "content")) == f["data"]
            log = read_text(os.path.join(m.path, "log"))
            if case == "earlier":
                assert sorted(os.listdir(where)) == sorted([TAG, f["id"]])
                assert "the cache of an earlier kimifs, now tagged" in log
                assert content_gets(sim, f["id"]) == []
            else:
                assert what_is_in(str(where)) == before
                assert ("cache_dir %s %s; using a private temporary directory"
                        % (where, REFUSED)) in log
                assert len(content_gets(sim, f["id"])) == 1
                # The private folder holds this mount's contents, and
                # goes with it.
                private = re.search(r"cache: (/\S+/kimifs-cache-\w+), for this mount only",
                                    log).group(1)
                wait_for(lambda: f["id"] in os.listdir(private), timeout=30,
                         what="the content kept")
                assert m.stop() == 0
                assert not os.path.exists(private)
        finally:
            m.cleanup()


# --------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, mounted for the test only."""
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=0700", "tmpfs", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        yield str(d)
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_a_full_disk_during_a_download_is_logged_with_its_errno(sim, mount, small_disk):
    f = add_file(sim, size=3 << 20)
    m = mount(options=["cache_dir=" + small_disk, "retries=0"])
    rc, out, err = m.sh("cat files/%s/content > /dev/null" % f["id"])
    assert rc != 0
    wait_for(lambda: "content download failed" in m.stderr_text(), timeout=30,
             what="the failure logged")
    line = [l for l in m.stderr_text().splitlines() if "content download failed" in l]
    assert "No space left on device" in line[0], line
    # Nothing cut short stays.
    wait_for(lambda: os.listdir(small_disk) == [TAG], timeout=30, what="the partial file gone")


# --------------------------------------------------------------------------
# As an unprivileged user (see test_user.py)


def user_folder(user, home, name, mode):
    d = os.path.join(home, name)
    os.mkdir(d)
    os.chown(d, user.pw_uid, user.pw_gid)
    os.chmod(d, mode)
    return d


def run_as_user(sim, user, home, *options):
    """kimifs started by the user, foreground, on home/mnt: its status and
    stderr when it exits by itself within 20 s (a mount is unmounted)."""
    argv = [str(KIMIFS), "-f", "-o", "base_url=" + sim.url,
            "-o", "api_key_file=" + os.path.join(home, "kimi.key")]
    for o in options:
        argv += ["-o", o]
    argv.append(os.path.join(home, "mnt"))
    proc = subprocess.Popen(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                            cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
        subprocess.run(["fusermount3", "-u", "-z", os.path.join(home, "mnt")],
                       capture_output=True)
        pytest.fail("kimifs mounted instead of refusing: %s" % err.decode())
    return proc.returncode, err.decode().strip().splitlines()


@pytest.mark.xdist_group("machine-settings")
def test_a_users_folder_of_files_is_refused_and_left_as_it_was(sim, user, home):
    folder = user_folder(user, home, "docs", 0o755)
    before = user_files(folder, user.pw_uid, user.pw_gid)
    rc, err = run_as_user(sim, user, home, "cache_dir=" + folder, "cache_size=1M")
    assert rc != 0
    assert err == ["kimifs: cache_dir %s %s" % (folder, REFUSED)]
    assert what_is_in(folder) == before
    assert sim.log() == []


@pytest.mark.xdist_group("machine-settings")
def test_a_users_empty_0755_folder_keeps_its_mode(sim, user, home):
    folder = user_folder(user, home, "cache", 0o755)
    f = add_file(sim, content="mine\n")
    mnt = os.path.join(home, "mnt")
    argv = [str(KIMIFS), "-f", "-o", "base_url=" + sim.url,
            "-o", "api_key_file=" + os.path.join(home, "kimi.key"),
            "-o", "cache_dir=" + folder, mnt]
    m = run_kimifs(argv, mnt, os.path.join(home, "kimifs.stderr"),
                   {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, user=user.pw_uid,
                   group=user.pw_gid, extra_groups=[], cwd=home)
    try:
        rc, out, err = as_user(user, "cat mnt/files/%s/content" % f["id"], home)
        assert (rc, out) == (0, "mine\n"), err
        wait_for(lambda: f["id"] in os.listdir(folder), timeout=30, what="the content kept")
        st = os.stat(folder)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o755)
        for name in (TAG, f["id"]):
            st = os.stat(os.path.join(folder, name))
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o600)
        assert "others may enter it" in m.stderr_text()
    finally:
        m.cleanup()
