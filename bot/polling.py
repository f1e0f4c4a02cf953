"""When each watched project is polled: per-project cadence, batches, refresh requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import metrics
from bot.domain.keys import ProjectKey
from bot.monitor import Monitor, PollOutcome

log = logging.getLogger(__name__)

# The name of every poll job on the job queue: jobs are found through their batch, never by
# name, so one name serves them all.
POLL_JOB = "poll"
# APScheduler drops a job that starts more than a second late; a busy host would then stop
# a batch's polls for good. A late poll is still a poll.
_LATE_IS_FINE: dict[str, Any] = {"misfire_grace_time": None}


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often projects are polled, and how far failures push the next poll back."""

    interval: float
    idle_interval: float
    max_backoff: float
    # Refresh requests closer together than this make one poll, as Home Assistant's
    # Debouncer does: a burst of webhooks must not become a burst of requests.
    refresh_cooldown: float = 1.0

    def backoff(self, failures: int) -> float:
        """Return the wait after `failures` failed polls in a row: doubling, capped."""
        return float(min(self.max_backoff, self.interval * 2 ** max(failures, 0)))

    def next_delay(self, coordinator: ProjectCoordinator) -> float:
        """Return how long a project waits for its next poll after the last one."""
        if coordinator.failures:
            return self.backoff(coordinator.failures)
        return self.interval if coordinator.active else self.idle_interval


class ProjectCoordinator:
    """Own one project's cadence: next poll, back-off, last success, refresh requests."""

    def __init__(self, key: ProjectKey, due: float) -> None:
        self.key = key
        self.due = due
        self.failures = 0
        self.active = False
        self.last_outcome: PollOutcome | None = None
        self.last_ok_at: float | None = None
        self._refresh_at: float | None = None

    def request_refresh(self, now: float) -> None:
        """Ask for a poll as soon as the cooldown allows."""
        self.due = min(self.due, now)
        self._refresh_at = now

    def record(self, outcome: PollOutcome, started: float, now: float, cadence: Cadence) -> None:
        """Take in what a poll found and decide when the next comes."""
        self.last_outcome = outcome
        if outcome.ok:
            self.failures, self.active, self.last_ok_at = 0, outcome.active, now
        else:
            self.failures += 1
        self.due = now + cadence.next_delay(self)
        if self._refresh_at is not None and self._refresh_at > started:
            # Asked for while the poll was already under way: it may have missed the news.
            self.due = min(self.due, now + cadence.refresh_cooldown)
        self._refresh_at = None


class JobQueueLike(Protocol):
    """The part of PTB's JobQueue the scheduler uses."""

    def run_once(
        self,
        callback: Any,
        when: float,
        *,
        data: Any = ...,
        name: str | None = ...,
        job_kwargs: dict[str, Any] | None = ...,
    ) -> Any: ...


@dataclass(eq=False, slots=True)
class _Batch:
    """Projects polled by one job, in one request when the client can batch them."""

    members: list[ProjectKey] = field(default_factory=list)
    job: Any = None
    fire_at: float | None = None
    started: float = float("-inf")
    running: bool = False


class PollScheduler:
    """Keep one poll job per batch of watched projects on PTB's job queue."""

    def __init__(
        self,
        monitor: Monitor,
        job_queue: JobQueueLike,
        cadence: Cadence,
        *,
        on_enqueued: Callable[[], None],
        on_round: Callable[[Sequence[PollOutcome]], int] | None = None,
        batch_size: int = 1,
        stagger: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monitor = monitor
        self._jobs = job_queue
        self.cadence = cadence
        self._on_enqueued = on_enqueued
        self._on_round = on_round
        self._batch_size = max(1, batch_size)
        self._stagger = stagger
        self._clock = clock
        self._projects: dict[ProjectKey, ProjectCoordinator] = {}
        self._batch_of: dict[ProjectKey, _Batch] = {}
        self._batches: list[_Batch] = []
        self._reconciled_at = clock()

    def start(self) -> None:
        """Schedule every watched project, first polls spread over at most one interval."""
        keys = sorted(ProjectKey(e, p) for e, p in self._monitor.watched())
        groups = -(-len(keys) // self._batch_size)
        step = min(self._stagger, self.cadence.interval / max(groups, 1))
        for index, key in enumerate(keys):
            self._add(key, delay=(index // self._batch_size) * step)

    def coordinator(self, entity: str, project: str) -> ProjectCoordinator | None:
        """Return a watched project's coordinator, None when it is not polled."""
        return self._projects.get(ProjectKey(entity, project))

    def last_outcome(self, entity: str, project: str) -> PollOutcome | None:
        """Return what the project's last poll did, None before its first."""
        coordinator = self.coordinator(entity, project)
        return coordinator.last_outcome if coordinator else None

    def polling(self, entity: str, project: str) -> bool:
        """Tell whether a poll of the project is under way now."""
        batch = self._batch_of.get(ProjectKey(entity, project))
        return batch is not None and batch.running

    def ensure(self, entity: str, project: str, delay: float = 0.0) -> bool:
        """Schedule a project's polls unless it has them; return True when newly scheduled."""
        key = ProjectKey(entity, project)
        if key in self._projects:
            return False
        self._add(key, delay)
        return True

    def request_refresh(self, entity: str, project: str) -> None:
        """Poll a project now (a webhook or a command saw news); bursts make one poll."""
        key = ProjectKey(entity, project)
        if self.ensure(entity, project):
            return
        now = self._clock()
        self._projects[key].request_refresh(now)
        batch = self._batch_of[key]
        if not batch.running:
            self._schedule(batch, max(now, batch.started + self.cadence.refresh_cooldown))

    def drop(self, entity: str, project: str) -> None:
        """Stop polling a project nobody watches any more, and forget what it knew.

        A later /watch then starts from a new baseline instead of reporting every run that
        ended while nobody watched.
        """
        self._remove(ProjectKey(entity, project))
        self._monitor.forget(entity, project)

    def _add(self, key: ProjectKey, delay: float) -> None:
        now = self._clock()
        self._projects[key] = ProjectCoordinator(key, now + delay)
        batch = next((b for b in self._batches if len(b.members) < self._batch_size), None)
        if batch is None:
            batch = _Batch()
            self._batches.append(batch)
        batch.members.append(key)
        self._batch_of[key] = batch
        if not batch.running:
            self._schedule(batch, now + delay)

    def _remove(self, key: ProjectKey) -> None:
        self._projects.pop(key, None)
        batch = self._batch_of.pop(key, None)
        if batch is None:
            return
        batch.members.remove(key)
        if not batch.members:
            self._batches.remove(batch)
            self._cancel(batch)

    def _cancel(self, batch: _Batch) -> None:
        if batch.job is not None:
            batch.job.schedule_removal()
        batch.job, batch.fire_at = None, None

    def _schedule(self, batch: _Batch, at: float) -> None:
        """Run the batch's job at `at` (loop-independent seconds), unless it runs sooner."""
        if batch.fire_at is not None and batch.fire_at <= at:
            return
        self._cancel(batch)
        batch.fire_at = at
        delay = max(0.0, at - self._clock())
        batch.job = self._jobs.run_once(
            self._job, delay, data=batch, name=POLL_JOB, job_kwargs=_LATE_IS_FINE
        )

    async def _job(self, context: Any) -> None:
        batch: _Batch = context.job.data
        batch.job, batch.fire_at = None, None
        if batch not in self._batches:
            return
        started = self._clock()
        # Members due within half an interval come along: one request instead of two, and
        # their phases line up from then on.
        horizon = started + self.cadence.interval / 2
        keys = [k for k in batch.members if self._projects[k].due <= horizon]
        batch.running, batch.started = True, started
        try:
            outcomes = await self._poll(keys)
        finally:
            batch.running = False
        now = self._clock()
        for outcome in outcomes:
            metrics.record_poll(str(outcome.key), outcome.ok, (now - started) / len(outcomes))
            coordinator = self._projects.get(outcome.key)
            if coordinator is not None:
                coordinator.record(outcome, started, now, self.cadence)
        told = self._on_round(outcomes) if self._on_round is not None else 0
        if told or any(o.enqueued for o in outcomes):
            self._on_enqueued()
        self._reconcile(now)
        if batch in self._batches:
            self._schedule(batch, min(self._projects[k].due for k in batch.members))

    async def _poll(self, keys: list[ProjectKey]) -> list[PollOutcome]:
        try:
            return await self._monitor.poll_batch(keys)
        except Exception:
            log.exception("poll of %s crashed", ", ".join(map(str, keys)))
            return [PollOutcome(key, ok=False, error="crash") for key in keys]

    def _reconcile(self, now: float) -> None:
        """Once an interval, stop polling projects that nobody watches any more.

        Sweeps end and stop confirmations arrive; their projects then need no polls. Done
        once an interval, not after every poll, so a poll's cost does not grow with the lab.
        """
        if now - self._reconciled_at < self.cadence.interval:
            return
        self._reconciled_at = now
        watched = {ProjectKey(e, p) for e, p in self._monitor.watched()}
        for key in self._stale(watched):
            self._remove(key)
        for key in sorted(watched - self._projects.keys()):
            self._add(key, 0.0)

    def _stale(self, watched: set[ProjectKey]) -> Iterable[ProjectKey]:
        return [k for k in self._projects if k not in watched and not self._batch_of[k].running]
