"""1,000 notifications over 50 group chats, with Telegram answering in 150 ms.

Both ways send to the local Telegram server with its flood model on (1 message/s per chat
with a burst of 3, 20 a minute per group, 30/s overall) and 150 ms injected before each
send is handled. The messages arrive one chat after another, the order that hurts most:
- naive: one `send_message` after another in arrival order; a 429 is waited out and the
  message tried again (so nothing is lost). It is slow, so it runs for a fixed time and its
  total is extrapolated from its throughput in that time;
- ours: the outbox worker (round-robin by chat, several chats at once, paced under the
  limits) through the same rate-limited bot the application builds.

The bound is what Telegram's limits allow at best: max(N/30 s, (per chat - 1) × 1 s).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from telegram import Bot
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bench.common import Row, table
from bot.delivery import Delivery
from bot.store import OutboxItem, Store
from tests.servers.telegram import TelegramServer

TOKEN = "7000000001:AAbench-fanout"
LATENCY = 0.15
FIRST_CHAT = -1001000001000


@dataclass(frozen=True, slots=True)
class Shape:
    """How many notifications over how many chats, and how long the naive way may run."""

    notes: int
    chats: int
    naive_budget: float

    @property
    def per_chat(self) -> int:
        """Return the notifications each chat gets."""
        return self.notes // self.chats

    @property
    def bound(self) -> float:
        """Return the fewest seconds Telegram's limits allow for the whole fan-out."""
        group_extra = max(0, self.per_chat - 20) * 3.0  # 20 a minute a group, then one per 3 s
        return max(self.notes / 30.0, self.per_chat - 1.0, group_extra)


FULL = Shape(notes=1000, chats=50, naive_budget=20.0)
QUICK = Shape(notes=150, chats=30, naive_budget=3.0)


def messages(shape: Shape) -> list[OutboxItem]:
    """Return the notifications in arrival order: chat by chat."""
    return [
        OutboxItem(FIRST_CHAT - c, f"fan-{c}-{i}", "run", f"✅ <b>run {i}</b> · chat {c}")
        for c in range(shape.chats)
        for i in range(shape.per_chat)
    ]


async def server_for(shape: Shape) -> TelegramServer:
    """Start a Telegram server that knows the chats and answers each send in 150 ms."""
    server = TelegramServer(TOKEN)
    await server.start()
    for c in range(shape.chats):
        server.add_chat(FIRST_CHAT - c, "supergroup", f"lab-{c}")
    server.inject("sendMessage", "delay", count=10**9, delay=LATENCY)
    return server


async def naive(server: TelegramServer, shape: Shape) -> tuple[float, int]:
    """Send one after another for the budget; return the extrapolated seconds and 429s."""
    sent = 0
    started = time.perf_counter()
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
        for item in messages(shape):
            if time.perf_counter() - started > shape.naive_budget:
                break
            while True:
                try:
                    await bot.send_message(item.chat_id, item.text)
                    break
                except RetryAfter as exc:
                    await asyncio.sleep(_seconds(exc))
            sent += 1
    took = time.perf_counter() - started
    return took * shape.notes / max(sent, 1), server.stats.too_many_requests


async def ours(server: TelegramServer, shape: Shape) -> tuple[float, int, int]:
    """Send through the outbox worker; return seconds, 429s and messages shown."""
    store = Store(Path(tempfile.mkdtemp(prefix="bench-fanout-")) / "bot.sqlite3")
    bot = ExtBot(
        TOKEN,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        request=HTTPXRequest(connection_pool_size=64),
        rate_limiter=AIORateLimiter(max_retries=1),  # as the application builds it
    )
    async with bot:
        store.outbox.enqueue(messages(shape), datetime.now(UTC))
        worker = Delivery(store, bot, lambda: datetime.now(UTC), admins=[])
        started = time.perf_counter()
        while store.outbox.counts()["pending"]:
            wait = await worker.drain()
            if store.outbox.counts()["pending"]:
                await asyncio.sleep(wait)
        took = time.perf_counter() - started
    store.close()
    shown = sum(len(server.bot_messages(FIRST_CHAT - c)) for c in range(shape.chats))
    return took, server.stats.too_many_requests, shown


def _seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value if isinstance(value, int | float) else value.total_seconds()


async def measure(quick: bool = False) -> list[Row]:
    """Return the fan-out rows: seconds against the bound, and 429 answers."""
    shape = QUICK if quick else FULL
    server = await server_for(shape)
    try:
        ours_s, ours_429, shown = await ours(server, shape)
    finally:
        await server.stop()
    if shown != shape.notes:
        raise AssertionError(f"ours showed {shown} of {shape.notes} notifications")
    server = await server_for(shape)
    try:
        naive_s, naive_429 = await naive(server, shape)
    finally:
        await server.stop()
    what = f"{shape.notes:,} notes over {shape.chats} chats"
    how = f"{LATENCY * 1000:.0f} ms latency injected; bound {shape.bound:.1f} s"
    return [
        Row(f"{what}: seconds", ours_s, naive_s, "s", how + "; naive extrapolated"),
        Row(f"{what}: × Telegram's bound", ours_s / shape.bound, naive_s / shape.bound, "×", how),
        Row(f"{what}: 429 answers", ours_429, naive_429, "", "naive: in its timed part"),
    ]


async def main(quick: bool = False) -> None:
    """Print the table."""
    print(table(await measure(quick)))


if __name__ == "__main__":
    import sys

    asyncio.run(main("--quick" in sys.argv[1:]))
