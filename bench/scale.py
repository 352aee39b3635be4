#!/usr/bin/python3
"""Scale benchmark: `ls batches | wc -l; cat batches/*/status | sort | uniq -c`
over N batches, side by side with what a plain client pays for the same
information.

    bench/scale.py [--n 100,1000,10000,50000] [--latency 0,0.02]
                   [--sdk-max 10000] [--bin build/kimifs]

For each N and each simulated server latency (the simulator's `latency`
config, added to every /v1/ answer) it runs, on a fresh simulator:

- list pages alone: a keep-alive HTTP client paging GET /v1/batches
  (limit 100); the floor for knowing every status;
- one GET per batch (the SDK way): the list pages, then GET /v1/batches/ID
  for each batch on the same connection (up to --sdk-max batches; skipped
  above, it would take N x latency);
- kimifs cold, default options (cache_ttl 1) and cache_ttl=600: the command
  on a fresh mount, all batches in_progress;
- kimifs warm: the same command again on an account where only the newest
  100 batches are not final, once the first listing is older than
  cache_ttl (default options; with cache_ttl=600 the listing is still
  young and nothing is sent);
- tmpfs: the same command over the same tree (one directory per batch with
  its status file) on a tmpfs.

It prints one row per run: wall time, requests the server received, the
daemon's RSS afterwards, and the ratios the performance goals are stated
in (requests against ceil(N/100), wall time against the list pages alone).
Everything is unmounted and stopped at the end, also on failure.
"""

import argparse
import http.client
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from common import KEY, REPO, control, mounted, requests_logged, rss_kib, simulator

COMMAND = ("ls batches | wc -l; "
           "printf '%s\\0' batches/*/status | xargs -0 cat | sort | uniq -c")


def plain_client(url, per_batch):
    """Page GET /v1/batches (limit 100) on one keep-alive connection, and
    with per_batch GET every batch too. Returns (statuses by id, seconds)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.connect()
    head = {"Authorization": "Bearer " + KEY}
    t = time.monotonic()
    statuses, after = {}, None
    while True:
        q = "limit=100" + ("&after=" + after if after else "")
        conn.request("GET", "/v1/batches?" + q, headers=head)
        page = json.loads(conn.getresponse().read())
        for b in page["data"]:
            statuses[b["id"]] = b["status"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    if per_batch:
        for bid in list(statuses):
            conn.request("GET", "/v1/batches/" + bid, headers=head)
            statuses[bid] = json.loads(conn.getresponse().read())["status"]
    wall = time.monotonic() - t
    conn.close()
    return statuses, wall


def timed(cmd, cwd):
    t = time.monotonic()
    out = subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    return time.monotonic() - t, out


def seed(url, n, latency, running=None):
    """A fresh account of n batches: all in_progress, or the newest
    `running` in_progress and the others completed."""
    control(url, "POST", "/_sim/reset", {})
    if running is None:
        control(url, "POST", "/_sim/seed", {"count": n, "status": "in_progress"})
    else:
        control(url, "POST", "/_sim/seed", {"count": n - running, "status": "completed"})
        control(url, "POST", "/_sim/seed", {"count": running, "status": "in_progress"})
    control(url, "POST", "/_sim/config", {"latency": latency})
    control(url, "DELETE", "/_sim/log")


def check(out, n, what):
    if out.split()[0] != str(n):
        sys.exit("%s: listed %s of %d batches" % (what, out.split()[0], n))


def kimifs_run(binary, url, n, latency, options, warm):
    """The command on a fresh mount; with warm, on the mixed account and
    again once the first listing is older than cache_ttl. Returns rows."""
    rows = []
    seed(url, n, latency, running=100 if warm else None)
    ttl = 1.0
    for o in options:
        if o.startswith("cache_ttl="):
            ttl = float(o.split("=", 1)[1])
    with mounted(binary, url, options) as (mnt, fs):
        control(url, "DELETE", "/_sim/log")
        wall, out = timed(COMMAND, mnt)
        check(out, n, "kimifs")
        rows.append(("cold", wall, requests_logged(url), rss_kib(fs.pid)))
        if warm:
            if ttl < 60:
                # "A minute later": the listing and every copy are older
                # than cache_ttl.
                time.sleep(ttl + 0.5)
            control(url, "DELETE", "/_sim/log")
            wall, out = timed(COMMAND, mnt)
            check(out, n, "kimifs warm")
            rows.append(("warm", wall, requests_logged(url), rss_kib(fs.pid)))
    return rows


def tmpfs_run(statuses):
    """The command over the same tree on a tmpfs (one directory per batch
    with its status file). Returns seconds, or None without a tmpfs."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    if not base:
        return None
    root = tempfile.mkdtemp(prefix="kimifs-scale-", dir=base)
    try:
        os.mkdir(os.path.join(root, "batches"))
        for bid, status in statuses.items():
            d = os.path.join(root, "batches", bid)
            os.mkdir(d)
            with open(os.path.join(d, "status"), "w") as f:
                f.write(status + "\n")
        wall, out = timed(COMMAND, root)
        check(out, len(statuses), "tmpfs")
        return wall
    finally:
        shutil.rmtree(root)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, %s %s" % (cpu, os.cpu_count(), platform.system(), platform.release())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="100,1000,10000,50000",
                    help="comma-separated numbers of batches")
    ap.add_argument("--latency", default="0,0.02",
                    help="comma-separated server latencies, seconds")
    ap.add_argument("--sdk-max", type=int, default=10000,
                    help="largest N for the one-GET-per-batch client")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    args = ap.parse_args()
    ns = [int(x) for x in args.n.split(",")]
    lats = [float(x) for x in args.latency.split(",")]

    print("kimifs scale benchmark, %s; %s" % (time.strftime("%Y-%m-%d"), machine()))
    print("command: %s" % COMMAND)
    print()
    print("| N | latency (ms) | run | wall (s) | requests | req / ceil(N/100) "
          "| wall / list pages | kimifs RSS (MiB) |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    with simulator() as url:
        for lat in lats:
            for n in ns:
                pages = math.ceil(n / 100)

                def row(name, wall, reqs, rss=None):
                    print("| %d | %g | %s | %.3f | %s | %s | %.2f | %s |" % (
                        n, lat * 1000, name, wall,
                        "-" if reqs is None else reqs,
                        "-" if reqs is None else "%.2f" % (reqs / pages),
                        wall / base, "-" if rss is None else "%.1f" % (rss / 1024)),
                        flush=True)

                seed(url, n, lat)
                statuses, base = plain_client(url, False)
                row("list pages alone", base, requests_logged(url))
                if n <= args.sdk_max:
                    control(url, "DELETE", "/_sim/log")
                    _, wall = plain_client(url, True)
                    row("one GET per batch", wall, requests_logged(url))
                for label, opts in (("kimifs default", []),
                                    ("kimifs cache_ttl=600", ["cache_ttl=600"])):
                    for name, wall, reqs, rss in kimifs_run(args.bin, url, n, lat, opts, False):
                        row("%s, %s" % (label, name), wall, reqs, rss)
                    for name, wall, reqs, rss in kimifs_run(args.bin, url, n, lat, opts, True):
                        if name == "warm":
                            row("%s, 100 active, later" % label, wall, reqs, rss)
                wall = tmpfs_run(statuses)
                if wall is not None:
                    row("tmpfs copy", wall, None)


if __name__ == "__main__":
    main()
