"""/rerun end to end: a grid sweep over seeds run by the real `wandb agent`, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.harness import ADMIN, ENTITY, LAB_CHAT, MEMBER, OTHER_LAB_CHAT, PROJECT, Harness
from tests.test_e2e_sweeps import card_text, sweep_path_in, sweep_runs

pytestmark = pytest.mark.slow

SWEPT = ("n_estimators", "max_depth", "dataset")


def prompt_config(text: str) -> dict:
    """Return the sweep config a Yes/No prompt shows in its <pre> block."""
    body = text.split("\n", 2)[2].rsplit("\nThis button expires", 1)[0]
    return yaml.safe_load(body)


async def test_rerun_of_a_sweeps_run_runs_a_grid_over_3_seeds_to_3_of_3(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/sweep start wine count=1")
        reply = await h.wait_for_text("started sweep", timeout=60)
        origin = sweep_path_in(reply.html or "")
        origin_id = origin.rsplit("/", 1)[1]
        await h.wait_for_text(
            lambda t: t.startswith(f"🧹 sweep {origin_id} finished") and "top " in t, timeout=180
        )
        (run,) = sweep_runs(h, origin_id)
        upserts = h.wb.request_counts().get("UpsertSweep", 0)

        # By display name, as the chat shows it; the chat's one project is implied.
        h.say(f"/rerun {run['displayName']}")
        prompt = await h.wait_for_text(lambda t: t.startswith("🧹 rerun"), timeout=30)

        text = prompt.text or ""
        assert text.startswith(f"🧹 rerun {run['displayName']} over 3 seeds as a grid sweep?")
        assert "3 runs · lab sweep wine · 1 agent" in text, text
        shown = prompt_config(text)
        assert shown["method"] == "grid" and shown["run_cap"] == 3
        assert shown["parameters"]["seed"] == {"values": [0, 1, 2]}
        for name in SWEPT:
            assert shown["parameters"][name] == {"value": run["config"][name]["value"]}, name
        assert [b["text"] for row in prompt.buttons for b in row] == ["Yes, start it", "No"]
        # Asking creates nothing.
        assert h.wb.request_counts().get("UpsertSweep", 0) == upserts

        h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, start it", user_id=ADMIN)
        started = await h.wait_for_text(
            lambda t: "started sweep" in t and origin_id not in t, timeout=60
        )
        path = sweep_path_in(started.html or "")
        new_id = path.rsplit("/", 1)[1]
        await h.wait_until(
            lambda: "3/3" in card_text(h, path) and "finished" in card_text(h, path),
            timeout=180,
            what="the rerun sweep finishing",
        )
        sweep = h.wb.get_sweep(ENTITY, PROJECT, new_id) or {}
        assert "grid" in str(sweep.get("config", sweep)), sweep
        reruns = sweep_runs(h, new_id)
        assert len(reruns) == 3 and all(r["state"] == "finished" for r in reruns)
        for rerun in reruns:
            for name in SWEPT:
                assert rerun["config"][name]["value"] == run["config"][name]["value"], name
        assert sorted(r["config"]["seed"]["value"] for r in reruns) == [0, 1, 2]
        # The answered prompt says what was started and by whom.
        edited = f"Rerun of {run['displayName']} over 3 seeds started by "
        assert any(t.startswith(edited) for t in h.texts()), h.texts()


async def test_rerun_refuses_bad_input_and_a_run_from_no_lab_sweep(tmp_path: Path) -> None:
    async with Harness(tmp_path, flood=False) as h:
        env = {"WANDB_RUN_ID": "byhand01", "WANDB_NAME": "by-hand"}
        assert await h.train_to_end("--n_estimators", "7", "--max_depth", "3", env=env) == 0
        upserts = h.wb.request_counts().get("UpsertSweep", 0)
        run = f"{PROJECT}/by-hand"
        usage = "Usage: /rerun <run> [seeds=N, default 3, at most 20]"
        for command, expected in (
            ("/rerun", "Say which run."),
            ("/rerun by-hand", "needs its project"),
            (f"/rerun {run} seeds=0", "seeds must be from 1 to 20, not 0."),
            (f"/rerun {run} seeds=abc", 'seeds must be a whole number from 1 to 20, not "abc".'),
            (f"/rerun {run} seeds=100000", "seeds must be from 1 to 20, not 100000."),
            (f"/rerun {run} seeds=2 count=5", "count must be from 1 to 2, not 5."),
            (f"/rerun {run} sweep=nosuch", 'Unknown lab sweep "nosuch". Known: wine, wine-grid.'),
        ):
            reply = await h.reply_to(command, chat_id=OTHER_LAB_CHAT)
            assert expected in (reply.text or "") and usage in (reply.text or ""), reply.text
        refused = await h.reply_to(f"/rerun {run}", chat_id=OTHER_LAB_CHAT, user_id=MEMBER)
        assert refused.text == "Only lab admins can rerun a run over seeds."
        unknown = await h.reply_to(f"/rerun {PROJECT}/nosuchrun", chat_id=OTHER_LAB_CHAT)
        assert 'No run "nosuchrun"' in (unknown.text or "")
        # A run no lab sweep started: the reply says which entry is needed, and how to name it.
        alone = await h.reply_to(f"/rerun {run}", chat_id=OTHER_LAB_CHAT)
        assert alone.text == (
            "by-hand comes from no sweep: say which lab sweep runs it, e.g. sweep=<name>"
            " (known: wine, wine-grid)."
        ), alone.text
        # Named, it is rerun with that entry's parameters at the run's values.
        prompt = await h.reply_to(f"/rerun {run} seeds=2 sweep=wine-grid", chat_id=OTHER_LAB_CHAT)
        shown = prompt_config(prompt.text or "")
        assert shown["method"] == "grid" and shown["run_cap"] == 2
        assert shown["parameters"] == {
            "n_estimators": {"value": 7},
            "max_depth": {"value": 3},
            "dataset": {"value": "wine"},
            "seed": {"values": [0, 1]},
        }
        assert "2 runs · lab sweep wine-grid · 1 agent" in (prompt.text or "")
        h.telegram.press(OTHER_LAB_CHAT, prompt.message_id, button_text="No", user_id=ADMIN)
        await h.wait_for_text("Not started", chat_id=OTHER_LAB_CHAT, timeout=20)
        assert h.wb.request_counts().get("UpsertSweep", 0) == upserts
