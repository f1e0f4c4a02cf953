"""Render the messages of driving sweeps and runs from the chat: start, status, stop."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.events import RunEvent
from bot.domain.format import STATE_MARKERS, esc, fmt_ago, fmt_duration, link, truncate
from bot.domain.render import (
    KEY_LIMIT,
    NAME_LIMIT,
    Button,
    Buttons,
    render_agent_exit,
    render_crash_loop_alert,
    run_link,
    sweep_url,
)
from bot.domain.sweeps import PHASE_WORDS, SweepPhase, progress_bar
from wandb_client.models import TERMINAL_STATES, RunSnapshot

FAILED_STATES = frozenset({"failed", "crashed"})
# A Python exception line as a traceback ends: `RuntimeError: simulated failure at step 3`.
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))\b:?(.*)$")
ERROR_LIMIT = 160


@dataclass(frozen=True, slots=True)
class AgentView:
    """What the chat is told about one agent process."""

    index: int
    pid: int
    started_at: datetime
    alive: bool
    gpus: str = ""
    exit_code: int | None = None
    #: Where it runs when that is not a PID here, e.g. `slurm 4711_0`.
    where: str = ""
    #: Its launcher's word for it now, e.g. `pending (Resources)` or `COMPLETED`.
    state: str = ""


@dataclass(frozen=True, slots=True)
class SweepProgress:
    """How far a sweep has got, counted from its runs on W&B."""

    done: int
    failed: int
    running: int
    best: RunSnapshot | None


@dataclass(frozen=True, slots=True)
class SweepView:
    """What /sweeps and /sweep status show about one sweep the bot started."""

    path: str
    name: str
    count: int
    started_at: datetime
    finished_at: datetime | None
    agents: tuple[AgentView, ...]
    state: str | None = None
    progress: SweepProgress | None = None
    #: The agents summed up by their launcher (`2 agents · 2 pending (Resources)`), if remote.
    agents_text: str | None = None
    phase: SweepPhase | None = None


def _split(path: str) -> tuple[str, str, str]:
    entity, _, rest = path.partition("/")
    project, _, sweep = rest.partition("/")
    return entity, project, sweep


def sweep_link(path: str, ui_url: str) -> str:
    """Return the sweep id linked to its W&B page."""
    entity, project, sweep = _split(path)
    return link(sweep_url(ui_url, entity, project, sweep), truncate(sweep, KEY_LIMIT))


def summarise_runs(
    runs: Sequence[RunSnapshot], metric: str | None, goal: str | None
) -> SweepProgress:
    """Count a sweep's ended, failed and running runs and pick its best finished run."""
    done = sum(1 for r in runs if r.state in TERMINAL_STATES)
    failed = sum(1 for r in runs if r.state in FAILED_STATES)
    running = sum(1 for r in runs if r.state in ("running", "pending"))
    best: RunSnapshot | None = None
    if metric:
        scored = [
            r
            for r in runs
            if r.state == "finished"
            and isinstance(r.summary.get(metric), int | float)
            and not isinstance(r.summary.get(metric), bool)
        ]
        if scored:
            pick = max if goal == "maximize" else min
            best = pick(scored, key=lambda r: float(r.summary[metric]))
    return SweepProgress(done, failed, running, best)


def _agents_line(agents: Sequence[AgentView], now: datetime) -> str:
    parts = []
    for agent in agents:
        gpu = f" GPU {esc(agent.gpus)}" if agent.gpus else ""
        name = esc(agent.where) if agent.where else f"pid {agent.pid}"
        state = f" · {esc(agent.state)}" if agent.state else ""
        if agent.alive and agent.where and not agent.state.startswith("running"):
            # Submitted elsewhere: it waits (or its state is not known yet), it is not up.
            parts.append(f"#{agent.index} {name}{gpu}{state or ' · submitted'}")
        elif agent.alive:
            up = fmt_duration((now - agent.started_at).total_seconds())
            parts.append(f"#{agent.index} {name}{gpu}{state} · up {up}")
        else:
            code = "?" if agent.exit_code is None else str(agent.exit_code)
            parts.append(f"#{agent.index} {name}{gpu}{state or ' · ended'} ({code})")
    return "\n".join(f"  {p}" for p in parts)


def render_sweep_started(
    path: str,
    *,
    lab_name: str,
    count: int,
    agents: Sequence[AgentView],
    ui_url: str,
    now: datetime,
    reused: bool = False,
) -> str:
    """Render the reply to `/sweep start`: the sweep's link and the agents started."""
    _, project, _ = _split(path)
    lines = [
        f"{STATE_MARKERS['sweep']} {'joined' if reused else 'started'} sweep "
        f"{sweep_link(path, ui_url)} · "
        f"{esc(truncate(lab_name, NAME_LIMIT))} → {esc(truncate(project, NAME_LIMIT))}",
        f"{count} run{'s' if count != 1 else ''} over {len(agents)} "
        f"agent{'s' if len(agents) != 1 else ''}:",
        _agents_line(agents, now),
    ]
    return "\n".join(line for line in lines if line)


def render_sweeps_status(
    sweeps: Sequence[SweepView], *, now: datetime, ui_url: str, known: Sequence[str] = ()
) -> str:
    """Render /sweeps and /sweep status: per sweep its agents, PIDs, uptime and progress."""
    if not sweeps:
        names = ", ".join(esc(n) for n in sorted(known)) or "none"
        return f"{STATE_MARKERS['sweep']} no sweep running. The lab's sweeps: {names}"
    blocks = []
    for view in sweeps:
        _, project, _ = _split(view.path)
        state = f" · {PHASE_WORDS[view.phase]}" if view.phase else ""
        head = (
            f"{STATE_MARKERS['sweep']} sweep {sweep_link(view.path, ui_url)} · "
            f"{esc(truncate(view.name, NAME_LIMIT))} → {esc(truncate(project, NAME_LIMIT))}{state}"
        )
        end = view.finished_at or now
        bits = []
        if view.progress is not None:
            p = view.progress
            bits.append(f"{progress_bar(p.done, view.count)} {p.done}/{view.count}")
            if p.failed:
                bits.append(f"{p.failed} failed")
            if p.running:
                bits.append(f"{p.running} running")
        else:
            bits.append(f"{view.count} runs")
        bits.append(fmt_ago((end - view.started_at).total_seconds()))
        lines = [head, " · ".join(bits)]
        alive = sum(1 for a in view.agents if a.alive)
        lines.append(
            f"agents: {view.agents_text}"
            if view.agents_text is not None
            else f"agents: {alive} running of {len(view.agents)}"
        )
        agents = _agents_line(view.agents, now)
        if agents:
            lines.append(agents)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_sweep_changed(
    path: str,
    action: str,
    *,
    ui_url: str,
    agents_stopped: int = 0,
    agents_started: int = 0,
    runs_left: int = 0,
) -> str:
    """Render the reply to /sweep stop|cancel|pause|resume, in the card's words."""
    sweep = sweep_link(path, ui_url)
    if action == "pause":
        return f"⏸ sweep {sweep} {PHASE_WORDS['paused']}: agents wait for /sweep resume"
    if action == "resume":
        if agents_started:
            agents = f"{agents_started} agent{'s' if agents_started != 1 else ''}"
            runs = f"{runs_left} run{'s' if runs_left != 1 else ''}"
            return f"▶️ sweep {sweep} resumed · {agents} started for the {runs} left"
        return f"▶️ sweep {sweep} resumed"
    state = PHASE_WORDS["cancelled" if action == "cancel" else "stopped"]
    what = f" · {agents_stopped} agent{'s' if agents_stopped != 1 else ''} ended"
    return f"🛑 sweep {sweep} {state}{what if agents_stopped else ''}"


def last_error(lines: Sequence[str]) -> str | None:
    """Return the last exception line of a log (`RuntimeError: ...`), if it has one."""
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match:
            return truncate(line.strip(), ERROR_LIMIT)
    return None


def render_agent_end(
    path: str,
    *,
    agent: int,
    returncode: int | None,
    known: bool,
    ran_for_s: float | None,
    done: int | None,
    count: int,
    log_tail: Sequence[str],
    ui_url: str,
    how: str = "",
) -> str:
    """Render an agent's exit: code, the sweep's runs done, on failure its log tail.

    `how` is the launcher's word for an end it saw without an exit code (`TIMEOUT`).
    """
    runs = f"runs done: {done}/{count}" if done is not None else ""
    if not known:
        sweep = sweep_link(path, ui_url)
        lines = [
            f"{STATE_MARKERS['sweep']} agent {agent} of sweep {sweep} ended while I was down "
            f"(after {fmt_duration(ran_for_s)}, exit code unknown)",
            runs,
        ]
        return "\n".join(line for line in lines if line)
    text = render_agent_exit(
        path,
        agent=agent,
        returncode=returncode,
        ran_for_s=ran_for_s,
        log_tail=log_tail if returncode != 0 else (),
        ui_url=ui_url,
        how=how,
    )
    first, _, rest = text.partition("\n")
    return "\n".join(part for part in (first, runs, rest) if part)


def render_crash_loop(
    path: str,
    *,
    failures: Sequence[RunSnapshot],
    window_s: float,
    paused: bool,
    error: str | None,
    ui_url: str,
) -> tuple[str, Buttons]:
    """Render the crash-loop alert, naming the error the runs keep failing with."""
    text, buttons = render_crash_loop_alert(
        path, failures=failures, window_s=window_s, paused=paused, ui_url=ui_url
    )
    first, _, rest = text.partition("\n")
    shown = f"error: <code>{esc(error)}</code>" if error else "error: none in the agent's log"
    return "\n".join(p for p in (first, shown, rest) if p), buttons


# --- /stop ------------------------------------------------------------------------------


def _run_name(path: str, run: RunSnapshot | None) -> str:
    if run is not None:
        return run_link(run)
    return f"<code>{esc(truncate(path, NAME_LIMIT * 2))}</code>"


def render_stop_prompt(path: str, run: RunSnapshot | None, ttl_s: float) -> tuple[str, Buttons]:
    """Render the confirmation of `/stop`, with Yes and No buttons."""
    project = run.project if run is not None else _split(path)[1]
    state = f" ({esc(run.state)})" if run is not None else ""
    text = (
        f"{STATE_MARKERS['killed']} stop run {_run_name(path, run)}{state} in "
        f"{esc(truncate(project, NAME_LIMIT))}?\n"
        f"This button expires in {fmt_duration(ttl_s)}."
    )
    buttons: Buttons = ((Button("Yes, stop it", "stop_yes", path), Button("No", "stop_no", path)),)
    return text, buttons


def render_sweep_stop_prompt(path: str, ui_url: str, ttl_s: float) -> tuple[str, Buttons]:
    """Render the confirmation of a sweep card's Stop button, with Yes and No buttons."""
    text = (
        f"{STATE_MARKERS['killed']} stop sweep {sweep_link(path, ui_url)}? Its agents stop and "
        f"it starts no new runs.\nThis button expires in {fmt_duration(ttl_s)}."
    )
    yes, no = Button("Yes, stop it", "sweep_stop_yes", path), Button("No", "sweep_stop_no", path)
    return text, ((yes, no),)


def render_run_choices(
    name: str,
    runs: Sequence[RunSnapshot],
    action: str,
    now: datetime,
    target: Callable[[RunSnapshot], str] | None = None,
) -> tuple[str, Buttons]:
    """Render the runs that share a display name, one button each, newest first.

    Each button's target is the run's path, or what `target` makes of the run (a command
    with more arguments keeps them).
    """
    text = f'{len(runs)} runs are called "{esc(truncate(name, NAME_LIMIT))}"; which one?'
    rows = tuple(
        (
            Button(
                f"{run.id} · {run.state} · {fmt_duration((now - run.created_at).total_seconds())} ago",
                action,
                target(run) if target else run.path,
            ),
        )
        for run in runs
    )
    return text, rows


def render_stop_requested(path: str, run: RunSnapshot | None) -> str:
    """Render the edited confirmation once a stop was asked of W&B."""
    return (
        f"{STATE_MARKERS['killed']} stop requested for {_run_name(path, run)}; "
        "I'll say when it has stopped."
    )


def render_stop_slow(path: str, waited_s: float) -> tuple[str, Buttons]:
    """Render the note that a requested stop has not taken effect, with a Try again button."""
    text = (
        f"{STATE_MARKERS['attention']} stop of {_run_name(path, None)} has not taken effect after"
        f" {fmt_duration(waited_s)}: it has not ended yet.\n"
        "Try again to send the stop to W&B once more."
    )
    return text, ((Button("Try again", "stop_again", path),),)


def render_stop_resent(path: str, run: RunSnapshot | None = None) -> str:
    """Render the edited note once the stop was sent to W&B again."""
    return (
        f"{STATE_MARKERS['killed']} stop sent again for {_run_name(path, run)}; "
        "I'll say when it has stopped."
    )


def render_stop_cancelled(path: str, run: RunSnapshot | None) -> str:
    """Render the edited confirmation when the user said No."""
    return f"Cancelled: {_run_name(path, run)} keeps running."


def render_not_running(path: str, run: RunSnapshot) -> str:
    """Render the refusal to stop a run that has already ended."""
    return f"{_run_name(path, run)} is {esc(run.state)}, not running: nothing to stop."


def render_stop_confirmed(event: RunEvent) -> str:
    """Render the message that a run a user stopped has really ended."""
    run = event.run
    marker = STATE_MARKERS.get(event.kind, "•")
    how = "stopped" if event.kind == "killed" else f"ended as {esc(event.kind)}"
    runtime = fmt_duration(run.elapsed_s)
    return (
        f"{marker} {run_link(run)} {how} · {esc(truncate(run.project, NAME_LIMIT))}\n"
        f"after {runtime}, as you asked"
    )
