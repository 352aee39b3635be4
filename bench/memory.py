#!/usr/bin/python3
"""Benchmark of the daemon's memory under repeated listings: does RSS stay
flat when `ls batches` runs again and again, four shells at a time? And
what does one listed batch cost?

    bench/memory.py [--batches N] [--rounds R] [--bin build/kimifs]
                    [--arenas A] [--per-batch M]

With cache_ttl=0 every `ls` fetches every page again and replaces every
cached batch; the daemon's resident memory is printed every 10 rounds.
--arenas sets MALLOC_ARENA_MAX for the daemon (to compare with glibc's
default, which kimifs otherwise overrides to 2). --per-batch M (e.g. 50000)
instead mounts on M running batches and prints the daemon's RSS before and
after one `ls batches`, and the difference per batch.
"""

import argparse
import os
import time

from common import REPO, control, mounted, rss_kib, run, simulator


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
    args = ap.parse_args()
    if args.arenas:
        os.environ["MALLOC_ARENA_MAX"] = str(args.arenas)
    if args.per_batch:
        per_batch(args.bin, args.per_batch)
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
