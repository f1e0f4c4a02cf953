"""The outbox worker against the local Telegram server: limits, migrations, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from telegram import Bot

from bot.delivery import Delivery
from bot.domain.render import Button
from bot.store import OutboxItem, Store
from tests.servers.telegram import TelegramServer

TOKEN = "7000000001:AAdelivery-test-token"
GROUP = -1001000000001
ADMIN = 4242


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramServer]:
    server = TelegramServer(TOKEN)
    await server.start()
    server.add_chat(GROUP, "supergroup", "lab")
    server.add_chat(ADMIN, "private", first_name="Ada")
    yield server
    await server.stop()


@pytest.fixture
async def bot(telegram: TelegramServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=telegram.base_url, base_file_url=telegram.base_file_url) as b:
        yield b


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bot.sqlite3")


def delivery(store: Store, bot: Bot, *, chat_interval: float = 0.0) -> Delivery:
    return Delivery(store, bot, now, admins=[ADMIN], chat_interval=chat_interval)


def msg(key: str, chat: int = GROUP, text: str | None = None, **kw: object) -> OutboxItem:
    return OutboxItem(chat, key, "run", text or f"✅ <b>{key}</b>", **kw)  # type: ignore[arg-type]


async def test_sends_in_order_and_marks_sent(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    store.outbox.enqueue([msg("a"), msg("b"), msg("c")], now())
    worker = delivery(store, bot)
    await worker.drain()
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ a", "✅ b", "✅ c"]
    assert store.outbox.counts() == {"pending": 0, "sent": 3, "dead": 0}
    await worker.drain()
    assert len(telegram.bot_messages(GROUP)) == 3


async def test_buttons_become_short_callback_tokens(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    spec = Button("Config", "config", "lab/" + "p" * 60 + "/run12345")
    store.outbox.enqueue([msg("a", buttons=((spec,),))], now())
    await delivery(store, bot).drain()
    [data] = telegram.bot_messages(GROUP)[0].callback_data
    assert len(data.encode()) <= 64
    record = store.callbacks.get(data.removeprefix("cb:"))
    assert record is not None and record.target == spec.target


async def test_flood_wait_is_honoured_and_message_not_lost(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    telegram.inject("sendMessage", "flood", count=1, retry_after=1)
    store.outbox.enqueue([msg("a")], now())
    worker = delivery(store, bot)
    wait = await worker.drain()
    assert telegram.bot_messages(GROUP) == [] and worker.stats.rate_limited == 1
    assert 0 < wait <= 1.0
    assert store.outbox.due(now()) == []
    await telegram.wait_for(lambda: bool(store.outbox.due(now())), timeout=3)
    await worker.drain()
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ a"]


async def test_migrated_group_gets_its_messages_under_the_new_id(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    store.chats.subscribe(GROUP, "lab", "wine", None, now())
    new_id = telegram.migrate_chat(GROUP)
    store.outbox.enqueue([msg("a"), msg("b")], now())
    worker = delivery(store, bot)
    await worker.drain()
    await worker.drain()
    assert [m.text for m in telegram.bot_messages(new_id)] == ["✅ a", "✅ b"]
    assert store.chats.subscriptions() == {new_id: {("lab", "wine")}}
    assert store.chats.migrations() == {GROUP: new_id}


async def test_blocked_chat_is_paused_and_admins_are_told_once(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    telegram.block_chat(GROUP, "kicked")
    store.outbox.enqueue([msg("a"), msg("b")], now())
    worker = delivery(store, bot)
    await worker.drain()
    await worker.drain()
    assert GROUP in store.chats.paused()
    alerts = [m.text or "" for m in telegram.bot_messages(ADMIN)]
    assert len(alerts) == 1 and str(GROUP) in alerts[0] and "paused" in alerts[0]
    assert store.outbox.counts()["pending"] == 2  # kept for when the chat comes back
    telegram.unblock_chat(GROUP)
    store.chats.resume(GROUP)
    await worker.drain()
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ a", "✅ b"]


async def test_bad_request_is_dead_lettered_with_its_reason(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    store.outbox.enqueue([msg("bad", text="<br> nope"), msg("good")], now())
    worker = delivery(store, bot)
    await worker.drain()
    [dead] = store.outbox.dead_letters()
    assert dead["dedupe_key"] == "bad" and "unsupported start tag" in dead["last_error"].lower()
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ good"]


async def test_transport_failures_never_use_up_a_message(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    # Twelve 5xx in a row: more than the eight tries that used to dead-letter a message.
    telegram.inject("sendMessage", "server_error", count=12)
    store.outbox.enqueue([msg("a")], now())
    worker = Delivery(store, bot, now, admins=[], chat_interval=0, max_backoff=0.0)
    await worker.drain()
    assert worker.stats.retried == 12 and store.outbox.dead_letters() == []
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ a"]


async def test_outage_is_logged_and_told_to_admins_once_when_it_ends(
    telegram: TelegramServer, bot: Bot, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.inject("*", "server_error", count=10**6)
    store.outbox.enqueue([msg("a"), msg("b"), msg("c", chat=ADMIN)], now())
    worker = Delivery(
        store, bot, now, admins=[ADMIN], chat_interval=0, max_backoff=0.05, warn_after=0.3
    )
    worker.start()
    try:
        await telegram.wait_for(lambda: worker.stats.retried >= 5, timeout=5)
        await asyncio.sleep(0.4)
        telegram.faults.clear()
        await telegram.wait_for(lambda: len(telegram.bot_messages(ADMIN)) == 2, timeout=10)
        await telegram.wait_for(lambda: len(telegram.bot_messages(GROUP)) == 2, timeout=10)
        await asyncio.sleep(0.5)
    finally:
        await worker.stop()
    notices = [
        m.text or "" for m in telegram.bot_messages(ADMIN) if "unreachable" in (m.text or "")
    ]
    assert len(notices) == 1, notices
    assert "3 notifications delivered late" in notices[0]
    assert store.outbox.dead_letters() == []
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("Telegram has been unreachable for" in r.getMessage() for r in warnings)
    assert sum("reachable again" in r.getMessage() for r in warnings) == 1


async def test_message_older_than_max_age_is_given_up_with_a_log_line(
    telegram: TelegramServer, bot: Bot, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.inject("sendMessage", "server_error", count=3)
    store.outbox.enqueue([msg("old")], now() - timedelta(hours=25))
    worker = Delivery(store, bot, now, admins=[], chat_interval=0, max_backoff=0.0)
    await worker.drain()
    [dead] = store.outbox.dead_letters()
    assert dead["dedupe_key"] == "old" and "expired" in dead["last_error"]
    assert any("not delivered within 1d 00h" in r.getMessage() for r in caplog.records)


async def test_a_slow_answer_within_the_send_timeout_is_not_repeated(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    # Slower than python-telegram-bot's 5 s default read timeout, well within ours.
    telegram.inject("sendMessage", "slow_response", count=1, delay=5.5)
    store.outbox.enqueue([msg("a")], now())
    worker = delivery(store, bot)
    await worker.drain()
    assert worker.stats.retried == 0 and worker.stats.sent == 1
    assert [m.text for m in telegram.bot_messages(GROUP)] == ["✅ a"]


async def test_after_a_timeout_the_resend_waits_the_send_timeout(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    telegram.inject("sendMessage", "slow_response", count=1, delay=1.0)
    store.outbox.enqueue([msg("a")], now())
    worker = Delivery(
        store, bot, now, admins=[], chat_interval=0, max_backoff=0.0, send_timeout=0.4
    )
    started = now()
    await worker.drain()
    assert worker.stats.retried == 1 and store.outbox.due(now()) == []
    retry_at = store.outbox.next_due_at()
    assert retry_at is not None and retry_at >= started + timedelta(seconds=0.4)


async def test_due_messages_go_fairly_across_chats_and_concurrently(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    other = -1001000000002
    telegram.add_chat(other, "supergroup", "other")
    telegram.inject("sendMessage", "delay", count=10**6, delay=0.2)
    busy = [msg(f"busy{i}") for i in range(150)]
    store.outbox.enqueue([*busy, msg("quiet", chat=other)], now())
    worker = Delivery(store, bot, now, admins=[], chat_interval=0.5)
    started = asyncio.get_running_loop().time()
    await worker.drain()
    # The quiet chat's one message went beside the busy chat's first, not behind its 150.
    assert len(telegram.bot_messages(other)) == 1
    assert asyncio.get_running_loop().time() - started < 1.0
    assert len(telegram.bot_messages(GROUP)) == 1


async def test_chat_that_comes_back_is_told_what_was_held(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    telegram.block_chat(GROUP, "kicked")
    store.outbox.enqueue([msg("a"), msg("b")], now())
    worker = delivery(store, bot)
    await worker.drain()
    telegram.unblock_chat(GROUP)
    worker.resume(GROUP)
    await worker.drain()
    texts = [m.text for m in telegram.bot_messages(GROUP)]
    assert texts == ["✅ a", "✅ b", "▶️ back: 2 notifications held were delivered"]
    worker.resume(GROUP)  # not paused any more: nothing to tell
    await worker.drain()
    assert len(telegram.bot_messages(GROUP)) == 3


async def test_photo_with_long_text_goes_as_text_then_photo(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    from bot.charts import no_data_png

    png = no_data_png("digest", "no data")
    store.outbox.enqueue([msg("d", text="x" * 2000, photo=png)], now())
    await delivery(store, bot).drain()
    shown = telegram.bot_messages(GROUP)
    assert shown[0].text == "x" * 2000 and shown[1].photo is not None


async def test_one_message_per_chat_interval(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    store.outbox.enqueue([msg("a"), msg("b")], now())
    worker = delivery(store, bot, chat_interval=30.0)
    wait = await worker.drain()
    assert len(telegram.bot_messages(GROUP)) == 1 and wait > 0


async def test_long_text_is_not_sent_twice_when_its_photo_fails(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    from bot.charts import no_data_png

    telegram.inject("sendPhoto", "server_error", count=1)
    store.outbox.enqueue([msg("d", text="y" * 2000, photo=no_data_png("digest", "no data"))], now())
    worker = Delivery(store, bot, now, admins=[], chat_interval=0, max_backoff=0.0)
    await worker.drain()
    await worker.drain()
    shown = telegram.bot_messages(GROUP)
    assert [m.text for m in shown if m.text] == ["y" * 2000]
    assert sum(m.photo is not None for m in shown) == 1
