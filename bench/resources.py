"""Peak memory at 100 watched projects, and CPU per poll round at 500 projects.

- peak RSS: the real bot as its own process (`python -m bot run`, through tests/harness.py)
  polling 100 projects at a 1 s interval, against the naive poller as its own process
  (bench/naive.py) polling the same projects; each figure includes its wandb-core.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ENTITY, Row
from bench.proc import peak_rss_kb
from tests.harness import LAB_CHAT, Harness, lab_data

RUNS_PER_PROJECT = 20
ACTIVE_EVERY = 10  # one project in ten has running runs


def lab_seed(names: list[str]) -> dict[str, Any]:
    """Return a seed: `RUNS_PER_PROJECT` runs a project, a few running in some projects."""
    runs = []
    for index, name in enumerate(names):
        for r in range(RUNS_PER_PROJECT):
            running = index % ACTIVE_EVERY == 0 and r < 2
            runs.append(
                {
                    "entity": ENTITY,
                    "project": name,
                    "name": f"{name}-r{r:03d}",
                    "state": "running" if running else "finished",
                    "createdAt": "2026-01-01T00:00:00",
                    **({} if running else {"updatedAt": "2026-01-01T00:01:00"}),
                    "summary": {"accuracy": r / RUNS_PER_PROJECT, "_step": 10},
                }
            )
    return {"runs": runs}


def polled_projects(db: Path) -> int:
    """Return how many projects the bot has polled at least once (read-only look)."""
    if not db.exists():
        return 0
    try:
        # closing(): a connection's own `with` commits but leaves it open (3.13 warns).
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM projects WHERE last_poll_at IS NOT NULL"
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


async def bot_peak_rss_kb(names: list[str], rounds: int) -> int:
    """Run the bot as a process over `names`; return its peak RSS after `rounds` rounds."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    lab = lab_data(chats=[{"id": LAB_CHAT, "name": "ml-alerts", "projects": names}])
    settings = {"WTB_POLL_INTERVAL": "1", "WTB_IDLE_POLL_INTERVAL": "1"}
    harness = Harness(tmp, lab=lab, settings=settings, flood=False)
    await harness.start_servers()
    try:
        harness.wb.seed(lab_seed(names))
        await harness.start_bot_process()
        assert harness.process is not None
        deadline = time.monotonic() + 120
        while polled_projects(tmp / "data" / "bot.sqlite3") < len(names):
            if time.monotonic() > deadline or harness.process.returncode is not None:
                raise RuntimeError(f"the bot did not poll every project; see {tmp}/bot.log")
            await asyncio.sleep(0.2)
        await asyncio.sleep(rounds)  # steady state: more rounds at the 1 s interval
        return peak_rss_kb(harness.process.pid)
    finally:
        await harness.kill_bot_process()
        await harness.telegram.stop()
        await asyncio.to_thread(harness.wandb.stop)


async def naive_peak_rss_kb(names: list[str], rounds: int) -> int:
    """Run the naive poller as a process over `names`; return its peak RSS."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-naive-"))
    harness = Harness(tmp, flood=False)
    await harness.start_servers()
    try:
        harness.wb.seed(lab_seed(names))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.naive",
            harness.wandb_url,
            str(rounds),
            *names,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        return int(out.decode().split()[-1])
    finally:
        await harness.telegram.stop()
        await asyncio.to_thread(harness.wandb.stop)


async def rss_row(projects: int, rounds: int) -> Row:
    """Return the peak RSS row for `projects` watched projects."""
    names = [f"proj-{i:03d}" for i in range(projects)]
    ours = await bot_peak_rss_kb(names, rounds)
    naive = await naive_peak_rss_kb(names, rounds)
    return Row(
        f"peak RSS, {projects} projects",
        ours / 1024,
        naive / 1024,
        "MB",
        "process + wandb-core; naive ÷ ours under 1 means the bot uses more",
    )
