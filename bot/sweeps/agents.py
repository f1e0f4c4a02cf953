"""Watch sweep agents through their launchers: record starts, report ends, stop, adopt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from bot.delivery import Delivery
from bot.domain.control import AgentView, render_agent_end
from bot.domain.launchers import (
    AgentPlace,
    agents_summary,
    ends_summary,
    group_label,
    place_text,
)
from bot.store import AgentRecord, OutboxItem, Store
from bot.sweeps.common import (
    LOG_TAIL_LINES,
    SweepSource,
    Tasks,
    gpus_text,
    read_progress,
    sweep_topic,
)
from bot.sweeps.launchers import LauncherRegistry
from wandb_client.agents import tail_log
from wandb_client.errors import AgentError, WandbError
from wandb_client.launcher import AgentEnd, AgentState, LaunchedAgent, LaunchRequest

log = logging.getLogger(__name__)

LOCAL = "local"


def agent_view(record: AgentRecord, place: AgentPlace | None = None) -> AgentView:
    """Return what the chat shows of a stored agent (and, off this host, where it is)."""
    return AgentView(
        index=record.idx,
        pid=record.pid,
        started_at=record.started_at,
        alive=record.ended_at is None,
        gpus=record.gpus,
        exit_code=record.exit_code,
        where=where_of(record.launcher, record.host),
        state=place_text(place) if place is not None else "",
    )


def where_of(kind: str, where: str) -> str:
    """Return how the chat names an agent off this host (`slurm 4711_0`); local ones by PID."""
    return "" if kind == LOCAL else f"{kind} {where}".strip()


def launched_of(record: AgentRecord) -> LaunchedAgent:
    """Return the launcher's view of a stored agent, to hand back to its launcher."""
    return LaunchedAgent(
        kind=record.launcher,
        sweep_path=record.sweep_path,
        index=record.idx,
        handle=record.handle,
        log_path=Path(record.log_path),
        started_at=record.started_at,
        gpus=tuple(int(g) for g in record.gpus.split(",") if g),
        pid=record.pid or None,
        where=record.host,
    )


def summarise(records: Sequence[AgentRecord], places: Sequence[AgentPlace]) -> tuple[str, str]:
    """Return (the live agents summed up, how the ended ones ended) for agents off this host."""
    live = [p for r, p in zip(records, places, strict=True) if r.ended_at is None]
    label = group_label(records[0].launcher, [r.host for r in records])
    ends = ends_summary(label, places)
    # Once none is left, how they ended says more than "0 agents".
    return (f"{agents_summary(live)} · {label}" if live else ends or label), ends


def agent_failed(end: AgentEnd) -> bool:
    """Say whether an agent's end is a failure worth its own message.

    A non-zero exit, or an end its launcher names without a code (Slurm's TIMEOUT). A clean
    exit, or one nobody saw (an adopted local agent), folds into the card.
    """
    if end.code is not None:
        return end.code != 0
    return bool(end.reason) and end.reason.upper() != "COMPLETED"


class AgentWatch:
    """Own every agent the bot started: one watcher per agent, one report per end."""

    def __init__(
        self,
        *,
        store: Store,
        wandb: SweepSource,
        launchers: LauncherRegistry,
        delivery: Delivery,
        clock: Callable[[], datetime],
        tasks: Tasks,
        on_change: Callable[[str], None],
        stop_timeout_s: float,
        on_finished: Callable[[str], None] = lambda _path: None,
    ) -> None:
        """Keep the collaborators; `on_change(path)` hears of agents changing, `on_finished`
        of a sweep's last agent ending."""
        self._store = store
        self._wandb = wandb
        self._launchers = launchers
        self._delivery = delivery
        self._clock = clock
        self._tasks = tasks
        self._on_change = on_change
        self._on_finished = on_finished
        self._stop_timeout_s = stop_timeout_s
        self._watchers: dict[int, asyncio.Task[None]] = {}
        # Sweeps a user or the breaker is stopping: they report the end, not each agent.
        self._stopping: set[str] = set()
        # Agents stopped one by one on purpose, and the runs they were on.
        self._retired: set[int] = set()
        self._interrupted: set[str] = set()

    def is_stopping(self, path: str) -> bool:
        """Say whether a sweep's agents are being stopped on purpose."""
        return path in self._stopping

    def rearm(self, path: str) -> None:
        """A sweep started again after a stop: report its agents' ends again."""
        self._stopping.discard(path)

    def live(self, path: str) -> int:
        """Return how many agents of a sweep are still running."""
        return len(self._store.agents.all(live_only=True, sweep_path=path))

    async def launch(self, kind: str, request: LaunchRequest) -> list[AgentView]:
        """Start a sweep's agents; each is stored and watched the moment it exists.

        Raises AgentError/OSError only when no agent started at all.
        """
        launcher = self._launchers.get(kind)
        views: list[AgentView] = []

        def started(agent: LaunchedAgent) -> None:
            # Stored the moment it runs: a bot killed mid-stagger still adopts it later.
            record_id = self._store.agents.add(
                sweep_path=agent.sweep_path,
                idx=agent.index,
                pid=agent.pid or 0,
                pgid=0,
                cmdline=(),
                log_path=str(agent.log_path),
                gpus=gpus_text(agent.gpus),
                started_at=agent.started_at,
                launcher=agent.kind,
                handle=agent.handle,
                host=agent.where,
            )
            self._watch(record_id, agent)
            views.append(
                AgentView(
                    agent.index,
                    agent.pid or 0,
                    agent.started_at,
                    True,
                    gpus_text(agent.gpus),
                    where=where_of(agent.kind, agent.where),
                )
            )

        try:
            await launcher.start(request, started)
        except (AgentError, OSError) as exc:
            log.error("agents for %s did not start: %s", request.sweep_path, exc)
            if not views:
                raise
        return views

    def _watch(self, record_id: int, agent: LaunchedAgent) -> None:
        task = self._tasks.spawn(self._wait_for(record_id, agent), f"agent-{record_id}")
        self._watchers[record_id] = task

    async def _wait_for(self, record_id: int, agent: LaunchedAgent) -> None:
        try:
            end = await self._launchers.get(agent.kind).wait(agent)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("waiting for agent %s of %s failed", agent.index, agent.sweep_path)
            return
        self._watchers.pop(record_id, None)
        record = self._store.agents.get(record_id)
        if record is not None:
            await self.ended(record, end)

    async def ended(self, record: AgentRecord, end: AgentEnd) -> None:
        """Record an agent's end; a failed agent gets one message (keyed per agent record).

        A clean or unknown end folds into the sweep's card, which says what it means
        (finished, or agents that gave up with runs left).
        """
        path = record.sweep_path
        sweep = self._store.sweeps.get(path)
        now = self._clock()
        quiet = (
            path in self._stopping
            or record.id in self._retired
            or sweep is None
            or sweep.breaker_tripped
        )
        if quiet or not agent_failed(end):
            # Whoever stopped it (a user, the breaker) reports it; the card tells the rest.
            self._store.agents.end(record.id, end.code, now)
            self._on_change(path)
            self.finish_if_done(path)
            return
        assert sweep is not None
        done: int | None = None
        with contextlib.suppress(WandbError):
            _, progress = await read_progress(self._wandb, path)
            done = progress.done
        tail = await asyncio.to_thread(tail_log, Path(record.log_path), LOG_TAIL_LINES)
        text = render_agent_end(
            path,
            agent=record.idx,
            returncode=end.code,
            known=True,
            # A launcher that saw the end without a code (Slurm's TIMEOUT, CANCELLED) says how.
            how=end.reason if end.code is None else "",
            ran_for_s=(now - record.started_at).total_seconds(),
            done=done,
            count=sweep.count,
            log_tail=tail,
            ui_url=self._wandb.ui_url,
        )
        # Enqueue before recording the end: a crash in between repeats nothing (same key).
        self._store.outbox.enqueue(
            [
                OutboxItem(
                    sweep.chat_id,
                    f"agent-exit:{record.id}",
                    "agent-exit",
                    text,
                    thread_id=sweep.thread_id,
                    topic=sweep_topic(sweep.path),
                )
            ],
            now,
        )
        self._store.agents.end(record.id, end.code, now)
        self._delivery.wake()
        self._on_change(path)
        self.finish_if_done(path)

    def finish_if_done(self, path: str) -> None:
        """Mark a sweep finished once none of its agents runs."""
        sweep = self._store.sweeps.get(path)
        if sweep is None or sweep.finished_at is not None:
            return
        if not self._store.agents.all(live_only=True, sweep_path=path):
            self._store.sweeps.update(path, finished_at=self._clock())
            self._on_change(path)
            self._on_finished(path)

    async def stop_all(self, path: str) -> int:
        """Stop every live agent of a sweep on purpose; return how many there were."""
        self._stopping.add(path)
        records = self._store.agents.all(live_only=True, sweep_path=path)
        by_kind: dict[str, list[AgentRecord]] = {}
        for record in records:
            by_kind.setdefault(record.launcher, []).append(record)
        for group in by_kind.values():
            await self._stop(group)
        return len(records)

    async def stop_one(self, record: AgentRecord, run_id: str | None = None) -> AgentEnd | None:
        """Stop one agent on purpose; the sweep and its other agents go on.

        Its end is no failure to report and starts nothing again, and the run it was on
        (`run_id`), interrupted here, does not count towards the crash-loop breaker.
        None when its launcher could not be asked.
        """
        self._retired.add(record.id)
        if run_id is not None:
            self._interrupted.add(run_id)
        ends = await self._stop([record])
        self._on_change(record.sweep_path)
        return ends[0] if ends else None

    def interrupted(self, run_id: str) -> bool:
        """Say whether a run was cut short by stopping its agent on purpose."""
        return run_id in self._interrupted

    async def _stop(self, group: Sequence[AgentRecord]) -> list[AgentEnd]:
        """Stop agents of one launcher; their watchers go first, so no end reads as a crash."""
        for record in group:
            watcher = self._watchers.pop(record.id, None)
            if watcher is not None:
                watcher.cancel()
        path, kind = group[0].sweep_path, group[0].launcher
        try:
            ends = await self._launchers.get(kind).stop(
                [launched_of(r) for r in group], self._stop_timeout_s
            )
        except Exception as exc:
            log.error("stopping %d agents of %s failed: %s", len(group), path, exc)
            return []
        now = self._clock()
        for record, end in zip(group, ends, strict=True):
            if end.survivors:
                log.error("agent %s of %s left %s alive", record.idx, path, end.survivors)
            self._store.agents.end(record.id, end.code, now)
        return ends

    async def places(self, records: Sequence[AgentRecord]) -> list[AgentPlace]:
        """Return where each agent is now, one launcher query per kind (not per agent)."""
        places: dict[int, AgentPlace] = {}
        by_kind: dict[str, list[AgentRecord]] = {}
        for record in records:
            by_kind.setdefault(record.launcher, []).append(record)
        for kind, group in by_kind.items():
            try:
                states = await self._launchers.get(kind).states([launched_of(r) for r in group])
            except (AgentError, KeyError) as exc:
                log.warning("states of %d %s agents: %s", len(group), kind, exc)
                states = [AgentState("unknown") for _ in group]
            for record, state in zip(group, states, strict=True):
                places[record.id] = AgentPlace(state.phase, state.reason, state.where)
        return [places[r.id] for r in records]

    async def describe(self, path: str) -> tuple[str, str] | None:
        """Sum up a sweep's agents off this host: (`2 agents · 1 pending (…)`, how they ended).

        None for local agents, whose card line stays the count of live ones.
        """
        records = self._store.agents.all(sweep_path=path)
        if not records or all(r.launcher == LOCAL for r in records):
            return None
        return summarise(records, await self.places(records))

    async def log_tails(self, path: str) -> list[list[str]]:
        """Return the last lines of each agent's log, oldest agent first."""
        return [
            await asyncio.to_thread(tail_log, Path(a.log_path), LOG_TAIL_LINES)
            for a in self._store.agents.all(sweep_path=path)
        ]

    async def adopt_all(self) -> None:
        """After a (re)start: adopt agents still alive, report those that ended meanwhile."""
        for record in self._store.agents.all(live_only=True):
            agent = launched_of(record)
            if record.launcher not in self._launchers:
                log.error(
                    "agent %s of %s: no launcher %r", record.idx, agent.sweep_path, agent.kind
                )
                continue
            if await self._launchers.get(record.launcher).adopt(agent):
                log.info("adopted agent %s of %s", record.idx, record.sweep_path)
                self._watch(record.id, agent)
            else:
                await self.ended(record, AgentEnd(None))

    def forget_watchers(self) -> None:
        """Drop the watcher tasks (cancelled with the others at shutdown)."""
        self._watchers.clear()
