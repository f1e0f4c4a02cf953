"""/compare: fetch two runs' curves of one metric by key and draw them on one chart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.domain.best import choose_goal
from bot.domain.commands import COMPARE_USAGE, RefusedError, UsageError
from bot.domain.compare import (
    Comparison,
    pick_metric,
    render_compare_caption,
    run_labels,
    unknown_metric_text,
)
from bot.domain.format import truncate
from bot.domain.plots import series_from_points
from bot.insight import HISTORY_SAMPLES, Chart
from config import LabConfig
from wandb_client.client import WandbClient
from wandb_client.models import RunSnapshot


def draw_comparison(
    title: str, metric: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]]
) -> bytes:
    """Draw both runs' curves (imports matplotlib on first use)."""
    from bot.charts import compare_curves_png

    return compare_curves_png(title, metric, series)


async def _curve(wandb: WandbClient, run: RunSnapshot, metric: str) -> list[tuple[float, float]]:
    history = await wandb.metric_history(
        run.entity, run.project, run.id, (metric,), samples=HISTORY_SAMPLES
    )
    return series_from_points(history, (metric,))[metric]


async def compare_runs(
    wandb: WandbClient,
    lab: LabConfig,
    runs: tuple[RunSnapshot, RunSnapshot],
    asked: str | None,
    ui_url: str,
) -> Chart:
    """Chart both runs' curves of one metric; the caption says what differs and who leads."""
    first, second = runs
    if first.path == second.path:
        raise UsageError(
            f"{truncate(first.display_name)} is the same run twice; name two runs.", COMPARE_USAGE
        )
    projects = [lab.project(first.project), lab.project(second.project)]
    metric = pick_metric(first, second, projects, asked)
    if metric is None:
        raise RefusedError(unknown_metric_text(first, second, None))
    # One request per run, both at once: each asks for this one key's sampled history.
    a, b = await asyncio.gather(_curve(wandb, first, metric), _curve(wandb, second, metric))
    if not a or not b:
        raise UsageError(unknown_metric_text(first, second, metric), COMPARE_USAGE)
    # The lab file speaks for the project that names this metric.
    goal = choose_goal(metric, lab=next((p for p in projects if p.metric == metric), None))
    comparison = Comparison(first, second, metric, goal, a, b)
    labels = run_labels(first, second)
    series = [(f"A · {labels[0]}", a), (f"B · {labels[1]}", b)]
    title = f"{truncate(metric, 30)} ({goal.short}) · A vs B"
    png = await asyncio.to_thread(draw_comparison, title, metric, series)
    return Chart(png, render_compare_caption(comparison, ui_url))
