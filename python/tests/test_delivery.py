"""Durable, exactly-once delivery: tracked values survive a server restart, a spool left by a
script that ended while the server was down is resent by the next one, and values the server
refuses do not crash the script."""
import glob
import json
import os
import shutil
import signal
import tempfile
import unittest

from tests.atlas_server import AtlasServer, unique, wait_for

# Logs 300 points of "m" in three phases; between phases it waits for "go" on stdin.
RESTART_SCRIPT = r'''
import sys
import foundations
from foundations import _tracker

def wait():
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the test went away")

for i in range(100):
    foundations.log_metric("m", i)
foundations.log_param("phase", 1)
print("delivered", foundations.flush(30), _tracker.current().writer.dir, flush=True)
wait()                                     # the server is down now
for i in range(100, 200):
    foundations.log_metric("m", i)
foundations.log_param("phase", 2)
foundations.set_tag("while-down", "yes")
print("logged while down", flush=True)
wait()                                     # the server is back, on the same port
for i in range(200, 300):
    foundations.log_metric("m", i)
foundations.log_param("phase", 3)
print("delivered at the end", foundations.flush(60), flush=True)
'''

# The same, as a job run by the scheduler: it waits for flag files the test creates.
ENDS_WHILE_DOWN_SCRIPT = r'''
import os, time
import foundations

flags = foundations.load_parameters(log_parameters=False)["flags"]
foundations.log_metric("m", 0)
assert foundations.flush(30)
open(os.path.join(flags, "delivered"), "w").close()
while not os.path.exists(os.path.join(flags, "server-down")):
    time.sleep(0.01)
for i in range(1, 10000):
    foundations.log_metric("m", i)
    if i % 500 == 0:
        time.sleep(0.1)  # points keep coming over a few seconds: many batches, not one
foundations.log_param("done", True)
'''

SCHEDULED_SCRIPT = r'''
import os, time
import foundations

flags = foundations.load_parameters(log_parameters=False)["flags"]

def say(name):
    open(os.path.join(flags, name), "w").close()

def wait(name, timeout=90):
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(flags, name)):
        if time.monotonic() > deadline:
            raise SystemExit("flag {} never came".format(name))
        time.sleep(0.01)

for i in range(100):
    foundations.log_metric("m", i)
assert foundations.flush(30)
say("delivered")
wait("server-down")
for i in range(100, 200):
    foundations.log_metric("m", i)
say("logged-while-down")
wait("server-up")
for i in range(200, 300):
    foundations.log_metric("m", i)
foundations.log_param("done", True)
'''

# Logs values, then (after "go") more values and an artifact while the server is down, and exits.
ORPHAN_SCRIPT = r'''
import sys
import foundations
from foundations import _tracker

for i in range(50):
    foundations.log_metric("m", i)
print("delivered", foundations.flush(30), _tracker.current().writer.dir, _tracker.current().id, flush=True)
if sys.stdin.readline().strip() != "go":
    raise SystemExit("the test went away")
for i in range(50, 120):
    foundations.log_metric("m", i)
foundations.log_params({"lr": 0.1, "opt": {"name": "sgd"}})
foundations.set_tag("orphan")
with open("result.txt", "w") as f:
    f.write("written while the server was down")
foundations.save_artifact("result.txt")
sys.stdout.write("exiting\n")  # one write: print() writes the line and its end apart
sys.stdout.flush()
raise RuntimeError("failed while the server was down")
'''


# Logs one point of a new key through a writer whose rounds are an hour apart, and waits.
FIRST_POINT_SCRIPT = r'''
import sys
import foundations
from foundations import _delivery, _tracker
_delivery.FLUSH_INTERVAL = 3600
job = _tracker.current()
w = _delivery.Writer(job.client, job.id)
w.add_metric("m", 1.5, None)
print("logged", flush=True)
sys.stdin.readline()
assert w.close(30)
'''


def batch_files(spool_dir):
    return sorted(p for p in glob.glob(os.path.join(spool_dir, "*.json")) if not p.endswith("meta.json"))


class DeliveryTest(unittest.TestCase):
    """Each test has a server of its own: they stop and restart it."""

    def setUp(self):
        self.server = AtlasServer(workers=1).start()
        self.addCleanup(self.server.close)
        self.tmp = tempfile.mkdtemp(prefix="atlas-test-delivery-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def project_dir(self, prefix, script):
        name = unique(prefix)
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "main.py"), "w") as f:
            f.write(script)
        return name, d

    def assert_series(self, job_id, key, n):
        s = self.server.metric(job_id, key)
        self.assertEqual(s["total"], n, "every point stored exactly once")
        self.assertEqual([p["value"] for p in s["points"]], list(range(n)))
        self.assertEqual([p["step"] for p in s["points"]], list(range(n)))

    def test_metrics_logged_while_the_server_restarts_are_stored_exactly_once(self):
        project, cwd = self.project_dir("restart", RESTART_SCRIPT)
        script = self.server.popen("main.py", cwd)
        self.addCleanup(script.kill)
        line = script.expect("delivered")
        self.assertIn("delivered True", line)
        spool = line.split()[-1]
        job_id = self.server.jobs(project)[0]["id"]
        self.assertEqual(self.server.job(job_id)["metrics"][0]["count"], 100)

        self.server.stop()
        script.send("go")
        script.expect("logged while down")
        # The writer has spooled the batch it cannot deliver.
        wait_for(lambda: batch_files(spool), what="a spooled batch in " + spool)
        self.server.start()  # same port, same FOUNDATIONS_HOME
        script.send("go")
        self.assertIn("delivered at the end True", script.expect("delivered at the end"))
        code, stderr = script.finish()
        self.assertEqual(code, 0, stderr)
        self.assertIn("cannot reach the Atlas server", stderr)
        self.assertIn("reconnected", stderr)

        job = self.server.wait_job(job_id)
        self.assertEqual(job["state"], "completed")
        self.assert_series(job_id, "m", 300)
        self.assertEqual(job["params"], {"phase": 3})
        self.assertEqual(job["tags"], {"while-down": "yes"})
        self.assertFalse(os.path.exists(spool), "the spool is removed once everything is delivered")

    def test_a_new_keys_first_point_is_sent_at_once(self):
        # Delivery starts with it, not at the writer's next round: a fast loop's points then
        # reach the server while the loop runs, each acknowledgement taking the next batch.
        project, cwd = self.project_dir("first", FIRST_POINT_SCRIPT)
        script = self.server.popen("main.py", cwd)
        self.addCleanup(script.kill)
        script.expect("logged")
        job_id = self.server.jobs(project)[0]["id"]
        wait_for(lambda: self.server.job(job_id)["metrics"], what="the point, an hour before the writer's next round")
        self.assertEqual(self.server.metric(job_id, "m")["points"][0]["value"], 1.5)
        script.send("go")
        code, stderr = script.finish()
        self.assertEqual(code, 0, stderr)

    def test_server_killed_while_batches_are_in_flight(self):
        # SIGKILL lands wherever it lands: before, during or after a batch is stored. Batches
        # stored whose answer was lost are resent and must not be stored twice.
        project, cwd = self.project_dir("kill", r'''
import foundations
for i in range(400000):
    foundations.log_metric("m", i)
    if i == 50000:
        print("started", foundations._tracker.current().id, flush=True)
print("done", foundations.flush(120), flush=True)
''')
        script = self.server.popen("main.py", cwd)
        self.addCleanup(script.kill)
        job_id = script.expect("started").split()[1]
        for _ in range(2):
            wait_for(lambda: self.server.job(job_id)["metrics"], what="the first stored points")
            self.server.stop(sig=signal.SIGKILL)
            self.server.start()
        self.assertIn("done True", script.expect("done", timeout=150))
        code, stderr = script.finish()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(self.server.wait_job(job_id)["state"], "completed")
        series = self.server.metric(job_id, "m")
        self.assertEqual(series["total"], 400000)
        self.assertTrue(all(p["value"] == p["step"] for p in series["points"]), "in order")

    def test_scheduled_job_keeps_running_and_delivers_across_a_server_restart(self):
        project, cwd = self.project_dir("sched-restart", SCHEDULED_SCRIPT)
        flags = os.path.join(self.tmp, "flags-" + project)
        os.makedirs(flags)
        with open(os.path.join(cwd, "submit.py"), "w") as f:
            f.write("import sys, foundations\nprint(foundations.submit(command=['main.py'], "
                    "params={'flags': sys.argv[1]}).job_name())\n")
        r = self.server.run("submit.py", cwd, args=[flags])
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()

        flag = lambda name: os.path.exists(os.path.join(flags, name))  # noqa: E731
        wait_for(lambda: flag("delivered"), timeout=60, what="the job to deliver its first values")
        self.server.stop()
        open(os.path.join(flags, "server-down"), "w").close()
        wait_for(lambda: flag("logged-while-down"), timeout=60, what="the job to log while the server is down")
        # A scheduled job spools into its own directory, spool/jobs/<id>/<writer>/.
        wait_for(lambda: glob.glob(os.path.join(self.server.spool, "jobs", job_id, "*", "0*.json")), what="a spooled batch")
        self.server.start()
        open(os.path.join(flags, "server-up"), "w").close()

        job = self.server.wait_job(job_id, timeout=90)
        self.assertEqual(job["state"], "completed", self.server.logs(job_id))
        self.assert_series(job_id, "m", 300)
        self.assertEqual(job["params"], {"done": True})

    def test_values_of_a_job_that_ends_while_the_server_is_down_are_all_stored(self):
        # The job logs for a while, batch after batch, while the server is down, and ends before
        # it is back: what the SDK could not deliver (and had not even put in a batch) must be
        # in the job's spool when its process ends, and stored when the server records the end.
        project, cwd = self.project_dir("ends-while-down", ENDS_WHILE_DOWN_SCRIPT)
        with open(os.path.join(cwd, "job.config.yaml"), "w") as f:
            f.write("worker:\n  environment:\n    FOUNDATIONS_FLUSH_TIMEOUT: '1'\n")
        flags = os.path.join(self.tmp, "flags-" + project)
        os.makedirs(flags)
        with open(os.path.join(cwd, "submit.py"), "w") as f:
            f.write("import sys, foundations\nprint(foundations.submit(command=['main.py'], "
                    "params={'flags': sys.argv[1]}).job_name())\n")
        r = self.server.run("submit.py", cwd, args=[flags])
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        wait_for(lambda: os.path.exists(os.path.join(flags, "delivered")), timeout=60, what="the first values")
        self.server.stop()
        open(os.path.join(flags, "server-down"), "w").close()
        # The job's supervisor writes how it ended when the job's process is gone.
        wait_for(lambda: os.path.exists(os.path.join(self.server.home, "run", job_id + ".exit")), timeout=120,
                 what="the job to end while the server is down")
        self.server.start()
        job = self.server.wait_job(job_id, timeout=90)
        self.assertEqual(job["state"], "completed", self.server.logs(job_id))
        self.assert_series(job_id, "m", 10000)
        self.assertEqual(job["params"], {"done": True})

    def test_spool_left_by_a_script_is_resent_by_the_next_one(self):
        project, cwd = self.project_dir("orphan", ORPHAN_SCRIPT)
        env = self.server.env(FOUNDATIONS_FLUSH_TIMEOUT="0.5")
        script = self.server.popen("main.py", cwd, env=env)
        self.addCleanup(script.kill)
        _, ok, spool, job_id = script.expect("delivered").split()
        self.assertEqual(ok, "True")

        self.server.stop()
        script.send("go")
        script.expect("exiting")
        code, stderr = script.finish()
        self.assertEqual(code, 1, stderr)
        self.assertIn("kept in", stderr)
        left = batch_files(spool)
        self.assertTrue(left, "the undelivered batches stay in the spool")

        self.server.start()
        # As if the server had stored the first spooled batch but its answer was lost: the resend
        # must not store it twice.
        with open(left[0], "rb") as f:
            batch = json.loads(f.read())
        for a in batch.get("artifacts", ()):
            with open(os.path.join(spool, "blobs", a["digest"].split(":", 1)[1]), "rb") as f:
                self.server.request("PUT", "/api/v1/blobs/" + a["digest"], data=f.read())
        self.server.request("POST", "/api/v1/jobs/{}/track".format(job_id), body=batch)

        other, other_cwd = self.project_dir("next", "import foundations\nfoundations.log_metric('x', 1)\n")
        r = self.server.run("main.py", other_cwd)  # the default FOUNDATIONS_FLUSH_TIMEOUT: time to resend
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(spool), "the next tracked script resent the spool and removed it")

        job = self.server.job(job_id)
        self.assert_series(job_id, "m", 120)
        self.assertEqual(job["params"], {"lr": 0.1, "opt_name": "sgd"})
        self.assertEqual(job["tags"], {"orphan": ""})
        self.assertEqual(self.server.artifact(job_id, "result.txt"), b"written while the server was down")
        # How the script ended was kept too, with its output and the archive of its folder.
        self.assertEqual(job["state"], "failed")
        self.assertIn("failed while the server was down", job["reason"])
        log = self.server.logs(job_id)
        self.assertIn("exiting\n", log)
        rest = log.replace("exiting\n", "", 1)  # stdout and stderr are two pipes: where it lands may vary
        self.assertTrue(rest.startswith("delivered True {} {}\nTraceback".format(spool, job_id)), log)
        self.assertTrue(rest.endswith("RuntimeError: failed while the server was down\n"), log)
        self.assertTrue(job.get("archive_digest"))
        self.assertEqual(self.server.jobs(other)[0]["state"], "completed")

    def test_values_the_server_refuses_do_not_crash_the_script(self):
        project, cwd = self.project_dir("refused", r'''
import json
import foundations
from foundations import _tracker

foundations.log_metric("before", 1)
print("first", foundations.flush(30), flush=True)
writer = _tracker.current().writer
# Values the SDK would refuse, put straight into the writer: the server answers 400.
writer.add_param("huge", 10 ** 400)
writer.add_metric("bad key\x00", 1, None)
foundations.log_param("kept", "yes")
# A series long enough for several batches: the refused one is split while the next ones are
# already encoded; the series must still be complete and in order.
for i in range(250000):
    foundations.log_metric("series", i)
print("second", foundations.flush(30), flush=True)
foundations.log_metric("after", 3)
print("third", foundations.flush(30), flush=True)
''')
        r = self.server.run("main.py", cwd)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["first", "True", "second", "True", "third", "True"])
        self.assertIn("refused", r.stderr)
        self.assertIn("huge", r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        job = self.server.wait_job(self.server.jobs(project)[0]["id"])
        self.assertEqual(job["state"], "completed")
        self.assertEqual({m["key"]: m["last"] for m in job["metrics"]}, {"before": 1, "series": 249999, "after": 3})
        self.assertEqual(job["params"], {"kept": "yes"})
        series = self.server.metric(job["id"], "series")
        self.assertEqual(series["total"], 250000)
        # Downsampled to 100,000 points, first and last kept: values and steps still agree.
        self.assertTrue(all(p["value"] == p["step"] for p in series["points"]))
        self.assertEqual(series["points"][-1]["step"], 249999)
