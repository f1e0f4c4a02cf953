"""Settings and the lab file."""

from config.lab import (
    ALL_EVENTS,
    ChatConfig,
    CrashLoopConfig,
    DigestConfig,
    EventKind,
    LabConfig,
    LabFileError,
    ProjectConfig,
    SweepDef,
    load_lab,
    parse_lab,
)
from config.settings import Settings

__all__ = [
    "ALL_EVENTS",
    "ChatConfig",
    "CrashLoopConfig",
    "DigestConfig",
    "EventKind",
    "LabConfig",
    "LabFileError",
    "ProjectConfig",
    "Settings",
    "SweepDef",
    "load_lab",
    "parse_lab",
]
