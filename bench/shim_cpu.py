#!/usr/bin/env python3
"""CPU per job of the process executor's shim, against fork/exec of the same command.

Runs `/bin/true` --jobs times, in rounds, three ways, and reads the CPU time of the children
(getrusage), so that the figure holds the command, whoever starts it:

  fork/exec   the command itself, started by this script;
  shim        one atlas-shim (bin/atlas-shim, or --shim) that runs job after job: given each
              job's spec file path on its stdin, it says on fd 3 that it took the job ('t')
              and that the job ended ('e'), as atlas-server drives it;
  old shim    with --old-shim PATH, a shim of a build from before shims ran job after job,
              started once per job with the spec file as its argument.

    python3 bench/shim_cpu.py [--shim PATH] [--old-shim PATH] [--jobs N] [--rounds R]
"""
import argparse
import json
import os
import resource
import subprocess
import tempfile


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def per_job(run, jobs):
    before = children_cpu()
    run()
    return (children_cpu() - before) / jobs * 1000


def fork_exec(jobs):
    for _ in range(jobs):
        subprocess.run(["/bin/true"], check=True)


def old_shim(shim, spec, jobs):
    for _ in range(jobs):
        subprocess.run([shim, spec], check=True)


def shim_job_after_job(shim, spec, jobs):
    r, w = os.pipe()
    r2 = os.dup(r)  # fd 3 is the shim's: keep the reading end off it
    os.close(r)
    os.dup2(w, 3, inheritable=True)
    os.close(w)
    p = subprocess.Popen([shim, "-"], stdin=subprocess.PIPE, pass_fds=(3,), env={"GOMAXPROCS": "1"})
    os.close(3)
    try:
        for _ in range(jobs):
            p.stdin.write((spec + "\n").encode())
            p.stdin.flush()
            for word in (b"t", b"e"):
                got = os.read(r2, 1)
                if got != word:
                    raise SystemExit(f"shim said {got!r}, not {word!r} (see its log)")
    finally:
        p.stdin.close()
        p.wait()
        os.close(r2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shim", default="bin/atlas-shim")
    ap.add_argument("--old-shim")
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = os.path.join(d, "work")
        os.mkdir(work)
        spec = os.path.join(d, "job.json")
        with open(spec, "w") as f:
            json.dump({"job_id": "bench", "work_dir": work, "entrypoint": ["/bin/true"], "command": [],
                       "python": "python3", "envs_dir": os.path.join(d, "envs"),
                       "exit_file": os.path.join(d, "job.exit"), "log_path": os.path.join(d, "job.log"),
                       "env": ["PATH=/usr/bin:/bin"]}, f)
        for k in range(1, a.rounds + 1):
            base = per_job(lambda: fork_exec(a.jobs), a.jobs)
            shim = per_job(lambda: shim_job_after_job(os.path.abspath(a.shim), spec, a.jobs), a.jobs)
            line = f"round {k}: fork/exec {base:.2f} ms CPU per job; shim, job after job, {shim:.2f} ms (+{shim - base:.2f})"
            if a.old_shim:
                old = per_job(lambda: old_shim(a.old_shim, spec, a.jobs), a.jobs)
                line += f"; a shim per job {old:.2f} ms (+{old - base:.2f})"
            print(line)


if __name__ == "__main__":
    main()
