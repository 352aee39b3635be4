"""Starting work when something goes wrong on the way: a creation whose
answer is lost is looked for, not reported as never made; a name the upload
would send altered is refused before any byte, so a lost answer never
leads to a second copy; each refused name, metadata value and completion
window is told with its own reason before any request. Each test acts
through a real shell and counts what the simulator got."""

import errno
import os
import time

import pytest

from conftest import errno_of, read_text
from test_retry import make_batch, retry
from test_submit import GOOD, creates, entries, log_text, server_files, uploads, write


def quoted(name):
    """name (bytes) as one bash word: $'...' with every byte escaped."""
    return "$'" + "".join("\\x%02x" % b for b in name) + "'"


def batches_of(sim, fid):
    return [b for b in sim.batches() if b["input_file_id"] == fid]


# --------------------------------------------------------------------------
# a creation whose answer is lost


def test_cp_into_batches_with_the_create_answer_lost_makes_one_batch(sim, mount, tmp_path):
    seeded = sim.seed(150)                 # hours old: the search stops at them
    m = mount()
    sim.fault(method="POST", path="^/v1/batches$", action="lost")
    rc, out, err = m.sh("cp %s batches/ && cat batches/new" % write(tmp_path, "l.jsonl", GOOD))
    assert rc == 0, err
    bid = out.strip()
    f = [x for x in server_files(sim) if x["filename"] == "l.jsonl"][0]
    (b,) = [x for x in sim.batches() if x["id"] not in seeded]
    assert b["id"] == bid and b["input_file_id"] == f["id"]
    assert len(creates(sim)) == 1 and len(uploads(sim)) == 1
    assert len(sim.requests("GET", "/v1/batches")) == 1    # one page of the newest
    assert bid in entries(m, "batches")
    assert read_text(m.batch(bid, "input_file_id")) == f["id"] + "\n"
    text = log_text(m)
    assert "create batch from %s: no answer, but the server has it as %s" % (f["id"], bid) in text
    assert "batches/new can make one" not in text
    assert len(creates(sim)) == 1


def test_new_with_the_create_answer_lost_gives_the_batch_made(sim, mount, tmp_path):
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "n.jsonl", GOOD))
    assert rc == 0, err
    (f,) = server_files(sim)
    # an older batch of the same file, made elsewhere, is not the one made
    old = sim.create({"input_file_id": f["id"], "status": "completed",
                      "created_at": int(time.time()) - 7200})
    sim.fault(method="POST", path="^/v1/batches$", action="lost")
    rc, out, err = m.sh("exec 3<> batches/new && echo input_file_id=%s metadata.k=v >&3 && "
                        "read id <&3 && echo $id && cat batches/new" % f["id"])
    assert rc == 0, err
    bid, again = out.split()
    assert bid == again and bid != old["id"]
    assert len(creates(sim)) == 1
    made = [b for b in batches_of(sim, f["id"]) if b["id"] != old["id"]]
    assert [b["id"] for b in made] == [bid]
    assert made[0]["metadata"] == {"k": "v"}
    assert bid in entries(m, "batches")
    assert "no answer, but the server has it as %s" % bid in log_text(m)


def test_a_create_that_made_nothing_is_not_taken_for_an_earlier_batch(sim, mount, tmp_path):
    """A batch this mount made before from the same file is not the one a
    dropped creation made: nothing was made, and the write says so."""
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "e.jsonl", GOOD))
    (f,) = server_files(sim)
    rc, out, err = m.sh("echo input_file_id=%s > batches/new && cat batches/new" % f["id"])
    assert rc == 0, err
    first = out.strip()
    sim.fault(method="POST", path="^/v1/batches$", action="drop")
    rc, out, err = m.sh("echo input_file_id=%s > batches/new" % f["id"])
    assert rc != 0, err
    assert [b["id"] for b in sim.batches()] == [first]
    assert len(sim.requests("GET", "/v1/batches")) == 1     # it was looked for
    assert "the server has it as %s" % first not in log_text(m)
    assert read_text(os.path.join(m.path, "batches", "new")) == first + "\n"


def test_a_lost_create_that_cannot_be_looked_for_is_told_unknown(sim, mount, tmp_path):
    m = mount(timeout=3, options=["retries=0"])
    sim.faults([{"method": "POST", "path": "^/v1/batches$", "action": "lost"},
                {"method": "GET", "path": "^/v1/batches$", "action": "status",
                 "status": 500, "count": -1}])
    rc, out, err = m.sh("cp %s batches/" % write(tmp_path, "u.jsonl", GOOD))
    assert rc != 0, err
    sim.clear_faults()
    (f,) = server_files(sim)
    assert len(batches_of(sim, f["id"])) == 1 and len(creates(sim)) == 1
    text = log_text(m)
    assert "u.jsonl: uploaded as %s, which stays; whether a batch was made of it is " \
        "unknown" % f["id"] in text, text[-2000:]
    assert "batches/new can make one" not in text
    assert "no batch was made" not in text
    # batches/new likewise: unknown, never "make another"
    sim.faults([{"method": "POST", "path": "^/v1/batches$", "action": "lost"},
                {"method": "GET", "path": "^/v1/batches$", "action": "status",
                 "status": 500, "count": -1}])
    rc, out, err = m.sh("echo input_file_id=%s > batches/new" % f["id"])
    assert rc != 0 and "Input/output error" in err, err
    sim.clear_faults()
    assert len(batches_of(sim, f["id"])) == 2 and len(creates(sim)) == 2
    assert "whether a batch was made is unknown: look for %s in batches/*/input_file_id" \
        % f["id"] in log_text(m)


def test_a_retry_with_the_create_answer_lost_names_the_batch_made(sim, mount):
    """retry shares the creation: its lost answer is found, not reported
    as a failure that invites a second retry."""
    bid = make_batch(sim, "completed", failed=2)
    m = mount()
    sim.fault(method="POST", path="^/v1/batches$", action="lost")
    rc, err, text = retry(m, bid)
    assert rc == 0, err
    made = [b for b in sim.batches() if b["id"] != bid]
    assert len(made) == 1 and len(creates(sim)) == 1
    assert text == "retry: ok %s\n" % made[0]["id"]
    assert made[0]["id"] in entries(m, "batches")


def test_a_retry_whose_creation_is_unknown_is_never_sent_again(sim, mount):
    """A retry whose creation got no answer, and whose batch list cannot be
    read, fails with EIO and keeps its claim: a second retry sends nothing
    and says why, so the same requests are never made a batch twice."""
    bid = make_batch(sim, "completed", failed=2)
    m = mount(timeout=3, options=["retries=0"])
    # The first listing (is it retried already?) is read; the search after
    # the lost creation is not.
    sim.faults([{"method": "POST", "path": "^/v1/batches$", "action": "lost"},
                {"method": "GET", "path": "^/v1/batches$", "action": "status",
                 "status": 500, "count": -1, "skip": 1}])
    rc, err, text = retry(m, bid)
    assert rc != 0 and "Input/output error" in err, err
    assert "unknown" in text, text
    sim.clear_faults()
    assert len(creates(sim)) == 1
    rc, err, text = retry(m, bid)
    assert rc != 0 and "Input/output error" in err, err
    assert "no answer" in text and "input_file_id" in text, text
    assert len(creates(sim)) == 1 and len(uploads(sim)) == 1


def test_a_create_refused_by_the_server_is_not_looked_for(sim, mount, tmp_path):
    """A 400 is a known outcome: nothing was made, and no listing is read."""
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "r.jsonl", GOOD))
    (f,) = server_files(sim)
    sim.clear_log()
    sim.fault(method="POST", path="^/v1/batches$", action="status", status=400)
    rc, out, err = m.sh("echo input_file_id=%s > batches/new" % f["id"])
    assert rc != 0, err
    assert len(creates(sim)) == 1 and sim.requests("GET", "/v1/batches") == []
    assert sim.batches() == []


# --------------------------------------------------------------------------
# names the upload would send altered


ODD = [
    (b'quo"te.jsonl', 'holds " or \\'),
    (b"back\\slash.jsonl", 'holds " or \\'),
    (b"two\\\\bs.jsonl", 'holds " or \\'),
    (b"bad\xff.jsonl", "is not UTF-8 text"),
    (b"sur\xed\xa0\x80.jsonl", "is not UTF-8 text"),
    (b" lead.jsonl", "starts with white space"),
    (b"\xe3\x80\x80ideo.jsonl", "starts with white space"),
    (b"cr\rx.jsonl", "holds a control character"),
    (b".jsonl", "needs a stem before .jsonl"),
]


@pytest.mark.parametrize("dest", ["files", "batches"])
@pytest.mark.parametrize("name, why", ODD, ids=[repr(n)[2:-1] for n, _ in ODD])
def test_a_name_sent_altered_is_refused_so_a_lost_answer_leaves_one_copy(
        sim, mount, tmp_path, dest, name, why):
    m = mount(options=["retries=2"])
    sim.fault(method="POST", path="^/v1/files$", action="lost", count=-1)
    src = write(tmp_path, "odd.jsonl", GOOD)
    rc, out, err = m.sh("cp %s %s/%s" % (src, dest, quoted(name)))
    files = server_files(sim)
    assert len(files) <= 1, files           # never two copies
    assert rc != 0 and "Invalid argument" in err, (rc, err, files)
    assert ": the name %s" % why in log_text(m), log_text(m)[-2000:]
    assert uploads(sim) == [] and creates(sim) == [] and files == []
    assert errno_of(os.stat, os.path.join(os.fsencode(m.path), dest.encode(), name)) == errno.ENOENT


FINE = [b"d\xc3\xa9j\xc3\xa0 vu.jsonl", b"it's;50%.jsonl", b"pct%22.jsonl", b"a\xc2\xa0b.jsonl"]


@pytest.mark.parametrize("name", FINE, ids=[repr(n)[2:-1] for n in FINE])
def test_a_name_sent_as_it_is_is_found_after_a_lost_answer(sim, mount, tmp_path, name):
    m = mount(options=["retries=2"])
    sim.fault(method="POST", path="^/v1/files$", action="lost")
    rc, out, err = m.sh("cp %s files/%s" % (write(tmp_path, "x.jsonl", GOOD), quoted(name)))
    assert rc == 0, err
    (f,) = server_files(sim)
    assert f["filename"] == name.decode()
    assert len(uploads(sim)) == 1
    assert f["id"] in entries(m, "files")


# --------------------------------------------------------------------------
# parameters of batches/new that the API would refuse


@pytest.mark.parametrize("words, why", [
    ("metadata.team=$'\\xff'", "the value of metadata.team is not UTF-8 text"),
    ("metadata.team=$'caf\\xc3'", "the value of metadata.team is not UTF-8 text"),
    ("metadata.$'\\xed\\xa0\\x80'=v", "a parameter is not UTF-8 text"),
    ("completion_window=0012h", 'completion_window "0012h" must be hours or days'),
    ("completion_window=024h", 'completion_window "024h" must be hours or days'),
], ids=["meta_ff", "meta_cut", "meta_key", "window_0012h", "window_024h"])
def test_parameters_the_api_would_refuse_send_nothing(sim, mount, words, why):
    m = mount()
    rc, out, err = m.sh("echo input_file_id=file-x %s > batches/new" % words)
    assert rc != 0 and "Invalid argument" in err, err
    assert "batches/new: " + why in log_text(m), log_text(m)[-1000:]
    assert sim.log() == []
    assert read_text(os.path.join(m.path, "batches", "new")) == ""


def test_a_completion_window_with_leading_zeros_is_refused_at_mount(sim, mount):
    sim.clear_log()
    m = mount(options=["completion_window=0012h"], wait=False)
    assert m.wait_exit() != 0
    assert "completion_window must be hours or days from 12h to 7d" in m.stderr_text()
    assert sim.log() == []


@pytest.mark.parametrize("window", ["12h", "1d", "7d", "168h"])
def test_the_documented_windows_are_sent(sim, mount, tmp_path, window):
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "w.jsonl", GOOD))
    (f,) = server_files(sim)
    rc, out, err = m.sh("echo input_file_id=%s completion_window=%s metadata.who=$'\\xc3\\xa9' "
                        "> batches/new && cat batches/new" % (f["id"], window))
    assert rc == 0, err
    obj = sim.get(out.strip())
    assert (obj["completion_window"], obj["metadata"]) == (window, {"who": "\u00e9"})
