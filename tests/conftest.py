"""Fixtures for the kimifs integration tests.

The tests run the real daemon against the simulator (tests/kimisim.py) and
look at the mounted tree the way a user does: with bash, cat, ls and plain
os calls. What the server received is read back from the simulator's
request log (the /_sim/ control endpoint, see docs/simulator.md).

- `sim`: the session's simulator, reset before each test.
- `mount(...)`: starts kimifs in the foreground on a fresh mountpoint and
  waits until it is mounted; teardown always unmounts (lazily) and kills,
  so a failing test never leaves a mount behind.
- `private_sim(key)`: a simulator of the test's own, for tests that stop
  the server or need another API key.
- `sh(cmd)`, `wait_for(pred)`, `try_write(path, data)`, `timed(fn)`:
  helpers that the test modules import.
"""

import json
import os
import re
import select
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
KIMIFS = Path(os.environ.get("KIMIFS_BIN", REPO / "build" / "kimifs"))
PYTHON = "/usr/bin/python3"
SIMULATOR = REPO / "tests" / "kimisim.py"
KEY = "sk-test"

STATES = ["validating", "in_progress", "finalizing", "completed",
          "failed", "expired", "cancelling", "cancelled"]
FINAL_STATES = ["completed", "failed", "expired", "cancelled"]
VALUE_FIELDS = ["status", "endpoint", "input_file_id", "output_file_id",
                "error_file_id", "completion_window", "created_at",
                "in_progress_at", "expires_at", "finalizing_at",
                "completed_at", "failed_at", "cancelling_at", "cancelled_at"]
TIME_FIELDS = [f for f in VALUE_FIELDS if f.endswith("_at")]

# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")

START_TIMEOUT = 10      # seconds for a daemon or simulator to come up
STOP_TIMEOUT = 10       # seconds between SIGTERM and SIGKILL
SH_TIMEOUT = 60         # seconds for one shell command


# --------------------------------------------------------------------------
# Small helpers


def wait_for(predicate, timeout=10.0, interval=0.02, what=None):
    """Poll predicate() until it returns a true value, and return that value.

    Fails the test when `timeout` seconds pass first. `interval` only paces
    the polling; the test waits on the condition, never on the clock.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %ss waiting for %s"
                        % (timeout, what or getattr(predicate, "__name__", "condition")))
        time.sleep(interval)


def sh(cmd, cwd=None, timeout=SH_TIMEOUT, input=None):
    """Run `bash -c cmd` and return (rc, stdout, stderr) as text.

    The command runs in its own process group with LC_ALL=C (English error
    messages, bytewise sorting); on timeout the whole group is killed and
    the test fails.
    """
    env = dict(os.environ, LC_ALL="C")
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=cwd, env=env,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("command did not finish in %ss: %s" % (timeout, cmd))
    dec = lambda b: b.decode("utf-8", "surrogateescape")
    return proc.returncode, dec(out), dec(err)


def try_write(path, data, offset=None, timeout=SH_TIMEOUT):
    """Open `path` write-only, write `data` in one call, close.

    Returns 0 when the write (and close) succeeded, else the errno. With
    `offset`, the write is a pwrite at that offset. Runs in a thread so a
    daemon that never answers fails the test instead of hanging it (the
    blocked call returns when teardown kills the daemon).
    """
    result = {}

    def run():
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError as e:
            result["errno"] = e.errno
            return
        try:
            if offset is None:
                n = os.write(fd, data)
            else:
                n = os.pwrite(fd, data, offset)
            result["errno"] = 0 if n == len(data) else -1
        except OSError as e:
            result["errno"] = e.errno
        finally:
            try:
                os.close(fd)
            except OSError as e:
                result.setdefault("errno", e.errno)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail("write to %s did not return in %ss" % (path, timeout))
    return result["errno"]


def timed(fn, *args, limit=60):
    """Run fn(*args) in a thread; return (errno or 0, result, seconds).

    The call runs in a thread so that a daemon that never answers fails
    the test after `limit` seconds instead of hanging it (the blocked call
    returns once teardown kills the daemon).
    """
    box = {}

    def run():
        t0 = time.monotonic()
        try:
            box["value"] = fn(*args)
            box["errno"] = 0
        except OSError as e:
            box["errno"] = e.errno
        box["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        pytest.fail("%s%r did not return within %ss" % (fn.__name__, args, limit))
    return box["errno"], box.get("value"), box["elapsed"]


def read_text(path):
    """The whole content of `path`, read through one fd."""
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def interrupted_after(cwd, command, reached, what):
    """Run command in a shell (its own process group) in cwd, wait until
    reached() says the request it waits on reached the server, then
    Ctrl-C it. Returns (seconds the interrupt took to end it, its exit
    status); the process never outlives the call."""
    proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(reached, timeout=10, what=what)
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(25)
        return time.monotonic() - t0, proc.returncode
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def errno_of(fn, *args):
    """Call fn(*args); return 0 if it succeeds, else the OSError's errno."""
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def is_mounted(path):
    """True when `path` is a mountpoint in /proc/self/mountinfo (works for
    a dead FUSE mount too, where os.path.ismount says False)."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path:
                return True
    return False


def batch_path(bid):
    """A fault path regex that matches batch `bid`'s retrieve only."""
    return "^/v1/batches/%s$" % bid


# --------------------------------------------------------------------------
# The simulator


class Simulator:
    """A client of one running simulator: its URL, its process, and the
    /_sim/ control calls, each a method."""

    def __init__(self, proc, url, key):
        self.proc = proc
        self.url = url
        self.key = key

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError("simulator %s %s: %s %s"
                                 % (method, path, e.code, e.read().decode()))
        return json.loads(text) if text.strip() else None

    def api(self, method, path):
        """A /v1/ request with the right key, as a client would send it.
        Returns (status, parsed JSON body)."""
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        req.add_header("Authorization", "Bearer " + self.key)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def retrieves(self, bid):
        """The logged GET /v1/batches/<bid> requests."""
        return self.requests("GET", "/v1/batches/" + bid)

    def cancels(self, bid):
        """The logged POST /v1/batches/<bid>/cancel requests."""
        return self.requests("POST", "/v1/batches/%s/cancel" % bid)

    def content(self, fid):
        """The bytes of file `fid` as the API serves them."""
        req = urllib.request.Request("%s/v1/files/%s/content" % (self.url, fid))
        req.add_header("Authorization", "Bearer " + self.key)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    # state
    def reset(self):
        self._call("POST", "/_sim/reset", {})

    def seed(self, count, status=None, metadata=None, total=None, **extra):
        """Create `count` batches; returns their ids, oldest first."""
        body = dict(extra, count=count)
        if status is not None:
            body["status"] = status
        if metadata is not None:
            body["metadata"] = metadata
        if total is not None:
            body["total"] = total
        return self._call("POST", "/_sim/seed", body)["ids"]

    def create(self, fields=None):
        """Create one batch from `fields`; returns the BatchObject."""
        return self._call("POST", "/_sim/batches", fields or {})

    def batches(self):
        """Every stored batch object, newest first."""
        return self._call("GET", "/_sim/batches")

    def get(self, bid):
        """The stored object of batch `bid` (no /v1/ request is logged)."""
        for obj in self.batches():
            if isinstance(obj, dict) and obj.get("id") == bid:
                return obj
        raise KeyError(bid)

    def state(self, bid, status):
        return self._call("POST", "/_sim/batches/%s/state" % bid, {"status": status})

    def set(self, bid, fields):
        return self._call("POST", "/_sim/batches/%s/set" % bid, fields)

    def raw(self, bid, obj):
        return self._call("POST", "/_sim/batches/%s/raw" % bid, obj)

    def delete(self, bid):
        return self._call("DELETE", "/_sim/batches/%s" % bid)

    def advance(self, seconds):
        return self._call("POST", "/_sim/advance", {"seconds": seconds})

    def config(self, **settings):
        return self._call("POST", "/_sim/config", settings)

    # faults
    def fault(self, **f):
        return self.faults([f])

    def faults(self, faults):
        return self._call("POST", "/_sim/faults", {"faults": faults})

    def clear_faults(self):
        return self._call("DELETE", "/_sim/faults")

    # the request log
    def log(self):
        """Every /v1/ request since the last clear: dicts with method, path,
        query, status, auth."""
        return self._call("GET", "/_sim/log")["requests"]

    def clear_log(self):
        return self._call("DELETE", "/_sim/log")

    def requests(self, method=None, path=None):
        """The logged requests with this method and this exact path."""
        return [r for r in self.log()
                if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_simulator(key=KEY, log_path=None):
    """Start tests/kimisim.py on a free port and return a Simulator once
    it says it is listening."""
    if not SIMULATOR.exists():
        pytest.fail("simulator not found: %s" % SIMULATOR)
    stderr = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([PYTHON, str(SIMULATOR), "--port", "0", "--key", key],
                            stdout=subprocess.PIPE, stderr=stderr)
    if log_path:
        stderr.close()
    deadline = time.monotonic() + START_TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            pytest.fail("simulator did not start: %r" % line)
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                continue
            line += chunk
    m = re.search(r"listening on (http://\S+)", line.decode())
    if not m:
        proc.kill()
        pytest.fail("unexpected simulator banner: %r" % line)
    # Keep draining stdout so a chatty simulator never blocks on a full pipe.
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return Simulator(proc, m.group(1).rstrip("/"), key)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    s = start_simulator(log_path=tmp_path_factory.mktemp("sim") / "kimisim.stderr")
    yield s
    s.stop()


@pytest.fixture
def sim(simulator):
    """The session's simulator, emptied: no batches, faults or log."""
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def private_sim(tmp_path):
    """Factory: private_sim(key) starts a simulator for this test only."""
    started = []

    def start(key=KEY):
        s = start_simulator(key, log_path=tmp_path / ("kimisim%d.stderr" % len(started)))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# --------------------------------------------------------------------------
# The daemon


class Mount:
    """One kimifs process and its mountpoint."""

    def __init__(self, path, proc, stderr_path, args):
        self.path = str(path)
        self.batches = os.path.join(self.path, "batches")
        self.proc = proc
        self.stderr_path = stderr_path
        self.args = args
        self.expect_running = False

    def batch(self, bid, *names):
        """Path of batch `bid`'s directory, or of a file under it."""
        return os.path.join(self.batches, bid, *names)

    def stderr_text(self):
        return Path(self.stderr_path).read_bytes().decode("utf-8", "surrogateescape")

    def sh(self, cmd, timeout=SH_TIMEOUT, input=None):
        """Run a shell command with the mount root as working directory."""
        return sh(cmd, cwd=self.path, timeout=timeout, input=input)

    def wait_exit(self, timeout=START_TIMEOUT):
        """Wait for the daemon to exit by itself; returns its exit status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("kimifs did not exit within %ss; stderr:\n%s"
                        % (timeout, self.stderr_text()))

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send `sig` and wait for the daemon to exit; returns its status."""
        self.expect_running = False
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("kimifs did not exit within %ss of signal %s" % (timeout, sig))

    def cleanup(self):
        """Terminate (then kill) the daemon and lazily unmount, whatever
        state it is in."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", self.path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def default_signals():
    """In the child before exec: SIGINT and SIGTERM back to their defaults,
    as in an interactive shell (a background job inherits SIGINT ignored,
    and libfuse leaves an ignored signal alone)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def kimifs_env(key=KEY, extra=None):
    env = dict(os.environ, LC_ALL="C")
    env.pop("MOONSHOT_API_KEY", None)
    env.pop("MOONSHOT_BASE_URL", None)
    if key is not None:
        env["MOONSHOT_API_KEY"] = key
    env.update(extra or {})
    return env


def run_kimifs(argv, path, stderr_path, env, **popen):
    """Start kimifs with argv (in the foreground) and wait until `path` is
    mounted; returns its Mount (the caller cleans it up). Fails the test
    with the daemon's stderr if it exits first."""
    with open(stderr_path, "wb") as f:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=f, **popen)
    m = Mount(path, proc, stderr_path, argv)

    def mounted():
        if m.proc.poll() is not None:
            m.cleanup()
            pytest.fail("kimifs exited with %s before mounting; stderr:\n%s"
                        % (m.proc.returncode, m.stderr_text()))
        return is_mounted(str(path))

    wait_for(mounted, timeout=START_TIMEOUT, what="the mount of %s" % path)
    return m


@pytest.fixture
def mount(sim, tmp_path):
    """Factory: mount(cache_ttl=, page_size=, timeout=, api_key_file=,
    key=, debug=, base_url=, options=[...], wait=True) starts kimifs.

    With wait=True (the default) it returns once the tree is mounted, with
    the simulator's log cleared so the test counts only its own requests;
    if the daemon exits instead, the test fails with its stderr. With
    wait=False it returns at once (for start-up failure tests).
    """
    started = []

    def start(cache_ttl=None, page_size=None, timeout=None, api_key_file=None,
              key=KEY, debug=False, base_url=None, options=(), wait=True,
              server=None):
        if not KIMIFS.exists():
            pytest.fail("kimifs binary not found: %s (build it, or set KIMIFS_BIN)" % KIMIFS)
        server = server or sim
        n = len(started)
        mnt = tmp_path / ("mnt%d" % n)
        mnt.mkdir()
        stderr_path = tmp_path / ("kimifs%d.stderr" % n)
        opts = ["base_url=" + (base_url or server.url)]
        for name, value in (("cache_ttl", cache_ttl), ("page_size", page_size),
                            ("timeout", timeout), ("api_key_file", api_key_file)):
            if value is not None:
                opts.append("%s=%s" % (name, value))
        opts.extend(options)
        args = [str(KIMIFS), "-f"] + (["-d"] if debug else [])
        for o in opts:
            args += ["-o", o]
        args.append(str(mnt))
        with open(stderr_path, "wb") as err:
            # A cache of the test's own (shared by its mounts, so a remount
            # finds what the first mount kept): tests run side by side
            # would otherwise share ~/.cache/kimifs, its size and counters.
            env = kimifs_env(key, {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")})
            proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    preexec_fn=default_signals)
        m = Mount(mnt, proc, stderr_path, args)
        started.append(m)
        if not wait:
            return m
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.ismount(m.path):
            if proc.poll() is not None:
                pytest.fail("kimifs exited with %s before mounting; stderr:\n%s"
                            % (proc.returncode, m.stderr_text()))
            if time.monotonic() > deadline:
                pytest.fail("kimifs did not mount within %ss; stderr:\n%s"
                            % (START_TIMEOUT, m.stderr_text()))
            time.sleep(0.01)
        m.expect_running = True
        server.clear_log()
        return m

    yield start

    died, unclean, reports = [], [], []
    for m in started:
        running = m.expect_running
        if running and m.proc.poll() is not None:
            died.append(m)
            running = False
        m.cleanup()
        # SIGTERM must end a healthy daemon cleanly: under the sanitizers a
        # leak or error shows as a non-zero status and a report on stderr.
        if running and m.proc.returncode != 0:
            unclean.append(m)
        if SANITIZER_REPORT.search(m.stderr_text()):
            reports.append(m)
    if died:
        m = died[0]
        pytest.fail("kimifs died during the test (exit status %s); stderr tail:\n%s"
                    % (m.proc.returncode, m.stderr_text()[-3000:]))
    if reports:
        pytest.fail("sanitizer report from kimifs:\n%s" % reports[0].stderr_text()[-6000:])
    if unclean:
        m = unclean[0]
        pytest.fail("kimifs exited with status %s on SIGTERM; stderr tail:\n%s"
                    % (m.proc.returncode, m.stderr_text()[-3000:]))


# --------------------------------------------------------------------------
# Expectations shared by the test modules


def expected_entries(obj):
    """The names `ls` shows in the directory of batch `obj`."""
    names = {"batch.json", "ctl", "request_counts", "metadata", "results", "usage",
             "progress"}
    names.update(f for f in VALUE_FIELDS if obj.get(f) is not None)
    # The symlinks to the contents of the batch's files, when set.
    names.update(link for link, field in (("input.jsonl", "input_file_id"),
                                          ("output.jsonl", "output_file_id"),
                                          ("errors.jsonl", "error_file_id"))
                 if obj.get(field) is not None)
    return names


def latest_event(obj):
    """The latest `*_at` time of `obj` that records something that has
    happened (expires_at is a deadline, not an event)."""
    return max(obj[f] for f in TIME_FIELDS
               if f != "expires_at" and obj.get(f) is not None)
