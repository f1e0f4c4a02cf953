"""Digests: one cron job per chat that builds what happened since the last one and queues it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.domain.best import normalize_goal
from bot.domain.digest import ENDED_STATES, Digest, build_digest, render_digest
from bot.domain.events import RunMemory
from bot.domain.format import STATE_MARKERS, esc, truncate
from bot.domain.keys import ProjectKey, SweepKey
from bot.domain.notify import subscribed_projects
from bot.domain.topics import digest_thread
from bot.store import OutboxItem, Store
from config import LabConfig
from config.lab import DigestConfig
from wandb_client.client import WandbClient
from wandb_client.error_mapping import in_words
from wandb_client.errors import WandbError, WandbNotFoundError
from wandb_client.models import TERMINAL_STATES, RunSnapshot, SweepSnapshot

log = logging.getLogger(__name__)

# A chat's first digest looks back this far; later ones start where the last one ended.
FIRST_WINDOW = timedelta(days=1)
BEST_FETCH = 10


class CustomJobQueue(Protocol):
    """The part of PTB's JobQueue the digests use."""

    def run_custom(
        self, callback: Any, job_kwargs: dict[str, Any], *, data: Any = ..., name: str | None = ...
    ) -> Any: ...

    def get_jobs_by_name(self, name: str) -> tuple[Any, ...]: ...


def cron_trigger(digest: DigestConfig) -> CronTrigger:
    """Return the APScheduler trigger of a chat's digest, in the chat's time zone."""
    return CronTrigger.from_crontab(digest.cron, timezone=ZoneInfo(digest.timezone))


class DigestService:
    """Build, queue and schedule each chat's digest."""

    def __init__(
        self,
        store: Store,
        wandb: WandbClient,
        lab: LabConfig,
        clock: Callable[[], datetime],
        *,
        ui_url: str,
        on_enqueued: Callable[[], None],
        trigger: Callable[[DigestConfig], Any] = cron_trigger,
    ) -> None:
        self._store = store
        self._wandb = wandb
        self._lab = lab
        self._clock = clock
        self._ui_url = ui_url
        self._on_enqueued = on_enqueued
        self._trigger = trigger

    @staticmethod
    def job_name(chat_id: int) -> str:
        """Return the job queue name of a chat's digest job."""
        return f"digest:{chat_id}"

    def schedule(self, job_queue: CustomJobQueue) -> list[Any]:
        """Add one cron job per chat whose lab entry has a digest; return the jobs."""
        jobs = []
        for chat in self._lab.chats:
            if chat.digest is None or job_queue.get_jobs_by_name(self.job_name(chat.id)):
                continue
            jobs.append(
                job_queue.run_custom(
                    self._job,
                    job_kwargs={"trigger": self._trigger(self._zoned(chat.id, chat.digest))},
                    data=chat.id,
                    name=self.job_name(chat.id),
                )
            )
        return jobs

    def _zoned(self, chat_id: int, digest: DigestConfig) -> DigestConfig:
        """Return the digest schedule in the chat's time zone when it names none itself."""
        if "timezone" in digest.model_fields_set:
            return digest
        return digest.model_copy(update={"timezone": self._lab.chat_zone(chat_id)})

    async def _job(self, context: Any) -> None:
        chat_id = int(context.job.data)
        try:
            await self.send(chat_id, record=True)
        except WandbError as exc:
            # The window stays open: the next digest covers this one's period too.
            log.warning("digest of chat %s skipped: %s", chat_id, exc)

    # -- building -----------------------------------------------------------------------------

    def _projects(self, chat_id: int) -> list[tuple[str, str]]:
        extra = [f"{e}/{p}" for e, p in self._store.chats.subscriptions().get(chat_id, set())]
        paths = sorted(subscribed_projects(self._lab, chat_id, extra))
        keys = [ProjectKey.parse(p) for p in paths]
        return [(k.entity, k.project) for k in keys]

    async def _project_runs(self, entity: str, project: str, since: datetime) -> list[RunSnapshot]:
        """Return the runs changed since `since`, the running ones, and the best so far."""
        runs = await self._wandb.changed_runs(entity, project, since)
        settings = self._lab.project(project)
        if settings.metric:
            goal = normalize_goal(settings.goal)
            best = await self._wandb.best_runs(
                entity,
                project,
                settings.metric,
                "minimize" if goal == "minimize" else "maximize",
                limit=BEST_FETCH,
            )
            runs = _merge(runs, best)
        return runs

    async def _sweeps(
        self, entity: str, project: str, runs: Sequence[RunSnapshot]
    ) -> tuple[list[tuple[SweepSnapshot, int]], list[RunSnapshot]]:
        """Return the project's active sweeps with their done counts, and all their runs."""
        ids = {r.sweep for r in runs if r.sweep}
        for record in self._store.sweeps.all(active_only=True):
            key = SweepKey.parse(record.path)
            if (key.entity, key.project) == (entity, project):
                ids.add(key.sweep_id)
        found: list[tuple[SweepSnapshot, int]] = []
        sweep_runs: list[RunSnapshot] = []
        for sweep_id in sorted(ids):
            try:
                sweep = await self._wandb.sweep(entity, project, sweep_id)
            except WandbNotFoundError:
                continue
            if sweep.state.upper() not in ("RUNNING", "PENDING", "PAUSED"):
                continue
            members = await self._wandb.sweep_runs(entity, project, sweep_id)
            found.append((sweep, sum(r.state in ENDED_STATES for r in members)))
            sweep_runs.extend(members)
        return found, sweep_runs

    async def build(self, chat_id: int, now: datetime) -> Digest:
        """Build a chat's digest for the period since its last one."""
        last, previous_best = self._store.digests.state(chat_id)
        since = last or now - FIRST_WINDOW
        projects: dict[str, list[RunSnapshot]] = {}
        sweeps: list[tuple[SweepSnapshot, int]] = []
        unreadable: dict[str, str] = {}
        ended: dict[str, datetime | None] = {}
        failures: list[WandbError] = []
        paths = self._projects(chat_id)
        for entity, project in paths:
            try:
                runs = await self._project_runs(entity, project, since)
                found, members = await self._sweeps(entity, project, runs)
            except WandbError as exc:
                # One project W&B cannot answer for is one line, not a lost digest.
                log.info("digest of chat %s: %s/%s unreadable: %s", chat_id, entity, project, exc)
                unreadable[project] = in_words(exc)
                if not isinstance(exc, WandbNotFoundError):
                    failures.append(exc)
                continue
            projects[project] = _merge(runs, members)
            ended.update(self._ended(entity, project, projects[project]))
            sweeps += found
        if paths and len(failures) == len(paths):
            # W&B itself is down: no digest rather than one saying only that.
            raise failures[-1]
        chat = self._lab.chat(chat_id)
        return build_digest(
            chat_title=chat.title if chat else "this chat",
            projects=projects,
            sweeps=sweeps,
            previous_best=previous_best,
            lab=self._lab,
            since=since,
            now=now,
            ui_url=self._ui_url,
            unreadable=unreadable,
            ended=ended,
        )

    def _ended(
        self, entity: str, project: str, runs: Sequence[RunSnapshot]
    ) -> dict[str, datetime | None]:
        """Return when the monitor saw each run end; None for runs it last saw live."""
        memory = self._store.runs.memory(entity, project, [r.path for r in runs])
        out: dict[str, datetime | None] = {}
        for path, data in memory.items():
            mem = RunMemory.from_dict(data)
            if mem.ended_at is not None or mem.state not in TERMINAL_STATES:
                out[path] = mem.ended_at
        return out

    def timezone(self, chat_id: int) -> ZoneInfo:
        """Return the chat's time zone: its own, its digest's, the lab's, else UTC."""
        return ZoneInfo(self._lab.chat_zone(chat_id))

    async def send(self, chat_id: int, *, record: bool, thread_id: int | None = None) -> Digest:
        """Build a chat's digest, queue its message and chart, and (scheduled) close the window.

        A `/digest` on demand (`record=False`) is a look, not a digest of its own: it does not
        move the start of the next scheduled one, and goes to the topic it was asked in
        (`thread_id`); a scheduled one goes to the lab file's digest topic, else General.
        """
        thread = thread_id if not record else digest_thread(self._lab, chat_id)
        now = self._clock()
        digest = await self.build(chat_id, now)
        text = render_digest(digest, self.timezone(chat_id))
        window = f"{digest.since:%Y%m%dT%H%M%S}-{now:%Y%m%dT%H%M%S}"
        # An on-demand look is its own message even when asked twice within a second.
        key = f"digest:{chat_id}:{window}" + ("" if record else f":now{now:%f}")
        # A digest asked for is an answer: quiet hours do not hold it, as they do a scheduled one.
        kind = "digest" if record else "digest-asked"
        items = [OutboxItem(chat_id, key, kind, text, thread_id=thread)]
        if not digest.empty:
            png = await asyncio.to_thread(draw_digest, digest)
            caption = f"{STATE_MARKERS['digest']} {esc(truncate(digest.chat_title, 60))}: runs per project"
            items.append(
                OutboxItem(chat_id, f"{key}:chart", kind, caption, photo=png, thread_id=thread)
            )
        self._store.outbox.enqueue(items, now)
        if record:
            self._store.digests.record(chat_id, now, digest.best_values())
        self._on_enqueued()
        return digest


def draw_digest(digest: Digest) -> bytes:
    """Draw a digest's chart, importing matplotlib (~30 MB) only when a chart is drawn."""
    from bot.charts import digest_png

    return digest_png(digest)


def _merge(first: Sequence[RunSnapshot], more: Sequence[RunSnapshot]) -> list[RunSnapshot]:
    """Return `first` plus the runs of `more` it does not already hold (by path)."""
    seen = {r.path for r in first}
    return [*first, *(r for r in more if r.path not in seen)]
