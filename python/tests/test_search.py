"""foundations.search() from a driver script, and foundations.should_stop() in its trials."""
import json
import os

from tests.atlas_server import ServerTestCase

# Trial n's loss at step s is Q[n] / s (n is the end of its job id, "<search>-t<n>"), so the
# order of the trials at every rung is known.
TRIAL = r'''
import os, sys
import foundations
params = foundations.load_parameters()
n = int(os.environ["FOUNDATIONS_JOB_ID"].rsplit("-t", 1)[1])
q = [5, 3, 8, 1][n]
for step in range(1, 10):
    foundations.log_metric("loss", q / step, step=step)
    if foundations.should_stop():
        print("asked to stop at step", step, flush=True)
        sys.exit(0)
print("ran to the end with", params["lr"], flush=True)
'''

DRIVER = r'''
import json, sys
import foundations
spec = json.loads(sys.argv[1])
try:
    s = foundations.search(command="main.py", **spec)
except ValueError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(0)
state = s.wait_for_search_to_complete()
print(json.dumps({"id": s.search_id(), "state": state, "best": s.get_best(), "details": s.get_search_details(),
                  "trials": [d.job_name() for d in s.trials()]}))
'''

# A trial that never asks: trial 0 runs its three steps; trial 1 logs a worse value at step 1,
# then waits to be stopped.
SILENT_TRIAL = r'''
import os, time
import foundations
n = int(os.environ["FOUNDATIONS_JOB_ID"].rsplit("-t", 1)[1])
if n == 0:
    for step in range(1, 4):
        foundations.log_metric("loss", 1 / step, step=step)
else:
    foundations.log_metric("loss", 5.0, step=1)
    print("waiting to be stopped", flush=True)
    while True:
        time.sleep(1)
'''

# A driver that stops its search once its first trial runs, and prints what stop() returned.
STOPPER = r'''
import json, sys, time
import foundations
s = foundations.search(command="main.py", **json.loads(sys.argv[1]))
while not any(t["state"] == "running" for t in s.get_search_details().get("trials") or ()):  # none yet at first
    time.sleep(0.05)
print(json.dumps(s.stop()))
'''

ASHA = {"method": "asha", "metric": "loss", "smaller_is_better": True, "max_trials": 4, "max_concurrent_trials": 1,
        "max_steps": 9, "reduction_factor": 3, "params": {"lr": {"type": "log_uniform", "min": 0.001, "max": 0.1}}}


class SearchTest(ServerTestCase):
    workers = 1

    def drive(self, cwd, **spec):
        r = self.server.run("driver.py", cwd, args=[json.dumps(spec)], timeout=150)
        self.assertEqual(r.returncode, 0, "driver failed:\n" + r.stdout + r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def test_a_trial_asks_whether_the_search_stopped_it(self):
        project, cwd = self.project_dir("search", files={"main.py": TRIAL, "driver.py": DRIVER})
        out = self.drive(cwd, search=ASHA)
        self.assertEqual(out["state"], "completed", out)
        # At step 1 (loss 5, 3, 8, 1 in that order) trial 2 has two better before it and is the
        # only one asha (keeping one in three) stops; at step 3 the other three each lead.
        trials = out["details"]["trials"]
        self.assertEqual(sorted(out["trials"]), sorted(t["job_id"] for t in trials))
        self.assertEqual([t["state"] for t in trials], ["completed", "completed", "stopped", "completed"])
        stopped = trials[2]
        self.assertEqual(stopped["stopped_at"], 1)
        self.assertTrue(stopped["reason"].startswith("early stopped by search {} at step 1 (".format(out["id"])), stopped)
        self.assertIn("asked to stop at step 1", self.server.logs(stopped["job_id"]))
        self.assertEqual(self.server.job(stopped["job_id"])["exit_code"], 0, "it left by itself when asked")
        for t in (trials[0], trials[1], trials[3]):
            self.assertIn("ran to the end with", self.server.logs(t["job_id"]))
            job = self.server.job(t["job_id"])
            self.assertEqual(job["search_id"], out["id"])
            self.assertEqual(job["tags"], {"search": out["id"]})
            self.assertTrue(0.001 <= job["submitted_params"]["lr"] <= 0.1)
        self.assertEqual(out["best"]["trial"], 3)
        self.assertAlmostEqual(out["best"]["value"], 1 / 9)

    def test_a_trial_that_never_asks_is_stopped_all_the_same(self):
        project, cwd = self.project_dir("search", files={"main.py": SILENT_TRIAL, "driver.py": DRIVER})
        out = self.drive(cwd, search=dict(ASHA, max_trials=2, max_steps=3))
        self.assertEqual(out["state"], "completed", out)
        first, second = out["details"]["trials"]
        self.assertEqual(first["state"], "completed")
        self.assertEqual(second["state"], "stopped", second)
        self.assertEqual(second["stopped_at"], 1)
        self.assertRegex(second["reason"], r"^early stopped by search {} at step 1 \(exited after SIGTERM in ".format(out["id"]))
        self.assertIn("waiting to be stopped", self.server.logs(second["job_id"]))

    def test_stop_returns_once_the_search_and_its_trials_have_stopped(self):
        project, cwd = self.project_dir("search", files={"main.py": "import time\nprint('running', flush=True)\ntime.sleep(600)\n",
                                                         "driver.py": STOPPER})
        r = self.server.run("driver.py", cwd, args=[json.dumps({"search": dict(ASHA, max_trials=3)})], timeout=150)
        self.assertEqual(r.returncode, 0, "driver failed:\n" + r.stdout + r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["state"], "stopped", out)
        self.assertEqual(len(out["trials"]), 1, "no trial after the stop")
        self.assertEqual(out["trials"][0]["state"], "stopped", out["trials"][0])

    def test_a_search_from_a_file_and_bad_searches(self):
        project, cwd = self.project_dir("search", files={"main.py": "import foundations\nfoundations.log_metric('acc', foundations.load_parameters()['n'])\n",
                                                         "driver.py": DRIVER, "grid.yaml": "search:\n  method: grid\n  metric: acc\n  smaller_is_better: false\n  params:\n    n: {type: int, min: 1, max: 3}\n"})
        out = self.drive(cwd, config=os.path.join(cwd, "grid.yaml"))
        self.assertEqual(out["state"], "completed", out)
        self.assertEqual(sorted(t["params"]["n"] for t in out["details"]["trials"]), [1, 2, 3])
        self.assertEqual(out["best"]["params"], {"n": 3})

        bad = self.drive(cwd, search=dict(ASHA, method="bayes"))
        self.assertEqual(bad["error"], 'search: foundations.search(search=...):1: method: unknown method "bayes": want grid, random, asha or median')
        bad = self.drive(cwd, search=dict(ASHA, params={"lr": {"type": "uniform", "min": 1, "max": 0}}))
        self.assertIn("min 1 is greater than max 0", bad["error"])
        self.assertEqual(len(self.server.jobs(project)), 3, "nothing more was queued")
