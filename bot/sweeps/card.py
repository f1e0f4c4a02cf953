"""A sweep's live card: one message, edited in place as the sweep goes, never too often."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.callbacks import keyboard
from bot.domain.control import last_error
from bot.domain.keys import SweepKey
from bot.domain.render import Buttons, render_sweep_card
from bot.domain.sweeps import SweepPhase, agents_gave_up, sweep_phase
from bot.store import Store, SweepRecord
from bot.sweeps.common import SweepSource, Tasks, read_progress, sweep_topic
from bot.topics import NoTopics, Topics
from config import LabConfig
from wandb_client.errors import WandbError

log = logging.getLogger(__name__)

# A stopped sweep's last runs end after it: its card keeps telling them this long.
CARD_CLAIM_AFTER_END = timedelta(hours=1)


def card_claims(store: Store, lab: LabConfig, now: datetime) -> dict[SweepKey, int]:
    """Return the sweeps whose finished runs their card tells, each with the card's chat.

    Those are the sweeps started from a chat, running or ended within the last hour,
    unless the lab file asks for a message per run (`sweep_runs: each`).
    """
    claims = {}
    for sweep in store.sweeps.all():
        if sweep.finished_at is not None and sweep.finished_at < now - CARD_CLAIM_AFTER_END:
            continue
        key = SweepKey.parse(sweep.path)
        if lab.sweep_runs_of(sweep.name, key.project) == "card":
            claims[key] = sweep.chat_id
    return claims


class CardBot(Protocol):
    """The two Bot API calls a card needs (the real one is `telegram.Bot`)."""

    async def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: InlineKeyboardMarkup | None = None,
        message_thread_id: int | None = None,
    ) -> Message:
        """Send a message."""
        ...

    async def edit_message_text(
        self,
        text: str,
        *,
        chat_id: int,
        message_id: int,
        reply_markup: InlineKeyboardMarkup | None = None,
    ) -> Message | bool:
        """Edit a message's text."""
        ...


class AgentFacts(Protocol):
    """What the card asks of the agents (the real one is `AgentWatch`)."""

    def live(self, path: str) -> int:
        """Return how many agents of a sweep run."""
        ...

    async def log_tails(self, path: str) -> list[list[str]]:
        """Return the last lines of each agent's log."""
        ...

    async def describe(self, path: str) -> tuple[str, str] | None:
        """Return agents off this host summed up (live, ended), or None for local ones."""
        ...


class EditPacer:
    """Space each card's edits `interval` apart and let only changes of substance through."""

    def __init__(self, interval_s: float, clock: Callable[[], datetime]) -> None:
        """Pace by `clock`, the bot's one clock."""
        self._interval = timedelta(seconds=interval_s)
        self._clock = clock
        self._not_before: dict[str, datetime] = {}
        self._signatures: dict[str, str] = {}

    def wait_s(self, key: str) -> float:
        """Return how long to wait before the next edit of a card may go out."""
        not_before = self._not_before.get(key)
        if not_before is None:
            return 0.0
        return max(0.0, (not_before - self._clock()).total_seconds())

    def attempted(self, key: str) -> None:
        """Note an edit going out now: the next one waits a full interval."""
        self._not_before[key] = self._clock() + self._interval

    def hold(self, key: str, seconds: float) -> None:
        """Telegram asked for a pause: no edit before it is over."""
        self._not_before[key] = self._clock() + timedelta(seconds=seconds)

    def worth(self, key: str, text: str, signature: str, shown: str | None) -> bool:
        """Say whether `text` is worth an edit: new, and not only the clock moved on.

        `signature` is the card drawn without its elapsed time; `shown` is what the chat
        shows now (None before the card was sent).
        """
        if shown is None:
            return True
        return text != shown and signature != self._signatures.get(key)

    def shown(self, key: str, signature: str) -> None:
        """Remember what the chat shows now."""
        self._signatures[key] = signature


def retry_after_s(exc: RetryAfter) -> float:
    """Return Telegram's requested pause in seconds."""
    pause = exc.retry_after
    return pause.total_seconds() if isinstance(pause, timedelta) else float(pause)


class SweepCards:
    """Keep each started sweep's card up to date: coalesce requests, pace edits, dedupe."""

    def __init__(
        self,
        *,
        store: Store,
        wandb: SweepSource,
        bot: CardBot,
        clock: Callable[[], datetime],
        tasks: Tasks,
        interval_s: float,
        agents: AgentFacts,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        topics: Topics | None = None,
    ) -> None:
        """Keep the collaborators; `sleep` is injected so tests run on a fake clock."""
        self._topics = topics or NoTopics()
        self._store = store
        self._wandb = wandb
        self._bot = bot
        self._clock = clock
        self._tasks = tasks
        self._agents = agents
        self._sleep = sleep
        self._pacer = EditPacer(interval_s, clock)
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._markups: dict[tuple[str, tuple[tuple[str, str], ...]], InlineKeyboardMarkup] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def request_refresh(self, path: str) -> None:
        """Bring a sweep's card up to date soon, at most once per interval."""
        task = self._refreshing.get(path)
        if task is not None and not task.done():
            self._dirty.add(path)
            return
        self._refreshing[path] = self._tasks.spawn(self._refresh_later(path), f"card-{path}")

    def refresh_started(self) -> None:
        """Refresh every active sweep's card (catches what no event showed)."""
        for sweep in self._store.sweeps.all(active_only=True):
            # A sweep without a card is still starting: its start shows the first card.
            if sweep.card_message_id is not None:
                self.request_refresh(sweep.path)

    def forget(self) -> None:
        """Drop the refresh tasks (cancelled with the others at shutdown)."""
        self._refreshing.clear()

    async def _refresh_later(self, path: str) -> None:
        while True:
            wait = self._pacer.wait_s(path)
            if wait > 0:
                await self._sleep(wait)
            self._dirty.discard(path)
            try:
                await self.refresh(path)
            except WandbError as exc:
                log.warning("sweep card of %s not refreshed: %s", path, exc)
            except Exception:
                log.exception("sweep card of %s failed", path)
            if path not in self._dirty:
                return

    async def refresh(self, path: str) -> None:
        """Draw a sweep's card now and show it if it changed (no pacing)."""
        async with self._locks.setdefault(path, asyncio.Lock()):
            sweep = self._store.sweeps.get(path)
            if sweep is None:
                return
            snapshot, progress = await read_progress(self._wandb, path)
            sweep = self._store.sweeps.get(path) or sweep  # agents may have ended meanwhile
            end = sweep.finished_at or self._clock()
            agents = self._agents.live(path)
            # Agents a launcher placed elsewhere (Slurm) are summed up by their state there.
            described = await self._agents.describe(path)
            phase = sweep_phase(
                wandb_state=snapshot.state,
                live_agents=agents,
                done=progress.done,
                count=sweep.count,
                breaker_tripped=sweep.breaker_tripped,
            )
            note, last_failure = await self._why(path, phase, progress.failed)

            def card(elapsed_s: float) -> tuple[str, Buttons]:
                return render_sweep_card(
                    snapshot,
                    lab_name=sweep.name,
                    done=progress.done,
                    count=sweep.count,
                    failed=progress.failed,
                    agents=agents,
                    elapsed_s=elapsed_s,
                    best=progress.best,
                    metric=snapshot.metric,
                    phase=phase,
                    note=note,
                    last_failure=last_failure,
                    agents_text=described[0] if described else None,
                    ends_text=described[1] if described else "",
                )

            text, buttons = card((end - sweep.started_at).total_seconds())
            # Only a change of substance earns an edit; the clock alone rides along later.
            signature = card(0.0)[0]
            shown = sweep.card_text if sweep.card_message_id is not None else None
            if not self._pacer.worth(path, text, signature, shown):
                return
            if await self._show(sweep, text, self._markup(sweep, buttons)):
                self._pacer.shown(path, signature)

    async def _why(self, path: str, phase: SweepPhase, failed: int) -> tuple[str, str | None]:
        """Return why the sweep ended early and its last failure, from the agents' logs."""
        if not failed and phase != "gave_up":
            return "", None
        tails = await self._agents.log_tails(path)
        error = next((e for e in (last_error(t) for t in reversed(tails)) if e), None)
        note = ""
        if phase == "gave_up":
            why = next((w for w in (agents_gave_up(t) for t in tails) if w), None)
            note = f"agents gave up {why}" if why else "agents ended with runs left"
        return note, error

    def _markup(self, sweep: SweepRecord, buttons: Buttons) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        key = (sweep.path, tuple((b.label, b.action) for row in buttons for b in row))
        cached = self._markups.get(key)
        if cached is None:
            cached = keyboard(self._store, buttons, self._clock(), chat_id=sweep.chat_id)
            if cached is not None:
                self._markups[key] = cached
        return cached

    async def _show(
        self, sweep: SweepRecord, text: str, markup: InlineKeyboardMarkup | None
    ) -> bool:
        """Send the card, or edit it in place; return whether the chat shows `text` now."""
        self._pacer.attempted(sweep.path)
        try:
            if sweep.card_message_id is None:
                # Edits need no thread: the card stays in the topic it was sent to.
                message = await self._topics.send(
                    sweep.chat_id,
                    sweep_topic(sweep.path),
                    sweep.thread_id,
                    lambda thread: self._bot.send_message(
                        sweep.chat_id, text, reply_markup=markup, message_thread_id=thread
                    ),
                )
                self._store.sweeps.update(
                    sweep.path, card_message_id=message.message_id, card_text=text
                )
                return True
            await self._bot.edit_message_text(
                text, chat_id=sweep.chat_id, message_id=sweep.card_message_id, reply_markup=markup
            )
        except RetryAfter as exc:
            # Telegram asked for a pause: show the card again once it is over.
            self._pacer.hold(sweep.path, retry_after_s(exc))
            self._dirty.add(sweep.path)
            return False
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("sweep card of %s: %s", sweep.path, exc.message)
                return False
        except NetworkError as exc:
            log.info("sweep card of %s not shown yet (%s); trying again", sweep.path, exc)
            self._dirty.add(sweep.path)
            return False
        except TelegramError as exc:
            log.warning("sweep card of %s not shown: %s", sweep.path, exc)
            return False
        self._store.sweeps.update(sweep.path, card_text=text)
        return True
