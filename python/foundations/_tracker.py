"""The job a process writes to, and the durable, batched, exactly-once channel to the server.

Tracking calls only append to an in-memory buffer. A background thread turns the buffer into
numbered batches; each batch is written to a spool file before it is sent and removed only once
the server acknowledged it. The server applies each (writer, seq) once, so a batch resent after
a timeout or a server restart is stored exactly once. If the process ends while the server is
unreachable, the spool stays on disk and the next process that tracks anything resends it.
"""
import atexit
import json
import math
import os
import shutil
import sys
import threading
import time
import uuid

from . import _bundle, _config
from ._client import APIError, Client, Unreachable, quote

FLUSH_INTERVAL = 0.2
MAX_BATCH_POINTS = 100_000
HEARTBEAT_INTERVAL = 30.0


def _log(level, msg):
    print("Foundations {}: {}".format(level, msg), file=sys.stderr, flush=True)


def warn(msg):
    _log("WARNING", msg)


class Writer:
    """Buffers tracked values of one job and delivers them in order, exactly once."""

    def __init__(self, client, job_id):
        self.client = client
        self.job_id = job_id
        self.id = uuid.uuid4().hex
        self.seq = 0
        self.lock = threading.Lock()
        self.params = {}
        self.metrics = {}
        self.tags = {}
        self.artifacts = []
        self.points = 0
        self.pending = []  # (seq, path, batch) written to the spool, not yet acknowledged
        self.wake = threading.Event()
        self.idle = threading.Condition(self.lock)
        self.closed = False
        self.dir = os.path.join(_config.spool_dir(), self.id)
        os.makedirs(os.path.join(self.dir, "blobs"), exist_ok=True)
        with open(os.path.join(self.dir, "meta.json"), "w") as f:
            json.dump({"job_id": job_id, "pid": os.getpid(), "url": client.base_url}, f)
        self.thread = threading.Thread(target=self._run, name="foundations-writer", daemon=True)
        self.thread.start()

    # --- called by tracking functions (any thread) ---

    def add_metric(self, key, value, step):
        with self.lock:
            m = self.metrics.get(key)
            if m is None:
                m = self.metrics[key] = ([], [], [], [False])
            m[0].append(value)
            m[1].append(-1 if step is None else step)
            m[2].append(time.time())
            if step is not None:
                m[3][0] = True
            self.points += 1
            if self.points >= MAX_BATCH_POINTS:
                self.wake.set()

    def add_param(self, key, value):
        with self.lock:
            self.params[key] = value

    def add_tag(self, key, value):
        with self.lock:
            self.tags[key] = value

    def add_artifact(self, key, path):
        """Copies the file into the spool now, so later changes to it do not matter."""
        digest = _bundle.file_digest(path)
        blob = os.path.join(self.dir, "blobs", digest.split(":", 1)[1])
        if not os.path.exists(blob):
            tmp = blob + ".tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, blob)
        with self.lock:
            self.artifacts.append({"key": key, "filename": os.path.basename(path), "digest": digest,
                                   "size": os.path.getsize(blob)})
            self.wake.set()

    # --- delivery ---

    def _take(self):
        """Moves the buffer into a numbered, spooled batch. Called with the lock held."""
        if not (self.params or self.metrics or self.tags or self.artifacts):
            return None
        self.seq += 1
        batch = {"writer": self.id, "seq": self.seq}
        if self.params:
            batch["params"] = self.params
        if self.tags:
            batch["tags"] = self.tags
        if self.artifacts:
            batch["artifacts"] = self.artifacts
        if self.metrics:
            ms = {}
            for k, (values, steps, times, explicit) in self.metrics.items():
                m = {"values": values, "times": times}
                if explicit[0]:
                    m["steps"] = steps
                ms[k] = m
            batch["metrics"] = ms
        self.params, self.metrics, self.tags, self.artifacts, self.points = {}, {}, {}, [], 0
        return batch

    def _spool(self, batch):
        path = os.path.join(self.dir, "{:012d}.json".format(batch["seq"]))
        data = json.dumps(batch, separators=(",", ":"), allow_nan=False)
        with open(path + ".tmp", "w") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        return path, data.encode()

    def _send(self, path, data, batch):
        for a in batch.get("artifacts", ()):
            self.client.put_blob_file(a["digest"], os.path.join(self.dir, "blobs", a["digest"].split(":", 1)[1]))
        self.client.request("POST", "/api/v1/jobs/{}/track".format(quote(self.job_id)), body=data,
                            headers={"Content-Type": "application/json"})
        os.unlink(path)

    def _run(self):
        backoff = 0.2
        warned = False
        while True:
            self.wake.wait(FLUSH_INTERVAL)
            self.wake.clear()
            with self.lock:
                if not self.pending:
                    batch = self._take()
                    if batch is not None:
                        self.pending.append((batch["seq"],) + self._spool(batch) + (batch,))
                if not self.pending:
                    self.idle.notify_all()
                    if self.closed:
                        return
                    continue
                _, path, data, batch = self.pending[0]
            try:
                self._send(path, data, batch)
            except Unreachable:
                if not warned:
                    warn("cannot reach the Atlas server at {}; keeping tracked values and retrying.".format(self.client.base_url))
                    warned = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except APIError as e:
                if e.status >= 500 or e.status == 429:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                # The server refused the batch (a value it does not accept): drop it, say why.
                warn("the server refused tracked values of job {}: {}".format(self.job_id, e.message))
                try:
                    os.unlink(path)
                except OSError:
                    pass
            if warned:
                _log("INFO", "reconnected to the Atlas server; tracked values delivered.")
                warned = False
            backoff = 0.2
            with self.lock:
                self.pending.pop(0)
                if self.points or self.params or self.tags or self.artifacts or self.closed:
                    self.wake.set()

    def flush(self, timeout=None):
        """Waits until everything tracked so far was acknowledged; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            self.wake.set()
            while self.pending or self.params or self.metrics or self.tags or self.artifacts:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.idle.wait(0.05 if remaining is None else min(remaining, 0.05))
                self.wake.set()
        return True

    def close(self, timeout):
        ok = self.flush(timeout)
        with self.lock:
            self.closed = True
            self.wake.set()
        if ok:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            warn("could not deliver all tracked values of job {} to {}; they are kept in {} and sent by the next "
                 "script that tracks anything.".format(self.job_id, self.client.base_url, self.dir))
        return ok


def resend_orphans(spool=None):
    """Sends batches left in the spool by processes that ended before delivering them."""
    spool = spool or _config.spool_dir()
    try:
        writers = os.listdir(spool)
    except OSError:
        return
    for w in writers:
        d = os.path.join(spool, w)
        try:
            with open(os.path.join(d, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if meta.get("pid") == os.getpid() or _alive(meta.get("pid")):
            continue
        client = Client(meta["url"], _config.token_for(meta["url"]))
        try:
            for name in sorted(n for n in os.listdir(d) if n.endswith(".json") and n != "meta.json"):
                p = os.path.join(d, name)
                with open(p, "rb") as f:
                    data = f.read()
                batch = json.loads(data)
                for a in batch.get("artifacts", ()):
                    client.put_blob_file(a["digest"], os.path.join(d, "blobs", a["digest"].split(":", 1)[1]))
                try:
                    client.request("POST", "/api/v1/jobs/{}/track".format(quote(meta["job_id"])), body=data,
                                   headers={"Content-Type": "application/json"})
                except APIError as e:
                    if e.status >= 500:
                        raise
                os.unlink(p)
            shutil.rmtree(d, ignore_errors=True)
        except (Unreachable, APIError, OSError, ValueError):
            continue
        finally:
            client.close()


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


class Job:
    """The job this process tracks into."""

    def __init__(self, client, job_id, project, execution_mode):
        self.client = client
        self.id = job_id
        self.project = project
        self.execution_mode = execution_mode
        self.writer = Writer(client, job_id)
        self.failed = False
        self.exit_code = None
        self.reason = None
        self.stop = threading.Event()
        if execution_mode:
            threading.Thread(target=self._heartbeat, name="foundations-heartbeat", daemon=True).start()
        threading.Thread(target=resend_orphans, name="foundations-resend", daemon=True).start()

    def _heartbeat(self):
        hb = Client(self.client.base_url, self.client.token, timeout=10)
        while not self.stop.wait(HEARTBEAT_INTERVAL):
            try:
                r = hb.json("POST", "/api/v1/jobs/{}/heartbeat".format(quote(self.id)))
            except (Unreachable, APIError):
                continue
            if r and r.get("stop"):
                warn("job {} was stopped from Atlas; interrupting the script.".format(self.id))
                import _thread
                _thread.interrupt_main()
                return


_lock = threading.RLock()
_job = None
_unavailable = False
_warned_outside = False
_project_override = None
_exit_code = [None]


def flush_timeout():
    try:
        return float(os.environ.get("FOUNDATIONS_FLUSH_TIMEOUT", "30"))
    except ValueError:
        return 30.0


def current(create=True):
    """Returns the job this process tracks into, creating it (execution mode) on first use.

    None means tracking is off: command-line mode, or no server reachable."""
    global _job, _unavailable, _warned_outside
    if _job is not None or _unavailable:
        return _job
    with _lock:
        if _job is not None or _unavailable or not create:
            return _job
        job_id = os.environ.get("FOUNDATIONS_JOB_ID")
        if job_id:
            url, token = _config.local_scheduler_url()
            client = Client(url, token)
            _job = Job(client, job_id, os.environ.get("FOUNDATIONS_PROJECT_NAME", ""), execution_mode=False)
            atexit.register(_at_exit_scheduled)
            return _job
        if _config.command_line_mode():
            if not _warned_outside:
                warn("Script not run with Foundations: FOUNDATIONS_COMMAND_LINE is set, so nothing is tracked.")
                _warned_outside = True
            return None
        url, token = _config.local_scheduler_url()
        client = Client(url, token)
        cwd = os.getcwd()
        project = (_project_override or os.environ.get("FOUNDATIONS_PROJECT_NAME") or os.environ.get("PROJECT_NAME")
                   or _config.project_from_job_config(cwd) or os.path.basename(cwd) or "default")
        spec = {"id": str(uuid.uuid4()), "mode": "execution", "project": project, "user": _user(),
                "command": [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and sys.argv[0] else ["python"]}
        try:
            res = client.json("POST", "/api/v1/jobs", body=spec, timeout=10)
        except (Unreachable, APIError) as e:
            warn("{}. This run is not tracked.".format(e))
            _unavailable = True
            return None
        client.token = res.get("token") or token
        _job = Job(client, res["job"]["id"], project, execution_mode=True)
        _install_exit_hooks()
        _log("INFO", "Tracking this run as job '{}' in project '{}' ({}).".format(_job.id, project, url))
        return _job


def _user():
    for k in ("FOUNDATIONS_USER", "USER", "LOGNAME"):
        if os.environ.get(k):
            return os.environ[k]
    try:
        import getpass
        return getpass.getuser()
    except Exception:
        return "unknown"


def _install_exit_hooks():
    prev_hook = sys.excepthook

    def hook(tp, value, tb):
        if _job is not None:
            _job.failed = True
            _job.exit_code = 130 if issubclass(tp, KeyboardInterrupt) else 1
            _job.reason = "interrupted" if issubclass(tp, KeyboardInterrupt) else " ".join(
                "the script raised {}: {}".format(tp.__name__, value).split())[:500]
        prev_hook(tp, value, tb)

    sys.excepthook = hook
    real_exit = sys.exit

    def exit_(code=None):
        _exit_code[0] = code
        real_exit(code)

    sys.exit = exit_
    atexit.register(_at_exit_execution)


def _at_exit_scheduled():
    job = _job
    if job is not None:
        job.writer.close(flush_timeout())


def _at_exit_execution():
    job = _job
    if job is None:
        return
    job.stop.set()
    code = _exit_code[0]
    if isinstance(code, int) and code != 0 or (code is not None and not isinstance(code, int)):
        job.failed = True
        job.exit_code = code if isinstance(code, int) else 1
    delivered = job.writer.close(flush_timeout())
    archive = None
    try:
        path, digest = _bundle.create(os.getcwd())
        try:
            job.client.put_blob_file(digest, path)
            archive = digest
        finally:
            os.unlink(path)
    except (Unreachable, APIError, OSError) as e:
        warn("could not archive the working directory of job {}: {}".format(job.id, e))
    state = "failed" if job.failed else "completed"
    body = {"state": state, "exit_code": job.exit_code if job.exit_code is not None else 0}
    if job.failed:
        body["reason"] = job.reason or "exited with code {}".format(job.exit_code)
    if archive:
        body["archive_digest"] = archive
    try:
        job.client.json("POST", "/api/v1/jobs/{}/finish".format(quote(job.id)), body=body, timeout=30)
    except (Unreachable, APIError) as e:
        warn("could not record the end of job {}: {}".format(job.id, e))
    return delivered


def is_finite(x):
    return not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))
