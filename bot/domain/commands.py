"""Parse chat command arguments into request objects, or refuse with a UsageError."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from html import escape
from typing import Generic, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from config.lab import LabConfig, check_name

DEFAULT_SWEEP_COUNT = 10
DEFAULT_AGENTS = 1
DEFAULT_RUNS_LIMIT = 10
MAX_RUNS_LIMIT = 50
MAX_SILENCE_S = 7 * 86400
RUN_STATES = ("running", "pending", "finished", "failed", "crashed", "killed", "preempted")
# A run id, or a display name as W&B allows it (any letters, digits and punctuation, so
# "bert.v2" and "модель-1" too), minus what would break a path or the chat's HTML.
_RUN_ID = re.compile(r"^\w[^\s/<>&\"'`]{0,127}$")
_SWEEP_ID = re.compile(r"^[a-z0-9]{4,32}$")
_METRIC = re.compile(r"^[\w./\-]{1,128}$")
_DURATION = re.compile(r"^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$")
C = TypeVar("C")
_GOALS: dict[str, Literal["maximize", "minimize"]] = {
    "max": "maximize",
    "maximize": "maximize",
    "min": "minimize",
    "minimize": "minimize",
}

# Each command's usage, written once: parsers quote it in their errors and the command table
# (handlers/table.py) shows it in /help.
RUN_TARGET = "run name or id|project/run|entity/project/run|run URL"
SWEEP_TARGET = "sweep id|name|entity/project/id|sweep URL"
RUNS_USAGE = f"/runs <project> [state] [limit, default {DEFAULT_RUNS_LIMIT}] [branch=<name>]"
BEST_USAGE = "/best <project|sweep id|entity/project/sweeps/id|sweep URL> [metric] [min|max]"
PLOT_USAGE = f"/plot <{RUN_TARGET}> [metric ...] · /plot sweep <sweep id|URL> [metric]"
STOP_USAGE = f"/stop <{RUN_TARGET}>"
SILENCE_USAGE = "/silence <project> <duration, e.g. 30m, 2h, 1d>"
MINE_USAGE = "/mine [off]"
SWEEP_START_USAGE = (
    f"/sweep start <name> [count=N, default {DEFAULT_SWEEP_COUNT}] "
    f"[agents=K, default {DEFAULT_AGENTS}] [gpus=0,1] [project=P] [sweep=ID]"
)
SWEEP_CONTROL_USAGE = f"/sweep stop|cancel|pause|resume <{SWEEP_TARGET}>"
SWEEP_STATUS_USAGE = f"/sweep status [{SWEEP_TARGET}]"
SWEEP_AGENTS_USAGE = f"/sweep agents <{SWEEP_TARGET}>"
SWEEP_SCALE_USAGE = f"/sweep scale <{SWEEP_TARGET}> agents=K [gpus=0,1]"
SWEEP_ACTIONS_USAGE = "/sweep start|stop|cancel|pause|resume|status|agents|scale ..."
SWEEP_USAGE = "\n".join(
    (
        SWEEP_START_USAGE,
        SWEEP_CONTROL_USAGE,
        SWEEP_STATUS_USAGE,
        SWEEP_AGENTS_USAGE,
        SWEEP_SCALE_USAGE,
    )
)
DEFAULT_RERUN_SEEDS = 3
# A rerun checks a result over seeds; more than this many is a new experiment, not a check.
MAX_RERUN_SEEDS = 20
RERUN_USAGE = (
    f"/rerun <run> [seeds=N, default {DEFAULT_RERUN_SEEDS}, at most {MAX_RERUN_SEEDS}] "
    "[count=N, at most seeds] [sweep=<lab sweep>]"
)
COMPARE_USAGE = "/compare <run> <run> [metric]"


def project_usage(command: str) -> str:
    """Return the usage of a command whose one argument is a project."""
    return f"/{command} <project|entity/project>"


class Role(Enum):
    """Who may use a command or press a button."""

    MEMBER = "member"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class CommandSpec(Generic[C]):
    """One command: its name, handler, menu summary, full usage and who may use it.

    `member_subcommands` opens some sub-commands of an admin command to every member
    (`/sweep status`). `people` lets a person of the lab file's `people:` use the command
    in their private chat with the bot, even when that chat is not a lab chat.
    """

    name: str
    callback: C
    summary: str
    usage: str
    role: Role = Role.MEMBER
    member_subcommands: tuple[str, ...] = ()
    people: bool = False

    def needs_admin(self, args: Sequence[str]) -> bool:
        """Tell whether these arguments make the command an admin's."""
        if self.role is not Role.ADMIN:
            return False
        return not (args and args[0].lower() in self.member_subcommands)

    @property
    def menu_text(self) -> str:
        """Return the line Telegram's command menu shows."""
        return f"{self.summary} (admins)" if self.role is Role.ADMIN else self.summary


def render_help(specs: Sequence[CommandSpec[C]]) -> str:
    """Render /help: every usage line of every command, admin ones marked with a lock.

    A command's summary follows its first usage line only: it says what the command is for,
    and repeated under `/sweep status` it would say the wrong thing.
    """
    lines = []
    for spec in specs:
        for i, usage in enumerate(spec.usage.splitlines()):
            sub = usage.split()[1].lower() if len(usage.split()) > 1 else ""
            lock = " 🔒" if spec.needs_admin([sub]) else ""
            summary = "" if i else f" — {escape(spec.summary)}"
            lines.append(f"<code>{escape(usage)}</code>{lock}{summary}")
    locks = any("🔒" in line for line in lines)
    return "\n".join(["<b>Commands</b>" + (" (🔒 lab admins only)" if locks else ""), *lines])


class RefusedError(Exception):
    """The bot will not do what was asked; the message is one line for the chat."""


class UsageError(Exception):
    """A command's arguments are wrong; `reason` says how, `usage` how to write it."""

    def __init__(self, reason: str, usage: str) -> None:
        super().__init__(f"{reason} Usage: {usage}")
        self.reason = reason
        self.usage = usage


@dataclass(frozen=True, slots=True)
class RunRef:
    """Point at one W&B run."""

    entity: str
    project: str
    run_id: str

    @property
    def path(self) -> str:
        """Return `entity/project/run_id`."""
        return f"{self.entity}/{self.project}/{self.run_id}"


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """Point at one W&B project."""

    entity: str
    project: str

    @property
    def path(self) -> str:
        """Return `entity/project`."""
        return f"{self.entity}/{self.project}"


@dataclass(frozen=True, slots=True)
class SweepRef:
    """Point at a sweep: by W&B id (project and entity when given) or by lab sweep name."""

    sweep_id: str | None = None
    project: str | None = None
    entity: str | None = None
    name: str | None = None

    @property
    def path(self) -> str | None:
        """Return `entity/project/id` when all three are known."""
        if self.sweep_id and self.project and self.entity:
            return f"{self.entity}/{self.project}/{self.sweep_id}"
        return None


@dataclass(frozen=True, slots=True)
class SweepStart:
    """Start a lab sweep (or attach agents to an existing W&B sweep)."""

    name: str
    count: int
    agents: int
    gpus: tuple[int, ...]
    project: str
    entity: str
    sweep_id: str | None = None


@dataclass(frozen=True, slots=True)
class SweepStop:
    """Stop a sweep; `cancel` also kills its running runs."""

    sweep_ref: SweepRef
    cancel: bool = False


@dataclass(frozen=True, slots=True)
class SweepPause:
    """Pause a sweep."""

    ref: SweepRef


@dataclass(frozen=True, slots=True)
class SweepResume:
    """Resume a paused sweep."""

    ref: SweepRef


@dataclass(frozen=True, slots=True)
class SweepStatus:
    """Show one sweep's progress, or every sweep's when `ref` is None."""

    ref: SweepRef | None = None


@dataclass(frozen=True, slots=True)
class SweepAgents:
    """List a sweep's agents one by one (admins also get a Stop button per agent)."""

    ref: SweepRef


@dataclass(frozen=True, slots=True)
class SweepScale:
    """Add or stop agents of a running sweep until it has `agents` of them."""

    ref: SweepRef
    agents: int
    gpus: tuple[int, ...] = ()


SweepRequest = (
    SweepStart | SweepStop | SweepPause | SweepResume | SweepStatus | SweepAgents | SweepScale
)


@dataclass(frozen=True, slots=True)
class BestRequest:
    """Find the best run of a project or a sweep."""

    target: str
    is_sweep: bool
    metric: str | None
    goal: Literal["maximize", "minimize"] | None
    entity: str | None
    project: str | None
    sweep_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunsRequest:
    """List a project's runs."""

    project: str
    entity: str
    state: str | None
    limit: int
    # Only runs whose code came from this branch (CI's tag or W&B's git data).
    branch: str | None = None


@dataclass(frozen=True, slots=True)
class PlotRequest:
    """Chart some of a run's metrics (the project's when none are named)."""

    run: RunRef
    metrics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepPlotRequest:
    """Chart a sweep: its metric (the sweep's own when None) against each hyperparameter."""

    sweep: SweepRef
    metric: str | None


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """Mute a project's notifications in a chat for `seconds`."""

    project: ProjectRef
    seconds: float


# --- pieces -------------------------------------------------------------------------------


def _shown(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _name(value: str, what: str, usage: str) -> str:
    try:
        return check_name(value, what)
    except ValueError:
        raise UsageError(
            f'{what.capitalize()} "{_shown(value)}" may use only letters, digits, - _ and .',
            usage,
        ) from None


def _run_id(value: str, usage: str) -> str:
    if not _RUN_ID.match(value):
        raise UsageError(f'Run "{_shown(value)}" is not a W&B run id or name.', usage)
    return value


def _sweep_id(value: str, usage: str) -> str:
    if not _SWEEP_ID.match(value):
        raise UsageError(
            f'Sweep id "{_shown(value)}" is not a W&B sweep id (lowercase letters and digits).',
            usage,
        )
    return value


def _url_parts(text: str, usage: str) -> list[str]:
    """Return the path segments of a W&B URL (any host), ignoring query and fragment."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f'"{_shown(text)}" is not a W&B link.', usage)
    return [unquote(p) for p in parts.path.split("/") if p]


def _positive_int(key: str, value: str, maximum: int, usage: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise UsageError(
            f'{key} must be a whole number from 1 to {maximum}, not "{_shown(value)}".', usage
        )
    number = int(value)
    if not 1 <= number <= maximum:
        raise UsageError(f"{key} must be from 1 to {maximum}, not {number}.", usage)
    return number


def _gpus(value: str, usage: str) -> tuple[int, ...]:
    items = value.split(",")
    if not value or not all(re.fullmatch(r"\d{1,3}", item) for item in items):
        raise UsageError(
            f'gpus must be a comma list of GPU numbers such as 0,1, not "{_shown(value)}".', usage
        )
    gpus = tuple(int(item) for item in items)
    if len(set(gpus)) != len(gpus):
        raise UsageError(f'gpus lists a GPU twice: "{_shown(value)}".', usage)
    return gpus


def _known(items: Sequence[str]) -> str:
    return ", ".join(sorted(items)) if items else "none"


def _key_values(args: Sequence[str], known: Sequence[str], usage: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        key = key.lower()
        if not sep:
            raise UsageError(f'Expected key=value, got "{_shown(arg)}".', usage)
        if key not in known:
            raise UsageError(f'Unknown option "{_shown(key)}". Known: {", ".join(known)}.', usage)
        if key in out:
            raise UsageError(f"{key} is given twice.", usage)
        out[key] = value
    return out


# --- references -----------------------------------------------------------------------------


def parse_run_ref(text: str, default_entity: str, default_project: str | None) -> RunRef:
    """Parse a run id, `project/id`, `entity/project/id` or a W&B run URL."""
    usage = STOP_USAGE
    text = text.strip()
    if not text:
        raise UsageError("Say which run.", usage)
    if "://" in text:
        parts = _url_parts(text, usage)
        if len(parts) < 4 or parts[2] != "runs":
            raise UsageError(f'"{_shown(text)}" is not a link to a W&B run.', usage)
        entity, project, run_id = parts[0], parts[1], parts[3]
    else:
        parts = text.split("/")
        if len(parts) == 1:
            if default_project is None:
                raise UsageError(
                    f'Run "{_shown(text)}" needs its project: write project/{_shown(text)}.',
                    usage,
                )
            entity, project, run_id = default_entity, default_project, parts[0]
        elif len(parts) == 2:
            entity, project, run_id = default_entity, parts[0], parts[1]
        elif len(parts) == 3:
            entity, project, run_id = parts
        elif len(parts) == 4 and parts[2] == "runs":
            entity, project, run_id = parts[0], parts[1], parts[3]
        else:
            raise UsageError(f'"{_shown(text)}" is not a run reference.', usage)
    return RunRef(
        _name(entity, "entity", usage), _name(project, "project", usage), _run_id(run_id, usage)
    )


def _project_ref(text: str, lab: LabConfig, usage: str) -> ProjectRef:
    if "://" in text:
        parts = _url_parts(text, usage)
        if len(parts) < 2:
            raise UsageError(f'"{_shown(text)}" is not a link to a W&B project.', usage)
        entity, project = parts[0], parts[1]
    elif text.count("/") == 1:
        entity, project = text.split("/")
    elif "/" in text:
        raise UsageError(
            f'"{_shown(text)}" is not a project: write project or entity/project.', usage
        )
    else:
        project = text
        entity = lab.entity_of(text)
    return ProjectRef(_name(entity, "entity", usage), _name(project, "project", usage))


def parse_project_arg(args: Sequence[str], lab: LabConfig, command: str = "watch") -> ProjectRef:
    """Parse the single project argument of /watch, /unwatch and /unsilence."""
    usage = project_usage(command)
    if len(args) != 1:
        raise UsageError("Give exactly one project." if args else "Say which project.", usage)
    return _project_ref(args[0], lab, usage)


def _sweep_ref(text: str, lab: LabConfig, usage: str) -> SweepRef:
    if text in lab.sweeps:
        return SweepRef(name=text)
    if "://" in text:
        parts = _url_parts(text, usage)
        if len(parts) < 4 or parts[2] != "sweeps":
            raise UsageError(f'"{_shown(text)}" is not a link to a W&B sweep.', usage)
        entity, project, sweep = parts[0], parts[1], parts[3]
    else:
        parts = text.split("/")
        if len(parts) == 1:
            if not _SWEEP_ID.match(text):
                known = _known(list(lab.sweeps))
                raise UsageError(f'Unknown sweep "{_shown(text)}". Known: {known}.', usage)
            return SweepRef(sweep_id=text)
        if len(parts) == 2:
            return SweepRef(
                sweep_id=_sweep_id(parts[1], usage), project=_name(parts[0], "project", usage)
            )
        if len(parts) == 3:
            entity, project, sweep = parts
        elif len(parts) == 4 and parts[2] == "sweeps":
            entity, project, sweep = parts[0], parts[1], parts[3]
        else:
            raise UsageError(f'"{_shown(text)}" is not a sweep reference.', usage)
    return SweepRef(
        sweep_id=_sweep_id(sweep, usage),
        project=_name(project, "project", usage),
        entity=_name(entity, "entity", usage),
    )


# --- commands -------------------------------------------------------------------------------


def parse_sweep(
    args: Sequence[str], lab: LabConfig, *, max_count: int, max_agents: int
) -> SweepRequest:
    """Parse `/sweep start|stop|cancel|pause|resume|status ...`."""
    if not args:
        raise UsageError("Say what to do with the sweep.", SWEEP_ACTIONS_USAGE)
    sub, rest = args[0].lower(), list(args[1:])
    if sub == "start":
        return _parse_sweep_start(rest, lab, max_count=max_count, max_agents=max_agents)
    if sub == "scale":
        return _parse_sweep_scale(rest, lab, max_agents=max_agents)
    if sub not in ("stop", "cancel", "pause", "resume", "status", "agents"):
        raise UsageError(f'Unknown sweep action "{_shown(args[0])}".', SWEEP_ACTIONS_USAGE)
    usage = {"status": SWEEP_STATUS_USAGE, "agents": SWEEP_AGENTS_USAGE}.get(
        sub, f"/sweep {sub} <{SWEEP_TARGET}>"
    )
    if len(rest) > 1:
        raise UsageError("Give one sweep.", usage)
    if not rest:
        if sub == "status":
            return SweepStatus(None)
        raise UsageError("Say which sweep.", usage)
    ref = _sweep_ref(rest[0], lab, usage)
    if sub in ("stop", "cancel"):
        return SweepStop(ref, cancel=sub == "cancel")
    if sub == "pause":
        return SweepPause(ref)
    if sub == "resume":
        return SweepResume(ref)
    if sub == "agents":
        return SweepAgents(ref)
    return SweepStatus(ref)


def _parse_sweep_scale(args: Sequence[str], lab: LabConfig, *, max_agents: int) -> SweepScale:
    """Parse `/sweep scale <sweep> agents=K [gpus=…]`; K is 1 to `max_agents`.

    Zero is refused: a sweep with no agent is what Pause (runs wait) or Stop (it ends) are for.
    """
    usage = SWEEP_SCALE_USAGE
    if not args or "=" in args[0]:
        raise UsageError("Say which sweep.", usage)
    ref = _sweep_ref(args[0], lab, usage)
    options = _key_values(args[1:], ("agents", "gpus"), usage)
    if "agents" not in options:
        raise UsageError("Say how many agents: agents=K.", usage)
    if re.fullmatch(r"0+", options["agents"]):
        raise UsageError(
            "A sweep keeps at least 1 agent: /sweep pause holds its runs, /sweep stop ends it.",
            usage,
        )
    agents = _positive_int("agents", options["agents"], max_agents, usage)
    gpus = _gpus(options["gpus"], usage) if "gpus" in options else ()
    return SweepScale(ref, agents, gpus)


def _parse_sweep_start(
    args: Sequence[str], lab: LabConfig, *, max_count: int, max_agents: int
) -> SweepStart:
    usage = SWEEP_START_USAGE
    if not args or "=" in args[0]:
        raise UsageError(f"Say which sweep. Known: {_known(list(lab.sweeps))}.", usage)
    name = args[0]
    if name not in lab.sweeps:
        raise UsageError(
            f'Unknown sweep "{_shown(name)}". Known: {_known(list(lab.sweeps))}.', usage
        )
    options = _key_values(args[1:], ("count", "agents", "gpus", "project", "sweep"), usage)
    sweep = lab.sweeps[name]
    count = (
        _positive_int("count", options["count"], max_count, usage)
        if "count" in options
        else min(DEFAULT_SWEEP_COUNT, max_count)
    )
    agents = (
        _positive_int("agents", options["agents"], max_agents, usage)
        if "agents" in options
        else min(DEFAULT_AGENTS, max_agents)
    )
    gpus = _gpus(options["gpus"], usage) if "gpus" in options else ()
    project = _name(options["project"], "project", usage) if "project" in options else sweep.project
    sweep_id = _sweep_id(options["sweep"], usage) if "sweep" in options else None
    entity = sweep.entity or lab.entity_of(project)
    return SweepStart(name, count, agents, gpus, project, entity, sweep_id)


def _looks_like_project(text: str, lab: LabConfig) -> bool:
    if text in lab.projects:
        return True
    if any(s.project == text for s in lab.sweeps.values()):
        return True
    return any(text in (p, p.rpartition("/")[2]) for chat in lab.chats for p in chat.projects)


def parse_best(
    args: Sequence[str], lab: LabConfig, *, default_project: str | None = None
) -> BestRequest:
    """Parse `/best <project|sweep id|entity/project/sweeps/id|sweep URL> [metric] [min|max]`.

    A bare word is a project when the lab knows it as one; otherwise an 8-ish character
    lowercase id is taken for a sweep id (its project left for the caller to find). With
    no arguments, a chat of one project means that project.
    """
    usage = BEST_USAGE
    if not args and default_project:
        args = [default_project]
    if not args:
        raise UsageError("Say which project or sweep.", usage)
    if len(args) > 3:
        raise UsageError("Too many arguments.", usage)
    target, rest = args[0], list(args[1:])
    goal = None
    if rest and rest[-1].lower() in _GOALS:
        goal = _GOALS[rest.pop().lower()]
    metric = None
    if rest:
        metric = rest.pop(0)
        if not _METRIC.match(metric):
            raise UsageError(f'"{_shown(metric)}" is not a metric name.', usage)
    if rest:
        raise UsageError(f'Expected min or max, not "{_shown(rest[0])}".', usage)
    is_sweep = "/sweeps/" in target or (
        "/" not in target
        and _SWEEP_ID.fullmatch(target) is not None
        and len(target) == 8
        and not _looks_like_project(target, lab)
    )
    if is_sweep:
        ref = _sweep_ref(target, lab, usage)
        path = ref.path or ref.sweep_id or ""
        return BestRequest(path, True, metric, goal, ref.entity, ref.project, ref.sweep_id)
    project = _project_ref(target, lab, usage)
    return BestRequest(project.path, False, metric, goal, project.entity, project.project)


def parse_runs(
    args: Sequence[str], lab: LabConfig, *, default_project: str | None = None
) -> RunsRequest:
    """Parse `/runs <project> [state] [limit] [branch=<name>]` (in any order after the project)."""
    usage = RUNS_USAGE
    rest = list(args)
    first = rest[0].lower() if rest else ""
    if rest and (first in RUN_STATES or first.isdigit() or "=" in first) and default_project:
        target = default_project
    elif rest:
        target = rest.pop(0)
    elif default_project:
        target = default_project
    else:
        raise UsageError("Say which project.", usage)
    project = _project_ref(target, lab, usage)
    state: str | None = None
    limit = DEFAULT_RUNS_LIMIT
    seen_limit = False
    branch: str | None = None
    for arg in rest:
        word = arg.lower()
        if word.startswith("branch=") and branch is None:
            branch = arg.split("=", 1)[1]
            if not branch or len(branch) > 250:
                raise UsageError("Say which branch: branch=<name>.", usage)
        elif word in RUN_STATES and state is None:
            state = word
        elif arg.isascii() and arg.isdigit() and not seen_limit:
            limit = _positive_int("limit", arg, MAX_RUNS_LIMIT, usage)
            seen_limit = True
        else:
            raise UsageError(
                f'"{_shown(arg)}" is neither a run state ({", ".join(RUN_STATES)}) nor a limit.',
                usage,
            )
    return RunsRequest(project.project, project.entity, state, limit, branch)


def parse_plot(
    args: Sequence[str], lab: LabConfig, *, default_project: str | None = None
) -> PlotRequest | SweepPlotRequest:
    """Parse `/plot <run> [metric ...]` or `/plot sweep <sweep> [metric]`.

    A target with `/sweeps/` in it (a path or a sweep URL) is a sweep too.
    """
    usage = PLOT_USAGE
    if not args:
        raise UsageError("Say which run.", usage)
    if args[0].lower() == "sweep" or "/sweeps/" in args[0]:
        return _parse_sweep_plot(args[1:] if args[0].lower() == "sweep" else args, lab, usage)
    try:
        run = parse_run_ref(args[0], lab.entity, default_project)
    except UsageError as exc:
        raise UsageError(exc.reason, usage) from None
    metrics = tuple(args[1:])
    for metric in metrics:
        if not _METRIC.match(metric):
            raise UsageError(f'"{_shown(metric)}" is not a metric name.', usage)
    if len(metrics) > 6:
        raise UsageError("Plot at most 6 metrics.", usage)
    return PlotRequest(run, metrics)


def _parse_sweep_plot(args: Sequence[str], lab: LabConfig, usage: str) -> SweepPlotRequest:
    if not args:
        raise UsageError("Say which sweep.", usage)
    if len(args) > 2:
        raise UsageError("A sweep is plotted by one metric.", usage)
    metric = args[1] if len(args) == 2 else None
    if metric is not None and not _METRIC.match(metric):
        raise UsageError(f'"{_shown(metric)}" is not a metric name.', usage)
    return SweepPlotRequest(_sweep_ref(args[0], lab, usage), metric)


def parse_duration(text: str) -> float | None:
    """Return seconds for `90s`, `30m`, `2h`, `1d` or `1h30m`, None when it is not one."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def parse_silence(args: Sequence[str], lab: LabConfig) -> SilenceRequest:
    """Parse `/silence <project> <duration>`."""
    usage = SILENCE_USAGE
    if len(args) != 2:
        raise UsageError("Give a project and a duration.", usage)
    project = _project_ref(args[0], lab, usage)
    seconds = parse_duration(args[1])
    if seconds is None or seconds <= 0:
        raise UsageError(f'"{_shown(args[1])}" is not a duration.', usage)
    if seconds > MAX_SILENCE_S:
        raise UsageError("Silence for at most 7d.", usage)
    return SilenceRequest(project, seconds)


# --- /rerun and /compare ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RerunRequest:
    """Rerun one run's config over `seeds` seeds, `count` runs, through a lab sweep entry.

    `sweep` names the lab file's sweep entry to run it with; None means the entry that
    started the run's own sweep.
    """

    run: RunRef
    seeds: int
    count: int
    sweep: str | None = None

    def arguments(self) -> list[str]:
        """Return the /rerun arguments that give this request back (a button keeps them)."""
        extra = [f"sweep={self.sweep}"] if self.sweep else []
        return [self.run.path, f"seeds={self.seeds}", f"count={self.count}", *extra]


@dataclass(frozen=True, slots=True)
class CompareRequest:
    """Compare two runs by one metric (None: the project's, else one both logged)."""

    first: RunRef
    second: RunRef
    metric: str | None = None

    def arguments(self) -> list[str]:
        """Return the /compare arguments that give this request back (a button keeps them)."""
        return [self.first.path, self.second.path, *([self.metric] if self.metric else [])]


def _run_arg(text: str, lab: LabConfig, default_project: str | None, usage: str) -> RunRef:
    try:
        return parse_run_ref(text, lab.entity, default_project)
    except UsageError as exc:
        raise UsageError(exc.reason, usage) from None


def parse_rerun(
    args: Sequence[str], lab: LabConfig, *, default_project: str | None = None
) -> RerunRequest:
    """Parse `/rerun <run> [seeds=N] [count=N] [sweep=<lab sweep>]`."""
    usage = RERUN_USAGE
    if not args or "=" in args[0]:
        raise UsageError("Say which run.", usage)
    run = _run_arg(args[0], lab, default_project, usage)
    options = _key_values(args[1:], ("seeds", "count", "sweep"), usage)
    seeds = (
        _positive_int("seeds", options["seeds"], MAX_RERUN_SEEDS, usage)
        if "seeds" in options
        else DEFAULT_RERUN_SEEDS
    )
    # A grid over N seeds has N runs: count can only leave some out.
    count = _positive_int("count", options["count"], seeds, usage) if "count" in options else seeds
    sweep = options.get("sweep")
    if sweep is not None and sweep not in lab.sweeps:
        raise UsageError(
            f'Unknown lab sweep "{_shown(sweep)}". Known: {_known(list(lab.sweeps))}.', usage
        )
    return RerunRequest(run, seeds, count, sweep)


def parse_compare(
    args: Sequence[str], lab: LabConfig, *, default_project: str | None = None
) -> CompareRequest:
    """Parse `/compare <run> <run> [metric]`."""
    usage = COMPARE_USAGE
    if len(args) < 2:
        raise UsageError("Name two runs." if args else "Say which two runs.", usage)
    if len(args) > 3:
        raise UsageError("Compare two runs by at most one metric.", usage)
    first = _run_arg(args[0], lab, default_project, usage)
    second = _run_arg(args[1], lab, default_project, usage)
    if first == second:
        raise UsageError("That is the same run twice; name two runs.", usage)
    metric = args[2] if len(args) == 3 else None
    if metric is not None and not _METRIC.match(metric):
        raise UsageError(f'"{_shown(metric)}" is not a metric name.', usage)
    return CompareRequest(first, second, metric)
