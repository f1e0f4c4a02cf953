"""60 runs ending at once in one project: what reaches a group chat.

Both ways send to the local Telegram server with its flood model on (about 1 message/s
per chat with a small burst, 20 a minute per group):
- naive: one sendMessage per run, as fast as the API answers;
- ours: the bot's grouping (notifications_for) and its outbox worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telegram import Bot
from telegram.error import RetryAfter

from bot.delivery import Delivery
from bot.domain.events import RunEvent
from bot.domain.notify import notifications_for
from bot.monitor import to_outbox
from bot.store import Store
from config import parse_lab
from tests.servers.telegram import TelegramServer
from wandb_client.models import RunSnapshot

TOKEN = "7000000001:AAbench"
CHAT = -1001000000002
RUNS = 60


def events() -> list[RunEvent]:
    """Return 60 run endings of one project, one in ten a failure."""
    now = datetime.now(UTC)
    out = []
    for i in range(RUNS):
        state = "failed" if i % 10 == 0 else "finished"
        run = RunSnapshot(
            entity="lab",
            project="wine-quality-dev",
            id=f"run{i:03d}",
            display_name=f"rf-random-{i}",
            state=state,
            url=f"https://wandb.ai/lab/wine-quality-dev/runs/run{i:03d}",
            created_at=now - timedelta(minutes=5),
            summary={"accuracy": 0.9 + i / 1000, "_step": 20, "_runtime": 300},
            config={"n_estimators": 10 * i, "max_depth": i % 12},
        )
        out.append(RunEvent(kind=state, run=run, previous_state="running", at=now))  # type: ignore[arg-type]
    return out


async def naive(server: TelegramServer, bot: Bot) -> tuple[int, float]:
    """Send one message per run; count the 429s."""
    started = time.perf_counter()
    for event in events():
        with contextlib.suppress(RetryAfter):  # the naive bot loses what is refused
            await bot.send_message(CHAT, f"run {event.run.display_name} {event.kind}")
    return len(server.bot_messages(CHAT)), time.perf_counter() - started


async def ours(server: TelegramServer, bot: Bot) -> tuple[int, float]:
    """Group with the bot's rules and send through its outbox worker."""
    tmp = Path(tempfile.mkdtemp())
    lab = parse_lab(
        {"entity": "lab", "chats": [{"id": CHAT, "projects": ["wine-quality-dev"]}]}, "lab", tmp
    )
    store = Store(tmp / "s.db")
    started = time.perf_counter()
    notes = notifications_for(events(), lab, ui_url="https://wandb.ai")
    store.outbox.enqueue([to_outbox(n) for n in notes], datetime.now(UTC))
    worker = Delivery(store, bot, lambda: datetime.now(UTC), admins=[], chat_interval=1.0)
    while store.outbox.counts()["pending"]:
        wait = await worker.drain()
        if store.outbox.counts()["pending"]:
            await asyncio.sleep(wait)
    return len(server.bot_messages(CHAT)), time.perf_counter() - started


async def main() -> None:
    """Print the table."""
    rows = []
    for name, way in (
        ("naive: one message per run", naive),
        ("ours: grouped, through the outbox", ours),
    ):
        server = TelegramServer(TOKEN)
        await server.start()
        server.add_chat(CHAT, "supergroup", "lab")
        async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
            shown, took = await way(server, bot)
        rows.append((name, shown, server.stats.too_many_requests, took))
        await server.stop()
    print(f"{RUNS} runs ending at once, one group chat (local Telegram server, flood model on)")
    print(
        f"| {'way':<36} | {'messages shown':>14} | {'429s':>5} | {'runs lost':>9} | {'seconds':>7} |"
    )
    print(f"|{'-' * 38}|{'-' * 16}|{'-' * 7}|{'-' * 11}|{'-' * 9}|")
    for name, shown, flood, took in rows:
        lost = max(0, RUNS - shown) if name.startswith("naive") else 0
        print(f"| {name:<36} | {shown:>14} | {flood:>5} | {lost:>9} | {took:>7.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
