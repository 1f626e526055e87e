"""Syncable directories: folders a job uploads and a later job downloads (chained searches,
TensorBoard logs). Their files are stored as the job's artifacts under "syncable/<key>/"."""
import atexit
import os
import shutil
import tempfile

from . import _bundle, _config, _tracker
from ._client import APIError, Client, quote

PREFIX = "syncable/"


def _client():
    """The server to read from: the job's, else the local scheduler's (a driver downloads too)."""
    job = _tracker.current(create=False)
    if job is not None:
        return job.client
    url, token = _config.local_scheduler_url()
    return Client(url, token)


class SyncableDirectory:
    """A local folder tied to a key. str() is its path. download() fetches the files a job
    uploaded under the key; upload() saves the folder's new and changed files with this job, so
    a later job can continue from them (job 1 -> job 2 -> job 3)."""

    def __init__(self, key, directory_path, source_job_id, auto_download=True):
        self.key = key
        self.path = directory_path
        self.source_job_id = source_job_id
        self._uploaded = {}  # relative path -> (mtime, size) when this job last uploaded it
        os.makedirs(directory_path, exist_ok=True)
        if source_job_id and auto_download:
            self.download()

    def __str__(self):
        return self.path

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return "SyncableDirectory({!r}, {!r})".format(self.key, self.path)

    def download(self, source_job_id=None):
        """Fetches the files job source_job_id (default: the one given at creation) uploaded
        under this key. A local file with the same content is left alone, and so is one changed
        here after that job uploaded it. Returns the relative paths written."""
        job_id = source_job_id or self.source_job_id
        if not job_id:
            raise ValueError("download: no source job: give source_job_id")
        client = _client()
        try:
            info = client.json("GET", "/api/v1/jobs/" + quote(job_id))
        except APIError as e:
            if e.status == 404:
                raise ValueError("syncable directory {!r}: job {} not found".format(self.key, job_id)) from None
            raise
        from ._deployment import _time
        prefix = PREFIX + self.key + "/"
        written = []
        for a in info.get("artifacts") or ():
            if not a["key"].startswith(prefix):
                continue
            rel = a["key"][len(prefix):]
            if not rel or rel.startswith("/") or ".." in rel.split("/"):
                continue
            dst = os.path.join(self.path, *rel.split("/"))
            if os.path.isfile(dst):
                if _bundle.file_digest(dst) == a["digest"]:
                    continue
                uploaded = _time(a.get("created_at"))
                if uploaded is not None and os.stat(dst).st_mtime > uploaded.timestamp():
                    continue  # changed here since: the newer file wins, as in Atlas
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            resp = client.request("GET", a["url"], stream=True)  # to the file as it comes, however large
            tmp = dst + ".atlas-download"
            try:
                with open(tmp, "wb") as f:
                    shutil.copyfileobj(resp, f, 1 << 20)
            finally:
                resp.close()
            os.replace(tmp, dst)
            written.append(rel)
        return written

    def upload(self):
        """Saves the folder's files with this job: the first time all of them (downloaded ones
        too, so the next job in a chain finds everything here), then those that changed."""
        job = _tracker.current()
        if job is None:
            _tracker.warn("upload of syncable directory {!r} skipped: this script is not tracked as a job".format(self.key))
            return
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(root, name)
                rel = os.path.relpath(p, self.path).replace(os.sep, "/")
                st = os.stat(p)
                if self._uploaded.get(rel) == (st.st_mtime_ns, st.st_size):
                    continue
                job.writer.add_artifact(PREFIX + self.key + "/" + rel, p)
                self._uploaded[rel] = (st.st_mtime_ns, st.st_size)


def create_syncable_directory(key, directory_path=None, source_job_id=None):
    """Returns a SyncableDirectory for key at directory_path (default: a new temporary folder),
    filled with the files that job source_job_id (default: this job, when the scheduler runs
    it) uploaded under key. Works in drivers too (FOUNDATIONS_COMMAND_LINE), to read results."""
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
