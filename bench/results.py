#!/usr/bin/python3
"""Benchmark of batches/<id>/results/ on a large batch: what listing and
reading results cost, and what the index costs in memory.

    bench/results.py [--lines N] [--bin build/kimifs]
    bench/results.py --bounds [--requests N] [--bin build/kimifs]

A completed batch gets an output file of N lines (default 50,000) shaped
as the simulator writes them; kimifs is mounted with -d so that it logs
the size of the index it builds. Each command runs in turn; the table
gives its wall time and the requests the server received.

--bounds instead measures the daemon's peak resident memory (VmHWM) under
the three worst inputs of results/, each on a fresh mount: N (default
1,000,000) requests listed through 10 open results/ directories; 20 open
pairs of .json and .txt of one long line; four batches of one long line of
nested arrays listed at once. The long lines are 15 MiB (past the 8 MiB
bound, so left out) and 8 MiB less 1 KiB (the longest indexed).
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
import uuid

from common import KEY, REPO, control, hwm_kib, mounted, rss_kib, run, simulator


def upload(url, data):
    b = uuid.uuid4().hex
    body = (("--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
             "filename=\"out.jsonl\"\r\n\r\n") % (b, b)).encode() + data + \
        ("\r\n--%s--\r\n" % b).encode()
    req = urllib.request.Request(url + "/v1/files", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + KEY)
    req.add_header("Content-Type", "multipart/form-data; boundary=" + b)
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["id"]


def output_file(n):
    lines = []
    for i in range(n):
        rid = "%024d" % i
        body = {"id": "chatcmpl-" + rid, "object": "chat.completion",
                "created": 1700000000, "model": "moonshot-v1-8k",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant",
                                         "content": "Simulated answer to task-%05d." % i}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}
        lines.append(json.dumps({"id": "batch_req_" + rid, "custom_id": "task-%05d" % i,
                                 "response": {"status_code": 200, "request_id": "req-" + rid,
                                              "body": body}, "error": None}))
    return ("\n".join(lines) + "\n").encode()


COMMANDS = (
    ("`ls results \\| wc -l` (cold: download, index)", "ls %s | wc -l"),
    ("`ls results \\| wc -l` (index kept)", "ls %s | wc -l"),
    ("`cat results/task-31337.txt`", "cat %s/task-31337.txt"),
    ("`cat results/task-31337.json`", "cat %s/task-31337.json"),
    ("`cat usage/total_tokens`", "cat %s/../usage/total_tokens"),
    ("`grep -c . results/task-3*.txt` (10,000 files)", "grep -c . %s/task-3*.txt"),
    ("`ls -l` in results/ (stat every entry)", "cd %s && ls -l"),
    ("`ls -l results` from the mount root", "ls -l %s"),
)


@contextlib.contextmanager
def mount(binary, url, mnt, log, flags):
    """kimifs mounted on mnt (stderr to log); yields the process."""
    fs = subprocess.Popen([binary, "-f"] + flags + ["-o", "base_url=" + url, mnt],
                          env=dict(os.environ, MOONSHOT_API_KEY=KEY), stderr=log)
    try:
        while not os.path.ismount(mnt):
            if fs.poll() is not None:
                raise SystemExit("kimifs did not mount")
            time.sleep(0.01)
        yield fs
    finally:
        fs.terminate()
        fs.wait(10)
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)


def answer(cid, content):
    return ('{"custom_id":"%s","response":{"status_code":200,"body":{"choices":'
            '[{"message":{"content":"%s"}}]}}}' % (cid, content))


def nested(size):
    """One result line of about size bytes, most of it empty arrays."""
    junk = ",".join(["[]"] * (size // 3))
    return ('{"custom_id":"nest","junk":[%s],"response":{"status_code":200,'
            '"body":{"choices":[{"message":{"content":"ok"}}]}}}' % junk)


def batch_with(url, data):
    bid = control(url, "POST", "/_sim/seed", {"count": 1, "status": "completed",
                                               "total": 1})["ids"][0]
    # The simulator's own store: the API refuses uploads over 100 MB.
    fid = control(url, "POST", "/_sim/files", {"content": data.decode(),
                                              "purpose": "batch_output"})["id"]
    control(url, "POST", "/_sim/batches/%s/set" % bid,
            {"output_file_id": fid, "error_file_id": None})
    return bid


def peak(binary, url, act):
    """The daemon's VmHWM (MiB) after mounting and after act(mnt)."""
    with mounted(binary, url, ["timeout=600"]) as (mnt, fs):
        before = hwm_kib(fs.pid)
        act(mnt)
        return before / 1024, hwm_kib(fs.pid) / 1024


def open_dirs(d, n):
    def act(mnt):
        fds = [os.open(os.path.join(mnt, d), os.O_RDONLY | os.O_DIRECTORY)
               for _ in range(n)]
        for fd in fds:
            os.listdir(fd)
        for fd in fds:
            os.close(fd)
    return act


def open_pairs(d, n):
    def act(mnt):
        names = [n_ for n_ in os.listdir(os.path.join(mnt, d))]
        fds = [os.open(os.path.join(mnt, d, name), os.O_RDONLY)
               for _ in range(n) for name in names]
        for fd in fds:
            while os.read(fd, 1 << 20):
                pass
        for fd in fds:
            os.close(fd)
    return act


def list_at_once(ds):
    def act(mnt):
        run(" & ".join("ls %s >/dev/null" % d for d in ds) + "; wait", mnt)
    return act


def bounds(binary, requests):
    rows = []
    with simulator() as url:
        data = "\n".join(answer("request-%07d" % i, "a") for i in range(requests))
        bid = batch_with(url, (data + "\n").encode())
        rows.append(("%d requests, 10 open `results/` each listed" % requests,
                     peak(binary, url, open_dirs("batches/%s/results" % bid, 10))))
        for size, what in ((15 << 20, "15 MiB"), ((8 << 20) - 1024, "8 MiB - 1 KiB")):
            bid = batch_with(url, (answer("long", "x" * (size - 100)) + "\n").encode())
            rows.append(("20 open pairs of one %s line, each read" % what,
                         peak(binary, url, open_pairs("batches/%s/results" % bid, 20))))
            line = (nested(size - 100) + "\n").encode()
            ds = ["batches/%s/results" % batch_with(url, line) for _ in range(4)]
            rows.append(("4 batches of one %s line of nested arrays listed at once" % what,
                         peak(binary, url, list_at_once(ds))))
    print("kimifs results memory bounds: %s, %s" % (binary, time.strftime("%Y-%m-%d")))
    print("| input | VmHWM mounted (MiB) | VmHWM after (MiB) |")
    print("| --- | ---: | ---: |")
    for what, (before, after) in rows:
        print("| %s | %.1f | %.1f |" % (what, before, after))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=50000)
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "kimifs"))
    ap.add_argument("--bounds", action="store_true",
                    help="measure memory under the worst inputs instead")
    ap.add_argument("--requests", type=int, default=1000000)
    args = ap.parse_args()
    if args.bounds:
        bounds(args.bin, args.requests)
        return
    data = output_file(args.lines)
    with simulator() as url:
        bid = control(url, "POST", "/_sim/seed", {"count": 1, "status": "completed",
                                                   "total": 1})["ids"][0]
        control(url, "POST", "/_sim/batches/%s/set" % bid,
                {"output_file_id": upload(url, data), "error_file_id": None})
        mnt = tempfile.mkdtemp(prefix="kimifs-bench-")
        log = tempfile.NamedTemporaryFile(prefix="kimifs-bench-", suffix=".log")
        d = "batches/%s/results" % bid
        # Once with -d, for the size of the index it logs.
        with mount(args.bin, url, mnt, log, ["-d"]):
            run("ls %s >/dev/null" % d, mnt)
        text = open(log.name, errors="replace").read()
        with mount(args.bin, url, mnt, log, []) as fs:
            run("ls batches/%s >/dev/null" % bid, mnt)
            rss0 = rss_kib(fs.pid)
            rss1 = 0
            rows = []
            for what, cmd in COMMANDS:
                before = len(control(url, "GET", "/_sim/log")["requests"])
                t = run(cmd % d, mnt)
                after = len(control(url, "GET", "/_sim/log")["requests"])
                rows.append((what, t, after - before))
                if not rss1:
                    rss1 = rss_kib(fs.pid)
        os.rmdir(mnt)
    m = re.search(r"(\d+) results indexed .* (\d+) bytes", text)
    n, size = int(m.group(1)), int(m.group(2))
    names = sum(len("task-%05d" % i) + 1 for i in range(args.lines))
    print("kimifs results benchmark: %d lines, %.1f MiB output file"
          % (args.lines, len(data) / 1048576))
    print("| command | wall time (s) | API requests |")
    print("| --- | ---: | ---: |")
    for what, t, req in rows:
        print("| %s | %.3f | %d |" % (what, t, req))
    print("index: %d entries, %d bytes (%.1f per entry; names with their NUL %d "
          "bytes, %.1f per entry beyond them); daemon RSS %.1f MiB before, "
          "%.1f MiB after the first listing"
          % (n, size, size / n, names, (size - names) / n, rss0 / 1024, rss1 / 1024))


if __name__ == "__main__":
    main()
