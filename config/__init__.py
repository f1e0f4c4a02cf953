"""Settings and the lab file."""

from config.alerts import AlertRule
from config.lab import (
    ALL_EVENTS,
    ChatConfig,
    CrashLoopConfig,
    DigestConfig,
    EventKind,
    LabConfig,
    LabFileError,
    ProjectConfig,
    SlurmConfig,
    SweepDef,
    load_lab,
    parse_lab,
)
from config.settings import Settings

__all__ = [
    "ALL_EVENTS",
    "AlertRule",
    "ChatConfig",
    "CrashLoopConfig",
    "DigestConfig",
    "EventKind",
    "LabConfig",
    "LabFileError",
    "ProjectConfig",
    "Settings",
    "SlurmConfig",
    "SweepDef",
    "load_lab",
    "parse_lab",
]
