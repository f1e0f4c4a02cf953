"""What the lab sees when it names projects and sweeps: entities kept, mistakes warned."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ADMIN, ENTITY, LAB_CHAT, OTHER_LAB_CHAT, PROJECT, Harness

pytestmark = pytest.mark.slow


async def test_watch_keeps_another_entity_and_warns_about_unknown_projects(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.wb.seed({"runs": [{"entity": "otherlab", "project": "real", "name": "r1"}]})
        known = await h.reply_to("/watch otherlab/real", chat_id=OTHER_LAB_CHAT)
        assert known.text is not None and "now hears about otherlab/real" in known.text
        assert "does not know" not in known.text
        unknown = await h.reply_to("/watch otherlab/newproj", chat_id=OTHER_LAB_CHAT)
        assert unknown.text is not None and "otherlab/newproj" in unknown.text
        assert "W&B does not know otherlab/newproj" in unknown.text
        assert h.application is not None
        subs = h.application.bot_data.services.store.chats.subscriptions()[OTHER_LAB_CHAT]
        assert ("otherlab", "newproj") in subs and ("otherlab", "real") in subs
        listed = await h.reply_to("/subscriptions", chat_id=OTHER_LAB_CHAT)
        assert listed.text is not None and "otherlab/newproj" in listed.text
        muted = await h.reply_to("/silence nosuchproj 1h", chat_id=OTHER_LAB_CHAT)
        assert muted.text is not None and "silenced here" in muted.text
        assert "W&B does not know nosuchproj" in muted.text
        assert ENTITY not in (muted.text or "")


async def test_digest_asked_twice_at_once_answers_twice(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.say("/digest", chat_id=OTHER_LAB_CHAT)
        h.say("/digest", chat_id=OTHER_LAB_CHAT)
        msgs = await h.telegram.wait_for_messages(OTHER_LAB_CHAT, count=2, timeout=30)
        assert all((m.text or "").startswith("🗓 digest") for m in msgs[:2])


async def test_runs_are_named_by_display_name_and_twins_get_a_choice(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        runs = [
            {"name": "a1b2c3d4", "displayName": "rf-grid-7", "state": "running"},
            {"name": "twin0001", "displayName": "twin", "state": "running"},
            {"name": "twin0002", "displayName": "twin", "state": "finished"},
        ]
        h.wb.seed({"runs": [{"entity": ENTITY, "project": PROJECT, **r} for r in runs]})
        prompt = await h.reply_to(f"/stop {PROJECT}/rf-grid-7")
        assert (prompt.text or "").startswith("🛑 stop run"), prompt.text
        assert "a1b2c3d4" in str(prompt.buttons) or "rf-grid-7" in (prompt.text or "")
        by_url = await h.reply_to(f"/stop https://wandb.ai/{ENTITY}/{PROJECT}/runs/a1b2c3d4")
        assert (by_url.text or "").startswith("🛑 stop run")
        choice = await h.reply_to("/stop twin")  # the chat's only project
        assert choice.text is not None and '2 runs are called "twin"' in choice.text
        labels = [b["text"] for row in choice.buttons for b in row]
        assert len(labels) == 2 and labels[0].startswith(("twin0001", "twin0002"))
        h.telegram.press(
            LAB_CHAT,
            choice.message_id,
            button_text=next(label for label in labels if "running" in label),
            user_id=ADMIN,
        )
        picked = await h.wait_for_text(lambda t: t.startswith("🛑 stop run") and "twin" in t)
        assert picked.buttons
        missing = await h.reply_to("/stop nosuchname")
        assert missing.text is not None and 'No run "nosuchname"' in missing.text
