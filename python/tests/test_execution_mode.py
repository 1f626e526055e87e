"""Execution mode: `python main.py` with `import foundations` records a job on the local server."""
import io
import json
import os
import tarfile

from tests.atlas_server import ServerTestCase, unique

FULL_SCRIPT = r'''
import sys
import foundations

print("imported", flush=True)
sys.stdin.readline()                       # the test checks that no job exists yet

foundations.log_param("learning_rate", 0.01)
print("tracked", flush=True)
sys.stdin.readline()                       # the test checks that the job exists and is running

foundations.log_params({"epochs": 3, "model": {"layers": 2, "act": "relu"}})
for i in range(10):
    foundations.log_metric("loss", 1.0 / (i + 1))
foundations.log_metric("accuracy", 0.5, step=100)
foundations.log_metric("accuracy", 0.75, step=200)
foundations.set_tag("stage", "test")
foundations.set_tag("baseline")
with open("notes.txt", "w") as f:
    f.write("trained\n")
with open("weights.bin", "wb") as f:
    f.write(bytes(range(256)) * 4)
foundations.save_artifact("notes.txt")
foundations.save_artifact("weights.bin", key="model-weights")
with open("written-after.txt", "w") as f:
    f.write("in the archive too\n")
print("done")
'''


class ExecutionModeTest(ServerTestCase):

    def total_jobs(self):
        return self.server.get("/api/v1/jobs", limit=1)["total"]

    def test_records_job_lazily_with_everything_tracked(self):
        project, cwd = self.project_dir("exec")
        with open(cwd + "/main.py", "w") as f:
            f.write(FULL_SCRIPT)
        with open(cwd + "/data.csv", "w") as f:
            f.write("x,y\n1,2\n")
        script = self.server.popen("main.py", cwd)
        try:
            script.expect("imported")
            self.assertEqual(self.server.jobs(project), [], "importing foundations must not record a job")
            script.send()
            script.expect("tracked")
            jobs = self.server.jobs(project)
            self.assertEqual(len(jobs), 1, "the first tracking call records the job")
            self.assertEqual(jobs[0]["state"], "running")
            self.assertEqual(jobs[0]["mode"], "execution")
            script.send()
            script.expect("done")
            code, stderr = script.finish()
        finally:
            script.kill()
        self.assertEqual(code, 0, stderr)
        self.assertIn("Tracking this run as job", stderr)

        job = self.server.wait_job(jobs[0]["id"])
        self.assertEqual(job["state"], "completed", job)
        self.assertEqual(job["exit_code"], 0)
        self.assertEqual(job["project"], project)
        self.assertEqual(job["command"], ["main.py"])
        self.assertEqual(job["params"], {"learning_rate": 0.01, "epochs": 3, "model_layers": 2, "model_act": "relu"})
        self.assertEqual(job["tags"], {"stage": "test", "baseline": ""})

        metrics = {m["key"]: m for m in job["metrics"]}
        self.assertEqual(set(metrics), {"loss", "accuracy"})
        self.assertEqual(metrics["loss"]["count"], 10)
        self.assertEqual(metrics["loss"]["last"], 0.1)
        loss = self.server.metric(job["id"], "loss")
        self.assertEqual([p["step"] for p in loss["points"]], list(range(10)))
        self.assertEqual([p["value"] for p in loss["points"]], [1.0 / (i + 1) for i in range(10)])
        times = [p["time"] for p in loss["points"]]
        self.assertEqual(times, sorted(times))
        acc = self.server.metric(job["id"], "accuracy")
        self.assertEqual([(p["step"], p["value"]) for p in acc["points"]], [(100, 0.5), (200, 0.75)])

        arts = {a["key"]: a for a in job["artifacts"]}
        self.assertEqual(set(arts), {"notes.txt", "model-weights"})
        self.assertEqual(arts["model-weights"]["filename"], "weights.bin")
        self.assertEqual(arts["model-weights"]["size"], 1024)
        self.assertEqual(self.server.artifact(job["id"], "notes.txt"), b"trained\n")
        self.assertEqual(self.server.artifact(job["id"], "model-weights"), bytes(range(256)) * 4)

        self.assertTrue(job.get("archive_digest"))
        with tarfile.open(fileobj=io.BytesIO(self.server.archive(job["id"])), mode="r:gz") as tar:
            names = set(tar.getnames())
            self.assertLessEqual({"main.py", "data.csv", "notes.txt", "weights.bin", "written-after.txt"}, names)
            self.assertEqual(tar.extractfile("written-after.txt").read(), b"in the archive too\n")
            self.assertEqual(tar.extractfile("data.csv").read(), b"x,y\n1,2\n")

    def test_archive_is_the_folder_the_script_started_in(self):
        project, cwd = self.project_dir("chdir", files={"data/input.txt": "input"})
        self.run_script("import os, foundations\nfoundations.log_metric('m', 1)\nos.chdir('data')\n"
                        "open('output.txt', 'w').write('out')\n", cwd)
        job = self.server.wait_job(self.only_job(project)["id"])
        with tarfile.open(fileobj=io.BytesIO(self.server.archive(job["id"])), mode="r:gz") as tar:
            self.assertLessEqual({"main.py", "data/input.txt", "data/output.txt"}, set(tar.getnames()))

    def test_uncaught_exception_fails_the_job_with_a_reason(self):
        project, cwd = self.project_dir("exc")
        r = self.run_script("import foundations\nfoundations.log_metric('loss', 0.5)\n"
                            "raise RuntimeError('the data is bad')\n", cwd, expect_code=1)
        self.assertIn("RuntimeError: the data is bad", r.stderr)  # the traceback is still printed
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual(job["state"], "failed")
        self.assertNotEqual(job["exit_code"], 0)
        self.assertIn("RuntimeError", job["reason"])
        self.assertIn("the data is bad", job["reason"])
        self.assertEqual(job["metrics"][0]["last"], 0.5, "values tracked before the error are kept")
        self.assertTrue(job.get("archive_digest"))

    def test_sys_exit_nonzero_fails_the_job(self):
        project, cwd = self.project_dir("exit")
        self.run_script("import sys\nimport foundations\nfoundations.log_param('a', 1)\nsys.exit(3)\n", cwd, expect_code=3)
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["exit_code"], 3)
        self.assertIn("3", job["reason"])
        self.assertEqual(job["params"], {"a": 1})

    def test_other_ways_of_exiting(self):
        cases = [
            ("sys.exit(0)", 0, "completed", 0),
            ("sys.exit()", 0, "completed", 0),
            ("sys.exit('fatal: no data')", 1, "failed", 1),
            ("exit(5)", 5, "failed", 5),
            ("quit(6)", 6, "failed", 6),
            # Not covered: a bare `raise SystemExit(4)`; Python gives atexit handlers no exit code.
            ("raise KeyboardInterrupt", 1, "failed", None),
        ]
        for stmt, code, state, exit_code in cases:
            with self.subTest(stmt):
                project, cwd = self.project_dir("exit")
                self.run_script("import sys\nimport foundations\nfoundations.log_param('a', 1)\n" + stmt + "\n", cwd,
                                expect_code=None)
                job = self.server.wait_job(self.only_job(project)["id"])
                self.assertEqual(job["state"], state, job)
                if exit_code is not None:
                    self.assertEqual(job["exit_code"], exit_code)
                if stmt.startswith("raise Keyboard"):
                    self.assertEqual(job["reason"], "interrupted")

    def test_script_that_only_imports_records_nothing(self):
        before = self.total_jobs()
        project, cwd = self.project_dir("import")
        r = self.run_script("import foundations\nprint(foundations.__version__)\n", cwd)
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.server.jobs(project), [])
        self.assertEqual(self.total_jobs(), before)

    def test_command_line_mode_records_nothing(self):
        script = ("import foundations\nfoundations.log_param('a', 1)\nfoundations.log_metric('m', 2)\n"
                  "foundations.set_tag('t')\nopen('f.txt', 'w').write('x')\nfoundations.save_artifact('f.txt')\n"
                  "foundations.log_metric('m', 3)\nprint(foundations.flush())\n")
        for value in ("True", "true", "1"):
            with self.subTest(FOUNDATIONS_COMMAND_LINE=value):
                before = self.total_jobs()
                project, cwd = self.project_dir("cli")
                r = self.run_script(script, cwd, env=self.server.env(FOUNDATIONS_COMMAND_LINE=value))
                self.assertEqual(r.stdout.strip(), "True")
                self.assertEqual(r.stderr.count("FOUNDATIONS_COMMAND_LINE"), 1, "warns once: " + r.stderr)
                self.assertEqual(self.server.jobs(project), [])
                self.assertEqual(self.total_jobs(), before)

    def test_project_name_from_job_config_and_set_project_name(self):
        name = unique("from-config")
        _, cwd = self.project_dir("cfg", files={"job.config.yaml": "# a comment\nproject_name: '{}'\nlog_level: INFO\n".format(name)})
        self.run_script("import foundations\nfoundations.log_metric('m', 1)\n", cwd)
        self.assertEqual(self.only_job(name)["state"], "completed")

        other = unique("override")
        self.run_script("import foundations\nfoundations.set_project_name({!r})\nfoundations.log_metric('m', 1)\n"
                        .format(other), cwd)
        self.assertEqual(self.only_job(other)["metrics"][0]["count"], 1)

    def test_no_server_reachable_warns_once_and_runs(self):
        _, cwd = self.project_dir("down")
        r = self.run_script("import foundations\nfor i in range(3):\n    foundations.log_metric('m', i)\n"
                            "foundations.log_param('p', 1)\nprint('finished')\n", cwd,
                            env=self.server.env(FOUNDATIONS_SCHEDULER_URL="http://127.0.0.1:9"))
        self.assertEqual(r.stdout.strip(), "finished")
        self.assertEqual(r.stderr.count("WARNING"), 1, r.stderr)
        self.assertIn("not tracked", r.stderr)

    def test_tracks_without_a_usable_spool(self):
        project, cwd = self.project_dir("nospool", files={"not-a-dir": "a file"})
        r = self.run_script("import foundations\nfoundations.log_metric('m', 1)\nfoundations.log_param('p', 2)\n"
                            "open('a.txt', 'w').write('A')\nfoundations.save_artifact('a.txt')\n", cwd,
                            env=self.server.env(FOUNDATIONS_SPOOL_DIR=os.path.join(cwd, "not-a-dir", "spool")))
        self.assertEqual(r.stderr.count("WARNING"), 1, r.stderr)
        self.assertIn("cannot use the spool", r.stderr)
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual((job["state"], job["params"], job["metrics"][0]["last"]), ("completed", {"p": 2}, 1))
        self.assertEqual(self.server.artifact(job["id"], "a.txt"), b"A")

    def test_flush_returns_true_once_everything_is_stored(self):
        _, cwd = self.project_dir("flush")
        r = self.run_script(
            "import json, os, urllib.request, foundations\n"
            "for i in range(1000):\n    foundations.log_metric('m', i)\n"
            "ok = foundations.flush(timeout=30)\n"
            "job_id = foundations._tracker.current().id\n"
            "url = os.environ['TEST_SERVER_URL'] + '/api/v1/jobs/' + job_id\n"
            "job = json.load(urllib.request.urlopen(url))\n"
            "print(json.dumps([ok, job['metrics'][0]['count']]))\n", cwd,
            env=self.server.env(TEST_SERVER_URL=self.server.url))
        self.assertEqual(json.loads(r.stdout), [True, 1000])
