"""Send a sweep's end message once: top runs, failures and why, time, what mattered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime

from bot.delivery import Delivery
from bot.domain.importance import Importance, parameter_importance
from bot.domain.sweep_report import SweepEnd, failure_reasons, param_value, render_sweep_end
from bot.domain.sweeps import agents_gave_up, sweep_phase
from bot.store import OutboxItem, Store
from bot.sweeps.common import SweepSource, split_path, sweep_topic
from wandb_client.errors import WandbError
from wandb_client.models import RunSnapshot

log = logging.getLogger(__name__)

SETTLE_TRIES = 15
LIVE = frozenset({"running", "pending"})


def importance_of(
    runs: tuple[RunSnapshot, ...], params: tuple[str, ...], metric: str | None
) -> tuple[Importance, ...]:
    """Return what mattered to the metric among the sweep's finished runs."""
    if not metric:
        return ()
    rows: list[tuple[Mapping[str, object], float]] = []
    for run in runs:
        value = run.summary.get(metric)
        if (
            run.state == "finished"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            rows.append(({p: param_value(run, p) for p in params}, float(value)))
    if len(rows) < 3:
        return ()
    return tuple(parameter_importance(rows, params))


def draw(end: SweepEnd) -> bytes | None:
    """Draw the importance chart (matplotlib is loaded on first use)."""
    if not end.importance or not end.metric:
        return None
    from bot.sweeps.chart import importance_png

    title = f"sweep {end.path.rsplit('/', 1)[-1]} · {end.name}: what mattered"
    return importance_png(title, end.metric, end.importance)


class SweepReporter:
    """Write one end message per sweep run (keyed by sweep and its start) to the outbox."""

    def __init__(
        self,
        *,
        store: Store,
        wandb: SweepSource,
        delivery: Delivery,
        clock: Callable[[], datetime],
        log_tails: Callable[[str], Awaitable[list[list[str]]]],
        settle_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Keep the collaborators; `log_tails(path)` awaits the agents' last log lines."""
        self._store = store
        self._wandb = wandb
        self._delivery = delivery
        self._clock = clock
        self._log_tails = log_tails
        self._settle_s = settle_s
        self._sleep = sleep

    async def report(self, path: str) -> None:
        """Build and enqueue the end message of a sweep that ended (once per run of it)."""
        sweep = self._store.sweeps.get(path)
        if sweep is None or sweep.finished_at is None:
            return
        entity, project, sweep_id = split_path(path)
        for attempt in range(SETTLE_TRIES):
            try:
                snapshot, runs = await asyncio.gather(
                    self._wandb.sweep(entity, project, sweep_id),
                    self._wandb.sweep_runs(entity, project, sweep_id),
                )
            except WandbError as exc:
                log.warning("end of sweep %s not reported: %s", path, exc)
                return
            # A run its agent just stopped ends on W&B a moment later: report final states.
            if attempt + 1 == SETTLE_TRIES or all(r.state not in LIVE for r in runs):
                break
            await self._sleep(self._settle_s)
        done = sum(1 for r in runs if r.state not in ("running", "pending"))
        phase = sweep_phase(
            wandb_state=snapshot.state,
            live_agents=0,
            done=done,
            count=sweep.count,
            breaker_tripped=sweep.breaker_tripped,
        )
        tails = await self._log_tails(path)
        lines = [line for tail in tails for line in tail]
        why = agents_gave_up(lines) if phase == "gave_up" else None
        swept = snapshot.config.get("parameters")
        params = tuple(swept) if isinstance(swept, Mapping) else ()
        end = SweepEnd(
            path=path,
            url=snapshot.url,
            name=sweep.name,
            project=project,
            phase=phase,
            note=f"agents gave up {why}" if why else "",
            count=sweep.count,
            runs=tuple(runs),
            metric=snapshot.metric,
            goal=snapshot.goal,
            params=params,
            elapsed_s=(sweep.finished_at - sweep.started_at).total_seconds(),
        )
        importance = await asyncio.to_thread(importance_of, end.runs, params, end.metric)
        end = replace(end, importance=importance)
        text, buttons = render_sweep_end(end, failure_reasons(lines))
        try:
            photo = await asyncio.to_thread(draw, end)
        except Exception:
            log.exception("importance chart of %s failed; the end message goes without it", path)
            photo = None
        key = f"sweep-end:{path}:{sweep.finished_at.isoformat()}"
        item = OutboxItem(
            sweep.chat_id,
            key,
            "sweep-end",
            text,
            buttons,
            photo,
            thread_id=sweep.thread_id,
            topic=sweep_topic(path),
        )
        self._store.outbox.enqueue([item], self._clock())
        self._delivery.wake()
