#!/usr/bin/env python3
"""kimisim: a local stand-in for the Moonshot (Kimi) Batch and Files API.

The kimifs test suite, demo and benchmarks run kimifs against this server
instead of api.moonshot.ai. It serves the public API under /v1/ (bearer
authentication, BatchObject and FileObject shapes with their nulls,
pagination, the batch lifecycle and the cancel rules) and a control API
under /_sim/ with which tests seed batches, force states, move the
simulated clock, inject faults (error answers, dropped or hung connections,
slow, truncated, delayed or stale answers, endless listings) and read the
log of the requests received.

docs/simulator.md is the reference of the whole interface. Python 3.11
standard library only; run `python3 tests/kimisim.py --help`.
"""

import argparse
import bisect
import email.message
import email.utils
import http
import json
import mmap
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import string
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUSES = ("validating", "failed", "in_progress", "finalizing",
            "completed", "expired", "cancelling", "cancelled")
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
CANCELLABLE = frozenset({"validating", "in_progress", "finalizing"})
STEP_FIELDS = ("in_progress_at", "finalizing_at", "completed_at",
               "failed_at", "cancelling_at", "cancelled_at")
# The steps a batch went through before reaching each status (for /state).
HISTORY = {"validating": [], "failed": [], "in_progress": [],
           "finalizing": ["in_progress"], "completed": ["in_progress", "finalizing"],
           "expired": ["in_progress"], "cancelling": ["in_progress"],
           "cancelled": ["in_progress", "cancelling"]}
ENDPOINT = "/v1/chat/completions"
MODEL = "moonshot-v1-8k"
FILE_PURPOSES = ("batch", "file-extract", "image", "video")
FAULT_ACTIONS = ("status", "body", "drop", "hang", "slow", "truncate", "delay", "endless",
                 "lost")
VALIDATING_S, PROCESSING_S, FINALIZING_S = 3.0, 20.0, 3.0   # --auto timings
MAX_BATCH_FILE = 100 * 1024 * 1024
MAX_FILES = 1000                        # files per account
MAX_STORAGE = 10 * 1000 ** 3            # bytes of every file of the account
MAX_BODY = 200 * 1024 * 1024
SPOOL_MIN = 1024 * 1024             # uploads larger than this are kept on disk
DEFAULT_TOTAL = 10
LOWER_ALNUM = string.ascii_lowercase + string.digits
ALNUM = string.ascii_letters + string.digits
NO_RAW = object()


class ApiError(Exception):
    """An error answer: {"error": {"message", "type", "code"?}}."""

    def __init__(self, status, message, type_="invalid_request_error", code=None,
                 headers=()):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.headers = list(headers)

    def payload(self):
        err = {"message": self.message, "type": self.type}
        if self.code is not None:
            err["code"] = self.code
        return {"error": err}


def bad(message, code=None):
    return ApiError(400, message, code=code)


def error_type(status):
    """The error type a status code comes with (for the `status` fault)."""
    return {401: "invalid_authentication_error", 403: "permission_denied_error",
            429: "rate_limit_reached_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def as_int(v, default=0):
    return v if is_int(v) else default


def window_seconds(window):
    """Seconds of a completion window such as "24h" or "3d"; None unless
    it is such a duration from 12h to 7d."""
    m = re.fullmatch(r"([0-9]{1,6})([hd])", window) if isinstance(window, str) else None
    if not m:
        return None
    hours = int(m.group(1)) * (24 if m.group(2) == "d" else 1)
    return hours * 3600 if 12 <= hours <= 168 else None


def inspect_input(data, endpoint):
    """Read a batch input file: (total, custom_ids, failing line indices,
    reason the validation step must fail or None)."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    ids, fails, problem, seen = [], [], None, set()
    for i, line in enumerate(lines):
        try:
            req = json.loads(line)
        except ValueError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("custom_id"), str):
            problem = problem or "line %d is not a request object with a custom_id" % (i + 1)
            ids.append("line-%d" % (i + 1))
            continue
        cid = req["custom_id"]
        if cid in seen:
            problem = problem or "line %d repeats custom_id %r" % (i + 1, cid)
        seen.add(cid)
        ids.append(cid)
        if req.get("url", endpoint) != endpoint:
            problem = problem or "line %d has url %r, not %r" % (i + 1, req.get("url"), endpoint)
        body = req.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            fails.append(i)
    if not lines:
        problem = "the input file holds no requests"
    return len(lines), ids, fails, problem


def count_requests(chunks):
    """The lines that are not blank in the bytes of chunks (an iterable), as
    inspect_input counts them, without a Python object per line: a part
    of 100 MB in tens of ms when its lines start with `{`."""
    n, pending = 0, False       # pending: the unended line has a byte not blank
    for c in chunks:
        first, last = c.find(b"\n"), c.rfind(b"\n")
        if first < 0:
            pending = pending or bool(c.strip())
            continue
        n += pending or bool(c[:first].strip())
        inside = c.count(b"\n", first + 1, last + 1)   # lines begun and ended in c
        if c.count(b"\n{", first, last + 1) != inside:
            inside = sum(1 for line in c[first + 1:last].split(b"\n") if line.strip())
        n += inside
        pending = bool(c[last + 1:].strip())
    return n + pending


def synthetic_input(total):
    line = ('{"custom_id": "request-%d", "method": "POST", "url": "' + ENDPOINT +
            '", "body": {"model": "' + MODEL + '", "messages": '
            '[{"role": "user", "content": "Question %d"}]}}\n')
    return "".join(line % (i + 1, i + 1) for i in range(total)).encode()


def synthetic_bytes(size):
    """`size` bytes of JSONL, each line 100 bytes
    (`{"custom_id": "request-N", "pad": "xxx..."}`), the last one cut to fit."""
    lines, n = [], 0
    i = 0
    while n < size:
        head = '{"custom_id": "request-%d", "pad": "' % i
        line = (head + "x" * max(0, 100 - len(head) - 3) + '"}\n').encode()
        lines.append(line)
        n += len(line)
        i += 1
    return b"".join(lines)[:size]


def split_outcomes(total, fails, completed, failed):
    """Which request indices went to the output file and which to the error
    file, given the counts: failing requests first to the error file, then
    anything else when forced counts ask for more."""
    failset, ok, err = set(fails), [], []
    for i in range(total):
        if len(ok) >= completed and len(err) >= failed:
            break
        if i in failset:
            if len(err) < failed:
                err.append(i)
        elif len(ok) < completed:
            ok.append(i)
    if len(err) < failed:
        used = set(ok) | set(err)
        err += [i for i in range(total) if i not in used][:failed - len(err)]
        err.sort()
    return ok, err


def render_results(bid, ids, indices, success, ts):
    out = []
    for i in indices:
        cid = ids[i] if ids is not None and i < len(ids) else "request-%d" % (i + 1)
        rid = "%s%06d" % (bid.replace("batch_", "")[:18], i)
        if success:
            body = {"id": "chatcmpl-" + rid, "object": "chat.completion", "created": ts,
                    "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant",
                                             "content": "Simulated answer to %s." % cid}}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}
            response = {"status_code": 200, "request_id": "req-" + rid, "body": body}
        else:
            body = {"error": {"message": "Invalid request: 'messages' is required.",
                              "type": "invalid_request_error"}}
            response = {"status_code": 400, "request_id": "req-" + rid, "body": body}
        out.append(json.dumps({"id": "batch_req_" + rid, "custom_id": cid,
                               "response": response, "error": None}) + "\n")
    return "".join(out).encode()


class Spooled:
    """Bytes kept on disk: a range of an unnamed temporary file (freed when
    the last holder lets go)."""

    def __init__(self, file, offset, length):
        self.file, self.offset, self.length = file, offset, length

    def __len__(self):
        return self.length

    def read(self):
        return os.pread(self.file.fileno(), self.length, self.offset)

    def chunks(self):
        """The bytes a MiB at a time, each read into the same buffer (valid
        until the next)."""
        buf, end = bytearray(SPOOL_MIN), self.offset + self.length
        for at in range(self.offset, end, SPOOL_MIN):
            got = os.preadv(self.file.fileno(), [buf], at)
            if got < SPOOL_MIN or at + got > end:
                got = min(got, end - at)
                yield bytes(buf[:got])
            else:
                yield buf

    def blank(self):
        """Whether every byte is whitespace."""
        return not any(c.strip() for c in self.chunks())


class FileRec:
    """One file; content may be made lazily (seeds, batch results) or kept
    on disk (a large upload: Spooled)."""

    def __init__(self, fid, filename, purpose, created_at, data=None, make=None):
        self.meta = {"id": fid, "object": "file", "bytes": 0, "created_at": created_at,
                     "filename": filename, "purpose": purpose, "status": "ready",
                     "status_details": None}
        self._data, self._make = None, make
        self.seq = 0
        self.claimed = None         # bytes the FileObject says, if not the real size
        self.spooled = None         # a Spooled holding the content, read on each use
        if isinstance(data, Spooled):
            self.spooled = data
            self.meta["bytes"] = len(data)
        elif data is not None:
            self._set(data)

    def _set(self, data):
        self._data, self._make = data, None
        self.meta["bytes"] = len(data) if self.claimed is None else self.claimed

    def data(self):
        if self.spooled is not None:
            return self.spooled.read()
        if self._data is None:
            self._set(self._make())
        return self._data

    def obj(self):
        if self.spooled is None:
            self.data()
        return self.meta


class Batch:
    """One stored batch: its object, or a raw value served instead, and the
    state that drives its lifecycle."""

    def __init__(self, key, seq, obj, created_at):
        self.key, self.seq, self.obj, self.created_at = key, seq, obj, created_at
        self.raw = NO_RAW
        self.t_state = 0.0          # simulated time the current status began
        self.t_cancel = 0.0         # simulated time of the cancel request
        self.p0 = self.c0 = self.f0 = 0   # counts when in_progress began
        self.ids = None             # custom_ids of the input lines; None: request-N
        self.fails = []             # sorted indices of requests that fail
        self.problem = None         # why validation fails (with --auto), or None
        self.input = None           # FileRec whose lines set the three above when needed

    def inspected(self):
        """The batch, its input read into ids, fails and problem if not
        yet (a creation answers without parsing every line)."""
        if self.input is not None:
            f, self.input = self.input, None
            _, self.ids, self.fails, self.problem = inspect_input(f.data(), ENDPOINT)
        return self

    def served(self):
        return self.obj if self.raw is NO_RAW else self.raw

    def served_id(self):
        v = self.served()
        return v["id"] if isinstance(v, dict) and isinstance(v.get("id"), str) else self.key

    def sort_key(self):
        v = self.served()
        ca = v.get("created_at") if isinstance(v, dict) else None
        return (ca if is_int(ca) else self.created_at, self.seq)


class Sim:
    """All simulator state, guarded by one lock."""

    def __init__(self, key, auto):
        self.start_key, self.start_auto = key, auto
        self.lock = threading.RLock()
        self.stopping = False
        self.verbose = False
        self.wake = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            self.key, self.auto = self.start_key, self.start_auto
            self.cancel_delay, self.latency, self.offset = 1.0, 0.0, 0.0
            self.max_files, self.max_storage = MAX_FILES, MAX_STORAGE
            self.strict_accept = False
            self.fail_ids = {}          # custom_id: attempts that fail (True: all)
            self.attempts = {}          # custom_id: batches made with it so far
            self.batches, self.files, self.faults, self.log = {}, {}, [], []
            self.seq, self.last_created, self.file_seq = 0, 0, 0
            self.order = None           # ordered() cache; None: to be sorted
            self.wake_all()

    def wake_all(self):
        """End every hang, delay and slow answer in progress."""
        old, self.wake = self.wake, threading.Event()
        old.set()

    def now(self):
        return time.time() + self.offset

    # ---- creation -------------------------------------------------------

    def _new_id(self, prefix, alphabet, taken):
        while True:
            new = prefix + "".join(secrets.choice(alphabet) for _ in range(24))
            if new not in taken:
                return new

    def add_file(self, filename, purpose, created_at, data=None, make=None):
        fid = self._new_id("file-", ALNUM, self.files)
        self.file_seq += 1
        self.files[fid] = FileRec(fid, filename, purpose, created_at, data, make)
        self.files[fid].seq = self.file_seq
        return fid

    def new_batch(self, input_file_id, endpoint, window, metadata, total,
                  created_at=None, key=None):
        now = self.now()
        if created_at is None:
            created_at = max(int(now), self.last_created + 1)
        self.last_created = max(self.last_created, created_at)
        key = key or self._new_id("batch_", LOWER_ALNUM, self.batches)
        secs = window_seconds(window)
        obj = {"id": key, "object": "batch", "endpoint": endpoint,
               "input_file_id": input_file_id, "completion_window": window,
               "status": "validating", "output_file_id": None, "error_file_id": None,
               "created_at": created_at, "in_progress_at": None,
               "expires_at": created_at + secs if secs else None,
               "finalizing_at": None, "completed_at": None, "failed_at": None,
               "cancelling_at": None, "cancelled_at": None,
               "request_counts": {"total": total, "completed": 0, "failed": 0},
               "metadata": metadata}
        self.seq += 1
        b = Batch(key, self.seq, obj, created_at)
        b.t_state = max(now, created_at)
        self.batches[key] = b
        self.order = None
        return b

    def make_batch(self, status, total=DEFAULT_TOTAL, failed=0, metadata=None,
                   window="24h", created_at=None, at=None, key=None):
        """A batch as seeds make it: own input file, forced to `status`."""
        now = self.now()
        ca = created_at if created_at is not None else max(int(now), self.last_created + 1)
        fid = self.add_file("batch-input-%d.jsonl" % (self.seq + 1), "batch", ca,
                            make=lambda: synthetic_input(total))
        b = self.new_batch(fid, ENDPOINT, window, metadata, total, ca, key)
        b.obj["request_counts"]["failed"] = failed
        self.force(b, status, now if at is None or status == "cancelling" else at)
        return b

    def seed(self, count, statuses, metadatas=(None,), totals=(DEFAULT_TOTAL,), faileds=(0,)):
        """`count` batches with created_at spread over the past (at most
        about 6 hours), each newer than the one before."""
        now = int(self.now())
        step = max(1, min(60, 21600 // max(count, 1)))
        keys = []
        for i in range(count):
            ca = max(now - (count - i) * step, self.last_created + 1)
            meta = metadatas[i % len(metadatas)]
            b = self.make_batch(statuses[i % len(statuses)],
                                total=totals[i % len(totals)], failed=faileds[i % len(faileds)],
                                metadata=dict(meta) if isinstance(meta, dict) else meta,
                                created_at=ca, at=min(now, ca + 20 + (i * 37) % 300))
            keys.append(b.key)
        return keys

    # ---- lifecycle ------------------------------------------------------

    def force(self, b, status, at):
        """Move `b` to `status` as if it had got there by `at`: the earlier
        steps spread between created_at and `at`, plausible counts, files."""
        o, now = b.obj, self.now()
        ca = as_int(o.get("created_at"), b.created_at)
        at = max(at, ca)
        for f in STEP_FIELDS:
            o[f] = None
        o["output_file_id"] = o["error_file_id"] = None
        if not isinstance(o.get("request_counts"), dict):
            o["request_counts"] = {"total": 0, "completed": 0, "failed": 0}
        rc = o["request_counts"]
        total = max(0, as_int(rc.get("total")))
        failed = min(max(0, as_int(rc.get("failed"))), total)
        if status in ("validating", "failed"):
            completed = failed = 0
        elif status in ("finalizing", "completed"):
            completed = total - failed
        else:   # part of the work done: in_progress, expired, cancelling, cancelled
            completed = total // 3 if status.startswith("cancel") else total // 2
            failed = min(failed, total - completed)
        rc["completed"], rc["failed"] = completed, failed
        steps = HISTORY[status]
        for j, step in enumerate(steps):
            o[step + "_at"] = int(ca + (at - ca) * (j + 1) / (len(steps) + 1))
        if status == "expired" and (not is_int(o.get("expires_at")) or o["expires_at"] > at):
            o["expires_at"] = int(at)
        self.enter(b, status, at)
        b.t_state = max(now, ca)            # with --auto, go on from now
        if status == "cancelling":
            b.t_cancel = max(at, now)           # cancelled cancel_delay from now

    def enter(self, b, status, t):
        """Status change at simulated time t."""
        o = b.obj
        o["status"] = status
        b.t_state = t
        if status + "_at" in STEP_FIELDS:
            o[status + "_at"] = int(t)
        if status == "in_progress":
            self.restart(b, t)
        elif status == "cancelling":
            b.t_cancel = t
        elif status in FINAL and status != "failed":
            self.attach_results(b, status, int(t))

    def restart(self, b, t=None):
        """Let the lifecycle of `b` go on from time t (default now) in its
        current status, from its current counts; timestamps untouched."""
        b.t_state = self.now() if t is None else t
        rc = b.obj.get("request_counts")
        if isinstance(rc, dict):
            b.c0, b.f0 = as_int(rc.get("completed")), as_int(rc.get("failed"))
            b.p0 = b.c0 + b.f0

    def attach_results(self, b, status, ts):
        o = b.obj
        rc = o["request_counts"] if isinstance(o.get("request_counts"), dict) else {}
        total, c, f = (max(0, as_int(rc.get(k))) for k in ("total", "completed", "failed"))
        b.inspected()
        plan = (b.key, b.ids, total, list(b.fails), c, f)

        def make(success):
            key, ids, total, fails, c, f = plan
            ok, err = split_outcomes(total, fails, c, f)
            return render_results(key, ids, ok if success else err, success, ts)

        if status == "completed" or c > 0:
            o["output_file_id"] = self.add_file("%s_output.jsonl" % b.key, "batch_output",
                                                ts, make=lambda: make(True))
        if f > 0:
            o["error_file_id"] = self.add_file("%s_error.jsonl" % b.key, "batch_output",
                                               ts, make=lambda: make(False))

    def progress(self, b, t):
        """Counts of an in_progress batch at time t (--auto)."""
        rc = b.obj.get("request_counts")
        if not isinstance(rc, dict):
            return
        total = as_int(rc.get("total"))
        frac = min(1.0, max(0.0, (t - b.t_state) / PROCESSING_S))
        done = b.p0 + max(0, int((total - b.p0) * frac))
        nf = bisect.bisect_left(b.inspected().fails, done) - bisect.bisect_left(b.fails, b.p0)
        rc["failed"] = b.f0 + nf
        rc["completed"] = b.c0 + (done - b.p0 - nf)

    def settle(self, b):
        """Apply every transition due by now (lazily, on each access)."""
        if b.raw is not NO_RAW:
            return
        o, now = b.obj, self.now()
        while True:
            st = o.get("status")
            if st == "cancelling":
                due = b.t_cancel + self.cancel_delay
                if now < due:
                    return
                self.enter(b, "cancelled", due)
            elif st == "in_progress":
                end = b.t_state + PROCESSING_S if self.auto else float("inf")
                exp = o.get("expires_at")
                if is_int(exp) and exp <= min(now, end):
                    if self.auto:
                        self.progress(b, exp)
                    self.enter(b, "expired", max(exp, b.t_state))
                elif self.auto and now >= end:
                    self.progress(b, end)
                    self.enter(b, "finalizing", end)
                else:
                    if self.auto:
                        self.progress(b, now)
                    return
            elif self.auto and st == "validating" and now >= b.t_state + VALIDATING_S:
                self.enter(b, "failed" if b.inspected().problem else "in_progress", b.t_state + VALIDATING_S)
            elif self.auto and st == "finalizing" and now >= b.t_state + FINALIZING_S:
                self.enter(b, "completed", b.t_state + FINALIZING_S)
            else:
                return

    def view(self, b):
        self.settle(b)
        return b.served()

    def ordered(self):
        """Every batch, newest first, and each one's position by served id.
        Sorted again only after something that can change the order (a
        batch created, deleted or given a raw value or new fields): a list
        page then costs its own length, not the account's."""
        if self.order is None:
            order = sorted(self.batches.values(), key=Batch.sort_key, reverse=True)
            pos = {}
            for i, b in enumerate(order):
                pos.setdefault(b.served_id(), i)
            self.order = (order, pos)
        return self.order[0]

    def position(self, served_id):
        """Where the batch the public API knows by served_id stands in
        ordered(), or None."""
        self.ordered()
        return self.order[1].get(served_id)

    def find(self, served_id):
        """The batch the public API knows by this id."""
        b = self.batches.get(served_id)
        if b is not None and b.served_id() == served_id:
            return b
        for b in self.batches.values():
            if b.served_id() == served_id:
                return b
        return None

    # ---- faults ---------------------------------------------------------

    def add_faults(self, faults):
        if not isinstance(faults, list):
            raise bad("'faults' must be a list")
        added = []
        for f in faults:
            if not isinstance(f, dict) or f.get("action") not in FAULT_ACTIONS:
                raise bad("each fault needs an 'action' among %s" % ", ".join(FAULT_ACTIONS))
            f = dict(f)
            f.setdefault("count", 1)
            if not is_int(f["count"]) or (f["count"] < 1 and f["count"] != -1):
                raise bad("'count' must be a positive integer or -1")
            try:
                f["_re"] = re.compile(f["path"]) if f.get("path") is not None else None
            except (re.error, TypeError) as e:
                raise bad("bad 'path' regex: %s" % e)
            md = f.get("metadata")
            if f["action"] == "endless" and md is not None and (
                    not isinstance(md, dict) or not all(isinstance(v, str)
                                                        for v in md.values())):
                raise bad("'metadata' must be an object of strings")
            if not isinstance(f.get("handled", False), bool):
                raise bad("'handled' must be true or false")
            p = f.get("probability")
            if p is not None and not (isinstance(p, (int, float)) and 0 <= p <= 1):
                raise bad("'probability' must be a number from 0 to 1")
            if not is_int(f.get("skip", 0)) or f.get("skip", 0) < 0:
                raise bad("'skip' must be a non-negative integer")
            added.append(f)
        self.faults.extend(added)

    def endless_page(self, fault, query):
        """A list page of brand-new batches that says there is more (the
        `endless` fault): `limit` objects (default 20, at most 100) with ids
        never given before, each older than the one before, none stored."""
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        try:
            limit = min(100, max(1, int(q.get("limit", ["20"])[-1])))
        except ValueError:
            limit = 20
        if "_tag" not in fault:
            fault["_tag"] = "".join(secrets.choice(LOWER_ALNUM) for _ in range(8))
            fault["_next"], fault["_t0"] = 0, int(self.now())
        metadata = fault.get("metadata")
        data = []
        for _ in range(limit):
            n = fault["_next"] = fault["_next"] + 1
            ca = fault["_t0"] - n
            data.append({
                "id": "batch_%s%016d" % (fault["_tag"], n), "object": "batch",
                "endpoint": ENDPOINT, "input_file_id": "file-" + "e" * 24,
                "completion_window": "24h", "status": "in_progress",
                "output_file_id": None, "error_file_id": None, "created_at": ca,
                "in_progress_at": ca + 1, "expires_at": ca + 86400, "finalizing_at": None,
                "completed_at": None, "failed_at": None, "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 10, "completed": 5, "failed": 0},
                "metadata": metadata})
        return {"object": "list", "data": data, "first_id": data[0]["id"],
                "last_id": data[-1]["id"], "has_more": True}

    def take_fault(self, method, path):
        for i, f in enumerate(self.faults):
            if f.get("method") and str(f["method"]).upper() != method:
                continue
            if f["_re"] is not None and not f["_re"].search(path):
                continue
            if f.get("probability") is not None and random.random() >= f["probability"]:
                continue
            if f.get("skip", 0) > 0:        # spares the first matching requests
                f["skip"] -= 1
                continue
            if f["count"] > 0:
                f["count"] -= 1
                if f["count"] == 0:
                    del self.faults[i]
            return f
        return None

    # ---- the public API -------------------------------------------------

    def api(self, method, path, query, body, ctype):
        """Answer one authenticated /v1/ request: (status, payload, headers);
        payload is a JSON value, or (bytes, content type)."""
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        routes = [
            (r"/v1/batches", {"GET": lambda: self.list_batches(q),
                              "POST": lambda: self.create_batch(body)}),
            (r"/v1/batches/([^/]+)", {"GET": lambda i: self.view(self.need_batch(i))}),
            (r"/v1/batches/([^/]+)/cancel", {"POST": self.cancel}),
            (r"/v1/files", {"GET": lambda: self.list_files(q),
                            "POST": lambda: self.upload(body, ctype)}),
            (r"/v1/files/([^/]+)", {"GET": lambda i: self.need_file(i).obj(),
                                    "DELETE": self.delete_file}),
            (r"/v1/files/([^/]+)/content", {"GET": self.file_content}),
        ]
        for pattern, handlers in routes:
            m = re.fullmatch(pattern, path)
            if m:
                if method not in handlers:
                    raise ApiError(405, "Method %s is not allowed on %s." % (method, path),
                                   code="method_not_allowed",
                                   headers=[("Allow", ", ".join(handlers))])
                args = [urllib.parse.unquote(g) for g in m.groups()]
                return 200, handlers[method](*args), []
        raise ApiError(404, "Unknown request URL: %s %s." % (method, path), code="unknown_url")

    def need_batch(self, bid):
        b = self.find(bid)
        if b is None:
            raise ApiError(404, "No batch found with id '%s'." % bid, code="not_found")
        return b

    def need_file(self, fid):
        f = self.files.get(fid)
        if f is None:
            raise ApiError(404, "No such File object: %s" % fid, code="not_found")
        return f

    def list_batches(self, q):
        raw_limit = q.get("limit", ["20"])[-1]
        try:
            limit = int(raw_limit)
        except ValueError:
            raise bad("Invalid 'limit': expected an integer, but got '%s' instead." % raw_limit,
                      "invalid_type")
        if limit < 1:
            raise bad("Invalid 'limit': integer below minimum value. Expected a value >= 1, "
                      "but got %d instead." % limit, "integer_below_min_value")
        if limit > 100:
            raise bad("Invalid 'limit': integer above maximum value. Expected a value <= 100, "
                      "but got %d instead." % limit, "integer_above_max_value")
        order = self.ordered()
        start, after = 0, q.get("after", [""])[-1]
        if after:
            i = self.position(after)
            if i is None:
                raise bad("Invalid 'after': no batch found with id '%s'." % after, "invalid_after")
            start = i + 1
        page = order[start:start + limit]
        return {"object": "list", "data": [self.view(b) for b in page],
                "first_id": page[0].served_id() if page else None,
                "last_id": page[-1].served_id() if page else None,
                "has_more": start + limit < len(order)}

    def create_batch(self, body):
        try:
            req = json.loads(body or b"null")
        except ValueError:
            req = None
        if not isinstance(req, dict):
            raise bad("We could not parse the JSON body of your request: expected a JSON "
                      "object.", "invalid_json")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in req or req[name] is None:
                raise bad("Missing required parameter: '%s'." % name, "missing_required_parameter")
            if not isinstance(req[name], str):
                raise bad("Invalid type for '%s': expected a string, but got %s instead."
                          % (name, type(req[name]).__name__), "invalid_type")
        if req["endpoint"] != ENDPOINT:
            raise bad("Invalid value for 'endpoint': '%s'. Supported values are: '%s'."
                      % (req["endpoint"], ENDPOINT), "invalid_value")
        window = req["completion_window"]
        if window_seconds(window) is None:
            raise bad("Invalid value for 'completion_window': '%s'. Expected a duration from "
                      "12h to 7d such as '24h' or '3d'." % window, "invalid_value")
        metadata = req.get("metadata")
        check_metadata(metadata)
        fid = req["input_file_id"]
        f = self.files.get(fid)
        if f is None:
            raise bad("Invalid 'input_file_id': no file found with id '%s'." % fid, "invalid_value")
        if f.meta["purpose"] != "batch":
            raise bad("Invalid 'input_file_id': file '%s' has purpose '%s', but a batch needs "
                      "purpose 'batch'." % (fid, f.meta["purpose"]), "invalid_value")
        b = self.new_batch(fid, ENDPOINT, window, dict(metadata) if metadata else metadata,
                           count_requests(f.spooled.chunks() if f.spooled else [f.data()]))
        b.input = f
        if self.fail_ids:   # attempts are counted in the order of creation
            b.inspected()
            b.fails = self.failing(b.ids, b.fails)
        return b.obj

    def failing(self, ids, fails):
        """The failing line indices of a new batch of requests `ids`: those
        given, and each request `fail_ids` names, while its attempts last
        (this batch counts as one attempt of each of its ids)."""
        out = set(fails)
        for i, cid in enumerate(ids):
            if cid not in self.fail_ids:
                continue
            self.attempts[cid] = self.attempts.get(cid, 0) + 1
            n = self.fail_ids[cid]
            if n is True or self.attempts[cid] <= n:
                out.add(i)
        return sorted(out)

    def cancel(self, bid):
        b = self.need_batch(bid)
        if b.raw is not NO_RAW:
            return b.raw
        self.settle(b)
        st = b.obj.get("status")
        if st not in CANCELLABLE:
            raise bad("Cannot cancel a batch with status '%s'. Only batches that are validating, "
                      "in_progress or finalizing can be cancelled." % st, "invalid_state")
        self.enter(b, "cancelling", self.now())
        return b.obj

    def list_files(self, q):
        """OpenAI-compatible: newest first (`order=asc` for oldest first),
        `limit` 1..10000 (default 10000), `after` the id of the last file
        of the previous page, `has_more`."""
        purpose = q.get("purpose", [None])[-1]
        raw_limit = q.get("limit", ["10000"])[-1]
        try:
            limit = int(raw_limit)
        except ValueError:
            raise bad("Invalid 'limit': expected an integer, but got '%s' instead." % raw_limit,
                      "invalid_type")
        if not 1 <= limit <= 10000:
            raise bad("Invalid 'limit': expected a value from 1 to 10000, but got %d instead."
                      % limit, "invalid_value")
        order = q.get("order", ["desc"])[-1]
        if order not in ("asc", "desc"):
            raise bad("Invalid 'order': expected 'asc' or 'desc'.", "invalid_value")
        files = [f for f in self.files.values() if purpose in (None, "", f.meta["purpose"])]
        files.sort(key=lambda f: (f.meta["created_at"], f.seq), reverse=order == "desc")
        start, after = 0, q.get("after", [""])[-1]
        if after:
            for i, f in enumerate(files):
                if f.meta["id"] == after:
                    start = i + 1
                    break
            else:
                raise bad("Invalid 'after': no file found with id '%s'." % after, "invalid_after")
        page = files[start:start + limit]
        return {"object": "list", "data": [f.obj() for f in page],
                "first_id": page[0].meta["id"] if page else None,
                "last_id": page[-1].meta["id"] if page else None,
                "has_more": start + limit < len(files)}

    def upload(self, body, ctype):
        fields = parse_multipart(ctype, body)
        if "file" not in fields:
            raise bad("Missing required parameter: 'file'.", "missing_required_parameter")
        if "purpose" not in fields:
            raise bad("Missing required parameter: 'purpose'.", "missing_required_parameter")
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode("utf-8", "replace").strip()
        if not filename:
            raise bad("The 'file' field must be a file upload with a filename.", "invalid_value")
        if purpose not in FILE_PURPOSES:
            raise bad("Invalid value for 'purpose': '%s'. Supported values are: %s."
                      % (purpose, ", ".join("'%s'" % p for p in FILE_PURPOSES)), "invalid_value")
        if purpose == "batch":
            if not filename.endswith(".jsonl"):
                raise bad("Invalid file format for Batch API. Must be .jsonl",
                          "invalid_file_format")
            if (data.blank() if isinstance(data, Spooled) else not data.strip()):
                raise bad("The file is empty.", "empty_file")
            if len(data) > MAX_BATCH_FILE:
                raise bad("The file is larger than the 100 MB limit for batch input.",
                          "file_too_large")
        self.check_room(len(data))
        fid = self.add_file(filename, purpose, int(self.now()), data=data)
        return self.files[fid].obj()

    def check_room(self, size):
        """A full account refuses uploads: at most max_files files and
        max_storage bytes over every file it holds (results included, once
        made: a result file made lazily counts from its first read)."""
        if len(self.files) >= self.max_files:
            raise bad("You have reached the maximum number of files (%d). Delete files "
                      "to upload more." % self.max_files, "file_count_limit_exceeded")
        used = sum(f.meta["bytes"] for f in self.files.values())
        if used + size > self.max_storage:
            raise bad("The account's files would take %d bytes, over the limit of %d bytes. "
                      "Delete files to upload more." % (used + size, self.max_storage),
                      "storage_limit_exceeded")

    def delete_file(self, fid):
        self.need_file(fid)
        del self.files[fid]
        return {"id": fid, "object": "file", "deleted": True}

    def file_content(self, fid):
        return (self.need_file(fid).data(), "application/octet-stream")

    # ---- the control API ------------------------------------------------

    def control(self, method, path, body):
        try:
            req = json.loads(body) if body.strip() else {}
        except ValueError:
            raise bad("The body is not valid JSON.")
        m = re.fullmatch(r"/_sim/batches/([^/]+)(?:/(raw|state|set))?", path)
        if m:
            return self.control_batch(method, urllib.parse.unquote(m.group(1)), m.group(2), req)
        if not isinstance(req, dict):
            raise bad("Expected a JSON object.")
        simple = {
            ("POST", "/_sim/reset"): lambda: (self.reset(), {"ok": True})[1],
            ("POST", "/_sim/seed"): lambda: self.control_seed(req),
            ("POST", "/_sim/batches"): lambda: self.control_create(req),
            ("GET", "/_sim/batches"): lambda: [self.view(b) for b in self.ordered()],
            ("POST", "/_sim/advance"): lambda: self.control_advance(req),
            ("POST", "/_sim/config"): lambda: self.control_config(req),
            ("GET", "/_sim/config"): lambda: self.control_config({}),
            ("POST", "/_sim/faults"): lambda: self.control_faults(req),
            ("GET", "/_sim/faults"): lambda: self.control_faults(None),
            ("DELETE", "/_sim/faults"): lambda: (self.faults.clear(), self.wake_all(),
                                                 {"ok": True})[2],
            ("POST", "/_sim/files"): lambda: self.control_file(req),
            ("GET", "/_sim/log"): lambda: {"requests": self.log},
            ("DELETE", "/_sim/log"): lambda: (self.log.clear(), {"ok": True})[1],
        }
        if (method, path) not in simple:
            raise ApiError(404, "Unknown control call: %s %s" % (method, path), code="unknown_url")
        return simple[(method, path)]()

    def control_seed(self, req):
        count = req.get("count", 1)
        if not is_int(count) or count < 0:
            raise bad("'count' must be a non-negative integer")
        statuses = req.get("status", list(STATUSES))
        statuses = [statuses] if isinstance(statuses, str) else statuses
        if not isinstance(statuses, list) or not statuses or \
                any(s not in STATUSES for s in statuses):
            raise bad("'status' must be a status or a non-empty list of statuses")
        total, failed = req.get("total", DEFAULT_TOTAL), req.get("failed", 0)
        if not is_int(total) or total < 0 or not is_int(failed) or not 0 <= failed <= total:
            raise bad("'total' and 'failed' must be integers with 0 <= failed <= total")
        return {"ids": self.seed(count, statuses, [req.get("metadata")], [total], [failed])}

    def control_create(self, req):
        if not isinstance(req, dict):
            raise bad("expected a JSON object of batch fields")
        status = req.get("status", "validating")
        if status not in STATUSES:
            raise bad("unknown status %r" % (status,))
        rc = req.get("request_counts") if isinstance(req.get("request_counts"), dict) else {}
        total = as_int(rc.get("total"), as_int(req.get("total"), DEFAULT_TOTAL))
        key, ca = req.get("id"), req.get("created_at")
        if key is not None and (not isinstance(key, str) or not key or key in self.batches):
            raise bad("'id' must be a new non-empty string")
        if ca is not None and not is_int(ca):
            raise bad("'created_at' must be an integer")
        b = self.make_batch(status, total=total, failed=as_int(rc.get("failed")),
                            metadata=req.get("metadata"),
                            window=req.get("completion_window", "24h"), created_at=ca, key=key)
        for k, v in req.items():
            if k == "request_counts" and isinstance(v, dict):
                b.obj["request_counts"].update(v)
            elif k != "total":
                b.obj[k] = v
        self.order = None           # the fields may move it
        return self.view(b)

    def control_batch(self, method, key, action, req):
        if method != "GET":
            self.order = None       # ids and created_at may change
        b = self.batches.get(key)
        if action == "raw" and method == "POST":
            if b is None:
                b = self.make_batch("validating", key=key)
            b.raw = req
            return {"ok": True}
        if b is None:
            raise ApiError(404, "No batch stored under '%s'." % key, code="not_found")
        if action is None and method == "GET":
            return self.view(b)
        if action is None and method == "DELETE":
            del self.batches[key]
            return {"id": key, "deleted": True}
        if action == "state" and method == "POST":
            status = req.get("status") if isinstance(req, dict) else None
            if status not in STATUSES:
                raise bad("'status' must be one of %s" % ", ".join(STATUSES))
            b.raw = NO_RAW
            self.settle(b)
            self.force(b, status, self.now())
            return self.view(b)
        if action == "set" and method == "POST":
            if not isinstance(req, dict):
                raise bad("expected a JSON object of fields")
            self.settle(b)
            target = b.served()
            if not isinstance(target, dict):
                raise bad("the raw value of this batch is not an object")
            target.update(req)
            if b.raw is NO_RAW and "status" in req:
                self.restart(b)
                b.t_cancel = b.t_state          # a set `cancelling` lasts cancel_delay
            return self.view(b)
        raise ApiError(405, "Method %s is not allowed on %s." % (method, key),
                       code="method_not_allowed")

    def control_file(self, req):
        """A stored file: `content` (text) as given, or `size` bytes of
        JSONL lines (`{"custom_id": "request-N", "pad": "..."}`, the same
        bytes for the same size); `bytes` makes the FileObject claim
        another size than the content's."""
        filename = req.get("filename", "upload.jsonl")
        purpose = req.get("purpose", "batch")
        ca = req.get("created_at", int(self.now()))
        size, content, claimed = req.get("size"), req.get("content"), req.get("bytes")
        if not isinstance(filename, str) or not isinstance(purpose, str) or not is_int(ca):
            raise bad("'filename' and 'purpose' must be strings, 'created_at' an integer")
        if content is not None and not isinstance(content, str):
            raise bad("'content' must be a string")
        if size is not None and (not is_int(size) or size < 0 or size > MAX_BODY):
            raise bad("'size' must be an integer from 0 to %d" % MAX_BODY)
        if claimed is not None and (not is_int(claimed) or claimed < 0):
            raise bad("'bytes' must be a non-negative integer")
        if content is not None:
            data = content.encode()
            fid = self.add_file(filename, purpose, ca, data=data)
        else:
            n = size or 0
            fid = self.add_file(filename, purpose, ca, make=lambda: synthetic_bytes(n))
        f = self.files[fid]
        f.claimed = claimed
        if claimed is not None and f._data is not None:
            f.meta["bytes"] = claimed
        return f.obj()

    def control_advance(self, req):
        seconds = req.get("seconds", 0)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise bad("'seconds' must be a non-negative number")
        self.offset += seconds
        return {"now": self.now()}

    def control_config(self, req):
        for name in ("cancel_delay", "latency"):
            if name in req:
                v = req[name]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise bad("'%s' must be a non-negative number" % name)
                setattr(self, name, float(v))
        if "auto" in req:
            if not isinstance(req["auto"], bool):
                raise bad("'auto' must be true or false")
            for b in self.batches.values():
                self.settle(b)
                if req["auto"] and not self.auto and b.obj.get("status") in CANCELLABLE:
                    self.restart(b)
            self.auto = req["auto"]
        if "key" in req:
            if not isinstance(req["key"], str):
                raise bad("'key' must be a string")
            self.key = req["key"]
        for name in ("max_files", "max_storage"):
            if name in req:
                if not is_int(req[name]) or req[name] < 0:
                    raise bad("'%s' must be a non-negative integer" % name)
                setattr(self, name, req[name])
        if "strict_accept" in req:
            if not isinstance(req["strict_accept"], bool):
                raise bad("'strict_accept' must be true or false")
            self.strict_accept = req["strict_accept"]
        if "fail_ids" in req:
            v = req["fail_ids"]
            if not isinstance(v, dict) or not all(
                    n is True or (is_int(n) and n > 0) for n in v.values()):
                raise bad("'fail_ids' must map custom_ids to true or a positive integer")
            self.fail_ids, self.attempts = dict(v), {}
        return {"cancel_delay": self.cancel_delay, "auto": self.auto, "latency": self.latency,
                "strict_accept": self.strict_accept, "max_files": self.max_files,
                "fail_ids": self.fail_ids,
                "max_storage": self.max_storage, "now": self.now()}

    def control_faults(self, req):
        if req is not None:
            self.add_faults(req.get("faults") if isinstance(req, dict) else None)
        return {"faults": [{k: v for k, v in f.items() if not k.startswith("_")}
                           for f in self.faults]}


def answer_type(method, path):
    """The media type of the answer to a /v1/ request that succeeds."""
    if method == "GET" and re.fullmatch(r"/v1/files/[^/]+/content", path):
        return "application/octet-stream"
    return "application/json"


def accepts(accept, ctype):
    """Whether an Accept header admits the media type ctype (RFC 9110
    12.5.1: a range type/subtype, type/* or */*, with q > 0); no header
    admits everything."""
    if accept is None:
        return True
    kind = ctype.split(";")[0].strip().lower()
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        rng, q = parts[0].lower(), 1.0
        for p in parts[1:]:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (rng in ("*/*", kind) or
                      (rng.endswith("/*") and kind.split("/")[0] == rng[:-2])):
            return True
    return False


def check_metadata(metadata):
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise bad("Invalid type for 'metadata': expected an object, but got %s instead."
                  % type(metadata).__name__, "invalid_type")
    if len(metadata) > 16:
        raise bad("Invalid 'metadata': too many properties. Expected an object with at most 16 "
                  "properties, but got %d instead." % len(metadata), "object_above_max_properties")
    for k, v in metadata.items():
        if len(k) > 64:
            raise bad("Invalid 'metadata': key too long. Expected a key with maximum length 64, "
                      "but got a key with length %d instead." % len(k), "string_above_max_length")
        if not isinstance(v, str):
            raise bad("Invalid type for 'metadata.%s': expected a string, but got %s instead."
                      % (k, type(v).__name__), "invalid_type")
        if len(v) > 512:
            raise bad("Invalid 'metadata.%s': string too long. Expected a string with maximum "
                      "length 512, but got a string with length %d instead." % (k, len(v)),
                      "string_above_max_length")


def parse_multipart(ctype, body):
    """{field name: (filename or None, bytes)} of a multipart/form-data body;
    of a Spooled body, the file field's value is a Spooled range of it."""
    head = email.message.Message()
    head["Content-Type"] = ctype or ""
    boundary = head.get_param("boundary")
    if head.get_content_type() != "multipart/form-data" or not boundary:
        raise bad("Expected a multipart/form-data body with the fields 'file' and 'purpose'.",
                  "invalid_content_type")
    if not isinstance(body, Spooled):
        return multipart_fields(body, str(boundary).encode("latin-1"), lambda a, b: body[a:b])
    with mmap.mmap(body.file.fileno(), body.length, access=mmap.ACCESS_READ) as view:
        return multipart_fields(view, str(boundary).encode("latin-1"),
                                lambda a, b: Spooled(body.file, a, b - a))


def multipart_fields(body, boundary, value):
    """The fields of body (bytes or a mmap: searched in place, never split
    into copies), each value value(start, end) of the file field, bytes of
    the others."""
    sep = b"\r\n--" + boundary
    # The first delimiter may open the body without its CRLF.
    first = body.find(sep)
    at = (len(sep) - 2 if body[:len(sep) - 2] == sep[2:]
          else first + len(sep) if first >= 0 else -1)
    fields, closed = {}, False
    while at >= 0:
        if body[at:at + 2] == b"--":
            closed = True
            break
        end = body.find(sep, at)
        stop = end if end >= 0 else len(body)
        split = body.find(b"\r\n\r\n", at, stop)
        if split >= 0:
            part = email.message.Message()
            for line in body[at:split].decode("utf-8", "replace").split("\r\n"):
                name, colon, v = line.partition(":")
                if colon:
                    part[name.strip()] = v.strip()
            name = part.get_param("name", header="content-disposition")
            if name:
                name = email.utils.collapse_rfc2231_value(name)
                data = (value(split + 4, stop) if name == "file"
                        else bytes(body[split + 4:stop]))
                fields[name] = (part.get_filename(), data)
        at = end + len(sep) if end >= 0 else -1
    if not closed:
        raise bad("The multipart body ends without its closing boundary.", "invalid_multipart")
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kimisim/1.0"
    sys_version = ""

    def setup(self):
        super().setup()
        # Each answer goes out in one write (head and body together); with
        # Nagle on, the client's delayed ACK would hold the next answer on
        # a reused connection for ~40 ms.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def log_message(self, fmt, *args):
        if self.server.sim.verbose:
            sys.stderr.write("kimisim: %s\n" % (fmt % args))

    # ---- plumbing -------------------------------------------------------

    def read_body(self, spool=False):
        """The request's body: bytes, or with spool a Spooled copy on disk
        when it has a Content-Length over SPOOL_MIN (an upload)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():
                        pass
                    return data
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise ValueError("the body ended early")
                data += chunk
                self.rfile.readline(3)
                if len(data) > MAX_BODY:
                    raise ValueError("body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        if spool and n > SPOOL_MIN:
            return self.spool_body(n)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:           # the client gave up: nothing is done
            raise ValueError("the body ended early")
        return data

    def spool_body(self, n):
        """n bytes of the body copied, a MiB at a time, to an unnamed file
        in the spool directory."""
        f = tempfile.TemporaryFile(dir=self.server.spool)
        buf = memoryview(bytearray(SPOOL_MIN))
        left = n
        try:
            while left:
                got = self.rfile.readinto(buf[:min(left, SPOOL_MIN)])
                if not got:
                    raise ValueError("the body ended early")
                f.write(buf[:got])
                left -= got
            f.flush()
        except BaseException:
            f.close()
            raise
        return Spooled(f, 0, n)

    def pause(self, seconds, wake):
        """Sleep; True when woken early (reset, fault removal, shutdown)."""
        return wake.wait(max(0.0, float(seconds)))

    def close_now(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def answer_bytes(self, status, payload, headers):
        if isinstance(payload, tuple):
            body, ctype = payload
        else:
            ctype = "application/json"
            try:
                body = json.dumps(payload, ensure_ascii=False).encode()
            except UnicodeEncodeError:      # lone surrogates from a raw object
                body = json.dumps(payload).encode()
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Server: kimisim/1.0",
                 "Date: " + email.utils.formatdate(usegmt=True),
                 "Content-Type: " + ctype, "Content-Length: %d" % len(body)]
        lines += ["%s: %s" % (k, v) for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body

    def write_answer(self, head, body, mode=None, fault=None, wake=None):
        try:
            if mode == "slow":
                interval, data = float(fault.get("interval", 1)), head + body
                chunk = max(1, int(fault.get("chunk", 1)))
                for i in range(0, len(data), chunk):
                    self.wfile.write(data[i:i + chunk])
                    self.wfile.flush()
                    if self.pause(interval, wake):
                        self.close_now()
                        return
            elif mode == "truncate":
                self.wfile.write(head + body[:len(body) // 2])
                self.close_now()
            else:
                self.wfile.write(head + body)
        except OSError:
            self.close_connection = True

    # ---- dispatch -------------------------------------------------------

    def handle_any(self, method):
        sim = self.server.sim
        path, _, query = self.path.partition("?")
        try:
            body = self.read_body(spool=method == "POST" and path == "/v1/files")
        except (ValueError, OSError):
            self.close_connection = True
            head, data = self.answer_bytes(400, ApiError(400, "Unreadable request body.")
                                           .payload(), [])
            return self.write_answer(head, data)
        if path == "/v1" or path.startswith("/v1/"):
            return self.handle_v1(sim, method, path, query, body)
        try:
            with sim.lock:
                if not path.startswith("/_sim/"):
                    raise ApiError(404, "Unknown request URL: %s %s." % (method, path),
                                   code="unknown_url")
                status, payload, headers = 200, sim.control(method, path, body), []
                head, data = self.answer_bytes(status, payload, headers)
        except ApiError as e:
            status = e.status
            head, data = self.answer_bytes(e.status, e.payload(), e.headers)
        except Exception:
            traceback.print_exc()
            status = 500
            head, data = self.answer_bytes(500, ApiError(500, "simulator bug", "server_error")
                                           .payload(), [])
        self.write_answer(head, data)
        self.log_message("%s %s -> %d", method, path, status)

    def handle_v1(self, sim, method, path, query, body):
        with sim.lock:
            auth = self.headers.get("Authorization") == "Bearer " + sim.key
            entry = {"method": method, "path": path, "query": query, "status": 0, "auth": auth}
            sim.log.append(entry)
            fault = sim.take_fault(method, path)
            latency, wake = sim.latency, sim.wake
        action = fault["action"] if fault else None
        if latency > 0:
            self.pause(latency, wake)
        if action in ("drop", "hang"):
            if action == "hang" and not sim.stopping:
                self.pause(fault.get("seconds", 3600), wake)
            self.log_message("%s %s -> %s", method, path, action)
            return self.close_now()
        stale = action == "delay" and bool(fault.get("stale"))
        if action == "delay" and not stale:
            self.pause(fault.get("seconds", 1), wake)
        with sim.lock:
            try:
                if action == "status":
                    if fault.get("handled") and auth:
                        try:    # done first; its answer is replaced
                            sim.api(method, path, query, body,
                                    self.headers.get("Content-Type"))
                        except ApiError:
                            pass
                    status = int(fault.get("status", 500))
                    err = ApiError(status, fault.get("message", "Simulated error %d" % status),
                                   fault.get("type", error_type(status)), fault.get("code"))
                    payload, headers = err.payload(), list(fault.get("headers", {}).items())
                elif action == "body":
                    status, text = int(fault.get("status", 200)), fault.get("body", "")
                    text = text if isinstance(text, str) else json.dumps(text)
                    payload = (text.encode(), fault.get("content_type", "application/json"))
                    headers = list(fault.get("headers", {}).items())
                elif action == "endless":
                    status, payload, headers = 200, sim.endless_page(fault, query), []
                elif not auth:
                    raise ApiError(401, "Invalid Authentication", "invalid_authentication_error")
                elif sim.strict_accept and not accepts(self.headers.get("Accept"),
                                                       answer_type(method, path)):
                    # Checked before anything is done, as a server would.
                    raise ApiError(406, "This answer is %s, which the Accept header does "
                                   "not admit." % answer_type(method, path),
                                   code="not_acceptable")
                else:
                    status, payload, headers = sim.api(method, path, query, body,
                                                       self.headers.get("Content-Type"))
            except ApiError as e:
                status, payload, headers = e.status, e.payload(), e.headers
            except Exception:
                traceback.print_exc()
                status, payload, headers = 500, ApiError(500, "simulator bug",
                                                         "server_error").payload(), []
            entry["status"] = status
            head, data = self.answer_bytes(status, payload, headers)
        if stale:       # the answer says how things were when it was asked
            self.pause(fault.get("seconds", 1), wake)
        if action == "lost":    # done, but the answer never reaches the client
            self.log_message("%s %s -> %d, lost", method, path, status)
            return self.close_now()
        self.write_answer(head, data, action, fault, wake)
        self.log_message("%s %s -> %d", method, path, status)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        # Skip HTTPServer's reverse DNS lookup of the host: start fast.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main(argv=None):
    p = argparse.ArgumentParser(description="Moonshot Batch/Files API simulator for kimifs tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--key", default=os.environ.get("KIMISIM_KEY", "sk-test"),
                   help="the API key accepted (default $KIMISIM_KEY, else sk-test)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="create N sample batches in assorted states")
    p.add_argument("--auto", action="store_true",
                   help="batches move along their lifecycle as time passes")
    p.add_argument("--port-file", help="write the port number to this file")
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    p.add_argument("--spool", metavar="DIR",
                   help="where uploads over 1 MiB are kept (unnamed files; default the "
                   "system's temporary directory)")
    args = p.parse_args(argv)

    sim = Sim(args.key, args.auto)
    sim.verbose = args.verbose
    if args.seed > 0:
        with sim.lock:
            sim.seed(args.seed,
                     ["completed", "in_progress", "completed", "validating", "failed",
                      "finalizing", "cancelled", "expired", "completed", "cancelling"],
                     [{"project": "kimifs-demo", "owner": "alice"}, None,
                      {"project": "translations", "lang": "fr"}, {"run": "nightly-42"}, {}],
                     [10, 25, 100, 3, 50, 7], [0, 0, 2, 0, 1, 0, 0])

    Server.address_family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    server = Server((args.host, args.port), Handler)
    server.sim = sim
    server.spool = args.spool
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    host = "[%s]" % args.host if ":" in args.host else args.host
    print("kimisim listening on http://%s:%d" % (host, port), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    while not stop.wait(0.5):
        pass
    with sim.lock:
        sim.stopping = True
        sim.wake_all()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
