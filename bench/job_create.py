#!/usr/bin/python3
"""Benchmark of making a job: `cp` of a large input into jobs/ against
`split` plus one `curl -F` upload and one batch creation per part, side by
side on the same simulator.

    bench/job_create.py [--requests N] [--line-bytes B] [--runs R]
                        [--bin build/kimifs] [--work DIR] [--spool DIR]
                        [--keep]

It writes (once, kept in --work for the next run) an input of N requests
(default 1,000,000) of about B bytes each (default 1074: 1 GiB in all),
realistic chat requests with unique custom_ids. Each run starts a fresh
simulator (tests/kimisim.py, uploads spooled to --spool, by default --work
on disk), mounts kimifs on it with its disk cache in --work, and times,
one after the other (their order alternating from run to run):

- kimifs: `cp INPUT MOUNT/jobs/`, whose close returns once every part is a
  batch; the daemon's peak RSS (VmHWM) and the requests it sent;
- split+curl: `split -l P` of the same input into the same parts (the
  request count of kimifs's parts, -o part_requests; the part sizes are
  compared with those kimifs uploaded), then per part one `curl -F
  file=@PART` upload and one `curl` batch creation.

For each it prints the wall time, the CPU time of the simulator, of the
client (the daemon and cp, or split and the curls) and the machine's load
average (a 2-core machine shared with other jobs: repeat when it is high).
Everything is unmounted and stopped at the end, also on failure. Results
are written down in docs/benchmarks.md.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from common import KEY, REPO, control, hwm_kib, mounted, simulator_process

WORDS = ("the of and to in is that for it as with was on be by this are from "
         "at or an which have not but all were when we there can more one "
         "would so what about up out into than them these some time only "
         "translate summarize explain classify review rewrite answer list "
         "paragraph following question document customer order invoice "
         "shipment weather contract clause model data result value report").split()


def make_input(path, n, line_bytes):
    """Write n requests of about line_bytes each (lengths spread +-25%)
    with unique ids; return the size."""
    rnd = random.Random(17)
    texts = []
    for _ in range(4096):
        words = []
        while sum(len(w) + 1 for w in words) < 2 * line_bytes:
            words.append(rnd.choice(WORDS))
        texts.append(" ".join(words))
    head = ('{"custom_id":"req-%07d","method":"POST","url":"/v1/chat/completions",'
            '"body":{"model":"moonshot-v1-8k","temperature":0.3,"messages":['
            '{"role":"system","content":"You are a careful assistant."},'
            '{"role":"user","content":"')
    tail = '"}]}}\n'
    size = 0
    with open(path + ".tmp", "w") as f:
        chunk = []
        for i in range(n):
            want = line_bytes + rnd.randint(-line_bytes // 4, line_bytes // 4)
            h = head % i
            body = texts[i % len(texts)][: max(1, want - len(h) - len(tail))]
            line = h + body.rstrip() + tail
            chunk.append(line)
            size += len(line)
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    os.replace(path + ".tmp", path)
    return size


def cpu_s(pid):
    """User and system CPU seconds of pid so far (its threads included)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = os.times()
    return r.children_user + r.children_system


def api_log(url):
    return control(url, "GET", "/_sim/log")["requests"]


def server_parts(url, prefix):
    """Sizes of the files on the server whose names start with prefix, by
    name."""
    req = subprocess.run(["curl", "-sS", "-H", "Authorization: Bearer " + KEY,
                          url + "/v1/files?limit=10000"], check=True,
                         capture_output=True).stdout
    files = json.loads(req)["data"]
    return sorted((f["filename"], f["bytes"]) for f in files
                  if f["filename"].startswith(prefix))


def run_kimifs(args, url, sim, source):
    cache = tempfile.mkdtemp(prefix="cache-", dir=args.work)
    try:
        with mounted(args.bin, url, ["cache_dir=" + cache]) as (mnt, fs):
            control(url, "DELETE", "/_sim/log")
            s0, k0, c0 = cpu_s(sim), cpu_s(fs.pid), children_cpu_s()
            t0 = time.monotonic()
            subprocess.run(["cp", source, os.path.join(mnt, "jobs", "bench.jsonl")],
                           check=True)
            wall = time.monotonic() - t0
            row = {"wall": wall, "sim_cpu": cpu_s(sim) - s0,
                   "client_cpu": cpu_s(fs.pid) - k0 + children_cpu_s() - c0,
                   "rss": hwm_kib(fs.pid) / 1024,
                   "requests": len(api_log(url)), "load": os.getloadavg()[0]}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    row["parts"] = [b for _, b in server_parts(url, "bench.part-")]
    return row


CURL_LOOP = r"""
set -e
split -l "$PART_REQUESTS" -d -a 4 --additional-suffix=.jsonl "$SOURCE" "$PARTS/part-"
for f in "$PARTS"/part-*.jsonl; do
  id=$(curl -sS --fail -H "Authorization: Bearer $KEY" -F purpose=batch \
       -F "file=@$f;filename=curl.$(basename "$f")" "$URL/v1/files" |
       grep -o '"id": *"[^"]*"' | head -n 1 | cut -d '"' -f 4)
  curl -sS --fail -o /dev/null -H "Authorization: Bearer $KEY" \
       -H "Content-Type: application/json" \
       -d "{\"input_file_id\":\"$id\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" \
       "$URL/v1/batches"
done
"""


def run_curl(args, url, sim, source):
    parts = tempfile.mkdtemp(prefix="parts-", dir=args.work)
    env = dict(os.environ, PART_REQUESTS=str(args.part_requests), SOURCE=source,
               PARTS=parts, KEY=KEY, URL=url)
    try:
        control(url, "DELETE", "/_sim/log")
        s0, c0, t0 = cpu_s(sim), children_cpu_s(), time.monotonic()
        subprocess.run(["bash", "-c", CURL_LOOP], check=True, env=env)
        wall = time.monotonic() - t0
        row = {"wall": wall, "sim_cpu": cpu_s(sim) - s0,
               "client_cpu": children_cpu_s() - c0, "rss": None,
               "requests": len(api_log(url)), "load": os.getloadavg()[0]}
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    row["parts"] = [b for _, b in server_parts(url, "curl.part-")]
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--line-bytes", type=int, default=1074)
    ap.add_argument("--part-requests", type=int, default=50_000,
                    help="kimifs's -o part_requests (its default)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(),
                                                   "kimifs-bench-jobs"),
                    help="where the input is kept between runs (on disk)")
    ap.add_argument("--spool", help="where the simulator keeps uploads "
                    "(default --work; a tmpfs takes the server's disk "
                    "writes out of the comparison)")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    source = os.path.join(args.work, "input-%d-%d.jsonl" % (args.requests, args.line_bytes))
    if not os.path.exists(source):
        print("writing %s ..." % source, file=sys.stderr)
        make_input(source, args.requests, args.line_bytes)
    size = os.path.getsize(source)
    subprocess.run(["cat", source], stdout=subprocess.DEVNULL, check=True)  # warm

    print("job creation: %d requests, %d bytes (%.2f GiB), %s, %d cores"
          % (args.requests, size, size / 2**30, time.strftime("%Y-%m-%d %H:%M"),
             os.cpu_count()))
    print()
    print("| run | method | wall (s) | speed vs split+curl | simulator CPU (s) "
          "| client CPU (s) | daemon peak RSS (MiB) | requests | parts | load (1 min) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i in range(args.runs):
        with simulator_process(spool=args.spool or args.work) as (url, sim):
            order = [("kimifs", run_kimifs), ("split+curl", run_curl)]
            if i % 2:
                order.reverse()
            rows = {name: fn(args, url, sim, source) for name, fn in order}
        k, c = rows["kimifs"], rows["split+curl"]
        if k["parts"] != c["parts"]:
            sys.exit("the parts differ: kimifs %s, split %s" % (k["parts"], c["parts"]))
        for name, _ in order:
            r = rows[name]
            print("| %d | %s | %.2f | %s | %.2f | %.2f | %s | %d | %d | %.1f |"
                  % (i + 1, name, r["wall"],
                     "%.2fx" % (c["wall"] / r["wall"]) if name == "kimifs" else "1",
                     r["sim_cpu"], r["client_cpu"],
                     "%.1f" % r["rss"] if r["rss"] is not None else "-",
                     r["requests"], len(r["parts"]), r["load"]), flush=True)


if __name__ == "__main__":
    main()
