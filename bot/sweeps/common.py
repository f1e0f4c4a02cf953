"""What the sweep modules share: the W&B seam they need, errors, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Protocol

from bot.domain.control import SweepProgress, summarise_runs
from bot.domain.keys import SweepKey
from wandb_client.errors import WandbError
from wandb_client.models import RunSnapshot, SweepSnapshot
from wandb_client.sweep_control import SweepAction

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


def sweep_topic(path: str) -> str:
    """Return what a sweep's messages are about, for a forum chat's topics: its project."""
    key = SweepKey.parse(path)
    return f"{key.entity}/{key.project}"


class SweepError(Exception):
    """A sweep cannot be started or found; the message is one line for the chat."""


class SweepSource(Protocol):
    """The part of W&B the sweep modules use (the real one is `WandbClient`)."""

    @property
    def ui_url(self) -> str:
        """Return the W&B web address links point at."""
        ...

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot:
        """Return a sweep's state and objective."""
        ...

    async def sweep_runs(self, entity: str, project: str, sweep_id: str) -> list[RunSnapshot]:
        """Return every run of a sweep."""
        ...

    async def set_sweep_state(
        self, entity: str, project: str, sweep_id: str, action: SweepAction
    ) -> None:
        """Stop, cancel, pause or resume a sweep on W&B."""
        ...

    async def create_sweep(self, config: Mapping[str, Any], entity: str, project: str) -> str:
        """Create a sweep and return its id."""
        ...

    def subprocess_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the environment a `wandb` child process needs."""
        ...


def split_path(path: str) -> tuple[str, str, str]:
    """Split `entity/project/id`."""
    key = SweepKey.parse(path)
    return key.entity, key.project, key.sweep_id


def gpus_text(gpus: Sequence[int]) -> str:
    """Return GPUs as the comma list the store keeps."""
    return ",".join(str(g) for g in gpus)


ENDED_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "CRASHED"})


async def explain_refusal(wandb: SweepSource, path: str, action: SweepAction) -> None:
    """Raise a SweepError saying why W&B refused `action` when the sweep has ended."""
    try:
        snapshot = await wandb.sweep(*split_path(path))
    except WandbError:
        return  # the refusal itself is the better answer
    if snapshot.state.upper() in ENDED_STATES:
        state = "cancelled" if snapshot.state.upper() == "CANCELED" else "ended"
        raise SweepError(
            f"Sweep {split_path(path)[2]} has {state} ({snapshot.state.lower()}):"
            f" there is nothing to {action}."
        )


async def read_progress(wandb: SweepSource, path: str) -> tuple[SweepSnapshot, SweepProgress]:
    """Return a sweep's snapshot and how far its runs got (two requests, in parallel)."""
    entity, project, sweep_id = split_path(path)
    snapshot, runs = await asyncio.gather(
        wandb.sweep(entity, project, sweep_id),
        wandb.sweep_runs(entity, project, sweep_id),
    )
    return snapshot, summarise_runs(runs, snapshot.metric, snapshot.goal)


class Tasks:
    """Background tasks of the sweep modules, cancelled together at shutdown."""

    def __init__(self) -> None:
        """Start with none."""
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` in the background, kept alive until it ends or `close`."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Cancel every task and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
