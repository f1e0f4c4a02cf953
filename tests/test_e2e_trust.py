"""What a lab can trust: replies survive a short flood, and strangers' projects stay closed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.harness import LAB_CHAT, MEMBER, Harness, lab_data

pytestmark = pytest.mark.slow


async def test_help_survives_three_flood_answers_in_a_row(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.telegram.inject("sendMessage", "flood", count=3, retry_after=1)
        reply = await h.reply_to("/help", timeout=30)
        assert reply.text is not None and reply.text.startswith("Commands"), reply.text
        assert not any("Something went wrong" in t for t in h.texts(LAB_CHAT))


async def test_read_commands_answer_only_for_the_lab_projects(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.wb.seed(
            {
                "runs": [
                    {"entity": "otherteam", "project": "secret", "name": "s1", "state": "finished"}
                ]
            }
        )
        for command in (
            "/runs otherteam/secret",
            "/best otherteam/secret",
            "/plot otherteam/secret/s1",
        ):
            reply = await h.reply_to(command, user_id=MEMBER)
            assert reply.text is not None and "not one of the lab's projects" in reply.text, command
            assert "s1" not in reply.text
        typo = await h.reply_to("/runs wine-qualty-dev", user_id=MEMBER)
        assert typo.text is not None and typo.text.endswith("Did you mean wine-quality-dev?")
        own = await h.reply_to("/runs wine-quality-dev", user_id=MEMBER)
        assert own.text is not None and "not one of the lab's projects" not in own.text


async def test_open_projects_lets_read_commands_reach_any_project(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=lab_data(open_projects=True)) as h:
        h.wb.seed(
            {
                "runs": [
                    {"entity": "otherteam", "project": "secret", "name": "s1", "state": "finished"}
                ]
            }
        )
        reply = await h.reply_to("/runs otherteam/secret", user_id=MEMBER)
        assert reply.text is not None and "s1" in reply.text


async def test_telegram_down_at_start_is_one_line_then_the_bot_starts(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.start_servers()
    port = h.telegram.port
    await h.telegram.stop()  # Telegram is unreachable when the bot starts
    try:
        await h.start_bot_process()
        log = tmp_path / "bot.log"
        await h.wait_until(
            lambda: log.exists() and "Telegram is unreachable" in log.read_text(),
            timeout=30,
            what="the unreachable line",
        )
        await asyncio.sleep(3)  # a few retries later: still one line, still alive
        assert h.process is not None and h.process.returncode is None
        text = log.read_text()
        assert text.count("Telegram is unreachable") == 1 and "Traceback" not in text
        await h.telegram.start(port)
        h.telegram.add_chat(LAB_CHAT, "supergroup", "ml-alerts")
        reply = await h.reply_to("/help", timeout=60)
        assert (reply.text or "").startswith("Commands")
        assert "Traceback" not in log.read_text()
    finally:
        await h.__aexit__(None, None, None)


async def test_polling_errors_and_conflicts_are_one_warning_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Harness(tmp_path) as h:
        h.telegram.inject("getUpdates", "server_error", count=1)
        h.telegram.inject("getUpdates", "conflict", count=1)
        await h.wait_until(
            lambda: all(f.count <= 0 for f in h.telegram.faults), timeout=30, what="faults hit"
        )
        reply = await h.reply_to("/help", timeout=60)
        assert (reply.text or "").startswith("Commands")
    ours = [r for r in caplog.records if r.name.startswith(("handlers", "bot"))]
    assert not [r for r in ours if r.levelno >= logging.ERROR], [r.getMessage() for r in ours]
    polling = [r for r in ours if "getting updates failed" in r.getMessage()]
    assert len(polling) == 2 and all(r.exc_info is None for r in polling)
    assert any("Conflict" in r.getMessage() or "terminated" in r.getMessage() for r in polling)
