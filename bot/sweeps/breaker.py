"""The crash-loop breaker: a sweep whose runs keep failing is paused and its agents stopped."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.delivery import Delivery
from bot.domain.control import last_error, render_crash_loop
from bot.domain.events import RunEvent
from bot.domain.sweeps import crash_loop
from bot.store import OutboxItem, Store, SweepRecord
from bot.sweeps.agents import AgentWatch
from bot.sweeps.common import SweepSource, Tasks, split_path, sweep_topic
from config.lab import CrashLoopConfig
from wandb_client.errors import WandbError
from wandb_client.models import RunSnapshot

log = logging.getLogger(__name__)

MAX_REMEMBERED_FAILURES = 20


class CrashLoopBreaker:
    """Count a sweep's failed runs; at `failures` within `window` s, pause, alert once, stop."""

    def __init__(
        self,
        *,
        policy: CrashLoopConfig,
        store: Store,
        wandb: SweepSource,
        agents: AgentWatch,
        delivery: Delivery,
        clock: Callable[[], datetime],
        tasks: Tasks,
    ) -> None:
        """Keep the collaborators."""
        self._policy = policy
        self._store = store
        self._wandb = wandb
        self._agents = agents
        self._delivery = delivery
        self._clock = clock
        self._tasks = tasks
        self._failed_runs: dict[str, deque[RunSnapshot]] = {}

    def count(self, sweep: SweepRecord, event: RunEvent) -> bool:
        """Count a failed or crashed run of a sweep; return True when this one trips it."""
        path = sweep.path
        if sweep.finished_at is not None or sweep.breaker_tripped or self._agents.is_stopping(path):
            return False
        if self._agents.interrupted(event.run.id):
            return False  # its agent was stopped on purpose: no sign of a crash loop
        now = self._clock()
        window = self._policy.window
        recent = [t for t in sweep.failures if now - t <= timedelta(seconds=window)]
        failures = (*recent, now)[-MAX_REMEMBERED_FAILURES:]
        runs = self._failed_runs.setdefault(path, deque(maxlen=MAX_REMEMBERED_FAILURES))
        runs.append(event.run)
        tripped = crash_loop(failures, now, self._policy.failures, window)
        self._store.sweeps.update(path, failures=failures, breaker_tripped=int(tripped))
        if tripped:
            self._tasks.spawn(self.trip(sweep), f"breaker-{path}")
        return tripped

    async def trip(self, sweep: SweepRecord) -> None:
        """Pause a crash-looping sweep on W&B, alert once, stop its agents."""
        path = sweep.path
        entity, project, sweep_id = split_path(path)
        paused = True
        try:
            await self._wandb.set_sweep_state(entity, project, sweep_id, "pause")
        except WandbError as exc:
            paused = False
            log.error("could not pause crash-looping sweep %s: %s", path, exc)
        tails = await self._agents.log_tails(path)
        error = next((e for e in (last_error(t) for t in tails) if e), None)
        text, buttons = render_crash_loop(
            path,
            failures=list(self._failed_runs.get(path, ())),
            window_s=self._policy.window,
            paused=paused,
            error=error,
            ui_url=self._wandb.ui_url,
        )
        item = OutboxItem(
            sweep.chat_id,
            f"crash-loop:{path}",
            "crash-loop",
            text,
            buttons,
            thread_id=sweep.thread_id,
            topic=sweep_topic(path),
        )
        self._store.outbox.enqueue([item], self._clock())
        self._delivery.wake()
        await self._agents.stop_all(path)
        self._agents.finish_if_done(path)
