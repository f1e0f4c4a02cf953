"""The poll: fetch changed runs, diff them, persist events, enqueue messages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.callbacks import to_outbox
from bot.domain.events import RunEvent, RunMemory, StallPolicy, diff_runs
from bot.domain.keys import ProjectKey, RunKey, SweepKey
from bot.domain.params import RecentConfigs
from bot.domain.routing import RoutingData, StopWaiter, route
from bot.store import ProjectState, Store
from config import LabConfig
from wandb_client.batch import ChangedRunsQuery
from wandb_client.errors import WandbError, WandbNotFoundError
from wandb_client.models import RunSnapshot, SweepSnapshot

log = logging.getLogger(__name__)

EventHook = Callable[[str, str, Sequence[RunEvent]], Awaitable[None]]
PollHook = Callable[[str, str, Sequence[RunSnapshot]], Awaitable[None]]
Explainer = Callable[[Sequence[RunEvent]], Awaitable[list[RunEvent]]]
# Sweeps whose runs fold into a live card, each with the chat the card is in.
CardClaims = Callable[[], Mapping[SweepKey, int]]


class RunSource(Protocol):
    """What the monitor needs of the W&B client."""

    async def changed_runs(
        self, entity: str, project: str, since: datetime | None, also: Sequence[str] = ()
    ) -> list[RunSnapshot]: ...

    async def changed_runs_many(
        self, queries: Sequence[ChangedRunsQuery]
    ) -> list[list[RunSnapshot] | WandbError]: ...

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot: ...


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one poll of a project did."""

    key: ProjectKey
    ok: bool
    events: tuple[RunEvent, ...] = ()
    enqueued: int = 0
    active: bool = False
    error: str | None = None
    # W&B answered that the project does not exist (yet): /status shows it as a problem.
    missing: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a poll of one project asks W&B for, decided before the request."""

    key: ProjectKey
    now: datetime
    state: ProjectState
    since: datetime | None
    unfinished: tuple[str, ...]

    @property
    def baseline(self) -> bool:
        return not self.state.baseline_done


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
        overlap: float,
        stall_policy: StallPolicy,
        burst_threshold: int = 3,
    ) -> None:
        self._store = store
        self._runs = runs
        self._lab = lab
        self._clock = clock
        self._ui_url = ui_url
        self._overlap = timedelta(seconds=overlap)
        self._stall_policy = stall_policy
        self._burst_threshold = burst_threshold
        self._hooks: list[EventHook] = []
        self._poll_hooks: list[PollHook] = []
        self._explain: Explainer | None = None
        self._claims: CardClaims | None = None
        # The latest runs' configs per project: a notification leaves out the usual values.
        self._configs = RecentConfigs()
        # Sweep id → its parameter names, looked up once per sweep for notifications.
        self._sweep_params: dict[str, tuple[str, ...]] = {}
        # Lab-file projects, qualified once: the lab file does not change while running.
        self._lab_projects = frozenset(self.qualify(p) for chat in lab.chats for p in chat.projects)
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

    def add_poll_hook(self, hook: PollHook) -> None:
        """Call `hook(entity, project, runs)` after every successful poll with what it listed."""
        self._poll_hooks.append(hook)

    def set_explainer(self, explain: Explainer) -> None:
        """Let `explain(events)` add why failed and crashed runs ended, before rendering."""
        self._explain = explain

    def set_card_claims(self, claims: CardClaims) -> None:
        """Let `claims()` name the sweeps whose finished runs their card tells, not a message."""
        self._claims = claims

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
        projects = set(self._lab_projects)
        for subs in self._store.chats.subscriptions().values():
            projects |= subs
        for sweep in self._store.sweeps.all(active_only=True):
            key = SweepKey.parse(sweep.path)
            projects.add((key.entity, key.project))
        for path in self._store.callbacks.pending("await_stop"):
            run = RunKey.parse(path)
            projects.add((run.entity, run.project))
        return projects

    async def poll(self, entity: str, project: str) -> PollOutcome:
        """Poll one project once and persist what it found."""
        plan = self._plan(ProjectKey(entity, project))
        try:
            runs: list[RunSnapshot] | None = await self._runs.changed_runs(
                entity, project, plan.since, also=plan.unfinished
            )
        except WandbNotFoundError:
            runs = None  # no runs yet: every run it gets later is new
        except WandbError as exc:
            return self.failed(plan, exc)
        return await self.apply(plan, runs)

    async def poll_batch(self, keys: Sequence[ProjectKey]) -> list[PollOutcome]:
        """Poll several projects in one request; return one outcome per project, in order.

        One project keeps the plain listing; several go in one aliased GraphQL request,
        each with its own watermark, run memory, back-off and stall logic.
        """
        if len(keys) == 1:
            return [await self.poll(keys[0].entity, keys[0].project)]
        plans = [self._plan(key) for key in keys]
        queries = [
            ChangedRunsQuery(p.key.entity, p.key.project, p.since, p.unfinished) for p in plans
        ]
        try:
            answers = await self._runs.changed_runs_many(queries)
        except WandbError as exc:
            return [self.failed(plan, exc) for plan in plans]
        outcomes = []
        for plan, answer in zip(plans, answers, strict=True):
            if isinstance(answer, WandbNotFoundError):
                outcomes.append(await self.apply(plan, None))
            elif isinstance(answer, WandbError):
                outcomes.append(self.failed(plan, answer))
            else:
                outcomes.append(await self.apply(plan, answer))
        return outcomes

    def _plan(self, key: ProjectKey) -> _Plan:
        """Decide what to ask W&B for this project's poll."""
        self.polls += 1
        now = self._clock()
        state = self._store.runs.project_state(key.entity, key.project)
        if not state.baseline_done:
            since: datetime | None = now - 2 * self._overlap
        else:
            since = (state.watermark or now) - self._overlap
        # Runs last seen running are asked for by name as well: their end must be seen even
        # if W&B did not move their updatedAt.
        unfinished = self._store.runs.unfinished(key.entity, key.project)
        return _Plan(key, now, state, since, tuple(RunKey.parse(p).run_id for p in unfinished))

    def failed(self, plan: _Plan, exc: WandbError) -> PollOutcome:
        """Record a failed poll of one project."""
        key = plan.key
        failures = self._store.runs.record_failure(key.entity, key.project, plan.now, str(exc))
        log.warning("poll of %s failed (%d in a row): %s", key, failures, exc)
        return PollOutcome(key, ok=False, error=str(exc))

    async def apply(self, plan: _Plan, runs: Sequence[RunSnapshot] | None) -> PollOutcome:
        """Diff what W&B returned (None: it does not know the project) and persist it."""
        key, now = plan.key, plan.now
        found = runs is not None
        runs = list(runs or ())
        stored = self._store.runs.memory(key.entity, key.project, [run.path for run in runs])
        memory = {path: RunMemory.from_dict(data) for path, data in stored.items()}
        policy = self._stall_policy.for_project(self._lab.project(key.project))
        events, updated = diff_runs(
            memory, runs, now, policy, baseline=plan.baseline, news_since=plan.since
        )
        if self._explain is not None and events:
            events = await self._explain(events)
        await self._learn_sweeps(key, events)
        self._configs.add(str(key), {run.path: run.config for run in runs if run.config})
        routed = route(
            events,
            self._lab,
            self._routing_data(now, events),
            ui_url=self._ui_url,
            burst_threshold=self._burst_threshold,
            sweep_params=self._sweep_params,
            usual={str(key): self._configs.usual(str(key))} if events else None,
        )
        # The next poll asks for what changed since this one began, less the overlap that
        # absorbs clock skew between the bot and W&B; the diff makes repeats harmless. A
        # project W&B did not find keeps its watermark: nothing in between is skipped.
        watermark = now if found or plan.baseline else (plan.state.watermark or now)
        active = any(run.state in ("running", "pending") for run in runs)
        ids = self._store.record_poll(
            key.entity,
            key.project,
            now=now,
            watermark=watermark,
            active=active,
            memory={path: mem.to_dict() for path, mem in updated.items()},
            messages=[to_outbox(note) for note in routed.notifications],
            # The stop requests these messages answer go in the same transaction.
            used_callbacks=routed.answered,
            # Runs a sweep card tells count as told: no later poll announces them.
            told=routed.folded,
        )
        await self._call_hooks(key, events, runs)
        return PollOutcome(key, True, tuple(events), len(ids), active, missing=not found)

    def _routing_data(self, now: datetime, events: Sequence[RunEvent]) -> RoutingData:
        """Read what routing needs from the store, only when there is something to route."""
        if not events:
            return RoutingData()
        waiting = self._store.callbacks.pending("await_stop")
        return RoutingData(
            subscriptions={
                chat: [f"{entity}/{project}" for entity, project in subs]
                for chat, subs in self._store.chats.subscriptions().items()
            },
            silenced={(chat, f"{e}/{p}") for (chat, e, p) in self._store.silences.active(now)},
            migrations=self._store.chats.migrations(),
            stop_waiters={
                path: [
                    StopWaiter(r.token, r.chat_id, r.thread_id)
                    for r in records
                    if r.chat_id is not None
                ]
                for path, records in waiting.items()
            },
            mine=self._store.people.subscribers(),
            cards=self._claims() if self._claims is not None else {},
        )

    async def _call_hooks(
        self, key: ProjectKey, events: Sequence[RunEvent], runs: Sequence[RunSnapshot]
    ) -> None:
        for hook in self._hooks if events else ():
            try:
                await hook(key.entity, key.project, events)
            except Exception:
                log.exception("event hook failed for %s", key)
        for poll_hook in self._poll_hooks:
            try:
                await poll_hook(key.entity, key.project, runs)
            except Exception:
                log.exception("poll hook failed for %s", key)

    async def _learn_sweeps(self, key: ProjectKey, events: Sequence[RunEvent]) -> None:
        """Learn the parameters of sweeps seen for the first time (one request per sweep)."""
        for sweep_id in {e.run.sweep for e in events if e.run.sweep} - set(self._sweep_params):
            assert sweep_id is not None
            try:
                sweep = await self._runs.sweep(key.entity, key.project, sweep_id)
            except WandbError as exc:
                log.info(
                    "sweep %s unknown for now (%s); its runs show every parameter", sweep_id, exc
                )
                continue
            params = sweep.config.get("parameters")
            self._sweep_params[sweep_id] = tuple(params) if isinstance(params, Mapping) else ()
