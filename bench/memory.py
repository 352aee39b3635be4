#!/usr/bin/python3
"""Benchmark of the daemon's memory under repeated listings: does RSS stay
flat when `ls batches` runs again and again, four shells at a time?

    bench/memory.py [--batches N] [--rounds R] [--bin build/kimifs]
                    [--arenas A]

With cache_ttl=0 every `ls` fetches every page again and replaces every
cached batch; the daemon's resident memory is printed every 10 rounds.
--arenas sets MALLOC_ARENA_MAX for the daemon (to compare with glibc's
default, which kimifs otherwise overrides to 2).
"""

import argparse
import os
import time

from common import REPO, control, mounted, rss_kib, run, simulator


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--arenas", type=int, default=0,
                    help="MALLOC_ARENA_MAX for the daemon (0: kimifs's own)")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    args = ap.parse_args()
    if args.arenas:
        os.environ["MALLOC_ARENA_MAX"] = str(args.arenas)

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
