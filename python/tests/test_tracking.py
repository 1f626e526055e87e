"""What the tracking calls accept, refuse and store: params, metrics, tags, artifacts, parameters files."""
import json
import os

from tests.atlas_server import ServerTestCase, numpy_python

# Runs every bad call, prints [name, exception type, message] for each, then logs a good value.
BAD_VALUES_SCRIPT = r'''
import json, math
import foundations

cases = [
    ("metric dict value", lambda: foundations.log_metric("m", {"a": 1})),
    ("metric None value", lambda: foundations.log_metric("m", None)),
    ("metric object value", lambda: foundations.log_metric("m", object())),
    ("metric nan", lambda: foundations.log_metric("m", float("nan"))),
    ("metric inf", lambda: foundations.log_metric("m", float("inf"))),
    ("metric -inf", lambda: foundations.log_metric("m", -math.inf)),
    ("metric nan in list", lambda: foundations.log_metric("m", [1.0, float("nan")])),
    ("metric dict in list", lambda: foundations.log_metric("m", [1.0, {"x": 1}])),
    ("metric long string", lambda: foundations.log_metric("m", "x" * 10001)),
    ("metric None key", lambda: foundations.log_metric(None, 1)),
    ("metric list key", lambda: foundations.log_metric(["a"], 1)),
    ("metric int key", lambda: foundations.log_metric(5, 1)),
    ("metric empty key", lambda: foundations.log_metric("", 1)),
    ("metric 1001-char key", lambda: foundations.log_metric("k" * 1001, 1)),
    ("metric NUL in key", lambda: foundations.log_metric("a\x00b", 1)),
    ("metric negative step", lambda: foundations.log_metric("m", 1, step=-1)),
    ("metric float step", lambda: foundations.log_metric("m", 1, step=1.5)),
    ("param nan", lambda: foundations.log_param("p", float("nan"))),
    ("param object", lambda: foundations.log_param("p", object())),
    ("param None key", lambda: foundations.log_param(None, 1)),
    ("param empty key", lambda: foundations.log_param("", 1)),
    ("param 1001-char key", lambda: foundations.log_param("k" * 1001, 1)),
    ("params not a dict", lambda: foundations.log_params([("a", 1)])),
    ("params inf inside", lambda: foundations.log_params({"a": {"b": float("inf")}})),
    ("tag dict value", lambda: foundations.set_tag("t", {"a": 1})),
    ("tag empty key", lambda: foundations.set_tag("", "v")),
    ("tag None key", lambda: foundations.set_tag(None, "v")),
    ("artifact missing file", lambda: foundations.save_artifact("no-such-file.txt")),
    ("artifact a directory", lambda: foundations.save_artifact(".")),
    ("artifact not a path", lambda: foundations.save_artifact(42)),
]
out = []
for name, call in cases:
    try:
        call()
        out.append([name, None, None])
    except Exception as e:
        out.append([name, type(e).__name__, str(e)])
foundations.log_metric("good", 1)
print(json.dumps(out))
'''

EXPECTED_ERRORS = {
    "metric dict value": "TypeError", "metric None value": "TypeError", "metric object value": "TypeError",
    "metric nan": "ValueError", "metric inf": "ValueError", "metric -inf": "ValueError",
    "metric nan in list": "ValueError", "metric dict in list": "TypeError", "metric int key": "ValueError",
    "metric long string": "ValueError", "metric None key": ("TypeError", "ValueError"),
    "metric list key": ("TypeError", "ValueError"), "metric empty key": "ValueError",
    "metric 1001-char key": "ValueError", "metric NUL in key": "ValueError", "metric negative step": "ValueError",
    "metric float step": "ValueError", "param nan": "ValueError", "param object": "TypeError",
    "param None key": ("TypeError", "ValueError"), "param empty key": "ValueError",
    "param 1001-char key": "ValueError", "params not a dict": "TypeError",
    "params inf inside": "ValueError", "tag dict value": "TypeError", "tag empty key": "ValueError",
    "tag None key": ("TypeError", "ValueError"), "artifact missing file": "FileNotFoundError",
    "artifact a directory": "FileNotFoundError", "artifact not a path": "TypeError",
}


class TrackingTest(ServerTestCase):

    def run_job(self, script, files=None, env=None, python=None):
        """Runs script as main.py in a new project folder; returns (the job, stdout)."""
        project, cwd = self.project_dir("track", files=files)
        r = self.run_script(script, cwd, env=env, python=python)
        self.stderr = r.stderr
        job = self.server.wait_job(self.only_job(project)["id"])
        self.assertEqual(job["state"], "completed", r.stderr)
        return job, r.stdout

    def test_log_params_flattening(self):
        job, _ = self.run_job(r'''
import foundations
foundations.log_params({
    "lr": 0.1, "name": "resnet", "flag": True, "none": None,
    "opt": {"name": "adam", "betas": [0.9, 0.999], "sched": {"warmup": 5}},
    "layers": [64, 128],
    "blocks": [{"k": 3}, {"k": 5}],
    "empty_dict": {}, "empty_list": [],
    7: "seven",
})
''')
        self.assertEqual(job["params"], {
            "lr": 0.1, "name": "resnet", "flag": True, "none": None,
            "opt_name": "adam", "opt_betas_0": 0.9, "opt_betas_1": 0.999, "opt_sched_warmup": 5,
            "layers_0": 64, "layers_1": 128,
            "blocks_0_k": 3, "blocks_1_k": 5,
            "empty_dict": None, "empty_list": None,
            "7": "seven",
        })

    def test_log_param_overwrites_and_keeps_lists(self):
        job, _ = self.run_job(r'''
import foundations
foundations.log_param("lr", 0.1)
foundations.log_param("lr", 0.2)
foundations.log_param("batch", 32)
foundations.flush()
foundations.log_param("batch", 64)     # overwrites a value already stored
foundations.log_param("sizes", [1, 2, 3])
foundations.log_param("tuple", (1, "a"))
foundations.log_param("nothing", None)
''')
        self.assertEqual(job["params"], {"lr": 0.2, "batch": 64, "sizes": [1, 2, 3], "tuple": [1, "a"], "nothing": None})

    def test_log_metric_value_types(self):
        job, _ = self.run_job(r'''
import foundations
foundations.log_metric("int", 3)
foundations.log_metric("float", 0.25)
foundations.log_metric("negative", -1.5e-8)
foundations.log_metric("big", 2 ** 53)
foundations.log_metric("bool", True)
foundations.log_metric("bool", False)
foundations.log_metric("str", "converged")
foundations.log_metric("list", [0.5, 0.25, 0.125])
foundations.log_metric("list", [1, 2])
foundations.log_metric("tuple", (7, 8))
foundations.log_metric("mixed", 1)
foundations.log_metric("mixed", "a")
foundations.log_metric("stepped", [10, 20], step=5)
foundations.log_metric("stepped", 30, step=100)
''')
        def series(key):
            return [(p["step"], p["value"]) for p in self.server.metric(job["id"], key)["points"]]

        self.assertEqual(series("int"), [(0, 3)])
        self.assertEqual(series("float"), [(0, 0.25)])
        self.assertEqual(series("negative"), [(0, -1.5e-8)])
        self.assertEqual(series("big"), [(0, 2 ** 53)])
        self.assertEqual(series("bool"), [(0, 1), (1, 0)])
        self.assertEqual(series("str"), [(0, "converged")])
        self.assertEqual(series("list"), [(0, 0.5), (1, 0.25), (2, 0.125), (3, 1), (4, 2)])
        self.assertEqual(series("tuple"), [(0, 7), (1, 8)])
        self.assertEqual(series("mixed"), [(0, 1), (1, "a")])
        self.assertEqual(series("stepped"), [(5, 10), (6, 20), (100, 30)])
        summary = {m["key"]: m for m in job["metrics"]}
        self.assertEqual(summary["list"]["count"], 5)
        self.assertEqual(summary["list"]["last"], 2)
        self.assertEqual(summary["list"]["min"], 0.125)
        self.assertEqual(summary["list"]["max"], 2)
        self.assertEqual(summary["str"]["last"], "converged")

    def test_lists_log_each_value_with_its_step(self):
        # Long lists go in several batches (100,000 points each), cut inside a list; every
        # value keeps its step, and its time is the call's.
        job, out = self.run_job(r'''
import json, time
import foundations
t0 = time.time()
foundations.log_metric("plain", [i * 0.5 for i in range(250000)])
foundations.log_metric("plain", 7)
foundations.log_metric("stepped", list(range(150000)), step=1000)
foundations.log_metric("stepped", [-1.5, 2.5], step=5)
foundations.log_metric("ints", [2 ** 53, -(2 ** 53), 2 ** 53 + 1, 3])
foundations.log_metrics({"a": 0.25, "b": [1, "two"], "c": (4, 5)}, step=9)
foundations.log_metrics({"a": 0.75, "b": 3})
try:
    foundations.log_metrics({"a": 1.0, "bad": [1.0, float("inf")]})
except ValueError as e:
    print(json.dumps(str(e)))
print(json.dumps([t0, time.time()]))
''')
        err, (t0, t1) = [json.loads(line) for line in out.splitlines()]
        self.assertIn("inf", err)
        series = {k: self.server.metric(job["id"], k) for k in ("plain", "stepped", "ints", "a", "b", "c")}
        points = {k: s["points"] for k, s in series.items()}
        # The API gives at most 100,000 points of a series (the first, the last, and the
        # extremes of each stretch in between), enough to see each value with its step.
        plain = points["plain"]
        self.assertEqual(series["plain"]["total"], 250001)
        self.assertEqual((plain[0]["step"], plain[-2]["step"]), (0, 249999))
        self.assertTrue(all(p["value"] == p["step"] * 0.5 for p in plain[:-1]))
        self.assertEqual((plain[-1]["step"], plain[-1]["value"]), (250000, 7))
        self.assertEqual(len({p["time"] for p in plain[:-1]}), 1, "one time per call")
        self.assertTrue(all(t0 <= p["time"] <= t1 for p in plain))
        stepped = points["stepped"]
        self.assertEqual(series["stepped"]["total"], 150002)
        self.assertTrue(all(p["step"] == 1000 + p["value"] for p in stepped[:-2]))
        self.assertEqual((stepped[0]["step"], stepped[-3]["step"]), (1000, 150999))
        self.assertEqual([(p["step"], p["value"]) for p in stepped[-2:]], [(5, -1.5), (6, 2.5)])
        # Read back as float64, as ever: 2**53 + 1 was stored digit for digit, and is read as 2**53.
        self.assertEqual([p["value"] for p in points["ints"]], [2 ** 53, -(2 ** 53), 2 ** 53, 3])
        self.assertEqual([(p["step"], p["value"]) for p in points["a"]], [(9, 0.25), (1, 0.75)])
        self.assertEqual([(p["step"], p["value"]) for p in points["b"]], [(9, 1), (10, "two"), (2, 3)])
        self.assertEqual([(p["step"], p["value"]) for p in points["c"]], [(9, 4), (10, 5)])
        self.assertNotIn("bad", {m["key"] for m in job["metrics"]}, "a refused call logs none of its values")

    def test_every_kind_of_point_of_one_key_keeps_its_place(self):
        # Plain numbers, steps, strings, long integers, lists and numbers of each kind logged in
        # turn to one key, across batches: each point keeps its value, step and order.
        job, out = self.run_job(r'''
import json
import foundations
want = []
def log(value, step=None):
    foundations.log_metric("k", value, step=step)
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        want.append([None if step is None else step + i, v])
for i in range(30000):
    r = i % 7
    if r == 0:
        log(i * 0.25)
    elif r == 1:
        log(i, step=10 ** 6 + i)
    elif r == 2:
        log("s%d" % i)
    elif r == 3:
        log(2 ** 60 + i)
    elif r == 4:
        log([i, i + 0.5])
    elif r == 5:
        log([i, "t"], step=i)
    else:
        log(i)
    if i % 10000 == 0:
        foundations.flush()
print(json.dumps(want))
''')
        want = json.loads(out)
        got = self.server.metric(job["id"], "k")["points"]
        self.assertEqual(len(got), len(want))
        for n, ((step, value), p) in enumerate(zip(want, got)):
            got_value = p["value"]
            if not isinstance(value, str):  # numbers are read back as float64, as ever
                value, got_value = float(value), float(got_value)
            if got_value != value or p["step"] != (n if step is None else step):
                self.fail("point {}: got step {} value {!r}, want step {} value {!r}".format(
                    n, p["step"], p["value"], n if step is None else step, value))
        self.assertEqual([p["time"] for p in got], sorted(p["time"] for p in got))

    def test_threads_logging_one_key_lose_nothing(self):
        # Four threads log one key at once, point by point, in lists and with steps: every value
        # is stored once, each thread's in its order, each stepped value with its step.
        job, _ = self.run_job(r'''
import sys, threading
import foundations
sys.setswitchinterval(1e-6)  # threads take turns as often as they can
def work(t):
    for i in range(20000):
        v = t * 10 ** 6 + i
        if t == 0:
            foundations.log_metric("k", v)
        elif t == 1:
            foundations.log_metric("k", float(v), step=v)
        elif i % 5 == 0:
            foundations.log_metric("k", [v + j for j in range(5)] if t == 2 else [float(v + j) for j in range(5)],
                                   step=None if t == 2 else v)
threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
''')
        got = self.server.metric(job["id"], "k")["points"]
        self.assertEqual(len(got), 80000)
        by_thread = {}
        for n, p in enumerate(got):
            t, i = divmod(int(p["value"]), 10 ** 6)
            by_thread.setdefault(t, []).append(i)
            if t in (1, 3):
                self.assertEqual(p["step"], p["value"], "a stepped value keeps its step")
            else:
                self.assertEqual(p["step"], n, "an unstepped value gets the next step")
        self.assertEqual(by_thread, {t: list(range(20000)) for t in range(4)})

    def test_numpy_values(self):
        python = numpy_python()
        job, out = self.run_job(python=python, script=r'''
import json
import os
import numpy as np
import foundations
foundations.log_metric("f32", np.float32(0.5))
foundations.log_metric("f64", np.float64(0.25))
foundations.log_metric("i64", np.int64(7))
foundations.log_metric("u8", np.uint8(255))
foundations.log_metric("npbool", np.bool_(True))
foundations.log_metric("zero_d", np.array(1.5))
foundations.log_metric("array", np.array([1.0, 2.0, 3.0]))
foundations.log_metric("stepped", np.float64(4.0), step=np.int64(9))
foundations.log_param("np_param", np.float64(0.01))
foundations.log_params({"np_list": np.array([1, 2]), "np_int": np.int32(3)})
errors = []
for bad in (np.float64("nan"), np.float32("inf"), np.array([1.0, np.nan])):
    try:
        foundations.log_metric("bad", bad)
    except ValueError as e:
        errors.append(str(e))
print(json.dumps(errors))
''')
        self.assertEqual(len(json.loads(out)), 3)
        values = {k: [p["value"] for p in self.server.metric(job["id"], k)["points"]]
                  for k in ("f32", "f64", "i64", "u8", "npbool", "zero_d", "array", "stepped")}
        self.assertEqual(values, {"f32": [0.5], "f64": [0.25], "i64": [7], "u8": [255], "npbool": [1],
                                  "zero_d": [1.5], "array": [1.0, 2.0, 3.0], "stepped": [4.0]})
        self.assertEqual(self.server.metric(job["id"], "stepped")["points"][0]["step"], 9)
        self.assertEqual(job["params"], {"np_param": 0.01, "np_list_0": 1, "np_list_1": 2, "np_int": 3})
        self.assertNotIn("bad", {m["key"] for m in job["metrics"]})

    def test_bad_values_raise_clear_errors_and_store_nothing(self):
        job, out = self.run_job(BAD_VALUES_SCRIPT)
        results = {name: (kind, msg) for name, kind, msg in json.loads(out)}
        self.assertEqual(set(results), set(EXPECTED_ERRORS))
        for name, want in EXPECTED_ERRORS.items():
            kind, msg = results[name]
            with self.subTest(name):
                self.assertIn(kind, want if isinstance(want, tuple) else (want,), "{}: got {} {}".format(name, kind, msg))
                self.assertTrue(msg and "\n" not in msg and len(msg) < 300, "a clear one-line message: {!r}".format(msg))
        self.assertIn("nan", results["metric nan"][1].lower())
        self.assertEqual(results["metric int key"][1], "Invalid metric name 5: want a string, got int")
        self.assertIn("1001", results["metric 1001-char key"][1])
        self.assertIn("no-such-file.txt", results["artifact missing file"][1])
        # Nothing of the refused calls was stored, and the script went on.
        self.assertEqual([m["key"] for m in job["metrics"]], ["good"])
        self.assertEqual(job["params"], {})
        self.assertEqual(job["tags"], {})
        self.assertEqual(job.get("artifacts") or [], [])

    def test_numbers_too_large_to_store_are_kept_and_warned_about_once(self):
        job, out = self.run_job(r'''
import foundations
foundations.log_metric("n", 8888888888888888888888888)
foundations.log_metric("n", 8888888888888888888888888)
foundations.log_metric("n", 2)
foundations.log_metric("huge", 10 ** 400)
foundations.log_metric("list", [1, -(2 ** 70)])
foundations.log_param("p", 10 ** 400)
foundations.log_param("q", 10 ** 30)
print("still running")
''')
        self.assertEqual(out, "still running\n")
        values = lambda k: [p["value"] for p in self.server.metric(job["id"], k)["points"]]  # noqa: E731
        self.assertEqual(values("n"), [8.888888888888889e+24, 8.888888888888889e+24, 2])
        self.assertEqual(values("huge"), ["1" + "0" * 400])
        self.assertEqual(values("list"), [1, -1.1805916207174113e+21])
        self.assertEqual(job["params"], {"p": "1" + "0" * 400, "q": 1e30})
        warnings = [l for l in self.stderr.splitlines() if "too large" in l]
        self.assertEqual(len(warnings), 5, "once per key: " + self.stderr)
        self.assertIn("metric 'n': 8888888888888888888888888 is too large to store as an integer; kept as the float "
                      "8.888888888888889e+24.", warnings[0])
        self.assertIn("kept as a string", warnings[1])

    def test_unicode_keys_and_values(self):
        keys = ["损失", "λ_rate", "🚀 accuracy", "naïve/score", "a b?c&d=e#f%", "é" * 500]
        job, _ = self.run_job("# -*- coding: utf-8 -*-\nimport foundations\nkeys = {!r}\n".format(keys) + r'''
for i, k in enumerate(keys):
    foundations.log_metric(k, i)
    foundations.log_param(k, "värde-" + k)
    foundations.set_tag(k, "étiquette")
foundations.log_metric("text", "日本語のテキスト")
open("résumé ✓.txt", "w", encoding="utf-8").write("données")
foundations.save_artifact("résumé ✓.txt", key="ключ")
''')
        self.assertEqual({m["key"] for m in job["metrics"]}, set(keys) | {"text"})
        for i, k in enumerate(keys):
            self.assertEqual([p["value"] for p in self.server.metric(job["id"], k)["points"]], [i])
            self.assertEqual(job["params"][k], "värde-" + k)
            self.assertEqual(job["tags"][k], "étiquette")
        self.assertEqual(self.server.metric(job["id"], "text")["points"][0]["value"], "日本語のテキスト")
        self.assertEqual(job["artifacts"][0]["key"], "ключ")
        self.assertEqual(job["artifacts"][0]["filename"], "résumé ✓.txt")
        self.assertEqual(self.server.artifact(job["id"], "ключ").decode("utf-8"), "données")

    def test_long_unicode_key_limit(self):
        # 1000 characters is the documented limit, whatever the characters.
        job, out = self.run_job(r'''
import json, foundations
res = []
for key in ("k" * 1000, "é" * 1000, "é" * 1001, "\ud800bad"):
    try:
        foundations.log_metric(key, 1)
        res.append(None)
    except ValueError as e:
        res.append(str(e))
foundations.log_metric("after", 1)
print(json.dumps(res))
''')
        res = json.loads(out)
        self.assertIsNone(res[0])
        self.assertIsNone(res[1], "the limit counts characters, not bytes")
        self.assertIn("1001", res[2])
        self.assertIn("UTF-8", res[3])
        self.assertEqual(sorted(m["key"] for m in job["metrics"]), sorted(["k" * 1000, "é" * 1000, "after"]))

    def test_set_tag(self):
        job, _ = self.run_job(r'''
import foundations
foundations.set_tag("stage", "dev")
foundations.set_tag("stage", "prod")
foundations.set_tag("flag")
foundations.set_tag("count", 3)
foundations.set_tag("ratio", 0.5)
''')
        self.assertEqual(job["tags"], {"stage": "prod", "flag": "", "count": "3", "ratio": "0.5"})

    def test_save_artifact(self):
        job, out = self.run_job(r'''
import os, foundations
os.makedirs("out", exist_ok=True)
with open("out/plot.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + bytes(1000))
foundations.save_artifact("out/plot.png")
with open("log.txt", "w") as f:
    f.write("first")
foundations.save_artifact("log.txt", key="log")
with open("log.txt", "w") as f:
    f.write("changed after saving")        # the saved content is the one at the call
with open("log2.txt", "w") as f:
    f.write("second")
foundations.save_artifact("log2.txt", key="log")   # the same key again: replaced
try:
    foundations.save_artifact("missing.bin")
except FileNotFoundError as e:
    print("FileNotFoundError", e)
''')
        self.assertIn("FileNotFoundError", out)
        self.assertIn("missing.bin", out)
        self.assertEqual(self.stderr.count("WARNING"), 1, self.stderr)
        self.assertIn('Foundations WARNING: Artifact "log" already exists - overwriting.', self.stderr)
        arts = {a["key"]: a for a in job["artifacts"]}
        self.assertEqual(set(arts), {"plot.png", "log"})
        self.assertEqual(self.server.artifact(job["id"], "plot.png"), b"\x89PNG\r\n\x1a\n" + bytes(1000))
        self.assertEqual(self.server.artifact(job["id"], "log"), b"second")
        self.assertEqual(arts["log"]["filename"], "log2.txt")

    def test_load_parameters_without_file(self):
        project, cwd = self.project_dir("params")
        r = self.run_script("import json, foundations\nprint(json.dumps(foundations.load_parameters()))\n", cwd)
        self.assertEqual(json.loads(r.stdout), {})
        self.assertEqual(self.only_job(project)["params"], {}, "load_parameters without parameters logs none")

    def test_load_parameters_with_file(self):
        params = {"lr": 0.01, "model": {"depth": 4, "widths": [8, 16]}, "name": "run-1"}
        job, out = self.run_job("import json, foundations\nprint(json.dumps(foundations.load_parameters()))\n",
                                files={"foundations_job_parameters.json": json.dumps(params)})
        self.assertEqual(json.loads(out), params)
        self.assertEqual(job["params"], {"lr": 0.01, "model_depth": 4, "model_widths_0": 8, "model_widths_1": 16,
                                         "name": "run-1"})

    def test_load_parameters_with_a_broken_file(self):
        project, cwd = self.project_dir("params", files={"foundations_job_parameters.json": '{"lr": 0.1,'})
        r = self.run_script("import foundations\ntry:\n    foundations.load_parameters()\n"
                            "except ValueError as e:\n    print(e)\n", cwd)
        self.assertIn("foundations_job_parameters.json is not valid JSON", r.stdout)
        self.assertEqual(self.only_job(project)["params"], {})

    def test_load_parameters_without_logging(self):
        project, cwd = self.project_dir("params", files={"foundations_job_parameters.json": '{"a": 1}'})
        r = self.run_script("import json, foundations\nprint(json.dumps(foundations.load_parameters(log_parameters=False)))\n",
                            cwd)
        self.assertEqual(json.loads(r.stdout), {"a": 1})
        self.assertEqual(self.only_job(project)["params"], {})

    def test_many_values_in_several_batches(self):
        job, _ = self.run_job(r'''
import foundations
for i in range(250000):
    foundations.log_metric("m", i)
''')
        self.assertEqual(job["metrics"][0]["count"], 250000)
        pts = self.server.metric(job["id"], "m")
        self.assertEqual(pts["total"], 250000)
        self.assertEqual(pts["points"][-1], dict(pts["points"][-1], step=249999, value=249999))


    def test_syncable_directory_and_tensorboard_logdir(self):
        source, _ = self.run_job(r'''
import os, foundations
sync = foundations.create_syncable_directory("ckpt", "ckpt")
os.makedirs("ckpt/sub", exist_ok=True)
with open("ckpt/model.txt", "w") as f:
    f.write("weights v1")
with open("ckpt/sub/opt.txt", "w") as f:
    f.write("optimizer")
sync.upload()
with open("ckpt/model.txt", "w") as f:
    f.write("weights v2")
sync.upload()                              # only the changed file again
foundations.set_tensorboard_logdir("tb")   # uploaded when the script ends
with open("tb/events.out", "w") as f:
    f.write("events")
''')
        self.assertEqual(source["tags"], {"tf": "tf"})
        self.assertEqual(sorted(a["key"] for a in source["artifacts"]),
                         ["syncable/__tensorboard__/events.out", "syncable/ckpt/model.txt", "syncable/ckpt/sub/opt.txt"])
        self.assertEqual(self.server.artifact(source["id"], "syncable/ckpt/model.txt"), b"weights v2")
        _, cwd = self.project_dir("restore")
        out = self.run_script("SOURCE = {!r}\n".format(source["id"]) + r'''
import json, os, foundations
sync = foundations.create_syncable_directory("ckpt", "restored", source_job_id=SOURCE)
files = {}
for root, _, names in os.walk("restored"):
    for n in names:
        with open(os.path.join(root, n)) as f:
            files[os.path.relpath(os.path.join(root, n), "restored")] = f.read()
print(json.dumps(files))
''', cwd).stdout
        self.assertEqual(json.loads(out), {"model.txt": "weights v2", os.path.join("sub", "opt.txt"): "optimizer"})

    def test_syncable_directories_chain_jobs(self):
        # Job 1 writes a checkpoint; job 2 continues from it and adds to it; job 3 finds all of
        # it. Atlas's documented path, foundations.artifacts.create_syncable_directory, works.
        step = r'''
import json, os, sys
import foundations
from foundations.artifacts import create_syncable_directory
source = sys.argv[2] if len(sys.argv) > 2 else None
sync = create_syncable_directory("ckpt", "ckpt", source)
found = sorted(os.path.relpath(os.path.join(r, n), "ckpt") for r, _, ns in os.walk("ckpt") for n in ns)
name = "step-{}.txt".format(sys.argv[1])
with open(os.path.join("ckpt", name), "w") as f:
    f.write("written by " + name)
if os.path.exists("ckpt/latest.txt"):
    with open("ckpt/latest.txt", "a") as f:
        f.write("+")
else:
    with open("ckpt/latest.txt", "w") as f:
        f.write("v")
sync.upload()
print(json.dumps({"found": found, "id": foundations._tracker.current().id}))
'''
        ids, seen = [], []
        for i in range(3):
            project, cwd = self.project_dir("chain", files={"main.py": step})
            r = self.server.run("main.py", cwd, args=[str(i + 1)] + ids[-1:])
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            ids.append(out["id"])
            seen.append(out["found"])
        self.assertEqual(seen, [[], ["latest.txt", "step-1.txt"], ["latest.txt", "step-1.txt", "step-2.txt"]])
        third = self.server.wait_job(ids[2])
        self.assertEqual(sorted(a["key"] for a in third["artifacts"]),
                         ["syncable/ckpt/latest.txt", "syncable/ckpt/step-1.txt", "syncable/ckpt/step-2.txt",
                          "syncable/ckpt/step-3.txt"], "job 3 keeps what it downloaded too")
        self.assertEqual(self.server.artifact(ids[2], "syncable/ckpt/latest.txt"), b"v++")

        # A driver (FOUNDATIONS_COMMAND_LINE) reads a job's directory: download() fills it, and
        # leaves alone a file changed here since the job uploaded it.
        _, cwd = self.project_dir("reader")
        r = self.run_script(r'''
import json, os, sys, time
import foundations
d = foundations.create_syncable_directory("ckpt", "results", sys.argv[1])
files = sorted(os.listdir("results"))
with open("results/latest.txt", "w") as f:
    f.write("changed here")
again = d.download()
with open("results/latest.txt") as f:
    kept = f.read()
os.remove("results/step-1.txt")
restored = d.download()
print(json.dumps([files, again, kept, restored]))
''', cwd, args=[ids[2]], env=self.server.env(FOUNDATIONS_COMMAND_LINE="True"))
        files, again, kept, restored = json.loads(r.stdout)
        self.assertEqual(files, ["latest.txt", "step-1.txt", "step-2.txt", "step-3.txt"])
        self.assertEqual((again, kept, restored), ([], "changed here", ["step-1.txt"]))
        self.assertEqual(r.stderr, "")

    def test_generate_random_parameters(self):
        _, cwd = self.project_dir("random")
        r = self.run_script(r'''
import json, random
import foundations
from foundations.parameters import generate_random_parameters
from foundations.parameters.generate_random_parameters import generate_random_parameters as atlas_path
space = {"lr": {"min": 0.001, "max": 0.1}, "widths": {"min": 8, "max": 64, "min_count": 1, "max_count": 3},
         "dropout": {"min": 0.1, "max": 0.5, "count_min": 2, "count_max": 2}, "optimizer": "adam", "epochs": 5}
draws = [generate_random_parameters(space) for _ in range(200)]
errors = []
for bad in ([1], {"a": {"min": 2, "max": 1}}, {"a": {"min": "x", "max": 1}}, {"a": {"min": 0, "max": 1, "min_count": 2}}):
    try:
        generate_random_parameters(bad)
    except (TypeError, ValueError) as e:
        errors.append(type(e).__name__)
same = (atlas_path is foundations.parameters.generate_random_parameters.generate_random_parameters
        is generate_random_parameters)
print(json.dumps({"draws": draws, "errors": errors, "same": same,
                  "seeded": generate_random_parameters(space, random.Random(7)) == generate_random_parameters(space, random.Random(7))}))
''', cwd)
        out = json.loads(r.stdout)
        self.assertEqual(out["errors"], ["TypeError", "ValueError", "TypeError", "ValueError"])
        self.assertTrue(out["same"] and out["seeded"])
        draws = out["draws"]
        self.assertTrue(all(0.001 <= d["lr"] <= 0.1 for d in draws))
        self.assertTrue(all(1 <= len(d["widths"]) <= 3 and all(8 <= w <= 64 for w in d["widths"]) for d in draws))
        self.assertEqual({len(d["widths"]) for d in draws}, {1, 2, 3}, "both ends of the count range are drawn")
        self.assertTrue(all(len(d["dropout"]) == 2 for d in draws))
        self.assertTrue(all(d["optimizer"] == "adam" and d["epochs"] == 5 for d in draws))
        self.assertGreater(len({d["lr"] for d in draws}), 150)
