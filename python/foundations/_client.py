"""A small HTTP client for the Atlas API (/api/v1), on http.client with keep-alive."""
import http.client
import json
import os
import re
import socket
import threading
import urllib.parse


class APIError(Exception):
    """The server answered with an error status."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Unreachable(ConnectionError):
    """The server could not be reached."""


_REDIRECTS = (301, 302, 303, 307, 308)


# The longest path a unix socket's address holds on Linux (sun_path is 108 bytes, with its NUL).
_SOCKET_PATH_MAX = 107


def _connect_unix(s, path):
    """Connects s to the unix socket at path. A path longer than a socket address holds (the
    server's socket is in its data folder, which may be deep) is reached through its folder,
    opened for the call, as /proc/self/fd/<fd>/<name>."""
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
        s.connect(path)
        return
    folder, name = os.path.split(path)
    fd = os.open(folder or ".", getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        proc = "/proc/self/fd/{}".format(fd)
        short = "{}/{}".format(proc, name)
        why = None
        if len(os.fsencode(short)) > _SOCKET_PATH_MAX:
            why = "its name alone ({} bytes) is too long to be reached through its folder".format(len(os.fsencode(name)))
        elif not os.path.isdir(proc):
            why = "it is reached through its folder as {}, which needs /proc".format(proc)
        if why:
            raise OSError("unix socket {}: its path is {} bytes, over the limit of {}, and {}".format(
                path, len(os.fsencode(path)), _SOCKET_PATH_MAX, why))
        s.connect(short)
    finally:
        os.close(fd)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: how jobs on the server's machine reach it."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            _connect_unix(s, self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class Client:
    """One connection per thread to one server. base_url is http://host:port, https://..., or
    http+unix://<percent-encoded socket path>."""

    def __init__(self, base_url, token=None, timeout=60):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme == "http+unix" and u.netloc:
            self._socket = urllib.parse.unquote(u.netloc)
        elif u.scheme in ("http", "https") and u.hostname:
            self._socket = None
        else:
            raise ValueError("invalid scheduler URL {!r}: want http://host:port".format(base_url))
        self.base_url = base_url.rstrip("/")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, timeout):
        c = getattr(self._local, "conn", None)
        if c is None:
            if self._socket:
                c = _UnixHTTPConnection(self._socket, timeout)
            else:
                cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
                c = cls(self._host, self._port, timeout=timeout)
            self._local.conn = c
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def close(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None, stream=False, _hops=0):
        """Sends a request; returns (status, headers, body bytes) or the open response if stream.

        A GET follows the server's redirect of a download into its blob store (a presigned URL),
        which gets none of the Atlas credentials."""
        hdrs = {"Connection": "keep-alive"}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if method == "GET":
            hdrs["Atlas-Redirect"] = "storage"
        if headers:
            hdrs.update(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
            hdrs["Content-Type"] = "application/json"
        t = timeout or self.timeout
        for attempt in (0, 1):
            conn = self._conn(t)
            try:
                conn.request(method, self._prefix + path, body=body, headers=hdrs)
                resp = conn.getresponse()
                break
            except (http.client.HTTPException, OSError) as e:
                self.close()
                # A kept-alive connection the server closed: retry once on a fresh one.
                reused = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
                if attempt == 0 and reused and (body is None or isinstance(body, (bytes, str, memoryview))):
                    continue
                raise Unreachable("Cannot currently find Atlas server at {}. Start Atlas server with "
                                  "`atlas-server start`. ({})".format(self.base_url, e)) from None
        if resp.status in _REDIRECTS and method == "GET" and resp.getheader("Location"):
            resp.read()  # the connection stays usable
            return self._follow(resp.getheader("Location"), timeout, stream, _hops + 1)
        if resp.status >= 300:
            data = resp.read()
            msg = data.decode("utf-8", "replace").strip()
            try:
                msg = json.loads(msg).get("error", msg)
            except (ValueError, AttributeError):
                pass
            if not msg and resp.status == 401:
                msg = ("authentication required by {}: run `foundations login {}` or set FOUNDATIONS_TOKEN"
                       .format(self.base_url, self.base_url))
            raise APIError(resp.status, msg or "HTTP {}".format(resp.status), resp.headers)
        if stream:
            self._local.conn = None  # the response owns the connection now
            return resp
        return resp.status, resp.headers, resp.read()

    def _follow(self, location, timeout, stream, hops):
        """GETs where the server redirected to: itself, with the request's credentials, or another
        origin (the blob store), without them and on a connection of its own."""
        if hops > 10:
            raise APIError(508, "too many redirects from {}".format(self.base_url))
        u = urllib.parse.urlsplit(location)
        if not u.scheme or (not self._socket and (u.scheme, u.hostname, u.port) == (self._scheme, self._host, self._port)):
            path = urllib.parse.urlunsplit(("", "", u.path, u.query, ""))
            if self._prefix and path.startswith(self._prefix + "/"):
                path = path[len(self._prefix):]
            return self.request("GET", path, timeout=timeout, stream=stream, _hops=hops)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise APIError(502, "the server redirected to {!r}, which is not an http(s) URL".format(u.scheme + ":"))
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=timeout or self.timeout)
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        store = "{}://{}".format(u.scheme, u.netloc)
        try:
            # Connection: close hands the socket to the response: closing it frees both.
            conn.request("GET", target, headers={"Connection": "close"})
            resp = conn.getresponse()
        except (http.client.HTTPException, OSError) as e:
            conn.close()
            raise Unreachable("cannot reach the blob store at {} the server sent this download to ({})"
                              .format(store, e)) from None
        if resp.status in _REDIRECTS and resp.getheader("Location"):
            resp.read()
            resp.close()
            return self._follow(urllib.parse.urljoin(location, resp.getheader("Location")), timeout, stream, hops + 1)
        if resp.status >= 300:
            data = resp.read(64 << 10).decode("utf-8", "replace")
            resp.close()
            code = re.search(r"<Code>(.*?)</Code>", data)
            msg = re.search(r"<Message>(.*?)</Message>", data)
            detail = " ".join(m.group(1) for m in (code, msg) if m)
            raise APIError(resp.status, "the blob store at {} answered {} {}{}".format(
                store, resp.status, resp.reason, ": " + detail if detail else ""), resp.headers)
        if stream:
            return resp
        try:
            return resp.status, resp.headers, resp.read()
        finally:
            resp.close()

    def json(self, method, path, body=None, timeout=None):
        _, _, data = self.request(method, path, body=body, timeout=timeout)
        return json.loads(data) if data else None

    def has_blob(self, digest):
        try:
            self.request("HEAD", "/api/v1/blobs/" + digest)
            return True
        except APIError as e:
            if e.status == 404:
                return False
            raise

    def put_blob_file(self, digest, path):
        if self.has_blob(digest):
            return False
        with open(path, "rb") as f:
            self.request("PUT", "/api/v1/blobs/" + digest, body=f,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(_size(f))}, timeout=600)
        return True


def _size(f):
    pos = f.tell()
    f.seek(0, 2)
    n = f.tell()
    f.seek(pos)
    return n - pos


def quote(s):
    return urllib.parse.quote(s, safe="")


def is_timeout(e):
    return isinstance(e, (socket.timeout, TimeoutError))
