"""Two runs side by side: which metric, what differs in their configs, and who is ahead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.best import (
    GoalChoice,
    fmt_change,
    format_value,
    is_better,
    metric_value,
    run_url,
)
from bot.domain.format import TELEGRAM_CAPTION_LIMIT, esc, fmt_number, link, truncate, utf16_len
from bot.domain.params import flatten_config
from bot.domain.plots import PLOT_MARKER, run_metrics
from bot.domain.render import is_counter
from config.lab import ProjectConfig
from wandb_client.models import RunSnapshot

# The caption has room for about this many differing keys; the rest are counted.
DIFF_LIMIT = 8
VALUE_LIMIT = 24
NAMED_METRICS = 12
ABSENT = "—"
Points = Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Comparison:
    """What `/compare` found: the two runs, the metric, its goal and both curves."""

    first: RunSnapshot
    second: RunSnapshot
    metric: str
    goal: GoalChoice
    first_points: Points
    second_points: Points


def run_labels(first: RunSnapshot, second: RunSnapshot) -> tuple[str, str]:
    """Name the two runs for the chart: display names, by path when their projects differ."""
    if (first.entity, first.project) != (second.entity, second.project):
        whole = first.entity != second.entity

        def path(run: RunSnapshot) -> str:
            where = f"{run.entity}/{run.project}" if whole else run.project
            return f"{where}/{run.display_name}"

        return path(first), path(second)
    if first.display_name == second.display_name:
        return f"{first.display_name} ({first.id})", f"{second.display_name} ({second.id})"
    return first.display_name, second.display_name


def shared_metrics(first: RunSnapshot, second: RunSnapshot) -> list[str]:
    """Return the metrics both runs logged, sorted, W&B's own left out."""
    theirs = set(run_metrics(second))
    return [m for m in run_metrics(first) if m in theirs]


def pick_metric(
    first: RunSnapshot,
    second: RunSnapshot,
    projects: Sequence[ProjectConfig],
    asked: str | None = None,
) -> str | None:
    """Choose the metric: as asked, else the lab file's that both logged, else a shared one."""
    if asked:
        return asked
    named = [m for p in projects for m in (p.metric, *p.key_metrics) if m]
    for metric in dict.fromkeys(named):
        if metric_value(first.summary, metric) is not None and (
            metric_value(second.summary, metric) is not None
        ):
            return metric
    # Counters (epoch, step) grow alike in both runs: they say nothing about which is better.
    measured = [m for m in shared_metrics(first, second) if not is_counter(m)]
    return measured[0] if measured else None


def unknown_metric_text(first: RunSnapshot, second: RunSnapshot, metric: str | None) -> str:
    """Say that the runs do not both have a metric's history, and name the ones they share."""
    shared = shared_metrics(first, second)
    named = ", ".join(truncate(m, 40) for m in shared[:NAMED_METRICS]) if shared else "none"
    more = f" (+{len(shared) - NAMED_METRICS} more)" if len(shared) > NAMED_METRICS else ""
    names = f"{truncate(first.display_name)} and {truncate(second.display_name)}"
    if metric is None:
        return f"{names} logged no metric in common."
    return f'{names} do not both have history for "{metric}". Metrics both logged: {named}{more}.'


def config_differences(
    first: Mapping[str, Any], second: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """Return (key, first value, second value) for every config key whose values differ."""
    a, b = flatten_config(first), flatten_config(second)
    out = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, ABSENT), b.get(key, ABSENT)
        if repr(left) != repr(right):
            out.append((key, left, right))
    return out


def final_value(run: RunSnapshot, metric: str, points: Points) -> float | None:
    """Return the run's final value: its summary's, else the last point of its curve."""
    value = metric_value(run.summary, metric)
    if value is None and points:
        value = float(points[-1][1])
    return value


def verdict(first: float | None, second: float | None, goal: GoalChoice) -> str:
    """Say which run is ahead and by how much: "B is 0.0120 better (+0.0120)"."""
    if first is None or second is None:
        return "no final value to compare"
    change = second - first
    if change == 0:
        return f"a tie at {fmt_number(first)}"
    word = "better" if is_better(second, first, goal.goal) else "worse"
    return f"B is {fmt_change(abs(change), first).lstrip('+')} {word} ({fmt_change(change, first)})"


def _final(value: float | None) -> str:
    return fmt_number(value) if value is not None else "no value"


def _value(value: Any) -> str:
    return truncate(format_value(value), VALUE_LIMIT)


def differences_line(
    differences: Sequence[tuple[str, Any, Any]], room: int = TELEGRAM_CAPTION_LIMIT
) -> str:
    """Return `differs: key a → b · …` for the keys that fit in `room`, counting the rest."""
    if not differences:
        return "same config"
    line = "differs:"
    for index, (key, a, b) in enumerate(differences[:DIFF_LIMIT]):
        item = f"{esc(truncate(key, 40))} {esc(_value(a))} → {esc(_value(b))}"
        more = len(differences) - index - 1
        tail = f" · +{more} more" if more else ""
        # Whole items only: a cut inside an escape would break the caption's HTML.
        if utf16_len(f"{line} {item}{tail}") > room:
            return f"{line} · +{len(differences) - index} more" if index else ""
        line = f"{line}{' ·' if index else ''} {item}"
    more = len(differences) - DIFF_LIMIT
    return line + (f" · +{more} more" if more > 0 else "")


def render_compare_caption(comparison: Comparison, ui_url: str) -> str:
    """Caption the chart: the metric and goal, each run's final value, the delta, the config."""
    c = comparison
    labels = run_labels(c.first, c.second)
    a = final_value(c.first, c.metric, c.first_points)
    b = final_value(c.second, c.metric, c.second_points)
    lines = [
        f"{PLOT_MARKER} compare · {esc(truncate(c.metric, 40))} ({esc(c.goal.phrase)})",
        f"A {link(run_url(c.first, ui_url), truncate(labels[0]))} {_final(a)}",
        f"B {link(run_url(c.second, ui_url), truncate(labels[1]))} {_final(b)}",
        verdict(a, b, c.goal),
    ]
    room = TELEGRAM_CAPTION_LIMIT - utf16_len("\n".join(lines)) - 1
    diff = differences_line(config_differences(c.first.config, c.second.config), room)
    return "\n".join([*lines, diff] if diff else lines)
