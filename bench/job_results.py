#!/usr/bin/python3
"""Benchmark of jobs/NAME/results/ on a large job: what listing and reading
a job's merged results cost, in time and in the daemon's memory.

    bench/job_results.py [--requests N] [--parts P] [--bin build/kimifs]

A job of N requests (default 1,000,000) in P parts (default 20), every
request answered, and a round 1 that answers again every 10th request of
part 1, is made directly in the simulator (its files stored, not
uploaded: the simulator is then no bottleneck, and the API's 100 MB
bound does not apply). kimifs is mounted with a cache directory of its
own; each command runs in turn, then again on a second mount of the same
cache directory (the contents on disk: no download), and the table gives
the wall time of each and the daemon's peak resident memory (VmHWM).
"""

import argparse
import os
import shutil
import tempfile
import time

from common import REPO, control, hwm_kib, mounted, requests_logged, run, simulator


def answer(cid, content):
    return ('{"custom_id":"%s","response":{"status_code":200,"body":{"choices":'
            '[{"message":{"content":"%s"}}],"usage":{"prompt_tokens":12,'
            '"completion_tokens":8,"total_tokens":20}}}}' % (cid, content))


def job_batch(url, part, lines, retry=None):
    meta = {"kimifs_job": "big", "kimifs_part": part}
    if retry:
        meta["kimifs_retry"] = retry
    fid = control(url, "POST", "/_sim/files",
                  {"content": "\n".join(lines) + "\n", "purpose": "batch_output"})["id"]
    control(url, "POST", "/_sim/batches",
            {"status": "completed", "metadata": meta, "output_file_id": fid,
             "error_file_id": None,
             "request_counts": {"total": len(lines), "completed": len(lines),
                                "failed": 0}})


COMMANDS = (
    ("`ls jobs/big/results \\| wc -l`", "ls jobs/big/results | wc -l"),
    ("`ls jobs/big/results \\| wc -l` (index kept)", "ls jobs/big/results | wc -l"),
    ("`LC_ALL=C ls jobs/big/results \\| wc -l` (index kept)",
     "LC_ALL=C ls jobs/big/results | wc -l"),
    ("`ls -f jobs/big/results \\| wc -l` (unsorted, index kept)",
     "ls -f jobs/big/results | wc -l"),
    ("`cat results/id-0031337.txt`", "cat jobs/big/results/id-0031337.txt"),
    ("`cat results/id-0031337.json`", "cat jobs/big/results/id-0031337.json"),
    ("`cat usage/total_tokens`", "cat jobs/big/usage/total_tokens"),
    ("`tail -c 100 output.jsonl`", "tail -c 100 jobs/big/output.jsonl"),
    ("`wc -l output.jsonl` (every line)", "wc -l jobs/big/output.jsonl"),
)


def read_one(mnt, n):
    """The median wall time of open, read, close of one result file (a
    different one each time, none read before), from this process."""
    times = []
    for i in range(n):
        path = os.path.join(mnt, "jobs/big/results/id-%07d.txt" % (7919 * i + 13))
        t = time.monotonic()
        with open(path, "rb") as f:
            f.read()
        times.append(time.monotonic() - t)
    return sorted(times)[n // 2]


def measure(binary, url, cache):
    rows = []
    with mounted(binary, url, ["timeout=600", "cache_dir=" + cache]) as (mnt, fs):
        for what, cmd in COMMANDS:
            sent = requests_logged(url)
            t = run(cmd, mnt)
            rows.append((what, t, requests_logged(url) - sent))
        sent = requests_logged(url)
        t = read_one(mnt, 101)
        rows.append(("open, read, close one `.txt` (median of 101 files, in-process)",
                     t, requests_logged(url) - sent))
        return rows, hwm_kib(fs.pid) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--parts", type=int, default=20)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    args = ap.parse_args()
    per = args.requests // args.parts
    cache = tempfile.mkdtemp(prefix="kimifs-bench-cache-")
    os.rmdir(cache)  # kimifs makes and tags it
    try:
        with simulator() as url:
            t = time.monotonic()
            for p in range(args.parts):
                job_batch(url, "%d/%d" % (p + 1, args.parts),
                          [answer("id-%07d" % i, "answer %d" % i)
                           for i in range(p * per, (p + 1) * per)])
            job_batch(url, "1/1", [answer("id-%07d" % i, "again %d" % i)
                                   for i in range(0, per, 10)], retry="1")
            made = time.monotonic() - t
            first, hwm1 = measure(args.bin, url, cache)
            second, hwm2 = measure(args.bin, url, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("kimifs job results: %d requests in %d parts and a round 1 of %d "
          "(made in the simulator in %.1f s), %s, %s"
          % (per * args.parts, args.parts, len(range(0, per, 10)), made, args.bin,
             time.strftime("%Y-%m-%d")))
    print("| command | first mount (s) | requests | second mount, same cache (s) | requests |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (what, t1, n1), (_, t2, n2) in zip(first, second):
        print("| %s | %.3f | %d | %.3f | %d |" % (what, t1, n1, t2, n2))
    print("| VmHWM (MiB) | %.1f | | %.1f | |" % (hwm1, hwm2))


if __name__ == "__main__":
    main()
