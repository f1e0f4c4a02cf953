"""End to end: a sweep's state is told the same way everywhere, from W&B's state and agents'."""

from __future__ import annotations

from pathlib import Path

from tests.harness import ENTITY, PROJECT, WINE, Harness, lab_data
from tests.test_e2e_sweeps import card_of, card_text, services, sweep_path_in, sweep_runs

FAILING_SWEEP = """\
name: wine-failing
program: train.py
method: grid
metric:
  name: accuracy
  goal: maximize
parameters:
  n_estimators:
    values: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
  fail-at:
    value: 1
"""


async def test_agents_that_give_up_are_told_on_the_card_not_as_finished(tmp_path: Path) -> None:
    sweep_file = tmp_path / "failing.yaml"
    sweep_file.write_text(FAILING_SWEEP)
    # The breaker would step in first; here wandb's own agent gives up (after 2 in a row).
    lab = lab_data(crash_loop={"failures": 50, "window": 600})
    lab["sweeps"]["failing"] = {
        "file": str(sweep_file),
        "project": PROJECT,
        "workdir": str(WINE),
        "env": {"WANDB_AGENT_MAX_INITIAL_FAILURES": "2"},
    }
    async with Harness(tmp_path, lab=lab) as h:
        h.say("/sweep start failing count=10")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        await h.wait_until(lambda: "gave up" in card_text(h, path), timeout=90, what="gave-up card")
        card = card_of(h, path).text or ""
        assert "agents gave up after 2 failed runs in a row" in card, card
        assert "finished" not in card and "2/10" in card and "2 failed" in card, card
        assert "RuntimeError: simulated failure at step 1" in card, card
        # W&B still lists it running: the card's Resume starts agents again.
        assert [b["text"] for row in card_of(h, path).buttons for b in row] == ["Stop", "Resume"]
        # The agent's exit 0 is not "done": no message says so.
        assert not any("is done" in t for t in h.texts())
        status = await h.reply_to(f"/sweep status {sweep_id}")
        assert "gave up" in (status.text or ""), status.text


async def test_resume_of_a_stopped_sweep_starts_agents_for_the_runs_left(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=3")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        await h.wait_until(
            lambda: any(r["state"] == "running" for r in sweep_runs(h, sweep_id)),
            timeout=40,
            what="a sweep run running",
        )
        h.say(f"/sweep stop {sweep_id}")
        await h.wait_for_text(f"🛑 sweep {sweep_id} stopped", timeout=60)
        await h.wait_until(lambda: "stopped" in card_text(h, path), timeout=20, what="stopped card")
        done = sum(r["state"] != "running" for r in sweep_runs(h, sweep_id))

        h.say(f"/sweep resume {sweep_id}")
        resumed = await h.wait_for_text(f"▶️ sweep {sweep_id} resumed", timeout=60)
        left = 3 - done
        assert f"1 agent started for the {left} run" in (resumed.text or ""), resumed.text
        assert (h.wb.get_sweep(ENTITY, PROJECT, sweep_id) or {}).get("state") == "RUNNING"
        assert len(services(h).store.agents.all(live_only=True, sweep_path=path)) == 1
        await h.wait_until(
            lambda: "3/3" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=120,
            what="the resumed sweep finishing",
        )


async def test_joining_a_finished_sweep_is_refused_not_shown_past_its_end(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=1")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        await h.wait_until(lambda: "finished" in card_text(h, path), timeout=90, what="finished")
        h.say(f"/sweep start wine sweep={sweep_id} count=2")
        answer = await h.wait_for_text("already ran all", timeout=30)
        assert "already ran all 1 runs" in (answer.text or ""), answer.text
        assert not services(h).store.agents.all(live_only=True)
        assert "1/1" in card_text(h, path)
        assert not any("2/1" in t or "1/2" in t or "3/2" in t for t in h.texts())
        # Pausing what has ended says so, not that W&B refused.
        answer = await h.reply_to(f"/sweep pause {sweep_id}")
        assert "has ended (finished): there is nothing to pause" in (answer.text or ""), answer.text
