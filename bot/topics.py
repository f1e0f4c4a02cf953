"""Send into the right forum topic: open it once, reopen a deleted one, never drop a message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bot.domain.format import STATE_MARKERS, esc
from bot.domain.topics import TopicChoice, choose_topic, wants_topics
from bot.store import OutboxItem, Store
from config.lab import LabConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
# After a chat refused to have a topic opened, wait this long before asking again (a restart
# asks at once); meanwhile its messages go to the chat itself.
REOPEN_AFTER = timedelta(minutes=10)
_THREAD_GONE = "message thread not found"


class Topics(Protocol):
    """Send a message about `key` into its topic of a chat (the real one is TopicService)."""

    async def send(
        self,
        chat_id: int,
        key: str | None,
        fallback: int | None,
        send: Callable[[int | None], Awaitable[T]],
    ) -> T:
        """Call `send(thread)` with the thread the message goes to; return what it returns."""
        ...


class NoTopics:
    """Send every message to the thread it names: for parts run without the lab's topics."""

    async def send(
        self,
        chat_id: int,
        key: str | None,
        fallback: int | None,
        send: Callable[[int | None], Awaitable[T]],
    ) -> T:
        """Call `send(fallback)`."""
        return await send(fallback)


class _Gone:
    """The thread a send named does not exist (any more)."""


_GONE = _Gone()


async def _attempt(send: Callable[[int | None], Awaitable[T]], thread: int) -> T | _Gone:
    try:
        return await send(thread)
    except BadRequest as exc:
        if _THREAD_GONE in exc.message.lower():
            return _GONE
        raise


class TopicService:
    """Find each message's topic: the lab file's, or one opened once per project and chat.

    A deleted topic is opened again once; a chat that cannot have topics (not a forum, or
    the bot lacks the right) is told once and gets its messages in the chat itself.
    """

    def __init__(
        self,
        store: Store,
        bot: Bot,
        lab: LabConfig,
        clock: Callable[[], datetime],
        *,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._bot = bot
        self._lab = lab
        self._clock = clock
        self.on_enqueued = on_enqueued
        self._locks: dict[int, asyncio.Lock] = {}
        self._refused_until: dict[int, datetime] = {}

    async def send(
        self,
        chat_id: int,
        key: str | None,
        fallback: int | None,
        send: Callable[[int | None], Awaitable[T]],
    ) -> T:
        """Call `send(thread)` for the topic of `key` in the chat, else for `fallback`.

        Each thread that turns out not to exist gives way to the next: the project's topic,
        that topic opened again, `fallback` (where a command was asked), the chat itself.
        """
        choice = choose_topic(self._lab, chat_id, key)
        if choice is not None and key is not None:
            thread = await self._thread(chat_id, key, choice)
            if thread is not None:
                sent = await _attempt(send, thread)
                if not isinstance(sent, _Gone):
                    return sent
                again = await self._reopen(chat_id, key, choice, thread)
                sent = await _attempt(send, again) if again is not None else _GONE
                if not isinstance(sent, _Gone):
                    return sent
        if fallback is not None:
            sent = await _attempt(send, fallback)
            if not isinstance(sent, _Gone):
                return sent
        return await send(None)

    def problem(self, chat_id: int) -> str | None:
        """Return why the chat's messages do not go to their topics, None when they do."""
        return topic_problem(self._store, self._lab, chat_id)

    async def _thread(self, chat_id: int, key: str, choice: TopicChoice) -> int | None:
        """Return the topic's thread, opening it on first use; None when it cannot be."""
        if choice.thread_id is not None or choice.open_as is None:
            return choice.thread_id
        known = self._store.topics.thread(chat_id, key)
        if known is not None:
            return known
        async with self._locks.setdefault(chat_id, asyncio.Lock()):
            # Another message of the chat may have opened it while this one waited.
            known = self._store.topics.thread(chat_id, key)
            if known is not None:
                return known
            now = self._clock()
            if self._refused_until.get(chat_id, now) > now:
                return None
            try:
                topic = await self._bot.create_forum_topic(chat_id, choice.open_as)
            except BadRequest as exc:
                self._refused_until[chat_id] = now + REOPEN_AFTER
                log.warning("cannot open a topic in chat %s: %s", chat_id, exc.message)
                self._tell(chat_id, _refusal(exc.message))
                return None
            log.info("opened topic %r in chat %s", choice.open_as, chat_id)
            self._store.topics.remember(
                chat_id, key, topic.message_thread_id, choice.open_as, self._clock()
            )
            return topic.message_thread_id

    async def _reopen(self, chat_id: int, key: str, choice: TopicChoice, gone: int) -> int | None:
        """Open a deleted topic again (once); a lab file's topic that is gone is told once."""
        if choice.open_as is None:
            self._tell(
                chat_id,
                f"topic {gone} of {esc(key.rpartition('/')[2])} in the lab file is not found "
                "here; name another there",
            )
            return None
        log.info("topic %s of %s in chat %s was deleted; opening it again", gone, key, chat_id)
        self._store.topics.forget(chat_id, key, gone)
        return await self._thread(chat_id, key, choice)

    def _tell(self, chat_id: int, reason: str) -> None:
        """Say once in the chat itself why its messages are not in their topics."""
        now = self._clock()
        if not self._store.topics.report_problem(chat_id, reason, now):
            return
        text = f"⚠️ <b>topics</b>: {reason}. Messages go to the chat itself meanwhile."
        stamp = now.strftime("%Y%m%d%H%M%S%f")
        self._store.outbox.enqueue(
            [OutboxItem(chat_id, f"topics:{chat_id}:{stamp}", "attention", text)], now
        )
        self.on_enqueued()


def topic_problem(store: Store, lab: LabConfig, chat_id: int) -> str | None:
    """Return why a chat's messages are not in their topics, while the lab file wants them."""
    return store.topics.problem(chat_id) if wants_topics(lab, chat_id) else None


async def check_topics(bot: Bot, lab: LabConfig) -> list[str]:
    """Return one line per lab chat that wants topics: whether Telegram shows it a forum."""
    lines = []
    for chat in lab.chats:
        if not wants_topics(lab, chat.id):
            continue
        try:
            forum = bool((await bot.get_chat(chat.id)).is_forum)
        except TelegramError as exc:
            lines.append(f"  {STATE_MARKERS['attention']} chat {chat.title}: {exc.message}")
            continue
        lines.append(
            f"  chat {chat.title}: a forum, topics ok"
            if forum
            else f"  {STATE_MARKERS['attention']} chat {chat.title}: not a forum, so its "
            "messages go to the chat itself (turn Topics on, or drop its topics)"
        )
    return lines


def _refusal(message: str) -> str:
    """Return Telegram's refusal to open a topic as what the lab should do about it."""
    said = message.lower()
    if "not a forum" in said:
        return (
            "this chat is not a forum, so I cannot open a topic per project; "
            "turn Topics on in the group's settings, or drop <code>topics: auto</code>"
        )
    if "rights" in said:
        return "I may not open topics here; give me the Manage Topics admin right"
    return f"I cannot open a topic here ({esc(message)})"
