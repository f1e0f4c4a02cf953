"""New sweeps built on results: rerun a run over seeds, or narrow around a sweep's best."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from bot.domain.commands import DEFAULT_AGENTS, RerunRequest
from bot.domain.derive import narrow_config, rerun_config
from bot.domain.format import truncate
from bot.domain.sweep_report import param_value, top_runs
from bot.store import Store, SweepRecord
from bot.sweeps.common import SweepError, SweepSource, split_path
from bot.sweeps.setup import parse_gpus, read_sweep_config
from config import LabConfig
from wandb_client.models import RunSnapshot

DeriveKind = Literal["rerun", "narrow"]
RERUN_SEEDS = 3


@dataclass(frozen=True, slots=True)
class DerivedSweep:
    """A sweep to create: its config, the lab entry that runs it, where, and its agents."""

    config: dict[str, Any]
    entry: str
    entity: str
    project: str
    agents: int
    gpus: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """Return how many runs the sweep will do."""
        return int(self.config["run_cap"])


def _known(lab: LabConfig) -> str:
    return ", ".join(sorted(lab.sweeps)) or "none"


def _rerun(
    original: dict[str, Any],
    run: RunSnapshot,
    lab: LabConfig,
    entry: str,
    seeds: int,
    count: int,
    record: SweepRecord | None,
) -> DerivedSweep:
    """Fix every swept parameter at `run`'s value and vary the entry's seed parameter."""
    seed_param = lab.sweeps[entry].seed_param
    swept = original.get("parameters")
    missing = [
        str(p)
        for p in (swept if isinstance(swept, dict) else {})
        if p != seed_param and param_value(run, str(p)) is None
    ]
    if missing:
        raise SweepError(
            f"{truncate(run.display_name)} has no value for {', '.join(missing[:5])}, which"
            f' sweep "{entry}" sets; it cannot be rerun with that sweep.'
        )
    config = rerun_config(
        original,
        run,
        seed_param=seed_param,
        seeds=seeds,
        name=f"{entry}: {run.display_name} ×{seeds} seeds",
    )
    config["run_cap"] = count
    agents = record.agents if record is not None else DEFAULT_AGENTS
    gpus = parse_gpus(record.gpus) if record is not None else ()
    # More agents than runs would only wait for work that never comes.
    return DerivedSweep(config, entry, run.entity, run.project, min(agents, count), gpus)


async def derive(
    store: Store, wandb: SweepSource, lab: LabConfig, path: str, kind: DeriveKind
) -> DerivedSweep:
    """Return a new sweep built from a finished sweep's best run."""
    record = store.sweeps.get(path)
    definition = lab.sweeps.get(record.name) if record is not None else None
    if record is None or definition is None:
        raise SweepError("I can build on sweeps started from the chat only.")
    entity, project, sweep_id = split_path(path)
    snapshot, runs = await asyncio.gather(
        wandb.sweep(entity, project, sweep_id), wandb.sweep_runs(entity, project, sweep_id)
    )
    best = top_runs(runs, snapshot.metric, snapshot.goal, k=1)
    if not best or snapshot.metric is None:
        raise SweepError(f"Sweep {sweep_id} has no finished run with its metric to build on.")
    original = dict(snapshot.config)
    if kind == "rerun":
        return _rerun(original, best[0], lab, record.name, RERUN_SEEDS, RERUN_SEEDS, record)
    config = narrow_config(
        original,
        best[0],
        runs,
        metric=snapshot.metric,
        goal=snapshot.goal or "minimize",
        count=record.count,
        name=f"{record.name}: narrowed around {best[0].display_name}",
    )
    return DerivedSweep(
        config, record.name, entity, project, record.agents, parse_gpus(record.gpus)
    )


async def rerun_run(
    store: Store, wandb: SweepSource, lab: LabConfig, run: RunSnapshot, request: RerunRequest
) -> DerivedSweep:
    """Return a grid sweep that reruns one run's config over seeds, in the run's project.

    The lab entry is the one asked for (`sweep=`), else the one that started the run's
    sweep from the chat. The swept parameters are those of the run's own W&B sweep, or of
    the entry's file when the run came from no sweep.
    """
    origin = f"{run.entity}/{run.project}/{run.sweep}" if run.sweep else None
    record = store.sweeps.get(origin) if origin else None
    entry = request.sweep or (record.name if record is not None else None)
    if entry is None:
        where = f"sweep {run.sweep}, which was not started from the chat" if run.sweep else None
        raise SweepError(
            f"{truncate(run.display_name)} comes from {where or 'no sweep'}: say which lab sweep"
            f" runs it, e.g. sweep=<name> (known: {_known(lab)})."
        )
    if entry not in lab.sweeps:
        raise SweepError(f'Sweep "{entry}" is no longer in the lab file (known: {_known(lab)}).')
    if run.sweep:
        original = dict((await wandb.sweep(run.entity, run.project, run.sweep)).config)
    else:
        original = await read_sweep_config(entry, lab.sweeps[entry].file)
    same = record if record is not None and record.name == entry else None
    return _rerun(original, run, lab, entry, request.seeds, request.count, same)


class DerivedSweeps:
    """Build the configs of new sweeps on results, for the sweep service to start."""

    def __init__(self, store: Store, wandb: SweepSource, lab: LabConfig) -> None:
        self._store = store
        self._wandb = wandb
        self._lab = lab

    async def from_best(self, path: str, kind: DeriveKind) -> DerivedSweep:
        """Return a rerun or narrowed sweep built on a finished sweep's best run."""
        return await derive(self._store, self._wandb, self._lab, path, kind)

    async def rerun(self, run: RunSnapshot, request: RerunRequest) -> DerivedSweep:
        """Return a grid sweep that reruns one run's config over seeds (`/rerun`)."""
        return await rerun_run(self._store, self._wandb, self._lab, run, request)
