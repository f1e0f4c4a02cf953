"""What metric alerts say in the chat: one message per chat per poll, resolved as replies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.alerts import AlertState, Check
from bot.domain.commands import ProjectRef, UsageError, parse_project_arg
from bot.domain.format import esc, truncate
from bot.domain.plots import plot_target
from bot.domain.render import Button, Buttons, run_link
from config import LabConfig
from config.alerts import AlertRule

MUTE_HOURS = 2
# Telegram shows a few rows of buttons comfortably; a long group gets buttons for its first.
MAX_BUTTON_ROWS = 4
MARKERS = {"fire": "🔔", "repeat": "🔁", "resolve": "✅"}


@dataclass(frozen=True, slots=True)
class AlertNote:
    """One alert message for one chat; `reply_to` names the message it answers."""

    chat_id: int
    dedupe_key: str
    kind: str
    text: str
    buttons: Buttons = ()
    reply_to: str | None = None


def mute_target(entity: str, project: str, rule: str) -> str:
    """Return the target of a Mute button: the rule of one project."""
    return f"{entity}/{project}/{rule}"


def _line(check: Check, owner: Callable[[str | None], str] = lambda _user: "") -> str:
    run = check.run
    whose = owner(run.user)
    named = f"{run_link(run)} · 👤 {whose}" if whose else run_link(run)
    return f"<b>{esc(check.rule.name)}</b> · {named}: {esc(check.detail)}"


def _buttons(checks: Sequence[Check]) -> Buttons:
    rows = []
    many = len(checks) > 1
    for check in checks[:MAX_BUTTON_ROWS]:
        run = check.run
        who = f" {truncate(run.display_name, 16)}" if many else ""
        row = []
        if run.state == "running":
            row.append(Button(f"Stop run{who}", "stop", run.path))
        mute = mute_target(run.entity, run.project, check.rule.name)
        row.append(
            Button(f"Mute {truncate(check.rule.name, 16)} {MUTE_HOURS}h", "alert_mute", mute)
        )
        # The chart shows what the rule watches, not the run's usual curves.
        row.append(Button(f"Plot{who}", "plot", plot_target(run.path, check.rule.metrics)))
        rows.append(tuple(row))
    return tuple(rows)


def compose(
    checks: Sequence[Check],
    chats_of: Callable[[Check], Sequence[int]],
    *,
    entity: str,
    project: str,
    now: datetime,
    owner: Callable[[str | None], str] = lambda _user: "",
) -> tuple[list[AlertNote], dict[tuple[str, str], AlertState]]:
    """Return the notes a poll's alert checks make, and the states that learned their thread.

    Alerts that fire or repeat go out grouped, one message per chat; each resolved alert
    is its own short reply to the message that carried it. `owner(username)` names a run's
    owner.
    """
    stem = f"alert:{entity}/{project}:{now.isoformat()}"
    loud = [c for c in checks if c.action in ("fire", "repeat")]
    per_chat: dict[int, list[Check]] = {}
    for check in loud:
        for chat in chats_of(check):
            per_chat.setdefault(chat, []).append(check)
    notes: list[AlertNote] = []
    for chat, group in per_chat.items():
        first = group[0].action or "fire"
        head = f"{MARKERS[first]} <b>{'alert' if len(group) == 1 else f'{len(group)} alerts'}</b>"
        text = "\n".join([f"{head} · {esc(project)}", *(_line(c, owner) for c in group)])
        notes.append(AlertNote(chat, f"{stem}:{chat}", "alert", text, _buttons(group)))
    states = {(c.run.path, c.rule.name): replace(c.state, thread=stem) for c in loud}
    for check in checks:
        if check.action != "resolve" or check.state.thread is None:
            continue
        for chat in chats_of(check):
            text = f"{MARKERS['resolve']} <b>resolved</b> · {_line(check, owner)}"
            key = f"{check.state.thread}:{chat}"
            notes.append(
                AlertNote(
                    chat, f"{key}:resolved:{now.isoformat()}", "alert-resolved", text, (), key
                )
            )
    return notes, states


def describe_rule(rule: AlertRule) -> str:
    """Return a rule in one line, as `/alerts` lists it."""
    condition = getattr(rule, rule.kind)
    if rule.kind == "nan":
        what = f"NaN or ±inf in {', '.join(rule.metrics)}"
    else:
        fields = condition.model_dump(exclude_none=True, exclude={"metric"})
        extra = ", ".join(f"{k} {v}" for k, v in fields.items())
        what = f"{rule.kind.replace('_', ' ')} of {condition.metric}" + (
            f": {extra}" if extra else ""
        )
    return f"<b>{esc(rule.name)}</b> — {esc(what)}"


def render_alerts(
    rules: Mapping[str, Sequence[AlertRule]], firing: Sequence[tuple[str, str]]
) -> str:
    """Render `/alerts`: the rules per project, then what fires now (run path, rule)."""
    if not rules:
        return (
            "No alert rules watch this chat's projects. Add <code>alerts:</code> to the lab file."
        )
    lines = ["🔔 <b>Alert rules</b>"]
    for project, project_rules in rules.items():
        lines.append(f"\n<b>{esc(project)}</b>")
        lines += [f"• {describe_rule(rule)}" for rule in project_rules]
    lines.append("\n<b>Firing now</b>")
    lines += [f"• {esc(rule)} · {esc(path)}" for path, rule in firing] or ["nothing"]
    return "\n".join(lines)


def render_dry_run(project: str, checks: Sequence[Check], rules: int, runs: int) -> str:
    """Render `/alerts test`: what would fire now, without sending anything else."""
    head = f"🧪 <b>Alert test</b> · {esc(project)}: {rules} rules on {runs} runs"
    hits = [c for c in checks if c.action == "fire"]
    if not hits:
        return f"{head}\nNothing would fire."
    return "\n".join([head, *(f"🔔 {_line(c)}" for c in hits)])


ALERTS_USAGE = "/alerts [test <project>]"


def parse_alerts(args: Sequence[str], lab: LabConfig) -> ProjectRef | None:
    """Parse `/alerts` (None: the overview) or `/alerts test <project>`."""
    if not args:
        return None
    if args[0].lower() != "test":
        raise UsageError(f'Unknown alerts action "{truncate(args[0], 32)}".', ALERTS_USAGE)
    try:
        return parse_project_arg(args[1:], lab, "alerts")
    except UsageError as exc:
        raise UsageError(exc.reason, ALERTS_USAGE) from None
