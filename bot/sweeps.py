"""Drive sweeps from the chat: start agents, keep a live card, stop, adopt after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.delivery import Delivery, keyboard
from bot.domain.commands import SweepRef, SweepStart
from bot.domain.control import (
    AgentView,
    SweepProgress,
    SweepView,
    button_specs,
    last_error,
    render_agent_end,
    render_crash_loop,
    summarise_runs,
)
from bot.domain.events import RunEvent
from bot.domain.render import Buttons, render_sweep_card
from bot.domain.sweeps import crash_loop, parse_sweep_yaml
from bot.monitor import PollScheduler
from bot.store import AgentRecord, OutboxItem, Store, SweepRecord
from config import LabConfig, Settings
from wandb_client.agents import AgentProcess, AgentSupervisor, tail_log
from wandb_client.client import WandbClient
from wandb_client.errors import AgentError, WandbError
from wandb_client.models import RunSnapshot, SweepSnapshot
from wandb_client.sweep_control import SweepAction

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
MAX_REMEMBERED_FAILURES = 20


class SweepError(Exception):
    """A sweep cannot be started or found; the message is one line for the chat."""


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


def _split(path: str) -> tuple[str, str, str]:
    entity, project, sweep_id = path.split("/", 2)
    return entity, project, sweep_id


def _gpus_text(gpus: Sequence[int]) -> str:
    return ",".join(str(g) for g in gpus)


def _agent_view(record: AgentRecord, alive: bool) -> AgentView:
    return AgentView(
        index=record.idx,
        pid=record.pid,
        started_at=record.started_at,
        alive=alive,
        gpus=record.gpus,
        exit_code=record.exit_code,
    )


def _process_of(record: AgentRecord) -> AgentProcess:
    return AgentProcess(
        pid=record.pid,
        pgid=record.pgid,
        sweep_path=record.sweep_path,
        index=record.idx,
        log_path=Path(record.log_path),
        started_at=record.started_at,
        cmdline=record.cmdline,
        gpus=tuple(int(g) for g in record.gpus.split(",") if g),
    )


class SweepService:
    """Own the sweeps started from chats: their agents, live cards, stops and breaker."""

    def __init__(
        self,
        *,
        settings: Settings,
        lab: LabConfig,
        store: Store,
        wandb: WandbClient,
        supervisor: AgentSupervisor,
        polls: PollScheduler,
        delivery: Delivery,
        bot: Bot,
        clock: Callable[[], datetime],
    ) -> None:
        """Keep the collaborators; nothing runs until `resume` or `start`."""
        self._settings = settings
        self._lab = lab
        self._store = store
        self._wandb = wandb
        self._supervisor = supervisor
        self._polls = polls
        self._delivery = delivery
        self._bot = bot
        self._clock = clock
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._last_edit: dict[str, float] = {}
        self._markups: dict[tuple[str, tuple[tuple[str, str], ...]], InlineKeyboardMarkup] = {}
        self._card_locks: dict[str, asyncio.Lock] = {}
        self._signatures: dict[str, str] = {}
        self._stopping: set[str] = set()
        self._failed_runs: dict[str, deque[RunSnapshot]] = {}

    # -- starting ------------------------------------------------------------------------

    async def start(
        self, request: SweepStart, *, chat_id: int, user_id: int | None
    ) -> StartedSweep:
        """Create (or reuse) the sweep on W&B and start its agents in the sweep's workdir."""
        definition = self._lab.sweeps[request.name]
        reused = request.sweep_id is not None
        if request.sweep_id is not None:
            # Started again after a stop: its agents' ends are reported, its breaker armed.
            self._stopping.discard(f"{request.entity}/{request.project}/{request.sweep_id}")
        if request.sweep_id is not None:
            # Raises WandbNotFoundError when W&B does not know the id.
            await self._wandb.sweep(request.entity, request.project, request.sweep_id)
            sweep_id = request.sweep_id
        else:
            config = await self._sweep_config(request.name, definition.file)
            config["run_cap"] = request.count
            sweep_id = await self._wandb.create_sweep(config, request.entity, request.project)
        path = f"{request.entity}/{request.project}/{sweep_id}"
        now = self._clock()
        self._store.sweeps.add(
            SweepRecord(
                path=path,
                name=request.name,
                chat_id=chat_id,
                count=request.count,
                agents=request.agents,
                gpus=_gpus_text(request.gpus),
                started_by=user_id,
                started_at=now,
                card_message_id=None,
                card_text=None,
                finished_at=None,
                failures=(),
                breaker_tripped=False,
            )
        )
        # The sweep's runs must be polled even when no chat watches its project.
        self._polls.ensure(request.entity, request.project)
        views: list[AgentView] = []

        def started(process: AgentProcess) -> None:
            # Stored the moment it runs: a bot killed mid-stagger still adopts it later.
            record_id = self._store.agents.add(
                sweep_path=path,
                idx=process.index,
                pid=process.pid,
                pgid=process.pgid,
                cmdline=process.cmdline,
                log_path=str(process.log_path),
                gpus=_gpus_text(process.gpus),
                started_at=process.started_at,
            )
            self._watch(record_id, process)
            gpus = _gpus_text(process.gpus)
            views.append(AgentView(process.index, process.pid, process.started_at, True, gpus))

        try:
            await self._supervisor.start(
                path,
                count=request.count,
                agents=request.agents,
                gpus=request.gpus,
                workdir=definition.workdir or definition.file.parent,
                env=self._agent_env(definition.env),
                log_dir=self._settings.agent_log_dir,
                on_started=started,
            )
        except (AgentError, OSError) as exc:
            log.error("agents for %s did not start: %s", path, exc)
            if not views:
                self._store.sweeps.update(path, finished_at=self._clock())
                raise SweepError(f"Could not start the sweep's agents: {exc}") from exc
        # The card follows the reply: the handler asks for it (`request_refresh`).
        return StartedSweep(path, request.name, request.count, tuple(views), reused)

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
            entity, project, sweep_id = _split(record.path)
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
        stopped = await self._stop_agents(path)
        entity, project, sweep_id = _split(path)
        action: SweepAction = "cancel" if cancel else "stop"
        await self._wandb.set_sweep_state(entity, project, sweep_id, action)
        if self._store.sweeps.get(path) is not None:
            self._store.sweeps.update(path, finished_at=self._clock())
            self.request_refresh(path)
        return SweepChange(path, action, stopped)

    async def _stop_agents(self, path: str) -> int:
        self._stopping.add(path)
        records = self._store.agents.all(live_only=True, sweep_path=path)
        for record in records:
            watcher = self._watchers.pop(record.id, None)
            if watcher is not None:
                watcher.cancel()
        results = await asyncio.gather(
            *(
                self._supervisor.stop(_process_of(r), self._settings.agent_stop_timeout)
                for r in records
            ),
            return_exceptions=True,
        )
        now = self._clock()
        for record, result in zip(records, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stopping agent %s of %s failed: %s", record.pid, path, result)
                continue
            if result.survivors:
                log.error("agent %s of %s left %s alive", record.pid, path, result.survivors)
            self._store.agents.end(record.id, result.returncode, now)
        return len(records)

    async def set_state(self, ref: SweepRef, action: SweepAction) -> str:
        """Pause or resume a sweep on W&B; its agents keep running and wait."""
        path = self.resolve(ref)
        entity, project, sweep_id = _split(path)
        await self._wandb.set_sweep_state(entity, project, sweep_id, action)
        if self._store.sweeps.get(path) is not None:
            self.request_refresh(path)
        return path

    def live_agents(self, path: str) -> int:
        """Return how many agents of a sweep are still running."""
        return len(self._store.agents.all(live_only=True, sweep_path=path))

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
        agents = tuple(
            _agent_view(a, a.ended_at is None)
            for a in self._store.agents.all(sweep_path=record.path)
        )
        state: str | None = None
        progress: SweepProgress | None = None
        try:
            snapshot, progress = await self._progress(record.path)
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
        )

    async def _progress(self, path: str) -> tuple[SweepSnapshot, SweepProgress]:
        entity, project, sweep_id = _split(path)
        snapshot, runs = await asyncio.gather(
            self._wandb.sweep(entity, project, sweep_id),
            self._wandb.sweep_runs(entity, project, sweep_id),
        )
        return snapshot, summarise_runs(runs, snapshot.metric, snapshot.goal)

    # -- agents: watching, exits, adoption --------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _watch(self, record_id: int, process: AgentProcess, *, adopted: bool = False) -> None:
        task = self._spawn(
            self._wait_for(record_id, process, adopted=adopted), f"agent-{record_id}"
        )
        self._watchers[record_id] = task

    async def _wait_for(self, record_id: int, process: AgentProcess, *, adopted: bool) -> None:
        try:
            code = await self._supervisor.wait(process)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("waiting for agent %s failed", process.pid)
            return
        self._watchers.pop(record_id, None)
        record = self._store.agents.get(record_id)
        if record is not None:
            await self._agent_ended(record, code, known=not adopted)

    async def _agent_ended(self, record: AgentRecord, code: int | None, *, known: bool) -> None:
        """Report an agent's end once (the outbox key is per agent record), then maybe finish."""
        path = record.sweep_path
        sweep = self._store.sweeps.get(path)
        if path in self._stopping or sweep is None or sweep.breaker_tripped:
            # Whoever stopped it (a user, the breaker) reports it.
            self._store.agents.end(record.id, code, self._clock())
            return
        done: int | None = None
        with contextlib.suppress(WandbError):
            _, progress = await self._progress(path)
            done = progress.done
        if not known and done is not None and done >= sweep.count:
            # Adopted agents leave no exit status; a sweep that ran its course ended well.
            code, known = 0, True
        now = self._clock()
        tail = await asyncio.to_thread(tail_log, Path(record.log_path), LOG_TAIL_LINES)
        text = render_agent_end(
            path,
            agent=record.idx,
            returncode=code,
            known=known,
            ran_for_s=(now - record.started_at).total_seconds(),
            done=done,
            count=sweep.count,
            log_tail=tail,
            ui_url=self._wandb.ui_url,
        )
        # Enqueue before recording the end: a crash in between repeats nothing (same key).
        self._store.outbox.enqueue(
            [OutboxItem(sweep.chat_id, f"agent-exit:{record.id}", "agent-exit", text)], now
        )
        self._store.agents.end(record.id, code, now)
        self._delivery.wake()
        self._finish_if_done(path)

    def _finish_if_done(self, path: str) -> None:
        sweep = self._store.sweeps.get(path)
        if sweep is None or sweep.finished_at is not None:
            return
        if not self._store.agents.all(live_only=True, sweep_path=path):
            self._store.sweeps.update(path, finished_at=self._clock())
            self.request_refresh(path)

    async def resume(self) -> None:
        """After a (re)start: adopt agents still alive, report those that died meanwhile."""
        for record in self._store.agents.all(live_only=True):
            process = _process_of(record)
            if self._supervisor.adopt(process):
                log.info("adopted agent %s of %s", record.pid, record.sweep_path)
                self._watch(record.id, process, adopted=True)
            else:
                await self._agent_ended(record, None, known=False)
        for sweep in self._store.sweeps.all(active_only=True):
            entity, project, _ = _split(sweep.path)
            self._polls.ensure(entity, project)
            self._finish_if_done(sweep.path)
            self.request_refresh(sweep.path)

    async def close(self) -> None:
        """Stop watching and refreshing; the agents themselves keep running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watchers.clear()
        self._refreshing.clear()

    # -- monitor events: cards and the crash-loop breaker -------------------------------

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
                self._count_failure(sweep, event)
        for path in touched:
            self.request_refresh(path)

    def _count_failure(self, sweep: SweepRecord, event: RunEvent) -> None:
        if sweep.finished_at is not None or sweep.breaker_tripped or sweep.path in self._stopping:
            return
        now = self._clock()
        window = self._lab.crash_loop.window
        recent = [t for t in sweep.failures if now - t <= timedelta(seconds=window)]
        failures = (*recent, now)[-MAX_REMEMBERED_FAILURES:]
        self._failed_runs.setdefault(sweep.path, deque(maxlen=MAX_REMEMBERED_FAILURES)).append(
            event.run
        )
        tripped = crash_loop(failures, now, self._lab.crash_loop.failures, window)
        self._store.sweeps.update(sweep.path, failures=failures, breaker_tripped=int(tripped))
        if tripped:
            self._spawn(self._trip(sweep), f"breaker-{sweep.path}")

    async def _trip(self, sweep: SweepRecord) -> None:
        """Pause a crash-looping sweep on W&B, alert once, stop its agents."""
        path = sweep.path
        entity, project, sweep_id = _split(path)
        paused = True
        try:
            await self._wandb.set_sweep_state(entity, project, sweep_id, "pause")
        except WandbError as exc:
            paused = False
            log.error("could not pause crash-looping sweep %s: %s", path, exc)
        tails = [
            await asyncio.to_thread(tail_log, Path(a.log_path), LOG_TAIL_LINES)
            for a in self._store.agents.all(sweep_path=path)
        ]
        error = next((e for e in (last_error(t) for t in tails) if e), None)
        text, buttons = render_crash_loop(
            path,
            failures=list(self._failed_runs.get(path, ())),
            window_s=self._lab.crash_loop.window,
            paused=paused,
            error=error,
            ui_url=self._wandb.ui_url,
        )
        self._store.outbox.enqueue(
            [
                OutboxItem(
                    sweep.chat_id, f"crash-loop:{path}", "crash-loop", text, button_specs(buttons)
                )
            ],
            self._clock(),
        )
        self._delivery.wake()
        await self._stop_agents(path)
        self._finish_if_done(path)

    # -- the live card ---------------------------------------------------------------------

    def request_refresh(self, path: str) -> None:
        """Bring a sweep's card up to date soon, at most once per `card_edit_interval`."""
        task = self._refreshing.get(path)
        if task is not None and not task.done():
            self._dirty.add(path)
            return
        self._refreshing[path] = self._spawn(self._refresh_later(path), f"card-{path}")

    async def refresh_job(self, _context: object = None) -> None:
        """Periodic job: refresh every active sweep's card (catches what no event showed)."""
        for sweep in self._store.sweeps.all(active_only=True):
            # A sweep without a card is still starting: its start shows the first card.
            if sweep.card_message_id is not None:
                self.request_refresh(sweep.path)

    async def _refresh_later(self, path: str) -> None:
        interval = self._settings.card_edit_interval
        while True:
            wait = self._last_edit.get(path, -1e9) + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.discard(path)
            try:
                await self._refresh(path)
            except WandbError as exc:
                log.warning("sweep card of %s not refreshed: %s", path, exc)
            except Exception:
                log.exception("sweep card of %s failed", path)
            if path not in self._dirty:
                return

    async def _refresh(self, path: str) -> None:
        lock = self._card_locks.setdefault(path, asyncio.Lock())
        async with lock:
            sweep = self._store.sweeps.get(path)
            if sweep is None:
                return
            snapshot, progress = await self._progress(path)
            sweep = self._store.sweeps.get(path) or sweep  # agents may have ended meanwhile
            end = sweep.finished_at or self._clock()
            agents = self.live_agents(path)

            def card(elapsed_s: float) -> tuple[str, Buttons]:
                return render_sweep_card(
                    snapshot,
                    lab_name=sweep.name,
                    done=progress.done,
                    count=sweep.count,
                    failed=progress.failed,
                    agents=agents,
                    elapsed_s=elapsed_s,
                    best=progress.best,
                    metric=snapshot.metric,
                    finished=sweep.finished_at is not None,
                )

            text, buttons = card((end - sweep.started_at).total_seconds())
            # Only a change of substance earns an edit; the clock alone rides along later.
            signature = card(0.0)[0]
            if sweep.card_message_id is not None and (
                text == sweep.card_text or signature == self._signatures.get(path)
            ):
                return
            markup_key = tuple((b.label, b.action) for row in buttons for b in row)
            if await self._show_card(sweep, text, self._markup(sweep, buttons, markup_key)):
                self._signatures[path] = signature

    def _markup(
        self, sweep: SweepRecord, buttons: Buttons, key: tuple[tuple[str, str], ...]
    ) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        cached = self._markups.get((sweep.path, key))
        if cached is None:
            cached = keyboard(
                self._store, button_specs(buttons), self._clock(), chat_id=sweep.chat_id
            )
            if cached is not None:
                self._markups[(sweep.path, key)] = cached
        return cached

    async def _show_card(
        self, sweep: SweepRecord, text: str, markup: InlineKeyboardMarkup | None
    ) -> bool:
        """Send the card, or edit it in place; return whether the chat shows `text` now."""
        self._last_edit[sweep.path] = time.monotonic()
        try:
            if sweep.card_message_id is None:
                message = await self._bot.send_message(sweep.chat_id, text, reply_markup=markup)
                self._store.sweeps.update(
                    sweep.path, card_message_id=message.message_id, card_text=text
                )
                return True
            await self._bot.edit_message_text(
                text, chat_id=sweep.chat_id, message_id=sweep.card_message_id, reply_markup=markup
            )
        except RetryAfter as exc:
            # Telegram asked for a pause: show the card again once it is over.
            pause = exc.retry_after
            seconds = pause.total_seconds() if isinstance(pause, timedelta) else float(pause)
            interval = self._settings.card_edit_interval
            self._last_edit[sweep.path] = time.monotonic() + seconds - interval
            self._dirty.add(sweep.path)
            return False
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("sweep card of %s: %s", sweep.path, exc.message)
                return False
        except NetworkError as exc:
            log.info("sweep card of %s not shown yet (%s); trying again", sweep.path, exc)
            self._dirty.add(sweep.path)
            return False
        except TelegramError as exc:
            log.warning("sweep card of %s not shown: %s", sweep.path, exc)
            return False
        self._store.sweeps.update(sweep.path, card_text=text)
        return True
