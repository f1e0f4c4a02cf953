"""What starting a sweep's agents needs from the lab file: its config, env and launch request."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from bot.domain.commands import SweepStart
from bot.domain.sweeps import parse_sweep_yaml
from bot.store import SweepRecord
from bot.sweeps.common import SweepError, gpus_text
from config.lab import SweepDef
from wandb_client.launcher import LaunchRequest


def launcher_options(definition: SweepDef) -> dict[str, object]:
    """Return the lab file's block named like the sweep's launcher (e.g. `slurm:`), as data."""
    block = getattr(definition, definition.launcher, None)
    return block.model_dump() if isinstance(block, BaseModel) else {}


async def read_sweep_config(name: str, file: Path) -> dict[str, Any]:
    """Read and check a lab sweep's YAML; SweepError says what is wrong in one line."""
    try:
        text = await asyncio.to_thread(file.read_text, encoding="utf-8")
    except OSError as exc:
        raise SweepError(f'The file of sweep "{name}" cannot be read: {exc.strerror}.') from exc
    config, problems = parse_sweep_yaml(text, yaml.safe_load)
    if problems:
        raise SweepError(f'The file of sweep "{name}" is wrong: {problems[0]}.')
    return config


def agent_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Return an agent's environment: W&B's variables, the lab's, and this Python first."""
    env = dict(base)
    if "PATH" not in extra:
        # `wandb agent` runs `python <program>`: the bot's own environment's Python.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return env


def launch_request(
    definition: SweepDef,
    path: str,
    *,
    count: int,
    agents: int,
    gpus: tuple[int, ...],
    env: Mapping[str, str],
    default_log_dir: Path,
    capped: bool = False,
    first_index: int = 0,
) -> LaunchRequest:
    """Return what to ask the sweep's launcher for (`capped`: W&B's run cap is `count`)."""
    return LaunchRequest(
        sweep_path=path,
        count=count,
        agents=max(1, min(agents, count)),
        gpus=gpus,
        workdir=definition.workdir or definition.file.parent,
        env=env,
        log_dir=definition.log_dir or default_log_dir,
        options=launcher_options(definition),
        capped=capped,
        first_index=first_index,
    )


def parse_gpus(text: str) -> tuple[int, ...]:
    """Return the GPUs stored as a comma list."""
    return tuple(int(g) for g in text.split(",") if g)


def new_record(
    path: str,
    request: SweepStart,
    count: int,
    chat_id: int,
    user_id: int | None,
    launcher: str,
    now: datetime,
    thread_id: int | None = None,
) -> SweepRecord:
    """Return the store's record of a sweep just started from a chat (and forum topic)."""
    return SweepRecord(
        path=path,
        name=request.name,
        chat_id=chat_id,
        count=count,
        agents=request.agents,
        gpus=gpus_text(request.gpus),
        started_by=user_id,
        started_at=now,
        card_message_id=None,
        card_text=None,
        finished_at=None,
        failures=(),
        breaker_tripped=False,
        launcher=launcher,
        thread_id=thread_id,
    )
