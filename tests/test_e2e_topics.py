"""Forum topics end to end: real bot, local servers, real training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.services import Services
from tests.harness import ADMIN, ENTITY, LAB_CHAT, PROJECT, Harness, lab_data, with_agent_env
from tests.servers.telegram import ChatMessage
from tests.test_e2e_stop import running_run

pytestmark = pytest.mark.slow

PROD = "wine-quality-prod"


async def start(tmp_path: Path, *, forum: bool = True) -> Harness:
    """Start the servers and make the lab chat a forum (or not); the bot starts later."""
    h = Harness(tmp_path)
    await h.start_servers()
    h.telegram.add_chat(LAB_CHAT, is_forum=forum)
    return h


async def start_bot(h: Harness, chat: dict[str, Any]) -> None:
    """Start the bot with a lab file whose lab chat is `chat`."""
    data = lab_data()
    data["chats"] = [{"id": LAB_CHAT, "name": "ml-alerts", **chat}]
    h.lab_path.write_text(yaml.safe_dump(with_agent_env(data, h.tmp / "agent-sdk")))
    await h.start_bot()


async def stop(h: Harness) -> None:
    await h.__aexit__(None, None, None)


def services(h: Harness) -> Services:
    assert h.application is not None
    return h.application.bot_data.services


def polled(h: Harness, *projects: str) -> bool:
    runs = services(h).store.runs
    return all(runs.project_state(ENTITY, p).baseline_done for p in projects)


def topic_named(h: Harness, name: str) -> int:
    return next(t.message_thread_id for t in h.telegram.topics(LAB_CHAT) if t.name == name)


def creations(h: Harness) -> int:
    return [method for method, _ in h.telegram.calls].count("createForumTopic")


async def reply_in(h: Harness, text: str, thread: int | None) -> ChatMessage:
    """Type a command in a topic as an admin and return the bot's first message after it."""
    before = len(h.telegram.bot_messages(LAB_CHAT))
    h.telegram.user_sends(LAB_CHAT, text, user_id=ADMIN, message_thread_id=thread)
    msgs = await h.telegram.wait_for_messages(LAB_CHAT, count=before + 1, timeout=30)
    return msgs[before]


async def test_each_project_in_its_topic_once_across_a_restart_and_commands_answered_there(
    tmp_path: Path,
) -> None:
    h = await start(tmp_path)
    try:
        dev = h.telegram.open_topic(LAB_CHAT, "wine dev").message_thread_id
        chat = {
            "projects": [{"name": PROJECT, "topic": dev}, PROD],
            "topics": "auto",
            "digest": {"cron": "0 9 * * *", "topic": dev},
        }
        await start_bot(h, chat)
        await h.wait_until(lambda: polled(h, PROJECT, PROD), what="baseline")
        assert await h.train_to_end("--epochs", "2", "--seed", "1") == 0
        assert await h.train_to_end("--epochs", "2", "--seed", "2", project=PROD) == 0
        in_dev = await h.wait_for_text(lambda t: t.startswith("✅ finished") and PROJECT in t)
        in_prod = await h.wait_for_text(lambda t: t.startswith("✅ finished") and PROD in t)
        prod = topic_named(h, PROD)
        assert (in_dev.message_thread_id, in_prod.message_thread_id) == (dev, prod)
        assert creations(h) == 1

        # A command asked in a topic is answered there; so is a button of a message there.
        status = await reply_in(h, "/status", prod)
        assert status.message_thread_id == prod and PROD in (status.text or "")
        general = await reply_in(h, "/status", None)
        assert general.message_thread_id is None
        before = len(h.telegram.bot_messages(LAB_CHAT))
        h.telegram.press(LAB_CHAT, in_dev.message_id, button_text="Config", user_id=ADMIN)
        [config, *_] = (await h.telegram.wait_for_messages(LAB_CHAT, count=before + 1))[before:]
        assert config.message_thread_id == dev and "n_estimators" in (config.text or "")
        run_id = next(r["name"] for r in h.wb.list_runs(ENTITY, PROD))
        chart = await reply_in(h, f"/plot {PROD}/{run_id}", prod)
        assert chart.photo is not None and chart.message_thread_id == prod

        # The scheduled digest goes to the lab file's digest topic; one asked for, where asked.
        await services(h).digests.send(LAB_CHAT, record=True)
        scheduled = await h.wait_for_text("🗓 digest")
        assert scheduled.message_thread_id == dev
        chart = await h.wait_for_text("runs per project")
        assert chart.message_thread_id == dev
        asked = await reply_in(h, "/digest", prod)
        assert asked.text is not None and asked.text.startswith("🗓 digest")
        assert asked.message_thread_id == prod

        # After a restart the project's topic is the one already opened.
        await h.stop_bot()
        await start_bot(h, chat)
        await h.end_seeded_run("after-restart", "failed", project=PROD)
        again = await h.wait_for_text("after-restart")
        assert again.message_thread_id == prod
        assert creations(h) == 1 and len(h.telegram.topics(LAB_CHAT)) == 2
    finally:
        await stop(h)


async def test_a_deleted_topic_is_opened_again_and_the_message_delivered(tmp_path: Path) -> None:
    h = await start(tmp_path)
    try:
        await start_bot(h, {"projects": [PROJECT], "topics": "auto"})
        await h.wait_until(lambda: polled(h, PROJECT), what="baseline")
        await h.end_seeded_run("first-run")
        first = await h.wait_for_text("first-run")
        assert first.message_thread_id == topic_named(h, PROJECT)
        h.telegram.delete_topic(LAB_CHAT, first.message_thread_id)
        await h.end_seeded_run("second-run", "failed")
        second = await h.wait_for_text("second-run")
        assert second.message_thread_id == topic_named(h, PROJECT) != first.message_thread_id
        assert creations(h) == 2
        assert not any("topics" in t for t in h.texts())  # nothing to tell: it is fixed
    finally:
        await stop(h)


async def test_a_chat_that_is_not_a_forum_gets_its_messages_and_is_told_once(
    tmp_path: Path,
) -> None:
    h = await start(tmp_path, forum=False)
    try:
        await start_bot(h, {"projects": [PROJECT], "topics": "auto"})
        await h.wait_until(lambda: polled(h, PROJECT), what="baseline")
        for name in ("plain-one", "plain-two"):
            await h.end_seeded_run(name)
            message = await h.wait_for_text(name)
            assert message.message_thread_id is None
        told = [t for t in h.texts() if t.startswith("⚠️ topics")]
        assert len(told) == 1 and "not a forum" in told[0], h.texts()
        status = await reply_in(h, "/status", None)
        assert "⚠️ topics: this chat is not a forum" in (status.text or "")
    finally:
        await stop(h)


async def test_a_sweep_started_in_a_topic_has_its_card_and_report_there(tmp_path: Path) -> None:
    h = await start(tmp_path)
    try:
        # No topic for the project: the sweep's messages follow the topic it was started in.
        await start_bot(h, {"projects": [PROJECT]})
        asked = h.telegram.open_topic(LAB_CHAT, "sweeps").message_thread_id
        reply = await reply_in(h, "/sweep start wine count=1", asked)
        assert "started sweep" in (reply.text or "") and reply.message_thread_id == asked
        report = await h.wait_for_text("top 1 by accuracy", timeout=120)
        assert report.message_thread_id == asked
        [sweep] = services(h).store.sweeps.all()
        assert sweep.thread_id == asked and sweep.card_message_id is not None
        [card] = [
            m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == sweep.card_message_id
        ]
        assert card.message_thread_id == asked and "1/1" in (card.text or "")
    finally:
        await stop(h)


async def test_stop_asked_in_a_topic_is_prompted_edited_and_confirmed_there(
    tmp_path: Path,
) -> None:
    h = await start(tmp_path)
    try:
        await start_bot(h, {"projects": [PROJECT]})
        asked = h.telegram.open_topic(LAB_CHAT, "ops").message_thread_id
        proc = await h.train("--hang")
        try:
            run_id = await running_run(h, proc)
            prompt = await reply_in(h, f"/stop {run_id}", asked)
            assert prompt.message_thread_id == asked and prompt.buttons
            h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=ADMIN)
            confirmed = await h.wait_for_text("as you asked", timeout=60)
            assert confirmed.message_thread_id == asked
            edited = next(
                m for m in h.telegram.bot_messages(LAB_CHAT) if m.message_id == prompt.message_id
            )
            assert "stop requested" in (edited.text or "") and edited.message_thread_id == asked
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    finally:
        await stop(h)
