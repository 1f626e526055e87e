#!/usr/bin/env python3
"""Metric points/s from one Python process, and a check that nothing was lost.

Starts a real atlas-server (bin/atlas-server, or $ATLAS_SERVER_BIN) with a temporary
FOUNDATIONS_HOME, runs one tracked Python script that calls foundations.log_metric in a loop
(1,000,000 points over 4 keys by default), and measures from the first call until
foundations.flush() returns, i.e. until the server has acknowledged every point. Then it asks
the API how many points each key has. Target: >= 200,000 points/s with nothing lost.

    python3 bench/python_metrics.py [--points N] [--keys K] [--runs R] [--profile]

Exit status 1 if a point was lost (or the target was missed with --strict).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))
os.environ.setdefault("ATLAS_SERVER_BIN", os.path.join(REPO, "bin", "atlas-server"))

from tests.atlas_server import AtlasServer  # noqa: E402

TARGET = 200_000

# The measured process. Values are floats (the common case: losses, accuracies).
SCRIPT = r'''
import json, sys, time
import foundations

points, nkeys, profile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
keys = ["metric_{}".format(k) for k in range(nkeys)]
log_metric = foundations.log_metric

def run():
    t0 = time.perf_counter()
    i = 0
    for _ in range(points // nkeys):
        for k in keys:
            log_metric(k, i * 0.001)
            i += 1
    t1 = time.perf_counter()
    ok = foundations.flush()
    t2 = time.perf_counter()
    return t0, t1, t2, ok

if profile:
    import cProfile, pstats
    prof = cProfile.Profile()
    t0, t1, t2, ok = prof.runcall(run)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)
else:
    t0, t1, t2, ok = run()
print(json.dumps({"job": foundations._tracker.current().id, "loop": t1 - t0, "flush": t2 - t1,
                  "total": t2 - t0, "acknowledged": ok}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1, help="separate processes (jobs) one after the other")
    ap.add_argument("--profile", action="store_true", help="cProfile the loop (slower); stats on stderr")
    ap.add_argument("--strict", action="store_true", help="exit 1 when below the target rate")
    args = ap.parse_args()
    points = args.points // args.keys * args.keys

    try:
        server = AtlasServer(workers=1).start()
    except unittest.SkipTest as e:
        sys.exit("python_metrics: {}".format(e))
    work = tempfile.mkdtemp(prefix="atlas-bench-")
    lost = False
    rates = []
    try:
        with open(os.path.join(work, "bench.py"), "w") as f:
            f.write(SCRIPT)
        print("python_metrics: {:,} points over {} keys per run, server {}".format(points, args.keys, server.url))
        for run in range(args.runs):
            r = server.run("bench.py", work, args=[str(points), str(args.keys), "1" if args.profile else "0"],
                           timeout=900)
            if r.returncode != 0:
                print(r.stdout, r.stderr, file=sys.stderr)
                raise SystemExit("python_metrics: the benchmark script failed")
            if args.profile:
                sys.stderr.write(r.stderr)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            job = server.wait_job(res["job"])
            per_key = points // args.keys
            counts = {m["key"]: m["count"] for m in job["metrics"]}
            bad = {}
            for k in range(args.keys):
                key = "metric_{}".format(k)
                total = server.metric(res["job"], key)["total"]
                if counts.get(key) != per_key or total != per_key:
                    bad[key] = (counts.get(key), total)
            last = {m["key"]: m["last"] for m in job["metrics"]}
            want_last = round((points - args.keys) * 0.001, 9)
            if bad or round(last.get("metric_0", -1), 9) != want_last or not res["acknowledged"]:
                lost = True
            rate = points / res["total"]
            rates.append(rate)
            print("  run {}: log_metric loop {:.3f}s ({:,.0f} calls/s), flush {:.3f}s, total {:.3f}s -> {:,.0f} points/s; "
                  "stored per key: {} (want {:,}){}".format(
                      run + 1, res["loop"], points / res["loop"], res["flush"], res["total"], rate,
                      "all {:,}".format(per_key) if not bad else bad, per_key,
                      "" if not lost else "  LOST POINTS"))
        best = max(rates)
        print("python_metrics: {:,.0f} points/s (best of {}), target {:,}: {}; lost points: {}".format(
            best, len(rates), TARGET, "met" if best >= TARGET else "MISSED", "yes" if lost else "none"))
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    if lost or (args.strict and max(rates) < TARGET):
        sys.exit(1)


if __name__ == "__main__":
    main()
