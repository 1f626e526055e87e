"""A small hyperparameter search over main.py.

Queues one job per combination of the grid below with foundations.submit, on the scheduler
named by the submission config `scheduler` (the local Atlas server). With one worker the jobs
run one after another; `atlas-server start --workers N` runs N at a time. The script then
waits for the jobs and prints each job's final validation accuracy, best first; it exits
non-zero when a job did not complete.

    python search.py            # queue the jobs, wait for them, print the results
    python search.py --no-wait  # only queue them; follow them in the GUI

This script needs only the Atlas SDK (pip install foundations-*.whl), not the ML stack: it
runs on your machine, the jobs run in the worker.
"""
import itertools
import os
import sys

import foundations

GRID = {
    "hidden_layer_size": [32, 128],
    "learning_rate": [0.001, 0.01],
}
FIXED = {"epochs": 15}

here = os.path.dirname(os.path.abspath(__file__))
jobs = []
for values in itertools.product(*GRID.values()):
    params = {**FIXED, **dict(zip(GRID, values))}
    job = foundations.submit(scheduler_config="scheduler", job_directory=here, command=["main.py"], params=params)
    print(f"queued {job.job_name()}: {params}", flush=True)
    jobs.append((job, params))

if "--no-wait" in sys.argv[1:]:
    sys.exit(0)

results, failed = [], 0
for job, params in jobs:
    status = job.wait_for_deployment_to_complete(log_output=False)
    if status != "completed":
        print(f"job {job.job_name()} {status}: foundations get logs scheduler {job.job_name()}", file=sys.stderr)
        failed += 1
        continue
    results.append((job.get_metric("val_accuracy"), job.job_name(), params))

for accuracy, job_id, params in sorted(results, key=lambda r: r[0], reverse=True):
    print(f"val_accuracy {accuracy:.4f}  {job_id}  {params}")
sys.exit(1 if failed else 0)
