"""The seam between sweeps and where their `wandb agent`s run: this host, Slurm, ….

A launcher starts K agents for a sweep, reports each agent's state and end, stops agents,
and finds them again after a bot restart from the handle it gave each one. The handle is an
opaque string (JSON by convention) that only the launcher of that kind reads: a process
group on this host (`{"pid": …, "pgid": …, "cmdline": […]}`), a Slurm array task
(`{"job": "4711", "task": 0}`), and so on. The caller stores it and hands it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

AgentPhase = Literal["pending", "running", "ended", "unknown"]


def split_count(total: int, agents: int) -> list[int]:
    """Split a sweep's run count over agents so the counts add up to exactly `total`.

    N // K each, the first N % K one more; no agent with nothing to do is started.
    """
    if total < 1 or agents < 1:
        raise ValueError("count and agents must be positive")
    base, extra = divmod(total, agents)
    return [base + (1 if i < extra else 0) for i in range(min(agents, total))]


def agent_counts(total: int, agents: int, *, capped: bool = False) -> list[int]:
    """Return each agent's `--count`: a split of `total`, or all of it when W&B caps the sweep.

    With the sweep's `run_cap` equal to the runs wanted, W&B hands out no run past it, so
    every agent may take up to all of them: an agent stopped early leaves its share to the
    others instead of leaving the sweep short. Without a cap the split keeps the total exact.
    """
    counts = split_count(total, agents)
    return [total] * len(counts) if capped else counts


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """What to start: K agents sharing `count` runs of one sweep, where and with what."""

    sweep_path: str
    count: int
    agents: int = 1
    gpus: tuple[int, ...] = ()
    workdir: Path = Path()
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path = Path()
    #: The lab file's launcher block for this sweep (e.g. Slurm's partition), as plain data.
    options: Mapping[str, object] = field(default_factory=dict)
    #: W&B's run cap on the sweep ends it at `count` runs: see `agent_counts`.
    capped: bool = False
    #: The number the chat gives the first agent (agents added later continue the count).
    first_index: int = 0


@dataclass(frozen=True, slots=True)
class LaunchedAgent:
    """One agent a launcher started or found again: what the chat shows, and its handle."""

    kind: str
    sweep_path: str
    index: int
    handle: str
    log_path: Path
    started_at: datetime
    gpus: tuple[int, ...] = ()
    count: int | None = None
    #: The process id on this host, when there is one to show (local agents).
    pid: int | None = None
    #: Where it runs, for people: a host name, or a Slurm task such as `4711_0`.
    where: str = ""


@dataclass(frozen=True, slots=True)
class AgentState:
    """What a launcher knows about one agent now."""

    phase: AgentPhase
    #: Why it waits or how it ended, in the engine's words: `Resources`, `TIMEOUT`, ….
    reason: str = ""
    #: The host it runs on, once known.
    where: str = ""


@dataclass(frozen=True, slots=True)
class AgentEnd:
    """How an agent ended: its exit code when the launcher could see it."""

    code: int | None
    #: The engine's word for the end (`COMPLETED`, `FAILED`, `killed`…); empty when plain.
    reason: str = ""
    #: Processes a stop could not end (a local agent's stubborn children).
    survivors: tuple[int, ...] = ()

    @property
    def known(self) -> bool:
        """Say whether the exit code was seen (an adopted local agent leaves none)."""
        return self.code is not None


class Launcher(Protocol):
    """Start, watch, stop and adopt the `wandb agent`s of sweeps on one kind of engine."""

    @property
    def kind(self) -> str:
        """Return the lab file's name for this engine: `local`, `slurm`, …."""
        ...

    async def start(
        self,
        request: LaunchRequest,
        on_started: Callable[[LaunchedAgent], None] | None = None,
    ) -> list[LaunchedAgent]:
        """Start the agents of `request`; `on_started` sees each one as soon as it exists.

        Raises `AgentError` (or OSError) when none could be started; agents started before
        a failure were already passed to `on_started`.
        """
        ...

    async def adopt(self, agent: LaunchedAgent) -> bool:
        """Track an agent a previous bot process started; False when it is gone."""
        ...

    async def wait(self, agent: LaunchedAgent) -> AgentEnd:
        """Return once the agent has ended, with how it ended."""
        ...

    async def states(self, agents: Sequence[LaunchedAgent]) -> list[AgentState]:
        """Return each agent's state now, in order (one query for all where possible)."""
        ...

    async def stop(self, agents: Sequence[LaunchedAgent], timeout_s: float) -> list[AgentEnd]:
        """Stop agents and the runs they started: interrupt, then harder; return their ends."""
        ...
