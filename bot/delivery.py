"""The outbox worker: sends what the store holds, within Telegram's limits, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.domain.format import TELEGRAM_CAPTION_LIMIT, esc, utf16_len
from bot.store import OutboxItem, OutboxRow, Store

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "cb:"


def keyboard(
    store: Store,
    rows: Sequence[Sequence[Mapping[str, Any]]],
    now: datetime,
    *,
    chat_id: int | None = None,
    user_id: int | None = None,
    ttl: float | None = None,
) -> InlineKeyboardMarkup | None:
    """Turn stored button specs into Telegram buttons whose callback data is a short token."""
    if not rows:
        return None
    expires = now + timedelta(seconds=ttl) if ttl else None
    markup: list[list[InlineKeyboardButton]] = []
    for row in rows:
        buttons = []
        for spec in row:
            if spec.get("url"):
                buttons.append(InlineKeyboardButton(spec["label"], url=spec["url"]))
                continue
            token = store.callbacks.put(
                spec["action"],
                spec["target"],
                now,
                chat_id=chat_id,
                user_id=user_id,
                expires_at=expires,
            )
            buttons.append(
                InlineKeyboardButton(spec["label"], callback_data=CALLBACK_PREFIX + token)
            )
        markup.append(buttons)
    return InlineKeyboardMarkup(markup)


@dataclass
class DeliveryStats:
    """Counters for /status and the benchmarks."""

    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    dead: int = 0
    migrated: int = 0
    paused: int = 0


class Delivery:
    """Send due outbox messages one at a time, pacing each chat, until stopped."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        clock: Callable[[], datetime],
        *,
        admins: Sequence[int],
        chat_interval: float = 1.0,
        idle_wait: float = 1.0,
        max_attempts: int = 8,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._bot = bot
        self._clock = clock
        self._admins = tuple(admins)
        self._chat_interval = chat_interval
        self._idle_wait = idle_wait
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff
        self._next_send: dict[int, datetime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stats = DeliveryStats()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        """Start the worker task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Stop the worker; a message being sent is finished first or left pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.drain()
            except Exception:
                log.exception("outbox delivery round failed")
                wait = self._idle_wait
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.01))

    async def drain(self) -> float:
        """Send every message that may go now; return how long until the next may."""
        now = self._clock()
        paused = self._store.chats.paused()
        held: set[int] = set()
        wait = self._idle_wait
        for row in await asyncio.to_thread(self._store.outbox.due, now, 100):
            if row.chat_id in paused or row.chat_id in held:
                continue
            ready_at = self._next_send.get(row.chat_id)
            if ready_at is not None and ready_at > now:
                held.add(row.chat_id)
                wait = min(wait, (ready_at - now).total_seconds())
                continue
            if not await self._send(row):
                held.add(row.chat_id)
            now = self._clock()
        next_due = self._store.outbox.next_due_at()
        if next_due is not None:
            wait = min(wait, max((next_due - now).total_seconds(), 0.05))
        return wait

    async def _send(self, row: OutboxRow) -> bool:
        """Send one row; return False when its chat must wait."""
        now = self._clock()
        try:
            message = await self._deliver(row, now)
        except RetryAfter as exc:
            retry_after = exc.retry_after
            seconds = (
                retry_after.total_seconds()
                if isinstance(retry_after, timedelta)
                else float(retry_after)
            )
            self.stats.rate_limited += 1
            until = now + timedelta(seconds=seconds)
            self._next_send[row.chat_id] = until
            self._store.outbox.retry_later(
                row.id, f"flood: retry after {seconds:g}s", until, count=False
            )
            return False
        except ChatMigrated as exc:
            self.stats.migrated += 1
            log.info("chat %s became %s; moving its subscriptions", row.chat_id, exc.new_chat_id)
            self._store.chats.migrate(row.chat_id, exc.new_chat_id)
            self.wake()
            return False
        except Forbidden as exc:
            self._pause(row.chat_id, exc.message, now)
            return False
        except BadRequest as exc:
            self.stats.dead += 1
            log.warning("giving up on outbox message %s: %s", row.id, exc.message)
            self._store.outbox.dead_letter(row.id, exc.message)
            return True
        except (TimedOut, NetworkError) as exc:
            attempts = row.attempts + 1
            if attempts >= self._max_attempts:
                self.stats.dead += 1
                self._store.outbox.dead_letter(
                    row.id, f"gave up after {attempts} tries: {exc.message}"
                )
                return True
            self.stats.retried += 1
            delay = min(self._max_backoff, 2.0**attempts)
            self._store.outbox.retry_later(row.id, exc.message, now + timedelta(seconds=delay))
            return False
        self.stats.sent += 1
        self._store.outbox.mark_sent(row.id, message.message_id if message else None, self._clock())
        self._next_send[row.chat_id] = now + timedelta(seconds=self._chat_interval)
        return True

    async def _deliver(self, row: OutboxRow, now: datetime) -> Message | None:
        markup = keyboard(self._store, row.buttons, now, chat_id=row.chat_id)
        if row.photo is None:
            return await self._bot.send_message(
                row.chat_id,
                row.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                disable_web_page_preview=True,
            )
        caption = row.text if 0 < utf16_len(row.text) <= TELEGRAM_CAPTION_LIMIT else None
        if row.text and caption is None:
            await self._bot.send_message(
                row.chat_id, row.text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
            )
            # The text is out; should the photo fail now, a retry sends only the photo.
            self._store.outbox.clear_text(row.id)
        return await self._bot.send_photo(
            row.chat_id, row.photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=markup
        )

    def _pause(self, chat_id: int, reason: str, now: datetime) -> None:
        if not self._store.chats.pause(chat_id, reason):
            return
        self.stats.paused += 1
        log.warning("chat %s refused the bot (%s); its notifications are paused", chat_id, reason)
        text = (
            f"⚠️ I can no longer post to chat <code>{chat_id}</code> ({esc(reason)}). "
            "Its notifications are paused until someone there sends me a command."
        )
        stamp = now.strftime("%Y%m%d%H%M%S")
        self._store.outbox.enqueue(
            [
                OutboxItem(admin, f"paused:{chat_id}:{admin}:{stamp}", "attention", text)
                for admin in self._admins
                if admin != chat_id
            ],
            now,
        )
