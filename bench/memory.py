#!/usr/bin/python3
"""Benchmark of the daemon's memory under repeated listings: does RSS stay
flat when `ls batches` runs again and again, four shells at a time? And
what does one listed batch cost?

    bench/memory.py [--batches N] [--rounds R] [--bin build/kimifs]
                    [--arenas A] [--per-batch M] [--check]

With cache_ttl=0 every `ls` fetches every page again and replaces every
cached batch; the daemon's resident memory is printed every 10 rounds.
--arenas sets MALLOC_ARENA_MAX for the daemon (to compare with glibc's
default, which kimifs otherwise overrides to 2). --per-batch M (e.g. 50000)
instead mounts on M running batches and prints the daemon's RSS before and
after one `ls batches`, and the difference per batch. --check instead
measures the upload check: for each worst input of 100 MiB (the most lines,
as the shortest valid requests with distinct ids; the longest ids, 900
bytes each; a line of 32 MiB of millions of small values, or of one object
of millions of keys), it prints the daemon's RSS before `cp FILE files/`
and its peak (VmHWM) after, and how long the cp took. The last line of each file
repeats the first id, so the whole file is checked and refused (the repeat
read back from the staged file), and nothing is uploaded.
"""

import argparse
import os
import time

import subprocess
import tempfile

from common import REPO, control, hwm_kib, mounted, rss_kib, run, simulator

LIMIT = 100 << 20


def request(cid):
    return (b'{"custom_id":"%s","method":"POST","url":"/v1/chat/completions",'
            b'"body":{"model":"m"}}\n' % cid)


def worst_file(path, id_width):
    """Write up to LIMIT bytes of requests with distinct ids (hex, padded
    to id_width), the last repeating the first; returns the line count."""
    n = 0
    size = 0
    first = None
    with open(path, "wb") as f:
        chunk = []
        while True:
            cid = (b"%x" % n).rjust(id_width, b"0")
            line = request(cid)
            if size + 2 * len(line) > LIMIT:
                break
            first = first or cid
            chunk.append(line)
            size += len(line)
            n += 1
            if len(chunk) == 50_000:
                f.write(b"".join(chunk))
                chunk = []
        chunk.append(request(first))
        f.write(b"".join(chunk))
    return n + 1


def huge_line(path, kind):
    """One line of almost 32 MiB (the longest the check takes) holding
    millions of small values ("values") or one object of millions of keys
    ("keys"), then a line repeating its id; returns the line count."""
    room = (32 << 20) - 200
    if kind == "values":
        inner = ",".join(["0"] * (room // 2))
        body = '{"model":"m","x":[%s]}' % inner
    else:
        inner = ",".join('"k%08d":0' % i for i in range(room // 14))
        body = '{"model":"m","x":{%s}}' % inner
    with open(path, "w") as f:
        f.write('{"custom_id":"1","method":"POST","url":"/v1/chat/completions",'
                '"body":%s}\n' % body)
        f.write(request(b"1").decode())
    return 2


def check(binary):
    rows = []
    work = tempfile.mkdtemp(prefix="kimifs-bench-check-")
    inputs = (("shortest lines", lambda p: worst_file(p, 1)),
              ("900-byte ids", lambda p: worst_file(p, 900)),
              ("a 32 MiB line of 16 million values", lambda p: huge_line(p, "values")),
              ("a 32 MiB line, one object of 2.4 million keys", lambda p: huge_line(p, "keys")))
    try:
        for label, make in inputs:
            path = os.path.join(work, "worst.jsonl")
            lines = make(path)
            with simulator() as url:
                with mounted(binary, url, ["timeout=600"]) as (mnt, fs):
                    before = rss_kib(fs.pid)
                    t = time.monotonic()
                    cp = subprocess.run(["cp", path, "files/"], cwd=mnt,
                                        stderr=subprocess.PIPE)
                    took = time.monotonic() - t
                    peak = hwm_kib(fs.pid)
                    uploads = [r for r in control(url, "GET", "/_sim/log")["requests"]
                               if r["method"] == "POST"]
            assert cp.returncode != 0 and not uploads, "the worst file was not refused"
            rows.append((label, lines, os.path.getsize(path), before, peak, took))
            os.unlink(path)
    finally:
        os.rmdir(work)
    print("kimifs upload check memory: %s, %s" % (binary, time.strftime("%Y-%m-%d")))
    print("| input | lines | bytes | RSS before (MiB) | peak (MiB) | growth (MiB) | cp (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, lines, size, before, peak, took in rows:
        print("| %s | %s | %s | %.1f | %.1f | %.1f | %.1f |"
              % (label, format(lines, ","), format(size, ","), before / 1024,
                 peak / 1024, (peak - before) / 1024, took))


def per_batch(binary, n):
    with simulator() as url:
        control(url, "POST", "/_sim/seed", {"count": n, "status": "in_progress"})
        with mounted(binary, url, ["cache_ttl=3600", "timeout=600"]) as (mnt, fs):
            before = rss_kib(fs.pid)
            run("ls batches >/dev/null", mnt)
            after = rss_kib(fs.pid)
    print("kimifs memory per listed batch: %d batches, %s" % (n, time.strftime("%Y-%m-%d")))
    print("RSS before the listing %.1f MiB, after %.1f MiB: %.0f bytes per batch"
          % (before / 1024, after / 1024, (after - before) * 1024 / n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--arenas", type=int, default=0,
                    help="MALLOC_ARENA_MAX for the daemon (0: kimifs's own)")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    ap.add_argument("--per-batch", type=int, default=0, metavar="M",
                    help="measure the memory of one listing of M batches")
    ap.add_argument("--check", action="store_true",
                    help="measure the upload check's memory on worst inputs")
    args = ap.parse_args()
    if args.arenas:
        os.environ["MALLOC_ARENA_MAX"] = str(args.arenas)
    if args.per_batch:
        per_batch(args.bin, args.per_batch)
        return
    if args.check:
        check(args.bin)
        return

    with simulator() as url:
        control(url, "POST", "/_sim/seed", {"count": args.batches, "status": "in_progress"})
        with mounted(args.bin, url, ["cache_ttl=0"]) as (mnt, fs):
            rss = []
            for i in range(args.rounds):
                run("for j in 1 2 3 4; do ls batches >/dev/null & done; wait", mnt)
                if i % 10 == 9:
                    rss.append(rss_kib(fs.pid) / 1024)
    print("kimifs memory benchmark: %d batches, %d rounds of 4 parallel `ls`, "
          "arenas %s, %s" % (args.batches, args.rounds, args.arenas or "kimifs (2)",
                             time.strftime("%Y-%m-%d")))
    print("RSS (MiB) every 10 rounds: " + ", ".join("%.0f" % r for r in rss))


if __name__ == "__main__":
    main()
