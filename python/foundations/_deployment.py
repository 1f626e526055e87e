"""foundations.submit(): queue jobs from Python, and the object that follows one."""
import datetime
import json
import os
import sys
import time
import uuid

from . import _bundle, _config, _tracker
from ._client import APIError, Client, Unreachable, quote

_bundles = {}  # folder -> (fingerprint, digest, uploaded to)


def _client(scheduler_config):
    url, token = _config.load_submission(scheduler_config or "scheduler")
    return Client(url, token)


def _upload_bundle(client, directory):
    fp = _bundle.fingerprint(directory)
    cached = _bundles.get(directory)
    if cached and cached[0] == fp and client.base_url in cached[2]:
        return cached[1]
    path, digest = _bundle.create(directory)
    try:
        client.put_blob_file(digest, path)
    finally:
        os.unlink(path)
    uploaded = cached[2] if cached and cached[1] == digest else set()
    uploaded.add(client.base_url)
    _bundles[directory] = (fp, digest, uploaded)
    return digest


def _as_list(name, value):
    if value is None:
        return None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise TypeError("submit: {} must be a string or a list of strings".format(name))


def _job_spec(what, scheduler_config, job_directory, project_name, entrypoint, command, num_gpus, ram, priority):
    """The spec of a job of the folder job_directory (default: the current one), checked, with its
    bundle uploaded unless the server has it, and a client for the server."""
    directory = os.path.abspath(job_directory or os.getcwd())
    if not os.path.isdir(directory):
        raise ValueError("{}: job directory {} does not exist".format(what, directory))
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 0):
        raise ValueError("{}: num_gpus must be an integer, 0 or more".format(what))
    if ram is not None and (isinstance(ram, bool) or not isinstance(ram, (int, float)) or ram <= 0):
        raise ValueError("{}: ram must be a number of GB greater than 0".format(what))
    client = _client(scheduler_config)
    spec = {"user": _user(), "job_config": _config.read_job_config(directory)}
    if project_name:
        spec["project"] = project_name
    elif not _config.project_from_job_config(directory):
        spec["project"] = os.path.basename(directory)
    for key, value in (("command", _as_list("command", command)), ("entrypoint", _as_list("entrypoint", entrypoint))):
        if value:
            spec[key] = value
    if num_gpus is not None:
        spec["num_gpus"] = num_gpus
    if ram is not None:
        spec["ram_gb"] = ram
    if priority is not None:
        spec["priority"] = priority
    if os.environ.get("FOUNDATIONS_JOB_ID"):
        spec["parent_id"] = os.environ["FOUNDATIONS_JOB_ID"]
    spec["bundle_digest"] = _upload_bundle(client, directory)
    return client, spec


def submit(scheduler_config="scheduler", job_directory=None, project_name=None, entrypoint=None, command=None,
           num_gpus=None, ram=None, params=None, stream_job_logs=False, priority=None, name=None, **kwargs):
    """Queues a job: the folder job_directory (default: the current one) runs `command`
    (e.g. ["main.py", "--epochs", "5"]) on the scheduler named scheduler_config. params are
    written to foundations_job_parameters.json in the job's working directory, where
    foundations.load_parameters() reads them. name is the job's name, shown beside its id (at
    most 100 printable characters; by default the server makes one up, such as "brave-otter").
    Returns a DeploymentWrapper at once, unless stream_job_logs is true: then the job's logs are
    printed until it ends.

    A script that submits jobs and tracks nothing itself is not kept as a job."""
    _tracker.used_as_client()
    if kwargs:
        raise TypeError("submit() got unexpected keyword arguments: {}".format(", ".join(sorted(kwargs))))
    _check_name(name)
    if params is not None:
        if not isinstance(params, dict):
            raise TypeError("submit: params must be a dict, got {}".format(type(params).__name__))
        try:
            json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError("submit: params must be JSON-serialisable (numbers, strings, lists, dicts): {}".format(e)) from None
    client, spec = _job_spec("submit", scheduler_config, job_directory, project_name, entrypoint, command, num_gpus, ram,
                             priority)
    spec["id"] = str(uuid.uuid4())
    if params is not None:
        spec["params"] = params
    if name:
        spec["name"] = name
    try:
        res = client.json("POST", "/api/v1/jobs", body=spec)
    except APIError as e:
        raise RuntimeError("submit: {}".format(e.message)) from None
    for w in res.get("warnings") or ():
        print("Foundations WARNING: {}".format(w), file=sys.stderr)
    d = DeploymentWrapper(res["job"]["id"], client)
    if stream_job_logs:
        for line in d.stream_job_logs():
            print(line, end="")
    return d


def _check_name(name):
    """Refuses, before anything is uploaded, a job name the server would refuse."""
    if name is None:
        return
    if not isinstance(name, str):
        raise TypeError("submit: name must be a string, got {}".format(type(name).__name__))
    if len(name) > 100:
        raise ValueError("submit: job name is {} characters long: at most 100".format(len(name)))
    if not name.isprintable():
        raise ValueError("submit: job name {!r} holds a newline, tab or other character that does not print".format(name))
    if name.strip() != name:
        raise ValueError("submit: job name {!r} starts or ends with spaces".format(name))


def _user():
    for k in ("USER", "LOGNAME"):
        if os.environ.get(k):
            return os.environ[k]
    try:
        import getpass
        return getpass.getuser()
    except Exception:
        return "unknown"


def _time(s):
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    if "." in s:  # Python < 3.11 accepts at most 6 fraction digits
        head, rest = s.split(".", 1)
        frac = "".join(c for c in rest if c.isdigit())
        tz = rest[len(frac):]
        s = "{}.{}{}".format(head, frac[:6].ljust(6, "0"), tz)
    return datetime.datetime.fromisoformat(s)


class DeploymentWrapper:
    """A submitted job. The getters that need results wait for the job to finish."""

    def __init__(self, job_id, client):
        self._id = job_id
        self._client = client

    def job_name(self):
        return self._id

    def _job(self):
        return self._client.json("GET", "/api/v1/jobs/" + quote(self._id))

    def get_true_job_status(self):
        """queued, starting, running, stopping, completed, failed or stopped."""
        return self._job()["state"]

    def get_job_status(self):
        """queued (also while starting), running (also while stopping), completed, failed or stopped."""
        s = self.get_true_job_status()
        return {"starting": "queued", "stopping": "running"}.get(s, s)

    def is_job_complete(self):
        return self.get_true_job_status() in ("completed", "failed", "stopped")

    def wait_for_deployment_to_complete(self, wait_seconds=5, log_output=True):
        """Blocks until the job ends; returns its final status."""
        logged = None
        while True:
            try:
                j = self._client.json("GET", "/api/v1/jobs/{}?wait_while=queued,starting,running,stopping&timeout={}s".format(
                    quote(self._id), max(1, int(wait_seconds * 6))), timeout=max(60, wait_seconds * 12))
            except Unreachable:
                time.sleep(wait_seconds)
                continue
            if log_output and j["state"] != logged:
                print("Foundations INFO: job {} is {}".format(self._id, j["state"]), file=sys.stderr)
                logged = j["state"]
            if j["state"] in ("completed", "failed", "stopped"):
                return j["state"]

    def stop(self, wait=True):
        """Stops the job: a running one gets SIGTERM, then SIGKILL after the server's grace
        period, and is archived; a queued one leaves the queue. With wait (the default) it
        returns once the job has stopped, with the job's details (its "reason" says how it
        ended); otherwise at once, while the job may still be "stopping"."""
        j = self._client.json("POST", "/api/v1/jobs/{}/stop".format(quote(self._id)))
        while wait and j["state"] == "stopping":
            j = self._client.json("GET", "/api/v1/jobs/{}?wait_while=stopping&timeout=60s".format(quote(self._id)),
                                  timeout=90)
        return j

    def _finished(self, wait_seconds):
        self.wait_for_deployment_to_complete(wait_seconds, log_output=False)
        return self._job()

    def get_metric(self, name, wait_seconds=5):
        """The last logged value of a metric, once the job has finished. KeyError if absent."""
        for m in self._finished(wait_seconds)["metrics"]:
            if m["key"] == name:
                return m["last"]
        raise KeyError(name)

    def get_param(self, name, wait_seconds=5):
        """A parameter of the job, once it has finished. KeyError if absent."""
        params = self._finished(wait_seconds)["params"]
        if name not in params:
            raise KeyError(name)
        return params[name]

    def get_job_details(self, wait_seconds=5):
        """Everything about the job, once it has finished."""
        j = self._finished(wait_seconds)
        return {
            "project_name": j["project"], "job_id": j["id"], "name": j.get("name", ""), "user": j["user"],
            "status": j["state"],
            "creation_time": _time(j.get("created_at")), "start_time": _time(j.get("started_at")),
            "completed_time": _time(j.get("finished_at")), "tags": list(j.get("tags") or {}),
            "metrics": {m["key"]: m["last"] for m in j["metrics"]}, "parameters": j["params"],
            "exit_code": j.get("exit_code"), "reason": j.get("reason"),
        }

    def get_job_logs(self):
        """The job's output so far."""
        _, _, data = self._client.request("GET", "/api/v1/jobs/{}/logs".format(quote(self._id)))
        return data.decode("utf-8", "replace")

    def stream_job_logs(self):
        """Yields the job's output line by line until it ends."""
        offset = 0
        while True:
            j = self._client.json("GET", "/api/v1/jobs/{}?wait_while=queued,starting&timeout=30s".format(quote(self._id)),
                                  timeout=90)
            if j["state"] in ("queued", "starting"):
                continue
            resp = self._client.request("GET", "/api/v1/jobs/{}/logs?follow=true&offset={}".format(quote(self._id), offset),
                                        timeout=3600, stream=True)
            try:
                pending = b""
                for chunk in iter(lambda: resp.read1(65536), b""):
                    offset += len(chunk)
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", "replace") + "\n"
                if pending:
                    yield pending.decode("utf-8", "replace")
            finally:
                resp.close()
            if self.is_job_complete():
                return

    def __repr__(self):
        return "DeploymentWrapper({!r})".format(self._id)


def get_metrics_for_all_jobs(project_name, include_input_params=True, scheduler_config="scheduler"):
    """One row per job of the project: status, times, tags (also one tag_<key> column each), and
    every parameter and metric (the last value). The calling script's own job is left out. A
    pandas DataFrame when pandas is installed, else a list of dicts."""
    if not isinstance(project_name, str) or not project_name:
        raise ValueError("get_metrics_for_all_jobs: want a project name")
    _tracker.used_as_client()
    own = _tracker.current(create=False)
    own = own.id if own is not None and own.execution_mode else None
    try:
        client = _client(scheduler_config)
    except ValueError:
        url, token = _config.local_scheduler_url()
        client = Client(url, token)
    try:
        client.json("GET", "/api/v1/projects/" + quote(project_name))
    except APIError as e:
        if e.status == 404:
            raise ValueError("Project `{}` does not exist!".format(project_name)) from None
        raise
    rows = []
    offset = 0
    while True:
        page = client.json("GET", "/api/v1/jobs?project={}&limit=1000&offset={}&sort=created_at".format(quote(project_name), offset))
        for j in page["jobs"]:
            if j["id"] == own:
                continue
            tags = j.get("tags") or {}
            row = {"project_name": j["project"], "job_id": j["id"], "user": j["user"], "status": j["state"],
                   "creation_time": j.get("created_at"), "start_time": j.get("started_at"),
                   "completed_time": j.get("finished_at"), "tags": tags}
            if include_input_params:
                row.update(j["params"])
            for m in j["metrics"]:
                row[m["key"]] = m["last"]
            for k, v in tags.items():
                row["tag_" + k] = v
            rows.append(row)
        offset += len(page["jobs"])
        if not page["jobs"] or offset >= page["total"]:
            break
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)
