"""What kimifs checks before a file written into files/ or batches/ is
sent: a write that failed poisons the staged file (close returns its
error, nothing is sent), a write or truncate past 100 MiB is refused at
once, the upload check takes only JSON white space between tokens and no
key twice, a cut last line is named, and its memory stays bounded. Each
test acts through a shell and counts what the simulator got."""

import errno
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import read_text, wait_for
from test_submit import SANITIZED, creates, entries, line, log_text, server_files, uploads, write

DESTS = ["files", "batches"]


def lines(n, width=0):
    """n request lines with distinct ids, each padded by width bytes."""
    pad = "x" * width
    return "".join(line("r-%07d" % i, body={"model": "m", "pad": pad})
                   for i in range(n)).encode()


@pytest.fixture
def small_cache(tmp_path):
    """A directory on a 1 MiB tmpfs of its own, unmounted (lazily: the
    daemon may still hold it open) when the test ends."""
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(d)],
                   check=True)
    try:
        yield str(d)
    finally:
        subprocess.run(["umount", "-l", str(d)], check=True)


# --------------------------------------------------------------------------
# A write that failed


@pytest.mark.parametrize("dest", DESTS)
def test_a_failed_write_sends_nothing_and_says_why(sim, mount, tmp_path, small_cache, dest):
    """The cache dir fills up halfway: cp says ENOSPC, close returns it,
    the prefix that was written is neither uploaded nor made a batch (nor
    refused as a JSON error where the cut fell)."""
    src = write(tmp_path, "big.jsonl", lines(20_000, width=50))
    assert os.path.getsize(src) > 2 << 20
    m = mount(options=["cache_dir=" + small_cache])
    rc, out, err = m.sh("cp %s %s/" % (src, dest))
    assert rc != 0 and "No space left on device" in err, err
    text = log_text(m)
    assert "upload big.jsonl: not sent: a write to it failed: No space left on device" in text, text
    assert "not a JSON object" not in text and "cut short" not in text
    assert uploads(sim) == [] and creates(sim) == [] and server_files(sim) == []
    assert "big.jsonl" not in entries(m, dest)
    # The staged file is gone: the space is free for the next upload.
    assert not [n for n in os.listdir(small_cache) if n.startswith(".tmp-stage")]
    rc, out, err = m.sh("cp %s %s/" % (write(tmp_path, "ok.jsonl", lines(3)), dest))
    assert rc == 0, err
    assert len(uploads(sim)) == 1


def test_a_failed_write_poisons_the_file_for_the_writers_close(sim, mount, tmp_path, small_cache):
    """A writer that goes on after ENOSPC and closes normally: close
    returns ENOSPC and nothing is sent."""
    m = mount(options=["cache_dir=" + small_cache])
    path = os.path.join(m.path, "files", "w.jsonl")
    script = r"""
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
data = sys.stdin.buffer.read()
try:
    while data:
        data = data[os.write(fd, data):]
    print("write ok")
except OSError as e:
    print("write", errno.errorcode[e.errno])
try:
    os.close(fd)
    print("close ok")
except OSError as e:
    print("close", errno.errorcode[e.errno])
"""
    proc = subprocess.run(["/usr/bin/python3", "-c", script, path], input=lines(20_000, 50),
                          capture_output=True, timeout=60)
    assert proc.stdout.decode().split("\n")[:2] == ["write ENOSPC", "close ENOSPC"], proc
    assert "upload w.jsonl: not sent: a write to it failed" in log_text(m)
    assert uploads(sim) == []


# --------------------------------------------------------------------------
# The size limit at write time


def test_a_write_past_100_mib_is_efbig_at_once(sim, mount):
    """dd seek=100G: refused at that write (it used to make close scan
    100 GB of holes), nothing sent."""
    m = mount()
    t0 = time.monotonic()
    rc, out, err = m.sh("dd if=/dev/zero of=files/far.jsonl bs=1 count=1 seek=100G status=none")
    took = time.monotonic() - t0
    assert rc != 0 and "File too large" in err, err
    assert took < 30, took
    text = log_text(m)
    assert "far.jsonl: a write or resize to 107374182401 bytes is past the API's limit " \
        "of 100 MiB" in text, text
    assert "not a JSON object" not in text
    rc, out, err = m.sh("truncate -s 101M files/t.jsonl")
    assert rc != 0 and "File too large" in err, err
    assert uploads(sim) == [] and creates(sim) == []
    assert "far.jsonl" not in entries(m, "files") and "t.jsonl" not in entries(m, "files")


def test_a_file_over_100_mib_gets_only_the_size_reason(sim, mount, tmp_path):
    """cp of 101 MiB of valid lines: the write that passes the limit is
    EFBIG; the log gives the size alone (no false JSON error where the
    limit cut a line)."""
    src = tmp_path / "over.jsonl"
    with open(src, "wb") as f:
        chunk = lines(1000, width=1000)
        i = 0
        while f.tell() <= (101 << 20):
            f.write(chunk.replace(b'"r-', b'"%d-' % i))
            i += 1
    m = mount()
    rc, out, err = m.sh("cp %s files/" % src, timeout=120)
    assert rc != 0 and "File too large" in err, err
    text = log_text(m)
    assert "over.jsonl: a write or resize to" in text and "limit of 100 MiB" in text, text
    assert "not a JSON object" not in text and "cut short" not in text, text
    assert uploads(sim) == [] and "over.jsonl" not in entries(m, "files")


# --------------------------------------------------------------------------
# The upload check: JSON white space, keys twice, a cut last line

GOOD1 = line("a").rstrip("\n")
# A shell builtin ignores the error of its close: each writes through cat.
BAD = [
    # a line after a hole: a write at an offset
    ("hole.jsonl", "printf '%%s\\n' '%s' | dd of={dest}/hole.jsonl bs=1 seek=100 status=none" % GOOD1,
     "hole.jsonl:1: byte 0x00 at column 1 is not JSON white space"),
    ("ctl.jsonl", "printf '\\001\\002%s\\n' | cat > {dest}/ctl.jsonl" % GOOD1,
     "ctl.jsonl:1: byte 0x01 at column 1 is not JSON white space"),
    # 98 NULs left by an ftruncate, then the line
    ("trunc.jsonl", "/usr/bin/python3 -c 'import os, sys; fd = os.open(\"{dest}/trunc.jsonl\", "
     "os.O_WRONLY | os.O_CREAT); os.ftruncate(fd, 98); os.pwrite(fd, sys.argv[1].encode(), 98); "
     "os.close(fd)' '%s'" % line("a"),
     "trunc.jsonl:1: byte 0x00 at column 1 is not JSON white space"),
    ("mid.jsonl", "printf '%s\\n' | tr '@' '\\037' > {dest}/mid.jsonl"
     % GOOD1.replace('"method"', '@"method"'),
     "mid.jsonl:1: byte 0x1f at column"),
    ("instr.jsonl", "printf '%s\\n' | tr '@' '\\001' > {dest}/instr.jsonl"
     % GOOD1.replace("hi a", "hi@a"),
     "instr.jsonl:1: byte 0x01 at column"),
    ("twice.jsonl", "printf '%%s\\n' '%s' '%s' | cat > {dest}/twice.jsonl"
     % (GOOD1.replace('"custom_id": "a"', '"custom_id": "a", "custom_id": "b"'),
        line("b").rstrip("\n")),
     'twice.jsonl:1: key "custom_id" twice in one object'),
    ("deep.jsonl", "printf '%%s\\n' '%s' | cat > {dest}/deep.jsonl"
     % GOOD1.replace('"role": "user"', '"role": "user", "role": "system"'),
     'deep.jsonl:1: key "role" twice in one object'),
    ("after.jsonl", "printf '%%s\\n' '%s x' | cat > {dest}/after.jsonl" % GOOD1,
     "after.jsonl:1: text after the JSON object at column"),
    # a writer cut short: the last line has no newline and is no whole object
    ("cut.jsonl", "printf '%%s' '%s' | cat > {dest}/cut.jsonl" % (line("a") + GOOD1[:40]),
     "cut.jsonl:2: the file ends inside this line: no newline after it and not a whole "
     "JSON object (cut short?)"),
]


@pytest.mark.parametrize("dest", DESTS)
@pytest.mark.parametrize("name, cmd, reason", BAD, ids=[b[0] for b in BAD])
def test_the_check_takes_only_json_white_space_and_keys_once(sim, mount, dest, name, cmd, reason):
    m = mount()
    rc, out, err = m.sh(cmd.replace("{dest}", dest))
    assert rc != 0 and "Invalid argument" in err, (rc, err)
    text = log_text(m)
    assert "upload %s: refused, it breaks the rules" % name in text, text
    assert reason in text, text
    assert uploads(sim) == [] and creates(sim) == [] and server_files(sim) == []
    assert name not in entries(m, dest)


def test_complete_lines_pass_whatever_white_space_stands_between(sim, mount, tmp_path):
    """Space, tab and CR between tokens, a last line without newline, and
    the same key in two objects: all valid, sent as written (pins)."""
    data = ('{ "custom_id" :\t"a" , "method":"POST","url":"/v1/chat/completions",'
            '"body":{"model":"m","messages":[{"role":"user","content":"x"},'
            '{"role":"user","content":"y"}]}}\r\n' + line("b", "m").rstrip("\n")).encode()
    m = mount()
    rc, out, err = m.sh("cp %s files/" % write(tmp_path, "ws.jsonl", data))
    assert rc == 0, err
    (f,) = server_files(sim)
    assert sim.content(f["id"]) == data


# --------------------------------------------------------------------------
# Memory


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def test_the_check_of_100mb_of_short_lines_stays_under_48_mib(sim, mount, tmp_path):
    """The worst input for the table of custom_ids: as many lines with
    distinct ids as fit in 100 MB (the shortest valid requests). The last
    line repeats the first id, so the whole file is checked and refused
    (the repeat is confirmed by reading line 1 back) and nothing is sent.
    The daemon's peak RSS grows by less than 48 MiB."""
    src = tmp_path / "short.jsonl"
    limit = 100 << 20
    n = 0
    with open(src, "wb") as f:
        buf = []
        size = 0
        while True:
            ln = b'{"custom_id":"%x","method":"POST","url":"/v1/chat/completions",' \
                 b'"body":{"model":"m"}}\n' % n
            if size + 2 * len(ln) > limit:
                break
            buf.append(ln)
            size += len(ln)
            n += 1
            if len(buf) == 100_000:
                f.write(b"".join(buf))
                buf = []
        buf.append(b'{"custom_id":"0","method":"POST","url":"/v1/chat/completions",'
                   b'"body":{"model":"m"}}\n')
        f.write(b"".join(buf))
    assert os.path.getsize(src) <= limit and n > 1_000_000
    m = mount()
    before = vm_kib(m.proc.pid, "VmRSS")
    rc, out, err = m.sh("cp %s files/" % src, timeout=300)
    assert rc != 0 and "Invalid argument" in err, err
    text = log_text(m)
    assert 'short.jsonl:%d: custom_id "0" repeats line 1' % (n + 1) in text, text[-2000:]
    peak = vm_kib(m.proc.pid, "VmHWM")
    # AddressSanitizer's quarantine and shadow are allowed on top.
    allowed = (48 << 10) + ((512 << 10) if SANITIZED else 0)
    assert peak - before < allowed, (before, peak)
    assert uploads(sim) == []


def test_the_check_of_a_32_mib_line_of_small_values_stays_under_48_mib(sim, mount, tmp_path):
    """The longest line the check takes, holding 16 million small values:
    read without a JSON tree (one cost 64 bytes and more per value, 1.3 GiB
    here). The second line repeats the id, so nothing is sent."""
    src = tmp_path / "wide.jsonl"
    head = '{"custom_id":"w","method":"POST","url":"/v1/chat/completions","body":{"model":"m","x":['
    n = ((32 << 20) - len(head) - 10) // 2
    with open(src, "w") as f:
        f.write(head + ",".join(["0"] * n) + "]}}\n")
        f.write('{"custom_id":"w","method":"POST","url":"/v1/chat/completions",'
                '"body":{"model":"m"}}\n')
    m = mount()
    before = vm_kib(m.proc.pid, "VmRSS")
    rc, out, err = m.sh("cp %s files/" % src, timeout=300)
    assert rc != 0 and "Invalid argument" in err, err
    assert 'wide.jsonl:2: custom_id "w" repeats line 1' in log_text(m)
    peak = vm_kib(m.proc.pid, "VmHWM")
    allowed = (48 << 10) + ((512 << 10) if SANITIZED else 0)
    assert peak - before < allowed, (before, peak)
    assert uploads(sim) == []
