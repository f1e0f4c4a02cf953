"""What a chart shows: which metrics, which points, and the caption that goes with it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.best import BestAnswer, GoalChoice, best_answer, metric_value, run_url
from bot.domain.format import (
    TELEGRAM_CAPTION_LIMIT,
    esc,
    fmt_number,
    is_finite_number,
    link,
    truncate,
    utf16_len,
)
from bot.domain.params import flatten_config
from config.lab import ProjectConfig
from wandb_client.models import RunSnapshot, SweepSnapshot

PLOT_MARKER = "📈"
SWEEP_MARKER = "🧹"
DEFAULT_CURVES = 4
SWEEP_PARAMS = 6

# Joins a Plot button's run path and the metrics it draws (neither ever holds a tab).
_TARGET_SEP = "\t"

Series = dict[str, list[tuple[float, float]]]
Point = tuple[Mapping[str, Any], float]


def plot_target(path: str, metrics: Sequence[str] = ()) -> str:
    """Return a Plot button's target: the run, and the metrics to draw (none: the usual)."""
    return _TARGET_SEP.join((path, *metrics))


def read_plot_target(target: str) -> tuple[str, tuple[str, ...]]:
    """Return the run path and the metrics a Plot button's target names."""
    path, *metrics = target.split(_TARGET_SEP)
    return path, tuple(metrics)


def plot_metrics(
    run: RunSnapshot, settings: ProjectConfig, requested: Sequence[str] = ()
) -> tuple[str, ...]:
    """Pick the metrics to draw: those asked for, else the project's, else the run's numbers."""
    if requested:
        return tuple(dict.fromkeys(requested))
    named = [m for m in (settings.metric, *settings.key_metrics) if m]
    if named:
        return tuple(dict.fromkeys(named))[:DEFAULT_CURVES]
    return tuple(run_metrics(run)[:DEFAULT_CURVES])


def series_from_points(
    history: Mapping[str, Sequence[tuple[int, float]]], metrics: Sequence[str]
) -> Series:
    """Return each metric's finite (step, value) points, as fetched one spec per metric."""
    return {
        m: [(float(step), value) for step, value in history.get(m, ()) if math.isfinite(value)]
        for m in metrics
    }


def run_metrics(run: RunSnapshot) -> list[str]:
    """Return the names of the numbers a run logged, W&B's own left out."""
    return sorted(
        str(k) for k, v in run.summary.items() if not str(k).startswith("_") and is_finite_number(v)
    )


def unknown_metrics_text(run: RunSnapshot, asked: Sequence[str]) -> str:
    """Say that a run logged none of the asked metrics, and name those it did log."""
    names = ", ".join(f'"{m}"' for m in asked)
    known = run_metrics(run)
    logged = ", ".join(truncate(m, 40) for m in known[:20]) if known else "none yet"
    more = f" (+{len(known) - 20} more)" if len(known) > 20 else ""
    return f"{truncate(run.display_name)} has no history for {names}. Its metrics: {logged}{more}."


def _fit_caption(lines: list[str]) -> str:
    # Drop detail lines from the end until the caption fits Telegram's limit.
    while len(lines) > 1 and utf16_len("\n".join(lines)) > TELEGRAM_CAPTION_LIMIT:
        lines.pop()
    return "\n".join(lines)


def render_run_plot_caption(
    run: RunSnapshot, series: Mapping[str, Sequence[tuple[float, float]]], ui_url: str
) -> str:
    """Caption a run's metric curves: the run, then each metric's last value."""
    title = (
        f"{PLOT_MARKER} {link(run_url(run, ui_url), truncate(run.display_name))}"
        f" · {esc(truncate(run.project))}"
    )
    drawn = [f"{esc(truncate(m, 40))} {fmt_number(pts[-1][1])}" for m, pts in series.items() if pts]
    missing = [esc(truncate(m, 40)) for m, pts in series.items() if not pts]
    lines = [title]
    if drawn:
        lines.append("last: " + " · ".join(drawn))
    if missing:
        lines.append("no history for " + ", ".join(missing))
    return _fit_caption(lines)


def sweep_parameters(sweep: SweepSnapshot) -> tuple[str, ...]:
    """Return the names of the parameters a sweep searches, from its config."""
    parameters = sweep.config.get("parameters")
    if not isinstance(parameters, Mapping):
        return ()
    return tuple(sorted(str(k) for k in parameters))


def sweep_points(
    runs: Sequence[RunSnapshot], metric: str, goal: str, parameters: Sequence[str] = ()
) -> tuple[list[Point], int | None, BestAnswer | None]:
    """Return (hyperparameters, metric) per run with a finite metric, the best's index, the best."""
    scored = [run for run in runs if metric_value(run.summary, metric) is not None]
    answer = best_answer(scored, metric, goal)
    points: list[Point] = []
    best_index: int | None = None
    for run in scored:
        flat = flatten_config(run.config)
        params = {k: v for k, v in flat.items() if k in parameters} if parameters else flat
        value = metric_value(run.summary, metric)
        assert value is not None
        if answer is not None and run is answer.run:
            best_index = len(points)
        points.append((params, value))
    return points, best_index, answer


def render_sweep_plot_caption(
    sweep: SweepSnapshot,
    metric: str,
    answer: BestAnswer | None,
    runs_drawn: int,
    ui_url: str,
    goal: GoalChoice | None = None,
) -> str:
    """Caption a sweep's scatter: the sweep, its metric, the best run, and why it is best."""
    name = sweep.display_name or sweep.id
    lines = [
        f"{SWEEP_MARKER} sweep {link(sweep.url, truncate(name, 40))} · {esc(truncate(sweep.project))}"
        f" · {esc(truncate(metric, 40))} vs hyperparameters",
    ]
    if answer is None:
        lines.append(f"no run has logged {esc(truncate(metric, 40))} yet")
    else:
        best = link(run_url(answer.run, ui_url), truncate(answer.run.display_name))
        lines.append(f"★ best {best} {fmt_number(answer.value)} · {runs_drawn} runs")
    if goal is not None:
        lines.append(esc(goal.phrase))
    return _fit_caption(lines)
