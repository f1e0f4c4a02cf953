"""Turn what changed in W&B runs between two polls into run events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from math import isfinite
from typing import Any, Literal

from bot.domain.why import FailureReason
from config.lab import EventKind, ProjectConfig
from wandb_client.models import TERMINAL_STATES, RunSnapshot

# W&B's "preempted" means the run was stopped from outside (a scheduler took the node back)
# and may resume later; for the lab that is a kill, so it is reported (and filtered) as one.
TERMINAL_KINDS: Mapping[str, EventKind] = {
    "finished": "finished",
    "failed": "failed",
    "crashed": "crashed",
    "killed": "killed",
    "preempted": "killed",
}

StallCause = Literal["step", "heartbeat"]

# What a training script logs its own progress under, first found wins; W&B's `_step`
# only counts `log` calls, which a script that logs twice an epoch makes twice as large.
PROGRESS_KEYS: tuple[tuple[str, str], ...] = (
    ("step", "step"),
    ("global_step", "step"),
    ("trainer/global_step", "step"),
    ("epoch", "epoch"),
)


def logged_progress(run: RunSnapshot) -> tuple[str, int] | None:
    """Return how far the run got in its own words (`step N`, `epoch N`), else W&B's step."""
    for key, label in PROGRESS_KEYS:
        value = run.summary.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value):
            return label, int(value)
    return ("step", run.step) if run.step is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class RunMemory:
    """Remember what the bot knew of a run at its last poll."""

    state: str
    sweep: str | None
    last_step: int | None
    step_changed_at: datetime
    heartbeat_at: datetime | None
    stalled: bool
    first_seen_at: datetime
    resumes: int = 0
    stalls: int = 0
    # When the run ended, as digests count it (see `end_moment`); None while it runs.
    ended_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable form for the store."""
        return {
            "state": self.state,
            "sweep": self.sweep,
            "last_step": self.last_step,
            "step_changed_at": _iso(self.step_changed_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "stalled": self.stalled,
            "first_seen_at": _iso(self.first_seen_at),
            "resumes": self.resumes,
            "stalls": self.stalls,
            "ended_at": _iso(self.ended_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMemory:
        """Rebuild a memory from `to_dict` output."""
        step_changed_at = _from_iso(data["step_changed_at"])
        first_seen_at = _from_iso(data.get("first_seen_at")) or step_changed_at
        if step_changed_at is None or first_seen_at is None:
            raise ValueError("run memory needs step_changed_at")
        last_step = data.get("last_step")
        return cls(
            state=str(data["state"]),
            sweep=data.get("sweep"),
            last_step=int(last_step) if last_step is not None else None,
            step_changed_at=step_changed_at,
            heartbeat_at=_from_iso(data.get("heartbeat_at")),
            stalled=bool(data.get("stalled", False)),
            first_seen_at=first_seen_at,
            resumes=int(data.get("resumes", 0)),
            stalls=int(data.get("stalls", 0)),
            ended_at=_from_iso(data.get("ended_at")),
        )


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Say that something worth telling happened to a run."""

    kind: EventKind
    run: RunSnapshot
    previous_state: str | None
    at: datetime
    idle_for: float | None = None
    cadence: float | None = None
    stalled_by: StallCause | None = None
    seq: int = 0
    # Why a failed or crashed run ended, from its console; filled in after the diff.
    why: FailureReason | None = None

    @property
    def dedupe_key(self) -> str:
        """Return a key that is the same for the same happening and differs for a new one.

        Terminal events carry the run's resume count (after the first life), stalled and
        recovered events the run's stall count, so a resumed run can finish again and a run
        can stall twice.
        """
        base = f"{self.run.path}:{self.kind}"
        if self.kind in ("stalled", "recovered"):
            return f"{base}:{self.seq}"
        return f"{base}:{self.seq}" if self.seq else base


@dataclass(frozen=True, slots=True)
class StallPolicy:
    """Decide how long a running run may go without a new step."""

    floor: float = 600.0
    factor: float = 10.0
    fixed: float | None = None

    def for_project(self, project: ProjectConfig) -> StallPolicy:
        """Return this policy with the project's own `stall_after`, when it sets one."""
        return replace(self, fixed=project.stall_after) if project.stall_after else self


def run_cadence(run: RunSnapshot) -> float | None:
    """Return the run's seconds per step so far, when it has logged steps."""
    runtime, step = run.runtime_s, run.step
    if runtime is None or step is None or step <= 0 or runtime <= 0:
        return None
    return runtime / step


def stall_threshold(
    policy: StallPolicy, run: RunSnapshot, memory: RunMemory | None = None
) -> float:
    """Return how many idle seconds make this run stalled."""
    if policy.fixed is not None:
        return policy.fixed
    cadence = run_cadence(run)
    if cadence is None:
        return policy.floor
    return max(policy.floor, policy.factor * cadence)


@dataclass(frozen=True, slots=True)
class Detection:
    """Carry the details a rule found, for the event it raises."""

    idle_for: float | None = None
    cadence: float | None = None
    stalled_by: StallCause | None = None


Predicate = Callable[[RunMemory | None, RunSnapshot, datetime, StallPolicy], Detection | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One notification rule: the event kind and the pure test that raises it."""

    key: EventKind
    detect: Predicate


def _idle(previous: RunMemory, run: RunSnapshot, now: datetime) -> tuple[float, float | None]:
    """Return seconds since the step last moved and the heartbeat's age."""
    moved = run.step != previous.last_step
    idle = 0.0 if moved else (now - previous.step_changed_at).total_seconds()
    beat = (now - run.heartbeat_at).total_seconds() if run.heartbeat_at is not None else None
    return idle, beat


def _stall(previous: RunMemory, run: RunSnapshot, now: datetime, policy: StallPolicy) -> Detection:
    """Return the stall details when the run is stalled now, an empty detection otherwise."""
    threshold = stall_threshold(policy, run, previous)
    idle, beat = _idle(previous, run, now)
    cadence = run_cadence(run)
    if idle > threshold:
        return Detection(idle_for=idle, cadence=cadence, stalled_by="step")
    if beat is not None and beat > threshold:
        return Detection(idle_for=beat, cadence=cadence, stalled_by="heartbeat")
    return Detection(idle_for=idle, cadence=cadence)


def _ended_as(kind: EventKind) -> Predicate:
    """Build the rule test for a run that reached a terminal state mapping to `kind`."""

    def detect(
        previous: RunMemory | None, run: RunSnapshot, now: datetime, policy: StallPolicy
    ) -> Detection | None:
        if TERMINAL_KINDS.get(run.state) != kind:
            return None
        if previous is not None and TERMINAL_KINDS.get(previous.state) == kind:
            return None
        return Detection()

    return detect


def _stalled(
    previous: RunMemory | None, run: RunSnapshot, now: datetime, policy: StallPolicy
) -> Detection | None:
    if previous is None or run.state != "running" or previous.state != "running":
        return None
    if previous.stalled:
        return None
    found = _stall(previous, run, now, policy)
    return found if found.stalled_by is not None else None


def _recovered(
    previous: RunMemory | None, run: RunSnapshot, now: datetime, policy: StallPolicy
) -> Detection | None:
    if previous is None or run.state != "running" or not previous.stalled:
        return None
    if _stall(previous, run, now, policy).stalled_by is not None:
        return None
    # How long it was stuck: from the last step change the bot saw to now.
    idle = (now - previous.step_changed_at).total_seconds()
    return Detection(idle_for=idle, cadence=run_cadence(run))


RULES: tuple[Rule, ...] = (
    Rule("finished", _ended_as("finished")),
    Rule("failed", _ended_as("failed")),
    Rule("crashed", _ended_as("crashed")),
    Rule("killed", _ended_as("killed")),
    Rule("stalled", _stalled),
    Rule("recovered", _recovered),
)


def _is_resume(previous: RunMemory | None, run: RunSnapshot) -> bool:
    """Tell whether a run the bot saw ended has come back (or ended differently)."""
    if previous is None or previous.state not in TERMINAL_STATES:
        return False
    return TERMINAL_KINDS.get(run.state) != TERMINAL_KINDS.get(previous.state)


def end_moment(run: RunSnapshot, now: datetime) -> datetime:
    """Return when a run that the bot just saw end counts as ended, for digests.

    W&B's last heartbeat, except for a crash: W&B declares one only once the heartbeat has
    been missing a while, so a digest in between saw the run running and the next would
    find its heartbeat before its window. A crash counts from when the bot saw it.
    """
    if run.state == "crashed" or run.heartbeat_at is None:
        return now
    return run.heartbeat_at


def _ended_at(
    previous: RunMemory | None, run: RunSnapshot, now: datetime, kinds: set[EventKind]
) -> datetime | None:
    if kinds & set(TERMINAL_KINDS.values()):
        return end_moment(run, now)
    if run.state not in TERMINAL_STATES or previous is None or previous.state != run.state:
        return None
    return previous.ended_at


def _remember(
    previous: RunMemory | None, run: RunSnapshot, now: datetime, kinds: set[EventKind]
) -> RunMemory:
    """Return the memory of a run after this poll and the events it raised."""
    if previous is None:
        return RunMemory(
            state=run.state,
            sweep=run.sweep,
            last_step=run.step,
            step_changed_at=now,
            heartbeat_at=run.heartbeat_at,
            stalled=False,
            first_seen_at=now,
            ended_at=_ended_at(previous, run, now, kinds),
        )
    resumed = _is_resume(previous, run)
    # A run that (re)starts running gets a fresh idle clock, whatever its step says.
    moved = resumed or run.step != previous.last_step or run.state != previous.state
    stalled = previous.stalled
    if "stalled" in kinds:
        stalled = True
    if "recovered" in kinds or run.state != "running" or resumed:
        stalled = False
    return replace(
        previous,
        state=run.state,
        sweep=run.sweep or previous.sweep,
        last_step=run.step,
        step_changed_at=now if moved else previous.step_changed_at,
        heartbeat_at=run.heartbeat_at,
        stalled=stalled,
        resumes=previous.resumes + (1 if resumed else 0),
        stalls=previous.stalls + (1 if "stalled" in kinds else 0),
        ended_at=_ended_at(previous, run, now, kinds),
    )


def diff_runs(
    memory: Mapping[str, RunMemory],
    runs: Iterable[RunSnapshot],
    now: datetime,
    policy: StallPolicy,
    *,
    baseline: bool,
    news_since: datetime | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> tuple[list[RunEvent], dict[str, RunMemory]]:
    """Return the events these run snapshots raise and the updated memory of each run seen.

    With `baseline` (the first poll of a new subscription) runs are only remembered. A run
    seen for the first time raises only a terminal event (it ended between polls or while
    the bot was down), and only when its last sign of life is not older than `news_since`:
    an old run that someone edited (tags, notes, a late summary) is not news. The caller
    merges the returned memory into its own.
    """
    events: list[RunEvent] = []
    updated: dict[str, RunMemory] = {}
    for run in runs:
        previous = memory.get(run.path)
        found: list[tuple[EventKind, Detection]] = []
        last_sign = run.heartbeat_at or run.created_at
        old_news = previous is None and news_since is not None and last_sign < news_since
        if not baseline and not old_news:
            for rule in rules:
                detection = rule.detect(previous, run, now, policy)
                if detection is not None:
                    found.append((rule.key, detection))
        new = _remember(previous, run, now, {kind for kind, _ in found})
        updated[run.path] = new
        for kind, detection in found:
            seq = new.stalls if kind in ("stalled", "recovered") else new.resumes
            events.append(
                RunEvent(
                    kind=kind,
                    run=run,
                    previous_state=previous.state if previous is not None else None,
                    at=now,
                    idle_for=detection.idle_for,
                    cadence=detection.cadence,
                    stalled_by=detection.stalled_by,
                    seq=seq,
                )
            )
    return events, updated
