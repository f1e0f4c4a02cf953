"""Drive sweeps from the chat: start agents through launchers, a live card, stop, adopt."""

from __future__ import annotations

from bot.sweeps.common import SweepError, SweepSource
from bot.sweeps.launchers import LauncherRegistry
from bot.sweeps.service import StartedSweep, SweepChange, SweepService

__all__ = [
    "LauncherRegistry",
    "StartedSweep",
    "SweepChange",
    "SweepError",
    "SweepService",
    "SweepSource",
]
