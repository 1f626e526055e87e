"""The API client's handling of downloads the server redirects into its blob store.

Two small local HTTP servers stand in for atlas-server and an S3 server here; test/e2e runs the
same client against a real atlas-server whose blobs are in a real S3 server (MinIO).
"""
import http.server
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from foundations._client import APIError, Client, Unreachable  # noqa: E402


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


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
