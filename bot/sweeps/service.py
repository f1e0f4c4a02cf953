"""Start, resolve and control sweeps from the chat; agents, breaker and card do the rest."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from bot.delivery import Delivery
from bot.domain.commands import SweepRef, SweepStart
from bot.domain.control import AgentView, SweepProgress, SweepView
from bot.domain.events import RunEvent
from bot.domain.sweeps import parse_sweep_yaml
from bot.monitor import PollScheduler
from bot.store import Store, SweepRecord
from bot.sweeps.agents import LOCAL, AgentWatch, agent_view, summarise
from bot.sweeps.breaker import CrashLoopBreaker
from bot.sweeps.card import CardBot, SweepCards
from bot.sweeps.common import SweepError, SweepSource, Tasks, gpus_text, read_progress, split_path
from bot.sweeps.launchers import LauncherRegistry
from config import LabConfig, Settings
from config.lab import SweepDef
from wandb_client.errors import AgentError, WandbError
from wandb_client.launcher import LaunchRequest
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


def launcher_options(definition: SweepDef) -> dict[str, object]:
    """Return the lab file's block named like the sweep's launcher (e.g. `slurm:`), as data."""
    block = getattr(definition, definition.launcher, None)
    return block.model_dump() if isinstance(block, BaseModel) else {}


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
        )
        self.cards = SweepCards(
            store=store,
            wandb=wandb,
            bot=bot,
            clock=clock,
            tasks=self._tasks,
            interval_s=settings.card_edit_interval,
            live_agents=self.agents.live,
            describe_agents=self.agents.describe,
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
        self, request: SweepStart, *, chat_id: int, user_id: int | None
    ) -> StartedSweep:
        """Create (or reuse) the sweep on W&B and start its agents in the sweep's workdir."""
        definition = self._lab.sweeps[request.name]
        if request.gpus and definition.launcher != LOCAL:
            raise SweepError(
                f'Sweep "{request.name}" runs on {definition.launcher}, which assigns GPUs itself:'
                f" drop gpus= and set {definition.launcher}.gpus_per_agent in the lab file."
            )
        reused = request.sweep_id is not None
        if request.sweep_id is not None:
            # Started again after a stop: its agents' ends are reported, its breaker armed.
            self.agents.rearm(f"{request.entity}/{request.project}/{request.sweep_id}")
            # Raises WandbNotFoundError when W&B does not know the id.
            await self._wandb.sweep(request.entity, request.project, request.sweep_id)
            sweep_id = request.sweep_id
        else:
            config = await self._sweep_config(request.name, definition.file)
            config["run_cap"] = request.count
            sweep_id = await self._wandb.create_sweep(config, request.entity, request.project)
        path = f"{request.entity}/{request.project}/{sweep_id}"
        self._store.sweeps.add(self._record(path, request, chat_id, user_id, definition.launcher))
        # The sweep's runs must be polled even when no chat watches its project.
        self._polls.ensure(request.entity, request.project)
        launch = LaunchRequest(
            sweep_path=path,
            count=request.count,
            agents=request.agents,
            gpus=tuple(request.gpus),
            workdir=definition.workdir or definition.file.parent,
            env=self._agent_env(definition.env),
            log_dir=definition.log_dir or self._settings.agent_log_dir,
            options=launcher_options(definition),
        )
        try:
            views = await self.agents.launch(definition.launcher, launch)
        except (AgentError, OSError) as exc:
            self._store.sweeps.update(path, finished_at=self._clock())
            raise SweepError(f"Could not start the sweep's agents: {exc}") from exc
        # The card follows the reply: the handler asks for it (`request_refresh`).
        return StartedSweep(path, request.name, request.count, tuple(views), reused)

    def _record(
        self, path: str, request: SweepStart, chat_id: int, user_id: int | None, launcher: str
    ) -> SweepRecord:
        return SweepRecord(
            path=path,
            name=request.name,
            chat_id=chat_id,
            count=request.count,
            agents=request.agents,
            gpus=gpus_text(request.gpus),
            started_by=user_id,
            started_at=self._clock(),
            card_message_id=None,
            card_text=None,
            finished_at=None,
            failures=(),
            breaker_tripped=False,
            launcher=launcher,
        )

    async def _sweep_config(self, name: str, file: Path) -> dict[str, Any]:
        try:
            text = await asyncio.to_thread(file.read_text, encoding="utf-8")
        except OSError as exc:
            raise SweepError(f'The file of sweep "{name}" cannot be read: {exc.strerror}.') from exc
        config, problems = parse_sweep_yaml(text, yaml.safe_load)
        if problems:
            raise SweepError(f'The file of sweep "{name}" is wrong: {problems[0]}.')
        return config

    def _agent_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = self._wandb.subprocess_env(extra)
        if "PATH" not in extra:
            # `wandb agent` runs `python <program>`: the bot's own environment's Python.
            bin_dir = str(Path(sys.executable).parent)
            env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
        return env

    # -- resolving ---------------------------------------------------------------------

    def resolve(self, ref: SweepRef) -> str:
        """Return the `entity/project/id` path a sweep reference points at."""
        records = self._store.sweeps.all()
        if ref.name is not None:
            named = [r for r in records if r.name == ref.name]
            active = [r for r in named if r.finished_at is None]
            pick = (active or named)[:1]
            if not pick:
                raise SweepError(f'Sweep "{ref.name}" was not started from the chat yet.')
            return pick[0].path
        for record in records:
            entity, project, sweep_id = split_path(record.path)
            same = sweep_id == ref.sweep_id and ref.project in (None, project)
            if same and ref.entity in (None, entity):
                return record.path
        if ref.path is not None:
            return ref.path
        if ref.project is not None and ref.sweep_id is not None:
            entity = self._lab.project(ref.project).entity or self._lab.entity
            return f"{entity}/{ref.project}/{ref.sweep_id}"
        raise SweepError(
            f'I did not start sweep "{ref.sweep_id}"; name it as entity/project/{ref.sweep_id}.'
        )

    # -- stopping, pausing -------------------------------------------------------------

    async def apply(self, ref: SweepRef, action: SweepAction) -> SweepChange:
        """Stop or cancel a sweep (its agents first), or pause or resume it on W&B."""
        if action in ("stop", "cancel"):
            return await self.stop(ref, cancel=action == "cancel")
        return SweepChange(await self.set_state(ref, action), action)

    async def stop(self, ref: SweepRef, *, cancel: bool) -> SweepChange:
        """Stop a sweep's agents (SIGINT, SIGTERM, SIGKILL), then set it FINISHED/CANCELED."""
        path = self.resolve(ref)
        stopped = await self.agents.stop_all(path)
        entity, project, sweep_id = split_path(path)
        action: SweepAction = "cancel" if cancel else "stop"
        await self._wandb.set_sweep_state(entity, project, sweep_id, action)
        if self._store.sweeps.get(path) is not None:
            self._store.sweeps.update(path, finished_at=self._clock())
            self.request_refresh(path)
        return SweepChange(path, action, stopped)

    async def set_state(self, ref: SweepRef, action: SweepAction) -> str:
        """Pause or resume a sweep on W&B; its agents keep running and wait."""
        path = self.resolve(ref)
        entity, project, sweep_id = split_path(path)
        await self._wandb.set_sweep_state(entity, project, sweep_id, action)
        if self._store.sweeps.get(path) is not None:
            self.request_refresh(path)
        return path

    def live_agents(self, path: str) -> int:
        """Return how many agents of a sweep are still running."""
        return self.agents.live(path)

    # -- status --------------------------------------------------------------------------

    async def status(self, ref: SweepRef | None) -> list[SweepView]:
        """Return the sweeps to show: one (any age) or every active one, with progress."""
        if ref is not None:
            path = self.resolve(ref)
            records = [r for r in self._store.sweeps.all() if r.path == path]
            if not records:
                raise SweepError("I did not start that sweep, so I have no agents to show.")
        else:
            records = self._store.sweeps.all(active_only=True)
        views = await asyncio.gather(*(self._view(r) for r in records))
        return list(views)

    async def _view(self, record: SweepRecord) -> SweepView:
        records = self._store.agents.all(sweep_path=record.path)
        agents_text: str | None = None
        if any(r.launcher != LOCAL for r in records):
            places = await self.agents.places(records)
            agents = tuple(agent_view(r, p) for r, p in zip(records, places, strict=True))
            agents_text = summarise(records, places)[0]
        else:
            agents = tuple(agent_view(r) for r in records)
        state: str | None = None
        progress: SweepProgress | None = None
        try:
            snapshot, progress = await read_progress(self._wandb, record.path)
            state = snapshot.state
        except WandbError as exc:
            log.warning("status of %s: %s", record.path, exc)
        return SweepView(
            path=record.path,
            name=record.name,
            count=record.count,
            started_at=record.started_at,
            finished_at=record.finished_at,
            agents=agents,
            state=state,
            progress=progress,
            agents_text=agents_text,
        )

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
