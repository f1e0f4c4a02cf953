"""What the lab sees when it names projects and sweeps: entities kept, mistakes warned."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ENTITY, OTHER_LAB_CHAT, Harness

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
