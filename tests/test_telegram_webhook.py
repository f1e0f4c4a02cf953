"""Webhook mode: Telegram pushes updates to PTB's own webhook server instead of being polled."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from bot.__main__ import settings_problems
from config import Settings
from tests.harness import LAB_CHAT, Harness

SECRET = "webhook_Secret-0123456789"


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_registers_the_url_and_answers_pushed_commands(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/updates"
    settings = {
        "WTB_TELEGRAM_WEBHOOK_URL": url,
        "WTB_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "WTB_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
    }
    async with Harness(tmp_path, settings=settings) as h:
        hook = h.telegram.webhook
        assert hook is not None and hook["url"] == url and hook["secret_token"] == SECRET
        reply = await h.reply_to("/help")
        assert "/runs" in (reply.text or "")
        methods = [method for method, _ in h.telegram.calls]
        assert "setWebhook" in methods and "getUpdates" not in methods
        # An update posted without Telegram's secret header is refused and never handled.
        before = len(h.telegram.bot_messages(LAB_CHAT))
        forged = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": LAB_CHAT, "type": "supergroup"},
                "text": "/help",
            },
        }
        async with aiohttp.ClientSession() as session, session.post(url, json=forged) as resp:
            assert resp.status == 403
        await h.reply_to("/help")
        assert len(h.telegram.bot_messages(LAB_CHAT)) == before + 1


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"WTB_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg"}, "WTB_TELEGRAM_WEBHOOK_SECRET"),
        ({"WTB_TELEGRAM_WEBHOOK_SECRET": "has space"}, "WTB_TELEGRAM_WEBHOOK_SECRET"),
        ({"WTB_TELEGRAM_WEBHOOK_LISTEN": "8443"}, "WTB_TELEGRAM_WEBHOOK_LISTEN"),
    ],
)
def test_bad_webhook_settings_stop_the_bot_naming_the_variable(
    extra: dict[str, str], problem: str
) -> None:
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "WANDB_API_KEY": "k", **extra}
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]
    assert any(problem in line for line in settings_problems(caught.value))
