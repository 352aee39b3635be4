"""files/: one directory per file of the account, by-name/, ctl delete, and
the batches' input.jsonl / output.jsonl / errors.jsonl symlinks. Each test
uses the tree through the shell and checks what the simulator received.
The contents themselves (streaming, the disk cache) are in
test_content.py."""

import errno
import json
import os

import pytest

from conftest import errno_of, read_text, try_write, wait_for


def add_file(sim, **fields):
    """A file stored in the simulator (POST /_sim/files); its FileObject."""
    return sim._call("POST", "/_sim/files", fields)


def cache_opts(tmp_path):
    return ["cache_dir=%s" % (tmp_path / "cache")]


def list_pages(sim):
    return sim.requests("GET", "/v1/files")


def test_files_lists_every_file_of_every_page(sim, mount, tmp_path):
    ids = [add_file(sim, filename="f%d.jsonl" % i, content="x%d\n" % i,
                    created_at=1700000000 + i)["id"] for i in range(5)]
    m = mount(page_size=2, options=cache_opts(tmp_path))
    rc, out, err = m.sh("ls files")
    assert rc == 0, err
    assert out.split() == sorted(ids + ["by-name"])
    pages = list_pages(sim)
    assert len(pages) == 3
    assert [p["query"] for p in pages] == [
        "limit=2", "limit=2&after=" + ids[3], "limit=2&after=" + ids[1]]
    # The listing brought every object: reading their values costs nothing.
    sim.clear_log()
    rc, out, err = m.sh("cat files/*/filename")
    assert (rc, sorted(out.split())) == (0, ["f%d.jsonl" % i for i in range(5)]), err
    assert sim.log() == []


def test_a_file_directory_shows_its_fileobject(sim, mount, tmp_path):
    f = add_file(sim, filename="q.jsonl", purpose="batch", content="hello\n",
                 created_at=1700000123)
    m = mount(options=cache_opts(tmp_path))
    d = os.path.join(m.path, "files", f["id"])
    rc, out, err = m.sh("ls files/%s" % f["id"])
    assert out.split() == sorted(["bytes", "content", "created_at", "ctl", "file.json",
                                  "filename", "purpose", "status"]), err
    for name in ("filename", "bytes", "purpose", "status", "created_at"):
        assert read_text(os.path.join(d, name)) == "%s\n" % f[name]
    text = read_text(os.path.join(d, "file.json"))
    assert json.loads(text) == f
    assert text.startswith('{\n  "id": ') and text.endswith("}\n")
    assert os.stat(d).st_mtime == 1700000123
    assert oct(os.stat(os.path.join(d, "ctl")).st_mode & 0o777) == "0o600"


def test_stat_gives_the_size_without_a_download(sim, mount, tmp_path):
    f = add_file(sim, size=300000)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("stat -c %%s files/%s/content" % f["id"])
    assert (rc, out) == (0, "300000\n"), err
    assert sim.requests("GET", "/v1/files/%s/content" % f["id"]) == []


def test_a_name_no_file_has_is_enoent(sim, mount, tmp_path):
    m = mount(options=cache_opts(tmp_path))
    assert errno_of(os.stat, os.path.join(m.path, "files", "file-nosuch")) == errno.ENOENT
    assert len(sim.requests("GET", "/v1/files/file-nosuch")) == 1
    sim.clear_log()
    assert errno_of(os.stat, os.path.join(m.path, "files", "no such")) == errno.ENOENT
    assert errno_of(os.stat, os.path.join(m.path, "files", ".hidden")) == errno.ENOENT
    assert sim.log() == []


def test_by_name_points_at_the_newest_file_of_that_name(sim, mount, tmp_path):
    new = add_file(sim, filename="data.jsonl", content="new\n", created_at=1700000200)
    old = add_file(sim, filename="data.jsonl", content="old\n", created_at=1700000100)
    other = add_file(sim, filename="other.jsonl", content="o\n", created_at=1700000150)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("ls files/by-name")
    assert (rc, out.split()) == (0, ["data.jsonl", "other.jsonl"]), err
    assert os.readlink(os.path.join(m.path, "files/by-name/data.jsonl")) == "../" + new["id"]
    assert os.readlink(os.path.join(m.path, "files/by-name/other.jsonl")) == "../" + other["id"]
    rc, out, err = m.sh("cat files/by-name/data.jsonl/content")
    assert (rc, out) == (0, "new\n"), err
    assert old["id"] != new["id"]
    assert errno_of(os.readlink, os.path.join(m.path, "files/by-name/none.jsonl")) \
        == errno.ENOENT


def test_by_name_survives_a_remount(sim, mount, tmp_path):
    f = add_file(sim, filename="keep.jsonl", content="k\n")
    mount(options=cache_opts(tmp_path)).stop()
    m = mount(options=cache_opts(tmp_path))
    assert os.readlink(os.path.join(m.path, "files/by-name/keep.jsonl")) == "../" + f["id"]


def test_delete_through_ctl(sim, mount, tmp_path):
    f = add_file(sim, filename="gone.jsonl", content="bye\n")
    keep = add_file(sim, filename="stay.jsonl", content="hi\n")
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("ls files")
    assert f["id"] in out.split()
    sim.clear_log()
    rc, out, err = m.sh("echo delete > files/%s/ctl" % f["id"])
    assert rc == 0, err
    assert [(r["method"], r["path"]) for r in sim.log()] == [
        ("DELETE", "/v1/files/" + f["id"])]
    assert f["id"] not in [x["id"] for x in sim.api("GET", "/v1/files")[1]["data"]]
    # The directory is gone at once, without another request.
    sim.clear_log()
    rc, out, err = m.sh("ls files")
    assert out.split() == ["by-name", keep["id"]]
    assert errno_of(os.stat, os.path.join(m.path, "files", f["id"])) == errno.ENOENT
    assert [r["method"] for r in sim.log() if r["method"] != "GET" or
            r["path"] != "/v1/files"] == []


def test_a_failed_delete_says_why_in_ctl(sim, mount, tmp_path):
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path) + ["retries=0"])
    ctl = os.path.join(m.path, "files", f["id"], "ctl")
    sim.fault(method="DELETE", action="status", status=500, message="disk on fire")
    assert try_write(ctl, b"delete\n") == errno.EIO
    assert read_text(ctl) == "delete: failed: 500 disk on fire\n"
    assert os.path.isdir(os.path.join(m.path, "files", f["id"]))


@pytest.mark.parametrize("text", [b"remove\n", b"delete delete\n", b"", b"cancel\n"])
def test_a_bad_ctl_command_is_einval_and_sends_nothing(sim, mount, tmp_path, text):
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path))
    ctl = os.path.join(m.path, "files", f["id"], "ctl")
    os.stat(ctl)
    sim.clear_log()
    if text:
        assert try_write(ctl, text) == errno.EINVAL
    else:
        rc, out, err = m.sh("printf 'x' | dd of=%s bs=1 seek=3 conv=notrunc 2>&1" % ctl)
        assert rc != 0 and "Invalid argument" in out
    assert [r for r in sim.log() if r["method"] == "DELETE"] == []
    assert os.path.isdir(os.path.join(m.path, "files", f["id"]))


# ---------------------------------------------------------------------------
# The batches' symlinks

LINKS = {"input.jsonl": "input_file_id", "output.jsonl": "output_file_id",
         "errors.jsonl": "error_file_id"}


def test_batch_links_are_present_exactly_when_their_ids_are_set(sim, mount, tmp_path):
    ids = {}
    for status, failed in (("validating", 0), ("in_progress", 0), ("completed", 0),
                           ("completed", 2), ("cancelled", 0), ("expired", 1),
                           ("failed", 0)):
        ids[(status, failed)] = sim.seed(1, status=status, total=9, failed=failed)[0]
    m = mount(options=cache_opts(tmp_path))
    for (status, failed), bid in ids.items():
        obj = sim.get(bid)
        rc, out, err = m.sh("ls batches/%s" % bid)
        names = set(out.split())
        for link, field in LINKS.items():
            path = m.batch(bid, link)
            if obj[field] is None:
                assert link not in names, (status, link)
                assert errno_of(os.lstat, path) == errno.ENOENT
            else:
                assert link in names, (status, link)
                assert os.readlink(path) == "../../files/%s/content" % obj[field]
                with open(path, "rb") as fh:
                    assert fh.read() == sim.content(obj[field])
    # A cancelled batch keeps its partial output (a third of the work).
    cancelled = sim.get(ids[("cancelled", 0)])
    assert cancelled["request_counts"]["completed"] == 3
    rc, out, err = m.sh("wc -l < batches/%s/output.jsonl" % ids[("cancelled", 0)])
    assert (rc, out.strip()) == (0, "3"), err


def test_output_jsonl_across_batches_with_a_glob(sim, mount, tmp_path):
    bids = sim.seed(3, status="completed", total=4)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("cat batches/*/output.jsonl | "
                        "python3 -c 'import sys, json; "
                        "print(sum(1 for l in sys.stdin if json.loads(l)[\"response\"]))'")
    assert (rc, out) == (0, "12\n"), err
    outputs = {sim.get(b)["output_file_id"] for b in bids}
    assert sorted(r["path"] for r in sim.log() if r["path"].endswith("/content")) == \
        sorted("/v1/files/%s/content" % f for f in outputs)


def test_a_link_appears_when_the_batch_gets_its_output(sim, mount, tmp_path):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(options=cache_opts(tmp_path))
    assert errno_of(os.lstat, m.batch(bid, "output.jsonl")) == errno.ENOENT
    sim.state(bid, "completed")
    obj = sim.get(bid)
    sim.clear_log()

    def present():
        return errno_of(os.lstat, m.batch(bid, "output.jsonl")) == 0

    wait_for(present, timeout=10, what="output.jsonl")
    with open(m.batch(bid, "output.jsonl"), "rb") as fh:
        assert fh.read() == sim.content(obj["output_file_id"])


def test_malformed_files_of_a_list_are_left_out(sim, mount, tmp_path):
    good = add_file(sim, filename="good.jsonl", content="g\n")
    bad = [dict(good, id="file-negative", bytes=-1),
           dict(good, id="../escape"),
           dict(good, id="file-nofilename", filename=None),
           dict(good, id="file-strbytes", bytes="12")]
    m = mount(options=cache_opts(tmp_path))
    sim.fault(method="GET", path="^/v1/files$", action="body",
              body={"object": "list", "data": [good] + bad, "has_more": False})
    rc, out, err = m.sh("ls files")
    assert (rc, out.split()) == (0, ["by-name", good["id"]]), err
    assert "file list: left out 4 malformed files" in m.stderr_text()


def test_a_content_the_server_no_longer_has_is_enoent(sim, mount, tmp_path):
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path))
    assert os.path.isdir(os.path.join(m.path, "files", f["id"]))
    sim.api("DELETE", "/v1/files/" + f["id"])
    rc, out, err = m.sh("cat files/%s/content" % f["id"])
    assert rc != 0 and "No such file or directory" in err


def test_deleting_a_file_the_server_no_longer_has(sim, mount, tmp_path):
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path))
    ctl = os.path.join(m.path, "files", f["id"], "ctl")
    os.stat(ctl)
    sim.api("DELETE", "/v1/files/" + f["id"])
    sim.clear_log()
    assert try_write(ctl, b"delete\n") == errno.ENOENT
    assert [(r["method"], r["status"]) for r in sim.log()] == [("DELETE", 404)]
    # It is gone either way.
    assert errno_of(os.stat, os.path.join(m.path, "files", f["id"])) == errno.ENOENT


def test_by_name_names_that_cannot_be_files_cost_nothing(sim, mount, tmp_path):
    m = mount(options=cache_opts(tmp_path))
    os.listdir(os.path.join(m.path, "files"))
    sim.clear_log()
    assert errno_of(os.lstat, os.path.join(m.path, "files/by-name", "a\x01b")) == errno.ENOENT
    assert sim.log() == []


def test_file_trees_are_read_only(sim, mount, tmp_path):
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path))
    d = os.path.join(m.path, "files", f["id"])
    for name in ("file.json", "filename", "content"):
        assert errno_of(os.open, os.path.join(d, name), os.O_WRONLY) == errno.EROFS
    assert errno_of(os.unlink, os.path.join(d, "content")) == errno.EROFS
    assert errno_of(os.rmdir, d) == errno.EROFS
    assert errno_of(os.symlink, "x", os.path.join(m.path, "files/by-name/new")) == errno.EROFS


# ---------------------------------------------------------------------------
# The simulator's Files API, as kimifs relies on it


def test_the_simulators_file_list_pages_like_openais(sim):
    ids = [add_file(sim, filename="p%d" % i, content="%d\n" % i,
                    created_at=1700000000 + i)["id"] for i in range(5)]
    status, page = sim.api("GET", "/v1/files?limit=2")
    assert status == 200
    assert [f["id"] for f in page["data"]] == [ids[4], ids[3]]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    status, page = sim.api("GET", "/v1/files?limit=2&after=" + ids[1])
    assert ([f["id"] for f in page["data"]], page["has_more"]) == ([ids[0]], False)
    status, page = sim.api("GET", "/v1/files?limit=2&order=asc")
    assert [f["id"] for f in page["data"]] == [ids[0], ids[1]]
    status, page = sim.api("GET", "/v1/files")
    assert len(page["data"]) == 5 and page["has_more"] is False
    for bad in ("limit=0", "limit=10001", "limit=x", "after=file-nosuch", "order=up"):
        status, body = sim.api("GET", "/v1/files?" + bad)
        assert status == 400 and body["error"]["message"], bad


def test_the_simulators_files_have_their_content_and_can_be_deleted(sim):
    f = add_file(sim, size=1000, filename="s.jsonl")
    data = sim.content(f["id"])
    assert len(data) == f["bytes"] == 1000
    assert data.startswith(b'{"custom_id": "request-0", "pad": "')
    assert data.split(b"\n")[0].endswith(b'"}') and len(data.split(b"\n")[0]) == 99
    status, body = sim.api("DELETE", "/v1/files/" + f["id"])
    assert (status, body) == (200, {"id": f["id"], "object": "file", "deleted": True})
    assert sim.api("GET", "/v1/files/" + f["id"])[0] == 404
    assert sim.api("DELETE", "/v1/files/" + f["id"])[0] == 404


def test_following_the_links_of_many_batches_costs_one_file_list(sim, mount, tmp_path):
    bids = sim.seed(4, status="completed", total=3)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("cat batches/*/output.jsonl | wc -l")
    assert (rc, out.strip()) == (0, "12"), err
    log = [(r["method"], r["path"]) for r in sim.log()]
    assert log.count(("GET", "/v1/files")) == 1
    assert [p for mth, p in log if p.startswith("/v1/files/") and
            not p.endswith("/content")] == []
    assert sum(1 for mth, p in log if p.endswith("/content")) == len(bids)


def test_a_file_whose_id_is_by_name_is_left_out_with_a_log_line(sim, mount, tmp_path):
    good = add_file(sim, filename="x.jsonl", content="x\n")
    listing = sim.api("GET", "/v1/files")[1]
    clash = dict(good, id="by-name", created_at=good["created_at"] + 10)
    listing["data"] = [clash, good]
    sim.fault(method="GET", path="^/v1/files$", count=-1, action="body", body=listing)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("ls files")
    assert (rc, out.split()) == (0, ["by-name", good["id"]]), err
    # by-name/ is the directory of links, and the name's newest file is
    # the one that can be reached.
    assert os.readlink(os.path.join(m.path, "files/by-name/x.jsonl")) == "../" + good["id"]
    assert "left out 1 unusable and 0 repeated file ids" in read_text(
        os.path.join(m.path, "log"))


@pytest.mark.parametrize("fault, first", [
    ({"action": "lost"}, 200),
    ({"action": "status", "status": 500, "handled": True}, 500)])
def test_a_delete_whose_answer_was_lost_is_done(sim, mount, tmp_path, fault, first):
    """The server deleted the file, then its answer was lost (no answer, or
    a 500), and the retry got 404: the write succeeds, as the file is gone
    by its doing."""
    f = add_file(sim, filename="x.jsonl", content="x\n")
    m = mount(options=cache_opts(tmp_path))
    ctl = os.path.join(m.path, "files", f["id"], "ctl")
    os.stat(ctl)
    sim.fault(method="DELETE", **fault)
    sim.clear_log()
    assert try_write(ctl, b"delete\n") == 0
    assert [(r["method"], r["status"]) for r in sim.log()] == [("DELETE", first), ("DELETE", 404)]
    assert "delete %s: ok" % f["id"] in read_text(os.path.join(m.path, "log"))
    assert errno_of(os.stat, os.path.join(m.path, "files", f["id"])) == errno.ENOENT


def test_downloads_send_an_accept_that_admits_the_content(sim, mount, tmp_path):
    """Against a server that enforces content negotiation (406 when the
    Accept header does not admit the answer's type), contents and JSON
    answers both come through."""
    f = add_file(sim, filename="x.jsonl", content='{"a": 1}\n')
    sim.config(strict_accept=True)
    m = mount(options=cache_opts(tmp_path))
    rc, out, err = m.sh("ls files")
    assert (rc, out.split()) == (0, ["by-name", f["id"]]), err
    rc, out, err = m.sh("cat files/%s/filename files/%s/content" % (f["id"], f["id"]))
    assert (rc, out) == (0, 'x.jsonl\n{"a": 1}\n'), err
    assert [r["status"] for r in sim.log()] == [200, 200]
