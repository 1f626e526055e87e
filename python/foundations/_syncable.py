"""Syncable directories: folders a job uploads and a later job downloads (chained searches,
TensorBoard logs). Their files are stored as the job's artifacts under "syncable/<key>/"."""
import atexit
import os
import tempfile

from . import _tracker
from ._client import APIError, quote

PREFIX = "syncable/"


class SyncableDirectory:
    """A local folder tied to a key. str() is its path; upload() saves changed files."""

    def __init__(self, key, directory_path, source_job_id):
        self.key = key
        self.path = directory_path
        self._uploaded = {}
        os.makedirs(directory_path, exist_ok=True)
        if source_job_id:
            self._download(source_job_id)

    def __str__(self):
        return self.path

    def __fspath__(self):
        return self.path

    def _download(self, job_id):
        job = _tracker.current()
        if job is None:
            return
        client = job.client
        try:
            info = client.json("GET", "/api/v1/jobs/" + quote(job_id))
        except APIError as e:
            if e.status == 404:
                raise ValueError("create_syncable_directory: job {} not found".format(job_id)) from None
            raise
        prefix = PREFIX + self.key + "/"
        for a in info.get("artifacts") or ():
            if not a["key"].startswith(prefix):
                continue
            rel = a["key"][len(prefix):]
            if not rel or rel.startswith("/") or ".." in rel.split("/"):
                continue
            dst = os.path.join(self.path, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _, _, data = client.request("GET", a["url"])
            with open(dst, "wb") as f:
                f.write(data)
            self._uploaded[rel] = os.stat(dst).st_mtime_ns

    def upload(self):
        """Saves the files that changed since the last upload (or download)."""
        job = _tracker.current()
        if job is None:
            _tracker.warn("upload of syncable directory {!r} skipped: this script is not tracked as a job".format(self.key))
            return
        for root, _, files in os.walk(self.path):
            for name in sorted(files):
                p = os.path.join(root, name)
                rel = os.path.relpath(p, self.path).replace(os.sep, "/")
                mtime = os.stat(p).st_mtime_ns
                if self._uploaded.get(rel) == mtime:
                    continue
                job.writer.add_artifact(PREFIX + self.key + "/" + rel, p)
                self._uploaded[rel] = mtime


def create_syncable_directory(key, directory_path=None, source_job_id=None):
    """Returns a SyncableDirectory for key at directory_path (default: a new temporary folder),
    filled with the files that job source_job_id (default: this job) uploaded under key."""
    if not isinstance(key, str) or not key or "/" in key:
        raise ValueError("create_syncable_directory: key must be a non-empty string without '/'")
    if directory_path is None:
        directory_path = tempfile.mkdtemp(prefix="atlas-sync-")
    if source_job_id is None:
        job = _tracker.current(create=False)
        source_job_id = job.id if job is not None and not job.execution_mode else None
    return SyncableDirectory(key, os.fspath(directory_path), source_job_id)


def set_tensorboard_logdir(path):
    """Uploads path as the job's TensorBoard logs when the script ends, and tags the job `tf`."""
    path = os.fspath(path)
    from . import set_tag
    set_tag("tf", "tf")
    d = SyncableDirectory("__tensorboard__", path, None)
    atexit.register(d.upload)
    return d
