"""Read why failed and crashed runs ended from their console output, a few per poll."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from bot.domain.events import RunEvent
from bot.domain.why import explain
from wandb_client.errors import WandbError
from wandb_client.models import ConsoleLine

log = logging.getLogger(__name__)

TailReader = Callable[[str, str, str, int], Awaitable[list[ConsoleLine]]]
EXPLAINED_KINDS = frozenset({"failed", "crashed"})
# Each read is one request: a burst of 200 failures reads the first few consoles, and the
# rest still get their message, just without the reason.
MAX_READS_PER_POLL = 5
TAIL_LINES = 30


class FailureExplainer:
    """Fill in a failed or crashed run's reason from the last lines of its console."""

    def __init__(
        self, read_tail: TailReader, *, max_reads: int = MAX_READS_PER_POLL, lines: int = TAIL_LINES
    ) -> None:
        self._read_tail = read_tail
        self._max_reads = max_reads
        self._lines = lines

    async def __call__(self, events: Sequence[RunEvent]) -> list[RunEvent]:
        """Return the events, each failed or crashed one (up to the cap) with its reason."""
        out: list[RunEvent] = []
        reads = 0
        for event in events:
            if event.kind in EXPLAINED_KINDS and event.why is None and reads < self._max_reads:
                reads += 1
                event = await self._explain(event)
            out.append(event)
        return out

    async def _explain(self, event: RunEvent) -> RunEvent:
        run = event.run
        try:
            tail = await self._read_tail(run.entity, run.project, run.id, self._lines)
        except WandbError as exc:
            # A reason is a bonus: the notification goes out without it.
            log.info("console of %s unreadable: %s", run.path, exc)
            return event
        return replace(event, why=explain([line.text for line in tail]))
