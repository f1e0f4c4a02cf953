"""End to end: a finished sweep's end message lists its top runs in W&B's order, with a chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ADMIN, ENTITY, LAB_CHAT, PROJECT, Harness
from tests.test_e2e_sweeps import card_text, sweep_path_in, sweep_runs

pytestmark = pytest.mark.slow


async def test_a_finished_sweep_ends_with_one_message_of_its_top_runs(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=6 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        end = await h.wait_for_text(
            lambda t: t.startswith(f"🧹 sweep {sweep_id} finished") and "top " in t, timeout=180
        )
        assert "6/6" in card_text(h, path)
        text = end.caption or end.text or ""
        runs = [r for r in sweep_runs(h, sweep_id) if r["state"] == "finished"]
        assert len(runs) == 6
        # The plain-Python ordering: accuracy high to low, the earlier run first on a tie.
        ranked = sorted(
            runs, key=lambda r: (-float(r["summary"]["accuracy"]), r["createdAt"], r["name"])
        )
        lines = [line for line in text.splitlines() if line[:2] in {f"{i}." for i in range(1, 6)}]
        assert len(lines) == 5, text
        for line, run in zip(lines, ranked[:5], strict=True):
            assert run["name"] in line or run["displayName"] in line, (line, run)
        assert "6/6 runs in" in text, text
        assert end.photo, "the end message carries the importance chart"
        labels = [b["text"] for row in end.buttons for b in row]
        assert labels == ["Rerun best ×3 seeds", "Narrow around best", "Plot"], labels
        assert (
            sum(t.startswith(f"🧹 sweep {sweep_id} finished") and "top " in t for t in h.texts())
            == 1
        )


async def test_rerun_best_over_three_seeds_runs_a_grid_to_3_of_3(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=2 agents=2")
        reply = await h.wait_for_text("started sweep", timeout=60)
        path = sweep_path_in(reply.html or "")
        sweep_id = path.rsplit("/", 1)[1]
        end = await h.wait_for_text(
            lambda t: t.startswith(f"🧹 sweep {sweep_id} finished") and "top " in t, timeout=180
        )
        finished = [r for r in sweep_runs(h, sweep_id) if r["state"] == "finished"]
        # Best accuracy; on a tie the earlier run, as the end message ranks them.
        best = min(
            finished, key=lambda r: (-float(r["summary"]["accuracy"]), r["createdAt"], r["name"])
        )
        h.telegram.press(LAB_CHAT, end.message_id, button_text="Rerun best ×3 seeds", user_id=ADMIN)
        prompt = await h.wait_for_text("rerun the best run over 3 seeds", timeout=30)
        assert "method: grid" in (prompt.text or "") and "seed:" in (prompt.text or "")
        h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, start it", user_id=ADMIN)
        started = await h.wait_for_text(
            lambda t: "started sweep" in t and sweep_id not in t, timeout=60
        )
        new_path = sweep_path_in(started.html or "")
        new_id = new_path.rsplit("/", 1)[1]
        await h.wait_until(
            lambda: "3/3" in card_text(h, new_path) and "finished" in card_text(h, new_path),
            timeout=180,
            what="the rerun sweep finishing",
        )
        sweep = h.wb.get_sweep(ENTITY, PROJECT, new_id) or {}
        assert "grid" in str(sweep.get("config", sweep)), sweep
        reruns = sweep_runs(h, new_id)
        assert len(reruns) == 3
        swept = ("max_depth", "n_estimators")
        for rerun in reruns:
            for name in swept:
                assert rerun["config"][name]["value"] == best["config"][name]["value"], name
        assert sorted(r["config"]["seed"]["value"] for r in reruns) == [0, 1, 2]
