"""The poll job: fetch changed runs, diff them, persist events, enqueue messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot import metrics
from bot.callbacks import to_outbox
from bot.domain.events import RunEvent, RunMemory, StallPolicy, diff_runs
from bot.domain.keys import ProjectKey, RunKey, SweepKey
from bot.domain.notify import notifications_for
from bot.store import OutboxItem, Store
from config import LabConfig
from wandb_client.errors import WandbError, WandbNotFoundError
from wandb_client.models import RunSnapshot, SweepSnapshot

log = logging.getLogger(__name__)

EventHook = Callable[[str, str, Sequence[RunEvent]], Awaitable[None]]
PollHook = Callable[[str, str, Sequence[RunSnapshot]], Awaitable[None]]
ConfirmationRenderer = Callable[[RunEvent], str]


Explainer = Callable[[Sequence[RunEvent]], Awaitable[list[RunEvent]]]


class RunSource(Protocol):
    """What the monitor needs of the W&B client."""

    async def changed_runs(
        self, entity: str, project: str, since: datetime | None, also: Sequence[str] = ()
    ) -> list[RunSnapshot]: ...

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot: ...


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll of a project did and when the next should come."""

    entity: str
    project: str
    ok: bool
    events: tuple[RunEvent, ...]
    enqueued: int
    next_delay: float
    error: str | None = None
    # W&B answered that the project does not exist (yet): /status shows it as a problem.
    missing: bool = False


def follow_migrations(chat_id: int, migrations: Mapping[int, int]) -> int:
    """Return the id a chat lives under now, following group → supergroup moves."""
    seen = {chat_id}
    while chat_id in migrations:
        chat_id = migrations[chat_id]
        if chat_id in seen:
            break
        seen.add(chat_id)
    return chat_id


class Monitor:
    """Poll W&B projects and turn what changed into outbox messages."""

    def __init__(
        self,
        store: Store,
        runs: RunSource,
        lab: LabConfig,
        clock: Callable[[], datetime],
        *,
        ui_url: str,
        poll_interval: float,
        idle_poll_interval: float,
        max_backoff: float,
        overlap: float,
        stall_policy: StallPolicy,
        burst_threshold: int = 3,
    ) -> None:
        self._store = store
        self._runs = runs
        self._lab = lab
        self._clock = clock
        self._ui_url = ui_url
        self._poll_interval = poll_interval
        self._idle_interval = idle_poll_interval
        self._max_backoff = max_backoff
        self._overlap = timedelta(seconds=overlap)
        self._stall_policy = stall_policy
        self._burst_threshold = burst_threshold
        self._hooks: list[EventHook] = []
        self._poll_hooks: list[PollHook] = []
        # Sweep id → its parameter names, looked up once per sweep for notifications.
        self._sweep_params: dict[str, tuple[str, ...]] = {}
        self._confirmation: ConfirmationRenderer | None = None
        self._explain: Explainer | None = None
        self.polls = 0

    def now(self) -> datetime:
        """Return the monitor's clock reading."""
        return self._clock()

    def forget(self, entity: str, project: str) -> None:
        """Drop a project's watermark and run memory."""
        self._store.runs.forget_project(entity, project)

    def add_hook(self, hook: EventHook) -> None:
        """Call `hook(entity, project, events)` after every poll that found events."""
        self._hooks.append(hook)

    def set_explainer(self, explain: Explainer) -> None:
        """Let `explain(events)` add why failed and crashed runs ended, before rendering."""
        self._explain = explain

    def add_poll_hook(self, hook: PollHook) -> None:
        """Call `hook(entity, project, runs)` after every successful poll with what it listed."""
        self._poll_hooks.append(hook)

    def set_confirmation_renderer(self, render: ConfirmationRenderer) -> None:
        """Render the message that confirms a stop a user asked for."""
        self._confirmation = render

    def qualify(self, project: str) -> tuple[str, str]:
        """Split `entity/project` or a bare project (the lab's entity) into its parts."""
        if "/" in project:
            key = ProjectKey.parse(project)
            return key.entity, key.project
        return self._lab.entity_of(project), project

    def watched(self) -> set[tuple[str, str]]:
        """Return every project the bot must poll.

        That is what some chat subscribes to, plus the projects of sweeps started from a
        chat and of runs a user asked to stop: their cards and confirmations depend on
        polls even when no chat watches the project.
        """
        projects = {self.qualify(p) for chat in self._lab.chats for p in chat.projects}
        for subs in self._store.chats.subscriptions().values():
            projects |= subs
        for sweep in self._store.sweeps.all(active_only=True):
            key = SweepKey.parse(sweep.path)
            projects.add((key.entity, key.project))
        for path in self._store.callbacks.pending("await_stop"):
            run = RunKey.parse(path)
            projects.add((run.entity, run.project))
        return projects

    def _extra_subscriptions(self) -> dict[int, list[str]]:
        return {
            chat: [f"{entity}/{project}" for entity, project in subs]
            for chat, subs in self._store.chats.subscriptions().items()
        }

    def _next_delay(self, active: bool) -> float:
        return self._poll_interval if active else self._idle_interval

    def backoff(self, failures: int) -> float:
        """Return the wait after `failures` failed polls in a row: doubling, capped."""
        return float(min(self._max_backoff, self._poll_interval * 2 ** max(failures, 0)))

    async def poll(self, entity: str, project: str) -> PollOutcome:
        """Poll one project once and persist what it found."""
        self.polls += 1
        now = self._clock()
        state = self._store.runs.project_state(entity, project)
        baseline = not state.baseline_done
        if baseline:
            since: datetime | None = now - 2 * self._overlap
        else:
            since = (state.watermark or now) - self._overlap
        # Runs last seen running are asked for by name as well: their end must be seen even
        # if W&B did not move their updatedAt.
        unfinished = self._store.runs.unfinished(entity, project)
        found = True
        try:
            runs = await self._runs.changed_runs(
                entity, project, since, also=[RunKey.parse(path).run_id for path in unfinished]
            )
        except WandbNotFoundError:
            runs, found = [], False  # no runs yet: every run it gets later is new
        except WandbError as exc:
            failures = self._store.runs.record_failure(entity, project, now, str(exc))
            delay = self.backoff(failures)
            log.warning(
                "poll of %s/%s failed (%d in a row), next in %.0fs: %s",
                entity,
                project,
                failures,
                delay,
                exc,
            )
            return PollOutcome(entity, project, False, (), 0, delay, str(exc))
        memory = {
            path: RunMemory.from_dict(data)
            for path, data in self._store.runs.memory(
                entity, project, [run.path for run in runs]
            ).items()
        }
        policy = self._stall_policy.for_project(self._lab.project(project))
        events, updated = diff_runs(memory, runs, now, policy, baseline=baseline, news_since=since)
        if self._explain is not None and events:
            events = await self._explain(events)
        await self._learn_sweeps(entity, project, events)
        messages, answered = self._messages(entity, project, events, now)
        # The next poll asks for what changed since this one began, less the overlap that
        # absorbs clock skew between the bot and W&B; the diff makes repeats harmless. A
        # project W&B did not find keeps its watermark: nothing in between is skipped.
        watermark = now if found or baseline else (state.watermark or now)
        active = any(run.state in ("running", "pending") for run in runs)
        ids = self._store.record_poll(
            entity,
            project,
            now=now,
            watermark=watermark,
            active=active,
            memory={path: mem.to_dict() for path, mem in updated.items()},
            messages=messages,
            used_callbacks=answered,
        )
        for hook in self._hooks if events else ():
            try:
                await hook(entity, project, events)
            except Exception:
                log.exception("event hook failed for %s/%s", entity, project)
        for poll_hook in self._poll_hooks:
            try:
                await poll_hook(entity, project, runs)
            except Exception:
                log.exception("poll hook failed for %s/%s", entity, project)
        return PollOutcome(
            entity,
            project,
            True,
            tuple(events),
            len(ids),
            self._next_delay(active),
            missing=not found,
        )

    async def _learn_sweeps(self, entity: str, project: str, events: Sequence[RunEvent]) -> None:
        """Learn the parameters of sweeps seen for the first time (one request per sweep)."""
        for sweep_id in {e.run.sweep for e in events if e.run.sweep} - set(self._sweep_params):
            assert sweep_id is not None
            try:
                sweep = await self._runs.sweep(entity, project, sweep_id)
            except WandbError as exc:
                log.info(
                    "sweep %s unknown for now (%s); its runs show every parameter", sweep_id, exc
                )
                continue
            params = sweep.config.get("parameters")
            self._sweep_params[sweep_id] = tuple(params) if isinstance(params, Mapping) else ()

    def _messages(
        self, entity: str, project: str, events: Sequence[RunEvent], now: datetime
    ) -> tuple[list[OutboxItem], list[str]]:
        """Return the poll's messages and the stop-request tokens they answer."""
        if not events:
            return [], []
        messages, answered = self._confirmations(events)
        lab = self._lab_without_silenced(now, entity, project)
        notifications = notifications_for(
            events,
            lab,
            ui_url=self._ui_url,
            burst_threshold=self._burst_threshold,
            extra_subscriptions=self._without_silenced(self._extra_subscriptions(), now),
            sweep_params=self._sweep_params,
        )
        migrations = self._store.chats.migrations()
        for note in notifications:
            item = to_outbox(note)
            chat = follow_migrations(item.chat_id, migrations)
            if chat != item.chat_id:
                item = OutboxItem(
                    chat, item.dedupe_key, item.kind, item.text, item.buttons, None, item.run_keys
                )
            messages.append(item)
        return messages, answered

    def _confirmations(self, events: Sequence[RunEvent]) -> tuple[list[OutboxItem], list[str]]:
        """Confirm stops that users asked for, once W&B shows the run has ended.

        The tokens are dropped by `record_poll` with the confirmations, in one transaction.
        """
        if self._confirmation is None:
            return [], []
        waiting = self._store.callbacks.pending("await_stop")
        out = []
        answered = []
        for event in events:
            if event.kind not in ("killed", "finished", "failed", "crashed"):
                continue
            for record in waiting.get(event.run.path, ()):
                if record.chat_id is None:
                    continue
                out.append(
                    OutboxItem(
                        record.chat_id,
                        f"{record.chat_id}:stopped:{event.dedupe_key}",
                        "stop-confirmed",
                        self._confirmation(event),
                        run_keys=(event.dedupe_key,),
                    )
                )
                answered.append(record.token)
        return out, answered

    def _lab_without_silenced(self, now: datetime, entity: str, project: str) -> LabConfig:
        silenced = {
            chat
            for (chat, ent, proj) in self._store.silences.active(now)
            if (ent, proj) == (entity, project)
        }
        if not silenced:
            return self._lab
        # A silence set in a migrated group is kept under its new id.
        migrations = self._store.chats.migrations()
        silenced |= {
            c.id for c in self._lab.chats if follow_migrations(c.id, migrations) in silenced
        }
        chats = tuple(
            chat.model_copy(
                update={
                    "projects": tuple(
                        p for p in chat.projects if self.qualify(p) != (entity, project)
                    )
                }
            )
            if chat.id in silenced
            else chat
            for chat in self._lab.chats
        )
        return self._lab.model_copy(update={"chats": chats})

    def _without_silenced(
        self, extra: Mapping[int, list[str]], now: datetime
    ) -> dict[int, list[str]]:
        silences = self._store.silences.active(now)
        return {
            chat: [p for p in projects if (chat, *self.qualify(p)) not in silences]
            for chat, projects in extra.items()
        }


def describe_outcome(outcome: PollOutcome) -> dict[str, Any]:
    """Return a poll outcome as plain data for logs and tests."""
    return {
        "project": f"{outcome.entity}/{outcome.project}",
        "ok": outcome.ok,
        "events": [e.kind for e in outcome.events],
        "enqueued": outcome.enqueued,
        "next_delay": outcome.next_delay,
    }


class JobQueueLike(Protocol):
    """The part of PTB's JobQueue the scheduler uses."""

    def run_once(
        self, callback: Any, when: float, *, data: Any = ..., name: str | None = ...
    ) -> Any: ...

    def get_jobs_by_name(self, name: str) -> tuple[Any, ...]: ...


class PollScheduler:
    """Keep one poll job per watched project on PTB's job queue, each setting its next time."""

    def __init__(
        self,
        monitor: Monitor,
        job_queue: JobQueueLike,
        *,
        on_enqueued: Callable[[], None],
        stagger: float = 0.5,
    ) -> None:
        self._monitor = monitor
        self._jobs = job_queue
        self._on_enqueued = on_enqueued
        self._stagger = stagger
        self.last_outcome: dict[tuple[str, str], PollOutcome] = {}
        self.next_poll_at: dict[tuple[str, str], datetime] = {}
        # PTB takes a run_once job off its queue while it runs; this says which poll is
        # under way, so nobody schedules a second loop for the same project meanwhile.
        self._polling: set[tuple[str, str]] = set()

    @staticmethod
    def job_name(entity: str, project: str) -> str:
        """Return the job queue name of a project's poll job."""
        return f"poll:{entity}/{project}"

    def start(self) -> None:
        """Schedule every watched project, spread out so they do not poll in one burst."""
        for index, (entity, project) in enumerate(sorted(self._monitor.watched())):
            self.ensure(entity, project, delay=index * self._stagger)

    def ensure(self, entity: str, project: str, delay: float = 0.0) -> bool:
        """Schedule a project's poll unless it has one; return True when newly scheduled."""
        if (entity, project) in self._polling:
            return False
        if self._jobs.get_jobs_by_name(self.job_name(entity, project)):
            return False
        self._schedule(entity, project, delay)
        return True

    def drop(self, entity: str, project: str) -> None:
        """Stop polling a project nobody watches any more, and forget what it knew.

        A later /watch then starts from a new baseline instead of reporting every run that
        ended while nobody watched.
        """
        for job in self._jobs.get_jobs_by_name(self.job_name(entity, project)):
            job.schedule_removal()
        self._monitor.forget(entity, project)

    def _schedule(self, entity: str, project: str, delay: float) -> None:
        self.next_poll_at[(entity, project)] = self._monitor.now() + timedelta(seconds=delay)
        self._jobs.run_once(
            self._job, delay, data=(entity, project), name=self.job_name(entity, project)
        )

    async def _job(self, context: Any) -> None:
        entity, project = key = context.job.data
        self._polling.add(key)
        started = time.monotonic()
        try:
            outcome = await self._monitor.poll(entity, project)
        except Exception:
            log.exception("poll of %s/%s crashed", entity, project)
            outcome = PollOutcome(entity, project, False, (), 0, self._monitor.backoff(1), "crash")
        finally:
            self._polling.discard(key)
        metrics.record_poll(f"{entity}/{project}", outcome.ok, time.monotonic() - started)
        self.last_outcome[key] = outcome
        if outcome.enqueued:
            self._on_enqueued()
        if key in self._monitor.watched() and not self._jobs.get_jobs_by_name(self.job_name(*key)):
            self._schedule(entity, project, outcome.next_delay)
