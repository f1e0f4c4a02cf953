"""Prometheus metrics: counters bumped where things happen, the rest read at scrape time."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

P = ParamSpec("P")

# `_created` twins of every counter only double the output; nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# One registry for the whole process: counters only grow, and every bot in a test process
# adds to the same ones, so tests compare before and after.
REGISTRY = CollectorRegistry(auto_describe=True)
# The bot process's CPU, memory and open files (read from /proc; nothing elsewhere).
ProcessCollector(registry=REGISTRY)

POLLS = Counter(
    "wtb_polls",
    "Polls of W&B projects, by project and outcome (ok or error).",
    ["project", "outcome"],
    registry=REGISTRY,
)
POLL_SECONDS = Histogram(
    "wtb_poll_seconds",
    "How long one poll of a project took.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
COMMANDS = Counter(
    "wtb_commands",
    "Chat commands answered, by command and outcome (ok, or error when one escaped).",
    ["command", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "wtb_command_seconds",
    "Time from a chat command's arrival to its answer, by command.",
    ["command"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "wtb_wandb_webhooks",
    "W&B automation webhooks received, by outcome (accepted, unauthorized, too_large, bad).",
    ["outcome"],
    registry=REGISTRY,
)


def record_poll(project: str, ok: bool, seconds: float) -> None:
    """Count one poll of `entity/project` and how long it took."""
    POLLS.labels(project=project, outcome="ok" if ok else "error").inc()
    POLL_SECONDS.observe(seconds)


def timed_command(
    command: str, callback: Callable[P, Coroutine[Any, Any, None]]
) -> Callable[P, Coroutine[Any, Any, None]]:
    """Wrap a command callback so that each answer is counted and timed under `command`."""

    @functools.wraps(callback)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> None:
        started = time.monotonic()
        outcome = "error"
        try:
            await callback(*args, **kwargs)
            outcome = "ok"
        finally:
            COMMANDS.labels(command=command, outcome=outcome).inc()
            COMMAND_SECONDS.labels(command=command).observe(time.monotonic() - started)

    return timed


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the bot's state says at one scrape; built by the HTTP endpoint from its services."""

    wandb_requests: int
    wandb_errors: Mapping[str, int]
    poll_lag: Mapping[str, float]
    sent: int
    retried: int
    dead: int
    rate_limited: int
    queued: int
    oldest_queued_age: float
    agents_running: int


class StateCollector(Collector):
    """Turn a fresh `Snapshot` into metric families at every scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Yield the scrape-time metrics."""
        s = self._snapshot()
        yield CounterMetricFamily(
            "wtb_wandb_requests", "Calls the bot made to W&B.", s.wandb_requests
        )
        errors = CounterMetricFamily(
            "wtb_wandb_errors", "W&B calls that failed, by kind of error.", labels=["kind"]
        )
        for kind, count in sorted(s.wandb_errors.items()):
            errors.add_metric([kind], count)
        yield errors
        lag = GaugeMetricFamily(
            "wtb_poll_lag_seconds",
            "Seconds since the last successful poll, per watched project.",
            labels=["project"],
        )
        for project, seconds in sorted(s.poll_lag.items()):
            lag.add_metric([project], seconds)
        yield lag
        for name, doc, value in (
            ("wtb_notifications_sent", "Messages Telegram accepted.", s.sent),
            ("wtb_notifications_retried", "Sends that failed and were retried later.", s.retried),
            ("wtb_notifications_dead", "Messages given up on.", s.dead),
            (
                "wtb_telegram_rate_limited",
                "Answers 429 (flood control) from Telegram.",
                s.rate_limited,
            ),
        ):
            yield CounterMetricFamily(name, doc, value)
        yield GaugeMetricFamily(
            "wtb_notifications_queued", "Messages waiting in the outbox.", s.queued
        )
        yield GaugeMetricFamily(
            "wtb_outbox_oldest_age_seconds",
            "Age of the oldest message waiting in the outbox (0 when empty).",
            s.oldest_queued_age,
        )
        yield GaugeMetricFamily("wtb_agents_running", "Sweep agents alive now.", s.agents_running)


def age_seconds(now: datetime, then: datetime | None) -> float:
    """Return the seconds from `then` to `now`, 0 when there is no `then`."""
    return max((now - then).total_seconds(), 0.0) if then is not None else 0.0
