"""The job a process writes to: the scheduled job it runs in, or the job a script run by hand
records itself as (created at import, ended at exit with the archive of its folder and how it
ended). Its values go to the server through _delivery.Writer.
"""
import atexit
import json
import os
import shutil
import sys
import threading
import time
import uuid

from . import _bundle, _config, _output
from ._client import APIError, Client, Unreachable, quote
from ._delivery import Writer, _log, _write_json, resend_orphans, warn
from ._output import _unlink

HEARTBEAT_INTERVAL = 30.0


class Job:
    """The job this process tracks into."""

    def __init__(self, client, job_id, project, execution_mode):
        self.client = client
        self.id = job_id
        self.project = project
        self.execution_mode = execution_mode  # this process created the job and reports its end
        self.pid = os.getpid()
        self.writer = Writer(client, job_id)
        self.failed = False
        self.exit_code = None
        self.reason = None
        self.artifact_keys = set()  # keys saved with save_artifact, to warn when one is replaced
        self.user_token = None
        self.capture = None
        self.shipper = None
        self.stop = threading.Event()
        if execution_mode:
            threading.Thread(target=self._heartbeat, name="foundations-heartbeat", daemon=True).start()
        self.resender = threading.Thread(target=resend_orphans, name="foundations-resend", daemon=True)
        self.resender.start()

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

    def capture_output(self):
        """Keeps this process's output (descriptors 1 and 2) as the job's logs, still printing it."""
        if os.environ.get("FOUNDATIONS_CAPTURE_OUTPUT", "true").strip().lower() in ("0", "false", "no"):
            return
        self.shipper = _output.Shipper(self.client, self.id, self.writer.dir)
        try:
            self.capture = _output.Capture(self.shipper.write)
        except Exception as e:  # never stop the script over its logs
            warn("the output of this run is not kept as the logs of job {}: {}".format(self.id, e))

    def close_output(self, timeout):
        """Stops capturing and sends the output; True when the server has all of it."""
        if self.shipper is None:
            return True
        deadline = time.monotonic() + timeout
        if self.capture is not None:
            self.capture.stop(min(5.0, timeout))
        return self.shipper.close(max(0.0, deadline - time.monotonic()))


_lock = threading.RLock()
_job = None
_unavailable = False
_warned_outside = False
_project_override = None
_exit_code = [None]
_client_calls = [0]  # submit() and get_metrics_for_all_jobs() calls: a driver, if it tracks nothing itself
try:  # the folder the script was started in: its archive, even if the script changes directory
    _start_dir = os.getcwd()
except OSError:
    _start_dir = None


def flush_timeout():
    try:
        return float(os.environ.get("FOUNDATIONS_FLUSH_TIMEOUT", "30"))
    except ValueError:
        return 30.0


def start():
    """Called when foundations is imported: a script run by hand is a job from the start, so
    that its output and how it ended are kept even if it fails before tracking anything."""
    if _config.scheduled_job() or _config.command_line_mode() or not _config.run_by_hand():
        return
    current()


def used_as_client():
    """Notes that this process drives Atlas (submits jobs, reads results): if it tracks nothing
    itself, it is not a job."""
    _client_calls[0] += 1


def current(create=True):
    """Returns the job this process tracks into, creating it (execution mode) on first use.

    None means tracking is off: command-line mode, or no server reachable."""
    global _job, _unavailable, _warned_outside
    if _job is not None or _unavailable:
        return _job
    with _lock:
        if _job is not None or _unavailable or not create:
            return _job
        job_id = _config.scheduled_job()
        if job_id:
            url, token = _config.local_scheduler_url()
            _job = Job(Client(url, token), job_id, os.environ.get("FOUNDATIONS_PROJECT_NAME", ""), execution_mode=False)
            atexit.register(_at_exit_scheduled)
            return _job
        if _config.command_line_mode():
            if not _warned_outside:
                warn("Script not run with Foundations: FOUNDATIONS_COMMAND_LINE is set, so nothing is tracked.")
                _warned_outside = True
            return None
        _job = _create_job()
        if _job is None:
            _unavailable = True
        return _job


def _project():
    cwd = os.getcwd()
    return (_project_override or os.environ.get("FOUNDATIONS_PROJECT_NAME") or os.environ.get("PROJECT_NAME")
            or _config.project_from_job_config(cwd) or os.path.basename(cwd) or "default")


def _submit_execution_job(client, job_id, project):
    """Records a job for this script with the user's credentials (client); returns (created?,
    the job as the server has it, the job's own token)."""
    spec = {"id": job_id, "mode": "execution", "project": project, "user": _user(),
            "command": [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and sys.argv[0] else ["python"]}
    status, _, data = client.request("POST", "/api/v1/jobs", body=spec, timeout=10)
    res = json.loads(data)
    return status == 201, res["job"], res.get("token") or client.token


def _create_job():
    """The job of a script run by hand: a new one, or the one FOUNDATIONS_JOB_ID names (as
    Atlas did). None, with a warning, when it cannot be recorded."""
    url, token = _config.local_scheduler_url()
    project = _project()
    wanted = os.environ.get("FOUNDATIONS_JOB_ID") or str(uuid.uuid4())
    try:
        created, job, job_token = _submit_execution_job(Client(url, token), wanted, project)
    except (Unreachable, APIError) as e:
        warn("{}. This run is not tracked.".format(e))
        return None
    except (ValueError, KeyError) as e:
        warn("unexpected answer from {} ({}). This run is not tracked.".format(url, e))
        return None
    if not created:
        # FOUNDATIONS_JOB_ID names a job another process recorded: track into it, and leave
        # its output and its end to that process.
        if job["state"] in ("completed", "failed", "stopped"):
            warn("job {} (FOUNDATIONS_JOB_ID) has already ended. This run is not tracked.".format(job["id"]))
            return None
        _log("INFO", "Tracking into job '{}' in project '{}' ({}), recorded by another process.".format(
            job["id"], job["project"], url))
        j = Job(Client(url, job_token), job["id"], job["project"], execution_mode=False)
        atexit.register(_at_exit_scheduled)
        return j
    j = Job(Client(url, job_token), job["id"], project, execution_mode=True)
    j.user_token = token  # to record the job again if it moves project
    _log("INFO", "Tracking this run as job '{}' in project '{}' ({}).".format(j.id, project, url))
    j.capture_output()
    _install_exit_hooks()
    return j


def move(job, project):
    """Moves a job this script recorded, and that has tracked nothing yet, to another project
    (set_project_name after the import made the script a job): the job is discarded and
    recorded again with the same id, and its output so far is sent again. False if it cannot."""
    if not job.execution_mode or job.writer.used():
        return False

    def replace():
        try:
            job.client.request("POST", "/api/v1/jobs/{}/finish".format(quote(job.id)), body={"discard": True}, timeout=10)
            # The discarded job's token ended with it: record it again as the user, as at first.
            _, _, job.client.token = _submit_execution_job(Client(job.client.base_url, job.user_token), job.id, project)
        except (Unreachable, APIError, ValueError, KeyError) as e:
            warn("could not move job {} to project {!r}: {}".format(job.id, project, e))
            return False
        return True

    moved = job.shipper.replay(replace) if job.shipper is not None else replace()
    if moved:
        job.project = project
        _log("INFO", "Job '{}' is in project '{}' now.".format(job.id, project))
    return moved


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
    # exit() and quit() (site's helpers, common in scripts) raise SystemExit without sys.exit.
    # A bare `raise SystemExit(n)` cannot be seen from atexit: Python does not expose the code.
    import builtins
    for name in ("exit", "quit"):
        helper = getattr(builtins, name, None)
        if helper is not None and not getattr(helper, "_foundations", False):
            def quitter(code=None, _helper=helper):
                _exit_code[0] = code
                _helper(code)

            quitter._foundations = True
            quitter.__doc__ = getattr(helper, "__doc__", None)
            setattr(builtins, name, quitter)
    atexit.register(_at_exit_execution)


def _at_exit_scheduled():
    job = _job
    if job is None:
        return
    deadline = time.monotonic() + flush_timeout()
    job.writer.close(flush_timeout())
    job.resender.join(max(0.0, deadline - time.monotonic()))


def _at_exit_execution():
    """Delivers what is left (the output first), archives the working directory and records
    how the script ended; a script that only drove Atlas (submitted jobs or read results) and
    tracked nothing itself is discarded instead. When the server cannot be reached, all of it
    stays in the spool for the next script."""
    job = _job
    if job is None or job.pid != os.getpid():  # a forked child exiting is not the script's end
        return
    job.stop.set()
    code = _exit_code[0]
    if isinstance(code, int) and code != 0 or (code is not None and not isinstance(code, int)):
        job.failed = True
        job.exit_code = code if isinstance(code, int) else 1
    timeout = flush_timeout()
    deadline = time.monotonic() + timeout
    writer = job.writer
    logged = job.close_output(timeout)
    delivered = writer.close(max(0.0, deadline - time.monotonic()), keep_spool=True) and logged
    archive_path = None
    if _client_calls[0] and not writer.used():
        body = {"discard": True}
    else:
        state = "failed" if job.failed else "completed"
        body = {"state": state, "exit_code": job.exit_code if job.exit_code is not None else 0}
        if job.failed:
            body["reason"] = job.reason or "exited with code {}".format(job.exit_code)
        try:
            archive_path, body["archive_digest"] = _bundle.create(_start_dir or os.getcwd())
        except OSError as e:
            warn("could not archive the working directory of job {}: {}".format(job.id, e))
    finished = False
    if delivered:
        try:
            if archive_path:
                job.client.put_blob_file(body["archive_digest"], archive_path)
            job.client.request("POST", "/api/v1/jobs/{}/finish".format(quote(job.id)), body=body, timeout=30)
            finished = True
        except APIError as e:
            if e.status < 500 and e.status not in (408, 429):
                warn("could not record the end of job {}: {}".format(job.id, e))
                finished = True  # resending would not help
        except (Unreachable, OSError):
            pass
    if finished or writer.dir is None:
        _unlink(archive_path)
        if writer.dir:
            shutil.rmtree(writer.dir, ignore_errors=True)
        elif not finished:
            warn("could not record the end of job {} on {}.".format(job.id, job.client.base_url))
    else:
        # Keep the archive and the end of the job with the undelivered values and output.
        try:
            if archive_path:
                shutil.move(archive_path, os.path.join(writer.dir, "blobs", body["archive_digest"].split(":", 1)[1]))
            _write_json(os.path.join(writer.dir, "finish.json"), body)
            if delivered:
                warn("could not record the end of job {} on {}; it is kept in {} and sent by the next script that "
                     "tracks anything.".format(job.id, job.client.base_url, writer.dir))
        except OSError as e:
            warn("could not keep the end of job {} in the spool: {}".format(job.id, e))
            _unlink(archive_path)
    job.resender.join(max(0.0, deadline - time.monotonic()))
    return delivered
