"""New sweeps from a finished one's best run: rerun it over seeds, or narrow around it."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from bot.domain.derive import narrow_config, rerun_config
from bot.domain.sweep_report import top_runs
from bot.store import Store
from bot.sweeps.common import SweepError, SweepSource, split_path
from config import LabConfig

DeriveKind = Literal["rerun", "narrow"]
RERUN_SEEDS = 3


async def derive(
    store: Store, wandb: SweepSource, lab: LabConfig, path: str, kind: DeriveKind
) -> dict[str, Any]:
    """Return the config of a new sweep built from a finished sweep's best run."""
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
        return rerun_config(
            original,
            best[0],
            seed_param=definition.seed_param,
            seeds=RERUN_SEEDS,
            name=f"{record.name}: {best[0].display_name} ×{RERUN_SEEDS} seeds",
        )
    return narrow_config(
        original,
        best[0],
        runs,
        metric=snapshot.metric,
        goal=snapshot.goal or "minimize",
        count=record.count,
        name=f"{record.name}: narrowed around {best[0].display_name}",
    )
