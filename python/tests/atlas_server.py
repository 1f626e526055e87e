"""Test helpers: a real atlas-server on a free port, its HTTP API, and scripts run against it.

The server binary comes from $ATLAS_SERVER_BIN (`make test-python` sets it). Without it the
tests skip with a reason, or fail when CI=true. Each server gets its own FOUNDATIONS_HOME in a
temporary directory; it is started with `--port 0` and is ready once it prints its
"listening on" line, which is read from its stdout (no sleeping).
"""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds the foundations package
CI = os.environ.get("CI", "").strip().lower() == "true"
START_TIMEOUT = 30.0
FINISHED = ("completed", "failed", "stopped")
ACTIVE = ("queued", "starting", "running")

_LISTENING = re.compile(r"listening on (http://\S+)")


def unavailable(reason):
    """Skips the current test (or class) with reason; with CI=true a missing dependency is an error."""
    if CI:
        raise AssertionError("CI=true: " + reason)
    raise unittest.SkipTest(reason)


def server_bin():
    path = os.environ.get("ATLAS_SERVER_BIN")
    if not path:
        unavailable("ATLAS_SERVER_BIN is not set (run `make test-python`)")
    if not os.access(path, os.X_OK):
        unavailable("ATLAS_SERVER_BIN={} is not an executable file (run `make build`)".format(path))
    return path


def numpy_python():
    """A Python interpreter that can import numpy: this one, else Debian's /usr/bin/python3 (where
    the python3-numpy package installs it). Skips (fails when CI=true) if there is none."""
    candidates = [sys.executable] + [p for p in ("/usr/bin/python3",) if os.path.realpath(p) != os.path.realpath(sys.executable)]
    for python in candidates:
        if os.access(python, os.X_OK) and subprocess.run([python, "-c", "import numpy"], stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL).returncode == 0:
            return python
    unavailable("numpy is not importable by {} (apt-get install python3-numpy)".format(" or ".join(candidates)))


def wait_for(condition, timeout=30.0, what="the condition", interval=0.02):
    """Returns condition()'s first truthy value, checking it in a bounded loop; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after {:.0f}s waiting for {}".format(timeout, what))
        time.sleep(interval)


def unique(prefix):
    return "{}-{}".format(prefix, uuid.uuid4().hex[:8])


class APIError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP {}: {}".format(status, body[:500]))
        self.status = status
        self.body = body


class AtlasServer:
    """One atlas-server process with its own FOUNDATIONS_HOME."""

    def __init__(self, workers=2, home=None, args=(), env=None):
        self.binary = server_bin()
        self.args = list(args)  # more arguments of `atlas-server start`
        self.extra_env = dict(env or {})  # more environment of the server (and of its jobs)
        self.owns_home = home is None
        self.home = home or tempfile.mkdtemp(prefix="atlas-test-home-")
        self.workers = workers
        self.proc = None
        self.url = None
        self.port = 0
        self.output = []  # stdout lines, for failure messages
        self._lines = None

    # --- process ---

    def start(self, port=None):
        """Starts the server (on port, or the one it had, or a free one) and waits until it serves."""
        if self.proc is not None:
            raise RuntimeError("server already running")
        port = self.port if port is None else port
        # Jobs sample no system metrics unless a test asks: tests count the series jobs have.
        env = dict(os.environ, FOUNDATIONS_HOME=self.home, FOUNDATIONS_SYSTEM_METRICS_INTERVAL="0")
        env.update(self.extra_env)
        for k in ("FOUNDATIONS_COMMAND_LINE", "FOUNDATIONS_JOB_ID", "FOUNDATIONS_SCHEDULER_URL", "FOUNDATIONS_TOKEN"):
            env.pop(k, None)
        self._stderr = open(os.path.join(self.home, "server-stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "start", "--port", str(port), "--workers", str(self.workers), "--executor", "process"] + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd=self.home)
        lines = self._lines = queue.Queue()

        def read(stream):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                self.stop()
                raise AssertionError("atlas-server did not say it was listening within {:.0f}s:\n{}".format(
                    START_TIMEOUT, self.describe()))
            if line is None:
                code = self.proc.wait()
                self.proc = None
                raise AssertionError("atlas-server exited with code {} before listening:\n{}".format(code, self.describe()))
            m = _LISTENING.search(line)
            if m:
                self.url = m.group(1).rstrip("/")
                self.port = urllib.parse.urlsplit(self.url).port
                return self

    def stop(self, timeout=30.0, sig=signal.SIGTERM):
        """SIGTERM (or sig), then waits for the process to end (SIGKILL only if it does not)."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        self._stderr.close()

    def restart(self):
        """Stops the server and starts it again on the same port with the same FOUNDATIONS_HOME."""
        self.stop()
        return self.start(self.port)

    def close(self):
        self.stop()
        if self.owns_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def describe(self):
        try:
            with open(os.path.join(self.home, "server-stderr.log"), encoding="utf-8", errors="replace") as f:
                err = f.read()[-4000:]
        except OSError:
            err = ""
        return "stdout:\n{}\nstderr (end):\n{}".format("".join(self.output)[-2000:], err)

    @property
    def spool(self):
        return os.path.join(self.home, "spool")

    # --- API ---

    def request(self, method, path, body=None, timeout=90, data=None):
        headers = {}
        if data is not None:
            headers["Content-Type"] = "application/octet-stream"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            raise APIError(e.code, e.read().decode("utf-8", "replace")) from None

    def get(self, path, **query):
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        _, data = self.request("GET", path)
        return json.loads(data)

    def jobs(self, project):
        """Every job of the project, oldest first."""
        return self.get("/api/v1/jobs", project=project, limit=0, sort="created_at", desc="false")["jobs"]

    def job(self, job_id):
        return self.get("/api/v1/jobs/" + urllib.parse.quote(job_id, safe=""))

    def wait_job(self, job_id, timeout=60.0, states=ACTIVE):
        """Long-polls until the job is in none of states; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            j = self.get("/api/v1/jobs/" + urllib.parse.quote(job_id, safe=""), wait_while=",".join(states),
                         timeout="{}s".format(max(1, min(30, int(remaining)))))
            if j["state"] not in states:
                return j
            if remaining <= 0:
                raise AssertionError("job {} still {} after {:.0f}s".format(job_id, j["state"], timeout))

    def metric(self, job_id, key):
        """All points of a metric (up to 100,000)."""
        return self.get("/api/v1/jobs/{}/metrics/{}".format(urllib.parse.quote(job_id, safe=""),
                                                            urllib.parse.quote(key, safe="")), max_points=100000)

    def artifact(self, job_id, key):
        _, data = self.request("GET", "/api/v1/jobs/{}/artifacts/{}".format(
            urllib.parse.quote(job_id, safe=""), urllib.parse.quote(key, safe="")))
        return data

    def archive(self, job_id):
        _, data = self.request("GET", "/api/v1/jobs/{}/archive".format(urllib.parse.quote(job_id, safe="")))
        return data

    def logs(self, job_id):
        _, data = self.request("GET", "/api/v1/jobs/{}/logs".format(urllib.parse.quote(job_id, safe="")))
        return data.decode("utf-8", "replace")

    # --- scripts ---

    def env(self, **extra):
        """The environment of a script run by hand against this server: the SDK from this repo on
        PYTHONPATH, this server's FOUNDATIONS_HOME, and no inherited FOUNDATIONS_* settings."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FOUNDATIONS_") and k not in ("PROJECT_NAME", "PYTHONPATH", "ATLAS_SERVER_BIN")}
        env.update(PYTHONPATH=PYTHON_DIR, FOUNDATIONS_HOME=self.home, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def run(self, script, cwd, args=(), env=None, timeout=120, stdin=None, python=None):
        """Runs `python3 script args...` in cwd to its end; returns the CompletedProcess (text)."""
        return subprocess.run([python or sys.executable, script] + list(args), cwd=cwd, env=env or self.env(),
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)

    def popen(self, script, cwd, args=(), env=None):
        """Starts `python3 script` with pipes for stdin and stdout (line by line) and stderr."""
        return Script(subprocess.Popen([sys.executable, "-u", script] + list(args), cwd=cwd, env=env or self.env(),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, bufsize=1))


class Script:
    """A running script the test talks to: it prints lines, the test answers on its stdin."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = queue.Queue()
        self.stderr = []
        self.readers = [threading.Thread(target=self._read, args=(proc.stdout, self.lines.put), daemon=True),
                        threading.Thread(target=self._read, args=(proc.stderr, self.stderr.append), daemon=True)]
        for t in self.readers:
            t.start()

    @staticmethod
    def _read(stream, put):
        for line in iter(stream.readline, ""):
            put(line)
        put(None)

    def expect(self, text, timeout=60.0):
        """Waits for a stdout line containing text; returns it."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.001, deadline - time.monotonic()))
            except queue.Empty:
                line = False
            if line is None or line is False:
                self.kill()
                raise AssertionError("script {} before printing {!r}; stdout: {!r}; stderr: {}".format(
                    "ended" if line is None else "timed out", text, seen, "".join(l for l in self.stderr if l)))
            seen.append(line)
            if text in line:
                return line

    def send(self, line="go"):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout=60.0):
        """Closes stdin and waits for the script to end; returns (exit code, stderr text)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        code = self.proc.wait(timeout)
        self._close()
        return code, self.stderr_text()

    def _close(self):
        for t in self.readers:
            t.join(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def stderr_text(self):
        return "".join(l for l in list(self.stderr) if l)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()


class ServerTestCase(unittest.TestCase):
    """A test class sharing one server; each test gets a fresh project directory."""

    workers = 2
    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = AtlasServer(workers=cls.workers).start()
        cls.tmp = tempfile.mkdtemp(prefix="atlas-test-work-")

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def project_dir(self, prefix="p", files=None):
        """A new folder whose name is a new project name; files: {relative path: text}."""
        name = unique(prefix)
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        for rel, text in (files or {}).items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        return name, d

    def run_script(self, text, cwd, name="main.py", args=(), env=None, expect_code=0, timeout=120, python=None):
        """Writes text to cwd/name and runs it; checks its exit code; returns the CompletedProcess."""
        with open(os.path.join(cwd, name), "w", encoding="utf-8") as f:
            f.write(text)
        r = self.server.run(name, cwd, args=args, env=env, timeout=timeout, python=python)
        if expect_code is not None:
            self.assertEqual(r.returncode, expect_code, "exit code of {}\nstdout:\n{}\nstderr:\n{}".format(
                name, r.stdout, r.stderr))
        return r

    def only_job(self, project):
        jobs = self.server.jobs(project)
        self.assertEqual(len(jobs), 1, "want exactly one job in project {}, got {}".format(project, jobs))
        return self.server.job(jobs[0]["id"])
