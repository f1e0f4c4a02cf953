"""Telegram's send limits as leaky buckets: overall, per chat and per group."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LeakyBucket:
    """Admit a send while the level stays within capacity; the level leaks at `rate` a second."""

    capacity: float
    rate: float
    level: float = 0.0
    stamp: float | None = None

    def delay(self, now: float) -> float:
        """Return the seconds until one more send fits (0 when it fits now)."""
        self._leak(now)
        excess = self.level + 1.0 - self.capacity
        return 0.0 if excess <= 1e-9 else excess / self.rate

    def take(self, now: float) -> None:
        """Count one send."""
        self._leak(now)
        self.level += 1.0

    def hold(self, now: float, seconds: float) -> None:
        """Refuse sends for `seconds` (Telegram asked us to wait that long)."""
        self._leak(now)
        self.level = max(self.level, self.capacity - 1.0 + seconds * self.rate)

    def _leak(self, now: float) -> None:
        if self.stamp is not None:
            self.level = max(0.0, self.level - (now - self.stamp) * self.rate)
        self.stamp = now


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Telegram's limits, with a margin: ~30 a second overall, ~1 a second a chat, 20 a minute a group."""

    overall_rate: float = 29.0
    overall_burst: float = 5.0
    chat_interval: float = 1.0
    group_max: float = 20.0
    group_period: float = 60.0


@dataclass
class Pacer:
    """Say when the next send to a chat may go so that Telegram never answers 429."""

    limits: SendLimits = field(default_factory=SendLimits)
    _overall: LeakyBucket | None = None
    _chats: dict[int, LeakyBucket] = field(default_factory=dict)
    _groups: dict[int, LeakyBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._overall = LeakyBucket(self.limits.overall_burst, self.limits.overall_rate)

    def overall_delay(self, now: float) -> float:
        """Return the seconds until the next send to any chat may go."""
        assert self._overall is not None
        return self._overall.delay(now)

    def chat_delay(self, chat_id: int, now: float) -> float:
        """Return the seconds until this chat (and its group limit) takes one more send."""
        return max((b.delay(now) for b in self._buckets(chat_id)), default=0.0)

    def take(self, chat_id: int, now: float) -> None:
        """Count a send to a chat against every limit it falls under."""
        assert self._overall is not None
        self._overall.take(now)
        for bucket in self._buckets(chat_id):
            bucket.take(now)

    def hold(self, chat_id: int, now: float, seconds: float) -> None:
        """Send nothing more to a chat for `seconds` (a 429's retry_after)."""
        bucket = self._chat(chat_id)
        if bucket is None:
            bucket = self._chats[chat_id] = LeakyBucket(1.0, 1.0)
        bucket.hold(now, seconds)

    def _chat(self, chat_id: int) -> LeakyBucket | None:
        interval = self.limits.chat_interval
        if chat_id not in self._chats and interval > 0:
            self._chats[chat_id] = LeakyBucket(1.0, 1.0 / interval)
        return self._chats.get(chat_id)

    def _buckets(self, chat_id: int) -> list[LeakyBucket]:
        buckets = []
        chat = self._chat(chat_id)
        if chat is not None:
            buckets.append(chat)
        # Negative ids are groups and channels: at most group_max messages a period.
        if chat_id < 0 and self.limits.group_max > 0:
            group = self._groups.get(chat_id)
            if group is None:
                group = self._groups[chat_id] = LeakyBucket(
                    self.limits.group_max, self.limits.group_max / self.limits.group_period
                )
            buckets.append(group)
        return buckets
