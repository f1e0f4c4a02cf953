"""Render every chat message the bot sends as Telegram HTML, with its buttons."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote

from bot.domain.events import TERMINAL_KINDS, RunEvent, logged_progress
from bot.domain.format import (
    STATE_MARKERS,
    TELEGRAM_TEXT_LIMIT,
    esc,
    fmt_ago,
    fmt_clock,
    fmt_duration,
    fmt_number,
    is_finite_number,
    link,
    split_message,
    truncate,
    utf16_len,
)
from bot.domain.origin import is_origin_tag, render_origin
from bot.domain.params import shown_params
from bot.domain.sweeps import ENDED_PHASES, PHASE_WORDS, SweepPhase, progress_bar
from bot.domain.why import FailureReason
from config.lab import EventKind, ProjectConfig
from wandb_client.models import RunSnapshot, SweepSnapshot

NAME_LIMIT = 64
KEY_LIMIT = 32
VALUE_LIMIT = 32
MAX_METRICS = 4
MAX_PARAMS = 6
MAX_TAGS = 6
WHY_LIMIT = 160
MAX_BURST_LINES = 80
MAX_BURST_PARTS = 4
_BURST_HEADER_RESERVE = 600
_KIND_ORDER: tuple[EventKind, ...] = (
    "finished",
    "failed",
    "crashed",
    "killed",
    "stalled",
    "recovered",
)


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: an action on a target (run or sweep path), or a plain link."""

    label: str
    action: str = ""
    target: str = ""
    url: str | None = None


Buttons = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class ProjectHealth:
    """What /status shows about one watched project."""

    project: str
    last_poll: datetime | None
    error: str | None = None
    running: int | None = None
    # W&B answered that the project does not exist: a typo, or no run logged there yet.
    missing: bool = False


# --- small pieces -----------------------------------------------------------------------


def _split_sweep(path: str) -> tuple[str, str, str]:
    entity, _, rest = path.partition("/")
    project, _, sweep = rest.partition("/")
    return entity, project, sweep


def _quote(part: str) -> str:
    return quote(part, safe="")


def sweep_url(ui_url: str, entity: str, project: str, sweep: str) -> str:
    """Return the W&B page of a sweep."""
    return f"{ui_url.rstrip('/')}/{_quote(entity)}/{_quote(project)}/sweeps/{_quote(sweep)}"


def project_url(ui_url: str, entity: str, project: str) -> str:
    """Return the W&B page of a project."""
    return f"{ui_url.rstrip('/')}/{_quote(entity)}/{_quote(project)}"


def run_link(run: RunSnapshot) -> str:
    """Return the run's display name, shortened and escaped, linked to its page."""
    return link(run.url, truncate(run.display_name or run.id, NAME_LIMIT))


def _sweep_link(run: RunSnapshot, ui_url: str) -> str:
    if not run.sweep:
        return ""
    url = sweep_url(ui_url, run.entity, run.project, run.sweep)
    return f" (sweep {link(url, truncate(run.sweep, KEY_LIMIT))})"


def _label(text: str) -> str:
    return esc(truncate(text, NAME_LIMIT))


def fmt_param(value: Any) -> str:
    """Format a config value as it was written: `lr=0.01`, not `lr=0.01000` (escaped)."""
    if isinstance(value, float) and math.isfinite(value):
        return esc(f"{value:.6g}")
    return fmt_value(value)


def fmt_value(value: Any) -> str:
    """Format a metric or config value for a chat line (escaped)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return esc(fmt_number(value))
    if value is None:
        return "—"
    if isinstance(value, Mapping | list | tuple):
        return esc(truncate(str(value), VALUE_LIMIT))
    return esc(truncate(str(value), VALUE_LIMIT))


def _is_number(value: Any) -> bool:
    """Tell whether a value is a number, NaN and infinities included (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# epoch, step, global_step, trainer/global_step, n_iter…: they count, they do not measure.
_COUNTER = re.compile(
    r"(^|[/._])(epochs?|steps?|global_step|iters?|iterations?|n_iter|batch(es|_idx)?|"
    r"samples_seen|examples_seen|tokens_seen)$",
    re.I,
)


def is_counter(name: str) -> bool:
    """Tell whether a summary key counts progress (epoch, step …) rather than measures it."""
    return _COUNTER.search(name) is not None


def metric_items(run: RunSnapshot, project: ProjectConfig) -> list[tuple[str, Any]]:
    """Pick the metrics a message shows: the project's key metrics, else its metric first."""
    if project.key_metrics:
        return [(key, run.summary.get(key)) for key in project.key_metrics[:MAX_METRICS]]
    items: list[tuple[str, Any]] = []
    if project.metric and _is_number(run.summary.get(project.metric)):
        items.append((project.metric, run.summary[project.metric]))
    for key in sorted(run.summary, key=str):
        if len(items) >= MAX_METRICS:
            break
        name = str(key)
        if name.startswith("_") or name == project.metric or is_counter(name):
            continue
        if _is_number(run.summary[key]):
            items.append((name, run.summary[key]))
    return items


def _metrics_line(items: Sequence[tuple[str, Any]]) -> str:
    return " · ".join(f"{esc(truncate(k, KEY_LIMIT))} {fmt_value(v)}" for k, v in items)


def params_line(
    run: RunSnapshot,
    limit: int = MAX_PARAMS,
    first: Sequence[str] = (),
    usual: Mapping[str, Any] | None = None,
) -> str:
    """Return `key=value · …` for the parameters that tell the run apart, at most `limit`.

    `first` (a sweep's parameters) lead; then what differs from the project's `usual` values.
    """
    items = shown_params(run.config, first, usual)
    text = " · ".join(f"{esc(truncate(k, KEY_LIMIT))}={fmt_param(v)}" for k, v in items[:limit])
    return text + (" · …" if len(items) > limit else "")


def _tags_line(run: RunSnapshot) -> str:
    # Branch and commit tags are shown, labelled, on the origin line instead.
    tags = [tag for tag in run.tags if not is_origin_tag(tag)]
    if not tags:
        return ""
    shown = " ".join(f"#{esc(truncate(tag, KEY_LIMIT))}" for tag in tags[:MAX_TAGS])
    return shown + (" …" if len(tags) > MAX_TAGS else "")


def _git_line(run: RunSnapshot) -> str:
    return render_origin(run, KEY_LIMIT)


def _fit(lines: Iterable[str], keep: int = 2, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """Join non-empty lines, dropping trailing detail lines until the text fits."""
    kept = [line for line in lines if line]
    while len(kept) > keep and utf16_len("\n".join(kept)) > limit:
        kept.pop()
    text = "\n".join(kept)
    if utf16_len(text) > limit:
        # Only reachable with absurd inputs; a plain-text first line always fits.
        text = kept[0] if utf16_len(kept[0]) <= limit else "…"
    return text


def _exit_code(run: RunSnapshot) -> Any:
    for key in ("_exit_code", "exit_code", "exitcode"):
        value = run.summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _step_text(run: RunSnapshot) -> str:
    progress = logged_progress(run)
    return f"{progress[0]} {progress[1]}" if progress is not None else "no step logged"


def _header(kind: str, run: RunSnapshot, note: str = "", owner: str = "") -> str:
    marker = STATE_MARKERS.get(kind, "•")
    whose = f" · 👤 {owner}" if owner else ""
    return f"{marker} <b>{esc(kind)}</b>{note} · {_label(run.project)}{whose}"


def _run_buttons(event: RunEvent, *names: str) -> Buttons:
    labels = {"config": "Config", "plot": "Plot", "stop": "Stop"}
    row = tuple(Button(labels[name], name, event.run.path) for name in names)
    return (row,)


# --- run events ---------------------------------------------------------------------------


def render_run_event(
    event: RunEvent,
    project: ProjectConfig,
    ui_url: str,
    tz: tzinfo | None = None,
    *,
    swept: Sequence[str] = (),
    owner: str = "",
    usual: Mapping[str, Any] | None = None,
) -> tuple[str, Buttons]:
    """Render one run event as its chat message and buttons.

    `owner` is the run's owner as HTML (a mention or a name), shown in the first line.
    `swept` parameters lead the parameter line; `usual` (the project's usual values) leaves
    out what every run has.
    """
    run = event.run
    name = run_link(run) + _sweep_link(run, ui_url)
    runtime = fmt_duration(run.elapsed_s)
    kind = event.kind
    if kind == "finished":
        lines = [
            _header(kind, run, owner=owner),
            f"{name} · {runtime}",
            _metrics_line(metric_items(run, project)),
            params_line(run, first=swept, usual=usual),
            _tags_line(run),
            _git_line(run),
        ]
        return _fit(lines), _run_buttons(event, "config", "plot")
    if kind == "failed":
        code = _exit_code(run)
        # "after under 1s" reads badly: a run that died at once says "within 1s".
        after = "within 1s" if runtime == "under 1s" else f"after {runtime}"
        how = f"exit {esc(code)} {after}" if code is not None else after
        host = f" · host {_label(run.host)}" if run.host else ""
        last = metric_items(run, project)[:2]
        lines = [
            _header(kind, run, owner=owner),
            f"{name} · {how} at {_step_text(run)}{host}",
            *_why_lines(event.why),
            f"last: {_metrics_line(last)}" if last else "",
            _git_line(run),
        ]
        return _fit(lines), _run_buttons(event, "config", "plot")
    if kind == "crashed":
        if run.heartbeat_at is not None:
            ago = fmt_ago((event.at - run.heartbeat_at).total_seconds())
            how = f"no heartbeat since {fmt_clock(run.heartbeat_at, tz)} ({ago})"
        else:
            how = f"lost after {runtime}"
        host = f" · host {_label(run.host)}" if run.host else ""
        last = metric_items(run, project)[:2]
        lines = [
            _header(kind, run, owner=owner),
            f"{name} · {how} · {_step_text(run)}{host}",
            *_why_lines(event.why),
            f"last: {_metrics_line(last)}" if last else "",
        ]
        return _fit(lines), _run_buttons(event, "config", "plot")
    if kind == "killed":
        note = " (preempted)" if run.state == "preempted" else ""
        lines = [
            _header(kind, run, note, owner),
            f"{name} · stopped after {runtime} at {_step_text(run)}",
            _metrics_line(metric_items(run, project)[:2]),
        ]
        return _fit(lines), _run_buttons(event, "config", "plot")
    if kind == "stalled":
        idle = fmt_ago(event.idle_for)
        every = f" (usually every {fmt_duration(event.cadence)})" if event.cadence else ""
        if event.stalled_by == "heartbeat":
            how = f"no heartbeat for {idle} · last {_step_text(run)}"
        else:
            beat = _heartbeat_note(run, event.at, tz)
            how = f"no new step for {idle}{every}{beat}"
        host = f"at {_step_text(run)} · host {_label(run.host)}" if run.host else ""
        lines = [_header(kind, run, owner=owner), f"{name} · {how}", host]
        return _fit(lines), _run_buttons(event, "stop", "plot")
    # recovered
    idle = fmt_ago(event.idle_for)
    moving = f"{name} · moving again at {_step_text(run)} after {idle} idle"
    lines = [_header(kind, run, owner=owner), moving]
    return _fit(lines), _run_buttons(event, "plot")


def _why_lines(why: FailureReason | None) -> list[str]:
    """Say why a run ended: the cause in words, the exception line, else the last output."""
    if why is None or why.empty:
        return []
    cause = f"<b>{esc(why.cause)}</b>" if why.cause else ""
    if why.exception:
        code = f"<code>{esc(truncate(why.exception, WHY_LIMIT))}</code>"
        return [f"{cause} · {code}" if cause else code]
    lines = [cause] if cause else []
    return lines + [f"<code>{esc(truncate(line, WHY_LIMIT))}</code>" for line in why.tail]


def _heartbeat_note(run: RunSnapshot, now: datetime, tz: tzinfo | None) -> str:
    if run.heartbeat_at is None:
        return ""
    age = (now - run.heartbeat_at).total_seconds()
    if age <= 120:
        return " · process still heartbeating"
    return f" · last heartbeat {fmt_clock(run.heartbeat_at, tz)}"


# --- bursts -------------------------------------------------------------------------------


def _metric_of(run: RunSnapshot, metric: str | None) -> float | None:
    value = run.summary.get(metric) if metric else None
    return float(value) if value is not None and is_finite_number(value) else None


def best_of(
    runs: Iterable[RunSnapshot], metric: str | None, goal: str = "maximize"
) -> RunSnapshot | None:
    """Return the run with the best finite `metric`, or None."""
    scored = [(v, r) for r in runs if (v := _metric_of(r, metric)) is not None]
    if not scored:
        return None
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda item: item[0])[1]


def _burst_line(event: RunEvent, owner: Callable[[str | None], str]) -> str:
    whose = owner(event.run.user)
    return _burst_run(event) + (f" · 👤 {whose}" if whose else "")


def _burst_run(event: RunEvent) -> str:
    run = event.run
    marker = STATE_MARKERS.get(event.kind, "•")
    name = run_link(run)
    if event.kind == "failed":
        code = _exit_code(run)
        how = f"exit {esc(code)}" if code is not None else f"after {fmt_duration(run.elapsed_s)}"
        return f"{marker} {name} ({how}, {_step_text(run)})"
    if event.kind == "crashed":
        return f"{marker} {name} ({_step_text(run)})"
    if event.kind == "stalled" and event.idle_for is not None:
        return f"{marker} {name} (idle {fmt_ago(event.idle_for)})"
    return f"{marker} {name}"


def render_burst(
    events: Sequence[RunEvent],
    project: ProjectConfig,
    ui_url: str,
    *,
    limit: int = TELEGRAM_TEXT_LIMIT,
    owner: Callable[[str | None], str] = lambda _user: "",
) -> list[str]:
    """Render many events of one project (or sweep) as one message, or a few when long.

    `owner(username)` names each listed run's owner as HTML ("" names none).
    """
    if not events:
        return []
    first = events[0].run
    sweep = first.sweep if all(e.run.sweep == first.sweep for e in events) else None
    where = _label(first.project)
    if sweep:
        url = sweep_url(ui_url, first.entity, first.project, sweep)
        where += f" · sweep {link(url, truncate(sweep, KEY_LIMIT))}"
    count = len(events)
    ended = all(e.kind in TERMINAL_KINDS for e in events)
    times = [e.at for e in events]
    span = (max(times) - min(times)).total_seconds()
    what = f"{count} runs ended" if ended else f"{count} run updates"
    if span >= 1:
        what += f" in the last {fmt_duration(span)}"
    header = f"{STATE_MARKERS['burst']} {where} · {what}"
    counts = Counter(e.kind for e in events)
    tally = " · ".join(f"{STATE_MARKERS[k]} {counts[k]} {k}" for k in _KIND_ORDER if counts.get(k))
    lines = [header, tally]
    finished = [e.run for e in events if e.kind == "finished"]
    best = best_of(finished, project.metric, project.goal)
    if best is not None and project.metric:
        value = fmt_value(best.summary[project.metric])
        lines.append(f"best: {run_link(best)} {esc(truncate(project.metric, KEY_LIMIT))} {value}")
    named = sorted(
        (e for e in events if e.kind != "finished"),
        key=lambda e: (_KIND_ORDER.index(e.kind), e.run.display_name, e.run.id),
    )
    # Name every run that did not simply finish, within a budget of a few messages.
    budget = MAX_BURST_PARTS * (limit - _BURST_HEADER_RESERVE) * 3 // 4
    used = utf16_len("\n".join(lines))
    for index, event in enumerate(named):
        line = _burst_line(event, owner)
        used += utf16_len(line) + 1
        if index >= MAX_BURST_LINES or used > budget:
            lines.append(f"… and {len(named) - index} more")
            break
        lines.append(line)
    parts = split_message(lines, limit=limit - _BURST_HEADER_RESERVE)
    if len(parts) == 1:
        return parts
    total = len(parts)
    out = [parts[0].replace(header, f"{header} (1/{total})", 1)]
    for index, part in enumerate(parts[1:], start=2):
        out.append(f"{STATE_MARKERS['burst']} {where} · continued ({index}/{total})\n{part}")
    return out


# --- sweeps -------------------------------------------------------------------------------


def render_sweep_card(
    sweep: SweepSnapshot,
    *,
    lab_name: str,
    done: int,
    count: int,
    failed: int,
    agents: int,
    elapsed_s: float,
    best: RunSnapshot | None,
    metric: str | None,
    finished: bool = False,
    phase: SweepPhase | None = None,
    note: str = "",
    last_failure: str | None = None,
    agents_text: str | None = None,
    ends_text: str = "",
) -> tuple[str, Buttons]:
    """Render the live card of a sweep started from the chat, edited as it goes.

    `phase` is the sweep's one state word (see `sweep_phase`); `note` says why it ended
    early ("agents gave up after 3 failed runs in 60 s"); `last_failure` is the latest
    failed run's error line. `agents_text` replaces the agent count for agents a launcher
    places elsewhere (`2 agents · 2 pending (Resources)`); `ends_text` says how they ended.
    """
    if phase is None:
        phase = (
            "finished" if finished else ("paused" if sweep.state.upper() == "PAUSED" else "running")
        )
    ended = phase in ENDED_PHASES
    sweep_name = link(sweep.url, truncate(sweep.id, KEY_LIMIT))
    state = "" if phase == "running" else f" {PHASE_WORDS[phase]}"
    first = (
        f"{STATE_MARKERS['sweep']} sweep {sweep_name}{state} · {_label(lab_name)} → "
        f"{_label(sweep.project)} · {esc(truncate(sweep.method, KEY_LIMIT))}"
    )
    bits = [f"{progress_bar(min(done, count), count)} {min(done, count)}/{count}"]
    if failed:
        bits.append(f"{failed} failed")
    if not ended and phase != "tripped":
        bits.append(agents_text or f"{agents} agent{'s' if agents != 1 else ''}")
    bits.append(fmt_ago(elapsed_s))
    lines = [first, " · ".join(bits)]
    if ended and ends_text:
        lines.append(ends_text)
    if note:
        lines.append(esc(note))
    if best is not None and metric and metric in best.summary:
        swept = sweep.config.get("parameters")
        params = params_line(
            best, limit=4, first=tuple(swept) if isinstance(swept, Mapping) else ()
        )
        detail = f" ({params})" if params else ""
        value = fmt_value(best.summary[metric])
        lines.append(f"best {esc(truncate(metric, KEY_LIMIT))} {value} · {run_link(best)}{detail}")
    if failed and last_failure:
        lines.append(f"last failure: <code>{esc(truncate(last_failure, 160))}</code>")
    return _fit(lines), _card_buttons(sweep.path, phase)


def _card_buttons(path: str, phase: SweepPhase) -> Buttons:
    if phase == "running":
        return ((Button("Stop", "sweep_stop", path), Button("Pause", "sweep_pause", path)),)
    if phase in ("paused", "tripped", "gave_up"):
        # Resume starts agents again for the runs left when none is running.
        return ((Button("Stop", "sweep_stop", path), Button("Resume", "sweep_resume", path)),)
    return ()


def render_crash_loop_alert(
    sweep_path: str,
    *,
    failures: Sequence[RunSnapshot],
    window_s: float,
    paused: bool,
    ui_url: str,
) -> tuple[str, Buttons]:
    """Render the alert that a sweep keeps failing (and was paused), with how to go on."""
    entity, project, sweep_id = _split_sweep(sweep_path)
    url = sweep_url(ui_url, entity, project, sweep_id)
    action = "paused" if paused else "keeps failing"
    lines = [
        f"{STATE_MARKERS['attention']} sweep {link(url, truncate(sweep_id, KEY_LIMIT))} "
        f"{action} · {_label(project)}",
        f"{len(failures)} runs failed within {fmt_ago(window_s)}",
        "failed: " + ", ".join(run_link(r) for r in failures[:5]) if failures else "",
        # The breaker stopped the agents too; Resume starts agents again for the runs left.
        f"agents stopped · once fixed, <code>/sweep resume {esc(sweep_id)}</code> goes on"
        if paused
        else "",
    ]
    buttons: Buttons = ((Button("Stop", "sweep_stop", sweep_path),),)
    return _fit(lines), buttons


def render_agent_exit(
    sweep_path: str,
    *,
    agent: int,
    returncode: int | None,
    ran_for_s: float | None,
    log_tail: Sequence[str] = (),
    ui_url: str,
    how: str = "",
) -> str:
    """Render a sweep agent's exit: normal with code 0, an alert with its log tail otherwise.

    `how` names an end seen without an exit code (Slurm's `TIMEOUT`, `CANCELLED`).
    """
    entity, project, sweep_id = _split_sweep(sweep_path)
    url = sweep_url(ui_url, entity, project, sweep_id)
    sweep = link(url, truncate(sweep_id, KEY_LIMIT))
    ran = fmt_duration(ran_for_s)
    if returncode == 0:
        return f"{STATE_MARKERS['sweep']} agent {agent} of sweep {sweep} is done after {ran}"
    code = "was killed" if returncode is None or returncode < 0 else f"exited with {returncode}"
    if returncode is None and how:
        code = f"ended {esc(truncate(how, KEY_LIMIT))}"
    lines = [
        f"{STATE_MARKERS['attention']} agent {agent} of sweep {sweep} {code} after {ran}",
    ]
    tail = [truncate(line.rstrip(), 200) for line in log_tail[-10:]]
    text = esc("\n".join(tail))
    if text:
        while utf16_len(text) > 2000:
            tail = tail[1:]
            text = esc("\n".join(tail))
        lines.append(f"<pre>{text}</pre>")
    return _fit(lines, keep=1)


# --- lists and status ---------------------------------------------------------------------


def render_runs_list(
    project: str,
    runs: Sequence[RunSnapshot],
    ui_url: str,
    now: datetime,
    *,
    settings: ProjectConfig | None = None,
    entity: str | None = None,
    state: str | None = None,
    branch: str | None = None,
    total: int | None = None,
) -> str:
    """Render a compact list of a project's runs, one line each.

    `total` is how many runs the listing selects in all; the header says "10 of 340".
    """
    settings = settings or ProjectConfig()
    owner = entity or (runs[0].entity if runs else "")
    title = link(project_url(ui_url, owner, project), truncate(project, NAME_LIMIT))
    which = f"{esc(state)} runs" if state else "runs"
    if branch:
        which += f" of branch {esc(truncate(branch, KEY_LIMIT))}"
    if not runs:
        return f"📋 no {which} in {title}"
    count = f"{len(runs)} of {total:,}" if total and total > len(runs) else str(len(runs))
    lines = [f"📋 {which} in {title} · {count}"]
    budget = TELEGRAM_TEXT_LIMIT - 100
    for index, run in enumerate(runs):
        line = _runs_line(run, now, settings)
        if utf16_len("\n".join([*lines, line])) > budget:
            lines.append(f"… and {len(runs) - index} more")
            break
        lines.append(line)
    return "\n".join(lines)


def _runs_line(run: RunSnapshot, now: datetime, settings: ProjectConfig) -> str:
    marker = STATE_MARKERS.get(run.state, "•")
    if run.state == "running":
        when = f"{_step_text(run)} · {fmt_duration(run.elapsed_s)}"
    else:
        ended = run.updated_at or run.heartbeat_at or run.created_at
        when = f"{esc(run.state)} {fmt_ago((now - ended).total_seconds())} ago"
    metric = settings.metric or (settings.key_metrics[0] if settings.key_metrics else None)
    value = run.summary.get(metric) if metric else None
    shown = (
        f" · {esc(truncate(metric, KEY_LIMIT))} {fmt_value(value)}"
        if metric and _is_number(value)
        else ""
    )
    return f"{marker} {run_link(run)} · {when}{shown}"


def render_status(
    projects: Sequence[ProjectHealth],
    *,
    now: datetime,
    outbox_depth: int,
    wandb_ok: bool,
    wandb_error: str | None = None,
    agents: int = 0,
    tz: tzinfo | None = None,
    wandb_checked: bool = True,
) -> str:
    """Render /status: W&B health, each project's last poll, the outbox and agents.

    `wandb_error` is already in words; `wandb_checked` is false until W&B first answered
    (or failed), so a fresh bot does not claim W&B is reachable before asking it.
    """
    if not wandb_ok:
        lines = [
            f"{STATE_MARKERS['attention']} {esc(truncate(wandb_error or 'W&B unreachable', 120))}"
        ]
    elif not wandb_checked:
        lines = [f"{STATE_MARKERS['pending']} W&amp;B not asked yet"]
    else:
        lines = ["🟢 W&amp;B reachable"]
    budget = TELEGRAM_TEXT_LIMIT - 200
    for index, item in enumerate(projects):
        if item.last_poll is None:
            when = "not polled yet"
        else:
            age = fmt_ago((now - item.last_poll).total_seconds())
            when = f"polled {fmt_clock(item.last_poll, tz)} ({age} ago)"
        running = f" · {item.running} running" if item.running is not None else ""
        problem = "not found in W&B (no run logged there yet?)" if item.missing else item.error
        error = f" · {STATE_MARKERS['attention']} {esc(truncate(problem, 120))}" if problem else ""
        line = f"{_label(item.project)}: {when}{running}{error}"
        if utf16_len("\n".join([*lines, line])) > budget:
            lines.append(f"… and {len(projects) - index} more projects")
            break
        lines.append(line)
    if not projects:
        lines.append("no projects watched")
    lines.append(f"outbox: {outbox_depth} waiting · agents: {agents}")
    return "\n".join(lines)


def render_usage_error(err: Exception) -> str:
    """Render a refusal as one escaped line: what was wrong and the usage."""
    return esc(str(err))


def render_telegram_back(lasted_s: float, late: int) -> str:
    """Render the admins' note that Telegram is reachable again after an outage."""
    return (
        f"⚠️ Telegram was unreachable for {fmt_duration(lasted_s)}; "
        f"{late} notification{'s' if late != 1 else ''} delivered late."
    )


def render_chat_paused(chat_id: int, reason: str) -> str:
    """Render the admins' note that a chat refused the bot and its notifications wait."""
    return (
        f"⚠️ I can no longer post to chat <code>{chat_id}</code> ({esc(reason)}). "
        "Its notifications are paused until someone there sends me a command."
    )
