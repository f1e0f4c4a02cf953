"""Tell whoever asked to stop a run when the stop has not taken effect after a while."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.delivery import Delivery
from bot.domain.control import render_stop_slow
from bot.store import OutboxItem, Store

log = logging.getLogger(__name__)

# The action of the tokens the monitor drops once it sees the run end.
AWAIT_STOP = "await_stop"


class StopWatch:
    """Find stop requests older than `after_s` whose run has not ended, and say so once each."""

    def __init__(
        self, store: Store, delivery: Delivery, clock: Callable[[], datetime], after_s: float
    ) -> None:
        """Keep the collaborators; `after_s` is `WTB_STOP_RETRY_AFTER`."""
        self._store = store
        self._delivery = delivery
        self._clock = clock
        self._after = timedelta(seconds=after_s)

    def check(self) -> int:
        """Enqueue one note per overdue stop request; return how many are new."""
        now = self._clock()
        items = []
        for path, records in self._store.callbacks.pending(AWAIT_STOP).items():
            for record in records:
                if record.chat_id is None or now - record.created_at < self._after:
                    continue
                text, buttons = render_stop_slow(path, (now - record.created_at).total_seconds())
                # Keyed by the request's token: each request is told about once, restart or not.
                key = f"stop-slow:{record.token}"
                items.append(
                    OutboxItem(
                        record.chat_id,
                        key,
                        "stop-slow",
                        text,
                        buttons,
                        # Said in the topic the stop was asked in.
                        thread_id=record.thread_id,
                    )
                )
        ids = self._store.outbox.enqueue(items, now) if items else []
        if ids:
            log.info("%d stop request(s) not taken effect yet; told who asked", len(ids))
            self._delivery.wake()
        return len(ids)

    async def check_job(self, _context: object = None) -> None:
        """Periodic job: run `check`."""
        self.check()
