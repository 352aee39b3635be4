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
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def control(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip() else None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(cmd, cwd):
    t = time.monotonic()
    subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.0,
                    help="simulated server latency per request, seconds")
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    args = ap.parse_args()

    sim = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "kimisim.py"),
                            "--port", "0", "--key", "sk-bench"],
                           stdout=subprocess.PIPE)
    mnt = tempfile.mkdtemp(prefix="kimifs-bench-")
    fs = None
    try:
        url = re.search(r"(http://\S+)", sim.stdout.readline().decode()).group(1)
        control(url, "POST", "/_sim/seed", {"count": args.batches})
        control(url, "POST", "/_sim/config", {"latency": args.latency})
        env = dict(os.environ, MOONSHOT_API_KEY="sk-bench")
        fs = subprocess.Popen([args.bin, "-f", "-o", "base_url=" + url, mnt],
                              env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline or fs.poll() is not None:
                sys.exit("kimifs did not mount")
            time.sleep(0.01)
        one = control(url, "GET", "/_sim/batches")[0]["id"]
        scenarios = [
            ("ls batches (cold)", "ls batches >/dev/null"),
            ("cat batches/*/status (listing fresh)", "cat batches/*/status >/dev/null"),
            ("ls -l batches (stat every entry)", "ls -l batches >/dev/null"),
            ("grep -l in_progress batches/*/status", "grep -l in_progress batches/*/status >/dev/null || true"),
            ("100 x cat status of one batch", "for i in $(seq 100); do cat batches/%s/status; done >/dev/null" % one),
            ("cat batches/*/batch.json (all objects)", "cat batches/*/batch.json | wc -c >/dev/null"),
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
    finally:
        if fs and fs.poll() is None:
            fs.terminate()
            try:
                fs.wait(10)
            except subprocess.TimeoutExpired:
                fs.kill()
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        sim.terminate()
        sim.wait()
        os.rmdir(mnt)


if __name__ == "__main__":
    main()
