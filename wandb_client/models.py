"""Typed snapshots of W&B objects, the only shapes the rest of the bot sees."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RunState = Literal["running", "pending", "finished", "failed", "crashed", "killed", "preempted"]
TERMINAL_STATES: frozenset[str] = frozenset(
    {"finished", "failed", "crashed", "killed", "preempted"}
)
Goal = Literal["maximize", "minimize"]


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """Hold what the bot knows of one W&B run at one moment."""

    entity: str
    project: str
    id: str
    display_name: str
    state: str
    url: str
    created_at: datetime
    updated_at: datetime | None = None
    heartbeat_at: datetime | None = None
    sweep: str | None = None
    tags: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)
    host: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    history_line_count: int | None = None
    graphql_id: str | None = None
    group: str | None = None
    #: The W&B username of whoever started the run (the owner of the API key it used).
    user: str | None = None

    @property
    def path(self) -> str:
        """Return the run's `entity/project/id` path."""
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def step(self) -> int | None:
        """Return the last logged step, if the run logged any."""
        value = self.summary.get("_step")
        return int(value) if isinstance(value, int | float) else None

    @property
    def runtime_s(self) -> float | None:
        """Return the run's runtime in seconds as W&B reports it."""
        value = self.summary.get("_runtime")
        return float(value) if isinstance(value, int | float) else None

    @property
    def elapsed_s(self) -> float | None:
        """Return the run's runtime for display: W&B's, or start to last heartbeat without it.

        W&B rounds its runtime down and counts from the script's first line, so a short run
        shows 0; then the span from creation to the last heartbeat is the better answer.
        (Not always: a resumed run's creation lies before its pause.)
        """
        runtime = self.runtime_s
        if runtime or self.heartbeat_at is None or self.heartbeat_at < self.created_at:
            return runtime
        return (self.heartbeat_at - self.created_at).total_seconds()


@dataclass(frozen=True, slots=True)
class SweepSnapshot:
    """Hold what the bot knows of one W&B sweep."""

    entity: str
    project: str
    id: str
    display_name: str
    state: str
    method: str
    url: str
    config: Mapping[str, Any] = field(default_factory=dict)
    run_count: int = 0
    run_cap: int | None = None
    metric: str | None = None
    goal: Goal | None = None
    created_at: datetime | None = None
    graphql_id: str | None = None

    @property
    def path(self) -> str:
        """Return the sweep's `entity/project/id` path."""
        return f"{self.entity}/{self.project}/{self.id}"


@dataclass(frozen=True, slots=True)
class RunPage:
    """The first runs of a listing, and how many runs the listing selects in all."""

    runs: list[RunSnapshot]
    total: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One logged row of a run's history."""

    step: int
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One line a run wrote to its console, as W&B recorded it."""

    number: int
    text: str
    # "error" for what the process wrote to stderr, "" otherwise.
    level: str = ""
    timestamp: datetime | None = None
