"""The outbox worker against the local Telegram server: limits, migrations, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from telegram import Bot

from bot.delivery import Delivery
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
    spec = {
        "label": "Config",
        "action": "config",
        "target": "lab/" + "p" * 60 + "/run12345",
        "url": None,
    }
    store.outbox.enqueue([msg("a", buttons=((spec,),))], now())
    await delivery(store, bot).drain()
    [data] = telegram.bot_messages(GROUP)[0].callback_data
    assert len(data.encode()) <= 64
    record = store.callbacks.get(data.removeprefix("cb:"))
    assert record is not None and record.target == spec["target"]


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


async def test_network_errors_back_off_then_give_up(
    telegram: TelegramServer, bot: Bot, store: Store
) -> None:
    telegram.inject("sendMessage", "server_error", count=10)
    store.outbox.enqueue([msg("a")], now())
    worker = Delivery(store, bot, now, admins=[], chat_interval=0, max_attempts=2, max_backoff=0.0)
    await worker.drain()
    assert worker.stats.retried == 1 and store.outbox.counts()["pending"] == 1
    await worker.drain()
    assert store.outbox.counts()["dead"] == 1
    assert "gave up after 2 tries" in store.outbox.dead_letters()[0]["last_error"]


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
