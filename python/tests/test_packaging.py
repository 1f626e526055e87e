"""The SDK installs with pip from the wheel `make build` writes, offline."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class WheelTest(unittest.TestCase):
    def test_wheel_installs_and_imports(self):
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            if os.environ.get("CI") == "true":
                self.fail("pip is required (CI=true)")
            self.skipTest("pip is not available")
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "python-wheel.py"), tmp],
                                 capture_output=True, text=True, check=True).stdout.strip()
            self.assertTrue(out.endswith("-py3-none-any.whl"), out)
            site = os.path.join(tmp, "site")
            subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", site, out],
                           capture_output=True, text=True, check=True)
            r = subprocess.run([sys.executable, "-c", "import foundations, os; print(os.path.dirname(foundations.__file__)); "
                                "print(sorted(n for n in dir(foundations) if not n.startswith('_')))"],
                               capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONPATH=site))
            where, names = r.stdout.splitlines()
            self.assertTrue(where.startswith(site), where)
            for name in ("log_metric", "log_param", "log_params", "set_tag", "save_artifact", "load_parameters",
                         "submit", "get_metrics_for_all_jobs", "artifacts", "parameters"):
                self.assertIn(name, names)
            r = subprocess.run([sys.executable, "-c", "from foundations.parameters.generate_random_parameters import "
                                "generate_random_parameters; from foundations.artifacts import create_syncable_directory"],
                               capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=site))
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
