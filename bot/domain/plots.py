"""What a chart shows: which metrics, which points, and the caption that goes with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.best import BestAnswer, best_answer, metric_value, run_url
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
from wandb_client.models import HistoryRow, RunSnapshot, SweepSnapshot

PLOT_MARKER = "📈"
SWEEP_MARKER = "🧹"
DEFAULT_CURVES = 4
SWEEP_PARAMS = 6

Series = dict[str, list[tuple[float, float]]]
Point = tuple[Mapping[str, Any], float]


def plot_metrics(
    run: RunSnapshot, settings: ProjectConfig, requested: Sequence[str] = ()
) -> tuple[str, ...]:
    """Pick the metrics to draw: those asked for, else the project's, else the run's numbers."""
    if requested:
        return tuple(dict.fromkeys(requested))
    named = [m for m in (settings.metric, *settings.key_metrics) if m]
    if named:
        return tuple(dict.fromkeys(named))[:DEFAULT_CURVES]
    numeric = sorted(
        str(k) for k, v in run.summary.items() if not str(k).startswith("_") and is_finite_number(v)
    )
    return tuple(numeric[:DEFAULT_CURVES])


def series_from_history(rows: Sequence[HistoryRow], metrics: Sequence[str]) -> Series:
    """Return each metric's (step, value) points, leaving out rows without a finite value."""
    series: Series = {m: [] for m in metrics}
    for index, row in enumerate(rows):
        step = row.step if row.step >= 0 else index
        for metric in metrics:
            value = row.values.get(metric)
            if isinstance(value, int | float) and is_finite_number(value):
                series[metric].append((float(step), float(value)))
    return series


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
) -> str:
    """Caption a sweep's scatter: the sweep, its metric, and the best run."""
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
    return _fit_caption(lines)
