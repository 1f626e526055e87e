#!/usr/bin/env python3
"""ASHA against random and grid search on a real learning task, through a real atlas-server.

The task (bench/search/trial/main.py): scikit-learn's digits data set, bundled with Debian's
python3-sklearn, an MLPClassifier trained epoch by epoch with partial_fit, validation accuracy
logged after every epoch (at most 27 epochs). The three searches share the space (learning
rate, L2 penalty, hidden units, batch size; the grid takes 3 or 2 points of each range) and the
budget: the epochs of the 24 points of the grid run to the end, 24 × 27 = 648 epochs. asha
draws points with the same seed as random, stops trials at rungs after 1, 3 and 9 epochs
(reduction factor 3), and is stopped by this script once its trials have trained the budget.

For each search it reports the best validation accuracy, and the epochs (all trials', counted
in the order they were trained) and the wall time it needed to reach within 0.5 percentage
points of the best accuracy any of the searches found. The grid has no seed and a trial's curve
is a function of its params, so the grid runs once and is compared with every seed's searches.

    python3 bench/search_bench.py [--seeds 1,2,3] [--workers 2] [--python /usr/bin/python3]

Needs bin/atlas-server (make build) and python3-sklearn for the jobs' interpreter.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
os.environ.setdefault("ATLAS_SERVER_BIN", os.path.join(REPO, "bin", "atlas-server"))
os.environ["FOUNDATIONS_COMMAND_LINE"] = "True"  # the driver is not a job

from tests.atlas_server import AtlasServer  # noqa: E402

TRIAL_DIR = os.path.join(REPO, "bench", "search", "trial")
EPOCHS = 27
GRID_POINTS = 24
BUDGET = GRID_POINTS * EPOCHS
WITHIN = 0.005  # "within 0.5 %": 0.5 percentage points of accuracy

SPACE = {
    "lr": {"type": "log_uniform", "min": 1e-4, "max": 1.0},
    "alpha": {"type": "log_uniform", "min": 1e-6, "max": 1e-1},
    "hidden": {"type": "categorical", "values": [16, 128]},
    "batch_size": {"type": "categorical", "values": [32, 256]},
    "epochs": EPOCHS,
}
# The grid of the same space: 3 × 2 × 2 × 2 = 24 points.
GRID_SPACE = dict(SPACE, lr=dict(SPACE["lr"], count=3), alpha=dict(SPACE["alpha"], count=2))


def searches(seed, workers):
    common = {"metric": "val_acc", "smaller_is_better": False, "max_concurrent_trials": workers, "params": SPACE}
    return [
        ("asha", dict(common, method="asha", seed=seed, max_trials=1000, reduction_factor=3, min_steps=1, max_steps=EPOCHS)),
        ("random", dict(common, method="random", seed=seed, max_trials=BUDGET // EPOCHS)),
        ("grid", dict(common, method="grid", params=GRID_SPACE)),
    ]


def get(server, path):
    with urllib.request.urlopen(server.url + path, timeout=120) as r:
        return json.loads(r.read())


def run_search(server, name, spec):
    """Runs a search to its end, or, when it plans more than the budget (asha), stops it once
    its trials have trained the budget; returns the search, its start time and the points of
    every trial."""
    import foundations

    start = time.time()
    s = foundations.search(job_directory=TRIAL_DIR, command="main.py", search=spec)
    d = s.get_search_details()
    must_stop = d["trials_planned"] * EPOCHS > BUDGET  # asha: it would go on past the budget
    while d["state"] not in ("completed", "stopped", "failed"):
        if must_stop and sum(t["count"] for t in d.get("trials") or ()) >= BUDGET:
            s.stop(wait=False)
            must_stop = False
        d = get(server, "/api/v1/searches/{}?wait_since={}&timeout=30s".format(s.search_id(), d["version"]))
    if d["state"] == "failed":
        raise SystemExit("search {} failed: {}".format(name, d.get("reason")))
    points = []
    for t in d["trials"]:
        if not t.get("count"):
            continue  # stopped with the search before it logged anything
        m = get(server, "/api/v1/jobs/{}/metrics/val_acc?max_points=100000".format(urllib.parse.quote(t["job_id"])))
        points += [(p["time"], p["value"]) for p in m["points"] if isinstance(p["value"], (int, float))]
    points.sort()
    return {"name": name, "search": d, "start": start, "end": time.time(), "points": points}


def reach(run, target):
    """Epochs trained (by all trials, in time order) and seconds since the search started, until
    the first epoch at or above target; None when it never got there."""
    for n, (t, v) in enumerate(run["points"], 1):
        if v >= target:
            return n, t - run["start"]
    return None


def summary(seed, r, best_any):
    got = reach(r, best_any - WITHIN)
    trials = r["search"]["trials"]
    return {
        "seed": seed, "method": r["name"], "best": max(v for _, v in r["points"]), "best_any": best_any,
        "epochs_to_target": got[0] if got else None, "seconds_to_target": got[1] if got else None,
        "epochs": len(r["points"]), "trials": len(trials),
        "stopped_early": sum(1 for t in trials if t.get("stopped_at") is not None),
        "seconds": r["end"] - r["start"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1", help="comma-separated seeds of random and asha (each a full round)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--python", default="/usr/bin/python3", help="the jobs' interpreter (with python3-sklearn)")
    ap.add_argument("--json", help="also write the results, and every run's points, here")
    args = ap.parse_args()
    if subprocess.run([args.python, "-c", "import sklearn"], capture_output=True).returncode != 0:
        raise SystemExit("{} cannot import sklearn: apt-get install python3-sklearn".format(args.python))
    results, raw = [], []
    grid = None  # the grid has no seed, and a trial's curve is a function of its params: it runs once
    for seed in [int(x) for x in args.seeds.split(",")]:
        server = AtlasServer(workers=args.workers, args=["--python", args.python]).start()
        os.environ["FOUNDATIONS_HOME"] = server.home
        try:
            runs = [run_search(server, name, spec) for name, spec in searches(seed, args.workers) if name != "grid" or grid is None]
        finally:
            server.close()
        raw += [dict(r, seed=seed) for r in runs]
        if grid is None:
            grid = runs[-1]
        else:
            runs.append(grid)
        best = max(v for r in runs for _, v in r["points"])
        for r in runs:
            results.append(summary(seed, r, best))
            print("seed {seed} {method:6} best {best:.4f} (any {best_any:.4f}); to within 0.5 pt: {e} epochs, {s}; "
                  "{epochs} epochs in {trials} trials ({stopped_early} stopped early), {seconds:.0f} s".format(
                      e=results[-1]["epochs_to_target"] or "never",
                      s="-" if results[-1]["seconds_to_target"] is None else "{:.0f} s".format(results[-1]["seconds_to_target"]),
                      **results[-1]), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"results": results, "runs": raw}, f)
    print()
    print("| seed | method | best val. accuracy | epochs to within 0.5 pt of the best | wall time to it | epochs trained (trials, stopped early) | search wall time |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print("| {seed} | {method} | {best:.4f} | {e} | {s} | {epochs} ({trials}, {stopped_early}) | {seconds:.0f} s |".format(
            e=r["epochs_to_target"] or "not reached", s="{:.0f} s".format(r["seconds_to_target"]) if r["seconds_to_target"] is not None else "-", **r))
    for method in ("asha", "random", "grid"):
        es = [r["epochs_to_target"] for r in results if r["method"] == method and r["epochs_to_target"]]
        if es:
            print("{}: median epochs to target {}".format(method, statistics.median(es)))


if __name__ == "__main__":
    main()
