"""The lab file: which chats, people, projects and sweeps the bot serves."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.alerts import AlertRule

EventKind = Literal["finished", "failed", "crashed", "killed", "stalled", "recovered"]
ALL_EVENTS: tuple[EventKind, ...] = (
    "finished",
    "failed",
    "crashed",
    "killed",
    "stalled",
    "recovered",
)
#: Where a tracked sweep's runs are told: folded into its live card (failures, crashes and
#: stalls still get their own message), or one message each.
SweepRuns = Literal["card", "each"]
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
    #: The forum topic (message_thread_id) the digest goes to; default the General topic.
    topic: int | None = Field(default=None, gt=0)

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
        return check_zone(value)


def check_zone(value: str) -> str:
    """Return an IANA time zone name unchanged, or fail naming it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class ChatProject(_Model):
    """A `projects:` item written as a mapping: the project and its forum topic."""

    name: str
    topic: int | None = Field(default=None, gt=0)


TopicsMode = Literal["auto", "off"]


class ChatConfig(_Model):
    """One Telegram chat of the lab and what it hears about."""

    id: int
    name: str = ""
    projects: tuple[str, ...] = ()
    #: `auto`: the bot opens one forum topic per project on first use (the chat must be a
    #: forum and the bot may manage topics); a project's own `topic` comes first.
    topics: TopicsMode = "off"
    #: Each project's forum topic, from `projects:` items written `{name: P, topic: N}`.
    project_topics: dict[str, int] = Field(default_factory=dict, exclude=True)
    events: tuple[EventKind, ...] = ALL_EVENTS
    digest: DigestConfig | None = None
    # Times this chat reads (notifications, /status, digests); else the digest's, else the lab's.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _check_chat_tz(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    @field_validator("topics", mode="before")
    @classmethod
    def _read_yaml_switch(cls, value: Any) -> Any:
        # YAML reads a bare `off` (and `on`) as a boolean.
        return {True: "auto", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="before")
    @classmethod
    def _split_project_topics(cls, data: Any) -> Any:
        """Read `projects:` items that are a name or `{name, topic}` into names and topics."""
        if not isinstance(data, dict):
            return data
        if "project_topics" in data:
            raise ValueError("project_topics: give each project's topic as {name: P, topic: N}")
        if not isinstance(data.get("projects"), list | tuple):
            return data
        names: list[Any] = []
        topics: dict[str, int] = {}
        for index, item in enumerate(data["projects"]):
            if not isinstance(item, dict):
                names.append(item)
                continue
            try:
                project = ChatProject.model_validate(item)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(part) for part in err["loc"])
                raise ValueError(f"projects[{index}].{where}: {err['msg']}") from None
            names.append(project.name)
            if project.topic is not None:
                topics[project.name] = project.topic
        return {**data, "projects": names, "project_topics": topics}

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
    alerts: tuple[AlertRule, ...] = ()
    #: How runs of sweeps started from the chat are told (a sweep's own setting wins).
    sweep_runs: SweepRuns = "card"


LauncherKind = Literal["local", "slurm"]
# Slurm's own names (partitions, accounts, QOS) and sizes; nothing a shell would read.
_SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_SLURM_TIME = re.compile(r"^(\d{1,4}-)?\d{1,6}(:\d{1,2}){0,2}$")
_SLURM_MEM = re.compile(r"^\d{1,9}[KMGT]?$")
_SBATCH_OPTION = re.compile(r"^--?[A-Za-z][A-Za-z0-9\-]*([= ][^\x00-\x1f\x7f]*)?$")


def _match(pattern: re.Pattern[str], value: str | None, what: str) -> str | None:
    if value is not None and not pattern.match(value):
        raise ValueError(f"{what} {value!r} is not a valid Slurm {what}")
    return value


class SlurmConfig(_Model):
    """Where and with what a sweep's agents run on Slurm: one array task per agent."""

    partition: str | None = None
    time: str | None = None
    gpus_per_agent: int = Field(default=0, ge=0, le=64)
    cpus_per_agent: int = Field(default=1, ge=1, le=1024)
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = ()

    @field_validator("partition", "account", "qos")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return _match(_SLURM_NAME, value, "name")

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str | None) -> str | None:
        return _match(_SLURM_TIME, value, "time")

    @field_validator("mem")
    @classmethod
    def _check_mem(cls, value: str | None) -> str | None:
        return _match(_SLURM_MEM, value, "mem")

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for line in value:
            # Each line becomes one `#SBATCH` line: a newline would start a command.
            if any(c in line for c in "\r\n\x00"):
                raise ValueError(f"sbatch line {line!r} must be one line")
            if not _SBATCH_OPTION.match(line) or len(line) > 200:
                raise ValueError(
                    f"sbatch line {line!r} must be one option such as --constraint=a100"
                )
        return value


# Frozen, so one shared default serves every project the lab file does not name.
_DEFAULT_PROJECT = ProjectConfig()


class SweepDef(_Model):
    """A sweep the lab can start from the chat."""

    file: Path
    project: str
    entity: str | None = None
    workdir: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    launcher: LauncherKind = "local"
    slurm: SlurmConfig = SlurmConfig()
    #: Where agents write their logs (a shared filesystem for Slurm); default the data dir.
    log_dir: Path | None = None
    #: The parameter `/rerun` varies to repeat a run with other seeds.
    seed_param: str = "seed"
    #: How this sweep's runs are told; unset, its project's `sweep_runs` decides.
    sweep_runs: SweepRuns | None = None

    @field_validator("project")
    @classmethod
    def _check_project(cls, value: str) -> str:
        return check_name(value, "project")


_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Telegram user ids are positive and fit in 52 bits.
_MAX_TELEGRAM_ID = 2**52


class QuietHours(_Model):
    """A daily range of wall-clock time, such as 22:00-08:00, that may cross midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Read "HH:MM-HH:MM", or raise ValueError naming what is wrong."""
        match = _QUIET.match(text.strip())
        if match is None:
            raise ValueError(f'quiet {text!r} must be a range such as "22:00-08:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError(f"quiet {text!r} starts and ends at the same time")
        return cls(start=time(h1, m1), end=time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class PersonConfig(_Model):
    """A lab member: their Telegram user and when their private messages may wait."""

    telegram: int = Field(gt=0, lt=_MAX_TELEGRAM_ID)
    #: The name a mention shows; the W&B username when absent.
    name: str | None = Field(default=None, min_length=1, max_length=64)
    quiet: QuietHours | None = None
    #: The zone quiet hours are read in; else the lab's, else UTC.
    timezone: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # `alice: 123456789` is short for `alice: {telegram: 123456789}`.
        if isinstance(value, int) and not isinstance(value, bool):
            return {"telegram": value}
        if not isinstance(value, dict | PersonConfig):
            raise ValueError("must be a Telegram user id, or a mapping with telegram: <id>")
        return value

    @field_validator("quiet", mode="before")
    @classmethod
    def _check_quiet(cls, value: Any) -> Any:
        if isinstance(value, str):
            return QuietHours.parse(value)
        if value is not None and not isinstance(value, QuietHours):
            raise ValueError('quiet must be a range such as "22:00-08:00"')
        return value

    @field_validator("timezone")
    @classmethod
    def _check_person_tz(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


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
    #: Metric alert rules for every project; a project's own `alerts` come on top.
    alerts: tuple[AlertRule, ...] = ()
    # The lab's time zone, for chats that name none.
    timezone: str | None = None
    # Read commands may show any project the W&B key reaches, not only the lab's.
    open_projects: bool = False
    #: W&B username → the lab member's Telegram user (mentions, /mine, quiet hours).
    people: dict[str, PersonConfig] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _check_lab_tz(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    def chat_zone(self, chat_id: int) -> str:
        """Return the time zone a chat reads times in: its own, its digest's, the lab's, UTC."""
        chat = self.chat(chat_id)
        if chat is not None:
            if chat.timezone:
                return chat.timezone
            digest = chat.digest
            if digest is not None and ("timezone" in digest.model_fields_set or not self.timezone):
                return digest.timezone
        return self.timezone or "UTC"

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

    @field_validator("people")
    @classmethod
    def _check_people(cls, value: dict[str, PersonConfig]) -> dict[str, PersonConfig]:
        seen: dict[int, str] = {}
        for username, person in value.items():
            check_name(username, "W&B username")
            if person.telegram in seen:
                raise ValueError(
                    f"Telegram user {person.telegram} is both "
                    f"{seen[person.telegram]!r} and {username!r}"
                )
            seen[person.telegram] = username
        return value

    def person(self, telegram_id: int | None) -> tuple[str, PersonConfig] | None:
        """Return the W&B username and settings of a Telegram user in `people:`."""
        return next(
            ((name, p) for name, p in self.people.items() if p.telegram == telegram_id), None
        )

    def person_zone(self, person: PersonConfig) -> str:
        """Return the time zone a person's quiet hours are read in."""
        return person.timezone or self.timezone or "UTC"

    @model_validator(mode="after")
    def _check_alerts(self) -> LabConfig:
        chats = {chat.id for chat in self.chats}
        scopes = {"alerts": self.alerts}
        scopes |= {f"projects.{n}.alerts": p.alerts for n, p in self.projects.items()}
        for where, rules in scopes.items():
            for rule in rules:
                unknown = [c for c in rule.chats if c not in chats]
                if unknown:
                    raise ValueError(f"{where}: {rule.name}: chat {unknown[0]} is not a lab chat")
        for where, names in [("alerts", [r.name for r in self.alerts])] + [
            (f"projects.{n}.alerts", [r.name for r in self.alert_rules(n)]) for n in self.projects
        ]:
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"{where}: two alerts are named {twice[0]!r}")
        return self

    def alert_rules(self, project: str) -> tuple[AlertRule, ...]:
        """Return the alert rules that watch a project: the lab's, then the project's own."""
        own = self.projects[project].alerts if project in self.projects else ()
        return (*self.alerts, *own)

    def chat(self, chat_id: int) -> ChatConfig | None:
        """Return the lab's chat with this id, if it is one."""
        return next((c for c in self.chats if c.id == chat_id), None)

    def is_admin(self, user_id: int | None) -> bool:
        """Tell whether a Telegram user may start or stop things."""
        return user_id is not None and user_id in self.admins

    def project(self, name: str) -> ProjectConfig:
        """Return a project's settings, defaults when the lab file names none."""
        return self.projects.get(name, _DEFAULT_PROJECT)

    def sweep_runs_of(self, sweep: str, project: str) -> SweepRuns:
        """Return how a started sweep's runs are told: its own setting, else its project's."""
        definition = self.sweeps.get(sweep)
        own = definition.sweep_runs if definition is not None else None
        return own or self.project(project).sweep_runs

    def entity_of(self, project: str) -> str:
        """Return the entity a bare project name lives under: its own, else the lab's."""
        settings = self.projects.get(project)
        return (settings.entity if settings else None) or self.entity

    def resolve_sweep_paths(self, base: Path) -> LabConfig:
        """Return a copy whose sweep files and workdirs are absolute, relative to `base`."""
        sweeps = {}
        for name, sweep in self.sweeps.items():
            file = sweep.file if sweep.file.is_absolute() else base / sweep.file
            workdir = sweep.workdir or file.parent
            workdir = workdir if workdir.is_absolute() else base / workdir
            update: dict[str, Path] = {"file": file, "workdir": workdir}
            if sweep.log_dir is not None and not sweep.log_dir.is_absolute():
                update["log_dir"] = base / sweep.log_dir
            sweeps[name] = sweep.model_copy(update=update)
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
