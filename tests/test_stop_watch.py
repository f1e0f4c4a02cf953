"""A stop that has not taken effect is told once per request, after WTB_STOP_RETRY_AFTER."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.stop_watch import AWAIT_STOP, StopWatch
from bot.store import Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RUN = "lab/wine/abc123"


class FakeDelivery:
    """Counts wake-ups (our own seam)."""

    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_a_slow_stop_is_told_once_after_the_wait_and_a_new_request_waits_again(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    now = [T0]
    delivery = FakeDelivery()
    watch = StopWatch(store, delivery, lambda: now[0], after_s=120)  # type: ignore[arg-type]
    store.callbacks.put(AWAIT_STOP, RUN, T0, chat_id=-100)
    store.callbacks.put(AWAIT_STOP, RUN, T0, chat_id=None)  # nobody to tell

    now[0] = T0 + timedelta(seconds=119)
    assert watch.check() == 0
    now[0] = T0 + timedelta(seconds=120)
    assert watch.check() == 1 and delivery.woken == 1
    [note] = store.outbox.due(now[0])
    assert note.chat_id == -100 and note.kind == "stop-slow"
    assert "has not taken effect after 2m" in note.text and RUN in note.text
    assert [(b.label, b.action, b.target) for row in note.buttons for b in row] == [
        ("Try again", "stop_again", RUN)
    ]
    now[0] = T0 + timedelta(seconds=600)
    assert watch.check() == 0  # told once per request, however long it takes

    # Try again puts a new request: it gets its own wait and its own note.
    store.callbacks.put(AWAIT_STOP, RUN, now[0], chat_id=-100)
    assert watch.check() == 0
    now[0] += timedelta(seconds=120)
    assert watch.check() == 1
    store.close()
