"""What the kernel keeps (docs/filesystem.md, Freshness; docs/architecture.md,
Why the low-level API): a final batch's files are read from the kernel's
caches without reaching the daemon's lookup and read handlers; a non-final
batch is kept for at most cache_ttl and dropped as soon as the daemon learns
of a change, so a value whose length changed always reads whole and `stat`
agrees with it. MOUNT/stats' "kernel" counters say which requests of the
kernel reached the daemon."""

import errno
import json
import os
import time

from conftest import errno_of, read_text, try_write, wait_for


def kernel(m):
    return json.loads(read_text(os.path.join(m.path, "stats")))["kernel"]


def minus(a, b):
    return {k: a[k] - b[k] for k in a}


def size(m, bid, *names):
    rc, out, err = m.sh("stat -c %%s batches/%s/%s" % (bid, "/".join(names)))
    assert rc == 0, err
    return int(out)


def test_stats_counts_the_kernels_requests(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount()
    before = kernel(m)
    assert set(before) == {"lookup", "getattr", "open", "read"}
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    d = minus(kernel(m), before)
    assert d["lookup"] >= 2 and d["open"] >= 2 and d["read"] >= 2


def test_a_final_batch_is_read_without_reaching_the_daemon(sim, mount):
    (bid,) = sim.seed(1, status="completed")
    m = mount(cache_ttl=0)
    cmd = ("cat batches/{0}/status batches/{0}/batch.json batches/{0}/request_counts/total "
           ">/dev/null; stat batches/{0}/output_file_id >/dev/null").format(bid)
    rc, out, err = m.sh(cmd)
    assert rc == 0, err
    # what reading MOUNT/stats itself costs, measured twice in a row
    a = kernel(m)
    b = kernel(m)
    cost = minus(b, a)
    sim.clear_log()
    for _ in range(3):
        rc, out, err = m.sh(cmd)
        assert rc == 0, err
    d = minus(kernel(m), b)
    assert sim.log() == []
    # no lookup, no read: entries, attributes and pages come from the kernel
    # (each open still reaches the daemon; see docs/architecture.md)
    assert d["lookup"] == cost["lookup"], d
    assert d["read"] == cost["read"], d
    assert d["open"] == cost["open"] + 9, d


def head(m, bid, *names):
    """The file as `head -c` reads it: no stat, reads until the end the
    kernel knows of."""
    rc, out, err = m.sh("head -c 1000000 batches/%s/%s" % (bid, "/".join(names)))
    assert rc == 0, err
    return out


def test_after_a_refresh_the_kernel_shows_the_new_values_whole(sim, mount):
    (bid,) = sim.seed(1, status="in_progress", total=10)
    m = mount(cache_ttl=3600)
    files = ("status", "batch.json", "request_counts/completed")
    first = sim.get(bid)["request_counts"]["completed"]
    assert head(m, bid, "status") == "in_progress\n"
    old = head(m, bid, "batch.json")
    assert head(m, bid, "request_counts/completed") == "%d\n" % first
    # the kernel now holds their attributes, sizes included, for an hour
    rc, out, err = m.sh("stat %s >/dev/null" % " ".join("batches/%s/%s" % (bid, f)
                                                         for f in files))
    assert rc == 0, err
    assert size(m, bid, "status") == len("in_progress\n")
    assert size(m, bid, "batch.json") == len(old)

    # the server moves on: status shrinks, batch.json and a count grow
    sim.state(bid, "completed")
    obj = sim.get(bid)
    done = "%d\n" % obj["request_counts"]["completed"]
    assert len(done) > len("%d\n" % first)
    assert try_write(m.batch(bid, "ctl"), b"refresh\n") == 0

    # at once: sizes first, then the contents, whole
    assert size(m, bid, "status") == len("completed\n")
    assert size(m, bid, "request_counts", "completed") == len(done)
    new = head(m, bid, "batch.json")
    assert len(new) > len(old)
    assert json.loads(new) == obj
    assert size(m, bid, "batch.json") == len(new)
    assert head(m, bid, "status") == "completed\n"
    assert head(m, bid, "request_counts/completed") == done
    assert head(m, bid, "completed_at") == "%d\n" % obj["completed_at"]
    # and stays so: now final, kept by the kernel for good
    sim.clear_log()
    for _ in range(3):
        assert head(m, bid, "status") == "completed\n"
        assert read_text(m.batch(bid, "status")) == "completed\n"
        assert json.loads(head(m, bid, "batch.json")) == obj
    assert sim.log() == []


def test_a_value_that_grows_while_running_reads_whole(sim, mount):
    (bid,) = sim.seed(1, status="in_progress", total=10)
    m = mount(cache_ttl=3600)
    counts = m.batch(bid, "request_counts", "completed")
    assert read_text(counts) == "%d\n" % sim.get(bid)["request_counts"]["completed"]
    for value in (12345, 7, 1234567890):
        sim.set(bid, {"request_counts": {"total": 1234567890, "completed": value,
                                         "failed": 0}})
        assert try_write(m.batch(bid, "ctl"), b"refresh\n") == 0
        # the size first, as the kernel holds it, then the bytes
        assert size(m, bid, "request_counts", "completed") == len("%d\n" % value)
        assert head(m, bid, "request_counts/completed") == "%d\n" % value
        rc, out, err = m.sh("cat batches/%s/request_counts/completed" % bid)
        assert rc == 0 and out == "%d\n" % value, err


def test_a_running_batch_is_never_shown_older_than_cache_ttl(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=1)
    assert m.sh("cat batches/%s/status" % bid)[1] == "in_progress\n"
    assert size(m, bid, "status") == len("in_progress\n")
    sim.state(bid, "finalizing")
    changed = time.monotonic()

    def shown():
        rc, out, err = m.sh("cat batches/%s/status" % bid)
        return out == "finalizing\n"

    wait_for(shown, timeout=10, what="status to read finalizing")
    # an open after cache_ttl refetches: well within a loaded machine's slack
    assert time.monotonic() - changed < 1 + 5
    # the kernel was told: stat agrees with what cat read
    assert size(m, bid, "status") == len("finalizing\n")


def test_the_files_of_a_batch_gone_from_the_server_say_enoent(sim, mount):
    (bid,) = sim.seed(1, status="in_progress")
    m = mount(cache_ttl=0)
    assert m.sh("cat batches/%s/status batches/%s/metadata/x" % (bid, bid))[1] == "in_progress\n"
    sim.delete(bid)
    for name in ("status", "batch.json", "request_counts/total"):
        rc, out, err = m.sh("cat batches/%s/%s" % (bid, name))
        assert rc != 0 and os.strerror(errno.ENOENT) in err, err
    assert errno_of(os.stat, m.batch(bid, "status")) == errno.ENOENT
    assert m.proc.poll() is None
    assert bid not in os.listdir(m.batches)
