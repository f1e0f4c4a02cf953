"""Per-agent control of a running sweep: list its agents, stop one, scale to K."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.domain.agent_control import AgentLine, current_run, gpus_for_new_agents
from bot.domain.control import AgentView
from bot.domain.launchers import AgentPlace, place_text
from bot.store import AgentRecord, Store, SweepRecord
from bot.sweeps.agents import LOCAL, AgentWatch
from bot.sweeps.common import SweepError, SweepSource, read_progress, split_path
from bot.sweeps.setup import agent_env, launch_request, parse_gpus
from config import LabConfig, Settings
from config.lab import SweepDef
from wandb_client.agents import tail_log
from wandb_client.errors import AgentError
from wandb_client.models import RunSnapshot

# Enough of a log to find the last "Agent Starting Run" under a run's own output.
LOG_LINES = 2000


@dataclass(frozen=True, slots=True)
class StoppedAgent:
    """What stopping one agent did."""

    path: str
    index: int
    left: int


@dataclass(frozen=True, slots=True)
class Scaled:
    """What `/sweep scale` did: agents before and after, the numbers started or stopped."""

    path: str
    before: int
    after: int
    started: tuple[int, ...] = ()
    stopped: tuple[int, ...] = ()


def _run_for(run: RunSnapshot, now: datetime) -> float:
    # W&B's own runtime (or its last heartbeat) where known: our clock and W&B's may differ.
    elapsed = run.elapsed_s
    return elapsed if elapsed is not None else max(0.0, (now - run.created_at).total_seconds())


def _line(
    record: AgentRecord,
    place: AgentPlace,
    runs: dict[str, RunSnapshot],
    run_id: str | None,
    now: datetime,
) -> AgentLine:
    run = runs.get(run_id) if run_id else None
    live_run = run is not None and run.state in ("running", "pending")
    local = record.launcher == LOCAL
    where = record.host if local else f"{record.launcher} task {record.host}"
    if not local and place.where:
        where += f" on {place.where}"
    return AgentLine(
        record_id=record.id,
        index=record.idx,
        where=where,
        gpus=record.gpus,
        pid=(record.pid or None) if local else None,
        up_s=(now - record.started_at).total_seconds(),
        state="" if place.phase == "running" else place_text(place),
        run_id=run.id if live_run and run else None,
        run_name=run.display_name if live_run and run else None,
        run_for_s=_run_for(run, now) if live_run and run else None,
    )


class AgentControl:
    """List, stop and add the agents of one sweep, through the sweep's own launcher."""

    def __init__(
        self,
        *,
        settings: Settings,
        lab: LabConfig,
        store: Store,
        wandb: SweepSource,
        agents: AgentWatch,
        clock: Callable[[], datetime],
    ) -> None:
        """Keep the collaborators."""
        self._settings = settings
        self._lab = lab
        self._store = store
        self._wandb = wandb
        self._agents = agents
        self._clock = clock

    async def _runs_now(self, records: Sequence[AgentRecord]) -> list[str | None]:
        """Return the run each agent's log says it started last."""
        tails = await asyncio.gather(
            *(asyncio.to_thread(tail_log, Path(r.log_path), LOG_LINES) for r in records)
        )
        return [current_run(t) for t in tails]

    async def lines(self, path: str) -> list[AgentLine]:
        """Return each live agent of a sweep: where, GPUs, PID, its run now and for how long."""
        if self._store.sweeps.get(path) is None:
            raise SweepError("I did not start that sweep, so I have no agents to show.")
        records = sorted(self._live(path), key=lambda r: r.idx)
        if not records:
            return []
        places, runs, run_ids = await asyncio.gather(
            self._agents.places(records),
            self._wandb.sweep_runs(*split_path(path)),
            self._runs_now(records),
        )
        by_id = {r.id: r for r in runs}
        now = self._clock()
        return [
            _line(record, place, by_id, run_id, now)
            for record, place, run_id in zip(records, places, run_ids, strict=True)
        ]

    async def line(self, record_id: int) -> tuple[str, AgentLine]:
        """Return (its sweep, its line) for one live agent, for the Yes/No before a stop."""
        record = self._alive(record_id)
        for line in await self.lines(record.sweep_path):
            if line.record_id == record_id:
                return record.sweep_path, line
        raise SweepError(f"Agent {record.idx} has already ended.")

    async def stop(self, record_id: int) -> StoppedAgent:
        """Stop one agent and free its GPU; W&B's sweep and the other agents go on."""
        record = self._alive(record_id)
        path = record.sweep_path
        if len(self._live(path)) <= 1:
            raise SweepError(
                f"Agent {record.idx} is the sweep's last one: /sweep pause holds its runs,"
                " /sweep stop ends it."
            )
        [run_id] = await self._runs_now([record])
        end = await self._agents.stop_one(record, run_id)
        if end is None:
            raise SweepError(f"Agent {record.idx} could not be stopped; see the bot's log.")
        left = len(self._live(path))
        # What a later resume starts again.
        self._store.sweeps.update(path, agents=left)
        return StoppedAgent(path, record.idx, left)

    async def scale(self, path: str, agents: int, gpus: tuple[int, ...] = ()) -> Scaled:
        """Start or stop agents until the sweep has `agents` of them (1 to the set maximum)."""
        sweep = self._store.sweeps.get(path)
        if sweep is None:
            raise SweepError("I did not start that sweep, so I cannot scale it.")
        if sweep.finished_at is not None:
            raise SweepError(
                f"Sweep {split_path(path)[2]} has ended; /sweep resume starts agents for any"
                " runs it has left."
            )
        live = sorted(self._live(path), key=lambda r: r.idx)
        if agents < len(live):
            # The newest go first: the oldest are the furthest into their runs' history.
            retire = live[agents:]
            run_ids = await self._runs_now(retire)
            await asyncio.gather(
                *(self._agents.stop_one(r, run) for r, run in zip(retire, run_ids, strict=True))
            )
            self._store.sweeps.update(path, agents=agents)
            return Scaled(path, len(live), agents, stopped=tuple(r.idx for r in retire))
        if agents == len(live):
            return Scaled(path, len(live), agents)
        started = await self._add(sweep, live, agents - len(live), gpus)
        self._store.sweeps.update(path, agents=len(live) + len(started))
        return Scaled(path, len(live), len(live) + len(started), started=started)

    async def _add(
        self, sweep: SweepRecord, live: Sequence[AgentRecord], n: int, gpus: tuple[int, ...]
    ) -> tuple[int, ...]:
        path = sweep.path
        definition = self._lab.sweeps.get(sweep.name)
        if definition is None:
            raise SweepError(f'Sweep "{sweep.name}" is no longer in the lab file.')
        if gpus and definition.launcher != LOCAL:
            raise SweepError(
                f'Sweep "{sweep.name}" runs on {definition.launcher}, which assigns GPUs itself:'
                " drop gpus=."
            )
        snapshot, progress = await read_progress(self._wandb, path)
        sweep_id = split_path(path)[2]
        if snapshot.state.upper() in ("CANCELED", "FINISHED"):
            raise SweepError(
                f"Sweep {sweep_id} is {snapshot.state.lower()} on W&B: no agent added."
            )
        if snapshot.run_cap is None or snapshot.run_cap > sweep.count:
            # Only W&B's cap keeps added agents from running past the count.
            raise SweepError(f"Sweep {sweep_id} has no run cap on W&B, so agents cannot be added.")
        left = sweep.count - progress.done - progress.running
        if left < 1:
            raise SweepError(f"Every run of sweep {sweep_id} has started: no agent to add.")
        pool = gpus or parse_gpus(sweep.gpus)
        in_use = [g for r in live for g in parse_gpus(r.gpus)]
        views = await self.launch(
            definition,
            path,
            count=left,
            agents=n,
            gpus=gpus_for_new_agents(pool, in_use),
            capped=True,
            first_index=1
            + max((r.idx for r in self._store.agents.all(sweep_path=path)), default=-1),
        )
        return tuple(v.index for v in views)

    async def launch(
        self,
        definition: SweepDef,
        path: str,
        *,
        count: int,
        agents: int,
        gpus: tuple[int, ...],
        capped: bool,
        first_index: int = 0,
    ) -> list[AgentView]:
        """Start agents of a sweep through its lab entry's launcher; SweepError if none did."""
        request = launch_request(
            definition,
            path,
            count=count,
            agents=agents,
            gpus=gpus,
            env=agent_env(self._wandb.subprocess_env(definition.env), definition.env),
            default_log_dir=self._settings.agent_log_dir,
            capped=capped,
            first_index=first_index,
        )
        try:
            return await self._agents.launch(definition.launcher, request)
        except (AgentError, OSError) as exc:
            raise SweepError(f"Could not start the sweep's agents: {exc}") from exc

    async def restart(self, record: SweepRecord) -> tuple[int, int]:
        """Start agents for the runs a sweep nothing runs any more has left; (agents, runs).

        A user who presses Resume expects the sweep to go on; setting W&B to RUNNING with
        no agent would only make the sweep look alive.
        """
        path, sweep_id = record.path, split_path(record.path)[2]
        definition = self._lab.sweeps.get(record.name)
        if definition is None:
            raise SweepError(f'Sweep "{record.name}" is no longer in the lab file.')
        snapshot, progress = await read_progress(self._wandb, path)
        if snapshot.state.upper() == "CANCELED":
            raise SweepError(f"Sweep {sweep_id} was cancelled; start a new one instead.")
        left = record.count - progress.done
        if left <= 0:
            raise SweepError(f"Sweep {sweep_id} already ran all its {record.count} runs.")
        await self._wandb.set_sweep_state(*split_path(path), "resume")
        self._agents.rearm(path)
        self._store.sweeps.update(path, finished_at=None, breaker_tripped=0, failures=())
        try:
            views = await self.launch(
                definition,
                path,
                count=left,
                agents=record.agents,
                gpus=parse_gpus(record.gpus),
                capped=snapshot.run_cap == record.count,
            )
        except SweepError:
            self._store.sweeps.update(path, finished_at=self._clock())  # nothing runs it
            raise
        return len(views), left

    def _live(self, path: str) -> list[AgentRecord]:
        return self._store.agents.all(live_only=True, sweep_path=path)

    def _alive(self, record_id: int) -> AgentRecord:
        record = self._store.agents.get(record_id)
        if record is None:
            raise SweepError("I know no such agent.")
        if record.ended_at is not None:
            raise SweepError(f"Agent {record.idx} has already ended.")
        return record
