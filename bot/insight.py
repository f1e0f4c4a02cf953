"""Answers about runs that the lab asks for: the best run, a run's config, metric charts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.best import (
    BestAnswer,
    best_answer,
    choose_goal,
    logged_metrics,
    render_config,
)
from bot.domain.commands import (
    BEST_USAGE,
    PLOT_USAGE,
    BestRequest,
    PlotRequest,
    RunRef,
    SweepPlotRequest,
    SweepRef,
    UsageError,
)
from bot.domain.format import truncate
from bot.domain.keys import ProjectKey, RunKey, SweepKey
from bot.domain.notify import subscribed_projects
from bot.domain.params import usual_values
from bot.domain.plots import (
    Point,
    Series,
    plot_metrics,
    render_run_plot_caption,
    render_sweep_plot_caption,
    series_from_points,
    sweep_parameters,
    sweep_points,
    unknown_metrics_text,
)
from bot.store import Store
from config import LabConfig
from wandb_client.client import WandbClient
from wandb_client.errors import WandbNotFoundError
from wandb_client.models import Goal, SweepSnapshot

# Runs W&B orders first but whose metric is NaN or infinite are skipped here, so ask for a
# few more than the best and its runner-up; still one request.
BEST_FETCH = 10
HISTORY_SAMPLES = 500


@dataclass(frozen=True, slots=True)
class BestFound:
    """The outcome of `/best`: where we looked, by what, and the answer if any run has one."""

    scope: str
    metric: str
    goal: Goal
    key_metrics: tuple[str, ...]
    answer: BestAnswer | None
    # A sweep's own parameters, shown first: they are what differ between its runs.
    swept: tuple[str, ...] = ()
    # What most of the top runs share: not worth repeating on the best one's line.
    usual: Mapping[str, Any] = field(default_factory=dict)
    # Without an answer: the metrics the project's recent runs do log.
    logged: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered chart and the caption it is sent with."""

    png: bytes
    caption: str


# matplotlib costs ~30 MB and seconds to import: only a bot that draws a chart pays for it.
def draw_curves(title: str, series: Series) -> bytes:
    """Draw a run's metric curves (imports matplotlib on first use)."""
    from bot.charts import metric_curves_png

    return metric_curves_png(title, series)


def draw_scatter(title: str, metric: str, points: Sequence[Point], best: int | None) -> bytes:
    """Draw a sweep's metric against its parameters (imports matplotlib on first use)."""
    from bot.charts import sweep_scatter_png

    return sweep_scatter_png(title, metric, points, best)


def split_path(path: str) -> RunRef:
    """Split a stored `entity/project/id` button target."""
    key = RunKey.parse(path)
    return RunRef(key.entity, key.project, key.run_id)


class InsightService:
    """Find best runs, fetch configs and draw charts, asking W&B as little as possible."""

    def __init__(self, wandb: WandbClient, lab: LabConfig, store: Store, ui_url: str) -> None:
        self._wandb = wandb
        self._lab = lab
        self._store = store
        self._ui_url = ui_url

    # -- finding sweeps ------------------------------------------------------------------

    def _candidate_projects(self, chat_id: int | None) -> list[tuple[str, str]]:
        """Return the projects a bare sweep id may belong to, the chat's own first."""
        paths: list[str] = []
        if chat_id is not None:
            extra = [f"{e}/{p}" for e, p in self._store.chats.subscriptions().get(chat_id, set())]
            paths += sorted(subscribed_projects(self._lab, chat_id, extra))
        for name in self._lab.projects:
            paths.append(f"{self._lab.entity_of(name)}/{name}")
        for sweep in self._lab.sweeps.values():
            paths.append(f"{sweep.entity or self._lab.entity}/{sweep.project}")
        for chat in self._lab.chats:
            paths += sorted(subscribed_projects(self._lab, chat.id))
        keys = (ProjectKey.parse(p) for p in dict.fromkeys(paths))
        return [(k.entity, k.project) for k in keys]

    async def find_sweep(self, ref: SweepRef, chat_id: int | None, usage: str) -> SweepSnapshot:
        """Find a sweep by lab name, full path, project and id, or a bare id."""
        if ref.name is not None:
            started = [r for r in self._store.sweeps.all() if r.name == ref.name]
            if not started:
                raise UsageError(f'Sweep "{ref.name}" has not been started from the chat.', usage)
            key = SweepKey.parse(max(started, key=lambda r: r.started_at).path)
            return await self._wandb.sweep(key.entity, key.project, key.sweep_id)
        sweep_id = ref.sweep_id or ""
        if ref.project is not None:
            candidates = [(ref.entity or self._lab.entity_of(ref.project), ref.project)]
        else:
            candidates = self._known_sweep_projects(sweep_id) + self._candidate_projects(chat_id)
        for entity, project in dict.fromkeys(candidates):
            try:
                return await self._wandb.sweep(entity, project, sweep_id)
            except WandbNotFoundError:
                continue
        where = ", ".join(p for _, p in dict.fromkeys(candidates)) or "no known project"
        raise UsageError(f'No sweep "{sweep_id}" in {where}.', usage)

    def _known_sweep_projects(self, sweep_id: str) -> list[tuple[str, str]]:
        out = []
        for record in self._store.sweeps.all():
            key = SweepKey.parse(record.path)
            if key.sweep_id == sweep_id:
                out.append((key.entity, key.project))
        return out

    # -- /best ------------------------------------------------------------------------------

    async def best(self, request: BestRequest, chat_id: int | None) -> BestFound:
        """Return the best run and its runner-up by one metric, in one W&B request."""
        usage = BEST_USAGE
        sweep: SweepSnapshot | None = None
        if request.is_sweep:
            ref = SweepRef(request.sweep_id, request.project, request.entity)
            sweep = await self.find_sweep(ref, chat_id, usage)
            entity, project = sweep.entity, sweep.project
        else:
            entity, project = request.entity or self._lab.entity, request.project or ""
        settings = self._lab.project(project)
        metric = request.metric or (sweep.metric if sweep else None) or settings.metric
        if metric is None:
            raise UsageError(
                f"No metric is set for {project}: name one, e.g. /best {project} accuracy max.",
                usage,
            )
        goal = choose_goal(
            metric,
            asked=request.goal,
            lab=settings,
            sweep_metric=sweep.metric if sweep else None,
            sweep_goal=sweep.goal if sweep else None,
        ).goal
        runs = await self._wandb.best_runs(
            entity, project, metric, goal, limit=BEST_FETCH, sweep=sweep.id if sweep else None
        )
        scope = f"sweep {sweep.display_name or sweep.id}" if sweep else project
        answer = best_answer(runs, metric, goal)
        swept = sweep.config.get("parameters") if sweep else None
        first = tuple(swept) if isinstance(swept, dict) else ()
        usual = usual_values([run.config for run in runs])
        # Nothing logged that metric: one more request, only then, to say what runs do log.
        logged = () if answer else logged_metrics(await self._wandb.recent_runs(entity, project))
        return BestFound(scope, metric, goal, settings.key_metrics, answer, first, usual, logged)

    # -- Config -----------------------------------------------------------------------------

    async def config_messages(self, target: str) -> list[str]:
        """Return a run's full config as `<pre>` messages."""
        ref = split_path(target)
        run = await self._wandb.run(ref.entity, ref.project, ref.run_id)
        return render_config(run)

    # -- charts -----------------------------------------------------------------------------

    async def plot(self, request: PlotRequest | SweepPlotRequest, chat_id: int | None) -> Chart:
        """Draw a run's metric curves, or a sweep's metric against its hyperparameters."""
        if isinstance(request, SweepPlotRequest):
            return await self._plot_sweep(request, chat_id)
        ref = request.run
        try:
            run = await self._wandb.run(ref.entity, ref.project, ref.run_id)
        except WandbNotFoundError:
            # A bare 8-character id may be a sweep's as well as a run's.
            sweep_ref = SweepRef(ref.run_id, ref.project, ref.entity)
            metric = request.metrics[0] if len(request.metrics) == 1 else None
            try:
                return await self._plot_sweep(SweepPlotRequest(sweep_ref, metric), chat_id)
            except UsageError:
                raise UsageError(f'No run "{ref.run_id}" in {ref.project}.', PLOT_USAGE) from None
        metrics = plot_metrics(run, self._lab.project(ref.project), request.metrics)
        history = await self._wandb.metric_history(
            ref.entity, ref.project, ref.run_id, metrics, samples=HISTORY_SAMPLES
        )
        series = series_from_points(history, metrics)
        if request.metrics and not any(series.values()):
            raise UsageError(unknown_metrics_text(run, metrics), PLOT_USAGE)
        # The title has room for about 60 characters at the chart's font size.
        title = f"{truncate(run.display_name, 36)} · {truncate(run.project, 22)}"
        png = await asyncio.to_thread(draw_curves, title, series)
        return Chart(png, render_run_plot_caption(run, series, self._ui_url))

    async def _plot_sweep(self, request: SweepPlotRequest, chat_id: int | None) -> Chart:
        sweep = await self.find_sweep(request.sweep, chat_id, PLOT_USAGE)
        settings = self._lab.project(sweep.project)
        metric = request.metric or sweep.metric or settings.metric
        if metric is None:
            raise UsageError(
                "The sweep names no metric: say which, e.g. /plot sweep <id> accuracy.",
                PLOT_USAGE,
            )
        goal = choose_goal(metric, lab=settings, sweep_metric=sweep.metric, sweep_goal=sweep.goal)
        runs = await self._wandb.sweep_runs(sweep.entity, sweep.project, sweep.id)
        points, best_index, answer = sweep_points(runs, metric, goal.goal, sweep_parameters(sweep))
        title = f"sweep {sweep.display_name or sweep.id} · {metric} ({goal.short}, {goal.source})"
        png = await asyncio.to_thread(draw_scatter, title, metric, points, best_index)
        caption = render_sweep_plot_caption(
            sweep, metric, answer, len(points), self._ui_url, goal=goal
        )
        return Chart(png, caption)
