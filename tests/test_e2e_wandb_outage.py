"""W&B down for a while: the admins are told once, and once more when it answers again."""

from __future__ import annotations

from pathlib import Path

from tests.harness import ADMIN, ENTITY, PROJECT, Harness


async def test_admins_hear_once_that_w_and_b_is_down_and_once_that_it_is_back(
    tmp_path: Path,
) -> None:
    settings = {"WTB_WANDB_DOWN_NOTICE_AFTER": "2", "WTB_WANDB_TIMEOUT": "1"}
    async with Harness(tmp_path, settings=settings) as h:
        assert h.application is not None
        store = h.application.bot_data.services.store
        await h.wait_until(lambda: store.runs.project_state(ENTITY, PROJECT).baseline_done)
        h.wb.inject_fault("Runs", "500", count=100_000)
        down = await h.wait_for_text("W&B has not answered", chat_id=ADMIN, timeout=60)
        # The error in one line (wandb-core retries the 500s until the call's timeout).
        first, *rest = (down.text or "").splitlines()
        assert first.split(": ", 1)[1].strip() and rest == ["Notifications follow once it answers."]
        # More failed polls follow; the admins are not told again.
        await h.wait_polls(3)
        h.wb.reset()  # W&B answers again (the project now has no runs: still an answer)
        back = await h.wait_for_text("W&B answers again", chat_id=ADMIN, timeout=60)
        await h.wait_polls(3)
        texts = h.texts(chat_id=ADMIN)
        assert sum("W&B has not answered" in t for t in texts) == 1, texts
        assert sum("W&B answers again" in t for t in texts) == 1, texts
        assert "down" in (back.text or "")
        assert h.texts() == []  # the lab chat hears nothing of it
