"""Buttons as people press them: a prompt answered once, presses that are not ours answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.callbacks import INVALID
from tests.harness import ADMIN, ENTITY, LAB_CHAT, PROJECT, Harness, lab_data

pytestmark = pytest.mark.slow

SECOND_ADMIN = 777888999


def answers(h: Harness) -> list[str | None]:
    return [a["text"] for a in h.telegram.callback_answers]


async def stop_prompt(h: Harness, run_id: str):
    """Seed a running run, type /stop for it and return the Yes/No prompt."""
    h.wb.seed(
        {"runs": [{"entity": ENTITY, "project": PROJECT, "name": run_id, "state": "running"}]}
    )
    prompt = await h.reply_to(f"/stop {run_id}")
    assert (prompt.text or "").startswith("🛑 stop run"), prompt.text
    return prompt


def data_of(prompt, label: str) -> str:
    return next(b["callback_data"] for row in prompt.buttons for b in row if b["text"] == label)


async def test_no_then_yes_on_one_prompt_does_nothing_and_says_who_answered(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, lab=lab_data(admins=[ADMIN, SECOND_ADMIN])) as h:
        prompt = await stop_prompt(h, "hang0001")
        yes, no = data_of(prompt, "Yes, stop it"), data_of(prompt, "No")
        # Two admins answer at once: both presses reach the bot before either is handled.
        h.telegram.press(LAB_CHAT, prompt.message_id, no, user_id=ADMIN, first_name="Ada")
        h.telegram.press(LAB_CHAT, prompt.message_id, yes, user_id=SECOND_ADMIN, first_name="Bo")
        await h.wait_until(lambda: len(answers(h)) >= 2, timeout=15, what="both answers")
        assert answers(h)[0] == "Cancelled."
        assert "already answered" in (answers(h)[1] or "") and "Ada" in (answers(h)[1] or "")
        assert not (h.wb.get_run(ENTITY, PROJECT, "hang0001") or {}).get("stopRequested")
        # Pressed again later, either answer still does nothing.
        h.telegram.press(LAB_CHAT, prompt.message_id, yes, user_id=ADMIN)
        await h.wait_until(lambda: len(answers(h)) >= 3, timeout=15, what="third answer")
        assert "already answered" in (answers(h)[2] or "")
        assert not (h.wb.get_run(ENTITY, PROJECT, "hang0001") or {}).get("stopRequested")


async def test_yes_then_no_stops_once_and_no_is_told(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=lab_data(admins=[ADMIN, SECOND_ADMIN])) as h:
        prompt = await stop_prompt(h, "hang0002")
        yes, no = data_of(prompt, "Yes, stop it"), data_of(prompt, "No")
        h.telegram.press(LAB_CHAT, prompt.message_id, yes, user_id=SECOND_ADMIN, first_name="Bo")
        h.telegram.press(LAB_CHAT, prompt.message_id, no, user_id=ADMIN, first_name="Ada")
        await h.wait_until(lambda: len(answers(h)) >= 2, timeout=15, what="both answers")
        assert answers(h)[0] == "Stop requested."
        assert "already answered" in (answers(h)[1] or "") and "Bo" in (answers(h)[1] or "")
        assert (h.wb.get_run(ENTITY, PROJECT, "hang0002") or {}).get("stopRequested")
        edited = next(
            m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == prompt.message_id
        )
        assert "stop requested" in (edited.text or "")


async def test_a_press_without_our_prefix_is_answered(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        plain = await h.reply_to("/help")  # a message without buttons takes any data
        for data in ("garbage", "x:cb:1", "cb:", "cb:nosuchtoken", "cb:nosuchtoken:1"):
            count = len(answers(h)) + 1
            h.telegram.press(LAB_CHAT, plain.message_id, data, user_id=ADMIN)
            await h.wait_until(lambda: len(answers(h)) >= count, timeout=15, what=data)  # noqa: B023
        assert answers(h)[:2] == [INVALID, INVALID]
        assert all(a for a in answers(h))


async def test_sweep_card_stop_asks_first_and_no_leaves_the_sweep_alone(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        card = await h.reply_to("/help")  # stands in for a card: any message takes our data
        token = services.store.callbacks.put(
            "sweep_stop", f"{ENTITY}/{PROJECT}/abcd1234", services.clock(), chat_id=LAB_CHAT
        )
        h.telegram.press(LAB_CHAT, card.message_id, f"cb:{token}", user_id=ADMIN)
        prompt = await h.wait_for_text("🛑 stop sweep")
        assert [b["text"] for row in prompt.buttons for b in row] == ["Yes, stop it", "No"]
        h.telegram.press(LAB_CHAT, prompt.message_id, button_text="No", user_id=ADMIN)
        await h.wait_until(
            lambda: any(
                (m.text or "").startswith("Cancelled")
                for m in h.telegram.bot_messages(LAB_CHAT)
                if m.message_id == prompt.message_id
            ),
            timeout=15,
            what="the prompt edited to cancelled",
        )
        assert h.wb.request_counts().get("UpsertSweep", 0) == 0
        assert not any("stopped" in t for t in h.texts())
