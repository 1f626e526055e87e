"""Execution mode: `python main.py` with `import foundations` is a job on the local server from
the import on, with its output as its logs."""
import io
import json
import os
import subprocess
import sys
import tarfile

from tests.atlas_server import ServerTestCase, unique, wait_for

FULL_SCRIPT = r'''
import sys
import foundations

print("imported", flush=True)
sys.stdin.readline()                       # the test checks the job exists, with this output as its log

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

    def test_records_job_from_the_import_with_everything_tracked(self):
        project, cwd = self.project_dir("exec")
        with open(cwd + "/main.py", "w") as f:
            f.write(FULL_SCRIPT)
        with open(cwd + "/data.csv", "w") as f:
            f.write("x,y\n1,2\n")
        script = self.server.popen("main.py", cwd)
        try:
            script.expect("imported")
            jobs = self.server.jobs(project)
            self.assertEqual(len(jobs), 1, "importing foundations in a script run by hand records the job")
            self.assertEqual(jobs[0]["state"], "running")
            self.assertEqual(jobs[0]["mode"], "execution")
            # Its output is its log, while it runs.
            wait_for(lambda: "imported" in self.server.logs(jobs[0]["id"]), what="the output in the job's log")
            script.send()
            script.expect("tracked")
            self.assertEqual([j["id"] for j in self.server.jobs(project)], [jobs[0]["id"]])
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
        self.assertEqual(self.server.logs(job["id"]), "imported\ntracked\ndone\n")
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

    def test_hello_world_is_a_job_with_its_output(self):
        project, cwd = self.project_dir("hello")
        r = self.run_script("import foundations\nprint('Hello world!')\n", cwd)
        self.assertEqual(r.stdout, "Hello world!\n", "the output still reaches the terminal")
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("Tracking this run as job", r.stderr)
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual((job["state"], job["mode"], job["exit_code"]), ("completed", "execution", 0))
        self.assertEqual(self.server.logs(job["id"]), "Hello world!\n")
        self.assertTrue(job.get("archive_digest"))

    def test_crash_before_any_tracking_is_a_failed_job_with_its_traceback(self):
        project, cwd = self.project_dir("crash")
        r = self.run_script("import json\nimport foundations\nprint('loading the config')\n"
                            "config = json.loads('{not json')\n", cwd, expect_code=1)
        self.assertIn("Traceback (most recent call last):", r.stderr, "the traceback still reaches the terminal")
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["exit_code"], 1)
        self.assertIn("JSONDecodeError", job["reason"])
        log = self.server.logs(job["id"])
        # stdout and stderr are two pipes here, so where the print lands among the traceback's
        # writes is not fixed; each stream is whole and in order (on one terminal the order is
        # kept: test_output_on_a_terminal_still_is_a_terminal).
        self.assertIn("loading the config\n", log)
        traceback = r.stderr.split("\n", 1)[1]  # after the SDK's own line, which is not logged
        self.assertTrue(traceback.startswith("Traceback (most recent call last):\n"), r.stderr)
        self.assertEqual(log.replace("loading the config\n", "", 1), traceback)
        self.assertIn("config = json.loads('{not json')", traceback)
        self.assertTrue(traceback.endswith("json.decoder.JSONDecodeError: Expecting property name enclosed in "
                                           "double quotes: line 1 column 2 (char 1)\n"), traceback)

    def test_all_output_is_kept_stdout_stderr_children_and_c_level(self):
        project, cwd = self.project_dir("output")
        r = self.run_script(r'''
import os, subprocess, sys
import foundations
print("from print")
print("to stderr", file=sys.stderr)
os.write(1, b"from os.write\n")
sys.stdout.flush()
subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
subprocess.run(["sh", "-c", "echo from a shell >&2"], check=True)
line = "x" * 99 + "\n"
sys.stdout.write(line * 5000)   # about 500 KB: several pieces
print("the end", end="")         # no newline at exit
''', cwd)
        want_stdout = "from print\nfrom os.write\nfrom a child process\n" + ("x" * 99 + "\n") * 5000 + "the end"
        self.assertEqual(r.stdout, want_stdout, "the terminal gets everything, in order")
        self.assertIn("to stderr\nfrom a shell\n", r.stderr)
        job = self.server.wait_job(self.only_job(project)["id"])
        log = self.server.logs(job["id"])
        # Every byte once: stdout whole and in order, stderr's lines somewhere among it (two
        # pipes here; on one terminal the order is kept).
        self.assertIn("to stderr\n", log)
        self.assertIn("from a shell\n", log)
        self.assertEqual(log.replace("to stderr\n", "", 1).replace("from a shell\n", "", 1), want_stdout)

    def test_output_on_a_terminal_still_is_a_terminal(self):
        import pty
        project, cwd = self.project_dir("tty")
        with open(os.path.join(cwd, "main.py"), "w") as f:
            f.write("import sys, foundations\nprint('stdout is a tty:', sys.stdout.isatty())\n"
                    "print('\\x1b[32mgreen\\x1b[0m')\nprint('err', file=sys.stderr)\nprint('out')\n"
                    "raise SystemExit('bye')\n")
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([sys.executable, "main.py"], cwd=cwd, env=self.server.env(), stdin=subprocess.DEVNULL,
                                 stdout=slave, stderr=slave)
            os.close(slave)
            out = b""
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the script's end of the terminal is closed
                    break
                if not data:
                    break
                out += data
            self.assertEqual(p.wait(60), 1)
        finally:
            os.close(master)
        self.assertIn(b"stdout is a tty: True\r\n\x1b[32mgreen\x1b[0m\r\nerr\r\nout\r\nbye\r\n", out)
        job = self.server.wait_job(self.only_job(project)["id"])
        # stdout and stderr are one terminal: one stream, in the order written, without the
        # terminal's line endings.
        self.assertEqual(self.server.logs(job["id"]), "stdout is a tty: True\n\x1b[32mgreen\x1b[0m\nerr\nout\nbye\n")

    def test_output_logged_while_the_server_restarts_is_stored_once(self):
        project, cwd = self.project_dir("outage")
        with open(os.path.join(cwd, "main.py"), "w") as f:
            f.write("import sys\nimport foundations\nprint('before', flush=True)\nsys.stdin.readline()\n"
                    "for i in range(3):\n    print('while down', i, flush=True)\n"
                    "print('logged while down', flush=True)\nsys.stdin.readline()\nprint('after', flush=True)\n")
        script = self.server.popen("main.py", cwd)
        try:
            script.expect("before")
            job_id = self.server.jobs(project)[0]["id"]
            wait_for(lambda: "before" in self.server.logs(job_id), what="the first output in the log")
            self.server.stop()
            script.send()
            script.expect("logged while down")
            self.server.start()
            script.send()
            script.expect("after")
            code, stderr = script.finish()
        finally:
            script.kill()
        self.assertEqual(code, 0, stderr)
        job = self.server.wait_job(job_id)
        self.assertEqual(job["state"], "completed")
        self.assertEqual(self.server.logs(job_id), "before\nwhile down 0\nwhile down 1\nwhile down 2\n"
                                                   "logged while down\nafter\n")

    def test_a_forked_child_exiting_does_not_end_the_job(self):
        project, cwd = self.project_dir("fork")
        # (Python 3.12 warns on stderr about forking a process with threads: not this test's matter.)
        self.run_script("import os, sys, warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n"
                        "import foundations\npid = os.fork()\n"
                        "if pid == 0:\n    print('child exits', flush=True)\n    sys.exit(3)\n"
                        "os.waitpid(pid, 0)\nfoundations.log_metric('m', 1)\nprint('parent ends')\n", cwd)
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual((job["state"], job["exit_code"]), ("completed", 0))
        self.assertEqual(self.server.logs(job["id"]), "child exits\nparent ends\n")

    def test_multiprocessing_workers_are_part_of_the_job(self):
        project, cwd = self.project_dir("spawn")
        # Each worker writes its line in one write: print() writes its pieces one by one, which
        # processes writing at the same time may interleave.
        self.run_script("import multiprocessing as mp, sys\nimport foundations\n\ndef work(x):\n"
                        "    sys.stdout.write('worker %d\\n' % x)\n    sys.stdout.flush()\n    return x * 2\n\n"
                        "if __name__ == '__main__':\n    mp.set_start_method('spawn')\n"
                        "    with mp.Pool(2) as pool:\n        print(sorted(pool.map(work, [1, 2, 3])))\n", cwd)
        job = self.server.wait_job(self.only_job(project)["id"])  # the workers import foundations too: no jobs
        log = self.server.logs(job["id"])
        for line in ("worker 1\n", "worker 2\n", "worker 3\n", "[2, 4, 6]\n"):
            self.assertIn(line, log)

    def test_job_id_from_the_environment(self):
        # A script run by hand with FOUNDATIONS_JOB_ID (and no job token) is recorded under that id, as in Atlas.
        project, cwd = self.project_dir("envid")
        job_id = unique("my-run")
        r = self.run_script("import foundations\nfoundations.log_metric('m', 7)\nprint('ran')\n", cwd,
                            env=self.server.env(FOUNDATIONS_JOB_ID=job_id))
        self.assertIn(job_id, r.stderr)
        job = self.server.wait_job(job_id)
        self.assertEqual((job["project"], job["mode"], job["state"]), (project, "execution", "completed"))
        self.assertEqual(job["metrics"][0]["last"], 7)
        self.assertEqual(self.server.logs(job_id), "ran\n")
        # Once that job has ended, another run with the id warns and runs untracked.
        r = self.run_script("import foundations\nfoundations.log_metric('m', 8)\nprint('again')\n", cwd,
                            env=self.server.env(FOUNDATIONS_JOB_ID=job_id))
        self.assertEqual(r.stdout, "again\n")
        self.assertEqual(r.stderr.count("WARNING"), 1, r.stderr)
        self.assertIn("already ended", r.stderr)
        self.assertEqual(self.server.job(job_id)["metrics"][0]["last"], 7)
        self.assertEqual(len(self.server.jobs(project)), 1)

    def test_project_config_without_scheduler_url_falls_back_to_the_home_one(self):
        # The server listens on a port of its own; the project's scheduler config only has other keys.
        project, cwd = self.project_dir("cfgfallback", files={
            "config/submission/scheduler.config.yaml": "job_results_root: /somewhere\n"})
        self.run_script("import foundations\nfoundations.log_metric('m', 1)\n", cwd)
        self.assertEqual(self.server.wait_job(self.only_job(project)["id"])["state"], "completed")

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

        # The import made the script a job in its folder's project; set_project_name before any
        # tracking call moves it, output included.
        other = unique("override")
        r = self.run_script("import foundations\nprint('first line')\nfoundations.set_project_name({!r})\n"
                            "foundations.log_metric('m', 1)\nprint('second line')\n".format(other), cwd)
        self.assertNotIn("WARNING", r.stderr)
        moved = self.server.wait_job(self.only_job(other)["id"])
        self.assertEqual(moved["metrics"][0]["count"], 1)
        first = self.only_job(name)
        self.assertEqual((moved["user"], moved["mode"], moved.get("parent_id")), (first["user"], "execution", None),
                         "recorded again as the user, not as a child of itself")
        self.assertEqual(self.server.logs(moved["id"]), "first line\nsecond line\n")
        self.assertEqual(len(self.server.jobs(name)), 1, "nothing is left in the first project")
        # After a tracking call it is too late: a warning, and the job stays where it is.
        late = unique("late")
        r = self.run_script("import foundations\nfoundations.log_metric('m', 1)\nfoundations.set_project_name({!r})\n"
                            .format(late), cwd)
        self.assertIn("set_project_name must come before the first tracking call", r.stderr)
        self.assertEqual(self.server.jobs(late), [])

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
