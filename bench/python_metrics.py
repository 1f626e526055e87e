#!/usr/bin/env python3
"""Metric points/s from one Python process, and a check that nothing was lost.

Starts a real atlas-server (bin/atlas-server, or $ATLAS_SERVER_BIN) with a temporary
FOUNDATIONS_HOME and runs one tracked Python script per run that logs 1,000,000 points over 4
keys (by default) in one of two ways:

  loop   foundations.log_metric(key, value) once per point, in a loop;
  batch  foundations.log_metric(key, values) with lists of --chunk values each (the lists are
         made before the clock starts, as an epoch's losses would be).

It measures from the first call until foundations.flush() returns, i.e. until the server has
acknowledged every point, then asks the API how many points each key has and checks the last
value. Target: >= 1,000,000 points/s with nothing lost, for each way. It also prints the CPU
time per point of the script's process over that span (all its threads: the calls, encoding,
the spool, sending; the loop of the benchmark itself included) and of the server over the run.

    python3 bench/python_metrics.py [--mode loop|batch|both] [--points N] [--keys K]
                                    [--chunk C] [--runs R] [--profile]

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

TARGET = 1_000_000

# The measured process. Values are floats (the common case: losses, accuracies).
SCRIPT = r'''
import json, sys, time
import foundations

points, nkeys, profile, mode, chunk = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], int(sys.argv[5])
keys = ["metric_{}".format(k) for k in range(nkeys)]
log_metric = foundations.log_metric
per_key = points // nkeys
if mode == "batch":  # value i of the run (in the loop's order) goes to key i % nkeys
    lists = [(keys[k], [(start + j) * nkeys * 0.001 + k * 0.001 for j in range(min(chunk, per_key - start))])
             for start in range(0, per_key, chunk) for k in range(nkeys)]

def run():
    c0, t0 = time.process_time(), time.perf_counter()
    if mode == "batch":
        for key, values in lists:
            log_metric(key, values)
    else:
        i = 0
        for _ in range(per_key):
            for k in keys:
                log_metric(k, i * 0.001)
                i += 1
    t1 = time.perf_counter()
    ok = foundations.flush()
    t2 = time.perf_counter()
    return t0, t1, t2, ok, time.process_time() - c0

if profile:
    import cProfile, pstats
    prof = cProfile.Profile()
    t0, t1, t2, ok, cpu = prof.runcall(run)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)
else:
    t0, t1, t2, ok, cpu = run()
print(json.dumps({"job": foundations._tracker.current().id, "loop": t1 - t0, "flush": t2 - t1,
                  "total": t2 - t0, "acknowledged": ok, "cpu": cpu}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("loop", "batch", "both"), default="both")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=1000, help="values per log_metric call in batch mode")
    ap.add_argument("--runs", type=int, default=1, help="separate processes (jobs) per mode, one after the other")
    ap.add_argument("--profile", action="store_true", help="cProfile the calls (slower); stats on stderr")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a mode is below the target rate")
    args = ap.parse_args()
    points = args.points // args.keys * args.keys
    modes = ("loop", "batch") if args.mode == "both" else (args.mode,)

    try:
        server = AtlasServer(workers=1).start()
    except unittest.SkipTest as e:
        sys.exit("python_metrics: {}".format(e))
    work = tempfile.mkdtemp(prefix="atlas-bench-")
    lost = False
    best = {}
    try:
        with open(os.path.join(work, "bench.py"), "w") as f:
            f.write(SCRIPT)
        print("python_metrics: {:,} points over {} keys per run, server {}".format(points, args.keys, server.url))
        # Runs alternate between the modes, so that both see the same machine.
        for run in range(args.runs):
            for mode in modes:
                rate, ok = measure(server, work, mode, points, args, run)
                lost = lost or not ok
                best[mode] = max(best.get(mode, 0), rate)
        for mode in modes:
            print("python_metrics: {}: {:,.0f} points/s (best of {}), target {:,}: {}".format(
                "log_metric per point" if mode == "loop" else "log_metric of {:,}-value lists".format(args.chunk),
                best[mode], args.runs, TARGET, "met" if best[mode] >= TARGET else "MISSED"))
        print("python_metrics: lost points: {}".format("yes" if lost else "none"))
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    if lost or (args.strict and min(best.values()) < TARGET):
        sys.exit(1)


def measure(server, work, mode, points, args, run):
    """One run of the script in mode; returns (points/s, nothing lost?)."""
    server0 = process_cpu(server.proc.pid)
    r = server.run("bench.py", work, args=[str(points), str(args.keys), "1" if args.profile else "0", mode,
                                           str(args.chunk)], timeout=900)
    server_cpu = process_cpu(server.proc.pid) - server0
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
    ok = not bad and round(last.get("metric_0", -1), 9) == want_last and res["acknowledged"]
    rate = points / res["total"]
    print("  run {} {:5}: calls {:.3f}s ({:,.0f} points/s), flush {:.3f}s, total {:.3f}s -> {:,.0f} points/s; "
          "CPU per point: SDK {:.2f} us, server {:.2f} us; stored per key: {} (want {:,}){}".format(
              run + 1, mode, res["loop"], points / res["loop"], res["flush"], res["total"], rate,
              res["cpu"] / points * 1e6, server_cpu / points * 1e6,
              "all {:,}".format(per_key) if not bad else bad, per_key, "" if ok else "  LOST POINTS"))
    return rate, ok


def process_cpu(pid):
    """CPU seconds (user and system) of a running process so far, from /proc (0 where there is none)."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
