"""Where things are: FOUNDATIONS_HOME, submission configs, the job's environment.

Only the standard library is used, so a tiny reader handles the few top-level YAML keys the SDK
needs (scheduler_url, token, project_name); the server parses job.config.yaml in full.
"""
import os
import re
import sys

TRUE_VALUES = ("true", "1", "yes")

_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")


def home():
    return os.environ.get("FOUNDATIONS_HOME") or os.path.join(os.path.expanduser("~"), ".foundations")


def command_line_mode():
    """FOUNDATIONS_COMMAND_LINE set to True/true/1: this process only submits jobs."""
    return os.environ.get("FOUNDATIONS_COMMAND_LINE", "").strip().lower() in TRUE_VALUES


def scheduled_job():
    """The id of the scheduled job this process runs in: FOUNDATIONS_JOB_ID that comes with that
    job's own FOUNDATIONS_TOKEN, as the scheduler starts every job. None otherwise (a script
    run by hand, even with FOUNDATIONS_JOB_ID set)."""
    job_id = os.environ.get("FOUNDATIONS_JOB_ID")
    if job_id and os.environ.get("FOUNDATIONS_TOKEN", "").startswith("job." + job_id + "."):
        return job_id
    return None


def run_by_hand():
    """Whether this process is a script file run by hand (`python main.py`): not an interactive
    session, `python -c`, `python -m module`, a test runner importing the SDK as a library, or a
    multiprocessing worker of such a script."""
    main = sys.modules.get("__main__")
    if main is None or not getattr(main, "__file__", None) or getattr(main, "__spec__", None) is not None:
        return False
    mp = sys.modules.get("multiprocessing")
    if mp is not None and getattr(mp, "parent_process", lambda: None)() is not None:
        return False
    return not any(m in sys.modules for m in ("_pytest", "nose"))


def top_level_scalars(text):
    """Returns the top-level `key: scalar` pairs of a YAML document (nested blocks are skipped)."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] in " \t#-":
            continue
        m = _LINE.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if value.startswith(("'", '"')):
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            value = value.split(" #", 1)[0].strip()
        if value in ("", "~", "null"):
            continue
        out[key] = value
    return out


def submission_dirs():
    return [os.path.join(os.getcwd(), "config", "submission"), os.path.join(home(), "config", "submission")]


def load_submission(name):
    """Returns (scheduler_url, token) of the submission config called name."""
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError("invalid scheduler config name {!r}".format(name))
    if name == "scheduler" and os.environ.get("FOUNDATIONS_JOB_ID") and os.environ.get("FOUNDATIONS_SCHEDULER_URL"):
        # Inside a job, "scheduler" is the server that runs it (in a Docker worker there is no
        # config file, and the server is reached through its unix socket).
        return os.environ["FOUNDATIONS_SCHEDULER_URL"].rstrip("/"), os.environ.get("FOUNDATIONS_TOKEN")
    tried = []
    no_url = None
    for d in submission_dirs():
        path = os.path.join(d, name + ".config.yaml")
        if not os.path.exists(path):
            tried.append(path)
            continue
        with open(path, encoding="utf-8") as f:
            values = top_level_scalars(f.read())
        url = values.get("scheduler_url")
        if not url:
            # A project's config may carry other keys only: the scheduler is then the one of
            # $FOUNDATIONS_HOME's config of that name (as `foundations submit` does).
            no_url = no_url or path
            continue
        return url.rstrip("/"), token_for(url, values.get("token"))
    if no_url:
        raise ValueError("{}: scheduler_url is missing".format(no_url))
    raise ValueError("could not find submission configuration with name {!r} (looked for {})".format(name, " and ".join(tried)))


def token_for(url, config_token=None):
    """FOUNDATIONS_TOKEN, then credentials.yaml, then the submission config's token."""
    if os.environ.get("FOUNDATIONS_TOKEN"):
        return os.environ["FOUNDATIONS_TOKEN"]
    path = os.path.join(home(), "credentials.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return config_token
    # credentials.yaml: servers: {<url>: {token: ...}}, default: {token: ...}, at any indentation.
    section, current, server_indent, default, found = None, None, None, None, None
    want = url.rstrip("/")
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = stripped.split(":", 1)[0].strip("'\"")
            current = "default" if section == "default" else None
            server_indent = None
        elif section == "servers" and stripped.endswith(":") and (server_indent is None or indent == server_indent):
            server_indent = indent
            current = stripped[:-1].strip().strip("'\"")
        elif stripped.startswith("token:"):
            value = stripped[len("token:"):].strip().strip("'\"")
            if current == "default":
                default = value
            elif current == want:
                found = value
    return found or default or config_token


def local_scheduler_url():
    """The URL of the local server: the job's environment, else the `scheduler` config."""
    url = os.environ.get("FOUNDATIONS_SCHEDULER_URL")
    if url:
        return url.rstrip("/"), os.environ.get("FOUNDATIONS_TOKEN")
    try:
        return load_submission("scheduler")
    except (ValueError, OSError):
        return "http://127.0.0.1:5555", token_for("http://127.0.0.1:5555")


def project_from_job_config(directory):
    path = os.path.join(directory, "job.config.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            return top_level_scalars(f.read()).get("project_name")
    except OSError:
        return None


def read_job_config(directory):
    path = os.path.join(directory, "job.config.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def spool_dir():
    return os.environ.get("FOUNDATIONS_SPOOL_DIR") or os.path.join(home(), "spool")
