"""Small rules the lab trusts: Config hides credentials, replies wait out short floods."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from telegram.error import RetryAfter

from bot.domain.best import HIDDEN, looks_secret, render_config
from bot.services import patiently
from tests.test_domain_best import make_run


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("wandb.API_KEY", True),
        ("hf_token", True),
        ("db.password", True),
        ("client_secret", True),
        ("lr", False),
        ("optimizer.name", False),
    ],
)
def test_secret_looking_keys(key: str, secret: bool) -> None:
    assert looks_secret(key) is secret


def test_config_hides_secret_values_but_shows_the_key() -> None:
    run = make_run(
        "r1", config={"api_key": "sk-live-123456", "lr": 0.01, "db": {"password": "pw9"}}
    )
    text = "\n".join(render_config(run))
    assert "sk-live-123456" not in text and "pw9" not in text
    assert "api_key = " + HIDDEN in text and "db.password = " + HIDDEN in text
    assert "lr = 0.01" in text


async def test_patiently_waits_out_floods_within_its_patience() -> None:
    calls = 0

    async def send() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise RetryAfter(timedelta(seconds=0.01))
        return "sent"

    assert await patiently(send, patience=1.0) == "sent"
    assert calls == 4


async def test_patiently_gives_up_past_its_patience() -> None:
    async def send() -> str:
        raise RetryAfter(timedelta(seconds=5))

    with pytest.raises(RetryAfter):
        await asyncio.wait_for(patiently(send, patience=1.0), 2)
