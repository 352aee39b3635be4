"""What the benchmark scripts share: the simulator's control calls, a
mounted kimifs against a fresh simulator (a context manager that always
unmounts and stops both), and the daemon's resident memory."""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-bench"


def control(url, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip() else None


def requests_logged(url):
    return len(control(url, "GET", "/_sim/log")["requests"])


def status_kib(pid, field):
    """A memory figure of /proc/PID/status in KiB (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def hwm_kib(pid):
    """The peak resident set of pid so far."""
    return status_kib(pid, "VmHWM")


@contextlib.contextmanager
def simulator_process(spool=None):
    """A fresh simulator (its uploads over 1 MiB kept in the directory
    spool, else the system's temporary one); yields (its URL, its pid)."""
    args = [sys.executable, os.path.join(REPO, "tests", "kimisim.py"),
            "--port", "0", "--key", KEY]
    sim = subprocess.Popen(args + (["--spool", spool] if spool else []),
                           stdout=subprocess.PIPE)
    try:
        yield re.search(r"(http://\S+)", sim.stdout.readline().decode()).group(1), sim.pid
    finally:
        sim.terminate()
        sim.wait()


@contextlib.contextmanager
def simulator():
    """A fresh simulator; yields its URL."""
    with simulator_process() as (url, _):
        yield url


@contextlib.contextmanager
def mounted(binary, url, options=()):
    """kimifs from `binary` mounted on a temporary directory against the
    simulator at url; yields (mountpoint, process)."""
    mnt = tempfile.mkdtemp(prefix="kimifs-bench-")
    args = [binary, "-f", "-o", "base_url=" + url]
    for o in options:
        args += ["-o", o]
    fs = subprocess.Popen(args + [mnt], env=dict(os.environ, MOONSHOT_API_KEY=KEY),
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline or fs.poll() is not None:
                sys.exit("kimifs did not mount")
            time.sleep(0.01)
        yield mnt, fs
    finally:
        if fs.poll() is None:
            fs.terminate()
            try:
                fs.wait(10)
            except subprocess.TimeoutExpired:
                fs.kill()
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        os.rmdir(mnt)


def run(cmd, cwd):
    """Wall time of one bash command run in cwd."""
    t = time.monotonic()
    subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t
