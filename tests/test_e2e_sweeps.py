"""End to end: /sweep start|stop|status with the real `wandb agent` and examples/wine/train.py."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.harness import ENTITY, LAB_CHAT, MEMBER, PROJECT, WINE, Harness, lab_data
from wandb_client.agents import descendants, pid_alive

pytestmark = pytest.mark.slow


def services(h: Harness):
    assert h.application is not None
    return h.application.bot_data.services


def card_of(h: Harness, path: str):
    record = services(h).store.sweeps.get(path)
    assert record is not None and record.card_message_id is not None
    return next(
        m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == record.card_message_id
    )


def card_text(h: Harness, path: str) -> str:
    """Return the card's text, or "" before the card was sent."""
    record = services(h).store.sweeps.get(path)
    if record is None or record.card_message_id is None:
        return ""
    return card_of(h, path).text or ""


def sweep_path_in(text: str) -> str:
    match = re.search(r"/sweeps/([a-z0-9]+)", text)
    assert match, text
    return f"{ENTITY}/{PROJECT}/{match.group(1)}"


async def test_sweep_start_runs_three_times_and_card_ends_at_best(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=3")
        reply = await h.wait_for_text("started sweep", timeout=60)
        assert "started sweep" in (reply.text or ""), reply.text
        assert (reply.text or "").count("pid ") == 1
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]

        await h.wait_until(
            lambda: "3/3" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=180,  # three runs one after another, on a loaded CI host
            what="final card",
        )
        runs = sweep_runs(h, sweep_id)
        assert len(runs) == 3
        assert all(r["state"] == "finished" for r in runs)
        card = card_of(h, path).text or ""
        assert not card_of(h, path).buttons  # a finished sweep has nothing left to press
        best = await services(h).wandb.best_runs(
            ENTITY, PROJECT, "accuracy", "maximize", sweep=sweep_id
        )
        top = best[0]
        value = float(top.summary["accuracy"])
        assert f"best accuracy {value:.4f}" in card or f"best accuracy {value:.4g}" in card, card
        if len(best) < 2 or best[1].summary["accuracy"] != value:
            assert top.display_name in card, card

        # The card told the runs: none of them has a message of its own, alone or in a burst.
        assert not [t for t in h.texts() if t.startswith(("✅", "📦"))], h.texts()
        told = {key for key in notified(h) if key.split(":")[0] in {r["name"] for r in runs}}
        assert len(told) == 3, told  # yet each counts as told: no later poll announces it
        # An agent that ended cleanly folds into the card: no message of its own.
        assert not any("agent 0 of sweep" in t for t in h.texts())
        assert not services(h).store.agents.all(live_only=True)
        # W&B's own best agrees with what the card shows.
        answer = await h.reply_to(f"/best {sweep_id}")
        assert top.display_name in (answer.text or "") or f"{value:.4f}" in (answer.text or "")


def notified(h: Harness) -> set[str]:
    """Return the run event keys the lab chat counts as told (message or card)."""
    with services(h).store.db.read() as db:
        rows = db.execute("SELECT run_key FROM notified WHERE chat_id=?", (LAB_CHAT,)).fetchall()
    return {row[0].rsplit("/", 1)[-1] for row in rows}


def sweep_runs(h: Harness, sweep_id: str) -> list[dict]:
    return [r for r in h.wb.list_runs(ENTITY, PROJECT) if r.get("sweep") == sweep_id]


def process_tree(h: Harness, path: str) -> set[int]:
    pids: set[int] = set()
    for agent in services(h).store.agents.all(sweep_path=path):
        pids |= {agent.pid, *descendants(agent.pid)}
    return pids


async def test_sweep_stop_during_a_run_leaves_nothing_alive(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=5")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        await h.wait_until(
            lambda: any(r["state"] == "running" for r in sweep_runs(h, sweep_id)),
            timeout=40,
            what="a sweep run running",
        )
        tree = process_tree(h, path)
        assert len(tree) >= 2, tree  # the agent and at least its training process

        h.say(f"/sweep stop {sweep_id}")
        stopped = await h.wait_for_text(f"🛑 sweep {sweep_id} stopped", timeout=60)
        assert "1 agent ended" in (stopped.text or ""), stopped.text
        assert not [pid for pid in tree if pid_alive(pid)]
        assert (h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state") == "FINISHED"
        assert not services(h).store.agents.all(live_only=True)
        # A stop the user asked for is its own report: no agent-exit alert follows.
        assert not any("agent 0 of sweep" in t for t in h.texts())


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("/sweep start nosuch", 'Unknown sweep "nosuch"'),
        ("/sweep start wine count=abc", "count must be a whole number"),
        ("/sweep start wine count=-1", "count must be a whole number"),
        ("/sweep start wine count=10**9", "count must be a whole number"),
        ("/sweep start wine count=1000000000", "count must be"),
        ("/sweep start wine gpus=x", "gpus must be a comma list"),
        ("/sweep start wine project=../../etc", "may use only letters"),
        ("/sweep start wine agents=99", "agents must be from 1 to"),
    ],
)
async def test_bad_sweep_input_gets_one_line_and_starts_nothing(
    tmp_path: Path, command: str, reason: str
) -> None:
    async with Harness(tmp_path) as h:
        answer = await h.reply_to(command)
        text = answer.text or ""
        assert reason in text, text
        assert "Usage: /sweep start <name>" in text
        assert "\n" not in text
        assert not services(h).store.agents.all()
        assert not services(h).store.sweeps.all()
        assert not h.wb.list_sweeps(ENTITY, PROJECT)
        assert h.wb.request_counts().get("UpsertSweep", 0) == 0


async def test_members_may_look_but_not_start(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        refused = await h.reply_to("/sweep start wine count=1", user_id=MEMBER)
        assert refused.text == "Only lab admins can start or stop sweeps."
        status = await h.reply_to("/sweeps", user_id=MEMBER)
        assert "no sweep running" in (status.text or "")
        assert "wine" in (status.text or "")
        assert not services(h).store.sweeps.all()
        assert not h.wb.list_sweeps(ENTITY, PROJECT)


async def test_agents_outlive_a_sigkilled_bot_and_are_adopted(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start_servers()
    try:
        await h.start_bot_process()
        h.say("/sweep start wine count=2 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        # Killed while both agents run (a run takes them several seconds to even start).
        await h.kill_bot_process()

        await h.start_bot()
        agents = services(h).store.agents.all(sweep_path=path)
        assert len(agents) == 2
        assert all(pid_alive(a.pid) for a in agents)
        h.say("/sweeps")
        status = await h.wait_for_text("agents: 2 running of 2", timeout=20)
        for agent in agents:
            assert f"pid {agent.pid}" in (status.text or ""), status.text
        assert (status.text or "").count("up ") == 2, status.text

        await h.wait_until(
            lambda: "2/2" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=65,
            what="final card",
        )
        await h.wait_until(
            lambda: not services(h).store.agents.all(live_only=True),
            timeout=15,
            what="adopted agents seen to end",
        )
        # Adopted agents' clean ends fold into the card: no message per agent. The restarted
        # bot still knows the card claims the sweep's runs: none has a message of its own.
        assert not [t for t in h.texts() if t.startswith(("✅", "📦"))], h.texts()
        for index in range(2):
            assert not any(f"agent {index} of sweep {sweep_id}" in t for t in h.texts())
        assert len(sweep_runs(h, sweep_id)) == 2
        assert all(r["state"] == "finished" for r in sweep_runs(h, sweep_id))
    finally:
        await h.__aexit__(None, None, None)


BROKEN_SWEEP = """\
name: wine-broken
program: train.py
method: grid
metric:
  name: accuracy
  goal: maximize
parameters:
  n_estimators:
    values: [10, 50, 100, 200]
  fail-at:
    value: 1
"""


async def test_crash_loop_pauses_the_sweep_stops_agents_and_alerts_once(tmp_path: Path) -> None:
    sweep_file = tmp_path / "broken.yaml"
    sweep_file.write_text(BROKEN_SWEEP)
    lab = lab_data(crash_loop={"failures": 2, "window": 120})
    lab["sweeps"]["broken"] = {"file": str(sweep_file), "project": PROJECT, "workdir": str(WINE)}
    async with Harness(tmp_path, lab=lab) as h:
        h.say("/sweep start broken count=4")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        alert = await h.wait_for_text(
            # Generous: two runs must start and fail first, which a loaded CI host slows.
            lambda t: t.startswith(f"⚠️ sweep {sweep_id} paused"),
            timeout=120,
        )
        assert "RuntimeError: simulated failure at step 1" in (alert.text or ""), alert.text
        assert [b["text"] for row in alert.buttons for b in row] == ["Stop"]
        await h.wait_until(
            lambda: not services(h).store.agents.all(live_only=True),
            timeout=20,
            what="agents stopped",
        )
        assert (h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state") == "PAUSED"
        assert not [a.pid for a in services(h).store.agents.all() if pid_alive(a.pid)]
        await asyncio.sleep(1.0)
        assert sum(t.startswith(f"⚠️ sweep {sweep_id}") for t in h.texts()) == 1
        assert not any("agent 0 of sweep" in t for t in h.texts())


HALF_BROKEN_SWEEP = """\
name: wine-half-broken
program: train.py
method: grid
metric:
  name: accuracy
  goal: maximize
parameters:
  n_estimators:
    value: 10
  fail-at:
    values: [99, 1]
"""


@pytest.mark.parametrize("mode", ["card", "each"])
async def test_a_sweeps_finished_runs_fold_into_its_card_but_a_failure_is_told(
    tmp_path: Path, mode: str
) -> None:
    sweep_file = tmp_path / "half.yaml"
    sweep_file.write_text(HALF_BROKEN_SWEEP)
    lab = lab_data()
    lab["sweeps"]["half"] = {"file": str(sweep_file), "project": PROJECT, "workdir": str(WINE)}
    if mode == "each":
        lab["projects"][PROJECT]["sweep_runs"] = "each"
    async with Harness(tmp_path, lab=lab) as h:
        h.say("/sweep start half count=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        # Grid order: the run that finishes comes first, then the one that fails at step 1.
        failed = await h.wait_for_text(lambda t: t.startswith("❌ failed"), timeout=150)
        runs = {r["state"]: r for r in sweep_runs(h, sweep_id)}
        assert runs["failed"]["displayName"] in (failed.text or ""), failed.text
        await h.wait_until(
            lambda: "2/2" in card_text(h, path) and "1 failed" in card_text(h, path),
            timeout=60,
            what="final card with its failure",
        )
        # Messages of a chat go out in order: the finished run's would be out by now.
        finished = [t for t in h.texts() if t.startswith(("✅", "📦"))]
        if mode == "card":
            assert not finished, finished
        else:
            assert len(finished) == 1, finished
            assert runs["finished"]["displayName"] in finished[0], finished
        # Folded or not, the finished run counts: /best names it.
        best = await h.reply_to(f"/best {sweep_id}")
        assert runs["finished"]["displayName"] in (best.text or ""), best.text
        await h.wait_until(
            lambda: not services(h).store.agents.all(live_only=True),
            timeout=30,
            what="the agent ended",
        )
