#!/usr/bin/python3
"""Benchmark of kimifs against the simulator: what common shell commands
cost in API calls, wall time and daemon memory.

    bench/bench.py [--batches N] [--latency S] [--bin build/kimifs]

It starts the simulator (tests/kimisim.py) on a free port, seeds N batches,
mounts kimifs on a temporary directory, runs each scenario, and prints one
table row per scenario: wall time, requests the server received, and the
daemon's resident memory afterwards. Everything is unmounted and stopped at
the end, also on failure. Results are written down in docs/benchmarks.md.
"""

import argparse
import os
import time

from common import REPO, control, mounted, rss_kib, run, simulator


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.0,
                    help="simulated server latency per request, seconds")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    args = ap.parse_args()

    with simulator() as url:
        control(url, "POST", "/_sim/seed", {"count": args.batches})
        control(url, "POST", "/_sim/config", {"latency": args.latency})
        with mounted(args.bin, url) as (mnt, fs):
            one = control(url, "GET", "/_sim/batches")[0]["id"]
            scenarios = [
                ("ls batches (cold)", "ls batches >/dev/null"),
                ("cat batches/*/status (listing fresh)", "cat batches/*/status >/dev/null"),
                ("ls -l batches (stat every entry)", "ls -l batches >/dev/null"),
                ("grep -l in_progress batches/*/status",
                 "grep -l in_progress batches/*/status >/dev/null || true"),
                ("100 x cat status of one batch",
                 "for i in $(seq 100); do cat batches/%s/status; done >/dev/null" % one),
                ("cat batches/*/batch.json (all objects)",
                 "cat batches/*/batch.json | wc -c >/dev/null"),
            ]
            print("kimifs benchmark: %d batches, server latency %.3f s, %s"
                  % (args.batches, args.latency, time.strftime("%Y-%m-%d")))
            print()
            print("| scenario | wall time (s) | API requests | daemon RSS (MiB) |")
            print("| --- | ---: | ---: | ---: |")
            for name, cmd in scenarios:
                control(url, "DELETE", "/_sim/log")
                wall = run(cmd, mnt)
                n = len(control(url, "GET", "/_sim/log")["requests"])
                print("| %s | %.3f | %d | %.1f |" % (name, wall, n, rss_kib(fs.pid) / 1024))


if __name__ == "__main__":
    main()
