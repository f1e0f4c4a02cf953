"""Run notifications end to end: real bot, local servers, real training scripts."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from bot.store import Store
from tests.harness import ENTITY, PROJECT, Harness, run_ids_in
from tests.servers.wandb.sdk import API_KEY
from wandb_client.client import WandbClient

pytestmark = pytest.mark.slow


async def wait_for_run(h: Harness, predicate, *, timeout: float = 60) -> str:
    """Wait for a run on the W&B server matching `predicate(run dict)`; return its id."""
    found: list[str] = []

    def check() -> bool:
        found[:] = [r["name"] for r in h.wb.list_runs(ENTITY, PROJECT) if predicate(r)]
        return bool(found)

    await h.wait_until(check, timeout=timeout, what="a matching run")
    return found[0]


async def test_each_way_a_run_ends_is_one_message_of_its_kind(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.wait_until(lambda: _polled(h), what="baseline")
        # Runs start in small groups: on two cores a crowd of wandb.init calls would look
        # like lost heartbeats to the server.
        finished = await h.train("--epochs", "3", "--n_estimators", "20")
        failed = await h.train("--epochs", "3", "--fail-at", "2", "--seed", "3")
        assert await asyncio.wait_for(finished.wait(), 90) == 0
        assert await asyncio.wait_for(failed.wait(), 90) != 0
        states = h.run_states()
        finished_id = next(k for k, v in states.items() if v == "finished")
        failed_id = next(k for k, v in states.items() if v == "failed")

        killed_hard = await h.train("--hang", "--epochs", "2", "--seed", "5")
        stopped = await h.train("--hang", "--epochs", "2", "--seed", "7")
        hang_hard = await wait_for_run(h, lambda r: _seed(r) == 5 and _stepped(r))
        hang_stop = await wait_for_run(h, lambda r: _seed(r) == 7 and _stepped(r))
        killed_hard.send_signal(signal.SIGKILL)
        client = WandbClient(API_KEY, base_url=h.wandb_url, default_entity=ENTITY, timeout=20)
        try:
            await client.stop_run(ENTITY, PROJECT, hang_stop)
        finally:
            await client.close()
        assert await asyncio.wait_for(stopped.wait(), 60) != 0
        await killed_hard.wait()
        await _wait_states(h, {hang_hard: "crashed", hang_stop: "killed"})
        await h.wait_for_text(lambda t: t.startswith("💥 crashed") and hang_hard in t)
        await h.wait_for_text(lambda t: t.startswith("🛑 killed") and hang_stop in t)

        stalled = await h.train("--stall", "--seed", "9")
        try:
            stall_id = await wait_for_run(h, lambda r: _seed(r) == 9 and _stepped(r))
            await h.wait_for_text(lambda t: t.startswith("⏸ stalled") and stall_id in t, timeout=40)
        finally:
            stalled.kill()
            await stalled.wait()

        texts = h.texts()
        counts = run_ids_in(texts, [finished_id, failed_id, hang_hard, hang_stop, stall_id])
        assert counts == {finished_id: 1, failed_id: 1, hang_hard: 1, hang_stop: 1, stall_id: 1}, (
            _show(h)
        )
        message = {kind: next(t for t in texts if t.startswith(kind)) for kind in KINDS}
        assert finished_id in message["✅ finished"] and failed_id in message["❌ failed"]
        assert hang_hard in message["💥 crashed"] and hang_stop in message["🛑 killed"]
        assert stall_id in message["⏸ stalled"]
        run = h.wb.get_run(ENTITY, PROJECT, finished_id)
        assert run is not None
        summary = run["summary"]
        for metric in ("accuracy", "f1"):
            assert f"{metric} {summary[metric]:.4f}" in message["✅ finished"]
        assert "n_estimators=20" in message["✅ finished"]
        assert h.telegram.stats.too_many_requests == 0


KINDS = ("✅ finished", "❌ failed", "💥 crashed", "🛑 killed", "⏸ stalled")


def _seed(run: dict) -> object:
    return run["config"].get("seed", {}).get("value")


def _stepped(run: dict) -> bool:
    return run["summary"].get("_step") is not None


def _polled(h: Harness) -> bool:
    assert h.application is not None
    services = h.application.bot_data.services
    return services.store.runs.project_state(ENTITY, PROJECT).baseline_done


async def _wait_states(h: Harness, want: dict[str, str], timeout: float = 60) -> dict[str, str]:
    await h.wait_until(
        lambda: all(h.run_states().get(k) == v for k, v in want.items()),
        timeout=timeout,
        what=f"run states {want}",
    )
    return h.run_states()


async def test_sixty_runs_ending_together_reach_the_group_as_a_few_messages(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        names = [f"burst{i:03d}" for i in range(60)]
        h.wb.seed(
            {
                "runs": [
                    {
                        "entity": ENTITY,
                        "project": PROJECT,
                        "name": n,
                        "state": "running",
                        "config": {"n_estimators": i},
                        "summary": {"accuracy": i / 100, "_step": 3},
                    }
                    for i, n in enumerate(names)
                ]
            }
        )
        await h.wait_until(lambda: _polled(h) and _memory_size(h) >= 60, what="baseline of 60")
        for i, name in enumerate(names):
            h.wb.set_run_state(ENTITY, PROJECT, name, "failed" if i % 10 == 0 else "finished")
        await h.wait_for_text("burst059", timeout=30)
        await asyncio.sleep(1.5)  # anything still to come would be sent within a delivery tick
        texts = h.texts()
        assert 1 <= len(texts) <= 5, texts
        assert all(sum(n in t for t in texts) >= 1 for n in ("burst000", "burst059"))
        assert h.telegram.stats.too_many_requests == 0


def _memory_size(h: Harness) -> int:
    assert h.application is not None
    return len(h.application.bot_data.services.store.runs.memory(ENTITY, PROJECT))


async def test_idle_project_of_5000_runs_costs_one_request_per_poll(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.wb.seed(
            {
                "generate": {
                    "entity": ENTITY,
                    "project": PROJECT,
                    "count": 5000,
                    "states": ["finished"],
                }
            }
        )
        assert h.application is not None
        monitor = h.application.bot_data.services.monitor
        await h.wait_until(lambda: _polled(h), what="baseline")
        h.wb.reset_requests()
        start = monitor.polls
        await h.wait_until(lambda: monitor.polls >= start + 3, what="three polls")
        await asyncio.sleep(0.05)
        polls = monitor.polls - start
        counts = h.wb.request_counts()
        assert counts.get("Runs", 0) in (polls, polls + 1), counts  # one may be in flight
        assert sum(v for k, v in counts.items() if k != "Runs") == 0, counts
        assert h.texts() == []


def _show(h: Harness) -> str:
    return "\n---\n".join(h.texts())


async def test_bot_killed_while_runs_end_notifies_each_run_once_after_restart(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start_servers()
    try:
        names = [f"restart{i:02d}" for i in range(12)]
        h.wb.seed(
            {
                "runs": [
                    {
                        "entity": ENTITY,
                        "project": PROJECT,
                        "name": n,
                        "state": "running",
                        "summary": {"accuracy": 0.5 + i / 100, "_step": 1},
                    }
                    for i, n in enumerate(names)
                ]
            }
        )
        await h.start_bot_process()
        store = Store(tmp_path / "data" / "bot.sqlite3")
        await h.wait_until(
            lambda: len(store.runs.memory(ENTITY, PROJECT)) == 12, timeout=60, what="baseline"
        )
        # Runs fail one after another while the bot works; it is killed in the middle.
        for name in names[:6]:
            h.wb.set_run_state(ENTITY, PROJECT, name, "failed")
            await asyncio.sleep(0.15)
        await h.wait_until(lambda: len(h.texts()) >= 1, timeout=30, what="a first message")
        for name in names[6:9]:
            h.wb.set_run_state(ENTITY, PROJECT, name, "failed")
        await h.kill_bot_process()
        for name in names[9:]:
            h.wb.set_run_state(ENTITY, PROJECT, name, "failed")  # while the bot is down
        await h.start_bot_process()
        await h.wait_until(
            lambda: all(any(n in t for t in h.texts()) for n in names),
            timeout=60,
            what="every run notified",
        )
        await asyncio.sleep(2)  # a repeat, if any, would arrive within a few polls
        counts = run_ids_in(h.texts(), names)
        assert counts == dict.fromkeys(names, 1), _show(h)
        assert store.outbox.counts()["pending"] == 0
    finally:
        await h.kill_bot_process()
        await h.telegram.stop()
        await asyncio.to_thread(h.wandb.stop)
