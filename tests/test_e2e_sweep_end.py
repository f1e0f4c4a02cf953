"""End to end: a finished sweep's end message lists its top runs in W&B's order, with a chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Harness
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
