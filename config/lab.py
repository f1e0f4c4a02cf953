"""The lab file: which chats, people, projects and sweeps the bot serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EventKind = Literal["finished", "failed", "crashed", "killed", "stalled", "recovered"]
ALL_EVENTS: tuple[EventKind, ...] = (
    "finished",
    "failed",
    "crashed",
    "killed",
    "stalled",
    "recovered",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_CRON_FIELDS = 5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_name(value: str, what: str = "name") -> str:
    """Return a W&B entity/project name, or raise ValueError when it is not one."""
    if not _NAME.match(value):
        raise ValueError(f"{what} {value!r} may use only letters, digits, '-', '_' and '.'")
    return value


class DigestConfig(_Model):
    """When a chat gets its digest."""

    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        if len(value.split()) != _CRON_FIELDS:
            raise ValueError("needs five fields: minute hour day month weekday")
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a valid cron expression: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ChatConfig(_Model):
    """One Telegram chat of the lab and what it hears about."""

    id: int
    name: str = ""
    projects: tuple[str, ...] = ()
    events: tuple[EventKind, ...] = ALL_EVENTS
    digest: DigestConfig | None = None

    @field_validator("projects")
    @classmethod
    def _check_projects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            for part in item.split("/"):
                check_name(part, "project")
            if item.count("/") > 1:
                raise ValueError(f"project {item!r} must be 'project' or 'entity/project'")
        return value

    @property
    def title(self) -> str:
        """Return the chat's display name."""
        return self.name or str(self.id)


class ProjectConfig(_Model):
    """How the lab judges a project's runs."""

    metric: str | None = None
    goal: Literal["maximize", "minimize"] = "maximize"
    key_metrics: tuple[str, ...] = ()
    entity: str | None = None
    stall_after: float | None = Field(default=None, gt=0)


class SweepDef(_Model):
    """A sweep the lab can start from the chat."""

    file: Path
    project: str
    entity: str | None = None
    workdir: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        return check_name(value, "project")


class CrashLoopConfig(_Model):
    """When repeated failures of one sweep pause it."""

    failures: int = Field(default=3, ge=1)
    window: float = Field(default=600.0, gt=0)


class LabConfig(_Model):
    """The whole lab file."""

    entity: str
    admins: tuple[int, ...] = ()
    chats: tuple[ChatConfig, ...] = ()
    projects: dict[str, ProjectConfig] = Field(default_factory=dict)
    sweeps: dict[str, SweepDef] = Field(default_factory=dict)
    crash_loop: CrashLoopConfig = CrashLoopConfig()

    @field_validator("entity")
    @classmethod
    def _check_entity(cls, value: str) -> str:
        return check_name(value, "entity")

    @model_validator(mode="after")
    def _check_unique_chats(self) -> LabConfig:
        seen: set[int] = set()
        for chat in self.chats:
            if chat.id in seen:
                raise ValueError(f"chat id {chat.id} appears twice")
            seen.add(chat.id)
        return self

    def chat(self, chat_id: int) -> ChatConfig | None:
        """Return the lab's chat with this id, if it is one."""
        return next((c for c in self.chats if c.id == chat_id), None)

    def is_admin(self, user_id: int | None) -> bool:
        """Tell whether a Telegram user may start or stop things."""
        return user_id is not None and user_id in self.admins

    def project(self, name: str) -> ProjectConfig:
        """Return a project's settings, defaults when the lab file names none."""
        return self.projects.get(name, ProjectConfig())

    def resolve_sweep_paths(self, base: Path) -> LabConfig:
        """Return a copy whose sweep files and workdirs are absolute, relative to `base`."""
        sweeps = {}
        for name, sweep in self.sweeps.items():
            file = sweep.file if sweep.file.is_absolute() else base / sweep.file
            workdir = sweep.workdir or file.parent
            workdir = workdir if workdir.is_absolute() else base / workdir
            sweeps[name] = sweep.model_copy(update={"file": file, "workdir": workdir})
        return self.model_copy(update={"sweeps": sweeps})


class LabFileError(Exception):
    """The lab file is missing or wrong; `problems` has one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_lab(data: Any, source: str = "lab file", base: Path | None = None) -> LabConfig:
    """Validate lab data, raising LabFileError with one line per problem."""
    if not isinstance(data, dict):
        raise LabFileError([f"{source}: expected a mapping with 'entity', 'admins', 'chats'"])
    try:
        lab = LabConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {_loc(tuple(err['loc']))}: {msg}")
        raise LabFileError(problems) from None
    lab = lab.resolve_sweep_paths(base or Path.cwd())
    problems = [
        f"{source}: sweeps.{name}.file: {sweep.file} does not exist"
        for name, sweep in lab.sweeps.items()
        if not sweep.file.is_file()
    ]
    if problems:
        raise LabFileError(problems)
    return lab


def load_lab(path: Path) -> LabConfig:
    """Read and validate the lab file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabFileError([f"{path}: not found (set WTB_LAB_FILE or create it)"]) from None
    except OSError as exc:
        raise LabFileError([f"{path}: cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise LabFileError([f"{path}: not valid YAML{where}"]) from None
    return parse_lab(data, str(path), path.resolve().parent)
