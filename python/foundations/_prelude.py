"""The first process of a job in a Docker worker (run as a script, not imported).

    python3 /atlas/sdk/foundations/_prelude.py -- <command...>

It sends all output to the job's log file (mounted at $ATLAS_LOG_FILE), so the job keeps
logging while the server restarts; installs requirements.txt into the environment cached for
this (image, requirements) pair at /atlas/env, once; then runs the command, forwarding
SIGTERM and SIGINT to it and sampling its system metrics (foundations/_system.py), and exits
with its exit code. Standard library only: it must work in any image with Python 3.
"""
import fcntl
import os
import shutil
import signal
import subprocess
import sys

BANNER = "=" * 120
ENV_DIR = "/atlas/env"


def redirect_output():
    path = os.environ.get("ATLAS_LOG_FILE")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def say(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    return subprocess.call(cmd, stdout=sys.stdout, stderr=sys.stderr, **kw)


def ensure_env(req):
    """Returns (kind, path) of the environment holding the requirements: a virtualenv that
    sees the image's own packages, or a pip --target directory when the image has no venv."""
    key = os.environ.get("ATLAS_ENV_KEY", "")[:12]
    marker = os.path.join(ENV_DIR, ".atlas-complete")

    def ready():
        try:
            with open(marker) as f:
                return f.read().strip() or "venv"
        except OSError:
            return None

    kind = ready()
    if kind:
        say("Using cached environment for requirements.txt ({}): nothing to install.".format(key))
        return kind
    with open(os.path.join(ENV_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kind = ready()
        if kind:
            say("Using cached environment for requirements.txt ({}): nothing to install.".format(key))
            return kind
        say("Installing user requirements from requirements.txt into a new cached environment ({})...".format(key))
        for name in os.listdir(ENV_DIR):
            if name not in (".lock",):
                p = os.path.join(ENV_DIR, name)
                shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_BREAK_SYSTEM_PACKAGES="1")
        venv = os.path.join(ENV_DIR, "venv")
        if run([sys.executable, "-m", "venv", "--system-site-packages", venv], env=env) == 0 and \
                os.path.exists(os.path.join(venv, "bin", "python")):
            kind = "venv"
            rc = run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-r", req], env=env)
        else:
            say("(this image has no working venv module: installing with pip --target)")
            shutil.rmtree(venv, ignore_errors=True)
            kind = "site"
            rc = run([sys.executable, "-m", "pip", "install", "--target", os.path.join(ENV_DIR, "site"), "-r", req], env=env)
        if rc != 0:
            say("Installing user requirements failed (pip exited with {}).".format(rc))
            return None
        with open(marker, "w") as f:
            f.write(kind)
        return kind


def main():
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    redirect_output()
    if not args:
        say("Foundations ERROR: no command to run")
        return 1
    say(BANNER)
    env = dict(os.environ)
    if os.path.exists("requirements.txt") and os.path.isdir(ENV_DIR):
        kind = ensure_env(os.path.abspath("requirements.txt"))
        if kind is None:
            say(BANNER)
            return 1
        if kind == "venv":
            bindir = os.path.join(ENV_DIR, "venv", "bin")
            env["VIRTUAL_ENV"] = os.path.join(ENV_DIR, "venv")
        else:
            bindir = os.path.join(ENV_DIR, "site", "bin")
            env["PYTHONPATH"] = os.path.join(ENV_DIR, "site") + os.pathsep + env.get("PYTHONPATH", "")
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    else:
        say("No user requirements found.")
    say(BANNER)
    if args[0] in ("python", "python3") and shutil.which(args[0], path=env.get("PATH")) is None:
        args[0] = sys.executable
    try:
        child = subprocess.Popen(args, env=env)
    except OSError as e:
        say("Foundations ERROR: cannot start {!r}: {}".format(args[0], e))
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    sampler = sample(child.pid)
    while True:
        try:
            rc = child.wait()
            break
        except InterruptedError:
            continue
    if sampler is not None:
        sampler.close(5.0)  # the rest stays in the job's spool, which the server stores
    return 128 - rc if rc < 0 else rc


def sample(pid):
    """Starts sampling the command's system metrics (foundations/_system.py); None if it cannot."""
    try:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from foundations import _system
        from foundations._client import Client
        return _system.start(Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], os.environ.get("FOUNDATIONS_TOKEN")),
                             os.environ["FOUNDATIONS_JOB_ID"], pid)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
