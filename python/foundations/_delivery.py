"""The durable, batched, exactly-once channel of tracked values to the server.

Tracking calls only append to an in-memory buffer. A background thread turns the buffer into
numbered batches (at most MAX_BATCH_POINTS points each) and writes each to a spool file; a second
one sends them in order, one at a time, while the next is being encoded, and removes each spool
file only once the server acknowledged it. The server applies each (writer, seq) once, so a batch
resent after a timeout or a server restart is stored exactly once. If the process ends while the
server is unreachable, the spool stays on disk and the next process that tracks anything
resends it (resend_orphans).

Metric points are kept as packed float64 values and int64 nanosecond times (array), and sent so
(hex digits in the JSON: values_f64, steps_i64, times_ns): appending and encoding a point then
cost tens of nanoseconds, where JSON numbers cost several hundred.
"""
import binascii
import itertools
import json
import os
import shutil
import sys
import threading
import time
import uuid
from array import array

from . import _bundle, _config, _output
from ._client import APIError, Client, Unreachable, quote
from ._output import _unlink

FLUSH_INTERVAL = 0.2
MAX_BATCH_POINTS = 100_000
MAX_AHEAD = 2  # batches taken and not yet acknowledged: one being sent, the next being encoded
# Batch k has seq k * SEQ_STRIDE: the server applies a (writer, seq) once and wants seqs to
# grow, so the parts of a refused batch can be numbered in the gap before the next batch.
SEQ_STRIDE = 1 << 32
EXACT = 2 ** 53  # integers up to this size are exact as float64, and go packed
# Whether log_metric may append plain points without the writer's lock (see Writer.fast): each
# append is atomic under the GIL; a free-threaded Python takes the lock on every point.
LOCK_FREE = getattr(sys, "_is_gil_enabled", lambda: True)()


def _log(level, msg):
    _output.say(level, msg)


def warn(msg):
    _log("WARNING", msg)


class Writer:
    """Buffers tracked values of one job and delivers them in order, exactly once."""

    def __init__(self, client, job_id, spool=None):
        self.client = client
        self.job_id = job_id
        self.id = uuid.uuid4().hex
        self.seq = 0
        self.lock = threading.Lock()
        self.params = {}
        # Every metric's points in logging order, until taken into a batch: key -> (values
        # array('d'), times array('q') in unix ns). The times array is the order of the points.
        # A plain point (a number float64 holds exactly, with the next step) has its value in
        # the values array, in the same order. Any other point has time -1 there, and its time,
        # step and value in the key's side columns, in the same order.
        self.series = {}
        self.times = []  # the series' times arrays, to see quickly whether any point is waiting
        # key -> [times array('q'), steps array('q') (-1: the next), values array('d') or list].
        self.side = {}
        # key -> (values.append, times.append, add_at) of its series: log_metric adds a plain
        # point of a checked key by appending its value, then its time, without the lock. Each
        # append is atomic under the GIL, so the lock is needed only where two appends must not
        # be separated: anything else adds all its times to the series in one extend, with the
        # lock held. Two threads logging one key at the same moment keep their values in the
        # order they were appended; their times may be exchanged among them (each a time when
        # one of those calls ran). Filled by allow_fast; empty where LOCK_FREE is False.
        self.fast = {}
        self.first_key = 0  # where the next batch starts in series, so that no key waits for ever
        self.buffers = []  # bytearrays of acknowledged batches' bodies, to write the next ones in (encode_batch)
        self.tags = {}
        self.artifacts = []
        # Batches taken from the buffer and not yet acknowledged, in seq order: [spool path or
        # None, body, batch, encoded?, seq of the next batch]. MAX_AHEAD of them at most (more
        # only while the parts of a refused batch are sent).
        self.pending = []
        self.wake = threading.Event()  # wakes the encoder
        self.idle = threading.Condition(self.lock)  # notified when everything was acknowledged
        self.ready = threading.Condition(self.lock)  # notified when a batch is encoded, or at close
        self.closed = False
        self.split_warned = False
        self.spool_warned = False
        self.blob_paths = {}  # digest -> file, for artifacts when there is no spool
        self.dir = os.path.join(spool or _config.spool_dir(), self.id)
        try:
            os.makedirs(os.path.join(self.dir, "blobs"), exist_ok=True)
            _write_json(os.path.join(self.dir, "meta.json"),
                        {"job_id": job_id, "pid": os.getpid(), "url": client.base_url, "token": client.token})
        except OSError as e:
            warn("cannot use the spool {} ({}); tracked values are kept in memory only until the server has "
                 "them.".format(self.dir, e))
            self.dir = None
        self.thread = threading.Thread(target=self._encode_loop, name="foundations-writer", daemon=True)
        self.thread.start()
        self.sender = threading.Thread(target=self._send_loop, name="foundations-sender", daemon=True)
        self.sender.start()

    # --- called by tracking functions (any thread) ---

    def add_metric(self, key, value, step):
        """One metric point: a number or a string, with the step given or the next one (None)."""
        self.add_values(key, [value], step)

    def add_values(self, key, values, step=None):
        """The points of one key from one call, all with the time of the call. values: a list
        of numbers and strings, or an array('d') of numbers; their steps are step, step + 1...
        or the next ones (step None)."""
        n = len(values)
        if not n:
            return
        now = time.time_ns()
        packed = values if isinstance(values, array) else exact_floats(values)
        with self.lock:
            vals, times = self._series(key)
            if step is None and packed is not None:  # plain points, as log_metric's fast path adds them
                vals.extend(packed)
                times.extend(array("q", (now,)) * n)
            else:
                side = self._side(key, packed is None)
                side[0].extend(array("q", (now,)) * n)
                side[1].extend(array("q", (-1,)) * n if step is None else array("q", range(step, step + n)))
                side[2].extend(packed if packed is not None else values)
                times.extend(array("q", (-1,)) * n)
            if len(times) >= MAX_BATCH_POINTS:  # a full batch is waiting
                self.wake.set()

    def add_at(self, key, value, step):
        """A plain number with a step, of a checked key (log_metric's path for it)."""
        now = time.time_ns()
        with self.lock:
            side = self._side(key, False)
            side[0].append(now)
            side[1].append(step)
            side[2].append(value)
            self.series[key][1].append(-1)

    def _side(self, key, json_values):
        """The side columns of key; their values a list if json_values. Called with the lock held."""
        side = self.side.get(key)
        if side is None:
            side = self.side[key] = [array("q"), array("q"), array("d")]
        if json_values and isinstance(side[2], array):
            side[2] = side[2].tolist()
        return side

    def allow_fast(self, key):
        """Lets log_metric add points of key (a checked key) itself: see fast."""
        if not LOCK_FREE or key in self.fast:
            return
        with self.lock:
            vals, times = self._series(key)
            self.fast[key] = (vals.append, times.append, self.add_at)

    def _series(self, key):
        """The series of key, new if need be. Called with the lock held."""
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = (array("d"), array("q"))
            self.times.append(s[1])
            # A new key's first point starts delivery now rather than at the encoder's next
            # round: from then on each acknowledgement takes the next batch, so a fast loop's
            # points reach the server while it runs instead of after it.
            self.wake.set()
        return s

    def add_param(self, key, value):
        with self.lock:
            self.params[key] = value

    def add_tag(self, key, value):
        with self.lock:
            self.tags[key] = value

    def add_artifact(self, key, path):
        """Copies the file into the spool now, so later changes to it do not matter."""
        digest = _bundle.file_digest(path)
        if self.dir is None:
            blob = self.blob_paths[digest] = os.path.abspath(path)
        else:
            blob = self._blob(digest)
            if not os.path.exists(blob):
                tmp = blob + ".tmp"
                shutil.copyfile(path, tmp)
                os.replace(tmp, blob)
        with self.lock:
            self.artifacts.append({"key": key, "filename": os.path.basename(path), "digest": digest,
                                   "size": os.path.getsize(blob)})
            self.wake.set()

    def _buffered(self):
        return bool(self.params or self.tags or self.artifacts) or any(map(len, self.times))

    def used(self):
        """Whether anything was ever tracked through this writer."""
        with self.lock:
            return self.seq > 0 or self._buffered()

    # --- delivery (the encoder and sender threads) ---

    def _take(self):
        """Moves the buffer into a numbered batch. Called with the lock held."""
        if not self._buffered():
            return None
        self.seq += SEQ_STRIDE
        batch = {"writer": self.id, "seq": self.seq}
        if self.params:
            batch["params"] = self.params
        if self.tags:
            batch["tags"] = self.tags
        if self.artifacts:
            batch["artifacts"] = self.artifacts
        # At most MAX_BATCH_POINTS points a batch (a long series is cut; the rest goes next),
        # starting where the last full batch stopped.
        ms, budget = {}, MAX_BATCH_POINTS
        keys = list(self.series)
        first = self.first_key % max(1, len(keys))
        for i in itertools.chain(range(first, len(keys)), range(first)):
            key = keys[i]
            n = min(len(self.series[key][1]), budget)
            if not n:
                continue
            ms[key] = self._take_points(key, n)
            budget -= n
            if budget <= 0:
                self.first_key = i
                break
        if ms:
            batch["metrics"] = ms
        self.params, self.tags, self.artifacts = {}, {}, []
        return batch

    def _take_points(self, key, n):
        """Takes the first n points of key's series (their n times are there, so their values
        are too) as the columns of a batch: values_f64 (or values, JSON, when some are not
        exact float64s), steps_i64 (when some have a step) and times_ns."""
        vals, times = self.series[key]
        t = times[:n]
        side = self.side.get(key)
        sides = t.count(-1) if side is not None and len(side[0]) else 0
        if sides == 0:  # plain points only
            m = {"values_f64": vals[:n], "times_ns": t}
            del vals[:n], times[:n]
            return m
        st, ss, sv = side
        if sides == n:  # side points only
            t, steps, out = st[:n], ss[:n], sv[:n]
        else:  # both, in the order of t
            plain = iter(vals[:n - sides])
            steps, out, k = array("q", (-1,)) * n, [] if isinstance(sv, list) else array("d"), 0
            for i, x in enumerate(t):
                if x == -1:
                    t[i], steps[i] = st[k], ss[k]
                    out.append(sv[k])
                    k += 1
                else:
                    out.append(next(plain))
            del vals[:n - sides]
        del st[:sides], ss[:sides], sv[:sides], times[:n]
        if not len(st):
            del self.side[key]
        m = {"values_f64" if isinstance(out, array) else "values": out}
        if max(steps) >= 0:
            m["steps_i64"] = steps
        m["times_ns"] = t
        return m

    def _blob(self, digest):
        if self.dir is None:
            return self.blob_paths[digest]
        return os.path.join(self.dir, "blobs", digest.split(":", 1)[1])

    def _spool(self, batch):
        """Encodes a batch and writes it to the spool; returns (path or None, body)."""
        try:
            buf = self.buffers.pop()
        except IndexError:
            buf = None
        data = encode_batch(batch, buf)
        if self.dir is None:
            return None, data
        path = os.path.join(self.dir, "{:020d}.json".format(batch["seq"]))
        try:
            with open(path + ".tmp", "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # kept through a crash of the machine, not only of the process
            os.replace(path + ".tmp", path)
        except OSError as e:
            if not self.spool_warned:
                self.spool_warned = True
                warn("cannot write tracked values to the spool {} ({}); they are kept in memory only until the "
                     "server has them.".format(self.dir, e))
            _unlink(path + ".tmp")
            path = None
        return path, data

    def _send(self, path, data, batch):
        for a in batch.get("artifacts", ()):
            self.client.put_blob_file(a["digest"], self._blob(a["digest"]))
        self.client.request("POST", "/api/v1/jobs/{}/track".format(quote(self.job_id)), body=data,
                            headers={"Content-Type": "application/json"})
        _unlink(path)

    def _refused(self, path, batch, end, err):
        """The server refused a batch (400, 413). Sends its parts one key at a time (a long
        series in halves), so that only the values the server does not accept are lost. The
        parts are numbered between the batch's seq and end, the seq of the batch after it."""
        parts = _split(batch)
        width = (end - batch["seq"] - 1) // max(1, len(parts))
        if not parts or width < 1:
            warn("the server refused {} of job {}: {}".format(_describe(batch), self.job_id, err.message))
            _unlink(path)
            return []
        if not self.split_warned:
            self.split_warned = True
            warn("the server refused tracked values of job {} ({}); sending them one key at a time to keep the "
                 "others.".format(self.job_id, err.message))
        spooled = []
        for i, part in enumerate(parts):
            part["writer"], part["seq"] = self.id, batch["seq"] + 1 + i * width
            spooled.append(list(self._spool(part)) + [part, True, part["seq"] + width])
        _unlink(path)
        return spooled

    def _encode_loop(self):
        """Takes batches from the buffer, encodes and spools them, while the previous one is sent."""
        while True:
            self.wake.wait(FLUSH_INTERVAL)
            self.wake.clear()
            with self.lock:
                batch = self._take() if len(self.pending) < MAX_AHEAD else None
                if batch is not None:
                    # In pending from now on, so that flush() waits for it while it is encoded.
                    entry = [None, None, batch, False, batch["seq"] + SEQ_STRIDE]
                    self.pending.append(entry)
                elif not self.pending and not self._buffered():
                    self.idle.notify_all()
                    if self.closed:
                        self.ready.notify_all()
                        return
            if batch is None:
                continue
            try:
                entry[:2] = self._spool(batch)
            except (TypeError, ValueError) as e:  # not JSON: the SDK's checks were bypassed
                warn("dropped tracked values of job {} that cannot be sent: {}".format(self.job_id, e))
                with self.lock:
                    self.pending.remove(entry)
                    self.wake.set()
                continue
            with self.lock:
                entry[3] = True
                self.ready.notify_all()
                if len(self.pending) < MAX_AHEAD and self._buffered():
                    self.wake.set()

    def _send_loop(self):
        """Sends encoded batches in order, one at a time, until each is acknowledged."""
        backoff = 0.2
        warned = False
        while True:
            with self.lock:
                while not (self.pending and self.pending[0][3]):
                    if self.closed and not self.pending and not self._buffered():
                        return
                    self.ready.wait(1.0)
                path, data, batch, _, end = self.pending[0]
            retry = False
            done = []
            try:
                self._send(path, data, batch)
            except Unreachable:
                retry = True
            except APIError as e:
                if e.status >= 500 or e.status in (408, 429):
                    retry = True
                elif e.status in (400, 413):
                    done = self._refused(path, batch, end, e)
                else:  # 404 (job deleted), 409...: nothing can store it
                    warn("the server refused tracked values of job {}: {}".format(self.job_id, e.message))
                    _unlink(path)
            except Exception as e:  # a connection cut mid-answer, a spool file removed...: retry
                if not warned:
                    warn("sending tracked values failed ({}: {}); retrying.".format(type(e).__name__, e))
                    warned = True
                retry = True
            if retry:
                if not warned:
                    warn("cannot reach the Atlas server at {}; keeping tracked values and retrying.".format(
                        self.client.base_url))
                    warned = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if warned:
                _log("INFO", "reconnected to the Atlas server; tracked values delivered.")
                warned = False
            backoff = 0.2
            with self.lock:
                self.pending[:1] = done
                if not self.pending and not self._buffered():
                    self.idle.notify_all()
                    self.buffers.clear()  # idle: the memory goes back
                elif isinstance(data, memoryview) and len(self.buffers) < MAX_AHEAD:
                    self.buffers.append(data.obj)
                self.wake.set()

    def flush(self, timeout=None):
        """Waits until everything tracked so far was acknowledged; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            self.wake.set()
            while self.pending or self._buffered():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.idle.wait(0.05 if remaining is None else min(remaining, 0.05))
                self.wake.set()
        return True

    def close(self, timeout, keep_spool=False):
        """Flushes (up to timeout) and stops the writer. The spool is removed once everything
        was delivered (unless keep_spool); otherwise everything not acknowledged is in it, on
        disk, for the server or the next process to store."""
        ok = self.flush(timeout)
        with self.lock:
            self.closed = True
            rest = []
            if not ok and self.dir is not None:
                # The process ends: what is still in memory goes to the spool now, however many
                # batches are waiting for the server.
                while self._buffered():
                    rest.append(self._take())
            self.wake.set()
            self.ready.notify_all()
        for batch in rest:
            self._spool(batch)
        if rest or not ok:
            with self.lock:  # a batch the encoder took is spooled before the process goes
                deadline = time.monotonic() + 5
                while any(not e[3] for e in self.pending) and time.monotonic() < deadline:
                    self.ready.wait(0.05)
        if ok and not keep_spool and self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif not ok and self.dir:
            warn("could not deliver all tracked values of job {} to {}; they are kept in {} and sent by the next "
                 "script that tracks anything.".format(self.job_id, self.client.base_url, self.dir))
        elif not ok:
            warn("could not deliver all tracked values of job {} to {}; without a spool they are lost.".format(
                self.job_id, self.client.base_url))
        return ok


HEX_PIECE = 1 << 15  # bytes of a column written as hex at a time: small pieces of memory, reused


def encode_batch(batch, buf=None):
    """The JSON body of a batch, as a memoryview of buf (a bytearray, replaced by a larger one if
    need be): on some machines fresh memory for each large body (a page fault every 4 KiB) costs
    many times the encoding itself. Metric columns held as arrays (values, steps, times in ns) go
    packed: the hex digits of their little-endian 8-byte numbers (several times cheaper for
    CPython to write than base64)."""
    out = _Out(buf)
    metrics = batch.get("metrics")
    rest = {k: v for k, v in batch.items() if k != "metrics"}
    head = json.dumps(rest, separators=(",", ":"), allow_nan=False).encode()
    if not metrics:
        out.write(head)
        return out.body()
    out.write(head[:-1])
    out.write(b',"metrics":{' if len(head) > 2 else b'"metrics":{')
    for i, (key, m) in enumerate(metrics.items()):
        out.write(b"," if i else b"")
        out.write(json.dumps(key).encode() + b":{")
        for j, (name, col) in enumerate(m.items()):
            out.write(b'%s"%s":' % (b"," if j else b"", name.encode()))
            if isinstance(col, array):
                if sys.byteorder == "big":
                    col = array(col.typecode, col)
                    col.byteswap()
                raw = memoryview(col).cast("B")
                out.write(b'"')
                for k in range(0, len(raw), HEX_PIECE):
                    out.write(binascii.hexlify(raw[k:k + HEX_PIECE]))
                out.write(b'"')
            else:
                out.write(json.dumps(col, separators=(",", ":"), allow_nan=False).encode())
        out.write(b"}")
    out.write(b"}}")
    return out.body()


class _Out:
    """A body written into a bytearray: replaced by one twice as large when full (never resized,
    since views of it may still be held)."""

    def __init__(self, buf):
        self.buf = buf if buf is not None else bytearray(1 << 16)
        self.pos = 0

    def write(self, data):
        end = self.pos + len(data)
        if end > len(self.buf):
            bigger = bytearray(max(end, 2 * len(self.buf)))
            bigger[:self.pos] = memoryview(self.buf)[:self.pos]
            self.buf = bigger
        self.buf[self.pos:end] = data
        self.pos = end

    def body(self):
        return memoryview(self.buf)[:self.pos]


def exact_floats(values):
    """values (checked numbers and strings) as an array('d'), if each is a number float64 holds
    exactly; else None."""
    if len(values) == 1:
        v = values[0]
        if type(v) is float or type(v) in (int, bool) and -EXACT <= v <= EXACT:
            return array("d", values)
        return None
    types = set(map(type, values))
    if not types <= {float, int, bool}:
        return None
    try:
        packed = array("d", values)
    except OverflowError:
        return None
    if types != {float} and (max(packed) > EXACT or min(packed) < -EXACT):
        return None  # integers beyond 2**53 go as JSON, digit for digit
    return packed


def _write_json(path, value):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def _split(batch):
    """The parts of a refused batch: one per param, tag, artifact and metric key, and a
    metric's points in halves. Empty when the batch is a single value: nothing to split."""
    parts = [{"params": {k: v}} for k, v in (batch.get("params") or {}).items()]
    parts += [{"tags": {k: v}} for k, v in (batch.get("tags") or {}).items()]
    parts += [{"artifacts": [a]} for a in batch.get("artifacts") or ()]
    metrics = batch.get("metrics") or {}
    for k, m in metrics.items():
        parts.append({"metrics": {k: m}})
    if len(parts) == 1 and len(metrics) == 1:
        (k, m), = metrics.items()
        n = len(m["values"] if "values" in m else m["values_f64"])
        if n < 2:
            return []
        half = n // 2
        return [{"metrics": {k: {f: v[:half] for f, v in m.items()}}},
                {"metrics": {k: {f: v[half:] for f, v in m.items()}}}]
    return parts if len(parts) > 1 else []


def _describe(batch):
    for kind, name in (("params", "parameter"), ("tags", "tag"), ("metrics", "metric")):
        for k in batch.get(kind) or ():
            return "{} {!r}".format(name, k)
    for a in batch.get("artifacts") or ():
        return "artifact {!r}".format(a.get("key"))
    return "tracked values"


def resend_orphans(spool=None, deadline=None):
    """Sends what processes that ended before delivering it left in the spool: their batches in
    order, then (scripts run by hand) their output, the archive of their folder and how they
    ended."""
    spool = spool or _config.spool_dir()
    try:
        writers = sorted(os.listdir(spool))
    except OSError:
        return
    for w in writers:
        if deadline is not None and time.monotonic() > deadline:
            return
        d = os.path.join(spool, w)
        try:
            with open(os.path.join(d, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if meta.get("pid") == os.getpid() or _alive(meta.get("pid")):
            continue
        url = meta.get("url")
        if not url:
            continue
        client = Client(url, meta.get("token") or _config.token_for(url), timeout=30)
        job = quote(meta["job_id"])
        try:
            for name in sorted(n for n in os.listdir(d) if n.endswith(".json") and n[0].isdigit()):
                p = os.path.join(d, name)
                with open(p, "rb") as f:
                    data = f.read()
                batch = json.loads(data)
                try:
                    for a in batch.get("artifacts", ()):
                        client.put_blob_file(a["digest"], os.path.join(d, "blobs", a["digest"].split(":", 1)[1]))
                    client.request("POST", "/api/v1/jobs/{}/track".format(job), body=data,
                                   headers={"Content-Type": "application/json"})
                except APIError as e:
                    if e.status >= 500 or e.status in (408, 429):
                        raise
                    warn("the server refused tracked values of job {} left in {}: {}".format(meta["job_id"], d, e.message))
                os.unlink(p)
            _output.resend_chunks(client, meta["job_id"], d)
            _send_finish(client, job, d)
            shutil.rmtree(d, ignore_errors=True)
            _log("INFO", "sent the tracked values job {} left in the spool.".format(meta["job_id"]))
        except (Unreachable, APIError, OSError, ValueError, KeyError):
            continue
        finally:
            client.close()


def _send_finish(client, job, d):
    """Sends the end of a script run by hand that the spool kept (finish.json), if any."""
    path = os.path.join(d, "finish.json")
    try:
        with open(path) as f:
            body = json.load(f)
    except FileNotFoundError:
        return
    archive = body.get("archive_digest")
    if archive:
        blob = os.path.join(d, "blobs", archive.split(":", 1)[1])
        try:
            client.put_blob_file(archive, blob)
        except FileNotFoundError:
            del body["archive_digest"]
    try:
        client.json("POST", "/api/v1/jobs/{}/finish".format(job), body=body)
    except APIError as e:
        if e.status >= 500 or e.status in (408, 429):
            raise
    os.unlink(path)


def _alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
