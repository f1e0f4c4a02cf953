"""One command table: /help, the menu, registration and the gate all name the same commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler

from bot.domain.commands import Role, render_help
from handlers.access import Gate, refusal
from handlers.table import BUTTONS, COMMANDS, HELP
from tests.harness import Harness


def help_commands(text: str) -> set[str]:
    return set(re.findall(r"<code>/([a-z]+)", text))


def test_help_names_every_command_of_the_table_and_nothing_else() -> None:
    assert help_commands(HELP) == {spec.name for spec in COMMANDS}


def test_help_shows_every_option_of_every_usage() -> None:
    for option in ("[sweep=ID]", "[count=N", "[agents=K", "[gpus=0,1]", "[project=P]", "[limit"):
        assert option in HELP.replace("&lt;", "<").replace("&gt;", ">"), option
    for sub in ("start", "stop|cancel|pause|resume", "status"):
        assert f"/sweep {sub}" in HELP
    assert "<name>" not in HELP  # usages are escaped inside <code>


def test_help_locks_exactly_the_admin_commands() -> None:
    locked = {m for m in re.findall(r"<code>/([a-z]+)[^<]*</code> 🔒", HELP)}
    assert locked == {s.name for s in COMMANDS if s.role is Role.ADMIN}
    assert "<code>/sweep status" in HELP and "/sweep status [" in HELP
    status_line = next(line for line in HELP.splitlines() if "/sweep status" in line)
    assert "🔒" not in status_line


def test_admin_refusals_read_as_sentences() -> None:
    for spec in COMMANDS:
        if spec.role is Role.ADMIN:
            assert refusal(spec).startswith("Only lab admins can ") and refusal(spec).endswith(".")
    assert (
        refusal(next(s for s in COMMANDS if s.name == "stop")) == "Only lab admins can stop runs."
    )


def test_button_actions_are_unique_and_admin_ones_say_why() -> None:
    actions = [b.action for b in BUTTONS]
    assert len(actions) == len(set(actions))
    assert all(b.refusal for b in BUTTONS if b.role is Role.ADMIN)


def test_render_help_marks_member_subcommands_open() -> None:
    sweep = next(s for s in COMMANDS if s.name == "sweep")
    assert sweep.needs_admin(["start"]) and not sweep.needs_admin(["STATUS"])
    assert "🔒" in render_help([sweep]).splitlines()[1]


@pytest.mark.slow
async def test_menu_set_at_start_is_the_table(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        assert h.application is not None
        menu = await h.application.bot.get_my_commands()
        assert [c.command for c in menu] == [spec.name for spec in COMMANDS]
        assert {c.command for c in menu} == help_commands(HELP)
        handlers = [x for group in h.application.handlers.values() for x in group]
        registered = {c for x in handlers if isinstance(x, CommandHandler) for c in x.commands}
        assert registered == {spec.name for spec in COMMANDS}
        [gate] = h.application.handlers[-1]
        assert isinstance(gate, TypeHandler) and isinstance(gate.callback, Gate)
        presses = [x for x in handlers if isinstance(x, CallbackQueryHandler)]
        assert len(presses) == 1 and presses[0].pattern is None
        reply = await h.reply_to("/help")
        assert reply.text is not None and "[sweep=ID]" in reply.text


def test_help_gives_each_summary_once_and_locks_only_where_something_is_locked() -> None:
    sweep_lines = [line for line in HELP.splitlines() if "<code>/sweep " in line]
    assert len(sweep_lines) >= 3
    assert [line.count(" — ") for line in sweep_lines] == [1] + [0] * (len(sweep_lines) - 1)
    alerts_line = next(line for line in HELP.splitlines() if "<code>/alerts" in line)
    assert alerts_line.count(" — ") == 1, alerts_line
    assert "🔒" in HELP.splitlines()[0]
    people_help = render_help([s for s in COMMANDS if s.people])
    assert "🔒" not in people_help, people_help
