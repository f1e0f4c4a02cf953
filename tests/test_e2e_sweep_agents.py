"""End to end: one agent of a sweep stopped from `/sweep agents`, and `/sweep scale`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ADMIN, ENTITY, LAB_CHAT, MEMBER, PROJECT, WINE, Harness, lab_data
from tests.test_e2e_sweeps import card_text, services, sweep_path_in, sweep_runs
from wandb_client.agents import descendants, pid_alive

pytestmark = pytest.mark.slow

# Runs long enough (8 steps 2 s apart) to be caught mid-run on a loaded host.
SLOW_SWEEP = """\
name: wine-slow
program: train.py
method: random
metric:
  name: accuracy
  goal: maximize
parameters:
  n_estimators:
    values: [10, 20, 30]
  epochs:
    value: 8
  sleep:
    value: 2.0
"""


def slow_lab(tmp_path: Path) -> dict:
    sweep_file = tmp_path / "slow.yaml"
    sweep_file.write_text(SLOW_SWEEP)
    # One failure would trip the breaker: an agent stopped on purpose must not count as one.
    lab = lab_data(crash_loop={"failures": 1, "window": 600})
    lab["sweeps"]["slow"] = {"file": str(sweep_file), "project": PROJECT, "workdir": str(WINE)}
    return lab


def sweep_state(h: Harness, sweep_id: str) -> str:
    return str((h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state"))


def live(h: Harness, path: str) -> list:
    return services(h).store.agents.all(live_only=True, sweep_path=path)


def listing_with_buttons(h: Harness, sweep_id: str):
    head = f"🧹 sweep {sweep_id} · 2 agents"
    found = [m for m in h.telegram.bot_messages(LAB_CHAT) if (m.text or "").startswith(head)]
    return next((m for m in found if m.buttons), None)


def button(message, label: str) -> str:
    return next(b["callback_data"] for row in message.buttons for b in row if b["text"] == label)


async def start(h: Harness, agents: int) -> tuple[str, str]:
    h.say(f"/sweep start slow count=4 agents={agents}")
    reply = await h.wait_for_text("started sweep", timeout=60)
    path = sweep_path_in(reply.html or "")
    return path, path.rsplit("/", 1)[1]


async def finishes(h: Harness, path: str, sweep_id: str) -> None:
    await h.wait_until(
        lambda: "4/4" in card_text(h, path) and "finished" in card_text(h, path),
        timeout=240,
        what="the sweep finishing its count",
    )
    assert len(sweep_runs(h, sweep_id)) == 4
    record = services(h).store.sweeps.get(path)
    assert record is not None and not record.breaker_tripped
    assert not any(t.startswith(f"⚠️ sweep {sweep_id}") for t in h.texts())


async def test_stopping_one_agent_of_two_leaves_the_other_and_the_sweep_running(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, lab=slow_lab(tmp_path)) as h:
        path, sweep_id = await start(h, agents=2)
        await h.wait_until(
            lambda: sum(r["state"] == "running" for r in sweep_runs(h, sweep_id)) == 2,
            timeout=90,
            what="both agents on a run",
        )
        first, second = sorted(live(h, path), key=lambda a: a.idx)
        tree = {second.pid, *descendants(second.pid)}

        # A member sees the list, without buttons.
        h.say(f"/sweep agents {sweep_id}", user_id=MEMBER)
        shown = await h.wait_for_text(f"🧹 sweep {sweep_id} · 2 agents", timeout=30)
        assert not shown.buttons
        text = shown.text or ""
        assert f"agent 0 · {first.host} · PID {first.pid}" in text, text
        assert f"agent 1 · {second.host} · PID {second.pid}" in text, text
        # Each agent is on one of the sweep's running runs, named and timed.
        running = [r["displayName"] for r in sweep_runs(h, sweep_id) if r["state"] == "running"]
        for line in text.splitlines()[1:]:
            assert any(f" on {name} for " in line for name in running), (line, running)

        h.say(f"/sweep agents {sweep_id}")
        await h.wait_until(lambda: listing_with_buttons(h, sweep_id), timeout=30, what="list")
        listing = listing_with_buttons(h, sweep_id)
        line = (listing.text or "").splitlines()[2]
        cut = next(r["name"] for r in sweep_runs(h, sweep_id) if f" on {r['displayName']} " in line)
        h.telegram.press(
            LAB_CHAT, listing.message_id, button(listing, "Stop agent 1"), user_id=ADMIN
        )
        prompt = await h.wait_for_text(f"stop agent 1 of sweep {sweep_id}", timeout=30)
        assert "The sweep and its other agents go on." in (prompt.text or "")
        h.telegram.press(
            LAB_CHAT, prompt.message_id, button(prompt, "Yes, stop agent 1"), user_id=ADMIN
        )
        await h.wait_for_text(f"🛑 agent 1 of sweep {sweep_id} stopped by", timeout=60)

        assert not [pid for pid in tree if pid_alive(pid)]
        assert pid_alive(first.pid)
        assert [a.idx for a in live(h, path)] == [0]
        assert sweep_state(h, sweep_id) == "RUNNING"
        await h.wait_until(
            lambda: " 1 agent " in card_text(h, path) or "· 1 agent" in card_text(h, path),
            timeout=30,
            what="the card showing one agent",
        )
        await finishes(h, path, sweep_id)
        # Its run was cut short, and counted on W&B as one of the 4 (not as a crash loop).
        state = next(r["state"] for r in sweep_runs(h, sweep_id) if r["name"] == cut)
        assert state != "finished", state
        # Stopped on purpose: no agent-exit message, and nothing started it again.
        assert not any(f"agent 1 of sweep {sweep_id} exited" in t for t in h.texts())
        assert len(services(h).store.agents.all(sweep_path=path)) == 2


async def test_scale_adds_an_agent_then_stops_it_and_the_sweep_finishes(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=slow_lab(tmp_path)) as h:
        path, sweep_id = await start(h, agents=1)
        h.say(f"/sweep scale {sweep_id} agents=2")
        up = await h.wait_for_text(f"🧹 sweep {sweep_id}: 1 → 2 agents", timeout=60)
        assert "started agent 1" in (up.text or ""), up.text
        assert [a.idx for a in live(h, path)] == [0, 1]
        added = live(h, path)[1]
        await h.wait_until(
            lambda: sum(r["state"] == "running" for r in sweep_runs(h, sweep_id)) == 2,
            timeout=90,
            what="both agents on a run",
        )

        h.say(f"/sweep scale {sweep_id} agents=1")
        down = await h.wait_for_text(f"🧹 sweep {sweep_id}: 2 → 1 agent", timeout=60)
        assert "stopped agent 1" in (down.text or ""), down.text
        assert not pid_alive(added.pid)
        assert [a.idx for a in live(h, path)] == [0]
        assert sweep_state(h, sweep_id) == "RUNNING"
        await finishes(h, path, sweep_id)


BAD_INPUTS = [
    ("/sweep scale", "Say which sweep."),
    ("/sweep scale wine", "Say how many agents: agents=K."),
    ("/sweep scale wine agents=0", "A sweep keeps at least 1 agent"),
    ("/sweep scale wine agents=x", "agents must be a whole number"),
    ("/sweep scale wine agents=99", "agents must be from 1 to"),
    ("/sweep scale wine count=2", 'Unknown option "count"'),
    ("/sweep scale wine agents=2", 'Sweep "wine" was not started from the chat yet.'),
    ("/sweep agents", "Say which sweep."),
    ("/sweep agents nosuch-sweep", 'Unknown sweep "nosuch-sweep"'),
]


async def test_bad_agent_commands_get_one_line_and_members_may_not_scale(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        for command, reason in BAD_INPUTS:
            h.say(command)
            answer = await h.wait_for_text(reason, timeout=20)
            # A usage error shows the usage; a sweep the bot does not know is one line.
            text = answer.text or ""
            usage = "/sweep scale <" in text or "/sweep agents <" in text
            assert usage != reason.startswith("Sweep "), (command, answer.text)
        answer = await h.reply_to("/sweep scale wine agents=2", user_id=MEMBER)
        assert "Only lab admins" in (answer.text or ""), answer.text
        h.say("/sweep agents wine", user_id=MEMBER)
        await h.wait_for_text('"wine" was not started from the chat yet', timeout=20)
        assert not services(h).store.agents.all()
