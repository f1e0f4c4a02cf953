"""What /sweeps and /sweep status show, and which sweep a reference points at."""

from __future__ import annotations

import asyncio
import logging

from bot.domain.commands import SweepRef
from bot.domain.control import SweepProgress, SweepView
from bot.domain.sweeps import sweep_phase
from bot.store import Store, SweepRecord
from bot.sweeps.agents import LOCAL, AgentWatch, agent_view, summarise
from bot.sweeps.common import SweepError, SweepSource, read_progress, split_path
from config import LabConfig
from wandb_client.errors import WandbError

log = logging.getLogger(__name__)


async def sweep_view(
    record: SweepRecord, store: Store, wandb: SweepSource, watch: AgentWatch
) -> SweepView:
    """Return what /sweeps shows of one sweep: its phase, progress and agents."""
    records = store.agents.all(sweep_path=record.path)
    agents_text: str | None = None
    if any(r.launcher != LOCAL for r in records):
        places = await watch.places(records)
        agents = tuple(agent_view(r, p) for r, p in zip(records, places, strict=True))
        agents_text = summarise(records, places)[0]
    else:
        agents = tuple(agent_view(r) for r in records)
    state: str | None = None
    progress: SweepProgress | None = None
    try:
        snapshot, progress = await read_progress(wandb, record.path)
        state = snapshot.state
    except WandbError as exc:
        log.warning("status of %s: %s", record.path, exc)
    phase = None
    if progress is not None:
        phase = sweep_phase(
            wandb_state=state,
            live_agents=sum(1 for a in agents if a.alive),
            done=progress.done,
            count=record.count,
            breaker_tripped=record.breaker_tripped,
        )
    return SweepView(
        phase=phase,
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


async def sweep_views(
    path: str | None, store: Store, wandb: SweepSource, watch: AgentWatch
) -> list[SweepView]:
    """Return the sweeps to show: the one at `path` (any age), or every active one."""
    if path is not None:
        records = [r for r in store.sweeps.all() if r.path == path]
        if not records:
            raise SweepError("I did not start that sweep, so I have no agents to show.")
    else:
        records = store.sweeps.all(active_only=True)
    views = await asyncio.gather(*(sweep_view(r, store, wandb, watch) for r in records))
    return list(views)


def resolve_ref(records: list[SweepRecord], lab: LabConfig, ref: SweepRef) -> str:
    """Return the `entity/project/id` path a sweep reference points at."""
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
        entity = lab.entity_of(ref.project)
        return f"{entity}/{ref.project}/{ref.sweep_id}"
    raise SweepError(
        f'I did not start sweep "{ref.sweep_id}"; name it as entity/project/{ref.sweep_id}.'
    )
