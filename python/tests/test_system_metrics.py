"""System metrics: the in-job side samples the CPU and memory of the job's processes and the use
of its GPUs (a fake nvidia-smi on PATH: these machines have no GPU) into system/ series."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from foundations import _system
from tests.atlas_server import AtlasServer, unique

# nvidia-smi as the query of foundations/_system.py sees it on a machine with four GPUs; the
# memory of GPU 2 grows by 1 MiB a call, so that its peak moves.
FAKE_NVIDIA_SMI = r'''#!/bin/sh
if [ "$*" != "--query-gpu=index,uuid,utilization.gpu,memory.used --format=csv,noheader,nounits" ]; then
    echo "fake nvidia-smi: unexpected arguments: $*" >&2
    exit 9
fi
n=$(cat "$0.calls" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$0.calls"
echo "0, GPU-0a0a0a0a-0000-0000-0000-000000000000, 5, 100"
echo "1, GPU-1b1b1b1b-1111-1111-1111-111111111111, 37, 2048"
echo "2, GPU-2c2c2c2c-2222-2222-2222-222222222222, 81, $((4000 + n))"
echo "3, GPU-3d3d3d3d-3333-3333-3333-333333333333, [N/A], 512"
'''

# The job: a child process holds 64 MiB and keeps a core busy until the server has two samples
# of the job's CPU and one of its GPU; the job records which GPU it was given.
JOB = r'''
import os, subprocess, sys, time, urllib.parse
import foundations
from foundations._client import Client
foundations.log_param("cuda", os.environ.get("CUDA_VISIBLE_DEVICES"))
child = subprocess.Popen([sys.executable, "-c", """
import select, sys
hog = b"x" * (64 << 20)
while not select.select([sys.stdin], [], [], 0)[0]:
    pass
"""], stdin=subprocess.PIPE)
client = Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], os.environ["FOUNDATIONS_TOKEN"])

def points(key):
    try:
        return client.json("GET", "/api/v1/jobs/{}/metrics/{}".format(
            os.environ["FOUNDATIONS_JOB_ID"], urllib.parse.quote(key, safe="")))["points"]
    except Exception:
        return []

deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if len(points("system/cpu_percent")) >= 2 and points("system/gpu0/memory_mb"):
        break
    time.sleep(0.1)
child.stdin.close()
child.wait()
'''

DRIVER = r'''
import foundations
d = foundations.submit(scheduler_config="scheduler", command=["main.py"], num_gpus=1)
print(d.job_name())
'''


class SystemMetricsUnitTest(unittest.TestCase):
    def test_interval(self):
        self.assertEqual(_system.interval({}), 5.0)
        self.assertEqual(_system.interval({_system.INTERVAL_ENV: "2.5"}), 2.5)
        self.assertEqual(_system.interval({_system.INTERVAL_ENV: "0.1"}), 1.0)
        self.assertEqual(_system.interval({_system.INTERVAL_ENV: "junk"}), 5.0)
        for off in ("0", "off", "-3", "nan"):
            self.assertIsNone(_system.interval({_system.INTERVAL_ENV: off}), off)

    def test_visible_gpus(self):
        self.assertIsNone(_system.visible_gpus({}))
        self.assertIsNone(_system.visible_gpus({"NVIDIA_VISIBLE_DEVICES": "all"}))
        self.assertEqual(_system.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}), [])
        self.assertEqual(_system.visible_gpus({"NVIDIA_VISIBLE_DEVICES": "void"}), [])
        self.assertEqual(_system.visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 1", "NVIDIA_VISIBLE_DEVICES": "all"}),
                         ["3", "1"])
        self.assertEqual(_system.visible_gpus({"CUDA_VISIBLE_DEVICES": "2,-1,0"}), ["2"])

    def test_pick_gpus(self):
        rows = _system.parse_gpus("0, GPU-aaaa1111, 5, 100\n1, GPU-bbbb2222, [N/A], 200\n\n")
        self.assertEqual(rows, [("0", "GPU-aaaa1111", 5.0, 100.0), ("1", "GPU-bbbb2222", None, 200.0)])
        self.assertEqual(_system.pick_gpus(rows, None), rows)
        self.assertEqual(_system.pick_gpus(rows, ["1", "0"]), [rows[1], rows[0]], "in the job's order")
        self.assertEqual(_system.pick_gpus(rows, ["GPU-bbbb"]), [rows[1]], "a UUID prefix, as CUDA takes it")
        self.assertEqual(_system.pick_gpus(rows, ["5"]), [], "not the job's")
        self.assertEqual(_system.pick_gpus(rows[:1], ["5"]), rows[:1], "a container sees only its GPUs, from 0")

    def test_samples_the_process_tree(self):
        class Writer:
            def __init__(self):
                self.points = {}

            def add_metric(self, key, value, step):
                self.points.setdefault(key, []).append((step, value))

        hog = subprocess.Popen([sys.executable, "-c", "import sys; hog = b'x' * (48 << 20); print(1, flush=True); "
                                "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        shell = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        try:
            hog.stdout.readline()  # it holds the memory
            # The tree of this test's process holds the hog; the shell's holds only itself.
            w = Writer()
            s = _system.Sampler(w, os.getpid(), 1.0, env={"PATH": ""})
            s.sample()
            s.sample()
            rss = [v for _, v in w.points["system/rss_mb"]]
            self.assertGreaterEqual(rss[-1], 48)
            self.assertEqual(w.points["system/peak_rss_mb"][-1][1], max(rss))
            self.assertEqual(len(w.points["system/cpu_percent"]), 1, "CPU needs two readings")
            steps = [st for st, _ in w.points["system/rss_mb"]]
            self.assertEqual(steps, sorted(set(steps)), "steps grow")
            other = Writer()
            _system.Sampler(other, shell.pid, 1.0, env={"PATH": ""}).sample()
            self.assertLess(other.points["system/rss_mb"][-1][1], 48)
            gone = Writer()
            _system.Sampler(gone, 0, 1.0, env={"PATH": ""}).sample()
            self.assertEqual(gone.points, {}, "nothing of a process that is not there")
        finally:
            for p in (hog, shell):
                p.stdin.close()
                p.wait()
            hog.stdout.close()


class SystemMetricsJobTest(unittest.TestCase):
    """A job with one GPU of four, on a server that gives it GPU 2."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atlas-test-sysmet-")
        bindir = os.path.join(cls.tmp, "bin")
        os.makedirs(bindir)
        smi = os.path.join(bindir, "nvidia-smi")
        with open(smi, "w") as f:
            f.write(FAKE_NVIDIA_SMI)
        os.chmod(smi, 0o755)
        cls.server = AtlasServer(args=["--gpus", "2"], env={
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), _system.INTERVAL_ENV: "1"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def values(self, job_id, key):
        pts = self.server.metric(job_id, key)["points"]
        self.assertTrue(pts, "{} has points".format(key))
        steps = [p["step"] for p in pts]
        self.assertEqual(steps, sorted(set(steps)), "{}: steps grow".format(key))
        return [p["value"] for p in pts]

    def test_job_records_its_processes_and_its_gpu(self):
        project = unique("sysmet")
        cwd = os.path.join(self.tmp, project)
        os.makedirs(cwd)
        for name, text in (("main.py", JOB), ("driver.py", DRIVER)):
            with open(os.path.join(cwd, name), "w") as f:
                f.write(text)
        r = self.server.run("driver.py", cwd, env=self.server.env(FOUNDATIONS_COMMAND_LINE="True"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        job_id = r.stdout.strip().splitlines()[-1]
        job = self.server.wait_job(job_id, timeout=180)
        self.assertEqual(job["state"], "completed", self.server.logs(job_id))
        self.assertEqual(job["params"]["cuda"], "2")

        rss = self.values(job_id, "system/rss_mb")
        self.assertGreaterEqual(max(rss), 64, "the child's memory counts")
        self.assertEqual(self.values(job_id, "system/peak_rss_mb")[-1], max(rss))
        cpu = self.values(job_id, "system/cpu_percent")
        self.assertGreater(max(cpu), 1, "the busy child counts")
        self.assertLessEqual(max(cpu), 100 * os.cpu_count() * 1.5)

        # Only the job's GPU, as the job numbers it (cuda:0 is the machine's GPU 2).
        self.assertEqual(set(self.values(job_id, "system/gpu0/util_percent")), {81})
        mem = self.values(job_id, "system/gpu0/memory_mb")
        self.assertTrue(all(4000 < m < 5000 for m in mem), mem)
        self.assertEqual(self.values(job_id, "system/gpu0/peak_memory_mb")[-1], max(mem))
        keys = {m["key"] for m in self.server.job(job_id)["metrics"]}
        self.assertEqual({k for k in keys if k.startswith("system/")}, {
            "system/cpu_percent", "system/rss_mb", "system/peak_rss_mb", "system/gpu0/util_percent",
            "system/gpu0/memory_mb", "system/gpu0/peak_memory_mb"})


if __name__ == "__main__":
    unittest.main()
