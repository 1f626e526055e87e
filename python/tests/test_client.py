"""The API client's handling of downloads the server redirects into its blob store, and of the
server's unix socket at a path longer than a socket address holds.

Small local HTTP servers stand in for atlas-server and an S3 server in the redirect tests; test/e2e
runs the same client against a real atlas-server whose blobs are in a real S3 server (MinIO). The
unix socket is tested with a stand-in and with a real atlas-server.
"""
import http.server
import os
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from foundations._client import APIError, Client, Unreachable  # noqa: E402
from tests.atlas_server import AtlasServer  # noqa: E402


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}
    seen = []

    def do_GET(self):
        type(self).seen.append((self.path, dict(self.headers)))
        status, headers, body = type(self).routes.get(self.path.split("?")[0], (404, {}, b"not found"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(routes):
    handler = type("Handler", (_Handler,), {"routes": routes, "seen": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, handler, "http://127.0.0.1:{}".format(srv.server_address[1])


class RedirectTest(unittest.TestCase):
    def setUp(self):
        self.store, self.store_seen, store_url = _serve({
            "/bucket/sha256/abc": (200, {"Content-Type": "application/gzip"}, b"archive bytes" * 1000),
            "/bucket/expired": (403, {}, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),
        })
        self.server, self.server_seen, self.url = _serve({
            "/api/v1/jobs/j/archive": (307, {"Location": store_url + "/bucket/sha256/abc?X-Amz-Signature=s"}, b""),
            "/api/v1/jobs/old/archive": (307, {"Location": store_url + "/bucket/expired?X-Amz-Signature=s"}, b""),
            "/api/v1/jobs/moved/bundle": (307, {"Location": "/api/v1/jobs/here/bundle"}, b""),
            "/api/v1/jobs/here/bundle": (200, {}, b"bundle bytes"),
            "/api/v1/jobs/gone/archive": (307, {"Location": "http://127.0.0.1:{}/x".format(_free_port())}, b""),
        })
        self.store_url = store_url
        self.client = Client(self.url, token="secret-token")

    def tearDown(self):
        self.client.close()
        for s in (self.server, self.store):
            s.shutdown()
            s.server_close()

    def test_download_follows_redirect_into_the_store_without_the_token(self):
        _, _, data = self.client.request("GET", "/api/v1/jobs/j/archive")
        self.assertEqual(b"archive bytes" * 1000, data)
        path, headers = self.server_seen.seen[0]
        self.assertEqual("storage", headers.get("Atlas-Redirect"), "the client says it follows redirects into the store")
        self.assertEqual("Bearer secret-token", headers.get("Authorization"))
        path, headers = self.store_seen.seen[0]
        self.assertEqual("/bucket/sha256/abc?X-Amz-Signature=s", path)
        self.assertNotIn("Authorization", headers, "the Atlas token never goes to the store")
        self.assertNotIn("Cookie", headers)

        # Streamed, the same; and the connection to the server is still good for the next call.
        resp = self.client.request("GET", "/api/v1/jobs/j/archive", stream=True)
        try:
            self.assertEqual(b"archive bytes" * 1000, resp.read())
        finally:
            resp.close()
        _, _, data = self.client.request("GET", "/api/v1/jobs/here/bundle")
        self.assertEqual(b"bundle bytes", data)

    def test_redirect_within_the_server_keeps_the_token(self):
        _, _, data = self.client.request("GET", "/api/v1/jobs/moved/bundle")
        self.assertEqual(b"bundle bytes", data)
        self.assertEqual("Bearer secret-token", self.server_seen.seen[-1][1].get("Authorization"))

    def test_store_errors(self):
        with self.assertRaises(APIError) as cm:
            self.client.request("GET", "/api/v1/jobs/old/archive")
        self.assertEqual(403, cm.exception.status)
        self.assertEqual("the blob store at {} answered 403 Forbidden: AccessDenied Request has expired".format(self.store_url),
                         cm.exception.message)
        with self.assertRaises(Unreachable) as cm:
            self.client.request("GET", "/api/v1/jobs/gone/archive")
        self.assertIn("cannot reach the blob store", str(cm.exception))


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve_unix(path, routes):
    """Serves routes on the unix socket at path, bound through its opened folder (the path is too
    long to bind as is)."""
    handler = type("Handler", (_Handler,), {"routes": routes, "seen": []})
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        srv = _UnixServer("/proc/self/fd/{}/{}".format(fd, os.path.basename(path)), handler)
    finally:
        os.close(fd)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _unix_url(path):
    return "http+unix://" + urllib.parse.quote(path, safe="")


class LongSocketPathTest(unittest.TestCase):
    """Jobs on the server's machine reach it over its unix socket, in its data folder, whose path
    may be longer than a socket address holds (107 bytes)."""

    def setUp(self):
        tmp = tempfile.mkdtemp(prefix="atlas-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        self.folder = tmp
        while len(self.folder) < 200:
            self.folder = os.path.join(self.folder, "a-data-folder-deeper-than-a-socket-address-holds")
        os.makedirs(self.folder)

    def test_client_reaches_a_socket_at_a_long_path(self):
        path = os.path.join(self.folder, "api.sock")
        srv = _serve_unix(path, {"/api/v1/health": (200, {}, b"ok")})
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        self.assertGreater(len(path), 107)
        client = Client(_unix_url(path))
        self.addCleanup(client.close)
        status, _, data = client.request("GET", "/api/v1/health")
        self.assertEqual((200, b"ok"), (status, data))

    def test_a_name_too_long_even_through_its_folder_is_a_clear_error(self):
        path = os.path.join(self.folder, "s" * 100 + ".sock")
        client = Client(_unix_url(path))
        with self.assertRaises(Unreachable) as cm:
            client.request("GET", "/api/v1/health")
        msg = str(cm.exception)
        self.assertNotIn("\n", msg)
        self.assertIn("unix socket {}: its path is {} bytes, over the limit of 107".format(path, len(path)), msg)

    def test_real_server_with_a_long_data_folder(self):
        home = os.path.join(self.folder, "foundations-home")
        os.makedirs(home)
        server = AtlasServer(workers=1, home=home).start()
        self.addCleanup(server.close)
        client = Client(_unix_url(os.path.join(home, "run", "sock", "api.sock")))
        self.addCleanup(client.close)
        status, _, _ = client.request("GET", "/api/v1/jobs?project=none")
        self.assertEqual(200, status)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
