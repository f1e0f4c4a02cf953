"""Start, resolve and control sweeps from the chat; agents, breaker and card do the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.delivery import Delivery
from bot.domain.commands import SweepRef, SweepStart
from bot.domain.control import AgentView, SweepView
from bot.domain.events import RunEvent
from bot.domain.sweeps import join_target
from bot.polling import PollScheduler
from bot.store import Store, SweepRecord
from bot.sweeps.agents import LOCAL, AgentWatch
from bot.sweeps.breaker import CrashLoopBreaker
from bot.sweeps.card import CardBot, SweepCards
from bot.sweeps.common import (
    SweepError,
    SweepSource,
    Tasks,
    explain_refusal,
    read_progress,
    split_path,
)
from bot.sweeps.control import AgentControl
from bot.sweeps.derived import DerivedSweep, DerivedSweeps
from bot.sweeps.launchers import LauncherRegistry
from bot.sweeps.report import SweepReporter
from bot.sweeps.setup import new_record, read_sweep_config
from bot.sweeps.status import resolve_ref, sweep_views
from bot.topics import Topics
from config import LabConfig, Settings
from config.lab import SweepDef
from wandb_client.errors import WandbError
from wandb_client.sweep_control import SweepAction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StartedSweep:
    """What `/sweep start` did: the sweep on W&B and the agents started for it."""

    path: str
    name: str
    count: int
    agents: tuple[AgentView, ...]
    reused: bool


@dataclass(frozen=True, slots=True)
class SweepChange:
    """What `/sweep stop|cancel|pause|resume` did."""

    path: str
    action: SweepAction
    agents_stopped: int = 0
    agents_started: int = 0
    runs_left: int = 0


class SweepService:
    """Own the sweeps started from chats; agents, breaker and card are its parts."""

    def __init__(
        self,
        *,
        settings: Settings,
        lab: LabConfig,
        store: Store,
        wandb: SweepSource,
        launchers: LauncherRegistry,
        polls: PollScheduler,
        delivery: Delivery,
        bot: CardBot,
        clock: Callable[[], datetime],
        topics: Topics | None = None,
    ) -> None:
        """Build the parts; nothing runs until `resume` or `start`."""
        self._settings = settings
        self._lab = lab
        self._store = store
        self._wandb = wandb
        self._polls = polls
        self._clock = clock
        self._tasks = Tasks()
        self.agents = AgentWatch(
            store=store,
            wandb=wandb,
            launchers=launchers,
            delivery=delivery,
            clock=clock,
            tasks=self._tasks,
            on_change=self.request_refresh,
            stop_timeout_s=settings.agent_stop_timeout,
            on_finished=self._ended,
        )
        self.reporter = SweepReporter(
            store=store,
            wandb=wandb,
            delivery=delivery,
            clock=clock,
            log_tails=self.agents.log_tails,
        )
        self.cards = SweepCards(
            store=store,
            wandb=wandb,
            bot=bot,
            clock=clock,
            tasks=self._tasks,
            interval_s=settings.card_edit_interval,
            agents=self.agents,
            topics=topics,
        )
        # Rerun and Narrow: the configs of new sweeps built on results.
        self.derived = DerivedSweeps(store, wandb, lab)
        self.control = AgentControl(
            settings=settings, lab=lab, store=store, wandb=wandb, agents=self.agents, clock=clock
        )
        self.breaker = CrashLoopBreaker(
            policy=lab.crash_loop,
            store=store,
            wandb=wandb,
            agents=self.agents,
            delivery=delivery,
            clock=clock,
            tasks=self._tasks,
        )

    # -- starting ------------------------------------------------------------------------

    async def start(
        self,
        request: SweepStart,
        *,
        chat_id: int,
        user_id: int | None,
        thread_id: int | None = None,
    ) -> StartedSweep:
        """Create (or join) the sweep on W&B and start its agents in the sweep's workdir."""
        definition = self._lab.sweeps[request.name]
        if request.gpus and definition.launcher != LOCAL:
            raise SweepError(
                f'Sweep "{request.name}" runs on {definition.launcher}, which assigns GPUs itself:'
                f" drop gpus= and set {definition.launcher}.gpus_per_agent in the lab file."
            )
        count, target, capped = request.count, request.count, True
        if request.sweep_id is not None:
            sweep_id = request.sweep_id
            path = f"{request.entity}/{request.project}/{sweep_id}"
            count, target, capped = await self._join(path, request)
        else:
            config = await read_sweep_config(request.name, definition.file)
            config["run_cap"] = request.count
            sweep_id = await self._wandb.create_sweep(config, request.entity, request.project)
            path = f"{request.entity}/{request.project}/{sweep_id}"
        record = new_record(
            path, request, target, chat_id, user_id, definition.launcher, self._clock(), thread_id
        )
        views = await self._begin(record, definition, request, count, capped=capped)
        # The card follows the reply: the handler asks for it (`request_refresh`).
        reused = request.sweep_id is not None
        return StartedSweep(path, request.name, count, tuple(views), reused)

    async def _begin(
        self,
        record: SweepRecord,
        definition: SweepDef,
        request: SweepStart,
        count: int,
        *,
        capped: bool,
    ) -> list[AgentView]:
        """Record a sweep created or joined from a chat, poll its project, start its agents."""
        self._store.sweeps.add(record)
        # The sweep's runs must be polled even when no chat watches its project.
        self._polls.ensure(request.entity, request.project)
        return await self._launch(
            definition,
            record.path,
            count=count,
            agents=request.agents,
            gpus=request.gpus,
            capped=capped,
        )

    async def _join(self, path: str, request: SweepStart) -> tuple[int, int, bool]:
        """Check a W&B sweep can take `count` more runs; return (runs to add, card total,
        whether W&B's run cap ends it at that total)."""
        # Started again after a stop: its agents' ends are reported, its breaker armed.
        self.agents.rearm(path)
        # Raises WandbNotFoundError when W&B does not know the id.
        snapshot, progress = await read_progress(self._wandb, path)
        sweep_id = split_path(path)[2]
        if snapshot.state.upper() == "CANCELED":
            raise SweepError(f"Sweep {sweep_id} was cancelled; start a new one instead.")
        target = join_target(done=progress.done, count=request.count, run_cap=snapshot.run_cap)
        if target <= progress.done:
            raise SweepError(
                f"Sweep {sweep_id} already ran all {progress.done} runs its run cap allows;"
                f" start a new one with /sweep start {request.name}."
            )
        if snapshot.state.upper() != "RUNNING":
            # A stopped or paused sweep gives its agents no runs: joining it means going on.
            await self._wandb.set_sweep_state(*split_path(path), "resume")
        return target - progress.done, target, snapshot.run_cap == target

    async def _launch(
        self,
        definition: SweepDef,
        path: str,
        *,
        count: int,
        agents: int,
        gpus: tuple[int, ...],
        capped: bool,
    ) -> list[AgentView]:
        """Start a sweep's first agents (`AgentControl.launch`); none started ends it."""
        try:
            return await self.control.launch(
                definition, path, count=count, agents=agents, gpus=gpus, capped=capped
            )
        except SweepError:
            self._store.sweeps.update(path, finished_at=self._clock())
            raise

    async def start_derived(
        self,
        plan: DerivedSweep,
        *,
        chat_id: int,
        user_id: int | None,
        thread_id: int | None = None,
    ) -> StartedSweep:
        """Create a derived sweep on W&B and run it through its lab entry's launcher."""
        definition = self._lab.sweeps[plan.entry]
        sweep_id = await self._wandb.create_sweep(plan.config, plan.entity, plan.project)
        path = f"{plan.entity}/{plan.project}/{sweep_id}"
        request = SweepStart(
            plan.entry, plan.count, plan.agents, plan.gpus, plan.project, plan.entity
        )
        record = new_record(
            path,
            request,
            plan.count,
            chat_id,
            user_id,
            definition.launcher,
            self._clock(),
            thread_id,
        )
        views = await self._begin(record, definition, request, plan.count, capped=True)
        return StartedSweep(path, plan.entry, plan.count, tuple(views), False)

    # -- resolving ---------------------------------------------------------------------

    def resolve(self, ref: SweepRef) -> str:
        """Return the `entity/project/id` path a sweep reference points at."""
        return resolve_ref(self._store.sweeps.all(), self._lab, ref)

    # -- stopping, pausing -------------------------------------------------------------

    async def apply(self, ref: SweepRef, action: SweepAction) -> SweepChange:
        """Stop or cancel a sweep (its agents first), or pause or resume it on W&B."""
        if action in ("stop", "cancel"):
            return await self.stop(ref, cancel=action == "cancel")
        return await self.set_state(ref, action)

    async def stop(self, ref: SweepRef, *, cancel: bool) -> SweepChange:
        """Stop a sweep's agents (SIGINT, SIGTERM, SIGKILL), then set it FINISHED/CANCELED."""
        path = self.resolve(ref)
        stopped = await self.agents.stop_all(path)
        entity, project, sweep_id = split_path(path)
        action: SweepAction = "cancel" if cancel else "stop"
        await self._wandb.set_sweep_state(entity, project, sweep_id, action)
        sweep = self._store.sweeps.get(path)
        if sweep is not None:
            self._store.sweeps.update(path, finished_at=self._clock())
            self.request_refresh(path)
            if sweep.finished_at is None:
                self._ended(path)
        return SweepChange(path, action, stopped)

    def _ended(self, path: str) -> None:
        """A sweep's agents are all gone: its end message goes out once its runs are final."""
        self._tasks.spawn(self.reporter.report(path), f"sweep-end-{path}")

    async def set_state(self, ref: SweepRef, action: SweepAction) -> SweepChange:
        """Pause or resume a sweep on W&B; resuming one with no agent left starts agents."""
        path = self.resolve(ref)
        record = self._store.sweeps.get(path)
        if action == "resume" and record is not None and not self.agents.live(path):
            return await self._restart(record)
        try:
            await self._wandb.set_sweep_state(*split_path(path), action)
        except WandbError:
            await explain_refusal(self._wandb, path, action)
            raise
        if record is not None:
            self.request_refresh(path)
        return SweepChange(path, action)

    async def _restart(self, record: SweepRecord) -> SweepChange:
        """Resume a sweep nothing runs any more: W&B back to RUNNING, agents for runs left."""
        started, left = await self.control.restart(record)
        self.request_refresh(record.path)
        return SweepChange(record.path, "resume", agents_started=started, runs_left=left)

    def live_agents(self, path: str) -> int:
        """Return how many agents of a sweep are still running."""
        return self.agents.live(path)

    # -- status --------------------------------------------------------------------------

    async def status(self, ref: SweepRef | None) -> list[SweepView]:
        """Return the sweeps to show: one (any age) or every active one, with progress."""
        path = self.resolve(ref) if ref is not None else None
        return await sweep_views(path, self._store, self._wandb, self.agents)

    # -- life cycle, events, cards -------------------------------------------------------

    async def resume(self) -> None:
        """After a (re)start: adopt agents still alive, report those that died meanwhile."""
        await self.agents.adopt_all()
        for sweep in self._store.sweeps.all(active_only=True):
            entity, project, _ = split_path(sweep.path)
            self._polls.ensure(entity, project)
            self.agents.finish_if_done(sweep.path)
            self.request_refresh(sweep.path)

    async def close(self) -> None:
        """Stop watching and refreshing; the agents themselves keep running."""
        await self._tasks.close()
        self.agents.forget_watchers()
        self.cards.forget()

    async def on_events(self, entity: str, project: str, events: Sequence[RunEvent]) -> None:
        """Refresh the cards of sweeps whose runs changed; trip the breaker on crash loops."""
        touched: set[str] = set()
        for event in events:
            if not event.run.sweep:
                continue
            path = f"{entity}/{project}/{event.run.sweep}"
            sweep = self._store.sweeps.get(path)
            if sweep is None:
                continue
            touched.add(path)
            if event.kind in ("failed", "crashed"):
                self.breaker.count(sweep, event)
        for path in touched:
            self.request_refresh(path)

    def request_refresh(self, path: str) -> None:
        """Bring a sweep's card up to date soon, at most once per `card_edit_interval`."""
        self.cards.request_refresh(path)

    async def refresh_job(self, _context: object = None) -> None:
        """Periodic job: refresh every active sweep's card (catches what no event showed)."""
        self.cards.refresh_started()
