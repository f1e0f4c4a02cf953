"""How long `/best`, `/runs` and `/status` take to answer in a project of 10,000 runs.

- ours: the real bot (tests/harness.py) with both local servers; a user types the command
  in the lab chat and the clock stops when the reply is in the chat;
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
from tests.harness import PROJECT, Harness, lab_data


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


async def timed_replies(harness: Harness, command: str, reps: int) -> list[float]:
    """Type `command` `reps` times and return each reply's latency in seconds."""
    took = []
    for _ in range(reps):
        started = time.perf_counter()
        await harness.reply_to(command, timeout=60)
        took.append(time.perf_counter() - started)
    return took


async def measure(runs: int, reps: int, naive_best_s: float | None) -> list[Row]:
    """Return p50 and p95 rows for each command; `naive_best_s` is a full read's time."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-commands-"))
    rows: list[Row] = []
    harness = Harness(tmp, lab=lab_data(), flood=False)
    await harness.start_servers()
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
        for command in ("/best", "/runs", "/status"):
            took = await timed_replies(harness, command, reps)
            naive_ms = naive[command]
            for q in (50, 95):
                rows.append(
                    Row(
                        f"{command} p{q}, {runs:,} runs",
                        percentile(took, q) * 1000,
                        None if naive_ms is None else naive_ms * 1000,
                        "ms",
                        f"chat to reply, {reps} times; naive once",
                    )
                )
    finally:
        await harness.stop_bot()
        await harness.telegram.stop()
        await asyncio.to_thread(harness.wandb.stop)
    return rows
