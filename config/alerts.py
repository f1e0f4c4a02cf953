"""Metric alert rules of the lab file: one condition each, which runs, which chats."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Agg = Literal["last", "mean", "min", "max"]
Direction = Literal["up", "down"]
Goal = Literal["maximize", "minimize"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_STEPS = re.compile(r"^\s*(\d+)\s*steps?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# W&B metric names: letters, digits and `_ . - /` (`val/accuracy`, `train/loss`).
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/ ]{0,127}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: str | float) -> float:
    """Return seconds from `30m`, `4h`, `90s`, `1d` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be positive")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30m, 4h or 90s")
    return float(match.group(1)) * _UNITS[match.group(2)]


def check_metric(value: str) -> str:
    """Return a W&B metric name (slashes allowed), or raise ValueError."""
    if not _METRIC.match(value) or value.endswith("/") or "//" in value:
        raise ValueError(f"metric {value!r} is not a W&B metric name such as val/accuracy")
    return value


class _Metric(_Model):
    metric: str

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, value: str) -> str:
        return check_metric(value)


class Threshold(_Metric):
    """Fire while the aggregate of the last `over` values is above or below a bound."""

    above: float | None = None
    below: float | None = None
    over: int = Field(default=1, ge=1, le=1000)
    agg: Agg = "last"

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self


class Change(_Metric):
    """Fire when the mean of the last `window` values moved from the `against` before it."""

    window: int = Field(default=5, ge=1, le=1000)
    against: int = Field(default=5, ge=1, le=1000)
    by: str | float
    direction: Direction

    @field_validator("by")
    @classmethod
    def _check_by(cls, value: str | float) -> str | float:
        text = str(value).strip()
        number = text[:-1] if text.endswith("%") else text
        try:
            if float(number) <= 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"by {value!r} must be a positive number or percentage") from None
        return value

    @property
    def relative(self) -> bool:
        """Tell whether `by` is a percentage of the earlier mean."""
        return str(self.by).strip().endswith("%")

    @property
    def amount(self) -> float:
        """Return `by` as a number (a fraction when it is a percentage)."""
        text = str(self.by).strip()
        return float(text[:-1]) / 100 if self.relative else float(text)


class Plateau(_Metric):
    """Fire when the metric has not improved for a time or a number of steps."""

    no_improvement_for: str | float
    goal: Goal | None = None

    @field_validator("no_improvement_for")
    @classmethod
    def _check_span(cls, value: str | float) -> str | float:
        if not (isinstance(value, str) and _STEPS.match(value)):
            parse_duration(value)
        return value

    @property
    def steps(self) -> int | None:
        """Return the span in steps, or None when it is a duration."""
        match = _STEPS.match(str(self.no_improvement_for))
        return int(match.group(1)) if match else None

    @property
    def seconds(self) -> float | None:
        """Return the span in seconds, or None when it is in steps."""
        return None if self.steps is not None else parse_duration(self.no_improvement_for)


class ZScore(_Metric):
    """Fire when a run's value lies `above` standard deviations from recent finished runs."""

    against: int = Field(default=30, ge=3, le=500)
    above: float = Field(default=3.0, gt=0)


class NewBest(_Metric):
    """Fire when a finished run beats every finished run before it."""

    goal: Goal | None = None


class RunFilter(_Model):
    """Which runs a rule watches; every given field must match."""

    tags: tuple[str, ...] = ()
    sweep: str | None = None
    name: str | None = None
    group: str | None = None

    @field_validator("name")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"name {value!r} is not a regular expression: {exc}") from None
        return value


KINDS = ("threshold", "change", "nan", "plateau", "zscore", "new_best")


class AlertRule(_Model):
    """One alert: a name, exactly one condition, which runs, which chats, how often."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    threshold: Threshold | None = None
    change: Change | None = None
    nan: tuple[str, ...] | None = None
    plateau: Plateau | None = None
    zscore: ZScore | None = None
    new_best: NewBest | None = None
    runs: RunFilter = RunFilter()
    chats: tuple[int, ...] = ()
    repeat: str | float = "4h"

    @field_validator("nan")
    @classmethod
    def _check_nan(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one metric")
            for metric in value:
                check_metric(metric)
        return value

    @field_validator("repeat")
    @classmethod
    def _check_repeat(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> AlertRule:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {len(given)})")
        return self

    @property
    def kind(self) -> str:
        """Return which condition the rule has."""
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Return the metrics the rule reads."""
        if self.nan is not None:
            return self.nan
        condition = getattr(self, self.kind)
        return (condition.metric,)

    @property
    def repeat_s(self) -> float:
        """Return the repeat interval in seconds."""
        return parse_duration(self.repeat)

    @property
    def needs_history(self) -> bool:
        """Tell whether the rule reads logged values, not only the latest (summary) one."""
        if self.nan is not None or self.change is not None:
            return True  # W&B leaves a NaN out of the summary: only the logged values tell
        return self.threshold is not None and self.threshold.over > 1
