"""A failed run's message says why: the exception from its console, streamed by the real SDK."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness import ENTITY, PROJECT, Harness
from tests.servers.wandb.sdk import API_KEY
from wandb_client.client import WandbClient

pytestmark = pytest.mark.slow


async def test_a_failed_runs_message_shows_its_exception_from_the_console(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.wait_polls(1)
        # Console capture on, as a lab's runs have it: wandb-core streams output.log.
        failed = await h.train(
            "--epochs", "4", "--fail-at", "2", "--seed", "3", env={"WANDB_CONSOLE": "auto"}
        )
        assert await asyncio.wait_for(failed.wait(), 90) != 0
        message = await h.wait_for_text(lambda t: t.startswith("❌ failed"), timeout=40)
        lines = (message.text or "").split("\n")
        assert "RuntimeError: simulated failure at step 2" in lines, lines

        # The server answers the SDK's own reader as W&B does: the tail in one request.
        (run_id,) = [r["name"] for r in h.wb.list_runs(ENTITY, PROJECT)]
        client = WandbClient(API_KEY, base_url=h.wandb_url, default_entity=ENTITY, timeout=20)
        try:
            tail = await client.console_tail(ENTITY, PROJECT, run_id, last=2)
        finally:
            await client.close()
        assert [line.text for line in tail][-1] == "RuntimeError: simulated failure at step 2"
        assert tail[-1].level == "error" and tail[-1].timestamp is not None
        assert len(tail) == 2 and tail[0].number + 1 == tail[1].number
