"""The periodic digest of a chat: what ended, what is best, what is still running."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.domain.best import fmt_change, normalize_goal, rank_runs, run_url
from bot.domain.format import (
    STATE_MARKERS,
    TELEGRAM_TEXT_LIMIT,
    esc,
    fmt_number,
    link,
    truncate,
    utf16_len,
)
from wandb_client.models import RunSnapshot, SweepSnapshot

if TYPE_CHECKING:
    from config.lab import LabConfig

ENDED_STATES: tuple[str, ...] = ("finished", "failed", "crashed", "killed", "preempted")
ACTIVE_SWEEP_STATES = frozenset({"RUNNING", "PENDING", "PAUSED"})
RUNNING_NAMED = 3
_WEEK = 7


@dataclass(frozen=True, slots=True)
class RunningRun:
    """A run still going when the digest was built."""

    name: str
    url: str
    step: int | None
    runtime_s: float | None


@dataclass(frozen=True, slots=True)
class BestRun:
    """The best run of a project or sweep by its metric."""

    name: str
    url: str
    value: float


@dataclass(frozen=True, slots=True)
class ProjectDigest:
    """One project's part of a digest."""

    name: str
    ended: tuple[tuple[str, int], ...]
    running: tuple[RunningRun, ...]
    metric: str | None
    goal: str
    best: BestRun | None
    previous_best: float | None

    def count(self, state: str) -> int:
        """Return how many runs ended in `state` during the period."""
        return dict(self.ended).get(state, 0)

    @property
    def ended_total(self) -> int:
        """Return how many runs ended during the period."""
        return sum(n for _, n in self.ended)

    @property
    def change(self) -> float | None:
        """Return the best value minus the previous digest's best, when both are known."""
        if self.best is None or self.previous_best is None:
            return None
        return self.best.value - self.previous_best

    @property
    def quiet(self) -> bool:
        """Tell whether nothing ended and nothing is running in this project."""
        return self.ended_total == 0 and not self.running


@dataclass(frozen=True, slots=True)
class SweepDigest:
    """One active sweep's part of a digest."""

    id: str
    name: str
    url: str
    project: str
    state: str
    done: int
    total: int | None
    metric: str | None
    best: BestRun | None


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything a chat's digest says, computed once and rendered as text and a chart."""

    chat_title: str
    since: datetime
    now: datetime
    projects: tuple[ProjectDigest, ...]
    sweeps: tuple[SweepDigest, ...]
    # Projects W&B could not answer for, each with why in words: one line each, not a veto.
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        """Tell whether nothing ended, nothing runs and no sweep is active."""
        return all(p.quiet for p in self.projects) and not self.sweeps

    def best_values(self) -> dict[str, float | None]:
        """Return each project's best value, to pass as `previous_best` next time."""
        return {p.name: p.best.value if p.best else None for p in self.projects}


def _aware(moment: datetime) -> datetime:
    # W&B timestamps are UTC; a naive one from an older snapshot must not break comparisons.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def ended_at(run: RunSnapshot) -> datetime | None:
    """Return when a run ended, as far as the chat could have heard of it.

    A run that ended by itself ended at its last heartbeat. A crash is known only when W&B
    gives up waiting for the next one, minutes later, and says so by moving `updatedAt`:
    counting it at its last heartbeat made a crash just before a digest fall into the
    window already sent.
    """
    moment = run.heartbeat_at or run.updated_at
    if run.state == "crashed" and run.updated_at is not None:
        moment = max(_aware(run.updated_at), _aware(moment or run.updated_at))
    return _aware(moment) if moment is not None else None


def _counted_end(run: RunSnapshot, ended: Mapping[str, datetime | None] | None) -> datetime | None:
    if ended is None or run.path not in ended:
        return ended_at(run)
    moment = ended[run.path]
    if moment is not None:
        return _aware(moment)
    # A crash the monitor has not seen yet belongs to the period in which it sees it.
    return None if run.state == "crashed" else ended_at(run)


def _best(
    runs: Sequence[RunSnapshot], metric: str | None, goal: str, ui_url: str
) -> BestRun | None:
    if metric is None:
        return None
    ranked = rank_runs(runs, metric, goal)
    if not ranked:
        return None
    run, value = ranked[0]
    return BestRun(run.display_name, run_url(run, ui_url), value)


def build_project_digest(
    name: str,
    runs: Sequence[RunSnapshot],
    *,
    metric: str | None,
    goal: str,
    previous_best: float | None,
    since: datetime,
    now: datetime,
    ui_url: str = "",
    ended: Mapping[str, datetime | None] | None = None,
) -> ProjectDigest:
    """Summarise one project's runs for the half-open period [since, now).

    `ended` (run path → when the monitor saw it end, None while it last saw it live)
    decides which period a run's end belongs to, so each end counts once; see
    `events.end_moment`.
    """
    start, end = _aware(since), _aware(now)
    counts = dict.fromkeys(ENDED_STATES, 0)
    for run in runs:
        moment = _counted_end(run, ended)
        if run.state in counts and moment is not None and start <= moment < end:
            counts[run.state] += 1
    running = tuple(
        RunningRun(run.display_name, run_url(run, ui_url), run.step, run.elapsed_s)
        for run in runs
        if run.state == "running"
    )
    return ProjectDigest(
        name=name,
        ended=tuple((state, n) for state, n in counts.items() if n),
        running=running,
        metric=metric,
        goal=normalize_goal(goal),
        best=_best(runs, metric, goal, ui_url),
        previous_best=previous_best,
    )


def build_digest(
    *,
    chat_title: str,
    projects: Mapping[str, Sequence[RunSnapshot]],
    sweeps: Sequence[tuple[SweepSnapshot, int]],
    previous_best: Mapping[str, float | None],
    lab: LabConfig,
    since: datetime,
    now: datetime,
    ui_url: str = "",
    unreadable: Mapping[str, str] | None = None,
    ended: Mapping[str, datetime | None] | None = None,
) -> Digest:
    """Build a chat's digest from its projects' runs and sweeps (with their done counts).

    `unreadable` maps each project W&B could not answer for to why, in words.
    """
    project_digests = []
    for name, runs in projects.items():
        settings = lab.project(name)
        project_digests.append(
            build_project_digest(
                name,
                runs,
                metric=settings.metric,
                goal=settings.goal,
                previous_best=previous_best.get(name),
                since=since,
                now=now,
                ui_url=ui_url,
                ended=ended,
            )
        )
    sweep_digests = []
    for sweep, done in sweeps:
        if sweep.state.upper() not in ACTIVE_SWEEP_STATES:
            continue
        settings = lab.project(sweep.project)
        metric = sweep.metric or settings.metric
        goal = sweep.goal or settings.goal
        sweep_runs = [r for r in projects.get(sweep.project, ()) if r.sweep == sweep.id]
        sweep_digests.append(
            SweepDigest(
                id=sweep.id,
                name=sweep.display_name or sweep.id,
                url=sweep.url,
                project=sweep.project,
                state=sweep.state.lower(),
                done=done,
                total=sweep.run_cap,
                metric=metric,
                best=_best(sweep_runs, metric, goal, ui_url),
            )
        )
    return Digest(
        chat_title=chat_title,
        since=_aware(since),
        now=_aware(now),
        projects=tuple(project_digests),
        sweeps=tuple(sweep_digests),
        unreadable=tuple(sorted((unreadable or {}).items())),
    )


def _zone(tz: tzinfo | str | None) -> tzinfo:
    if tz is None:
        return UTC
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def fmt_day(moment: datetime) -> str:
    """Format a date as `Mon 23 Nov`, independent of the locale."""
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{days[moment.weekday()]} {moment.day} {months[moment.month - 1]}"


def fmt_since(since: datetime, now: datetime) -> str:
    """Say when a period began, relative to `now` (both already in the chat's zone)."""
    clock = since.strftime("%H:%M")
    days = (now.date() - since.date()).days
    if days <= 0:
        return f"since {clock}"
    if days == 1:
        return f"since {clock} yesterday"
    if days < _WEEK:
        return f"since {fmt_day(since).split()[0]} {clock}"
    return f"since {fmt_day(since)} {clock}"


def _project_line(project: ProjectDigest) -> str:
    name = f"<b>{esc(truncate(project.name))}</b>"
    parts = [f"{n} {STATE_MARKERS[state]}" for state, n in project.ended]
    if project.running:
        parts.append(f"{len(project.running)} {STATE_MARKERS['running']}")
    if not parts:
        return f"{name}: quiet"
    line = f"{name}: {' '.join(parts)}"
    if project.best is not None and project.metric is not None:
        line += f" · best {esc(truncate(project.metric, 40))} {fmt_number(project.best.value)}"
        change = project.change
        if change is not None and change != 0:
            line += f" ({fmt_change(change, project.best.value)})"
        line += f" {link(project.best.url, truncate(project.best.name, 60))}"
    return line


def _running_line(projects: Sequence[ProjectDigest]) -> str | None:
    running = [r for p in projects for r in p.running]
    if not running:
        return None
    named = []
    for run in running[:RUNNING_NAMED]:
        where = f" at step {run.step}" if run.step is not None else ""
        named.append(f"{link(run.url, truncate(run.name, 40))}{where}")
    more = f" · +{len(running) - RUNNING_NAMED} more" if len(running) > RUNNING_NAMED else ""
    return f"{STATE_MARKERS['running']} running: {len(running)} · {', '.join(named)}{more}"


def _sweep_line(sweep: SweepDigest) -> str:
    progress = f"{sweep.done}/{sweep.total}" if sweep.total else f"{sweep.done} done"
    line = (
        f"{STATE_MARKERS['sweep']} sweep {link(sweep.url, truncate(sweep.name, 40))}"
        f" · {esc(truncate(sweep.project, 40))}: {progress}"
    )
    if sweep.state == "paused":
        line += " · paused"
    if sweep.best is not None and sweep.metric is not None:
        line += f" · best {esc(truncate(sweep.metric, 40))} {fmt_number(sweep.best.value)}"
    return line


def render_digest(digest: Digest, tz: tzinfo | str | None = None) -> str:
    """Render a digest as one message of at most 4096 characters, in the chat's time zone."""
    zone = _zone(tz)
    now = digest.now.astimezone(zone)
    since = fmt_since(digest.since.astimezone(zone), now)
    title = f"{STATE_MARKERS['digest']} <b>digest · {esc(truncate(digest.chat_title, 60))}</b>"
    problems = [
        f"<b>{esc(truncate(name))}</b>: {STATE_MARKERS['attention']} {esc(why)}"
        for name, why in digest.unreadable
    ]
    if digest.empty:
        return "\n".join([f"{title} · nothing ran {since}", *problems])
    lines = [f"{title} · {fmt_day(now)}, {since}"]
    lines += [_project_line(p) for p in digest.projects]
    lines += problems
    running = _running_line(digest.projects)
    if running:
        lines.append(running)
    lines += [_sweep_line(s) for s in digest.sweeps]
    return _fit(lines, TELEGRAM_TEXT_LIMIT)


def _fit(lines: list[str], limit: int) -> str:
    # A digest is one message followed by its chart, so overflow is summarised, not split.
    text = "\n".join(lines)
    if utf16_len(text) <= limit:
        return text
    kept: list[str] = []
    for index, line in enumerate(lines):
        tail = f"… and {len(lines) - index} more lines"
        if utf16_len("\n".join([*kept, line, tail])) > limit:
            return "\n".join([*kept, tail])
        kept.append(line)
    return "\n".join(kept)


@dataclass(frozen=True, slots=True)
class DigestChartRow:
    """One project's bar in the digest chart."""

    project: str
    counts: tuple[tuple[str, int], ...]
    metric: str | None
    best: float | None
    change: float | None


@dataclass(frozen=True, slots=True)
class DigestChartData:
    """What the digest chart draws: a stacked bar of ended runs per project, best annotated."""

    title: str
    rows: tuple[DigestChartRow, ...]

    @property
    def total(self) -> int:
        """Return how many runs the bars hold."""
        return sum(n for row in self.rows for _, n in row.counts)


def digest_chart_data(digest: Digest) -> DigestChartData:
    """Extract the chart's numbers from a digest."""
    rows = tuple(
        DigestChartRow(
            project=p.name,
            counts=(*p.ended, ("running", len(p.running))),
            metric=p.metric,
            best=p.best.value if p.best else None,
            change=p.change,
        )
        for p in digest.projects
    )
    return DigestChartData(
        title=f"digest · {digest.chat_title} · last {fmt_span(digest.now - digest.since)}",
        rows=rows,
    )


def fmt_span(span: timedelta) -> str:
    """Say how long a digest covers, coarsely: 5 min, 3h, 2 days."""
    minutes = span / timedelta(minutes=1)
    if minutes < 90:
        return f"{max(1, round(minutes))} min"
    hours = minutes / 60
    return f"{round(hours)}h" if hours < 48 else f"{round(hours / 24)} days"
