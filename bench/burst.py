"""200 runs ending at once in one project: what reaches a group chat.

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

from bench.common import Row, table
from bot.callbacks import to_outbox
from bot.delivery import Delivery
from bot.domain.events import RunEvent
from bot.domain.notify import notifications_for
from bot.store import Store
from config import parse_lab
from tests.servers.telegram import TelegramServer
from wandb_client.models import RunSnapshot

TOKEN = "7000000001:AAbench"
CHAT = -1001000000002
RUNS = 200


def events(runs: int = RUNS) -> list[RunEvent]:
    """Return `runs` run endings of one project, one in ten a failure."""
    now = datetime.now(UTC)
    out = []
    for i in range(runs):
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


async def naive(server: TelegramServer, bot: Bot, runs: int) -> tuple[int, float]:
    """Send one message per run; count the 429s."""
    started = time.perf_counter()
    for event in events(runs):
        with contextlib.suppress(RetryAfter):  # the naive bot loses what is refused
            await bot.send_message(CHAT, f"run {event.run.display_name} {event.kind}")
    return len(server.bot_messages(CHAT)), time.perf_counter() - started


async def ours(server: TelegramServer, bot: Bot, runs: int) -> tuple[int, float]:
    """Group with the bot's rules and send through its outbox worker."""
    tmp = Path(tempfile.mkdtemp())
    lab = parse_lab(
        {"entity": "lab", "chats": [{"id": CHAT, "projects": ["wine-quality-dev"]}]}, "lab", tmp
    )
    store = Store(tmp / "s.db")
    started = time.perf_counter()
    notes = notifications_for(events(runs), lab, ui_url="https://wandb.ai")
    store.outbox.enqueue([to_outbox(n) for n in notes], datetime.now(UTC))
    worker = Delivery(store, bot, lambda: datetime.now(UTC), admins=[], chat_interval=1.0)
    while store.outbox.counts()["pending"]:
        wait = await worker.drain()
        if store.outbox.counts()["pending"]:
            await asyncio.sleep(wait)
    return len(server.bot_messages(CHAT)), time.perf_counter() - started


async def measure(runs: int = RUNS) -> list[Row]:
    """Return the burst's rows: messages in the chat and 429 answers, ours beside naive."""
    shown: dict[str, int] = {}
    flood: dict[str, int] = {}
    for name, way in (("naive", naive), ("ours", ours)):
        server = TelegramServer(TOKEN)
        await server.start()
        server.add_chat(CHAT, "supergroup", "lab")
        async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as bot:
            shown[name], _ = await way(server, bot, runs)
        flood[name] = server.stats.too_many_requests
        await server.stop()
    how = "one group chat, Telegram's flood limits on"
    # The naive bot tries one message a run; each refused one is a run nobody hears of.
    return [
        Row(f"{runs}-run burst: messages sent", shown["ours"], runs, "", how),
        Row(f"{runs}-run burst: 429 answers", flood["ours"], flood["naive"], "", how),
        Row(f"{runs}-run burst: runs never shown", 0, runs - shown["naive"], "", how),
    ]


async def main() -> None:
    """Print the table."""
    print(table(await measure()))


if __name__ == "__main__":
    asyncio.run(main())
