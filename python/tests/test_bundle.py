"""The in-job side unpacks bundles with the server's own rules: every hostile archive the
server's extractor refuses (internal/bundle/testdata/hostile) is refused here too, and nothing
is written outside the target."""
import glob
import os
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("FOUNDATIONS_COMMAND_LINE", "true")  # the SDK as a library: no job

from foundations import _bundle  # noqa: E402

HOSTILE = os.path.join(ROOT, "internal", "bundle", "testdata", "hostile")
# The server reads an archive to its last byte; Python's tarfile stops at the end-of-archive
# marker, so what follows it (bomb-trailing) and a damaged header after the first entry
# (bad-checksum) end the archive early instead. Neither writes anything unsafe, and the in-job
# side checks the bundle's digest before unpacking it, so a damaged one never gets here.
ENDS_EARLY = {"bomb-trailing.tar.gz", "bad-checksum.tar.gz"}


class ExtractTest(unittest.TestCase):
    def test_hostile_bundles_are_refused(self):
        fixtures = sorted(glob.glob(os.path.join(HOSTILE, "*.tar.gz")))
        self.assertGreater(len(fixtures), 30)
        for path in fixtures:
            name = os.path.basename(path)
            with self.subTest(name), tempfile.TemporaryDirectory() as outer:
                dest = os.path.join(outer, "work")
                os.mkdir(dest)
                if name in ENDS_EARLY:
                    _bundle.extract(path, dest, max_bytes=4 << 20, max_entries=1000)
                else:
                    with self.assertRaises(_bundle.BundleError):
                        _bundle.extract(path, dest, max_bytes=4 << 20, max_entries=1000)
                self.assertEqual(os.listdir(outer), ["work"], "nothing was written outside the target")

    def test_a_bundle_round_trips(self):
        with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as dest:
            os.makedirs(os.path.join(src, "data", "raw"))
            with open(os.path.join(src, "data", "raw", "x.csv"), "w") as f:
                f.write("a,b\n1,2\n")
            os.chmod(os.path.join(src, "data", "raw", "x.csv"), 0o640)
            os.symlink("raw/x.csv", os.path.join(src, "data", "latest.csv"))
            path, _ = _bundle.create(src, use_ignore_file=False, ignore=[])
            try:
                _bundle.extract(path, dest)
            finally:
                os.unlink(path)
            with open(os.path.join(dest, "data", "latest.csv")) as f:
                self.assertEqual(f.read(), "a,b\n1,2\n")
            self.assertEqual(os.readlink(os.path.join(dest, "data", "latest.csv")), "raw/x.csv")
            self.assertEqual(os.stat(os.path.join(dest, "data", "raw", "x.csv")).st_mode & 0o777, 0o640)


class DeltaTest(unittest.TestCase):
    """The archive of a job's folder holds what the job changed in its bundle (the server
    rebuilds the rest: internal/bundle's Rebuild, checked against these archives by the
    executor contract)."""

    def test_only_changes_are_archived(self):
        import tarfile
        with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as work:
            os.makedirs(os.path.join(src, "data"))
            with open(os.path.join(src, "data", "big.bin"), "wb") as f:
                f.write(os.urandom(1 << 20))
            for name in ("main.py", "notes.txt", "scratch.txt"):
                with open(os.path.join(src, name), "w") as f:
                    f.write(name + "\n")
            os.utime(os.path.join(src, "notes.txt"), (1_600_000_000, 1_600_000_000))
            path, digest = _bundle.create(src, use_ignore_file=False, ignore=[])
            try:
                _bundle.extract(path, work)
                base = _bundle.index(path)
            finally:
                os.unlink(path)
            self.assertEqual(int(os.stat(os.path.join(work, "notes.txt")).st_mtime), 1_600_000_000,
                             "unpacking keeps modification times")
            with open(os.path.join(work, "notes.txt"), "a") as f:
                f.write("edited\n")
            os.remove(os.path.join(work, "scratch.txt"))
            os.makedirs(os.path.join(work, "out"))
            with open(os.path.join(work, "out", "result.json"), "w") as f:
                f.write('{"acc": 0.9}')

            delta, _ = _bundle.create_delta(work, base, digest)
            try:
                size = os.path.getsize(delta)
                with tarfile.open(delta, "r:gz") as tf:
                    members = tf.getmembers()
                    self.assertEqual(tf.pax_headers.get("ATLAS.base"), digest)
            finally:
                os.unlink(delta)
            self.assertLess(size, 4096, "the unchanged 1 MiB file is not in the archive")
            self.assertEqual([(m.name, m.pax_headers.get("ATLAS.deleted")) for m in members],
                             [("notes.txt", None), ("out", None), ("out/result.json", None), ("scratch.txt", "1")])


if __name__ == "__main__":
    unittest.main()


class IgnoreTest(unittest.TestCase):
    def test_credentials_are_not_archived(self):
        # A script run by hand from a home directory archives that folder: not its keys.
        with tempfile.TemporaryDirectory() as home:
            for rel in ("train.py", ".ssh/id_ed25519", ".aws/credentials", ".kube/config", ".netrc", ".env",
                        ".config/gcloud/credentials.db", ".config/app.toml"):
                os.makedirs(os.path.dirname(os.path.join(home, rel)), exist_ok=True)
                with open(os.path.join(home, rel), "w") as f:
                    f.write("x")
            names = sorted(rel for rel, _, _ in _bundle.entries(home))
            self.assertEqual(names, [".config", ".config/app.toml", "train.py"])
