"""The shape of the tree: names, values, batch.json, times, modes, and
that nothing in it can be changed (docs/filesystem.md: tree, Values,
Names, Times/modes/owners)."""

import errno
import json
import os
import stat
import time

import pytest

from conftest import (STATES, VALUE_FIELDS, errno_of, expected_entries,
                      latest_event, read_text)

READ_ONLY_ERRNOS = {errno.EROFS, errno.EPERM, errno.EACCES}
READ_ONLY_MESSAGES = ("Read-only file system", "Operation not permitted",
                      "Permission denied")


def test_root_lists_batches_and_carries_the_mount_time(sim, mount):
    before = int(time.time())
    m = mount()
    after = time.time()
    rc, out, err = m.sh("ls")
    assert (rc, out) == (0, "batches\nctl\nfiles\njobs\nlog\nprogress\nstats\n")
    for path in (m.path, m.batches):
        st = os.stat(path)
        assert before <= st.st_mtime <= after + 1
    assert sim.log() == []


def test_batches_are_listed_newest_first(sim, mount):
    ids = sim.seed(3, status="in_progress")
    m = mount()
    newest_first = list(reversed(ids))
    assert m.sh("ls -U batches")[1].split() == newest_first
    assert m.sh("ls -t batches")[1].split() == newest_first


def test_batch_dir_shows_only_what_has_happened(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = sim.get(bid)
    m = mount()
    rc, out, err = m.sh("ls batches/%s" % bid)
    assert rc == 0, err
    assert set(out.split()) == expected_entries(obj)
    assert "completed_at" not in out.split()
    assert "output_file_id" not in out.split()

    rc, out, err = m.sh("cat batches/%s/completed_at" % bid)
    assert rc != 0
    assert "No such file or directory" in err
    assert errno_of(os.stat, m.batch(bid, "completed_at")) == errno.ENOENT


def test_every_state_reads_back_with_newline_terminated_values(sim, mount):
    sim.config(cancel_delay=100000)
    ids = sim.seed(len(STATES), status=STATES)
    m = mount()
    for bid, state in zip(ids, STATES):
        obj = sim.get(bid)
        assert obj["status"] == state
        rc, out, err = m.sh("cat batches/%s/status" % bid)
        assert (rc, out) == (0, state + "\n"), err
        assert set(os.listdir(m.batch(bid))) == expected_entries(obj), state
        for field in VALUE_FIELDS:
            if obj.get(field) is not None:
                assert read_text(m.batch(bid, field)) == "%s\n" % obj[field], (state, field)


def test_request_counts(sim, mount):
    (bid,) = sim.seed(1, status="completed", total=7)
    counts = sim.get(bid)["request_counts"]
    assert counts["total"] == 7
    m = mount()
    rc, out, err = m.sh("ls batches/%s/request_counts" % bid)
    assert out.split() == ["completed", "failed", "total"]
    for name in ("total", "completed", "failed"):
        rc, out, err = m.sh("cat batches/%s/request_counts/%s" % (bid, name))
        assert (rc, out) == (0, "%d\n" % counts[name])


def test_metadata_one_file_per_pair(sim, mount):
    (bid,) = sim.seed(1, status="in_progress",
                      metadata={"project": "alpha", "owner": "team b"})
    m = mount()
    assert m.sh("ls batches/%s/metadata" % bid)[1] == "owner\nproject\n"
    assert m.sh("cat batches/%s/metadata/project" % bid)[1] == "alpha\n"
    assert m.sh("cat batches/%s/metadata/owner" % bid)[1] == "team b\n"
    assert errno_of(os.stat, m.batch(bid, "metadata", "missing")) == errno.ENOENT


def test_metadata_is_an_empty_dir_when_null(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    sim.set(bid, {"metadata": None})
    assert sim.get(bid)["metadata"] is None
    m = mount()
    rc, out, err = m.sh("ls -A batches/%s/metadata" % bid)
    assert (rc, out) == (0, "")
    assert stat.S_ISDIR(os.stat(m.batch(bid, "metadata")).st_mode)


def test_unsafe_metadata_keys_are_not_shown(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    obj = sim.get(bid)
    safe = {"good": "1", "with space": "2", "caf\u00e9": "3", "k" * 255: "4"}
    unsafe = {"": "empty", ".": "dot", "..": "dotdot", "a/b": "slash",
              "tab\tkey": "tab", "nl\nkey": "newline", "del\x7fkey": "del",
              "k" * 256: "too long"}
    obj["metadata"] = dict(safe, **unsafe)
    sim.raw(bid, obj)
    m = mount()
    names = set(os.listdir(m.batch(bid, "metadata").encode()))
    assert names == {k.encode() for k in safe}
    assert read_text(m.batch(bid, "metadata", "caf\u00e9")) == "3\n"
    assert read_text(m.batch(bid, "metadata", "k" * 255)) == "4\n"


def test_batch_json_is_the_server_object_pretty_printed(sim, mount):
    (bid,) = sim.seed(1, status="completed", metadata={"project": "alpha"})
    obj = sim.get(bid)
    obj["x_unknown_field"] = {"nested": [1, 2, {"deep": True}], "note": "kept"}
    obj["x_unknown_null"] = None
    sim.raw(bid, obj)
    m = mount()
    rc, text, err = m.sh("cat batches/%s/batch.json" % bid)
    assert rc == 0, err
    assert json.loads(text) == obj
    assert text.startswith("{\n") and text.endswith("\n}\n")
    assert "\t" not in text
    # Two-space indentation: each member on its own line, two spaces per level.
    lines = text.splitlines()
    for key in obj:
        assert any(l.startswith('  "%s": ' % key) for l in lines), key
    for key in ("project", "nested", "note"):
        assert any(l.startswith('    "%s": ' % key) for l in lines), key


@pytest.mark.parametrize("state", ["in_progress", "completed", "cancelled"])
def test_mtimes_follow_the_batch_history(sim, mount, state):
    sim.config(cancel_delay=5)
    (bid,) = sim.seed(1, status="in_progress", metadata={"k": "v"})
    sim.advance(100)
    if state != "in_progress":
        sim.state(bid, state)
    obj = sim.get(bid)
    m = mount()
    assert os.stat(m.batch(bid)).st_mtime == obj["created_at"]
    latest = latest_event(obj)
    if state != "in_progress":
        assert latest > obj["created_at"]
    entries = [m.batch(bid, n) for n in os.listdir(m.batch(bid))]
    entries += [m.batch(bid, "request_counts", n) for n in ("total", "completed", "failed")]
    entries += [m.batch(bid, "metadata", "k")]
    # lstat: input.jsonl and output.jsonl are symlinks; the links carry
    # the batch's time (what they point to carries the file's).
    for p in entries:
        assert os.lstat(p).st_mtime == latest, p
    rc, out, err = m.sh("stat -c %%Y batches/%s batches/%s/status" % (bid, bid))
    assert out.split() == [str(obj["created_at"]), str(latest)]


def test_find_newer_spots_the_batch_that_changed(sim, mount):
    changed, ref = sim.seed(2, status="in_progress")     # changed is the older
    sim.advance(100)
    sim.state(changed, "completed")
    m = mount()
    rc, out, err = m.sh("find batches -name status -newer batches/%s/status" % ref)
    assert (rc, out) == (0, "batches/%s/status\n" % changed), err


def test_modes_and_owner(sim, mount):
    (bid,) = sim.seed(1, status="completed", metadata={"k": "v"})
    m = mount()
    dirs = [m.path, m.batch(bid), m.batch(bid, "request_counts"),
            m.batch(bid, "metadata"), m.batch(bid, "results"), m.batch(bid, "usage")]
    files = [m.batch(bid, n) for n in os.listdir(m.batch(bid))
             if n not in ("ctl", "request_counts", "metadata", "results", "usage")]
    files += [m.batch(bid, "request_counts", "total"), m.batch(bid, "metadata", "k"),
              m.batch(bid, "results", "request-1.json"), m.batch(bid, "results", "request-1.txt"),
              m.batch(bid, "usage", "total_tokens")]
    for p in dirs:
        st = os.stat(p)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555, p
    # batches/, files/ and jobs/ take new files (uploads), from their owner only
    for p in (m.batches, os.path.join(m.path, "files"), os.path.join(m.path, "jobs")):
        st = os.stat(p)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, p
    dirs.append(m.batches)
    for p in files:
        st = os.stat(p)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444, p
    st = os.stat(m.batch(bid, "ctl"))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    for p in dirs + files + [m.batch(bid, "ctl")]:
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), p
    rc, out, err = m.sh("stat -c '%%a %%U %%n' batches batches/%s/status batches/%s/ctl"
                        % (bid, bid))
    user = out.split()[1]
    assert out == ("755 {u} batches\n444 {u} batches/{b}/status\n600 {u} batches/{b}/ctl\n"
                   .format(u=user, b=bid))


@pytest.mark.parametrize("cmd", [
    "touch batches/{id}/newfile",
    "touch batches/{id}/status",
    "mkdir batches/{id}/newdir",
    "mkdir batches/batch_new",
    "mkdir newdir",
    "rm -f batches/{id}/status",
    "rmdir batches/{id}/metadata",
    "rm -rf batches/{id}",
    "mv batches/{id}/status batches/{id}/status2",
    "mv batches/{id} batches/renamed",
    "echo completed > batches/{id}/status",
    "echo x >> batches/{id}/status",
    "truncate -s 0 batches/{id}/status",
    "ln -s status batches/{id}/link",
    "ln batches/{id}/status batches/{id}/hardlink",
    "chmod 666 batches/{id}/status",
])
def test_the_tree_is_read_only(sim, mount, cmd):
    (bid,) = sim.seed(1, status="in_progress", metadata={})
    m = mount(cache_ttl=3600)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    rc, out, err = m.sh(cmd.format(id=bid))
    assert rc != 0
    assert any(msg in err for msg in READ_ONLY_MESSAGES), err
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    assert sorted(os.listdir(m.batches)) == [bid]
    assert [r for r in sim.log() if r["method"] != "GET"] == []


def test_read_only_errnos(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    status = m.batch(bid, "status")
    assert errno_of(os.open, status, os.O_WRONLY) in READ_ONLY_ERRNOS
    assert errno_of(os.open, m.batch(bid, "new"), os.O_WRONLY | os.O_CREAT, 0o644) in READ_ONLY_ERRNOS
    assert errno_of(os.unlink, status) in READ_ONLY_ERRNOS
    assert errno_of(os.rename, status, m.batch(bid, "s2")) in READ_ONLY_ERRNOS
    assert errno_of(os.mkdir, m.batch(bid, "d")) in READ_ONLY_ERRNOS
    assert errno_of(os.rmdir, m.batch(bid, "metadata")) in READ_ONLY_ERRNOS
    assert errno_of(os.truncate, status, 0) in READ_ONLY_ERRNOS
    assert [r for r in sim.log() if r["method"] != "GET"] == []


def test_opening_a_file_for_truncation_is_erofs(sim, mount):
    # Even read-only: O_TRUNC asks to change the file (as root, whom the
    # mode bits do not stop, the daemon must refuse it itself).
    (bid,) = sim.seed(1, status="completed", metadata={"k": "v"})
    m = mount()
    for rel in ("status", "batch.json", "request_counts/total", "metadata/k"):
        path = m.batch(bid, rel)
        before = read_text(path)
        for flags in (os.O_RDONLY | os.O_TRUNC, os.O_WRONLY | os.O_TRUNC,
                      os.O_RDWR, os.O_WRONLY | os.O_APPEND):
            assert errno_of(os.open, path, flags) == errno.EROFS, (rel, flags)
        assert read_text(path) == before
    assert [r for r in sim.log() if r["method"] != "GET"] == []


def test_shell_globs_over_statuses(sim, mount):
    states = ["in_progress", "in_progress", "completed", "in_progress",
              "failed", "completed"]
    ids = sim.seed(len(states), status=states)
    m = mount()
    rc, out, err = m.sh("grep -l in_progress batches/*/status")
    assert rc == 0, err
    assert sorted(out.split()) == sorted("batches/%s/status" % i
                                         for i, s in zip(ids, states) if s == "in_progress")
    rc, out, err = m.sh("cat batches/*/status | sort | uniq -c")
    counts = {word: int(n) for n, word in (l.split() for l in out.splitlines())}
    assert counts == {"in_progress": 3, "completed": 2, "failed": 1}


def test_unsafe_ids_from_the_server_are_not_listed(sim, mount):
    hostile = ["bad/id", "..", "line\nbreak", "x" * 300, "y" * 129,
               ".hidden", "a b", "pct%2F"]
    ids = sim.seed(len(hostile) + 2, status="in_progress")
    good, edge, targets = ids[0], ids[1], ids[2:]
    for bid, bad in zip(targets, hostile):
        obj = sim.get(bid)
        obj["id"] = bad
        sim.raw(bid, obj)
    obj = sim.get(edge)
    obj["id"] = "b" * 128        # the longest id that is allowed
    sim.raw(edge, obj)

    m = mount()
    rc, out, err = m.sh("ls batches")
    assert rc == 0, err
    assert sorted(out.split("\n")[:-1]) == sorted([good, "b" * 128])
    assert m.sh("cat batches/%s/status" % ("b" * 128))[1] == "in_progress\n"
    sim.clear_log()
    for bad in (".hidden", "a b", "y" * 129, "pct%2F"):
        assert errno_of(os.stat, os.path.join(m.batches, bad)) == errno.ENOENT, bad
    assert sim.log() == []


def test_a_file_one_may_write_asks_for_writes_of_a_mebibyte(sim, mount):
    """A staged input and a ctl say st_blksize 1 MiB, so cp writes 1 MiB
    at a time (a round trip to the daemon per write); a file only read
    keeps 4096."""
    bid = sim.seed(1, status="in_progress")[0]
    m = mount()
    fd = os.open(os.path.join(m.path, "jobs", "big.jsonl"), os.O_WRONLY | os.O_CREAT)
    try:
        assert os.fstat(fd).st_blksize == 1 << 20
    finally:
        os.close(fd)
    assert os.stat(os.path.join(m.path, "ctl")).st_blksize == 1 << 20
    assert os.stat(os.path.join(m.batches, bid, "status")).st_blksize == 4096
