"""End to end: /stop <run> with its confirmation, against a real looping training run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from bot.callbacks import EXPIRED
from handlers.stop import NOT_YOURS
from tests.harness import ADMIN, ENTITY, LAB_CHAT, MEMBER, PROJECT, Harness
from tests.servers.telegram import ChatMessage

pytestmark = pytest.mark.slow


async def running_run(h: Harness, proc: asyncio.subprocess.Process) -> str:
    """Wait until the looping run shows as running on W&B; return its id."""
    await h.wait_until(
        lambda: any(s == "running" for s in h.run_states().values()) or proc.returncode is not None,
        timeout=40,
        what="a running run",
    )
    assert proc.returncode is None, "train.py --hang ended on its own"
    return next(run_id for run_id, state in h.run_states().items() if state == "running")


async def prompt_for(h: Harness, run_id: str):
    """Type /stop as the admin and return the confirmation message."""

    def prompts(msgs) -> list:
        return [m for m in msgs if (m.text or "").startswith("🛑 stop run")]

    before = len(prompts(h.telegram.bot_messages(LAB_CHAT)))
    h.say(f"/stop {run_id}")
    msgs = await h.telegram.wait_for_messages(
        LAB_CHAT, lambda ms: len(prompts(ms)) > before, timeout=20
    )
    return prompts(msgs)[-1]


def answers(h: Harness) -> list[str | None]:
    return [a["text"] for a in h.telegram.callback_answers]


async def test_stop_confirmed_kills_the_run_and_confirms_once(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        proc = await h.train("--hang")
        try:
            run_id = await running_run(h, proc)
            prompt = await prompt_for(h, run_id)
            assert run_id in (prompt.text or "")
            labels = [b["text"] for row in prompt.buttons for b in row]
            assert labels == ["Yes, stop it", "No"]
            assert all(
                len(b["callback_data"].encode()) <= 64 for row in prompt.buttons for b in row
            )

            h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=ADMIN)
            await h.wait_until(
                lambda: (
                    "stop requested" in (h.telegram.messages(LAB_CHAT)[-1].text or "")
                    or any(
                        "stop requested" in (m.text or "")
                        for m in h.telegram.bot_messages(LAB_CHAT)
                    )
                ),
                timeout=20,
                what="the prompt edited to 'stop requested'",
            )
            edited = next(
                m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == prompt.message_id
            )
            assert "stop requested" in (edited.text or "")
            # The answered prompt names the run as the chat does, not by its internal path.
            assert f"{ENTITY}/{PROJECT}/" not in (edited.text or ""), edited.text
            assert not edited.buttons

            await asyncio.wait_for(proc.wait(), 40)
            confirmed = await h.wait_for_text("as you asked", timeout=30)
            assert run_id in (confirmed.text or "")
            assert h.run_states()[run_id] == "killed"
            await asyncio.sleep(1.5)  # a later poll must not repeat it
            assert sum("as you asked" in t for t in h.texts()) == 1
            assert not [t for t in h.texts() if t.startswith("🛑 killed") and run_id in t]
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def test_stop_refuses_members_strangers_presses_and_expired_buttons(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings={"WTB_CONFIRM_TTL": "3"}) as h:
        proc = await h.train("--hang")
        try:
            run_id = await running_run(h, proc)
            refused = await h.reply_to(f"/stop {run_id}", user_id=MEMBER)
            assert refused.text == "Only lab admins can stop runs."

            prompt = await prompt_for(h, run_id)
            h.telegram.press(
                LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=MEMBER
            )
            await h.wait_until(lambda: NOT_YOURS in answers(h), timeout=10, what="refusal")

            await asyncio.sleep(3.5)  # past WTB_CONFIRM_TTL
            h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=ADMIN)
            await h.wait_until(lambda: EXPIRED in answers(h), timeout=10, what="expired answer")

            second = await prompt_for(h, run_id)
            h.telegram.press(LAB_CHAT, second.message_id, button_text="No", user_id=ADMIN)
            await h.wait_until(
                lambda: any(
                    (m.text or "").startswith("Cancelled")
                    for m in h.telegram.bot_messages(LAB_CHAT)
                    if m.message_id == second.message_id
                ),
                timeout=10,
                what="prompt edited to cancelled",
            )
            assert h.run_states()[run_id] == "running"
            assert proc.returncode is None
            assert not (h.wb.get_run("lab", "wine-quality-dev", run_id) or {}).get("stopRequested")
        finally:
            proc.kill()
            await proc.wait()


def stop_requests(h: Harness) -> int:
    return sum(n for op, n in h.wb.request_counts().items() if "stop" in op.lower())


async def test_a_stop_that_has_not_taken_effect_is_told_with_a_retry(tmp_path: Path) -> None:
    settings = {"WTB_STOP_RETRY_AFTER": "2"}
    async with Harness(tmp_path, settings=settings, heartbeat_timeout=120) as h:
        proc = await h.train("--hang")
        try:
            run_id = await running_run(h, proc)
            # Frozen, the run's process cannot act on the stop; its wandb-core heartbeats on.
            os.kill(proc.pid, signal.SIGSTOP)
            prompt = await prompt_for(h, run_id)
            h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=ADMIN)
            slow = await h.wait_for_text(lambda t: t.startswith("⚠️ stop of"), timeout=30)
            assert run_id in (slow.text or "") and "has not taken effect" in (slow.text or "")
            assert [b["text"] for row in slow.buttons for b in row] == ["Try again"]
            assert h.run_states()[run_id] == "running"

            h.telegram.press(LAB_CHAT, slow.message_id, button_text="Try again", user_id=MEMBER)
            await h.wait_until(
                lambda: "Only lab admins can stop runs." in answers(h), what="member refused"
            )
            before = stop_requests(h)
            h.telegram.press(LAB_CHAT, slow.message_id, button_text="Try again", user_id=ADMIN)
            await h.wait_until(lambda: "Stop sent again." in answers(h), what="stop sent again")
            assert stop_requests(h) == before + 1

            def edited() -> ChatMessage:
                return next(
                    m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == slow.message_id
                )

            # The answer to the press comes first; the message's edit follows it.
            await h.wait_until(lambda: "stop sent again" in (edited().text or ""), what="edit")
            assert not edited().buttons
            assert f"{ENTITY}/{PROJECT}/" not in (edited().text or ""), edited().text

            os.kill(proc.pid, signal.SIGCONT)
            await asyncio.wait_for(proc.wait(), 40)
            await h.wait_for_text("as you asked", timeout=30)
            assert h.run_states()[run_id] == "killed"
            await h.wait_polls(3)  # later polls and checks must not repeat anything
            assert sum("as you asked" in t for t in h.texts()) == 1
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            await proc.wait()
