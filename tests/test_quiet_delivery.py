"""Quiet hours in the outbox worker: held on an injected clock, released at the end, kept
across a restart, and never in the way of an urgent message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from telegram import Bot

from bot.delivery import Delivery
from bot.domain.people import hold_until
from bot.store import OutboxItem, Store
from config.lab import LabConfig
from tests.servers.telegram import TelegramServer

TOKEN = "7000000001:AAquiet-test-token"
ALICE = 5151
GROUP = -1001000000001
# 23:30 in Berlin (UTC+1 in winter): inside 22:00-08:00, which ends at 07:00 UTC.
NIGHT = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
MORNING = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)

LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "people": {
            "alice": {"telegram": ALICE, "quiet": "22:00-08:00", "timezone": "Europe/Berlin"}
        },
    }
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramServer]:
    server = TelegramServer(TOKEN)
    await server.start()
    server.add_chat(ALICE, "private", first_name="Alice")
    server.add_chat(GROUP, "supergroup", "lab")
    yield server
    await server.stop()


@pytest.fixture
async def bot(telegram: TelegramServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=telegram.base_url, base_file_url=telegram.base_file_url) as b:
        yield b


def worker(store: Store, bot: Bot, clock: Clock, lab: LabConfig = LAB) -> Delivery:
    policy = partial(hold_until, people=lab.people, lab_zone="UTC")
    return Delivery(store, bot, clock, admins=[], chat_interval=0.0, hold=policy)


def item(key: str, kind: str, chat: int = ALICE) -> OutboxItem:
    return OutboxItem(chat, key, kind, f"{kind} {key}")


def texts(telegram: TelegramServer, chat: int = ALICE) -> list[str]:
    return [m.text or "" for m in telegram.bot_messages(chat)]


async def test_a_finished_run_waits_for_the_morning_and_a_failure_does_not(
    telegram: TelegramServer, bot: Bot, tmp_path: Path
) -> None:
    clock = Clock(NIGHT)
    store = Store(tmp_path / "bot.sqlite3")
    store.outbox.enqueue([item("a", "finished"), item("b", "failed"), item("c", "digest")], NIGHT)
    store.outbox.enqueue([item("g", "finished", GROUP)], NIGHT)
    delivery = worker(store, bot, clock)
    wait = await delivery.drain()
    # The held message holds back no other: the failure and the group's message go now.
    assert texts(telegram) == ["failed b"] and texts(telegram, GROUP) == ["finished g"]
    assert delivery.stats.held == 2
    assert store.outbox.next_due_at() == MORNING and wait <= 1.0

    clock.now = MORNING - timedelta(seconds=1)
    await delivery.drain()
    assert texts(telegram) == ["failed b"]
    store.close()

    # A restart keeps them held; at the end of the range they go, in their order.
    store = Store(tmp_path / "bot.sqlite3")
    delivery = worker(store, bot, clock)
    delivery.start()
    await delivery.stop()
    await delivery.drain()
    assert texts(telegram) == ["failed b"]
    clock.now = MORNING
    await delivery.drain()
    assert texts(telegram) == ["failed b", "finished a", "digest c"]
    assert store.outbox.counts() == {"pending": 0, "sent": 4, "dead": 0}
    store.close()


async def test_a_restart_without_quiet_hours_lets_held_messages_go(
    telegram: TelegramServer, bot: Bot, tmp_path: Path
) -> None:
    clock = Clock(NIGHT)
    store = Store(tmp_path / "bot.sqlite3")
    store.outbox.enqueue([item("a", "finished")], NIGHT)
    await worker(store, bot, clock).drain()
    assert texts(telegram) == []
    # The admin took Alice's quiet hours out of the lab file and restarted the bot.
    awake = LabConfig.model_validate({"entity": "lab", "people": {"alice": ALICE}})
    delivery = worker(store, bot, clock, awake)
    delivery.start()
    await delivery.stop()
    await delivery.drain()
    assert texts(telegram) == ["finished a"]
    store.close()


async def test_a_message_held_long_is_not_taken_for_a_stale_one(
    telegram: TelegramServer, bot: Bot, tmp_path: Path
) -> None:
    store = Store(tmp_path / "bot.sqlite3")
    store.outbox.enqueue([item("a", "finished")], NIGHT)
    clock = Clock(NIGHT)
    policy = partial(hold_until, people=LAB.people, lab_zone="UTC")
    # Messages older than an hour are dropped while Telegram is down; the night is longer.
    delivery = Delivery(store, bot, clock, admins=[], chat_interval=0.0, hold=policy, max_age=3600)
    await delivery.drain()
    clock.now = MORNING
    [row] = store.outbox.due(MORNING)
    assert row.queued_at == MORNING
    telegram.inject("sendMessage", "server_error", count=1)
    await delivery.drain()
    assert store.outbox.dead_letters() == []
    clock.now = MORNING + timedelta(seconds=5)
    await delivery.drain()
    assert texts(telegram) == ["finished a"]
    store.close()
