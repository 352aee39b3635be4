"""files/<id>/content: the bytes of a file, streamed while they download,
kept in the disk cache (cache_dir, cache_size), shared by concurrent
readers, never served cut short. Checked through the shell, against the
simulator's request log and the cache directory itself."""

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading

import pytest

from conftest import KIMIFS, interrupted_after, kimifs_env, read_text, run_kimifs, wait_for


def add_file(sim, **fields):
    """A file stored in the simulator, with its bytes as "data" (fetched
    now: call it before mounting, which clears the request log)."""
    f = sim._call("POST", "/_sim/files", fields)
    f["data"] = sim.content(f["id"])
    return f


def content_gets(sim, fid):
    return sim.requests("GET", "/v1/files/%s/content" % fid)


TAG = "CACHEDIR.TAG"


def cached(cache):
    """The names in the cache directory, its tag aside."""
    return sorted(n for n in os.listdir(cache) if n != TAG) if os.path.isdir(cache) else []


def kept(cache, fid):
    """Wait until the content of fid is kept in the cache (a reader may end
    before the download is synced to disk and renamed into place)."""
    wait_for(lambda: fid in cached(cache), timeout=30, what="%s in the cache" % fid)


def content(m, fid):
    return os.path.join(m.path, "files", fid, "content")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# A build with AddressSanitizer (scripts/test --asan) carries its runtime.
SANITIZED = b"__asan_init" in KIMIFS.read_bytes()


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def test_content_is_the_servers_bytes_downloaded_once(sim, mount, cache):
    f = add_file(sim, size=500000)
    m = mount(options=["cache_dir=" + cache])
    path = content(m, f["id"])
    assert read_bytes(path) == f["data"]
    rc, out, err = m.sh("cat files/%s/content | wc -c" % f["id"])
    assert (rc, out.strip()) == (0, "500000"), err
    assert len(content_gets(sim, f["id"])) == 1
    # 0700 directory, tagged, 0600 file named by the id; nothing else left.
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    kept(cache, f["id"])
    assert sorted(os.listdir(cache)) == sorted([TAG, f["id"]])
    assert stat.S_IMODE(os.stat(os.path.join(cache, f["id"])).st_mode) == 0o600


def test_many_readers_share_one_download(sim, mount, cache):
    f = add_file(sim, size=2000000)
    m = mount(options=["cache_dir=" + cache])
    # Slow enough that all the readers come while it runs.
    sim.fault(path="/content$", action="slow", chunk=65536, interval=0.05)
    rc, out, err = m.sh("for i in 1 2 3 4 5 6 7 8; do cat files/%s/content | md5sum & done; "
                        "wait" % f["id"])
    assert rc == 0, err
    sums = out.split("\n")[:-1]
    assert len(sums) == 8 and len(set(sums)) == 1
    assert sums[0].split()[0] == hashlib.md5(f["data"]).hexdigest()
    assert len(content_gets(sim, f["id"])) == 1


def test_the_first_bytes_come_before_the_download_ends(sim, mount, cache):
    f = add_file(sim, size=4000000)
    m = mount(options=["cache_dir=" + cache])
    # About 60 chunks, 0.1 s apart: some 6 s to download it all.
    sim.fault(path="/content$", action="slow", chunk=65536, interval=0.1)
    rc, out, err = m.sh("head -c 200 files/%s/content" % f["id"])
    assert rc == 0, err
    assert out.encode() == f["data"][:200]
    # head has its bytes while the download is still under way: nothing
    # complete in the cache yet, only the temporary file.
    names = cached(cache)
    assert f["id"] not in names
    assert len(names) == 1 and names[0].startswith(".tmp-")
    wait_for(lambda: cached(cache) == [f["id"]], timeout=60, what="the download's end")
    assert read_bytes(os.path.join(cache, f["id"])) == f["data"]


def disk_stats(m):
    """MOUNT/stats' disk_cache counters."""
    return json.loads(read_text(os.path.join(m.path, "stats")))["disk_cache"]


def test_a_second_mount_reuses_the_disk_cache(sim, mount, cache):
    f = add_file(sim, size=300000)
    m = mount(options=["cache_dir=" + cache])
    first = read_bytes(content(m, f["id"]))
    assert m.stop() == 0
    m2 = mount(options=["cache_dir=" + cache])
    assert disk_stats(m2) == {"hits": 0, "misses": 0, "bytes": 300000}
    assert read_bytes(content(m2, f["id"])) == first == f["data"]
    assert content_gets(sim, f["id"]) == []
    rc, out, err = m2.sh("stat -c %%s files/%s/content" % f["id"])
    assert out == "300000\n"
    # MOUNT/stats counts it: one content opened from the disk, none
    # downloaded; a content not there yet is a miss.
    assert disk_stats(m2) == {"hits": 1, "misses": 0, "bytes": 300000}
    g = add_file(sim, size=1000)
    assert read_bytes(content(m2, g["id"])) == g["data"]
    wait_for(lambda: disk_stats(m2)["bytes"] == 301000, timeout=30,
             what="the second content in the cache")
    assert disk_stats(m2)["misses"] == 1


def test_the_least_recently_used_content_is_evicted_at_the_cap(sim, mount, cache):
    a, b, c = (add_file(sim, filename=n, size=400 * 1024) for n in "abc")
    m = mount(options=["cache_dir=" + cache, "cache_size=1M"])
    for f in (a, b, a):
        read_bytes(content(m, f["id"]))
        kept(cache, f["id"])
    assert cached(cache) == sorted([a["id"], b["id"]])
    read_bytes(content(m, c["id"]))
    kept(cache, c["id"])
    # 1200 KiB > 1 MiB: b, the least recently used, goes.
    assert cached(cache) == sorted([a["id"], c["id"]])
    sim.clear_log()
    assert read_bytes(content(m, a["id"])) == a["data"]
    assert content_gets(sim, a["id"]) == []
    assert read_bytes(content(m, b["id"])) == b["data"]
    assert len(content_gets(sim, b["id"])) == 1


def test_the_order_of_use_survives_a_remount(sim, mount, cache):
    a, b, c = (add_file(sim, filename=n, size=400 * 1024) for n in "abc")
    m = mount(options=["cache_dir=" + cache, "cache_size=1M"])
    for f in (a, b):
        read_bytes(content(m, f["id"]))
        kept(cache, f["id"])
    # The file times say the order of use (a then b): touch a again.
    read_bytes(content(m, a["id"]))
    assert m.stop() == 0
    m = mount(options=["cache_dir=" + cache, "cache_size=1M"])
    read_bytes(content(m, c["id"]))
    kept(cache, c["id"])
    assert cached(cache) == sorted([a["id"], c["id"]])


def test_a_failed_download_leaves_nothing_and_the_next_open_retries(sim, mount, cache):
    f = add_file(sim, size=300000)
    m = mount(options=["cache_dir=" + cache, "retries=0"])
    sim.fault(path="/content$", action="truncate")
    rc, out, err = m.sh("cat files/%s/content > /dev/null" % f["id"])
    assert rc != 0 and "Input/output error" in err
    assert cached(cache) == []
    assert "content download failed" in m.stderr_text()
    assert read_bytes(content(m, f["id"])) == f["data"]
    assert len(content_gets(sim, f["id"])) == 2
    kept(cache, f["id"])
    assert cached(cache) == [f["id"]]


def test_a_download_that_times_out_gives_etimedout(sim, mount, cache):
    f = add_file(sim, size=300000)
    m = mount(options=["cache_dir=" + cache, "retries=0"], timeout=1)
    sim.fault(path="/content$", action="hang", seconds=30)
    rc, out, err = m.sh("cat files/%s/content > /dev/null" % f["id"])
    assert rc != 0 and "Connection timed out" in err
    # The download itself ends when no byte came for the timeout.
    wait_for(lambda: cached(cache) == [], timeout=30, what="the download's end")
    assert "content download failed" in m.stderr_text()


def test_a_killed_download_leaves_nothing_servable(sim, mount, cache):
    f = add_file(sim, size=3000000)
    m = mount(options=["cache_dir=" + cache])
    sim.fault(path="/content$", action="slow", chunk=65536, interval=0.2)
    reader = subprocess.Popen(["cat", content(m, f["id"])], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        def partial():
            names = cached(cache)
            return names and names[0].startswith(".tmp-") and \
                os.path.getsize(os.path.join(cache, names[0])) > 0
        wait_for(partial, timeout=20, what="a partial download")
        m.expect_running = False
        m.proc.kill()
        m.proc.wait()
    finally:
        m.cleanup()
        reader.kill()
        reader.wait()
    assert f["id"] not in cached(cache)
    sim.clear_faults()
    sim.clear_log()
    m2 = mount(options=["cache_dir=" + cache])
    # The dead process's temporary file is gone; the content comes again.
    assert cached(cache) == []
    assert read_bytes(content(m2, f["id"])) == f["data"]
    assert len(content_gets(sim, f["id"])) == 1


def test_a_content_longer_than_its_fileobject_says(sim, mount, cache):
    f = add_file(sim, content="0123456789" * 50, bytes=10)
    m = mount(options=["cache_dir=" + cache])
    rc, out, err = m.sh("stat -c %%s files/%s/content" % f["id"])
    assert out == "10\n"
    assert read_bytes(content(m, f["id"])) == b"0123456789" * 50
    rc, out, err = m.sh("stat -c %%s files/%s/content" % f["id"])
    assert out == "500\n"
    assert "500 bytes, its FileObject says 10" in m.stderr_text()
    # From then on, from the disk, the whole of it.
    assert read_bytes(content(m, f["id"])) == b"0123456789" * 50
    assert len(content_gets(sim, f["id"])) == 1


def test_ctrl_c_ends_a_read_waiting_on_a_download(sim, mount, cache):
    f = add_file(sim, size=300000)
    m = mount(options=["cache_dir=" + cache], timeout=30)
    sim.fault(path="/content$", action="hang", seconds=120)
    elapsed, rc = interrupted_after(m.path, "exec cat files/%s/content" % f["id"],
                                    lambda: content_gets(sim, f["id"]), "the download")
    assert elapsed < 5, "the interrupt waited for the timeout"
    assert rc != 0
    # The download goes on for the next reader; once the server answers,
    # it has the whole content.
    sim.clear_faults()
    assert read_bytes(content(m, f["id"])) == f["data"]


@pytest.mark.parametrize("value", ["1X", "", "-1", "0", "1k", "12.5M", "2000G", "0x10",
                                   "1M ", "9999999999999999999"])
def test_a_bad_cache_size_is_refused_before_any_request(sim, mount, value):
    m = mount(options=["cache_size=" + value], wait=False)
    assert m.wait_exit() != 0
    err = m.stderr_text().strip().splitlines()
    assert err == ["kimifs: cache_size must be a number of bytes from 1M to 1024G, "
                   "digits with an optional K, M or G"]
    assert sim.log() == []


def test_an_unusable_cache_dir_is_refused_before_any_request(sim, mount, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    m = mount(options=["cache_dir=%s/sub" % blocker], wait=False)
    assert m.wait_exit() != 0
    err = m.stderr_text().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kimifs: cannot make cache_dir ")
    assert sim.log() == []


def test_the_default_cache_dir_follows_xdg_then_home(sim, tmp_path):
    f = add_file(sim, content="hello\n")
    for env, where in (({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "kimifs"),
                       ({"HOME": str(tmp_path / "home")}, tmp_path / "home" / ".cache" / "kimifs")):
        mnt = tmp_path / ("mnt-" + where.parent.name)
        mnt.mkdir()
        e = kimifs_env(extra=env)
        e.pop("XDG_CACHE_HOME", None) if "HOME" in env else None
        m = run_kimifs([str(KIMIFS), "-f", "-o", "base_url=" + sim.url, str(mnt)], mnt,
                       tmp_path / ("err-" + where.parent.name), e)
        try:
            assert read_bytes(os.path.join(m.path, "files", f["id"], "content")) == b"hello\n"
            kept(str(where), f["id"])
            assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
            assert sorted(os.listdir(where)) == sorted([TAG, f["id"]])
        finally:
            m.cleanup()


# One worker runs the tests that change /dev/fuse (test_user.py).
@pytest.mark.xdist_group("machine-settings")
def test_an_unprivileged_users_default_cache_dir(sim, tmp_path):
    try:
        pw = pwd.getpwnam("kimifs-test")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", "kimifs-test"], check=True, capture_output=True)
        pw = pwd.getpwnam("kimifs-test")
    mode = os.stat("/dev/fuse").st_mode & 0o7777
    os.chmod("/dev/fuse", mode | 0o666)
    home = tempfile.mkdtemp(prefix="kimifs-user-", dir="/tmp")
    m = None
    try:
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        key = os.path.join(home, "kimi.key")
        with open(key, "w") as fh:
            fh.write(sim.key + "\n")
        os.chown(key, pw.pw_uid, pw.pw_gid)
        os.chmod(key, 0o600)
        mnt = os.path.join(home, "mnt")
        os.mkdir(mnt)
        os.chown(mnt, pw.pw_uid, pw.pw_gid)
        f = add_file(sim, content="mine\n")
        env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "HOME": home}
        m = run_kimifs([str(KIMIFS), "-f", "-o", "base_url=" + sim.url,
                        "-o", "api_key_file=" + key, mnt], mnt,
                       os.path.join(home, "kimifs.stderr"), env, user=pw.pw_uid,
                       group=pw.pw_gid, extra_groups=[], cwd=home)
        r = subprocess.run(["cat", os.path.join(mnt, "files", f["id"], "content")],
                           user=pw.pw_uid, group=pw.pw_gid, extra_groups=[],
                           capture_output=True, timeout=60, env=env)
        assert (r.returncode, r.stdout) == (0, b"mine\n"), r.stderr
        where = os.path.join(home, ".cache", "kimifs")
        kept(where, f["id"])
        st = os.stat(where)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o700)
        st = os.stat(os.path.join(where, f["id"]))
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o600)
    finally:
        if m:
            m.cleanup()
        os.chmod("/dev/fuse", mode)
        shutil.rmtree(home, ignore_errors=True)


def test_a_large_content_streams_with_bounded_memory(sim, mount, cache):
    size = 100 * 1024 * 1024
    f = add_file(sim, size=size)
    want = hashlib.sha256(f.pop("data")).hexdigest()
    m = mount(options=["cache_dir=" + cache], timeout=60)
    sim.clear_log()
    before = vm_rss_kib(m.proc.pid)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], vm_rss_kib(m.proc.pid))
            done.wait(0.05)

    t = threading.Thread(target=sample)
    t.start()
    try:
        rc, out, err = m.sh("sha256sum < files/%s/content" % f["id"], timeout=300)
    finally:
        done.set()
        t.join()
    assert rc == 0, err
    assert out.split()[0] == want
    assert len(content_gets(sim, f["id"])) == 1
    if SANITIZED:
        # AddressSanitizer's shadow and quarantine lift the baseline: the
        # content must still not show in the growth.
        assert peak[0] - before < 16 * 1024, "VmRSS grew %d KiB" % (peak[0] - before)
    else:
        assert 0 < peak[0] < 32 * 1024, "VmRSS peaked at %d KiB" % peak[0]
    kept(cache, f["id"])
    assert os.path.getsize(os.path.join(cache, f["id"])) == size


def test_a_slow_download_is_read_to_the_end_past_the_timeout(sim, mount, cache):
    """Each read waits at most -o timeout; one that got some of its range
    by then returns that much, so a download slower than a read's range
    per timeout, but never stalled, is read to the end."""
    f = add_file(sim, size=300000)
    m = mount(options=["cache_dir=" + cache], timeout=2)
    # 32 KiB/s: a 128 KiB read's range takes 4 s, twice the timeout.
    sim.fault(path="/content$", action="slow", chunk=16384, interval=0.5)
    rc, out, err = m.sh("cat files/%s/content | md5sum" % f["id"], timeout=120)
    assert rc == 0, err
    assert out.split()[0] == hashlib.md5(f["data"]).hexdigest()
    assert len(content_gets(sim, f["id"])) == 1


def test_a_content_larger_than_the_cap_is_read_but_not_kept(sim, mount, cache):
    f = add_file(sim, size=1500 * 1024)
    m = mount(options=["cache_dir=" + cache, "cache_size=1M"])
    for n in (1, 2):
        assert read_bytes(content(m, f["id"])) == f["data"]
        wait_for(lambda: len(content_gets(sim, f["id"])) == n and cached(cache) == [],
                 timeout=30, what="the download's end")
