"""Lab members: who owns a run, how a message names them, and when their messages may wait."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bot.domain.commands import MINE_USAGE, UsageError
from bot.domain.format import esc, truncate
from config.lab import PersonConfig, QuietHours

NAME_LIMIT = 32

# What may not wait for the morning: a run that failed or crashed or stalls (it holds a
# GPU for nothing), a metric alert, a stop that took effect, the bot needing attention, and
# answers the person just asked for (a Config button, /digest). Everything else sent to a
# person in quiet hours (finished runs, scheduled digests, sweep reports) waits until the
# quiet range ends.
URGENT_KINDS = frozenset(
    {
        "failed",
        "crashed",
        "stalled",
        "burst-failed",
        "alert",
        "alert-resolved",
        "stop-confirmed",
        "attention",
        "config",
        "digest-asked",
    }
)
# What `/mine` sends a person about their own runs.
MINE_KINDS = frozenset({"finished", "failed", "crashed", "stalled"})


def mention(username: str | None, people: Mapping[str, PersonConfig]) -> str:
    """Return how a message names a run's owner: a Telegram mention if mapped, else text.

    An unmapped owner keeps their W&B username as plain text; an unknown one is "".
    """
    if not username:
        return ""
    person = people.get(username)
    if person is None:
        return esc(truncate(username, NAME_LIMIT))
    name = esc(truncate(person.name or username, NAME_LIMIT))
    return f'<a href="tg://user?id={person.telegram}">{name}</a>'


def is_urgent(kind: str) -> bool:
    """Tell whether a message of this kind goes out even in quiet hours."""
    return kind in URGENT_KINDS


def _quiet_at(clock: time, quiet: QuietHours) -> bool:
    """Tell whether a wall-clock time lies in the quiet range (start included, end not)."""
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end


def quiet_until(now: datetime, quiet: QuietHours, zone: str | tzinfo) -> datetime | None:
    """Return when the quiet range around `now` ends (UTC), or None when `now` is not quiet.

    The range is read on the wall clock of `zone`, so it follows daylight saving time and
    may cross midnight (22:00-08:00). An end that falls in a skipped hour (spring forward)
    comes at the same wall-clock time after the jump; in a repeated hour, at its first
    occurrence still ahead.
    """
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = now.astimezone(tz)
    if not _quiet_at(local.time().replace(tzinfo=None), quiet):
        return None
    day = local.date()
    if quiet.end < quiet.start and local.time().replace(tzinfo=None) >= quiet.start:
        day += timedelta(days=1)
    for fold in (0, 1):
        moment = datetime.combine(day, quiet.end, tzinfo=tz).replace(fold=fold).astimezone(UTC)
        # In a skipped hour one reading lands before the gap, still quiet: take the other.
        if moment > now and not _quiet_at(moment.astimezone(tz).time(), quiet):
            return moment
    # Unreachable for real zones; the later reading is the safe answer.
    return max(
        datetime.combine(day, quiet.end, tzinfo=tz).replace(fold=f).astimezone(UTC) for f in (0, 1)
    )


def hold_until(
    chat_id: int, kind: str, now: datetime, people: Mapping[str, PersonConfig], lab_zone: str
) -> datetime | None:
    """Return until when a message must wait: a non-urgent one to a person in quiet hours."""
    if is_urgent(kind):
        return None
    person = next((p for p in people.values() if p.telegram == chat_id), None)
    if person is None or person.quiet is None:
        return None
    return quiet_until(now, person.quiet, person.timezone or lab_zone)


def parse_mine(args: Sequence[str]) -> bool:
    """Parse `/mine [off]`: True subscribes (or says to what), False ends it."""
    if not args:
        return True
    if len(args) == 1 and args[0].lower() == "off":
        return False
    raise UsageError(f'Unknown /mine option "{truncate(" ".join(args), 32)}".', MINE_USAGE)


def render_not_person(user_id: int) -> str:
    """Return what someone not in `people:` hears when asking for /mine."""
    return (
        "I do not know your W&amp;B username yet. An admin can add it to the lab file under "
        f"<code>people:</code> with your Telegram id <code>{user_id}</code>."
    )


def render_private_only(bot_username: str | None) -> str:
    """Return what /mine answers in a group: it works in a private chat."""
    if bot_username:
        url = f"https://t.me/{bot_username}?start=mine"
        return f'/mine works in a private chat with me: <a href="{esc(url)}">open it</a>.'
    return "/mine works in a private chat with me."


def render_mine(
    username: str, person: PersonConfig, zone: str, since: datetime | None, *, new: bool
) -> str:
    """Say what a person's /mine subscription covers, and whether it just began."""
    head = "🔔 Subscribed" if new else f"🔔 Subscribed since {since:%d %b %Y}" if since else "🔔"
    lines = [
        f"{head}: I tell you here when your runs (W&amp;B user <b>{esc(username)}</b>) "
        "finish, fail, crash or stall, and when they fire alerts; nobody else's.",
    ]
    if person.quiet is not None:
        lines.append(
            f"Quiet hours {person.quiet} ({esc(zone)}): finished runs and digests wait until "
            "they end; failures, crashes, stalls and alerts come at once."
        )
    lines.append("<code>/mine off</code> stops this.")
    return "\n".join(lines)


def render_mine_off(was: bool) -> str:
    """Say that /mine ended, or that there was nothing to end."""
    if was:
        return "🔕 Unsubscribed: no more private messages about your runs. /mine starts again."
    return "You were not subscribed. /mine subscribes you to your own runs."
