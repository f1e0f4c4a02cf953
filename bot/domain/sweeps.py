"""Pure sweep helpers: check a sweep config, read its metric, progress, crash loops."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

METHODS = ("grid", "random", "bayes")
GOALS = ("maximize", "minimize")


def check_sweep_config(config: Any) -> list[str]:
    """Return one line per problem W&B would refuse in a sweep config (method, parameters,
    metric); an empty list means it looks startable."""
    if not isinstance(config, Mapping):
        return ["a sweep config must be a mapping with method, parameters and metric"]
    problems: list[str] = []
    method = config.get("method")
    if method not in METHODS:
        problems.append(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    parameters = config.get("parameters")
    if not isinstance(parameters, Mapping) or not parameters:
        problems.append("parameters must be a non-empty mapping")
    else:
        for name, spec in parameters.items():
            if not isinstance(spec, Mapping):
                problems.append(f"parameters.{name} must be a mapping (value, values, min/max…)")
            elif not ({"value", "values", "min", "max", "distribution", "parameters"} & set(spec)):
                problems.append(f"parameters.{name} needs value, values or min/max")
            elif "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
                problems.append(f"parameters.{name}.values must be a non-empty list")
    metric = config.get("metric")
    if metric is None:
        if method == "bayes":
            problems.append("a bayes sweep needs metric.name and metric.goal")
    elif not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str):
        problems.append("metric must be a mapping with a name")
    elif metric.get("goal", "minimize") not in GOALS:
        problems.append(f"metric.goal must be maximize or minimize, not {metric.get('goal')!r}")
    if "program" in config and not isinstance(config["program"], str):
        problems.append("program must be a file name")
    return problems


def parse_sweep_yaml(text: str, load: Callable[[str], Any]) -> tuple[dict[str, Any], list[str]]:
    """Load a sweep YAML with `load` (e.g. yaml.safe_load) and check it.

    The loader is passed in so this module stays pure standard library.
    """
    try:
        data = load(text)
    except Exception as exc:  # any loader error means the same to the user
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return {}, [f"not valid YAML{where}"]
    problems = check_sweep_config(data)
    return (dict(data) if isinstance(data, Mapping) else {}), problems


def sweep_metric(config: Mapping[str, Any]) -> tuple[str, Literal["maximize", "minimize"]] | None:
    """Return the sweep's metric name and goal (W&B's default goal is minimize)."""
    metric = config.get("metric")
    if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str):
        return None
    goal = metric.get("goal", "minimize")
    return metric["name"], "maximize" if goal == "maximize" else "minimize"


def progress(done: int, count: int) -> float:
    """Return the finished fraction of a sweep, between 0 and 1."""
    if count <= 0:
        return 0.0
    return max(0.0, min(1.0, done / count))


def progress_bar(done: int, count: int, cells: int = 10) -> str:
    """Draw a progress bar of `cells` cells, ▓ done and ░ to go."""
    full = math.floor(cells * progress(done, count))
    return "▓" * full + "░" * (cells - full)


def crash_loop(
    failures: Sequence[datetime], now: datetime, k: int, window: float | timedelta
) -> bool:
    """Tell whether at least `k` failures happened within the last `window` seconds."""
    span = window if isinstance(window, timedelta) else timedelta(seconds=window)
    recent = [moment for moment in failures if now - span <= moment <= now]
    return len(recent) >= k
