"""What a lab trips over on first use, end to end: real bot, local servers, real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ENTITY, PROJECT, Harness
from tests.test_e2e_topics import PROD, polled, reply_in, start, start_bot, stop, topic_named

pytestmark = pytest.mark.slow


async def test_a_command_typed_in_a_projects_topic_is_about_that_project(tmp_path: Path) -> None:
    h = await start(tmp_path)
    try:
        await start_bot(h, {"projects": [PROJECT, PROD], "topics": "auto"})
        await h.wait_until(lambda: polled(h, PROJECT, PROD), what="baseline")
        assert await h.train_to_end("--epochs", "2") == 0
        await h.wait_for_text("✅ finished", timeout=60)
        dev = topic_named(h, PROJECT)
        # Two projects: in the General topic the project must still be named ...
        general = await reply_in(h, "/runs", None)
        assert (general.text or "").startswith("Say which project."), general.text
        # ... but in the project's own topic it is the one meant, for runs by name too.
        listed = await reply_in(h, "/runs", dev)
        assert listed.message_thread_id == dev
        assert (listed.text or "").startswith(f"📋 runs in {PROJECT}"), listed.text
        [run_id] = h.run_states()
        stopped = await reply_in(h, f"/stop {run_id}", dev)
        assert "is finished, not running" in (stopped.text or ""), stopped.text
    finally:
        await stop(h)


async def test_best_by_a_mistyped_metric_names_the_metrics_runs_log(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        run = {"entity": ENTITY, "project": PROJECT, "name": "r1", "state": "finished"}
        h.wb.seed({"runs": [run | {"summary": {"accuracy": 0.9, "loss": 0.2}}]})
        reply = await h.reply_to(f"/best {PROJECT} acuracy")
        assert reply.text == (
            f"🏆 no run in {PROJECT} has logged acuracy yet. Did you mean accuracy? "
            "Its runs log: accuracy, loss."
        )
