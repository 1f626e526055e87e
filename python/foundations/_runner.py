"""The in-job side of a job that runs where the server's files are not (a Kubernetes pod, a
Slurm node): it needs nothing but HTTP to the server and the job's token.

    python3 <sdk>/foundations/_runner.py

The environment names the job: FOUNDATIONS_SCHEDULER_URL (http:// or https://),
FOUNDATIONS_JOB_ID and FOUNDATIONS_TOKEN; optionally ATLAS_WORK_DIR (the folder to run in;
default a new temporary one), ATLAS_ENV_DIR (a cache of environments for requirements.txt,
kept across jobs, e.g. a volume; ATLAS_IMAGE, the image, is part of their key) and ATLAS_SPOOL_DIR (where undelivered output and values wait;
default beside the working directory). It

1. fetches the job and its bundle (by digest, checked), unpacks the bundle with the same checks
   as the server, and writes foundations_job_parameters.json;
2. installs requirements.txt into an environment cached by its content when ATLAS_ENV_DIR is
   given, else into a fresh one, and says which;
3. runs the command, sampling its system metrics (_system.py); its output goes to this
   process's own output (the engine's log) and to the job's log on the server, in order and
   exactly once by byte offset, kept on disk while the server cannot be reached; SIGTERM and
   SIGINT are passed on to the command;
4. at the end, sends what is left (output, and values the SDK could not deliver), archives the
   working directory, uploads it, reports the exit code with the archive, and exits with the
   command's exit code.

Standard library only: it must work in any image with Python 3.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):  # run as a script: the SDK is the folder above this file
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "foundations"

from foundations import _bundle, _output, _system, _tracker  # noqa: E402
from foundations._client import APIError, Client, Unreachable, quote  # noqa: E402

BANNER = "=" * 120
PARAMS_FILE = "foundations_job_parameters.json"
SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Runner:
    def __init__(self, env):
        self.job_id = env["FOUNDATIONS_JOB_ID"]
        self.client = Client(env["FOUNDATIONS_SCHEDULER_URL"], env.get("FOUNDATIONS_TOKEN"))
        self.patience = float(env.get("FOUNDATIONS_FLUSH_TIMEOUT") or 600)
        self.work = env.get("ATLAS_WORK_DIR") or tempfile.mkdtemp(prefix="atlas-job-")
        os.makedirs(self.work, exist_ok=True)
        self.spool = env.get("ATLAS_SPOOL_DIR") or tempfile.mkdtemp(prefix="atlas-spool-")
        self.env_dir = env.get("ATLAS_ENV_DIR")
        os.makedirs(os.path.join(self.spool, "output"), exist_ok=True)
        os.makedirs(os.path.join(self.spool, "values"), exist_ok=True)
        self.shipper = None
        self.base = None  # (digest, index) of the job's bundle: the archive holds what changed

    # --- talking to the server, through outages ---

    def call(self, what, fn):
        """Runs fn until the server answers (APIErrors other than 5xx are final), for up to
        the patience the job was given."""
        deadline = time.monotonic() + self.patience
        delay, warned = 0.5, False
        while True:
            try:
                return fn()
            except (Unreachable, OSError) as e:
                err = e
            except APIError as e:
                if e.status < 500 and e.status not in (408, 429):
                    raise
                err = e
            if time.monotonic() > deadline:
                raise err
            if not warned:
                self.say("WARNING", "cannot {} ({}); retrying while the server is away.".format(what, err))
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def say(self, level, msg):
        line = "Foundations {}: {}\n".format(level, msg)
        self.emit(line.encode())

    def emit(self, data):
        """Output of the job: to this process's own output and to the job's log."""
        try:
            _output._write_all(1, data)
        except OSError:
            pass
        if self.shipper is not None:
            self.shipper.write(data)

    # --- the job ---

    def start_shipping(self):
        """Ships output from where the job's log ends now (the server may have written to it)."""
        length = self.call("reach the Atlas server", lambda: _output.send_chunk(self.client, self.job_id, 0, b""))
        self.shipper = _output.Shipper(self.client, self.job_id, os.path.join(self.spool, "output"))
        self.shipper.offset = length

    def fetch(self):
        job = self.call("read the job", lambda: self.client.json("GET", "/api/v1/jobs/" + quote(self.job_id)))
        digest = job.get("bundle_digest")
        if digest:
            path = os.path.join(self.spool, "bundle.tar.gz")
            self.call("download the job's bundle", lambda: self.download(digest, path))
            try:
                _bundle.extract(path, self.work)
                self.base = (digest, _bundle.index(path))
            finally:
                os.unlink(path)
        params = job.get("submitted_params")
        if params is not None:
            with open(os.path.join(self.work, PARAMS_FILE), "w", encoding="utf-8") as f:
                json.dump(params, f, indent=4)
        return job

    def download(self, digest, path):
        resp = self.client.request("GET", "/api/v1/jobs/{}/bundle".format(quote(self.job_id)), stream=True)
        h = hashlib.sha256()
        try:
            with open(path, "wb") as f:
                while True:
                    block = resp.read(1 << 20)
                    if not block:
                        break
                    h.update(block)
                    f.write(block)
        finally:
            resp.close()
        if "sha256:" + h.hexdigest() != digest:
            raise OSError("the bundle downloaded is not {} (a transfer cut short?)".format(digest))

    def environment(self):
        """The command's environment, and the interpreter to run it with."""
        env = dict(os.environ)
        for k in ("ATLAS_WORK_DIR", "ATLAS_ENV_DIR", "ATLAS_SPOOL_DIR"):
            env.pop(k, None)
        env["FOUNDATIONS_SPOOL_DIR"] = os.path.join(self.spool, "values")
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (SDK_DIR, env.get("PYTHONPATH", "")) if p)
        python = sys.executable
        req = os.path.join(self.work, "requirements.txt")
        self.emit((BANNER + "\n").encode())
        if os.path.exists(req):
            venv = self.requirements(req, env)
            if venv is None:
                return None, None
            python = os.path.join(venv, "bin", "python")
            env["VIRTUAL_ENV"] = venv
            env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
        else:
            self.emit(b"No user requirements found.\n")  # the line local executors print
        self.emit((BANNER + "\n").encode())
        return env, python

    def requirements(self, req, env):
        """Installs requirements.txt into a virtualenv: the one cached for this (image,
        interpreter, requirements) under ATLAS_ENV_DIR when there is one, else a fresh one.
        ATLAS_IMAGE names the image, where the engine says."""
        with open(req, "rb") as f:
            content = f.read()
        image = os.environ.get("ATLAS_IMAGE", "").encode()
        key = hashlib.sha256(image + b"\n" + sys.version.encode() + b"\n" + sys.executable.encode() + b"\n"
                             + content).hexdigest()[:32]
        cached = bool(self.env_dir)
        venv = os.path.join(self.env_dir, key) if cached else tempfile.mkdtemp(prefix="atlas-env-")
        marker = os.path.join(venv, ".atlas-complete")
        if cached and os.path.exists(marker):
            self.say("INFO", "Using cached environment for requirements.txt ({}): nothing to install.".format(key[:12]))
            return venv
        lock = None
        if cached:
            import fcntl
            os.makedirs(self.env_dir, exist_ok=True)
            lock = open(venv + ".lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(marker):
                lock.close()
                self.say("INFO", "Using cached environment for requirements.txt ({}): nothing to install.".format(key[:12]))
                return venv
            shutil.rmtree(venv, ignore_errors=True)
            self.say("INFO", "Installing user requirements from requirements.txt into a new cached environment "
                             "({})...".format(key[:12]))
        else:
            self.say("INFO", "Installing user requirements from requirements.txt (no environment cache on this "
                             "engine: installed for this job only)...")
        try:
            pip_env = dict(env, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
            for argv in ([sys.executable, "-m", "venv", "--system-site-packages", venv],
                         [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-r", req]):
                rc = self.run_quiet(argv, pip_env)
                if rc != 0:
                    self.say("ERROR", "Installing user requirements failed ({} exited with {}).".format(
                        os.path.basename(argv[0]), rc))
                    shutil.rmtree(venv, ignore_errors=True)
                    return None
            with open(marker, "w") as f:
                f.write(key)
            return venv
        finally:
            if lock is not None:
                lock.close()

    def run_quiet(self, argv, env):
        p = subprocess.Popen(argv, cwd=self.work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.pump(p.stdout)
        return p.wait()

    def pump(self, pipe):
        while True:
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            self.emit(data)
        pipe.close()

    def run(self, job, env, python):
        command = list(job.get("command") or [])
        entry = list(job.get("entrypoint") or (job.get("worker") or {}).get("entrypoint") or [])
        argv = entry + command if entry else [python] + command
        if not argv:
            self.say("ERROR", "no command to run")
            return 1
        try:
            child = subprocess.Popen(argv, cwd=self.work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as e:
            self.say("ERROR", "cannot start {!r}: {}".format(argv[0], e))
            return 127
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda s, _f: child.send_signal(s))
        sampler = _system.start(self.client, self.job_id, child.pid, spool=os.path.join(self.spool, "values"))
        reader = threading.Thread(target=self.pump, args=(child.stdout,), daemon=True)
        reader.start()
        while True:
            try:
                rc = child.wait()
                break
            except InterruptedError:
                continue
        reader.join()
        if sampler is not None:
            sampler.close(self.patience)
        return 128 - rc if rc < 0 else rc

    def finish(self, rc):
        """Delivers what is left, archives the working directory and reports how the job ended."""
        values = os.path.join(self.spool, "values")
        if os.listdir(values):  # the SDK could not deliver them before the command ended
            _tracker.resend_orphans(values, deadline=time.monotonic() + self.patience)
        if self.shipper is not None and not self.shipper.close(self.patience):
            print("Foundations WARNING: part of the job's output could not be delivered.", file=sys.stderr, flush=True)
        body = {"exit_code": rc}
        try:
            if self.base is not None:  # only what the job changed: the server rebuilds the rest
                path, digest = _bundle.create_delta(self.work, self.base[1], self.base[0])
            else:
                path, digest = _bundle.create(self.work, use_ignore_file=False, ignore=[])
        except OSError as e:
            print("Foundations ERROR: archiving the working directory failed: {}".format(e), file=sys.stderr, flush=True)
            path = None
        if path is not None:
            try:
                self.call("upload the job's archive", lambda: self.client.put_blob_file(digest, path))
                body["archive_digest"] = digest
            finally:
                os.unlink(path)
        self.call("report the job's end", lambda: self.client.json("POST", "/api/v1/jobs/{}/exit".format(
            quote(self.job_id)), body=body))


def main():
    r = Runner(os.environ)
    rc = 1
    try:
        r.start_shipping()
        job = r.fetch()
        env, python = r.environment()
        rc = 1 if env is None else r.run(job, env, python)
    except (Unreachable, APIError, OSError, _bundle.BundleError) as e:
        r.say("ERROR", "the job could not run: {}".format(e))
    try:
        r.finish(rc)
    except (Unreachable, APIError, OSError) as e:
        print("Foundations ERROR: could not report the job's end: {}".format(e), file=sys.stderr, flush=True)
        return rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
