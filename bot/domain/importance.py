"""Which swept parameters mattered: correlation and a small random forest's importance.

As W&B's parameter-importance panel does, two numbers per parameter: the Pearson
correlation of its value with the metric (numeric parameters only), and its share of a
random forest's impurity decrease (every parameter; a categorical one is encoded by the
mean metric of each of its values). The forest is small and seeded: a sweep has tens or
hundreds of runs, so plain Python is fast enough and the answer is the same every time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TREES = 40
MAX_DEPTH = 4
MIN_LEAF = 2


@dataclass(frozen=True, slots=True)
class Importance:
    """How much one parameter mattered to the metric."""

    name: str
    importance: float
    correlation: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Return the Pearson correlation of two series, or None when either is constant."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _encode(values: Sequence[Any], ys: Sequence[float]) -> tuple[list[float], bool]:
    """Return a column as numbers and whether it was numeric (else: mean metric per value)."""
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        return [n for n in numbers if n is not None], True
    sums: dict[str, list[float]] = {}
    for value, y in zip(values, ys, strict=True):
        sums.setdefault(repr(value), []).append(y)
    means = {key: sum(v) / len(v) for key, v in sums.items()}
    return [means[repr(value)] for value in values], False


def _variance_sum(ys: Sequence[float]) -> float:
    if not ys:
        return 0.0
    mean = sum(ys) / len(ys)
    return sum((y - mean) ** 2 for y in ys)


def _best_split(
    rows: Sequence[int], column: Sequence[float], ys: Sequence[float]
) -> tuple[float, float] | None:
    """Return (impurity decrease, threshold) of the best split of `rows` on one column."""
    ordered = sorted(rows, key=lambda i: column[i])
    total = _variance_sum([ys[i] for i in ordered])
    best: tuple[float, float] | None = None
    left_sum = left_sq = 0.0
    all_sum = sum(ys[i] for i in ordered)
    all_sq = sum(ys[i] ** 2 for i in ordered)
    n = len(ordered)
    for k in range(1, n):
        y = ys[ordered[k - 1]]
        left_sum += y
        left_sq += y * y
        if column[ordered[k - 1]] == column[ordered[k]] or k < MIN_LEAF or n - k < MIN_LEAF:
            continue
        right_sum, right_sq = all_sum - left_sum, all_sq - left_sq
        impurity = (left_sq - left_sum**2 / k) + (right_sq - right_sum**2 / (n - k))
        gain = total - impurity
        if best is None or gain > best[0]:
            best = (gain, (column[ordered[k - 1]] + column[ordered[k]]) / 2)
    return best


def _grow(
    rows: list[int],
    columns: Sequence[Sequence[float]],
    ys: Sequence[float],
    depth: int,
    rng: random.Random,
    gains: list[float],
) -> None:
    """Grow one tree on `rows`, adding each split's impurity decrease to its column."""
    if depth >= MAX_DEPTH or len(rows) < 2 * MIN_LEAF:
        return
    tried = rng.sample(range(len(columns)), max(1, math.ceil(math.sqrt(len(columns)))))
    best: tuple[float, int, float] | None = None
    for c in tried:
        split = _best_split(rows, columns[c], ys)
        if split is not None and split[0] > 1e-12 and (best is None or split[0] > best[0]):
            best = (split[0], c, split[1])
    if best is None:
        return
    gain, c, threshold = best
    gains[c] += gain
    left = [i for i in rows if columns[c][i] <= threshold]
    right = [i for i in rows if columns[c][i] > threshold]
    _grow(left, columns, ys, depth + 1, rng, gains)
    _grow(right, columns, ys, depth + 1, rng, gains)


def parameter_importance(
    runs: Sequence[tuple[Mapping[str, Any], float]], params: Sequence[str], *, seed: int = 0
) -> list[Importance]:
    """Return each parameter's importance (shares summing to 1) and correlation, top first.

    `runs` pairs each run's parameter values with its metric. A parameter that never varies
    is left out: it cannot explain anything.
    """
    ys = [float(y) for _, y in runs]
    columns: list[list[float]] = []
    numeric: list[bool] = []
    names: list[str] = []
    for name in params:
        values = [config.get(name) for config, _ in runs]
        if len({repr(v) for v in values}) < 2:
            continue
        column, is_number = _encode(values, ys)
        columns.append(column)
        numeric.append(is_number)
        names.append(name)
    if not names or len(ys) < 2:
        return []
    rng = random.Random(seed)
    gains = [0.0] * len(names)
    for _ in range(TREES):
        sample = [rng.randrange(len(ys)) for _ in ys]
        _grow(sample, columns, ys, 0, rng, gains)
    total = sum(gains)
    out = [
        Importance(
            name,
            gains[i] / total if total > 0 else 0.0,
            pearson(columns[i], ys) if numeric[i] else None,
        )
        for i, name in enumerate(names)
    ]
    return sorted(out, key=lambda imp: (-imp.importance, imp.name))
