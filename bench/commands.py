"""How long `/best`, `/runs` and `/status` take to answer in a project of 10,000 runs.

- ours: the real bot (tests/harness.py) with both local servers; a user types the command
  in a lab chat and the clock stops when the reply is in the chat. Each reply is timed in
  a chat of its own: Telegram allows a group 20 messages a minute and the bot keeps to
  that, so 20 replies in one chat would time the pacing, not the answer;
- naive: what a script without server-side order or filters does for the same answer:
  `/best` reads every run's summary (lazy listing + one `Run` a run), `/runs` reads the
  newest 10 runs' summaries, `/status` pages through every run to count the running ones.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from bench.common import ENTITY, Row, generate, naive_api, percentile, sdk_environment
from tests.harness import ADMIN, PROJECT, Harness, lab_data

FIRST_CHAT = -1009000000000
COMMANDS = ("/best", "/runs", "/status")


def naive_newest(base_url: str) -> float:
    """Return the seconds a naive script takes to show the 10 newest runs with a metric."""
    started = time.perf_counter()
    api = naive_api(base_url)
    for run in itertools.islice(api.runs(f"{ENTITY}/{PROJECT}"), 10):
        _ = run.summary.get("accuracy")
    return time.perf_counter() - started


def naive_running(base_url: str) -> float:
    """Return the seconds a naive script takes to count the project's running runs."""
    started = time.perf_counter()
    api = naive_api(base_url)
    running = sum(1 for run in api.runs(f"{ENTITY}/{PROJECT}") if run.state == "running")
    assert running >= 0
    return time.perf_counter() - started


def bench_chats(reps: int) -> list[int]:
    """Return one lab chat id for each timed reply of each command."""
    return [FIRST_CHAT - n for n in range(reps * len(COMMANDS))]


async def timed_replies(harness: Harness, command: str, chats: list[int]) -> list[float]:
    """Type `command` once in each chat and return each reply's latency in seconds."""
    took = []
    for chat in chats:
        started = time.perf_counter()
        await harness.reply_to(command, chat_id=chat, user_id=ADMIN, timeout=60)
        took.append(time.perf_counter() - started)
    return took


async def measure(runs: int, reps: int, naive_best_s: float | None) -> list[Row]:
    """Return p50 and p95 rows for each command; `naive_best_s` is a full read's time."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    rows: list[Row] = []
    chats = bench_chats(reps)
    lab = lab_data()
    lab["chats"] += [{"id": chat, "projects": [PROJECT]} for chat in chats]
    harness = Harness(tmp, lab=lab, flood=False)
    await harness.start_servers()
    for chat in chats:
        harness.telegram.add_chat(chat, "supergroup", f"bench {chat}")
    try:
        harness.wb.seed(generate(ENTITY, PROJECT, runs))
        await harness.start_bot()
        await harness.wait_polls(1)
        with sdk_environment(harness.wandb_url):
            # A script polls for hours: its one-off start (wandb-core, login) is not counted.
            await asyncio.to_thread(naive_newest, harness.wandb_url)
            naive = {
                "/best": naive_best_s,
                "/runs": await asyncio.to_thread(naive_newest, harness.wandb_url),
                "/status": await asyncio.to_thread(naive_running, harness.wandb_url),
            }
        for index, command in enumerate(COMMANDS):
            took = await timed_replies(harness, command, chats[index * reps : (index + 1) * reps])
            naive_ms = naive[command]
            for q in (50, 95):
                rows.append(
                    Row(
                        f"{command} p{q}, {runs:,} runs",
                        percentile(took, q) * 1000,
                        None if naive_ms is None else naive_ms * 1000,
                        "ms",
                        f"chat to reply, {reps} times, a chat each; naive once",
                    )
                )
    finally:
        await harness.stop_bot()
        await harness.telegram.stop()
        await asyncio.to_thread(harness.wandb.stop)
    return rows
