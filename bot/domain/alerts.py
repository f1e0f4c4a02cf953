"""Metric alerts: evaluate lab-file rules on what a poll saw, with Alertmanager semantics.

Pure: the caller passes the run, the rule's stored state, the clock reading, the logged
values new since the last poll (history-based rules only) and the baseline of finished
runs; it gets back the new state and what to say, if anything.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from config.alerts import AlertRule
from wandb_client.models import RunSnapshot

Action = Literal["fire", "repeat", "resolve"]
Goal = Literal["maximize", "minimize"]
# Kinds judged once, on the run's final value; they never resolve or repeat.
ONE_SHOT = frozenset({"new_best", "zscore"})
_NONFINITE = {"nan": math.nan, "infinity": math.inf, "inf": math.inf, "-infinity": -math.inf}


def metric_value(summary: Mapping[str, Any], metric: str) -> float | None:
    """Return a summary's value of `metric` as a float (NaN and ±inf included), or None."""
    value = summary.get(metric)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _NONFINITE.get(value.strip().lower().lstrip("+"))
    return None


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the bot remembers of one rule on one run between polls."""

    firing: bool = False
    since: datetime | None = None
    sent_at: datetime | None = None
    thread: str | None = None
    window: tuple[float, ...] = ()
    last_step: int | None = None
    best: float | None = None
    best_step: int | None = None
    best_at: datetime | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready data."""
        data = asdict(self)
        for key in ("since", "sent_at", "best_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["window"] = list(self.window)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Rebuild a state from `to_dict` data."""
        times = {
            key: datetime.fromisoformat(data[key]) if data.get(key) else None
            for key in ("since", "sent_at", "best_at")
        }
        plain = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**plain, **times, "window": tuple(data.get("window") or ())})


@dataclass(frozen=True, slots=True)
class Baseline:
    """Finished runs' values of one metric, newest first, for zscore and new_best."""

    values: tuple[tuple[str, float], ...] = ()

    def others(self, run_id: str, limit: int | None = None) -> list[float]:
        """Return the finite values of runs other than `run_id`, newest first."""
        out = [v for rid, v in self.values if rid != run_id and math.isfinite(v)]
        return out[:limit] if limit is not None else out


@dataclass(frozen=True, slots=True)
class Check:
    """One rule judged on one run: its new state, and what to tell the chat."""

    rule: AlertRule
    run: RunSnapshot
    state: AlertState
    action: Action | None
    detail: str


def matches(rule: AlertRule, run: RunSnapshot) -> bool:
    """Tell whether a rule's `runs:` filter selects this run."""
    f = rule.runs
    if f.tags and not set(f.tags) & set(run.tags):
        return False
    if f.sweep is not None and run.sweep != f.sweep:
        return False
    if f.group is not None and run.group != f.group:
        return False
    return f.name is None or any(re.search(f.name, text) for text in (run.display_name, run.id))


def better(value: float, than: float | None, goal: Goal) -> bool:
    """Tell whether `value` improves on `than` under `goal`."""
    if than is None:
        return True
    return value > than if goal == "maximize" else value < than


def _fmt(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.4g}"


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a condition may read besides the run and the state."""

    now: datetime
    history: Sequence[tuple[int, float]]
    baseline: Baseline
    goal: Goal


Verdict = tuple[bool | None, str, AlertState]
"""Whether a condition holds (None: not enough data yet), why, and the updated state."""


def _nan(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    # W&B drops a NaN from the summary, so the logged values are what tell.
    fresh = [(s, v) for s, v in seen.history if state.last_step is None or s > state.last_step]
    state = replace(state, last_step=max((s for s, _ in fresh), default=state.last_step))
    summary = [(run.step or 0, metric_value(run.summary, m)) for m in rule.metrics]
    values = fresh + [(step, v) for step, v in summary if v is not None]
    if not values:
        return None, "", state
    bad = [(step, v) for step, v in values if not math.isfinite(v)]
    if not bad:
        return False, f"{', '.join(rule.metrics)} finite again", state
    step, value = bad[0]
    return True, f"{' or '.join(rule.metrics)} is {_fmt(value)} at step {step}", state


def _windowed(state: AlertState, seen: _Seen, keep: int) -> AlertState:
    """Add the logged values new since the last poll to the rule's window of `keep`."""
    fresh = [v for step, v in seen.history if state.last_step is None or step > state.last_step]
    last = max((step for step, _ in seen.history), default=state.last_step)
    return replace(state, window=(*state.window, *fresh)[-keep:], last_step=last)


def _threshold(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    t = rule.threshold
    assert t is not None
    metric = t.metric
    if t.over > 1:
        state = _windowed(state, seen, t.over)
        values = list(state.window) if len(state.window) >= t.over else []
    else:
        value = metric_value(run.summary, metric)
        values = [] if value is None else [value]
    if not values:
        return None, "", state
    aggs = {"last": values[-1], "mean": statistics.fmean(values), "min": min(values)}
    agg = aggs.get(t.agg, max(values))
    over = f" ({t.agg} of last {t.over})" if t.over > 1 else ""
    if t.above is not None:
        holds, word, bound = agg > t.above, "above", t.above
    else:
        assert t.below is not None
        holds, word, bound = agg < t.below, "below", t.below
    return holds, f"{metric} {_fmt(agg)}{over} {'' if holds else 'not '}{word} {bound:g}", state


def _change(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    c = rule.change
    assert c is not None
    state = _windowed(state, seen, c.window + c.against)
    if len(state.window) < c.window + c.against:
        return None, "", state
    earlier = statistics.fmean(state.window[: c.against])
    delta = statistics.fmean(state.window[c.against :]) - earlier
    if c.relative:
        if earlier == 0:
            return None, "", state
        delta /= abs(earlier)
    moved = delta if c.direction == "up" else -delta
    shown = f"{delta:+.1%}" if c.relative else f"{delta:+.4g}"
    why = f"{c.metric} moved {shown} (last {c.window} values against the {c.against} before)"
    return moved >= c.amount, why, state


def _plateau(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    p = rule.plateau
    assert p is not None
    value = metric_value(run.summary, p.metric)
    if value is None or not math.isfinite(value):
        return None, "", state
    if better(value, state.best, p.goal or seen.goal):
        state = replace(state, best=value, best_step=run.step, best_at=seen.now)
        return False, f"{p.metric} improved to {_fmt(value)}", state
    best = _fmt(state.best if state.best is not None else value)
    if p.steps is not None:
        steps = (run.step or 0) - (state.best_step or 0)
        return steps >= p.steps, f"{p.metric} no better than {best} for {steps} steps", state
    waited = seen.now - (state.best_at or seen.now)
    holds = waited >= timedelta(seconds=p.seconds or 0)
    return holds, f"{p.metric} no better than {best} for {_span(waited)}", state


def _zscore(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    z = rule.zscore
    assert z is not None
    value = metric_value(run.summary, z.metric)
    others = seen.baseline.others(run.id, z.against)
    if value is None or not math.isfinite(value) or len(others) < 3:
        return None, "", state
    spread = statistics.pstdev(others)
    if spread == 0:
        return None, "", state
    score = (value - statistics.fmean(others)) / spread
    why = f"{z.metric} {_fmt(value)} is {score:+.1f}σ from the last {len(others)} finished runs"
    return abs(score) >= z.above, why, state


def _new_best(rule: AlertRule, run: RunSnapshot, state: AlertState, seen: _Seen) -> Verdict:
    b = rule.new_best
    assert b is not None
    value = metric_value(run.summary, b.metric)
    others = seen.baseline.others(run.id)
    if value is None or not math.isfinite(value) or not others:
        return None, "", state
    goal = b.goal or seen.goal
    best = max(others) if goal == "maximize" else min(others)
    return better(value, best, goal), f"{b.metric} {_fmt(value)}, best before {_fmt(best)}", state


# One entry per rule kind: a new kind is one function and one row of tests.
CONDITIONS = {
    "nan": _nan,
    "threshold": _threshold,
    "change": _change,
    "plateau": _plateau,
    "zscore": _zscore,
    "new_best": _new_best,
}


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def judged_on(rule: AlertRule, run: RunSnapshot) -> bool:
    """Tell whether the rule judges this run now: live runs; finished ones for one-shot kinds."""
    if rule.kind in ONE_SHOT:
        return run.state == "finished"
    return run.state == "running"


def evaluate(
    rule: AlertRule,
    run: RunSnapshot,
    state: AlertState,
    now: datetime,
    *,
    history: Sequence[tuple[int, float]] = (),
    baseline: Baseline = Baseline(),
    goal: Goal = "maximize",
) -> Check:
    """Judge one rule on one run: fire once, repeat after `repeat`, resolve when it clears."""
    seen = _Seen(now, history, baseline, goal)
    if state.firing and not judged_on(rule, run):
        # The run ended while the alert fired: the alert ends too, "resolved" only when the
        # run's last values no longer meet the condition.
        holds, detail, state = CONDITIONS[rule.kind](rule, run, state, seen)
        ended = replace(state, firing=False, since=None)
        return Check(rule, run, ended, "resolve" if holds is False else None, detail)
    if state.done or not judged_on(rule, run) or not matches(rule, run):
        return Check(rule, run, state, None, "")
    holds, detail, state = CONDITIONS[rule.kind](rule, run, state, seen)
    if rule.kind in ONE_SHOT:
        if holds is None:
            return Check(rule, run, state, None, "")
        return Check(rule, run, replace(state, done=True), "fire" if holds else None, detail)
    if holds and not state.firing:
        return Check(rule, run, replace(state, firing=True, since=now, sent_at=now), "fire", detail)
    repeat = timedelta(seconds=rule.repeat_s)
    if holds and state.sent_at is not None and now - state.sent_at >= repeat:
        return Check(rule, run, replace(state, sent_at=now), "repeat", detail)
    if holds is False and state.firing:
        return Check(rule, run, replace(state, firing=False, since=None), "resolve", detail)
    return Check(rule, run, state, None, detail)
