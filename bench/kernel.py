#!/usr/bin/python3
"""Benchmark of what the kernel side costs: a warm glob against the same
tree on tmpfs, and `df` and a cached read while many requests hang.

    bench/kernel.py [--batches N [N ...]] [--bin build/kimifs] [--runs R]
                    [--no-hung] [-o OPTION ...]

Warm glob: for each N (default 100, 1000 and 10000), N batches (all final,
then all running) are listed and read once with a long cache_ttl, so that
the timed `cat batches/*/status` sends no API request; the same files
copied to a tmpfs directory are read with the same command. The median of R
runs of each, their ratio, and the kernel's requests that reached kimifs
during one run (MOUNT/stats, "kernel") are printed. -o adds a mount option.

Hung requests: with 16 and 64 reads each waiting on a request the simulator
never answers, the time of `stat -f` (df) on the mount and of a `cat` of a
cached final batch (each capped at 10 s).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from common import REPO, control, mounted, requests_logged, run, simulator

GLOB = "cat batches/*/status >/dev/null"


def median_run(cmd, cwd, runs):
    return statistics.median(run(cmd, cwd) for _ in range(runs))


def kernel_requests(mnt):
    """The kernel's requests that reached kimifs so far (None before
    MOUNT/stats counted them)."""
    with open(os.path.join(mnt, "stats")) as f:
        return json.load(f).get("kernel")


def warm_glob(binary, n, status, runs, options):
    with simulator() as url:
        control(url, "POST", "/_sim/seed", {"count": n, "status": status})
        with mounted(binary, url, ["cache_ttl=3600", "timeout=600"] + options) as (mnt, fs):
            run("ls batches >/dev/null; " + GLOB, mnt)
            control(url, "DELETE", "/_sim/log")
            before = kernel_requests(mnt)
            run(GLOB, mnt)
            after = kernel_requests(mnt)
            per_file = ("" if not before else
                        " ".join("%s %.1f" % (k, (after[k] - before[k]) / n)
                                 for k in sorted(after)))
            fuse = median_run(GLOB, mnt, runs)
            sent = requests_logged(url)
            shm = tempfile.mkdtemp(prefix="kimifs-bench-", dir="/dev/shm")
            try:
                os.mkdir(os.path.join(shm, "batches"))
                for bid in os.listdir(os.path.join(mnt, "batches")):
                    dst = os.path.join(shm, "batches", bid)
                    os.mkdir(dst)
                    shutil.copyfile(os.path.join(mnt, "batches", bid, "status"),
                                    os.path.join(dst, "status"))
                tmpfs = median_run(GLOB, shm, runs)
            finally:
                shutil.rmtree(shm)
    return fuse, tmpfs, sent, per_file


def capped(cmd, cwd, cap=10):
    t = time.monotonic()
    try:
        subprocess.run(["bash", "-c", cmd], cwd=cwd, timeout=cap,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - t


def hung(binary, waiting):
    with simulator() as url:
        ids = control(url, "POST", "/_sim/seed", {"count": waiting, "status": "in_progress"})["ids"]
        done = control(url, "POST", "/_sim/seed", {"count": 1, "status": "completed"})["ids"][0]
        with mounted(binary, url, ["cache_ttl=0", "timeout=60"]) as (mnt, fs):
            run("ls batches >/dev/null; cat batches/%s/status" % done, mnt)
            control(url, "POST", "/_sim/faults", {"faults": [{
                "method": "GET", "path": "^/v1/batches/batch_", "count": -1,
                "action": "hang", "seconds": 120}]})
            control(url, "DELETE", "/_sim/log")
            readers = [subprocess.Popen(["cat", os.path.join(mnt, "batches", b, "status")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for b in ids]
            deadline = time.monotonic() + 20
            while requests_logged(url) < min(waiting, 10) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1)  # let every reader that can reach the server do so
            in_flight = requests_logged(url)
            df = capped("stat -f .", mnt)
            cat = capped("cat batches/%s/status" % done, mnt)
            control(url, "DELETE", "/_sim/faults")
            for r in readers:
                r.wait()
    return in_flight, df, cat


def fmt(t):
    return "> 10" if t is None else "%.3f" % t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    ap.add_argument("--no-hung", action="store_true",
                    help="skip the hung-request measurements")
    ap.add_argument("-o", dest="options", action="append", default=[],
                    help="a mount option for the warm glob (repeatable)")
    args = ap.parse_args()

    print("kimifs kernel-side benchmark: %s, %s" % (args.bin, time.strftime("%Y-%m-%d")))
    print()
    print("| warm `%s` | N | kimifs (s) | tmpfs (s) | ratio | API requests "
          "| kernel requests reaching kimifs, per file |" % GLOB.split(" >")[0])
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for n in args.batches:
        for status in ("completed", "in_progress"):
            fuse, tmpfs, sent, per_file = warm_glob(args.bin, n, status, args.runs,
                                                    args.options)
            print("| all %s | %d | %.3f | %.3f | %.1fx | %d | %s |"
                  % (status, n, fuse, tmpfs, fuse / tmpfs, sent, per_file))
    if args.no_hung:
        return
    print()
    print("| reads waiting on hung requests | requests in flight | `stat -f` (s) | cat of a final batch (s) |")
    print("| ---: | ---: | ---: | ---: |")
    for waiting in (16, 64):
        in_flight, df, cat = hung(args.bin, waiting)
        print("| %d | %d | %s | %s |" % (waiting, in_flight, fmt(df), fmt(cat)))


if __name__ == "__main__":
    main()
