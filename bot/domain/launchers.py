"""Say where a sweep's agents are, in the chat's words: running, pending and why, ended how."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.format import esc


@dataclass(frozen=True, slots=True)
class AgentPlace:
    """One agent as its launcher sees it now: phase, why it waits or how it ended, where."""

    phase: str  # pending | running | ended | unknown
    reason: str = ""
    where: str = ""


def agents_summary(places: Sequence[AgentPlace]) -> str:
    """Return `4 agents · 2 running · 2 pending (Resources)`: how many are in each phase."""
    bits = [f"{len(places)} agent{'s' if len(places) != 1 else ''}"]
    phases = Counter(p.phase for p in places)
    if phases["running"]:
        bits.append(f"{phases['running']} running")
    if phases["pending"]:
        reasons = sorted({p.reason for p in places if p.phase == "pending" and p.reason})
        why = f" ({esc(', '.join(reasons))})" if reasons else ""
        bits.append(f"{phases['pending']} pending{why}")
    if phases["ended"]:
        bits.append(f"{phases['ended']} ended")
    return " · ".join(bits)


def ends_summary(label: str, places: Sequence[AgentPlace]) -> str:
    """Return how a launcher's agents ended: `Slurm array 12 · COMPLETED` or a count per end."""
    ends = Counter(p.reason or "ended" for p in places if p.phase == "ended")
    if not ends:
        return ""
    if len(ends) == 1 and ends.total() == len(places):
        return f"{esc(label)} · {esc(next(iter(ends)))}"
    return f"{esc(label)} · " + " · ".join(f"{n} {esc(word)}" for word, n in sorted(ends.items()))


def group_label(kind: str, wheres: Sequence[str]) -> str:
    """Name a sweep's agents on one launcher: `Slurm array 4711` from tasks `4711_0`, …."""
    if kind == "slurm":
        jobs = sorted({w.split("_", 1)[0] for w in wheres if w})
        return f"Slurm array{'s' if len(jobs) > 1 else ''} {', '.join(jobs)}".rstrip()
    return kind


def place_text(place: AgentPlace) -> str:
    """Return one agent's state in a few words: `pending (Resources)`, `running on n1`, …."""
    if place.phase == "pending":
        return f"pending ({place.reason})" if place.reason else "pending"
    if place.phase == "running":
        return f"running on {place.where}" if place.where else "running"
    return place.reason or place.phase
