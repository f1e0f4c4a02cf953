"""Secrets: after a full run of the bot as a process, the token and the API key are nowhere.

The bot runs as `python -m bot run` at DEBUG, the most it ever logs. It sees runs finish and
fail, answers commands from every kind of chat, and lives through a W&B outage and a Telegram
fault, so that its error paths log too. Then its log, every chat, every file of its data
directory and every W&B request it made are searched for the Telegram token and the W&B key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness import ADMIN, LAB_CHAT, MEMBER, STRANGER_CHAT, TOKEN, Harness, run_ids_in
from tests.servers.wandb.sdk import API_KEY

pytestmark = pytest.mark.slow

SECRETS = {"telegram token": TOKEN, "W&B API key": API_KEY}
# Commands a lab would type, good and bad, from members, admins and a stranger.
COMMANDS = (
    "/help",
    "/status",
    "/runs",
    "/best wine-quality-dev",
    "/plot nosuch01",
    "/stop nosuch01",
    "/sweep start nosuch",
    "/watch ../../etc",
    "/subscriptions",
)


def leaks(text: str) -> list[str]:
    """Return the names of the secrets that appear in the text (or its secret's halves)."""
    found = []
    for name, secret in SECRETS.items():
        # A secret split by a log formatter or a line wrap still counts: look for each half.
        half = len(secret) // 2
        if secret in text or secret[:half] in text or secret[half:] in text:
            found.append(name)
    return found


async def test_no_secret_in_logs_chats_data_or_errors(tmp_path: Path) -> None:
    h = Harness(tmp_path, settings={"WTB_LOG_LEVEL": "DEBUG"}, flood=False)
    await h.start_servers()
    h.telegram.add_chat(STRANGER_CHAT, "supergroup", "elsewhere")
    try:
        await h.start_bot_process()
        # Runs that finish and fail, through the real SDK.
        assert await h.train_to_end("--epochs", "2", "--seed", "1", timeout=120) == 0
        assert await h.train_to_end("--epochs", "3", "--fail-at", "1", timeout=120) != 0
        states = h.run_states()
        await h.wait_until(
            lambda: all(n == 1 for n in run_ids_in(h.texts(), list(states)).values()),
            timeout=120,
            what="both runs told",
        )
        for text in COMMANDS:
            for chat_id, user_id in ((LAB_CHAT, MEMBER), (LAB_CHAT, ADMIN), (ADMIN, ADMIN)):
                h.say(text, chat_id=chat_id, user_id=user_id)
            h.say(text, chat_id=STRANGER_CHAT, user_id=MEMBER)
        # Error paths log too: a W&B outage and a Telegram refusal while it answers.
        h.wb.inject_fault("Runs", "500", count=20)
        h.telegram.inject("sendMessage", "server_error", count=3)
        h.say("/runs", chat_id=LAB_CHAT, user_id=ADMIN)
        await h.wait_until(
            lambda: len(h.telegram.bot_messages(LAB_CHAT)) >= 2 + 2 * len(COMMANDS),
            timeout=120,
            what="every command answered",
        )
        await asyncio.sleep(2)  # a few more polls through the outage
    finally:
        if h.process is not None:
            h.process.terminate()
            await asyncio.wait_for(h.process.wait(), 60)
            h.process = None
        await h.telegram.stop()
        await asyncio.to_thread(h.wandb.stop)

    log = (tmp_path / "bot.log").read_text(errors="replace")
    assert "DEBUG" in log, "the bot did not log at DEBUG"
    assert leaks(log) == [], "the bot's log"
    for chat_id in (LAB_CHAT, ADMIN, STRANGER_CHAT):
        for message in h.telegram.messages(chat_id):
            shown = f"{message.text or ''} {message.caption or ''}"
            assert leaks(shown) == [], (chat_id, shown[:200])
    data = tmp_path / "data"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files, "the data directory is empty"
    for path in files:
        assert leaks(path.read_bytes().decode("latin-1")) == [], path


def test_redaction_masks_messages_arguments_and_tracebacks() -> None:
    import io
    import logging

    from bot.__main__ import RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([TOKEN, API_KEY, "short"]))
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("url %s/bot%s/getMe", "http://x", TOKEN)
        try:
            raise RuntimeError(f"refused key {API_KEY}")
        except RuntimeError:
            logger.exception("failed")
        logger.warning("a short word stays")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert leaks(out) == [] and out.count("***") == 2
    assert "RuntimeError" in out and "a short word stays" in out
