"""Choose a sweep's next parameters the way W&B's sweep engine does: grid, random or bayes."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

METHODS = ("bayes", "grid", "random")
GOALS = ("maximize", "minimize")
DISTRIBUTIONS = (
    "beta",
    "categorical",
    "constant",
    "int_uniform",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "log_normal",
    "log_uniform",
    "log_uniform_values",
    "normal",
    "q_beta",
    "q_log_normal",
    "q_log_uniform",
    "q_log_uniform_values",
    "q_normal",
    "q_uniform",
    "uniform",
)
SPEC_KEYS = frozenset(
    {"value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma", "q"}
    | {"a", "b", "parameters", "description"}
)
# Which numeric fields each distribution needs; the rest take W&B's defaults.
BOUNDED = frozenset(
    {"int_uniform", "uniform", "q_uniform", "log_uniform", "q_log_uniform"}
    | {"log_uniform_values", "q_log_uniform_values", "inv_log_uniform"}
    | {"inv_log_uniform_values"}
)
POSITIVE_BOUNDS = frozenset(
    {"log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"}
)
QUANTISED = frozenset(
    {"q_uniform", "q_log_uniform", "q_log_uniform_values", "q_normal", "q_log_normal", "q_beta"}
)
NUMERIC_KEYS = ("min", "max", "mu", "sigma", "q", "a", "b")
GRIDDABLE = frozenset({"constant", "categorical", "int_uniform", "q_uniform"})

BAYES_CANDIDATES = 500
BAYES_MIN_OBSERVATIONS = 2
LENGTH_SCALES = (0.05, 0.1, 0.2, 0.35, 0.6, 1.0, 2.0)
NOISES = (1e-4, 1e-2, 1e-1)
EI_XI = 0.01


@dataclass(frozen=True)
class Param:
    """One leaf parameter: its path through nested groups, its distribution and its spec."""

    path: tuple[str, ...]
    distribution: str
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        """Return the dotted name used in messages."""
        return ".".join(self.path)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep config: its method, goal and leaf parameters."""

    method: str
    metric: str | None
    maximize: bool
    params: tuple[Param, ...]


# ---------------------------------------------------------------------------------------
# Validation


def validate_config(config: object) -> list[str]:
    """Return every human-readable problem with a parsed sweep config; empty means valid."""
    if not isinstance(config, Mapping):
        return ["the sweep config must be a mapping (method, metric, parameters)"]
    problems: list[str] = []
    method = config.get("method")
    if method is None:
        problems.append("missing 'method': use one of " + ", ".join(METHODS))
    elif method not in METHODS:
        problems.append(f"unknown method {method!r}: use one of " + ", ".join(METHODS))
    problems += _metric_problems(config.get("metric"), method)
    run_cap = config.get("run_cap")
    if run_cap is not None and (not _is_int(run_cap) or run_cap < 1):
        problems.append(f"run_cap must be a positive integer, got {run_cap!r}")
    parameters = config.get("parameters")
    if parameters is None:
        problems.append("missing 'parameters': give at least one parameter to sweep over")
    elif not isinstance(parameters, Mapping) or not parameters:
        problems.append("'parameters' must be a non-empty mapping of name -> spec")
    else:
        problems += _group_problems(parameters, (), method)
    return problems


def _metric_problems(metric: object, method: object) -> list[str]:
    """Check the metric block; bayes cannot work without one."""
    if metric is None:
        return (
            ["method 'bayes' needs a metric: {name: ..., goal: ...}"] if method == "bayes" else []
        )
    if not isinstance(metric, Mapping):
        return ["'metric' must be a mapping like {name: accuracy, goal: maximize}"]
    problems = []
    if not isinstance(metric.get("name"), str) or not metric.get("name"):
        problems.append("metric needs a 'name' (the summary key to optimise)")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        problems.append(f"unknown metric goal {goal!r}: use maximize or minimize")
    return problems


def _group_problems(group: Mapping[Any, Any], prefix: tuple[str, ...], method: object) -> list[str]:
    """Check every parameter of one (possibly nested) group."""
    problems: list[str] = []
    for key, spec in group.items():
        if not isinstance(key, str) or not key:
            problems.append(f"parameter names must be non-empty strings, got {key!r}")
            continue
        path = (*prefix, key)
        name = ".".join(path)
        if not isinstance(spec, Mapping):
            problems.append(
                f"parameter {name!r}: spec must be a mapping like {{values: [1, 2]}}, got {spec!r}"
            )
            continue
        if "parameters" in spec:
            nested = spec["parameters"]
            if not isinstance(nested, Mapping) or not nested:
                problems.append(f"parameter {name!r}: 'parameters' must be a non-empty mapping")
            else:
                problems += _group_problems(nested, path, method)
            continue
        problems += _spec_problems(name, spec, method)
    return problems


def _spec_problems(name: str, spec: Mapping[str, Any], method: object) -> list[str]:
    """Check one leaf parameter spec."""
    where = f"parameter {name!r}"
    unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
    if unknown:
        return [f"{where}: unknown key(s) {', '.join(unknown)}"]
    distribution = infer_distribution(spec)
    if distribution is None:
        if "distribution" in spec:
            return [
                f"{where}: unknown distribution {spec['distribution']!r} "
                f"(use one of {', '.join(DISTRIBUTIONS)})"
            ]
        return [
            f"{where}: cannot tell its distribution: give value, values, min/max or distribution"
        ]
    problems = _distribution_problems(where, distribution, spec)
    if not problems and method == "grid" and distribution not in GRIDDABLE:
        problems.append(
            f"grid search needs discrete parameters: {name!r} has distribution "
            f"{distribution!r}; give it values: [...] or use method random or bayes"
        )
    return problems


def _distribution_problems(where: str, distribution: str, spec: Mapping[str, Any]) -> list[str]:
    """Check the fields one distribution needs."""
    if distribution == "constant":
        return [] if "value" in spec else [f"{where}: distribution 'constant' needs 'value'"]
    if distribution == "categorical":
        return _values_problems(where, spec)
    problems = [
        f"{where}: {key} must be a number, got {spec[key]!r}"
        for key in NUMERIC_KEYS
        if key in spec and _number(spec[key]) is None
    ]
    if problems:
        return problems
    fields = {key: _num(spec[key]) for key in NUMERIC_KEYS if key in spec}
    if distribution in BOUNDED:
        if "min" not in fields or "max" not in fields:
            return [f"{where}: distribution {distribution!r} needs min and max"]
        low, high = fields["min"], fields["max"]
        if distribution == "int_uniform" and not (_integral(low) and _integral(high)):
            problems.append(
                f"{where}: int_uniform needs integer min and max, got {low:g}, {high:g}"
            )
        if low > high or (low == high and distribution != "int_uniform"):
            problems.append(f"{where}: min ({low:g}) must be less than max ({high:g})")
        if distribution in POSITIVE_BOUNDS and low <= 0:
            problems.append(f"{where}: {distribution} needs min > 0, got {low:g}")
    for key in ("sigma", "a", "b", "q"):
        if fields.get(key, 1.0) <= 0:
            problems.append(f"{where}: {key} must be positive, got {fields[key]:g}")
    if distribution in QUANTISED and not problems:
        q = fields.get("q", 1.0)
        if distribution in {"q_uniform", "q_log_uniform_values"}:
            low, high = fields["min"], fields["max"]
            first, last = _multiples(low, high, q)
            if first > last:
                problems.append(f"{where}: no multiple of q={q:g} lies in [{low:g}, {high:g}]")
    return problems


def _values_problems(where: str, spec: Mapping[str, Any]) -> list[str]:
    """Check a categorical spec's values and optional probabilities."""
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        return [f"{where}: 'values' must be a non-empty list"]
    probabilities = spec.get("probabilities")
    if probabilities is None:
        return []
    if not isinstance(probabilities, list) or len(probabilities) != len(values):
        return [f"{where}: 'probabilities' must be a list as long as 'values' ({len(values)})"]
    numbers = [_number(p) for p in probabilities]
    if any(p is None or p < 0 for p in numbers):
        return [f"{where}: probabilities must be non-negative numbers"]
    total = sum(p for p in numbers if p is not None)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        return [f"{where}: probabilities must sum to 1, they sum to {total:g}"]
    return []


def infer_distribution(spec: Mapping[str, Any]) -> str | None:
    """Return a spec's distribution, inferring it as W&B does when it is omitted."""
    if "distribution" in spec:
        name = spec["distribution"]
        return name if name in DISTRIBUTIONS else None
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        low, high = _number(spec["min"]), _number(spec["max"])
        ints = _is_int(spec["min"]) and _is_int(spec["max"])
        if low is not None and high is not None and ints:
            return "int_uniform"
        return "uniform"
    return None


def parse_config(config: Mapping[str, Any]) -> Sweep:
    """Validate a sweep config and flatten it; raise ValueError listing every problem."""
    problems = validate_config(config)
    if problems:
        raise ValueError("invalid sweep config: " + "; ".join(problems))
    metric = config.get("metric") or {}
    params = tuple(_flatten(config["parameters"], ()))
    return Sweep(
        method=config["method"],
        metric=metric.get("name"),
        maximize=metric.get("goal", "minimize") == "maximize",
        params=params,
    )


def _flatten(group: Mapping[str, Any], prefix: tuple[str, ...]) -> Iterator[Param]:
    """Yield the leaf parameters of a group in config order."""
    for key, spec in group.items():
        if "parameters" in spec:
            yield from _flatten(spec["parameters"], (*prefix, key))
        else:
            distribution = infer_distribution(spec)
            assert distribution is not None
            yield Param((*prefix, key), distribution, spec)


# ---------------------------------------------------------------------------------------
# Choosing the next run


def next_params(
    config: Mapping[str, Any],
    runs: Sequence[tuple[Mapping[str, Any], float | None]],
    rng: random.Random,
) -> dict[str, Any] | None:
    """Return the next run's parameters (nested groups as dicts), or None when grid is done."""
    sweep = parse_config(config)
    if sweep.method == "grid":
        return _next_grid(sweep.params, runs)
    if sweep.method == "bayes":
        chosen = _next_bayes(sweep, runs, rng)
        if chosen is not None:
            return _unflatten(sweep.params, chosen)
    return _unflatten(sweep.params, [sample(p, rng) for p in sweep.params])


def _unflatten(params: Sequence[Param], values: Sequence[Any]) -> dict[str, Any]:
    """Build the nested {name: value} dict W&B gives a run from leaf values."""
    result: dict[str, Any] = {}
    for param, value in zip(params, values, strict=True):
        node = result
        for key in param.path[:-1]:
            node = node.setdefault(key, {})
        node[param.path[-1]] = value
    return result


_MISSING = object()


def _lookup(params: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Find a leaf value in a run's params, nested or under a dotted key."""
    node: Any = params
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return params.get(".".join(path), _MISSING)
        node = node[key]
    return node


def _freeze(value: Any) -> Any:
    """Make a parameter value hashable so that runs can be compared with grid points."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


# -- grid


def grid_axis(param: Param) -> Sequence[Any]:
    """Return the values grid search enumerates for one parameter, in a stable order."""
    spec = param.spec
    if param.distribution == "constant":
        return [spec["value"]]
    if param.distribution == "categorical":
        return list(spec["values"])
    if param.distribution == "int_uniform":
        return range(int(spec["min"]), int(spec["max"]) + 1)
    if param.distribution == "q_uniform":
        q = _q(spec)
        low, high = _multiples(_num(spec["min"]), _num(spec["max"]), q)
        return _QuantisedRange(low, high, q)
    raise ValueError(
        f"grid search needs discrete parameters: {param.name!r} has distribution "
        f"{param.distribution!r}"
    )


class _QuantisedRange(Sequence[Any]):
    """The multiples k*q for k in [low, high], lazily, so big grids cost no memory."""

    def __init__(self, low: int, high: int, q: float) -> None:
        self._range = range(low, high + 1)
        self._q = q

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return _times_q(self._range[index], self._q)


def _next_grid(
    params: Sequence[Param], runs: Sequence[tuple[Mapping[str, Any], float | None]]
) -> dict[str, Any] | None:
    """Return the first grid point (last parameter varying fastest) no run has taken."""
    axes = [grid_axis(p) for p in params]
    done = set()
    for run_params, _metric in runs:
        taken = [_lookup(run_params, p.path) for p in params]
        if not any(value is _MISSING for value in taken):
            done.add(_freeze(taken))
    total = math.prod(len(axis) for axis in axes)
    for index in range(total):
        point = _grid_point(axes, index)
        if _freeze(point) not in done:
            return _unflatten(params, point)
    return None


def _grid_point(axes: Sequence[Sequence[Any]], index: int) -> list[Any]:
    """Decode a flat grid index into one value per axis (mixed radix, last axis fastest)."""
    point: list[Any] = []
    for axis in reversed(axes):
        index, digit = divmod(index, len(axis))
        point.append(axis[digit])
    return point[::-1]


# -- random


def sample(param: Param, rng: random.Random) -> Any:
    """Draw one value of a parameter from its distribution."""
    spec, kind = param.spec, param.distribution
    if kind == "constant":
        return spec["value"]
    if kind == "categorical":
        weights = spec.get("probabilities")
        return rng.choices(spec["values"], weights=weights)[0]
    if kind == "int_uniform":
        return rng.randint(int(spec["min"]), int(spec["max"]))
    low, high = _num(spec.get("min", 0.0)), _num(spec.get("max", 1.0))
    mu, sigma = _num(spec.get("mu", 0.0)), _num(spec.get("sigma", 1.0))
    raw: float
    if kind in {"uniform", "q_uniform"}:
        raw = rng.uniform(low, high)
    elif kind in {"log_uniform", "q_log_uniform"}:  # min/max are exponents of e
        raw = math.exp(rng.uniform(low, high))
    elif kind in {"log_uniform_values", "q_log_uniform_values"}:
        raw = math.exp(rng.uniform(math.log(low), math.log(high)))
    elif kind == "inv_log_uniform":  # min/max are exponents of e, of 1/value
        raw = math.exp(-rng.uniform(low, high))
    elif kind == "inv_log_uniform_values":
        raw = 1.0 / math.exp(rng.uniform(math.log(1.0 / high), math.log(1.0 / low)))
        raw = min(max(raw, low), high)
    elif kind in {"normal", "q_normal"}:
        raw = rng.gauss(mu, sigma)
    elif kind in {"log_normal", "q_log_normal"}:
        raw = math.exp(rng.gauss(mu, sigma))
    elif kind in {"beta", "q_beta"}:
        raw = rng.betavariate(_num(spec.get("a", 1.0)), _num(spec.get("b", 1.0)))
    else:  # pragma: no cover - validate_config rejects the rest
        raise ValueError(f"unknown distribution {kind!r}")
    if kind in QUANTISED:
        return _quantise(param, raw)
    if kind in BOUNDED and kind not in {"log_uniform", "inv_log_uniform"}:
        raw = min(max(raw, low), high)
    return raw


def _quantise(param: Param, raw: float) -> Any:
    """Round to the nearest multiple of q, staying inside [min, max] where there is one."""
    q = _q(param.spec)
    k = round(raw / q)
    if param.distribution in {"q_uniform", "q_log_uniform_values"}:
        low, high = _multiples(_num(param.spec["min"]), _num(param.spec["max"]), q)
        k = min(max(k, low), high)
    elif param.distribution == "q_log_uniform":
        low, high = _multiples(
            math.exp(_num(param.spec["min"])), math.exp(_num(param.spec["max"])), q
        )
        k = min(max(k, low), high) if low <= high else k
    value = _times_q(k, q)
    return int(value) if _is_int(param.spec.get("q", 1)) else value


def _multiples(low: float, high: float, q: float) -> tuple[int, int]:
    """Return the first and last k with k*q inside [low, high]."""
    eps = 1e-9
    return math.ceil(low / q - eps), math.floor(high / q + eps)


def _times_q(k: int, q: float) -> Any:
    """Return k*q without float noise (3 * 0.1 is 0.3, not 0.30000000000000004)."""
    if isinstance(q, int):
        return k * q
    return float(Decimal(k) * Decimal(repr(q)))


def _q(spec: Mapping[str, Any]) -> Any:
    """Return a spec's q, keeping an int an int."""
    q = spec.get("q", 1)
    return q if _is_int(q) else _num(q)


# -- bayes


def _next_bayes(
    sweep: Sweep, runs: Sequence[tuple[Mapping[str, Any], float | None]], rng: random.Random
) -> list[Any] | None:
    """Pick the candidate with the highest expected improvement under a GP surrogate."""
    encoders = [_Encoder(p) for p in sweep.params]
    rows: list[list[float]] = []
    scores: list[float] = []
    for run_params, metric in runs:
        if metric is None or not isinstance(metric, int | float) or not math.isfinite(metric):
            continue
        encoded = _encode_run(encoders, sweep.params, run_params)
        if encoded is not None:
            rows.append(encoded)
            scores.append(float(metric) if sweep.maximize else -float(metric))
    if len(rows) < BAYES_MIN_OBSERVATIONS or sum(e.width for e in encoders) == 0:
        return None
    candidates = [[sample(p, rng) for p in sweep.params] for _ in range(BAYES_CANDIDATES)]
    x_candidates = np.array(
        [
            [c for e, v in zip(encoders, cand, strict=True) for c in e.encode(v)]
            for cand in candidates
        ]
    )
    ei = expected_improvement(np.array(rows), np.array(scores), x_candidates)
    if ei is None:
        return None
    return candidates[int(np.argmax(ei))]


def _encode_run(
    encoders: Sequence[_Encoder], params: Sequence[Param], run_params: Mapping[str, Any]
) -> list[float] | None:
    """Encode a previous run's parameters, or None if it lacks one or has an alien value."""
    row: list[float] = []
    for encoder, param in zip(encoders, params, strict=True):
        value = _lookup(run_params, param.path)
        if value is _MISSING:
            return None
        try:
            row += encoder.encode(value)
        except (ValueError, TypeError):
            return None
    return row


class _Encoder:
    """Map one parameter's values into [0, 1] coordinates for the GP."""

    def __init__(self, param: Param) -> None:
        self.param = param
        spec, kind = param.spec, param.distribution
        self.categories: list[Any] = []
        self.numeric_categories = False
        if kind == "constant":
            self.width = 0
        elif kind == "categorical":
            self.categories = [_freeze(v) for v in spec["values"]]
            numbers = [_number(v) for v in spec["values"]]
            self.numeric_categories = all(
                n is not None and not isinstance(v, bool)
                for n, v in zip(numbers, spec["values"], strict=True)
            )
            self.width = 1 if self.numeric_categories else len(self.categories)
        else:
            self.width = 1

    def encode(self, value: Any) -> list[float]:
        """Return this parameter's coordinates for one value."""
        spec, kind = self.param.spec, self.param.distribution
        if self.width == 0:
            return []
        if kind == "categorical":
            if self.numeric_categories:
                numbers = [_num(v) for v in spec["values"]]
                return [_scale(_num(value), min(numbers), max(numbers))]
            index = self.categories.index(_freeze(value))
            # One-hot scaled so that two different categories are distance 1 apart.
            return [math.sqrt(0.5) if i == index else 0.0 for i in range(self.width)]
        number = _num(value)
        if kind in {"int_uniform", "uniform", "q_uniform"}:
            return [_scale(number, _num(spec["min"]), _num(spec["max"]))]
        if kind in {"log_uniform", "q_log_uniform", "inv_log_uniform"}:
            exponent = -math.log(number) if kind == "inv_log_uniform" else math.log(number)
            return [_scale(exponent, _num(spec["min"]), _num(spec["max"]))]
        if kind in {"log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"}:
            low, high = math.log(_num(spec["min"])), math.log(_num(spec["max"]))
            return [_scale(math.log(number), low, high)]
        if kind in {"beta", "q_beta"}:
            return [min(max(number, 0.0), 1.0)]
        mu, sigma = _num(spec.get("mu", 0.0)), _num(spec.get("sigma", 1.0))
        if kind in {"log_normal", "q_log_normal"}:
            number = math.log(number)
        # Unbounded: the normal CDF squeezes the line into (0, 1).
        return [0.5 * (1.0 + math.erf((number - mu) / (sigma * math.sqrt(2.0))))]


def _scale(value: float, low: float, high: float) -> float:
    """Normalise value from [low, high] to [0, 1]."""
    return 0.0 if high == low else (value - low) / (high - low)


def expected_improvement(x: np.ndarray, y: np.ndarray, candidates: np.ndarray) -> np.ndarray | None:
    """Return EI (maximising y) of each candidate under an RBF GP fitted by marginal likelihood."""
    std = float(y.std())
    z = (y - y.mean()) / std if std > 0 else np.zeros_like(y)
    fit = _fit_gp(x, z)
    if fit is None:
        return None
    chol, alpha, length = fit
    k_star = _rbf(candidates, x, length)
    mean = k_star @ alpha
    v = np.linalg.solve(chol, k_star.T)
    sd = np.sqrt(np.clip(1.0 - np.sum(v * v, axis=0), 1e-12, None))
    gap = mean - z.max() - EI_XI
    u = gap / sd
    cdf = 0.5 * (1.0 + _erf(u / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    ei: np.ndarray = gap * cdf + sd * pdf
    return ei


def _fit_gp(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Choose length scale and noise on a small grid by log marginal likelihood."""
    best: tuple[float, np.ndarray, np.ndarray, float] | None = None
    scale = math.sqrt(x.shape[1])
    for length, noise in itertools.product(LENGTH_SCALES, NOISES):
        k = _rbf(x, x, length * scale) + noise * np.eye(len(x))
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            continue
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
        likelihood = -0.5 * float(z @ alpha) - float(np.sum(np.log(np.diag(chol))))
        if best is None or likelihood > best[0]:
            best = (likelihood, chol, alpha, length * scale)
    return None if best is None else best[1:]


def _rbf(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    """Return the RBF kernel matrix between the rows of a and b."""
    distances = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    result: np.ndarray = np.exp(-0.5 * np.clip(distances, 0.0, None) / (length * length))
    return result


_erf = np.vectorize(math.erf, otypes=[float])


# ---------------------------------------------------------------------------------------
# Numbers


def _is_int(value: object) -> bool:
    """Tell whether value is an int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _integral(value: float) -> bool:
    """Tell whether a number has no fractional part."""
    return float(value).is_integer()


def _number(value: object) -> float | None:
    """Read a number, accepting numeric strings such as YAML's unquoted 1e-5."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _num(value: object) -> float:
    """Read a number that validation already accepted."""
    number = _number(value)
    if number is None:
        raise ValueError(f"not a number: {value!r}")
    return number
