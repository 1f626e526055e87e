"""foundations.search(): start a hyperparameter search from Python, and the object that follows
one; foundations.should_stop(): whether the running job was asked to stop."""
import json
import os
import signal
import sys
import threading
import time
import uuid

from . import _tracker
from ._client import APIError, Unreachable, quote
from ._deployment import DeploymentWrapper, _job_spec

_FINISHED = ("completed", "stopped", "failed")


def search(scheduler_config="scheduler", job_directory=None, command=None, search=None, config=None, project_name=None,
           entrypoint=None, num_gpus=None, ram=None, priority=None, **kwargs):
    """Starts a hyperparameter search and returns a Search at once: the folder job_directory
    (default: the current one) is bundled once, and each trial runs `command` (e.g. "main.py")
    as an ordinary job, with the params the search picks (foundations.load_parameters() returns
    them).

    The search is `search`, a dict with the keys of a search: section (method, metric,
    smaller_is_better, max_trials, params, ...), or the YAML file `config`, or else the search:
    section of the folder's job.config.yaml. Bad input raises ValueError with the server's
    one-line reason, and nothing is queued."""
    _tracker.used_as_client()
    if kwargs:
        raise TypeError("search() got unexpected keyword arguments: {}".format(", ".join(sorted(kwargs))))
    if search is not None and config is not None:
        raise TypeError("search: give either search (a dict) or config (a file), not both")
    body = {"id": str(uuid.uuid4())}
    if search is not None:
        if not isinstance(search, dict):
            raise TypeError("search: search must be a dict, got {}".format(type(search).__name__))
        try:
            body["config"] = json.dumps(search, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError("search: search must be JSON-serialisable (numbers, strings, lists, dicts): {}".format(e)) from None
        body["config_name"] = "foundations.search(search=...)"
    elif config is not None:
        try:
            with open(os.fspath(config), encoding="utf-8") as f:
                body["config"] = f.read()
        except OSError as e:
            raise ValueError("search: cannot read config {}: {}".format(config, e.strerror or e)) from None
        body["config_name"] = os.path.basename(os.fspath(config))
    client, body["job"] = _job_spec("search", scheduler_config, job_directory, project_name, entrypoint, command, num_gpus,
                                    ram, priority)
    try:
        res = client.json("POST", "/api/v1/searches", body=body)
    except APIError as e:
        if e.status == 400:
            raise ValueError("search: {}".format(e.message)) from None
        raise RuntimeError("search: {}".format(e.message)) from None
    for w in res.get("warnings") or ():
        print("Foundations WARNING: {}".format(w), file=sys.stderr)
    return Search(res["search"]["id"], client)


class Search:
    """A hyperparameter search on the server."""

    def __init__(self, search_id, client):
        self._id = search_id
        self._client = client

    def search_id(self):
        return self._id

    def get_search_details(self):
        """The search as the server shows it: state, config, trials (each with job_id, state,
        params, value, rungs...), best, counts, warnings."""
        return self._client.json("GET", "/api/v1/searches/" + quote(self._id))

    def get_search_status(self):
        """running, stopping, completed, stopped or failed."""
        return self.get_search_details()["state"]

    def trials(self):
        """Each trial: a DeploymentWrapper of its job."""
        return [DeploymentWrapper(t["job_id"], self._client) for t in self.get_search_details().get("trials") or ()]

    def get_best(self):
        """The best trial so far (job_id, params, value...), or None."""
        return self.get_search_details().get("best")

    def wait_for_search_to_complete(self, timeout=None):
        """Blocks until the search ends (or timeout seconds pass); returns its state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        s = self.get_search_details()
        while s["state"] not in _FINISHED:
            wait = 30 if deadline is None else max(0, min(30, deadline - time.monotonic()))
            if wait <= 0:
                break
            try:
                s = self._client.json("GET", "/api/v1/searches/{}?wait_since={}&timeout={}s".format(
                    quote(self._id), quote(s["version"]), int(max(1, wait))), timeout=wait + 30)
            except Unreachable:
                time.sleep(1)
        return s["state"]

    def stop(self, wait=True):
        """Stops the search: no more trials, and its queued and running trials are stopped. With
        wait (the default) it returns once they have all ended. Returns the search's details."""
        s = self._client.json("POST", "/api/v1/searches/{}/stop".format(quote(self._id)))
        if wait and s["state"] not in _FINISHED:  # stopping ends in stopped
            self.wait_for_search_to_complete()
            s = self.get_search_details()
        return s

    def __repr__(self):
        return "Search({!r})".format(self._id)


_sigterm = threading.Event()
_handler_installed = [False]


def _install_handler():
    """From the first call of should_stop() on, SIGTERM (how a stop reaches a job) only marks the
    job as asked to stop, so the script can finish its step, save what it needs and exit."""
    if _handler_installed[0]:
        return
    _handler_installed[0] = True
    try:
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            _sigterm.set()
            if callable(previous) and previous not in (signal.SIG_DFL, signal.SIG_IGN):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError):  # not the main thread: SIGTERM keeps ending the script
        pass


def should_stop(timeout=10.0):
    """True when this job was asked to stop: a search stopped it early at a rung, or someone
    stopped it. A trial may call it after logging each epoch's metric, then save a checkpoint
    and return; it needs no change to be stopped otherwise (it then gets SIGTERM, then SIGKILL
    after the server's grace period). The values logged so far are delivered first (for at
    most timeout seconds), so the answer takes them into account. Outside a job: False."""
    _install_handler()
    if _sigterm.is_set():
        return True
    job = _tracker.current()
    if job is None:
        return False
    job.writer.flush(timeout)
    try:
        r = job.client.json("POST", "/api/v1/jobs/{}/heartbeat".format(quote(job.id)), timeout=timeout)
    except (Unreachable, APIError):
        return _sigterm.is_set()
    return bool(r and r.get("stop")) or _sigterm.is_set()
