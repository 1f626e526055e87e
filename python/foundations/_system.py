"""System metrics of a job: the CPU and memory of its processes and the use of its GPUs, sampled
every few seconds by the job's in-job side into ordinary metric series under "system/".

    system/cpu_percent            CPU time the job's processes used over the last interval, in % of
                                  one core (200 = two cores busy)
    system/rss_mb                 resident memory of the job's processes, MiB (the sum of their RSS)
    system/peak_rss_mb            the highest system/rss_mb so far (a point each time it rises)
    system/gpu<N>/util_percent    utilisation of the job's N-th GPU (N as the job numbers them:
                                  cuda:N), as nvidia-smi reports it
    system/gpu<N>/memory_mb       memory used on that GPU, MiB (by every process on it)
    system/gpu<N>/peak_memory_mb  the highest system/gpu<N>/memory_mb so far

The peak series exist because the jobs table shows (and sorts by) a metric's last value. The
step of every point is the number of seconds since sampling began, its time the wall clock.

"The job's processes" is the process tree of its command, read from /proc: CPU time includes
children that ended (the kernel adds a reaped child's time to its parent). GPUs come from
`nvidia-smi --query-gpu` when it is on PATH, limited to those CUDA_VISIBLE_DEVICES (else
NVIDIA_VISIBLE_DEVICES) gives the job.

FOUNDATIONS_SYSTEM_METRICS_INTERVAL is the interval in seconds (default 5, at least 1; 0 or
"off" samples nothing). The first sample is taken a second after sampling starts, so jobs of
a few seconds get one.

Every executor's in-job side uses this module: _runner.py (Kubernetes, Slurm) and _prelude.py
(Docker) sample in a thread from the command's start; the process executor's shim runs this
file beside a command that is still running after half a second,

    python3 -I -S <sdk>/foundations/_system.py <pid of the command>

which samples until its standard input is closed. Sampling never fails a job: whatever cannot
be read is left out quietly. Standard library only.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

if __package__ in (None, ""):  # run as a script: the SDK is the folder above this file
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "foundations"

from foundations._client import Client  # noqa: E402
from foundations._delivery import Writer  # noqa: E402

INTERVAL_ENV = "FOUNDATIONS_SYSTEM_METRICS_INTERVAL"
DEFAULT_INTERVAL = 5.0
FIRST_SAMPLE = 1.0
GPU_QUERY = ("--query-gpu=index,uuid,utilization.gpu,memory.used", "--format=csv,noheader,nounits")
GPU_TIMEOUT = 10.0
GPU_GIVE_UP = 3  # nvidia-smi failures in a row after which GPUs are no longer asked for
MIB = float(1 << 20)


def interval(env=None):
    """The sampling interval in seconds, or None when sampling is off."""
    raw = (os.environ if env is None else env).get(INTERVAL_ENV, "").strip().lower()
    if raw in ("off", "false", "no", "none"):
        return None
    try:
        v = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        v = DEFAULT_INTERVAL
    if not v > 0:  # 0, negative, NaN
        return None
    return max(1.0, min(v, 86400.0))


def read_procs(proc="/proc"):
    """{pid: (ppid, CPU ticks of the process and its reaped children, resident pages)}."""
    out = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), "rb") as f:
                data = f.read()
            # The command name (field 2) may hold spaces and parentheses: fields follow the last ")".
            rest = data[data.rindex(b")") + 2:].split()
            out[int(name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]), int(rest[21]))
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile, or is not readable
    return out


def tree(procs, root):
    """The pids of root and its descendants among procs."""
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    if root not in procs:
        return []
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def visible_gpus(env=None):
    """The GPUs the job was given: a list of indexes or UUIDs in the job's order, [] for none,
    None for every GPU nvidia-smi shows."""
    env = os.environ if env is None else env
    for k in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        if k not in env:
            continue
        v = env[k].strip()
        if v.lower() == "all":
            return None
        out = []
        for e in v.split(","):
            e = e.strip()
            if not e or e.startswith("-") or e.lower() in ("none", "void", "nodevfiles"):
                break  # CUDA ignores the devices after an invalid one
            out.append(e)
        return out
    return None


def parse_gpus(text):
    """Rows of the GPU query: [(index, uuid, utilisation or None, memory MiB or None)]."""
    def num(s):
        try:
            return float(s)
        except ValueError:
            return None  # "[N/A]", "[Not Supported]"

    rows = []
    for line in text.splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) >= 4 and f[0]:
            rows.append((f[0], f[1], num(f[2]), num(f[3])))
    return rows


def pick_gpus(rows, wanted):
    """The rows of the wanted GPUs, in the job's order."""
    if wanted is None:
        return rows
    out = []
    for e in wanted:
        for r in rows:
            if r not in out and (r[0] == e or r[1] == e or (len(e) > 4 and r[1].startswith(e))):
                out.append(r)
                break
    if not out and len(rows) == len(wanted):
        # A container given only the job's GPUs numbers them from 0 whatever the host's ids.
        return rows
    return out


class GPUs:
    """nvidia-smi, when there is one."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.wanted = visible_gpus(env)
        self.exe = None if self.wanted == [] else shutil.which("nvidia-smi", path=env.get("PATH"))
        self.failures = 0

    def read(self):
        if self.exe is None or self.failures >= GPU_GIVE_UP:
            return []
        try:
            r = subprocess.run((self.exe,) + GPU_QUERY, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=GPU_TIMEOUT)
        except (OSError, subprocess.SubprocessError):
            self.failures += 1
            return []
        if r.returncode != 0:
            self.failures += 1
            return []
        self.failures = 0
        return pick_gpus(parse_gpus(r.stdout.decode("utf-8", "replace")), self.wanted)


class Sampler:
    """Samples the process tree of root_pid (and the GPUs) every `every` seconds into writer."""

    def __init__(self, writer, root_pid, every, env=None, proc="/proc"):
        self.writer = writer
        self.root = root_pid
        self.every = every
        self.proc = proc
        self.gpus = GPUs(env)
        self.hz = os.sysconf("SC_CLK_TCK")
        self.page_mb = os.sysconf("SC_PAGE_SIZE") / MIB
        self.done = threading.Event()
        self.start_time = time.monotonic()
        self.last = None  # (monotonic time, CPU ticks of the tree) of the previous reading
        self.step = -1
        self.peaks = {}
        self.thread = threading.Thread(target=self._loop, name="foundations-system-metrics", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _loop(self):
        self._read()  # the baseline of CPU time
        delay = FIRST_SAMPLE
        while not self.done.wait(delay):
            began = time.monotonic()
            try:
                self.sample()
            except Exception:  # never let sampling disturb the job
                pass
            delay = max(0.0, self.every - (time.monotonic() - began))

    def _read(self):
        now = time.monotonic()
        procs = read_procs(self.proc)
        pids = tree(procs, self.root)
        if not pids:
            return None
        ticks = sum(procs[p][1] for p in pids)
        rss = sum(procs[p][2] for p in pids) * self.page_mb
        prev, self.last = self.last, (now, ticks)
        cpu = None
        if prev is not None and now > prev[0]:
            # A process that left the tree (reparented to init) takes its time along: never below 0.
            cpu = max(0, ticks - prev[1]) / self.hz / (now - prev[0]) * 100
        return cpu, rss

    def sample(self):
        got = self._read()
        if got is None:
            return
        cpu, rss = got
        self.step = max(self.step + 1, int(round(time.monotonic() - self.start_time)))
        if cpu is not None:
            self._add("system/cpu_percent", cpu)
        self._add("system/rss_mb", rss, peak="system/peak_rss_mb")
        for n, (_, _, util, mem) in enumerate(self.gpus.read()):
            if util is not None:
                self._add("system/gpu{}/util_percent".format(n), util)
            if mem is not None:
                self._add("system/gpu{}/memory_mb".format(n), mem, peak="system/gpu{}/peak_memory_mb".format(n))

    def _add(self, key, value, peak=None):
        value = round(value, 1)
        self.writer.add_metric(key, value, self.step)
        if peak is not None and value > self.peaks.get(peak, -1.0):
            self.peaks[peak] = value
            self.writer.add_metric(peak, value, self.step)

    def close(self, timeout):
        """Stops sampling and delivers what was sampled (up to timeout; the rest stays spooled)."""
        self.done.set()
        self.thread.join(GPU_TIMEOUT + 1)
        return self.writer.close(timeout)


def start(client, job_id, root_pid, spool=None, env=None):
    """Starts sampling the job's command (root_pid) into job_id; None when sampling is off or
    cannot start."""
    every = interval(env)
    if every is None or not os.path.isdir("/proc"):
        return None
    try:
        return Sampler(Writer(client, job_id, spool=spool), root_pid, every, env).start()
    except Exception:
        return None


def main(argv):
    """The process executor's sidecar: samples the pid in argv[1] until stdin is closed."""
    # Stopping a job signals its whole process group: keep sampling until the shim, which
    # outlives the command, says it has ended.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    env = os.environ
    if len(argv) != 2 or not argv[1].isdigit() or not env.get("FOUNDATIONS_JOB_ID") or \
            not env.get("FOUNDATIONS_SCHEDULER_URL"):
        return 2
    s = start(Client(env["FOUNDATIONS_SCHEDULER_URL"], env.get("FOUNDATIONS_TOKEN")), env["FOUNDATIONS_JOB_ID"],
              int(argv[1]))
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    if s is not None:
        s.close(5.0)  # what is not delivered by then stays in the job's spool, which the server stores
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
