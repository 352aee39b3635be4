#!/usr/bin/env python3
"""Reading a 100 MB file content (dd, 128 KiB reads, as cat) through kimifs, cold (downloaded while it
is read) and then from the disk cache (a second mount on the same
cache_dir, so the kernel's page cache of the first mount plays no part),
against curl fetching the same content from the same simulator in the same
run and against reading the cache file directly. The daemon's resident
memory is sampled throughout. Results: docs/benchmarks.md, Contents.

    python3 bench/content.py [--size MB] [--runs N] [--bs KiB] [--bin build/kimifs]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import KEY, REPO, control, mounted, rss_kib, simulator  # noqa: E402


def timed_read(path, bs):
    """Seconds for dd to read path to the end in reads of bs bytes (a
    process, as curl is), and the length read."""
    t0 = time.monotonic()
    r = subprocess.run(["dd", "if=" + path, "of=/dev/null", "bs=%d" % bs],
                       capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - t0
    return elapsed, int(r.stderr.split("\n")[2].split()[0])


def drop_page_cache(path):
    """Ask the kernel to forget path's pages (a cold read of the disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class Peak:
    """The daemon's peak VmRSS while the block runs."""

    def __init__(self, pid):
        self.pid, self.kib, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        def run():
            while not self.stop.is_set():
                self.kib = max(self.kib, rss_kib(self.pid))
                self.stop.wait(0.02)
        self.t = threading.Thread(target=run)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=100, help="MB (default 100)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bs", type=int, default=128, help="KiB per read (default 128, as cat)")
    p.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    a = p.parse_args()
    a.bs *= 1024
    size = a.size * 1000 * 1000
    rows = []
    with simulator() as url:
        for run in range(a.runs):
            cache = tempfile.mkdtemp(prefix="kimifs-bench-cache-")
            try:
                fid = control(url, "POST", "/_sim/files", {"size": size})["id"]
                # curl: the same bytes, same server, to /dev/null.
                t0 = time.monotonic()
                subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H",
                                "Authorization: Bearer " + KEY,
                                "%s/v1/files/%s/content" % (url, fid)], check=True)
                curl_s = time.monotonic() - t0
                # curl keeping it: to a file beside the cache, synced.
                out = os.path.join(cache, "curl-out")
                t0 = time.monotonic()
                subprocess.run(["curl", "-sS", "-o", out, "-H",
                                "Authorization: Bearer " + KEY,
                                "%s/v1/files/%s/content" % (url, fid)], check=True)
                fd = os.open(out, os.O_RDONLY)
                os.fdatasync(fd)
                os.close(fd)
                curl_file_s = time.monotonic() - t0
                os.unlink(out)
                opts = ["cache_dir=" + cache, "timeout=120"]
                with mounted(a.bin, url, opts) as (mnt, fs):
                    with Peak(fs.pid) as peak:
                        cold_s, n = timed_read(os.path.join(mnt, "files", fid, "content"), a.bs)
                    assert n == size, n
                    cold_rss = peak.kib
                with mounted(a.bin, url, opts) as (mnt, fs):
                    drop_page_cache(os.path.join(cache, fid))
                    with Peak(fs.pid) as peak:
                        warm_s, n = timed_read(os.path.join(mnt, "files", fid, "content"), a.bs)
                    assert n == size, n
                    warm_rss = peak.kib
                drop_page_cache(os.path.join(cache, fid))
                direct_s, n = timed_read(os.path.join(cache, fid), a.bs)
                rows.append((curl_s, curl_file_s, cold_s, warm_s, direct_s, cold_rss,
                             warm_rss))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    mb = size / 1e6
    print("%d MB, %d runs, reads of %d KiB (MB/s; ratios: cold/curl, cached/direct)"
          % (a.size, len(rows), a.bs // 1024))
    print("%-4s %7s %7s %7s %7s %7s %7s %7s %7s %9s %9s" % (
        "run", "curl", "curl>f", "cold", "cached", "direct", "co/curl", "co/c>f",
        "cach/dir", "RSS cold", "RSS cach"))
    for i, (c, cf, co, w, d, r1, r2) in enumerate(rows):
        print("%-4d %7.0f %7.0f %7.0f %7.0f %7.0f %7.2f %7.2f %7.2f %6d KiB %6d KiB" % (
            i + 1, mb / c, mb / cf, mb / co, mb / w, mb / d, c / co, cf / co, d / w, r1, r2))
    med = lambda k: sorted(r[k] for r in rows)[len(rows) // 2]
    c, cf, co, w, d = (med(k) for k in range(5))
    print("median %7.0f %7.0f %7.0f %7.0f %7.0f %7.2f %7.2f %7.2f   (each column's median)" % (
        mb / c, mb / cf, mb / co, mb / w, mb / d, c / co, cf / co, d / w))
    print("curl: to /dev/null; curl>f: to a file, synced; cold: through kimifs, "
          "downloading; cached: a second mount, from the disk cache (its page "
          "cache dropped); direct: the cache file itself (page cache dropped)")

if __name__ == "__main__":
    main()
