"""A lab of many projects: every one polled at the active interval, few requests, low latency."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from pathlib import Path

from bot.store import Store
from tests.harness import ENTITY, LAB_CHAT, Harness, lab_data

PROJECTS = [f"proj-{i:02d}" for i in range(50)]
INTERVAL = 1.0
BATCH = 20


def settings() -> dict[str, str]:
    return {
        "WTB_POLL_INTERVAL": str(INTERVAL),
        "WTB_IDLE_POLL_INTERVAL": str(INTERVAL),
        "WTB_WANDB_BATCH_SIZE": str(BATCH),
        "WTB_DELIVERY_INTERVAL": "0.1",
    }


def many_projects() -> dict[str, object]:
    return lab_data(chats=[{"id": LAB_CHAT, "name": "ml-alerts", "projects": PROJECTS}])


def _baselined(h: Harness) -> bool:
    assert h.application is not None
    store = h.application.bot_data.services.store
    return all(store.runs.project_state(ENTITY, p).baseline_done for p in PROJECTS)


def _remembered(store: Store, project: str, name: str) -> bool:
    return f"{ENTITY}/{project}/{name}" in store.runs.memory(ENTITY, project)


def _seed(h: Harness, project: str, name: str, state: str) -> None:
    h.wb.seed({"runs": [{"entity": ENTITY, "project": project, "name": name, "state": state}]})


async def test_fifty_projects_all_polled_each_interval_in_three_requests_and_heard_promptly(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, lab=many_projects(), settings=settings()) as h:
        h.wb.seed(
            {
                "runs": [
                    {"entity": ENTITY, "project": p, "name": f"old-{p}", "state": "finished"}
                    for p in PROJECTS
                ]
            }
        )
        await h.wait_until(lambda: _baselined(h), timeout=60, what="every project's baseline")
        await _cost_per_interval(h)
        await _latency(h)


async def _cost_per_interval(h: Harness) -> None:
    assert h.application is not None
    monitor = h.application.bot_data.services.monitor
    h.wb.reset_requests()
    start, polls = time.monotonic(), monitor.polls
    await asyncio.sleep(5 * INTERVAL)
    elapsed, polls = time.monotonic() - start, monitor.polls - polls
    counts = h.wb.request_counts()
    rounds = elapsed / INTERVAL
    # Every project at the active interval although nothing runs: 50 polls a round...
    assert polls >= len(PROJECTS) * (rounds - 2), (polls, rounds)
    # ...in three requests a round (20 + 20 + 10 projects), one more per batch in flight.
    print(
        f"{polls} polls of 50 projects in {sum(counts.values())} requests over {rounds:.1f} rounds"
    )
    assert sum(counts.values()) <= 3 * (rounds + 1), counts
    assert set(counts) == {"ProjectsRuns"}, counts
    assert h.texts() == []


async def _latency(h: Harness) -> None:
    assert h.application is not None
    store = h.application.bot_data.services.store
    latencies = []
    # Idle projects: a short run starts and ends between two polls.
    for i, project in enumerate(PROJECTS[::6]):
        name = f"idle{i:04d}"
        started = time.monotonic()
        _seed(h, project, name, "finished")
        await h.wait_for_text(name, timeout=10)
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.37)  # land at different points of the interval
    # Active projects: the bot saw the run running, then it ends.
    for i, project in enumerate(PROJECTS[1::6]):
        name = f"live{i:04d}"
        _seed(h, project, name, "running")
        await h.wait_until(functools.partial(_remembered, store, project, name), what=name)
        started = time.monotonic()
        h.wb.set_run_state(ENTITY, project, name, "failed")
        await h.wait_for_text(name, timeout=10)
        latencies.append(time.monotonic() - started)
    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20)[-1]
    print(f"latency p50 {p50:.2f}s p95 {p95:.2f}s at {INTERVAL}s")
    # The target is p95 <= interval + 1 s; the shared CI host is often many times
    # oversubscribed, so the test holds the median to it and the p95 to a looser bound
    # that a project left for minutes (the old idle interval, a stuck batch) still fails.
    assert p50 <= INTERVAL + 1, latencies
    assert p95 <= 2 * INTERVAL + 2, latencies
