"""Talk to Weights & Biases: typed snapshots of runs and sweeps, sweep control, agents."""

from __future__ import annotations

from wandb_client.agents import AgentProcess, AgentSupervisor, StopResult, split_count, tail_log
from wandb_client.batch import ChangedRunsQuery
from wandb_client.client import ChangedRuns, ClientHealth, WandbClient
from wandb_client.errors import (
    AgentError,
    WandbAuthError,
    WandbError,
    WandbNotFoundError,
    WandbRequestError,
    WandbUnavailableError,
)
from wandb_client.models import (
    TERMINAL_STATES,
    Goal,
    HistoryRow,
    RunSnapshot,
    RunState,
    SweepSnapshot,
)
from wandb_client.processes import wandb_env, wandb_executable
from wandb_client.sweep_control import SWEEP_ACTIONS, SweepAction

__all__ = [
    "SWEEP_ACTIONS",
    "TERMINAL_STATES",
    "AgentError",
    "AgentProcess",
    "AgentSupervisor",
    "ChangedRuns",
    "ChangedRunsQuery",
    "ClientHealth",
    "Goal",
    "HistoryRow",
    "RunSnapshot",
    "RunState",
    "StopResult",
    "SweepAction",
    "SweepSnapshot",
    "WandbAuthError",
    "WandbClient",
    "WandbError",
    "WandbNotFoundError",
    "WandbRequestError",
    "WandbUnavailableError",
    "split_count",
    "tail_log",
    "wandb_env",
    "wandb_executable",
]
