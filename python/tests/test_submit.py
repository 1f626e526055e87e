"""foundations.submit() from a driver script: queued jobs, their parameters, DeploymentWrapper,
bundle reuse, and get_metrics_for_all_jobs."""
import json

from tests.atlas_server import ServerTestCase, unique

JOB_SCRIPT = r'''
import json, sys
import foundations
params = foundations.load_parameters()
print("params:", json.dumps(params, sort_keys=True))
if params.get("fail"):
    raise RuntimeError("asked to fail")
foundations.log_metric("score", params.get("lr", 0) * 10)
foundations.log_metric("score", params.get("lr", 0) * 100)
foundations.set_tag("kind", "search")
'''

DRIVER_SCRIPT = r'''
import datetime, json, os, sys
import foundations
from foundations import _bundle
from foundations._client import Client

# Count how often the folder is bundled and uploaded.
bundled, uploaded = [0], [0]
_create, _put = _bundle.create, Client.put_blob_file
def create(*a, **k):
    bundled[0] += 1
    return _create(*a, **k)
def put(self, digest, path):
    done = _put(self, digest, path)
    uploaded[0] += bool(done)
    return done
_bundle.create, Client.put_blob_file = create, put

lrs = json.loads(sys.argv[1])
deployments = [foundations.submit(scheduler_config="scheduler", command=["main.py"],
                                  params={"lr": lr, "model": {"depth": 2, "widths": [4, 8]}}) for lr in lrs]
early = [d.get_job_status() for d in deployments]
out = {"ids": [d.job_name() for d in deployments], "early": early, "bundled": bundled[0], "uploaded": uploaded[0],
       "jobs": []}
for d in deployments:
    final = d.wait_for_deployment_to_complete(log_output=False)
    details = d.get_job_details()
    try:
        d.get_metric("no-such-metric")
        missing = None
    except KeyError as e:
        missing = "KeyError"
    out["jobs"].append({
        "final": final, "status": d.get_job_status(), "score": d.get_metric("score"), "lr": d.get_param("lr"),
        "depth": d.get_param("model_depth"), "missing": missing, "logs": d.get_job_logs(),
        "details": {k: (v.isoformat() if isinstance(v, datetime.datetime) else v) for k, v in details.items()},
    })
print(json.dumps(out))
'''


class SubmitTest(ServerTestCase):
    workers = 2

    def setUp(self):
        self.project, self.cwd = self.project_dir("search", files={"main.py": JOB_SCRIPT, "driver.py": DRIVER_SCRIPT})
        with open(self.cwd + "/README.txt", "w") as f:  # a folder of its own: no other test has its bundle
            f.write(self.project)

    def drive(self, lrs, env=None):
        r = self.server.run("driver.py", self.cwd, args=[json.dumps(lrs)], env=env, timeout=150)
        self.assertEqual(r.returncode, 0, "driver failed:\n" + r.stdout + r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def test_hyperparameter_search(self):
        first = self.drive([0.1, 0.01, 0.001])
        second = self.drive([0.5], env=self.server.env(FOUNDATIONS_COMMAND_LINE="True"))
        ids = first["ids"] + second["ids"]

        # The driver never shows up as a job, with or without FOUNDATIONS_COMMAND_LINE.
        jobs = self.server.jobs(self.project)
        self.assertEqual(sorted(j["id"] for j in jobs), sorted(ids))
        self.assertEqual({j["mode"] for j in jobs}, {"scheduled"})

        # An unchanged folder is bundled once per process and uploaded once in all.
        self.assertEqual((first["bundled"], first["uploaded"]), (1, 1))
        self.assertEqual((second["bundled"], second["uploaded"]), (1, 0))
        self.assertEqual(len({self.server.job(i)["bundle_digest"] for i in ids}), 1)

        for lr, job_id, seen in zip([0.1, 0.01, 0.001, 0.5], ids, first["jobs"] + second["jobs"]):
            with self.subTest(lr=lr):
                job = self.server.job(job_id)
                self.assertEqual(job["state"], "completed", self.server.logs(job_id))
                self.assertEqual(job["command"], ["main.py"])
                self.assertEqual(job["submitted_params"], {"lr": lr, "model": {"depth": 2, "widths": [4, 8]}})
                # load_parameters() returned the job's parameters and logged them, flattened.
                self.assertIn('params: {"lr": %s, "model": {"depth": 2, "widths": [4, 8]}}' % lr, self.server.logs(job_id))
                self.assertEqual(job["params"], {"lr": lr, "model_depth": 2, "model_widths_0": 4, "model_widths_1": 8})
                self.assertEqual([p["value"] for p in self.server.metric(job_id, "score")["points"]], [lr * 10, lr * 100])
                self.assertEqual(job["tags"], {"kind": "search"})

                # What the driver saw through DeploymentWrapper.
                self.assertEqual(seen["final"], "completed")
                self.assertEqual(seen["status"], "completed")
                self.assertEqual(seen["score"], lr * 100)
                self.assertEqual(seen["lr"], lr)
                self.assertEqual(seen["depth"], 2)
                self.assertEqual(seen["missing"], "KeyError")
                self.assertIn("params: ", seen["logs"])
                d = seen["details"]
                self.assertEqual((d["job_id"], d["project_name"], d["status"]), (job_id, self.project, "completed"))
                self.assertEqual(d["metrics"], {"score": lr * 100})
                self.assertEqual(d["parameters"], job["params"])
                self.assertEqual(d["tags"], ["kind"])
                self.assertEqual(d["exit_code"], 0)
                self.assertTrue(d["creation_time"] <= d["start_time"] <= d["completed_time"])
        for status in first["early"] + second["early"]:
            self.assertIn(status, ("queued", "running", "completed"))

    def test_failed_job_and_job_without_params(self):
        r = self.run_script(r'''
import json, foundations
failing = foundations.submit(scheduler_config="scheduler", command=["main.py"], params={"fail": True})
plain = foundations.submit(command="main.py")
print(json.dumps([failing.wait_for_deployment_to_complete(log_output=False), failing.get_job_status(),
                  plain.wait_for_deployment_to_complete(log_output=False), failing.job_name(), plain.job_name()]))
''', self.cwd, name="driver2.py")
        failing_state, failing_status, plain_state, failing_id, plain_id = json.loads(r.stdout)
        self.assertEqual((failing_state, failing_status, plain_state), ("failed", "failed", "completed"))
        failed = self.server.job(failing_id)
        self.assertNotEqual(failed["exit_code"], 0)
        self.assertIn("asked to fail", self.server.logs(failing_id))
        self.assertEqual(failed["params"], {"fail": True})
        plain = self.server.job(plain_id)
        self.assertIn("params: {}", self.server.logs(plain_id), "load_parameters() is {} without params")
        self.assertEqual(plain["params"], {})
        self.assertEqual(len(self.server.jobs(self.project)), 2)

    def test_jobs_are_named(self):
        r = self.run_script(r'''
import json, foundations
named = foundations.submit(command=["main.py"], params={"lr": 1}, name="baseline: lr=1")
unnamed = foundations.submit(command=["main.py"])
refused = []
for name in ("x" * 101, "two\nlines", " padded", 7):
    try:
        foundations.submit(command=["main.py"], name=name)
        refused.append(None)
    except (TypeError, ValueError) as e:
        refused.append(type(e).__name__)
named.wait_for_deployment_to_complete(log_output=False)
print(json.dumps([named.job_name(), unnamed.job_name(), named.get_job_details()["name"], refused]))
''', self.cwd, name="driver5.py")
        named_id, unnamed_id, details_name, refused = json.loads(r.stdout)
        self.assertEqual(refused, ["ValueError", "ValueError", "ValueError", "TypeError"])
        self.assertEqual(self.server.job(named_id)["name"], "baseline: lr=1")
        self.assertEqual(details_name, "baseline: lr=1")
        self.assertRegex(self.server.job(unnamed_id)["name"], r"^[a-z]+-[a-z]+$", "a made-up name")
        self.assertEqual(len(self.server.jobs(self.project)), 2, "nothing refused was queued")

    def test_stream_job_logs(self):
        r = self.run_script(r'''
import foundations
d = foundations.submit(command=["main.py"], params={"lr": 2}, stream_job_logs=True)
print("status:", d.get_job_status())
''', self.cwd, name="driver3.py")
        self.assertIn('params: {"lr": 2}', r.stdout)
        self.assertIn("status: completed", r.stdout)

    def test_submit_refuses_bad_arguments(self):
        r = self.run_script(r'''
import json, math, foundations
out = []
for kwargs in ({"params": {"lr": math.nan}}, {"params": {"f": object()}}, {"params": [1]}, {"num_gpus": -1},
               {"ram": 0}, {"job_directory": "/no/such/dir"}, {"scheduler_config": "nowhere"}, {"bogus": 1}):
    try:
        foundations.submit(command=["main.py"], **kwargs)
        out.append(None)
    except (TypeError, ValueError) as e:
        out.append(type(e).__name__)
print(json.dumps(out))
''', self.cwd, name="driver4.py")
        self.assertEqual(json.loads(r.stdout), ["TypeError", "TypeError", "TypeError", "ValueError", "ValueError",
                                                "ValueError", "ValueError", "TypeError"])
        self.assertEqual(self.server.jobs(self.project), [])

    def test_get_metrics_for_all_jobs(self):
        self.drive([0.2, 0.3])
        other = unique("nothing-here")
        r = self.run_script(r'''
import importlib.util, json, sys, foundations
rows = foundations.get_metrics_for_all_jobs(sys.argv[1])
kind = type(rows).__name__
if importlib.util.find_spec("pandas") is None:
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows), kind
else:                                    # a pandas DataFrame when pandas is installed
    assert kind == "DataFrame", kind
    rows = rows.to_dict("records")
try:
    foundations.get_metrics_for_all_jobs(sys.argv[2])
    unknown = None
except ValueError as e:
    unknown = str(e)
print(json.dumps({"rows": rows, "unknown": unknown}, default=str))
''', self.cwd, name="report.py", args=[self.project, other])
        out = json.loads(r.stdout)
        self.assertIn(other, out["unknown"])
        rows = sorted(out["rows"], key=lambda row: row["lr"])
        self.assertEqual([(row["lr"], row["score"], row["status"]) for row in rows],
                         [(0.2, 0.2 * 100, "completed"), (0.3, 0.3 * 100, "completed")])
        for row in rows:
            self.assertEqual(row["project_name"], self.project)
            self.assertEqual(row["model_depth"], 2)
            self.assertEqual(row["tags"], {"kind": "search"})
            self.assertEqual(row["tag_kind"], "search", "one tag_<key> column per tag, as in Atlas")
            self.assertTrue(row["job_id"] and row["creation_time"] and row["completed_time"])
        self.assertEqual(len(rows), 2, "the report script itself is not a row, nor a job")
        self.assertEqual(len(self.server.jobs(self.project)), 2)


STOP_DRIVER = r'''
import json, sys
import foundations
d = foundations.submit(scheduler_config="scheduler", command=["slow.py"])
for line in d.stream_job_logs():  # follows the job's output until it says it waits
    if "waiting" in line:
        break
stopped = d.stop()
print(json.dumps({"state": stopped["state"], "reason": stopped.get("reason"), "status": d.get_job_status()}))
'''

SLOW_JOB = r'''
import signal, sys, time
def term(*_):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("waiting", flush=True)
while True:
    time.sleep(0.05)
'''


class StopTest(ServerTestCase):
    def test_stop_returns_once_the_job_has_stopped(self):
        project, cwd = self.project_dir("stop", files={"slow.py": SLOW_JOB, "driver.py": STOP_DRIVER})
        r = self.server.run("driver.py", cwd, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["state"], "stopped", "stop() waits until the job has really stopped")
        self.assertEqual(out["status"], "stopped")
        self.assertRegex(out["reason"], r"^exited after SIGTERM in [0-9.]+ s$")
