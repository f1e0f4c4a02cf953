"""W&B requests a minute for a lab of 50 watched projects, 5 of them active.

Both ways run against the local W&B server and are counted by its control API:
- naive: every 30 s list each project's runs (the SDK's default lazy listing) and read
  the summary of each running run (one more request per run);
- ours: the bot's Monitor, one filtered listing per poll, idle projects every 5 minutes.
Simulated time: each poll is real, the clock between polls is moved on.
"""

from __future__ import annotations

import asyncio
import heapq
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.domain.events import StallPolicy
from bot.domain.keys import ProjectKey
from bot.monitor import Monitor
from bot.polling import Cadence, ProjectCoordinator
from bot.store import Store
from config import parse_lab
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY
from wandb_client.client import WandbClient

ENTITY = "lab"
PROJECTS = 50
ACTIVE = 5
RUNS_PER_PROJECT = 60
RUNNING_PER_ACTIVE = 3
MINUTES = 10
INTERVAL = 30.0
IDLE_INTERVAL = 300.0


def seed(server: WandbServer) -> list[str]:
    """Seed the lab: 50 projects of finished runs, 5 with running runs too."""
    names = [f"proj-{i:02d}" for i in range(PROJECTS)]
    runs: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        for r in range(RUNS_PER_PROJECT):
            running = index < ACTIVE and r < RUNNING_PER_ACTIVE
            runs.append(
                {
                    "entity": ENTITY,
                    "project": name,
                    "name": f"{name}-r{r:03d}",
                    "state": "running" if running else "finished",
                    "createdAt": "2026-11-01T00:00:00",
                    "updatedAt": "2026-11-01T00:00:00" if not running else None,
                    "summary": {"accuracy": r / RUNS_PER_PROJECT, "_step": 10},
                }
            )
    server.seed({"runs": [{k: v for k, v in r.items() if v is not None} for r in runs]})
    return names


class Clock:
    """A clock the benchmark moves forward between polls."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def ours(thread: ServerThread, names: list[str]) -> float:
    """Return W&B requests a minute made by the bot's monitor."""
    tmp = Path(tempfile.mkdtemp())
    lab = parse_lab({"entity": ENTITY, "chats": [{"id": -1, "projects": names}]}, "lab", tmp)
    clock = Clock()
    client = WandbClient(API_KEY, base_url=thread.base_url, default_entity=ENTITY, timeout=30)
    monitor = Monitor(
        Store(tmp / "s.db"),
        client,
        lab,
        clock,
        ui_url=thread.base_url,
        overlap=120,
        stall_policy=StallPolicy(floor=3600, factor=10),
    )
    cadence = Cadence(INTERVAL, IDLE_INTERVAL, 600)
    coordinators = {name: ProjectCoordinator(ProjectKey(ENTITY, name), 0.0) for name in names}
    start = clock.now
    # The bot staggers its first polls by half a second a project.
    queue = [(start + timedelta(seconds=i * 0.5), name) for i, name in enumerate(names)]
    heapq.heapify(queue)
    # Baseline polls do not count: a restart costs one round, then the steady state.
    thread.server.reset_requests()
    end = start + timedelta(minutes=MINUTES)
    while queue and queue[0][0] < end:
        due, name = heapq.heappop(queue)
        clock.now = due
        outcome = await monitor.poll(ENTITY, name)
        coordinators[name].record(outcome, 0.0, 0.0, cadence)
        heapq.heappush(queue, (due + timedelta(seconds=coordinators[name].due), name))
    total = sum(thread.server.request_counts().values())
    await client.close()
    return total / MINUTES


def naive(thread: ServerThread, names: list[str]) -> float:
    """Return W&B requests a minute of the naive poller (one simulated minute)."""
    import wandb

    api = wandb.Api(api_key=API_KEY, overrides={"base_url": thread.base_url}, timeout=30)
    thread.server.reset_requests()
    for _ in range(int(60 / INTERVAL)):
        api.flush()
        for name in names:
            for run in api.runs(f"{ENTITY}/{name}"):
                if run.state == "running":
                    _ = run.summary.get("accuracy")
    return float(sum(thread.server.request_counts().values()))


async def main() -> None:
    """Print the table."""
    with ServerThread(WandbServer(heartbeat_timeout=10**6)) as thread:
        names = seed(thread.server)
        started = time.perf_counter()
        naive_rate = await asyncio.to_thread(naive, thread, names)
        ours_rate = await ours(thread, names)
        took = time.perf_counter() - started
    print(
        f"W&B requests a minute: {PROJECTS} watched projects, {ACTIVE} active, "
        f"{RUNS_PER_PROJECT} runs each, {INTERVAL:g}s interval ({took:.0f}s to measure)"
    )
    print(f"| {'way':<70} | {'requests/min':>12} |")
    print(f"|{'-' * 72}|{'-' * 14}|")
    print(
        f"| {'naive: list every project every 30s, summary of each running run':<70} | {naive_rate:>12.1f} |"
    )
    print(
        f"| {'ours: filtered listing, lazy=False, idle projects every 5 min':<70} | {ours_rate:>12.1f} |"
    )


if __name__ == "__main__":
    asyncio.run(main())
