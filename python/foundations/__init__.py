"""Atlas SDK: track parameters, metrics, tags and artifacts of a job, and submit jobs.

Inside a job started by the scheduler, tracking calls write to that job. A script run by hand
(`python main.py`) is a job on the local Atlas server from the moment it imports foundations:
its output is kept as the job's logs, and at exit the working directory is archived and the job
is marked completed or failed (with the traceback in its logs). foundations.search() starts a
hyperparameter search whose trials are ordinary jobs; a trial may call should_stop() to learn
that the search stopped it early. A driver is never a job: with
FOUNDATIONS_COMMAND_LINE=True nothing is recorded, and a script that submitted jobs (or read
results) and tracked nothing itself is removed at exit.

Only the standard library is used.
"""
import decimal
import json
import math
import numbers
import os
import sys
import time

from . import _config, _delivery, _tracker
from ._deployment import DeploymentWrapper, get_metrics_for_all_jobs, submit
from ._search import Search, search, should_stop
from ._syncable import SyncableDirectory, create_syncable_directory, set_tensorboard_logdir
from . import artifacts, parameters  # noqa: E402 (Atlas's module paths: foundations.artifacts...)

__version__ = "0.1.0"

__all__ = [
    "log_param", "log_params", "log_metric", "log_metrics", "set_tag", "save_artifact", "load_parameters", "submit",
    "get_metrics_for_all_jobs", "set_project_name", "create_syncable_directory", "set_tensorboard_logdir",
    "DeploymentWrapper", "SyncableDirectory", "artifacts", "parameters", "search", "should_stop", "Search",
]

PARAMETERS_FILE = "foundations_job_parameters.json"

def _job():
    return _tracker.current()


def _scalar(value):
    """numpy scalars and 0-d arrays become Python numbers."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0 and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def _check_key(kind, key):
    if isinstance(key, bool) or not isinstance(key, (str, numbers.Number)):
        raise ValueError("Invalid {} name {!r}: want a string".format(kind, key))
    key = str(key)
    if not key:
        raise ValueError("Invalid {} name: empty".format(kind))
    if len(key) > 1000:
        raise ValueError("Invalid {} name: {} characters long; the limit is 1000".format(kind, len(key)))
    if "\x00" in key:
        raise ValueError("Invalid {} name {!r}: contains a NUL character".format(kind, _short(key)))
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Invalid {} name {!r}: not valid UTF-8 text (lone surrogate)".format(kind, _short(key))) from None
    return key


def _short(text, limit=40):
    return text if len(text) <= limit else text[:limit - 3] + "..."


_warned_big = set()  # (kind, key) already warned about a number beyond 64-bit integers


def _big_int(kind, key, value):
    """What is kept of an integer beyond 64 bits, which the server does not keep as an integer: a
    float when one holds it, else its exact digits as a string (past 10000 digits, a string in
    scientific notation). Warns once per key; never raises: a job is never lost over a value it
    logged."""
    try:
        kept = float(value)
        shown = "the float {!r}".format(kept)
    except OverflowError:
        digits = format(decimal.Decimal(value), "f")
        kept = digits if len(digits) <= MAX_STRING else "{:.16e}".format(decimal.Decimal(value))
        shown = "a string" if kept is digits else "a string in scientific notation"
    if (kind, key) not in _warned_big:
        _warned_big.add((kind, key))
        try:
            text = _short(repr(value))
        except ValueError:  # more digits than Python converts to text by default
            text = "an integer of {} bits".format(value.bit_length())
        _tracker.warn("{} {!r}: {} is too large to store as an integer; kept as {}.".format(kind, key, text, shown))
    return kept


def _metric_value(key, value):
    value = _scalar(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real):
        if isinstance(value, numbers.Integral):
            value = int(value)
            return value if -_INT_LIMIT <= value <= _INT_LIMIT else _big_int("metric", key, value)
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            raise ValueError("log_metric: value of {!r} is {}; metrics must be finite numbers".format(key, value))
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError("log_metric: string value of {!r} is longer than 10000 characters".format(key))
        return value
    shown = repr(value)
    if len(shown) > 30:
        shown = shown[:27] + "..."
    raise TypeError("log_metric: invalid value {} of type {} for {!r}: want a number, a string or a list of them".format(
        shown, type(value).__name__, key))


_FLOAT_MAX = sys.float_info.max
_INT_LIMIT = 2 ** 63
_EXACT = _delivery.EXACT
_LOWEST_FLOAT, _LOWEST_EXACT = -_FLOAT_MAX, -_EXACT
MAX_STRING = 10000
_fast = {}  # once there is a job, its Writer.fast: how log_metric adds a plain point itself
_now = time.time_ns


def log_metric(key, value, step=None):
    """Logs a metric. Repeated calls with the same key make a series (with steps 0, 1, 2...
    unless step is given). value: a number (numpy scalars too), a string, or a list (or numpy
    array) of them, logged one point each, with steps step, step + 1... when step is given."""
    global _fast
    # Fast path: a known name and a plain finite float, or an integer float64 holds exactly
    # (the comparisons are False for NaN and inf). See Writer.fast.
    if type(key) is str:
        t = type(value)
        if (t is float and _LOWEST_FLOAT <= value <= _FLOAT_MAX) or (t is int and _LOWEST_EXACT <= value <= _EXACT):
            try:
                add = _fast[key]
            except KeyError:
                pass
            else:
                if step is None:
                    add[0](value)
                    add[1](_now())
                    return
                if type(step) is int and step >= 0:
                    add[2](key, value, step)
                    return
    checked, values, step = _metric_points(key, value, step)
    job = _job()
    if job is not None:
        _fast = _add_points(job.writer, checked, values, step)


def _add_points(writer, key, values, step):
    """Adds checked points to the job's writer; returns the keys of log_metric's fast path."""
    writer.add_values(key, values, step)
    writer.allow_fast(key)
    return writer.fast


def _metric_points(key, value, step):
    """Checks a log_metric call; returns the metric's name, its values (an array('d') when all
    are finite numbers float64 holds exactly: the quick path of long lists; else a list) and
    its step."""
    if not isinstance(key, str):  # as Atlas: a metric's name is a string
        raise ValueError("Invalid metric name {}: want a string, got {}".format(_short(repr(key)), type(key).__name__))
    checked = _check_key("metric", key)
    if step is not None:
        step = _scalar(step)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError("log_metric: step must be a non-negative integer, got {!r}".format(step))
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        packed = _delivery.exact_floats(value)
        if packed is not None and math.isfinite(sum(packed)):  # else (NaN, inf, or a sum beyond floats): one by one
            return checked, packed, step
        return checked, [_metric_value(checked, v) for v in value], step
    return checked, [_metric_value(checked, value)], step


def log_metrics(metrics, step=None):
    """Logs several metrics at once: {key: value}, each value as log_metric takes it (a number,
    a string, or a list or numpy array of them), all with the same step when step is given.
    Nothing is logged if any of them is refused."""
    global _fast
    if not isinstance(metrics, dict):
        raise TypeError("log_metrics: want a dict, got {}".format(type(metrics).__name__))
    checked = [_metric_points(k, v, step) for k, v in metrics.items()]
    job = _job()
    if job is not None:
        for key, values, step in checked:
            _fast = _add_points(job.writer, key, values, step)


def _param_value(key, value):
    value = _scalar(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Real):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise ValueError("log_param: value of {!r} is {}; parameters must be finite numbers".format(key, value))
        if isinstance(value, numbers.Integral):
            value = int(value)
            return value if -_INT_LIMIT <= value <= _INT_LIMIT else _big_int("parameter", key, value)
        return float(value)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_param_value(key, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _param_value(key, v) for k, v in value.items()}
    raise TypeError("log_param: invalid value of type {} for {!r}: want a number, string, bool, None or a list of them".format(
        type(value).__name__, key))


def log_param(key, value):
    """Records a parameter of the job. Logging the same key again overwrites it."""
    key = _check_key("parameter", key)
    value = _param_value(key, value)
    job = _job()
    if job is not None:
        job.writer.add_param(key, value)


def _flatten(prefix, value, out):
    value = _scalar(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:  # numpy arrays flatten like lists
        value = value.tolist()
    if isinstance(value, dict):
        if not value:
            out[prefix] = None
        for k, v in value.items():
            _flatten("{}_{}".format(prefix, k) if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        if not value:
            out[prefix] = None
        for i, v in enumerate(value):
            _flatten("{}_{}".format(prefix, i), v, out)
    else:
        out[prefix] = value


def log_params(parameters):
    """Records several parameters. Nested dicts and lists are flattened: {"a": {"b": 1}} logs
    a_b, and {"k": [1, 2]} logs k_0 and k_1."""
    if not isinstance(parameters, dict):
        raise TypeError("log_params: want a dict, got {}".format(type(parameters).__name__))
    flat = {}
    for k, v in parameters.items():
        _flatten(str(_check_key("parameter", k)), v, flat)
    checked = {_check_key("parameter", k): _param_value(k, v) for k, v in flat.items()}
    job = _job()
    if job is not None:
        for k, v in checked.items():
            job.writer.add_param(k, v)


def set_tag(key, value=""):
    """Tags the job. Setting the same key again updates its value."""
    key = _check_key("tag", key)
    value = _scalar(value)
    if not isinstance(value, (str, numbers.Number, bool)) and value is not None:
        raise TypeError("set_tag: value must be a string or a number, got {}".format(type(value).__name__))
    job = _job()
    if job is not None:
        job.writer.add_tag(key, "" if value is None else str(value))


def save_artifact(filepath, key=None):
    """Saves a file with the job, shown in the GUI (images, audio, text are previewed). key
    defaults to the file name; saving a key again replaces it, with a warning."""
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError("save_artifact: filepath must be a path, got {}".format(type(filepath).__name__))
    filepath = os.fspath(filepath)
    if not os.path.isfile(filepath):
        raise FileNotFoundError("save_artifact: {} is not a file".format(filepath))
    key = _check_key("artifact", key if key is not None else os.path.basename(filepath))
    job = _job()
    if job is not None:
        if key in job.artifact_keys:
            _tracker.warn('Artifact "{}" already exists - overwriting.'.format(key))
        job.artifact_keys.add(key)
        job.writer.add_artifact(key, filepath)


def load_parameters(log_parameters=True):
    """Returns the parameters the job was submitted with ({} when none), read from
    foundations_job_parameters.json, and logs them as the job's parameters."""
    try:
        with open(PARAMETERS_FILE, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    try:
        params = json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise ValueError("{} is not valid JSON: {}".format(os.path.abspath(PARAMETERS_FILE), e)) from None
    if not isinstance(params, dict):
        raise ValueError("{} does not hold a JSON object".format(PARAMETERS_FILE))
    if log_parameters and params:
        log_params(params)
    return params


def set_project_name(project_name="default"):
    """Sets the project of the job this script records. Call it before any tracking call: a
    script run by hand is a job from its import, and is moved to the project until then."""
    if not isinstance(project_name, str) or not project_name.strip():
        raise ValueError("set_project_name: want a non-empty string")
    job = _tracker.current(create=False)
    if job is not None:
        if job.project != project_name and not _tracker.move(job, project_name):
            _tracker.warn("the job was already recorded in project {!r}; set_project_name must come before the first "
                          "tracking call".format(job.project))
        return
    _tracker._project_override = project_name


def flush(timeout=None):
    """Waits until everything tracked so far is stored by the server. Returns False on timeout."""
    job = _tracker.current(create=False)
    return True if job is None else job.writer.flush(timeout)


_tracker.start()
