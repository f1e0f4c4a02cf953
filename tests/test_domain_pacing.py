"""Pacing under Telegram's limits: overall, per chat, per group, and after a 429."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.pacing import LeakyBucket, Pacer, SendLimits
from tests.servers.telegram.flood import FloodControl, FloodLimits


def send_times(pacer: Pacer, chats: list[int], until: float, step: float = 0.001) -> list[float]:
    """Send round-robin to `chats` as fast as the pacer allows; return each send's time."""
    out, now, turn = [], 0.0, 0
    while now < until:
        chat = chats[turn % len(chats)]
        if pacer.overall_delay(now) == 0 and pacer.chat_delay(chat, now) == 0:
            pacer.take(chat, now)
            out.append(now)
            turn += 1
        now += step
    return out


def test_bucket_admits_its_burst_then_its_rate() -> None:
    bucket = LeakyBucket(capacity=3, rate=1)
    for _ in range(3):
        assert bucket.delay(0) == 0
        bucket.take(0)
    assert bucket.delay(0) == pytest.approx(1.0)
    assert bucket.delay(1.0) == 0


@pytest.mark.parametrize("chats", [[1], [1, 2, 3, 4, 5], list(range(-50, 0)), list(range(1, 51))])
def test_paced_sends_are_never_refused_by_telegrams_flood_model(chats: list[int]) -> None:
    """Replay the sends against the local Telegram server's model of flood control."""
    clock = [0.0]
    telegram = FloodControl(FloodLimits(), clock=lambda: clock[0])
    pacer = Pacer(SendLimits())
    times: list[float] = []
    now, turn = 0.0, 0
    while now < 20.0:
        chat = chats[turn % len(chats)]
        if pacer.overall_delay(now) == 0 and pacer.chat_delay(chat, now) == 0:
            pacer.take(chat, now)
            clock[0] = now
            assert telegram.check(chat) == 0, (now, chat)
            times.append(now)
            turn += 1
        now += 0.001
    if len(chats) >= 30:
        assert len(times) >= 29 * 19  # close to the limit: 29 a second after a short burst
        assert len(times) <= 5 + 29 * 20


def test_one_message_a_second_in_a_chat() -> None:
    private = send_times(Pacer(SendLimits()), [42], until=9.5)
    assert len(private) == 10 and all(b - a >= 0.999 for a, b in itertools.pairwise(private))


def test_a_group_takes_twenty_at_once_then_one_every_three_seconds() -> None:
    group = send_times(Pacer(SendLimits(chat_interval=0)), [-100], until=9.5)
    assert group[19] < 1.0  # twenty at once, paced only by the overall rate
    assert [round(t) for t in group[20:]] == [3, 6, 9]


def test_a_429_holds_its_chat_for_retry_after() -> None:
    pacer = Pacer(SendLimits(chat_interval=0))
    pacer.hold(7, 0.0, 5.0)
    assert pacer.chat_delay(7, 0.0) == pytest.approx(5.0)
    assert pacer.chat_delay(7, 5.0) == 0
    assert pacer.chat_delay(8, 0.0) == 0
