"""foundations.parameters: helpers for hyperparameter searches, as in Atlas.

    from foundations.parameters import generate_random_parameters
    params = generate_random_parameters({"lr": {"min": 1e-4, "max": 1e-1},
                                         "layers": {"min": 8, "max": 64, "min_count": 1, "max_count": 3},
                                         "optimizer": "adam"})

Atlas's own module path, foundations.parameters.generate_random_parameters.generate_random_parameters,
works too.
"""
import numbers
import random
import sys
import types

__all__ = ["generate_random_parameters"]


def generate_random_parameters(space, rng=None):
    """Draws one set of parameters from space, a dict: a value {"min": a, "max": b} becomes a
    float drawn uniformly from [a, b]; with "min_count" and "max_count" too (or Atlas's
    documented "count_min" and "count_max"), a list of such floats whose length is drawn from
    min_count to max_count, both included. Any other value is used as it is. rng is a
    random.Random to draw from (default: the random module's)."""
    if not isinstance(space, dict):
        raise TypeError("generate_random_parameters: want a dict, got {}".format(type(space).__name__))
    rng = rng or random
    out = {}
    for key, spec in space.items():
        if not (isinstance(spec, dict) and "min" in spec and "max" in spec):
            out[key] = spec
            continue
        low, high = _number(key, "min", spec["min"]), _number(key, "max", spec["max"])
        if low > high:
            raise ValueError("generate_random_parameters: {!r}: min {} is greater than max {}".format(key, low, high))
        counts = [spec.get(a, spec.get(b)) for a, b in (("min_count", "count_min"), ("max_count", "count_max"))]
        if counts == [None, None]:
            out[key] = rng.uniform(low, high)
            continue
        if None in counts or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts) \
                or counts[0] > counts[1]:
            raise ValueError("generate_random_parameters: {!r}: min_count and max_count must be integers, "
                             "0 <= min_count <= max_count".format(key))
        out[key] = [rng.uniform(low, high) for _ in range(rng.randint(counts[0], counts[1]))]
    return out


def _number(key, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("generate_random_parameters: {!r}: {} must be a number, got {!r}".format(key, name, value))
    return float(value)


# Atlas's module path: foundations.parameters.generate_random_parameters is both this function
# and (for `from foundations.parameters.generate_random_parameters import ...`) a module.
_module = types.ModuleType(__name__ + ".generate_random_parameters", "Atlas's module path of generate_random_parameters.")
_module.generate_random_parameters = generate_random_parameters
sys.modules[_module.__name__] = _module
generate_random_parameters.generate_random_parameters = generate_random_parameters
