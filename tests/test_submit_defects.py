"""Starting work when something goes wrong on the way: a creation whose
answer is lost is looked for, not reported as never made; a name the upload
would send altered is refused before any byte, so a lost answer never
leads to a second copy; each refused name, metadata value and completion
window is told with its own reason before any request. Each test acts
through a real shell and counts what the simulator got."""

import errno
import os

import pytest

from conftest import errno_of, read_text
from test_submit import GOOD, creates, entries, log_text, server_files, uploads, write


def quoted(name):
    """name (bytes) as one bash word: $'...' with every byte escaped."""
    return "$'" + "".join("\\x%02x" % b for b in name) + "'"


def batches_of(sim, fid):
    return [b for b in sim.batches() if b["input_file_id"] == fid]


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
