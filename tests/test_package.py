"""The Debian package as a user meets it: scripts/package builds the .deb
(lintian finds no error or warning), apt installs it, `kimifs --version`
and `man kimifs` work, the installed unit verifies, `mount -t fuse.kimifs`
finds /usr/bin/kimifs through mount.fuse3 and mounts the simulator, so
does an fstab line as README gives it (`mount -T` of a table of the test's own), and `apt-get
remove` leaves none of the package's files behind. It installs into the machine, so
it runs as root only (CI's throwaway machine) and in an xdist group of its
own; whatever happens, it leaves neither the package nor a mount behind."""

import os
import subprocess

import pytest

from conftest import KEY, REPO, is_mounted, read_text, wait_for

pytestmark = [
    pytest.mark.xdist_group("package"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="installs a package into the machine: root only"),
]

BUILD_TIMEOUT = 600     # seconds for scripts/package (about 1-2 min on 2 cores)
APT_TIMEOUT = 300       # seconds for apt-get to install or remove the package
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def run(argv, timeout=60):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=APT_ENV)
    assert r.returncode == 0, "%s:\n%s%s" % (argv, r.stdout[-4000:], r.stderr[-4000:])
    return r.stdout


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "kimifs"],
                       capture_output=True, text=True)
    return "ok installed" in r.stdout


def package_files():
    """The regular files and symlinks dpkg -L lists (directories such as
    /usr/bin are shared with other packages and stay)."""
    return [p for p in run(["dpkg", "-L", "kimifs"]).split()
            if os.path.islink(p) or os.path.isfile(p)]


def test_the_package_installs_mounts_and_removes_cleanly(sim, tmp_path):
    if installed():
        pytest.skip("a kimifs package is installed already: not ours to remove")
    out = tmp_path / "dist"
    run([str(REPO / "scripts" / "package"), str(out)], timeout=BUILD_TIMEOUT)
    (deb,) = out.glob("kimifs_*.deb")
    (bid,) = sim.seed(1, status="in_progress")
    keyfile = tmp_path / "kimi.key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    files = []
    try:
        run(["apt-get", "install", "-y", "-q", str(deb)], timeout=APT_TIMEOUT)
        files = package_files()
        assert "/usr/bin/kimifs" in files
        assert "kimifs" in run(["/usr/bin/kimifs", "--version"]).lower()
        assert run(["man", "-w", "kimifs"]).strip().startswith("/usr/share/man/man1/kimifs.1")
        page = run(["man", "-P", "cat", "kimifs"])
        assert "MOUNTPOINT/events" in page and "events_backlog" in page
        (unit,) = [f for f in files if f.endswith("/kimifs@.service")]
        assert "ExecStart=/usr/bin/kimifs -f " in open(unit).read()
        r = subprocess.run(["systemd-analyze", "verify", "kimifs@mnt-kimi.service"],
                           capture_output=True, text=True, timeout=60)
        assert (r.returncode, r.stderr.strip()) == (0, ""), r.stderr
        run(["mount", "-t", "fuse.kimifs", "kimifs", str(mnt), "-o",
             "base_url=%s,api_key_file=%s" % (sim.url, keyfile)], timeout=30)
        assert is_mounted(str(mnt))
        assert read_text(mnt / "batches" / bid / "status") == "in_progress\n"
        run(["umount", str(mnt)], timeout=30)
        wait_for(lambda: not is_mounted(str(mnt)), timeout=10, what="the unmount")
        # An fstab line, as README gives it (a table of the
        # test's own: mount -T).
        fstab = tmp_path / "fstab"
        fstab.write_text("kimifs %s fuse.kimifs api_key_file=%s,base_url=%s,"
                         "_netdev,noauto,x-systemd.automount 0 0\n" % (mnt, keyfile, sim.url))
        run(["mount", "-T", str(fstab), str(mnt)], timeout=30)
        assert is_mounted(str(mnt))
        assert read_text(mnt / "batches" / bid / "status") == "in_progress\n"
        run(["umount", str(mnt)], timeout=30)
        wait_for(lambda: not is_mounted(str(mnt)), timeout=10, what="the unmount")
        run(["apt-get", "remove", "-y", "-q", "kimifs"], timeout=APT_TIMEOUT)
        assert not installed()
        assert [f for f in files if os.path.lexists(f)] == []
    finally:
        if is_mounted(str(mnt)):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        if installed():
            subprocess.run(["apt-get", "remove", "--purge", "-y", "-q", "kimifs"],
                           capture_output=True, timeout=APT_TIMEOUT, env=APT_ENV)
