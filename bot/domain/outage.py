"""Tell the admins once when W&B has failed for a while, and once when it answers again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.format import esc, fmt_duration, truncate

ERROR_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Outage:
    """What the bot knows of W&B failing: since when, the last error, whether admins know."""

    since: datetime | None = None
    error: str | None = None
    told: bool = False


@dataclass(frozen=True, slots=True)
class OutageNotice:
    """One message for the admins about W&B going down or coming back."""

    key: str
    text: str


def one_line(error: str | None) -> str:
    """Return an error's first line, shortened: what an admin reads in a chat."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return truncate(lines[0], ERROR_LIMIT) if lines else "no answer"


def track_outage(
    state: Outage, *, ok: bool, error: str | None, now: datetime, after: float
) -> tuple[Outage, OutageNotice | None]:
    """Return the outage state after a round of polls, and the notice it calls for.

    `ok` is whether any poll of the round got an answer from W&B. A notice goes out once
    polls have failed for `after` seconds, and one when an answer comes after that.
    """
    if ok:
        if state.since is not None and state.told:
            lasted = fmt_duration((now - state.since).total_seconds())
            stamp = f"{state.since:%Y%m%dT%H%M%S}"
            text = f"✅ W&B answers again after {lasted} down; polls resume."
            return Outage(), OutageNotice(f"wandb-up:{stamp}", text)
        return Outage(), None
    since = state.since or now
    state = replace(state, since=since, error=error or state.error)
    if state.told or (now - since).total_seconds() < after:
        return state, None
    text = (
        f"⚠️ W&B has not answered for {fmt_duration((now - since).total_seconds())}: "
        f"{esc(one_line(state.error))}\nNotifications follow once it answers."
    )
    return replace(state, told=True), OutageNotice(f"wandb-down:{since:%Y%m%dT%H%M%S}", text)
