"""Every command and button × (stranger, member, admin, admin in private): the documented answer.

A refusal changes nothing: subscriptions, silences, sweeps, agents and W&B stay as they were.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.callbacks import EXPIRED, INVALID
from bot.domain.commands import Role
from handlers.access import NOT_LAB, refusal
from handlers.common import SOMETHING_WRONG
from handlers.table import BUTTONS, COMMANDS
from tests.harness import ADMIN, ENTITY, LAB_CHAT, MEMBER, PROJECT, STRANGER_CHAT, Harness

pytestmark = pytest.mark.slow

RUN = f"{ENTITY}/{PROJECT}/nosuch01"
SWEEP = f"{ENTITY}/{PROJECT}/abcd1234"
# Harmless arguments for each command: an admin's use reaches its handler and answers.
SAMPLES = {
    "start": "",
    "help": "",
    "runs": PROJECT,
    "best": PROJECT,
    "plot": f"{PROJECT}/nosuch01",
    "compare": f"{PROJECT}/nosuch01 {PROJECT}/nosuch02",
    "rerun": f"{PROJECT}/nosuch01",
    "digest": "",
    "status": "",
    "subscriptions": "",
    "sweeps": "",
    "sweep": "pause abcd1234",
    "stop": f"{PROJECT}/nosuch01",
    "watch": "wine-quality-prod",
    "unwatch": "wine-quality-prod",
    "silence": f"{PROJECT} 1h",
    "unsilence": PROJECT,
}
TARGETS = {
    "config": RUN,
    "plot": RUN,
    "stop": RUN,
    "stop_yes": RUN,
    "stop_no": RUN,
    "compare": f"{RUN} {RUN}2",
    "rerun": RUN,
    "rerun_yes": f"{RUN} seeds=3 count=3",
}


def state(h: Harness) -> tuple[Any, ...]:
    assert h.application is not None
    store = h.application.bot_data.services.store
    return (
        store.chats.subscriptions(),
        store.silences.active(h.application.bot_data.services.clock()),
        store.sweeps.all(),
        store.agents.all(),
        h.wb.request_counts().get("UpsertSweep", 0),
        h.run_states(),
    )


async def answer_to(h: Harness, chat_id: int, message_id: int, data: str, user_id: int) -> str:
    count = len(h.telegram.callback_answers) + 1
    h.telegram.press(chat_id, message_id, data, user_id=user_id)
    await h.wait_until(lambda: len(h.telegram.callback_answers) >= count, timeout=20, what=data)
    return h.telegram.callback_answers[count - 1]["text"] or ""


async def test_commands_for_every_role(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.telegram.add_chat(STRANGER_CHAT, "supergroup", "elsewhere")
        before = state(h)
        for spec in COMMANDS:
            h.say(f"/{spec.name} {SAMPLES.get(spec.name, '')}".strip(), chat_id=STRANGER_CHAT)
        for spec in COMMANDS:
            text = f"/{spec.name} {SAMPLES.get(spec.name, '')}".strip()
            reply = await h.reply_to(text, user_id=MEMBER)
            if spec.needs_admin(SAMPLES.get(spec.name, "").split()):
                assert reply.text == refusal(spec), text
            else:
                assert not (reply.text or "").startswith("Only lab admins"), text
        # Strangers heard one line in all; members changed nothing.
        assert len(h.telegram.bot_messages(STRANGER_CHAT)) == 1
        assert str(STRANGER_CHAT) in (h.telegram.bot_messages(STRANGER_CHAT)[0].text or "")
        assert state(h) == before
        for chat_id in (LAB_CHAT, ADMIN):
            for spec in COMMANDS:
                text = f"/{spec.name} {SAMPLES.get(spec.name, '')}".strip()
                reply = await h.reply_to(text, chat_id=chat_id, user_id=ADMIN, timeout=30)
                shown = reply.text or reply.caption or ""
                assert shown and not shown.startswith("Only lab admins"), (chat_id, text)
                assert SOMETHING_WRONG not in shown, (chat_id, text, shown)


async def test_buttons_for_every_role_forged_stale_and_replayed(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings={"WTB_CONFIRM_TTL": "2"}) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        h.telegram.add_chat(STRANGER_CHAT, "supergroup", "elsewhere")
        plain = {
            LAB_CHAT: (await h.reply_to("/help")).message_id,
            ADMIN: (await h.reply_to("/help", chat_id=ADMIN)).message_id,
            STRANGER_CHAT: (await h.reply_to("/help", chat_id=STRANGER_CHAT)).message_id,
        }

        def token(action: str) -> str:
            target = TARGETS.get(action, SWEEP)
            return "cb:" + services.store.callbacks.put(action, target, services.clock())

        before = state(h)
        for spec in BUTTONS:
            said = await answer_to(
                h, STRANGER_CHAT, plain[STRANGER_CHAT], token(spec.action), MEMBER
            )
            assert said == NOT_LAB, spec.action
            said = await answer_to(h, LAB_CHAT, plain[LAB_CHAT], token(spec.action), MEMBER)
            if spec.role is Role.ADMIN:
                assert said == spec.refusal, spec.action
            else:
                assert said != NOT_LAB and not said.startswith("Only"), spec.action
        assert state(h) == before
        for chat_id in (LAB_CHAT, ADMIN):
            for spec in BUTTONS:
                said = await answer_to(h, chat_id, plain[chat_id], token(spec.action), ADMIN)
                assert said not in (NOT_LAB, spec.refusal, INVALID, EXPIRED), (chat_id, spec.action)
                assert SOMETHING_WRONG not in said
        # Forged data, an unknown token, and a stale one.
        for forged in ("garbage", "cb:", "cb:forged123", "cb:forged123:0"):
            said = await answer_to(h, LAB_CHAT, plain[LAB_CHAT], forged, ADMIN)
            assert said in (INVALID, EXPIRED), forged
        stale = "cb:" + services.store.callbacks.put(
            "stop", RUN, services.clock(), expires_at=services.clock() - timedelta(seconds=1)
        )
        assert await answer_to(h, LAB_CHAT, plain[LAB_CHAT], stale, ADMIN) == EXPIRED
