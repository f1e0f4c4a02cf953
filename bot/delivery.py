"""The outbox worker: sends what the store holds, fairly, within Telegram's limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from telegram import Bot, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.callbacks import keyboard
from bot.domain.format import TELEGRAM_CAPTION_LIMIT, fmt_duration, utf16_len
from bot.domain.pacing import Pacer, SendLimits
from bot.domain.render import render_chat_paused, render_telegram_back
from bot.store import OutboxItem, OutboxRow, Store
from bot.topics import NoTopics, Topics

log = logging.getLogger(__name__)

# Due rows read once serve the sends of this long; new messages wait at most this for a look.
_BATCH_LIFETIME = timedelta(seconds=1)

# (chat id, message kind, now) → until when the message must wait (quiet hours), or None.
HoldPolicy = Callable[[int, str, datetime], datetime | None]


@dataclass
class DeliveryStats:
    """Counters for /status and the benchmarks."""

    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    dead: int = 0
    expired: int = 0
    migrated: int = 0
    paused: int = 0
    late: int = 0
    held: int = 0


@dataclass
class Outage:
    """Track a run of transport failures: back-off, the warning, and the recovery notice."""

    max_backoff: float
    warn_after: float
    since: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None
    warned: bool = False
    error: str = ""

    @property
    def active(self) -> bool:
        """Tell whether the last send failed in transport."""
        return self.since is not None

    def failed(self, now: datetime, error: str) -> datetime:
        """Count a failure; return when the next send may try (doubling, capped)."""
        if self.since is None:
            self.since = now
        self.failures += 1
        self.error = error
        delay = min(self.max_backoff, 2.0 ** (self.failures - 1))
        self.retry_at = now + timedelta(seconds=delay)
        return self.retry_at

    def should_warn(self, now: datetime) -> bool:
        """Say once per outage that it has lasted long enough to log a warning."""
        if self.since is None or self.warned:
            return False
        self.warned = (now - self.since).total_seconds() >= self.warn_after
        return self.warned

    def recovered(self, now: datetime) -> float | None:
        """End the outage; return how long it lasted if it was long enough to tell."""
        since, warned = self.since, self.warned
        self.since, self.failures, self.retry_at, self.warned = None, 0, None, False
        if since is None:
            return None
        lasted = (now - since).total_seconds()
        return lasted if warned or lasted >= self.warn_after else None


class Delivery:
    """Send due outbox messages to many chats at once, paced under Telegram's limits."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        clock: Callable[[], datetime],
        *,
        admins: Sequence[int],
        chat_interval: float = 1.0,
        idle_wait: float = 1.0,
        max_age: float = 86400.0,
        max_backoff: float = 60.0,
        send_timeout: float = 30.0,
        warn_after: float = 60.0,
        concurrency: int = 32,
        limits: SendLimits | None = None,
        topics: Topics | None = None,
        hold: HoldPolicy | None = None,
    ) -> None:
        self._store = store
        self._hold = hold
        self._bot = bot
        self._topics = topics or NoTopics()
        self._clock = clock
        self._admins = tuple(admins)
        self._idle_wait = idle_wait
        self._max_age = timedelta(seconds=max_age)
        self._send_timeout = send_timeout
        self._concurrency = concurrency
        self._pacer = Pacer(limits or SendLimits(chat_interval=chat_interval))
        self._outage = Outage(max_backoff=max_backoff, warn_after=warn_after)
        self._wake = asyncio.Event()
        self._batch: list[OutboxRow] = []
        self._batch_at = datetime.min.replace(tzinfo=UTC)
        # Anything but a plain success may change which rows are due: read them again.
        self._stale = True
        # Each send's end has an epoch; rows read before it must not send that row again.
        self._epoch = 0
        self._batch_epoch = 0
        self._finished: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.stats = DeliveryStats()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next tick."""
        self._stale = True
        self._wake.set()

    def start(self) -> None:
        """Start the worker task."""
        if self._hold is not None:
            # Quiet hours may have changed with the lab file: hold what waits by today's rule.
            now = self._clock()
            for outbox_id, chat_id, kind in self._store.outbox.held(now):
                self._store.outbox.hold(outbox_id, self._hold(chat_id, kind, now))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-delivery")

    async def stop(self) -> None:
        """Stop the worker; messages being sent are left pending and go out after a restart."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def resume(self, chat_id: int) -> None:
        """Send to a chat that refused the bot again, and tell it what was held meanwhile."""
        held = self._store.chats.resume(chat_id)
        if held:
            now = self._clock()
            text = f"▶️ back: {held} notification{'s' if held != 1 else ''} held were delivered"
            stamp = now.strftime("%Y%m%d%H%M%S%f")
            self._store.outbox.enqueue(
                [OutboxItem(chat_id, f"back:{chat_id}:{stamp}", "attention", text)], now
            )
        self.wake()

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
        sends: dict[int, asyncio.Task[None]] = {}
        try:
            while True:
                wait = await self._dispatch(sends)
                if not sends:
                    return wait
                await asyncio.wait(
                    sends.values(), timeout=max(wait, 0.01), return_when=asyncio.FIRST_COMPLETED
                )
                for chat_id, task in list(sends.items()):
                    if task.done():
                        del sends[chat_id]
                        if not task.cancelled() and task.exception() is not None:
                            log.error(
                                "sending to chat %s failed", chat_id, exc_info=task.exception()
                            )
        finally:
            for task in sends.values():
                task.cancel()
            await asyncio.gather(*sends.values(), return_exceptions=True)

    async def _dispatch(self, sends: dict[int, asyncio.Task[None]]) -> float:
        """Start sends to chats that may take one now (one at a time a chat, fair order)."""
        now = self._clock()
        if self._outage.retry_at is not None and self._outage.retry_at > now:
            return (self._outage.retry_at - now).total_seconds()
        # While Telegram is unreachable one message probes it; the rest wait for its answer.
        room = (1 if self._outage.active else self._concurrency) - len(sends)
        if room <= 0:
            return self._idle_wait
        rows = await self._due(now)
        wait = self._idle_wait
        started: set[int] = set()
        for row in rows:
            if room <= 0:
                break
            if row.chat_id in sends or self._finished.get(row.id, -1) > self._batch_epoch:
                continue  # in flight, or its outcome is newer than the rows read
            if self._held(row, now):
                started.add(row.id)
                continue
            moment = self._clock().timestamp()
            chat_wait = self._pacer.chat_delay(row.chat_id, moment)
            if chat_wait > 0:
                wait = min(wait, chat_wait)
                continue
            if (overall := self._pacer.overall_delay(moment)) > 0:
                await asyncio.sleep(overall)
                moment = self._clock().timestamp()
            self._pacer.take(row.chat_id, moment)
            sends[row.chat_id] = asyncio.create_task(self._send(row))
            started.add(row.id)
            room -= 1
        self._batch = [row for row in rows if row.id not in started]
        if not rows:
            next_due = await asyncio.to_thread(self._store.outbox.next_due_at)
            if next_due is not None:
                wait = min(wait, max((next_due - self._clock()).total_seconds(), 0.05))
        return wait

    def _held(self, row: OutboxRow, now: datetime) -> bool:
        """Hold a message its person must not get now (quiet hours); tell whether it was."""
        until = self._hold(row.chat_id, row.kind, now) if self._hold is not None else None
        if until is None or until <= now:
            return False
        self._store.outbox.hold(row.id, until)
        self.stats.held += 1
        self._stale = True
        log.info("message %s to chat %s held until %s (quiet hours)", row.id, row.chat_id, until)
        return True

    async def _due(self, now: datetime) -> list[OutboxRow]:
        """Return the due rows, read again only when stale: one read serves many sends."""
        if self._stale or not self._batch or now - self._batch_at > _BATCH_LIFETIME:
            limit = 4 * self._concurrency + 50
            # Sends that end while the rows are read must not be taken for pending ones.
            epoch = self._epoch
            self._finished = {k: v for k, v in self._finished.items() if v > epoch}
            self._batch = await asyncio.to_thread(self._store.outbox.due, now, limit)
            self._batch_at, self._batch_epoch, self._stale = now, epoch, False
        return self._batch

    async def _send(self, row: OutboxRow) -> None:
        """Send one row and record what Telegram said."""
        try:
            if not await self._send_once(row):
                self._stale = True
        except BaseException:
            self._stale = True
            raise
        finally:
            self._epoch += 1
            self._finished[row.id] = self._epoch

    async def _send_once(self, row: OutboxRow) -> bool:
        """Send one row; return True when Telegram took it."""
        now = self._clock()
        if self._outage.active and now - row.queued_at > self._max_age:
            self._expire(row)
            return False
        try:
            message = await self._topics.send(
                row.chat_id,
                row.topic,
                row.thread_id,
                lambda thread: deliver_row(
                    self._bot, self._store, row, now, self._send_timeout, thread
                ),
            )
        except RetryAfter as exc:
            self._rate_limited(row, exc, self._clock())
        except ChatMigrated as exc:
            self.stats.migrated += 1
            log.info("chat %s became %s; moving its subscriptions", row.chat_id, exc.new_chat_id)
            self._store.chats.migrate(row.chat_id, exc.new_chat_id)
            self.wake()
        except Forbidden as exc:
            self._pause(row.chat_id, exc.message, now)
        except BadRequest as exc:
            self.stats.dead += 1
            log.warning("giving up on outbox message %s: %s", row.id, exc.message)
            self._store.outbox.dead_letter(row.id, exc.message)
        except NetworkError as exc:  # TimedOut too: Telegram may or may not have it
            self._transport_failed(row, exc, self._clock())
        else:
            self.stats.sent += 1
            self._store.outbox.mark_sent(
                row.id, message.message_id if message else None, self._clock()
            )
            self._recovered()
            return True
        return False

    def _rate_limited(self, row: OutboxRow, exc: RetryAfter, now: datetime) -> None:
        retry_after = exc.retry_after
        seconds = (
            retry_after.total_seconds()
            if isinstance(retry_after, timedelta)
            else float(retry_after)
        )
        self.stats.rate_limited += 1
        self._pacer.hold(row.chat_id, now.timestamp(), seconds)
        until = now + timedelta(seconds=seconds)
        self._store.outbox.retry_later(
            row.id, f"flood: retry after {seconds:g}s", until, count=False
        )

    def _transport_failed(self, row: OutboxRow, exc: NetworkError, now: datetime) -> None:
        self.stats.retried += 1
        if now - row.queued_at > self._max_age:
            self._expire(row)
            return
        retry_at = self._outage.failed(now, exc.message)
        if isinstance(exc, TimedOut):
            # The send may have reached Telegram: give it time to show before sending again.
            retry_at = max(retry_at, now + timedelta(seconds=self._send_timeout))
        self._store.outbox.retry_later(row.id, f"{type(exc).__name__}: {exc.message}", retry_at)
        log.info("Telegram unreachable (%s); message %s waits", exc.message, row.id)
        if self._outage.should_warn(now):
            log.warning(
                "Telegram has been unreachable for %s (%s); %d notifications waiting",
                fmt_duration((now - (self._outage.since or now)).total_seconds()),
                exc.message,
                self._store.outbox.counts()["pending"],
            )

    def _recovered(self) -> None:
        now = self._clock()
        lasted = self._outage.recovered(now)
        if lasted is None:
            return
        late = 1 + self._store.outbox.counts()["pending"]
        self.stats.late += late
        log.warning("Telegram reachable again after %s", fmt_duration(lasted))
        text = render_telegram_back(lasted, late)
        stamp = now.strftime("%Y%m%d%H%M%S%f")
        self._store.outbox.enqueue(
            [OutboxItem(a, f"recovered:{a}:{stamp}", "attention", text) for a in self._admins], now
        )

    def _expire(self, row: OutboxRow) -> None:
        self.stats.expired += 1
        log.warning(
            "giving up on outbox message %s to chat %s: not delivered within %s",
            row.id,
            row.chat_id,
            fmt_duration(self._max_age.total_seconds()),
        )
        self._store.outbox.dead_letter(row.id, "expired: Telegram unreachable too long")

    def _pause(self, chat_id: int, reason: str, now: datetime) -> None:
        if not self._store.chats.pause(chat_id, reason):
            return
        self.stats.paused += 1
        log.warning("chat %s refused the bot (%s); its notifications are paused", chat_id, reason)
        text = render_chat_paused(chat_id, reason)
        stamp = now.strftime("%Y%m%d%H%M%S")
        self._store.outbox.enqueue(
            [
                OutboxItem(admin, f"paused:{chat_id}:{admin}:{stamp}", "attention", text)
                for admin in self._admins
                if admin != chat_id
            ],
            now,
        )


async def deliver_row(
    bot: Bot,
    store: Store,
    row: OutboxRow,
    now: datetime,
    read_timeout: float,
    thread_id: int | None = None,
) -> Message | None:
    """Send one outbox row to its thread: text, or photo with caption (long text first)."""
    markup = keyboard(store, row.buttons, now, chat_id=row.chat_id)
    if row.photo is None:
        return await bot.send_message(
            row.chat_id,
            row.text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            disable_web_page_preview=True,
            read_timeout=read_timeout,
            reply_parameters=_reply(store, row),
            message_thread_id=thread_id,
        )
    caption = row.text if 0 < utf16_len(row.text) <= TELEGRAM_CAPTION_LIMIT else None
    if row.text and caption is None:
        await bot.send_message(
            row.chat_id,
            row.text,
            parse_mode=ParseMode.HTML,
            disable_web_page_preview=True,
            read_timeout=read_timeout,
            message_thread_id=thread_id,
        )
        # The text is out; should the photo fail now, a retry sends only the photo.
        store.outbox.clear_text(row.id)
    return await bot.send_photo(
        row.chat_id,
        row.photo,
        caption=caption,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
        message_thread_id=thread_id,
    )


def _reply(store: Store, row: OutboxRow) -> ReplyParameters | None:
    """Answer the earlier message a row names (an alert's thread), if it was sent."""
    message_id = store.outbox.message_id(row.reply_to) if row.reply_to else None
    if message_id is None:
        return None
    # A deleted original must not keep the answer from going out.
    return ReplyParameters(message_id, allow_sending_without_reply=True)
