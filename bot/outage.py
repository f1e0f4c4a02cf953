"""Admin notices about a W&B outage, sent through the outbox like every other message."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.domain.outage import Outage, track_outage
from bot.monitor import PollOutcome
from bot.store import OutboxItem, Store

log = logging.getLogger(__name__)


class OutageNotifier:
    """Watch rounds of polls; tell the admins once W&B has failed a while, and when it is back."""

    def __init__(
        self,
        store: Store,
        admins: Sequence[int],
        clock: Callable[[], datetime],
        *,
        after: float,
    ) -> None:
        self._store = store
        self._admins = tuple(admins)
        self._clock = clock
        self._after = after
        self.state = Outage()

    def observe(self, outcomes: Sequence[PollOutcome]) -> int:
        """Take in one round of polls; return how many notices were queued."""
        if not outcomes:
            return 0
        ok = any(o.ok for o in outcomes)
        error = next((o.error for o in outcomes if not o.ok), None)
        now = self._clock()
        self.state, notice = track_outage(
            self.state, ok=ok, error=error, now=now, after=self._after
        )
        if notice is None:
            return 0
        log.warning("telling the admins (%s); last error: %s", notice.key, self.state.error)
        items = [
            OutboxItem(admin, f"{notice.key}:{admin}", "attention", notice.text)
            for admin in self._admins
        ]
        return len(self._store.outbox.enqueue(items, now))
