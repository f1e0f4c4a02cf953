"""Pure sweep helpers: check a sweep config, read its metric, progress, crash loops."""

from __future__ import annotations

import math
import re
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


# --- one vocabulary for a sweep's state -----------------------------------------------------

SweepPhase = Literal["running", "paused", "finished", "stopped", "cancelled", "gave_up", "tripped"]

#: The one word each message uses for a phase.
PHASE_WORDS: dict[SweepPhase, str] = {
    "running": "running",
    "paused": "paused",
    "finished": "finished",
    "stopped": "stopped",
    "cancelled": "cancelled",
    "gave_up": "gave up",
    "tripped": "paused after repeated failures",
}
#: Phases in which nothing runs the sweep any more and nothing will without someone acting.
ENDED_PHASES: frozenset[SweepPhase] = frozenset({"finished", "stopped", "cancelled", "gave_up"})


def sweep_phase(
    *,
    wandb_state: str | None,
    live_agents: int,
    done: int,
    count: int,
    breaker_tripped: bool = False,
) -> SweepPhase:
    """Name a sweep's phase from W&B's state and its agents: the one source of truth.

    W&B keeps a sweep RUNNING when its agents quit on their own (wandb's "Detected 3 failed
    runs" check): with no agent left and runs to go, the sweep "gave up".
    """
    state = (wandb_state or "").upper()
    if breaker_tripped and not live_agents:
        return "tripped"
    if live_agents:
        return "paused" if state == "PAUSED" else "running"
    if state == "CANCELED":
        return "cancelled"
    if done >= count:
        return "finished"
    if state == "PAUSED":
        return "paused"
    if state in ("FINISHED", "FAILED"):
        return "stopped"
    return "gave_up"


# wandb's agent: "Detected 3 failed runs in the first 60 seconds, shutting down." and
# "Detected 5 failed runs in a row, shutting down." / "Detected 4 consecutive failed runs".
_GAVE_UP = re.compile(
    r"Detected (\d+) (?:consecutive )?failed runs(?: in the first (\d+) seconds| in a row)?"
)


def agents_gave_up(lines: Sequence[str]) -> str | None:
    """Return why wandb's agent quit on its own, from its log ("after 3 failed runs in 60 s")."""
    for line in reversed(lines):
        match = _GAVE_UP.search(line)
        if match:
            runs, seconds = match.group(1), match.group(2)
            if seconds:
                return f"after {runs} failed runs in {seconds} s"
            return f"after {runs} failed runs in a row"
    return None


def join_target(*, done: int, count: int, run_cap: int | None) -> int:
    """Return the run total a joined sweep's card counts to: what it has plus `count` more.

    A W&B run cap bounds it: agents get no run past the cap.
    """
    target = done + count
    return min(target, run_cap) if run_cap is not None else target
