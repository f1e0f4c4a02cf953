"""The monitor against the local W&B server: cadence, idle back-off, outage back-off."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.domain.events import StallPolicy
from bot.domain.keys import ProjectKey
from bot.monitor import Monitor
from bot.polling import Cadence, ProjectCoordinator
from bot.store import Store
from config import parse_lab
from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import API_KEY
from wandb_client.client import WandbClient

ENTITY, PROJECT, CHAT = "lab", "wine-quality-dev", -100
CADENCE = Cadence(interval=30, idle_interval=300, max_backoff=600)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(WandbServer(heartbeat_timeout=3600)) as thread:
        yield thread


def now() -> datetime:
    return datetime.now(UTC)


def make_monitor(
    server: ServerThread, tmp_path: Path, *, timeout: float = 20
) -> tuple[Monitor, Store, WandbClient]:
    lab = parse_lab(
        {"entity": ENTITY, "chats": [{"id": CHAT, "projects": [PROJECT]}]}, "lab", tmp_path
    )
    store = Store(tmp_path / "s.db")
    client = WandbClient(API_KEY, base_url=server.base_url, default_entity=ENTITY, timeout=timeout)
    monitor = Monitor(
        store,
        client,
        lab,
        now,
        ui_url=server.base_url,
        overlap=5,
        stall_policy=StallPolicy(floor=600, factor=10),
    )
    return monitor, store, client


async def test_idle_project_slows_down_and_a_running_run_speeds_it_up(
    server: ServerThread, tmp_path: Path
) -> None:
    server.server.reset()
    server.server.seed(
        {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "old1", "state": "finished"}]}
    )
    monitor, store, client = make_monitor(server, tmp_path)
    try:
        coordinator = ProjectCoordinator(ProjectKey(ENTITY, PROJECT), 0.0)
        first = await monitor.poll(ENTITY, PROJECT)
        coordinator.record(first, 0.0, 0.0, CADENCE)
        assert first.ok and coordinator.due == 300 and first.events == ()
        server.server.seed(
            {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "new1", "state": "running"}]}
        )
        second = await monitor.poll(ENTITY, PROJECT)
        coordinator.record(second, 0.0, 0.0, CADENCE)
        assert coordinator.due == 30
        server.server.set_run_state(ENTITY, PROJECT, "new1", "finished")
        third = await monitor.poll(ENTITY, PROJECT)
        coordinator.record(third, 0.0, 0.0, CADENCE)
        assert [e.kind for e in third.events] == ["finished"] and third.enqueued == 1
        assert coordinator.due == 300
        assert [r.chat_id for r in store.outbox.due(now())] == [CHAT]
    finally:
        await client.close()


async def test_first_poll_is_a_silent_baseline_and_old_endings_are_not_news(
    server: ServerThread, tmp_path: Path
) -> None:
    server.server.reset()
    server.server.seed(
        {
            "runs": [
                {"entity": ENTITY, "project": PROJECT, "name": f"r{i}", "state": "failed"}
                for i in range(5)
            ]
        }
    )
    monitor, store, client = make_monitor(server, tmp_path)
    try:
        outcome = await monitor.poll(ENTITY, PROJECT)
        assert outcome.ok and outcome.events == () and store.outbox.counts()["pending"] == 0
        again = await monitor.poll(ENTITY, PROJECT)
        assert again.events == ()
    finally:
        await client.close()


async def test_w_and_b_outage_backs_off_exponentially_without_multiplying_requests(
    server: ServerThread, tmp_path: Path
) -> None:
    server.server.reset()
    server.server.seed(
        {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "x", "state": "running"}]}
    )
    monitor, store, client = make_monitor(server, tmp_path, timeout=2)
    try:
        assert (await monitor.poll(ENTITY, PROJECT)).ok
        server.server.reset_requests()
        server.server.inject_fault("Runs", "429", count=1000, reset=30)
        delays = []
        coordinator = ProjectCoordinator(ProjectKey(ENTITY, PROJECT), 0.0)
        for _ in range(3):
            outcome = await monitor.poll(ENTITY, PROJECT)
            assert not outcome.ok and outcome.error
            coordinator.record(outcome, 0.0, 0.0, CADENCE)
            delays.append(coordinator.due)
        assert delays == [60, 120, 240]
        assert store.runs.project_state(ENTITY, PROJECT).failures == 3
        runs_requests = server.server.request_counts().get("Runs", 0)
        # wandb-core retries inside one call; the bot adds nothing on top of that.
        assert 3 <= runs_requests <= 3 * 3, runs_requests  # one per poll, plus core's retries
        # At most a retry wandb-core had already timed follows the last give-up.
        await asyncio.sleep(3)
        assert server.server.request_counts().get("Runs", 0) - runs_requests <= 1
        server.server.reset()
        server.server.seed(
            {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "x", "state": "running"}]}
        )
        recovered = await monitor.poll(ENTITY, PROJECT)
        assert recovered.ok and store.runs.project_state(ENTITY, PROJECT).failures == 0
    finally:
        await client.close()


def test_backoff_is_capped() -> None:
    assert [CADENCE.backoff(n) for n in (1, 2, 3, 4, 5, 10)] == [60, 120, 240, 480, 600, 600]


async def test_a_failed_poll_write_keeps_the_stop_request_and_confirms_it_next_poll(
    server: ServerThread, tmp_path: Path
) -> None:
    server.server.reset()
    server.server.seed(
        {"runs": [{"entity": ENTITY, "project": PROJECT, "name": "x", "state": "running"}]}
    )
    monitor, store, client = make_monitor(server, tmp_path)
    path = f"{ENTITY}/{PROJECT}/x"
    try:
        assert (await monitor.poll(ENTITY, PROJECT)).ok
        store.callbacks.put("await_stop", path, now(), chat_id=CHAT)
        server.server.set_run_state(ENTITY, PROJECT, "x", "killed")
        # The outbox write fails inside the poll's transaction (as a full disk would).
        with store.db.tx() as db:
            db.execute(
                "CREATE TEMP TRIGGER full BEFORE INSERT ON outbox"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        with pytest.raises(sqlite3.DatabaseError, match="disk is full"):
            await monitor.poll(ENTITY, PROJECT)
        with store.db.tx() as db:
            db.execute("DROP TRIGGER temp.full")
        assert list(store.callbacks.pending("await_stop")) == [path]
        outcome = await monitor.poll(ENTITY, PROJECT)
        assert [e.kind for e in outcome.events] == ["killed"]
        kinds = [row.kind for row in store.outbox.due(now())]
        assert "stop-confirmed" in kinds
        assert store.callbacks.pending("await_stop") == {}
    finally:
        await client.close()
