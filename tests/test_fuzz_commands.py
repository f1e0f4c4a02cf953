"""Fuzz every command's text: no exception escapes, every reply is one Telegram accepts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.commands import (
    UsageError,
    parse_best,
    parse_compare,
    parse_plot,
    parse_project_arg,
    parse_rerun,
    parse_run_ref,
    parse_runs,
    parse_silence,
    parse_sweep,
)
from bot.domain.render import render_usage_error
from config.lab import parse_lab
from handlers.common import SOMETHING_WRONG
from handlers.table import COMMANDS
from tests.harness import ADMIN, OTHER_LAB_CHAT, WINE, Harness
from tests.servers.telegram.html import parse_html, utf16_len

LAB = parse_lab(
    {
        "entity": "lab",
        "admins": [1],
        "chats": [{"id": -1, "name": "c", "projects": ["wine"]}],
        "sweeps": {"wine": {"file": "sweep.yaml", "project": "wine"}},
    },
    base=WINE,
)
HOSTILE = st.sampled_from(
    [
        "<b>",
        "</pre>",
        "&amp;",
        "&",
        "<a href='x'>",
        "../../etc",
        "https://wandb.ai/lab/wine/runs/abc",
        "https://wandb.ai/lab/wine/sweeps/abcd1234",
        "lab/wine/abc",
        "wine",
        "count=0",
        "seeds=0",
        "seeds=abc",
        "seeds=99999999999",
        "sweep=nosuch",
        "count=99999999999",
        "gpus=0,0",
        "sweep=ABC",
        "1h30m",
        "999999d",
        "status",
        "start",
        "stop",
        "💥" * 30,
        "x" * 300,
        "\u202e",
    ]
)
WORDS = st.lists(
    st.one_of(HOSTILE, st.text(st.characters(exclude_categories=("Cs", "Zs", "Cc")), min_size=1)),
    max_size=5,
)
PARSERS = {
    "runs": lambda a: parse_runs(a, LAB, default_project="wine"),
    "best": lambda a: parse_best(a, LAB),
    "plot": lambda a: parse_plot(a, LAB, default_project="wine"),
    "sweep": lambda a: parse_sweep(a, LAB, max_count=100, max_agents=4),
    "silence": lambda a: parse_silence(a, LAB),
    "watch": lambda a: parse_project_arg(a, LAB, "watch"),
    "stop": lambda a: parse_run_ref(" ".join(a), "lab", "wine"),
    "rerun": lambda a: parse_rerun(a, LAB, default_project="wine"),
    "compare": lambda a: parse_compare(a, LAB, default_project="wine"),
}


def assert_telegram_accepts(text: str) -> None:
    parsed = parse_html(text)  # raises as Telegram would answer "can't parse entities"
    assert 0 < utf16_len(parsed.text) <= 4096


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), args=WORDS)
def test_parsers_return_a_request_or_one_valid_usage_line(name: str, args: list[str]) -> None:
    try:
        PARSERS[name](args)
    except UsageError as exc:
        line = render_usage_error(exc)
        assert_telegram_accepts(line)
        assert "\n" not in exc.reason


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Harness]:
    async with Harness(tmp_path, flood=False) as h:
        yield h


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from([c.name for c in COMMANDS]), args=WORDS)
async def test_every_command_answers_any_text_in_one_accepted_message(
    bot: Harness, name: str, args: list[str]
) -> None:
    text = f"/{name} {' '.join(args)}".strip()[:4000]
    reply = await bot.reply_to(text, chat_id=OTHER_LAB_CHAT, user_id=ADMIN, timeout=30)
    shown = reply.text or reply.caption or ""
    assert shown and SOMETHING_WRONG not in shown, (text, shown)
    assert "Traceback" not in shown
