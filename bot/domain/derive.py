"""New sweeps from a finished one: rerun the best run over seeds, or narrow around it.

Narrowing rule (documented in the README): each numeric range (`min`/`max`, or a list of
numbers) shrinks to ±25 % of its original span around the best run's value, clipped to
the original bounds; each categorical list keeps its 2 values with the best mean metric
over the finished runs; fixed values stay as they are. The new sweep is a bayes sweep on
the same metric and program.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.sweep_report import param_value
from wandb_client.models import RunSnapshot

SHRINK = 0.25
KEEP_CHOICES = 2


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _base(original: Mapping[str, Any], method: str, name: str, cap: int) -> dict[str, Any]:
    config = {k: copy.deepcopy(v) for k, v in original.items() if k not in ("parameters",)}
    config["method"] = method
    config["name"] = name
    config["run_cap"] = cap
    return config


def rerun_config(
    original: Mapping[str, Any],
    best: RunSnapshot,
    *,
    seed_param: str = "seed",
    seeds: int = 3,
    name: str = "",
) -> dict[str, Any]:
    """Return a grid sweep fixing every parameter at the best run's value, varying the seed."""
    parameters: dict[str, Any] = {}
    swept = original.get("parameters")
    for param in swept if isinstance(swept, Mapping) else {}:
        if param != seed_param:
            parameters[param] = {"value": param_value(best, param)}
    parameters[seed_param] = {"values": list(range(seeds))}
    config = _base(original, "grid", name or f"rerun {best.display_name}", seeds)
    config["parameters"] = parameters
    return config


def _narrow_range(spec: Mapping[str, Any], best: Any) -> dict[str, Any]:
    low, high = float(spec["min"]), float(spec["max"])
    span = (high - low) * SHRINK
    centre = float(best) if _is_number(best) else (low + high) / 2
    new_low, new_high = max(low, centre - span), min(high, centre + span)
    out = {k: v for k, v in spec.items() if k not in ("min", "max")}
    if isinstance(spec["min"], int) and isinstance(spec["max"], int):
        out["min"], out["max"] = round(new_low), max(round(new_low), round(new_high))
    else:
        out["min"], out["max"] = new_low, new_high
    return out


def _means(runs: Sequence[RunSnapshot], param: str, metric: str) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for run in runs:
        value = run.summary.get(metric)
        if run.state == "finished" and isinstance(value, int | float) and _is_number(value):
            sums.setdefault(repr(param_value(run, param)), []).append(float(value))
    return {key: sum(v) / len(v) for key, v in sums.items()}


def _narrow_values(
    spec: Mapping[str, Any],
    best: Any,
    runs: Sequence[RunSnapshot],
    param: str,
    metric: str,
    goal: str,
) -> dict[str, Any]:
    values = list(spec["values"])
    out = {k: v for k, v in spec.items() if k != "values"}
    if all(_is_number(v) for v in values) and _is_number(best):
        span = (max(values) - min(values)) * SHRINK
        kept = [v for v in values if abs(v - best) <= span] or [best]
        out["values"] = kept
        return out
    means = _means(runs, param, metric)
    sign = -1.0 if goal == "maximize" else 1.0
    # Best mean first; a value no finished run tried goes last.
    ranked = sorted(
        values, key=lambda v: sign * means[repr(v)] if repr(v) in means else float("inf")
    )
    out["values"] = ranked[:KEEP_CHOICES]
    return out


def narrow_config(
    original: Mapping[str, Any],
    best: RunSnapshot,
    runs: Sequence[RunSnapshot],
    *,
    metric: str,
    goal: str,
    count: int,
    name: str = "",
) -> dict[str, Any]:
    """Return a bayes sweep whose ranges are shrunk around the best run (the rule above)."""
    parameters: dict[str, Any] = {}
    swept = original.get("parameters")
    for param, spec in (swept if isinstance(swept, Mapping) else {}).items():
        best_value = param_value(best, param)
        if isinstance(spec, Mapping) and "min" in spec and "max" in spec:
            parameters[param] = _narrow_range(spec, best_value)
        elif isinstance(spec, Mapping) and isinstance(spec.get("values"), list):
            parameters[param] = _narrow_values(spec, best_value, runs, param, metric, goal)
        else:
            parameters[param] = copy.deepcopy(spec)
    config = _base(original, "bayes", name or f"narrow around {best.display_name}", count)
    config["metric"] = {"name": metric, "goal": goal}
    config["parameters"] = parameters
    return config
