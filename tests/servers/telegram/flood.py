"""Model Telegram's flood limits as leaky buckets with an injectable clock."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class LeakyBucket:
    """Admit one unit while the level stays within capacity; the level leaks at a fixed rate.

    ``capacity`` is the burst a fresh bucket admits, ``rate`` the units that leak away per
    second (the sustained throughput). A refused unit does not raise the level.
    """

    capacity: float
    rate: float
    clock: Clock = time.monotonic
    level: float = 0.0
    _stamp: float | None = field(default=None, repr=False)

    def _leak(self) -> float:
        now = self.clock()
        if self._stamp is not None:
            self.level = max(0.0, self.level - (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def wait_time(self, amount: float = 1.0) -> float:
        """Say how many seconds until ``amount`` more units fit (0 if they fit now)."""
        self._leak()
        excess = self.level + amount - self.capacity
        return 0.0 if excess <= 1e-9 else excess / self.rate

    def try_acquire(self, amount: float = 1.0) -> float:
        """Add ``amount`` and return 0, or return the seconds to wait and add nothing."""
        wait = self.wait_time(amount)
        if wait == 0.0:
            self.level += amount
        return wait


def retry_after_seconds(wait: float) -> int:
    """Round a wait up to the whole seconds Telegram puts in ``retry_after`` (at least 1)."""
    return max(1, math.ceil(wait - 1e-9))


@dataclass(frozen=True)
class FloodLimits:
    """Hold the bucket shapes: per chat, per group (negative chat id) and overall."""

    chat_rate: float = 1.0
    chat_burst: float = 3.0
    group_max: float = 20.0
    group_period: float = 60.0
    overall_rate: float = 30.0
    overall_burst: float = 30.0


class FloodControl:
    """Decide whether a send or edit to a chat fits all three buckets right now."""

    def __init__(self, limits: FloodLimits | None = None, clock: Clock = time.monotonic) -> None:
        self.limits = limits or FloodLimits()
        self.clock = clock
        self.overall = LeakyBucket(self.limits.overall_burst, self.limits.overall_rate, clock)
        self.chats: dict[int, LeakyBucket] = {}
        self.groups: dict[int, LeakyBucket] = {}

    def _buckets(self, chat_id: int) -> list[LeakyBucket]:
        limits = self.limits
        chat = self.chats.get(chat_id)
        if chat is None:
            chat = self.chats[chat_id] = LeakyBucket(
                limits.chat_burst, limits.chat_rate, self.clock
            )
        buckets = [self.overall, chat]
        if chat_id < 0 and limits.group_max > 0 and limits.group_period > 0:
            group = self.groups.get(chat_id)
            if group is None:
                group = self.groups[chat_id] = LeakyBucket(
                    limits.group_max, limits.group_max / limits.group_period, self.clock
                )
            buckets.append(group)
        return buckets

    def check(self, chat_id: int) -> float:
        """Admit one message to ``chat_id`` and return 0, or return the seconds to wait."""
        buckets = self._buckets(chat_id)
        wait = max(bucket.wait_time() for bucket in buckets)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.level += 1
        return 0.0

    def reset(self) -> None:
        """Forget every bucket's level."""
        self.overall = LeakyBucket(self.limits.overall_burst, self.limits.overall_rate, self.clock)
        self.chats.clear()
        self.groups.clear()
