"""Commands as a lab member types them: the gate, /watch, /subscriptions, /runs, /status."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.polling import POLL_JOB
from tests.harness import (
    ADMIN,
    ENTITY,
    LAB_CHAT,
    MEMBER,
    OTHER_LAB_CHAT,
    PROJECT,
    STRANGER_CHAT,
    Harness,
)

pytestmark = pytest.mark.slow


async def test_strangers_get_one_line_with_their_chat_id_and_nothing_else(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.telegram.add_chat(STRANGER_CHAT, "supergroup", "elsewhere")
        reply = await h.reply_to("/runs wine-quality-dev", chat_id=STRANGER_CHAT, user_id=ADMIN)
        assert reply.text is not None and str(STRANGER_CHAT) in reply.text
        assert len(reply.text.splitlines()) == 1
        # More commands within the hour get nothing: one line per chat per hour, not per command.
        h.say("/help", chat_id=STRANGER_CHAT)
        h.say("/status", chat_id=STRANGER_CHAT)
        await h.reply_to("/help")  # updates are handled in order: the stranger's came first
        assert len(h.telegram.bot_messages(STRANGER_CHAT)) == 1
        assert all("Commands" not in (m.text or "") for m in h.telegram.bot_messages(STRANGER_CHAT))


async def test_members_are_refused_admin_commands_politely(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        for command in (
            "/watch wine-quality-prod",
            "/unwatch wine-quality-dev",
            "/silence wine-quality-dev 1h",
        ):
            reply = await h.reply_to(command, user_id=MEMBER)
            assert reply.text is not None and reply.text.startswith("Only lab admins")
        assert h.application is not None
        assert h.application.bot_data.services.store.chats.subscriptions() == {}


async def test_watch_subscribe_notifies_and_unwatch_stops(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        reply = await h.reply_to("/watch wine-quality-prod", chat_id=OTHER_LAB_CHAT)
        assert reply.text is not None and "now hears about wine-quality-prod" in reply.text
        again = await h.reply_to("/watch wine-quality-prod", chat_id=OTHER_LAB_CHAT)
        assert again.text is not None and "already watches" in again.text
        subs = await h.reply_to("/subscriptions", chat_id=OTHER_LAB_CHAT)
        assert subs.text is not None and "wine-quality-prod" in subs.text
        assert h.application is not None
        store = h.application.bot_data.services.store
        await h.end_seeded_run("prod0001", project="wine-quality-prod")
        done = await h.wait_for_text("prod0001", chat_id=OTHER_LAB_CHAT)
        assert done.text is not None and done.text.startswith("✅ finished · wine-quality-prod")
        assert not any("prod0001" in t for t in h.texts(LAB_CHAT))
        bye = await h.reply_to("/unwatch wine-quality-prod", chat_id=OTHER_LAB_CHAT)
        assert bye.text is not None and "no longer hears" in bye.text
        # Nobody watches it now: a later /watch starts from a new baseline, not old news.
        assert not store.runs.project_state(ENTITY, "wine-quality-prod").baseline_done
        assert store.runs.memory(ENTITY, "wine-quality-prod") == {}
        lab_file = await h.reply_to("/unwatch wine-quality-dev")
        assert lab_file.text is not None and "lab file" in lab_file.text


async def test_silence_mutes_a_project_until_lifted(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        reply = await h.reply_to("/silence wine-quality-dev 2h")
        assert reply.text is not None and "silenced here for 2h 00m" in reply.text
        assert h.application is not None
        await h.end_seeded_run("quiet001")
        await h.wait_polls(3)
        assert not any("quiet001" in t for t in h.texts())
        lifted = await h.reply_to("/unsilence wine-quality-dev")
        assert lifted.text is not None and "no longer silenced" in lifted.text
        bad = await h.reply_to("/silence wine-quality-dev forever")
        assert bad.text is not None and "Usage: /silence" in bad.text


async def test_runs_status_and_bad_input_answer_in_one_message(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.wb.seed(
            {
                "generate": {
                    "entity": ENTITY,
                    "project": PROJECT,
                    "count": 30,
                    "states": ["finished", "failed"],
                }
            }
        )
        runs = await h.reply_to("/runs wine-quality-dev failed 5")
        assert runs.text is not None
        lines = runs.text.splitlines()
        assert len(lines) == 6 and all(line.startswith("❌") for line in lines[1:])
        # The header counts every failed run of the project, from the same W&B answer.
        failed = sum(r["state"] == "failed" for r in h.wb.list_runs(ENTITY, PROJECT))
        assert lines[0].endswith(f"· 5 of {failed}"), lines[0]
        status = await h.reply_to("/status")
        assert status.text is not None and "W&B reachable" in status.text and PROJECT in status.text
        default = await h.reply_to("/runs")  # the chat's only project
        assert default.text is not None and default.text.startswith("📋 runs in wine-quality-dev")
        assert default.text.splitlines()[0].endswith("· 10 of 30"), default.text
        for bad in ("/runs ../../etc", "/runs wine-quality-dev exploded", "/runs a b c d"):
            reply = await h.reply_to(bad)
            assert reply.text is not None and "Usage: /runs" in reply.text, bad
            assert "Traceback" not in reply.text


async def test_health_endpoint_reports_ok_then_degraded_when_w_and_b_fails(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings={"WTB_HTTP_PORT": "0", "WTB_WANDB_TIMEOUT": "1"}) as h:
        assert h.application is not None
        services = h.application.bot_data.services
        assert services.health is not None and services.health.url.startswith("http://127.0.0.1:")
        await h.wait_until(
            lambda: services.store.runs.project_state(ENTITY, PROJECT).baseline_done, what="a poll"
        )
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{services.health.url}/healthz") as response:
                body = await response.json()
                assert response.status == 200 and body["status"] == "ok"
                assert f"{ENTITY}/{PROJECT}" in body["projects"]
            h.wb.inject_fault("Runs", "500", count=1000)
            await h.wait_until(lambda: services.wandb.health.consecutive_failures > 0, timeout=20)
            async with session.get(f"{services.health.url}/healthz") as response:
                assert response.status == 503
                assert (await response.json())["status"] == "degraded"


async def test_a_project_being_polled_is_not_given_a_second_poll_loop(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        assert h.application is not None
        polls = h.application.bot_data.services.polls
        h.wb.inject_fault("Runs", "delay", count=1, delay=1.5)
        key = (ENTITY, PROJECT)
        await h.wait_until(lambda: polls.polling(*key), timeout=20, what="a slow poll under way")
        # /watch, /stop or /sweep start asking for the project while its poll runs:
        assert polls.ensure(*key) is False
        await h.wait_until(lambda: not polls.polling(*key), timeout=20, what="the poll done")
        assert h.application.job_queue is not None
        assert [j.name for j in h.application.job_queue.jobs() if j.name == POLL_JOB] == [POLL_JOB]


async def test_a_group_that_became_a_supergroup_keeps_its_lab_settings(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        assert h.application is not None
        store = h.application.bot_data.services.store
        new_id = h.telegram.migrate_chat(LAB_CHAT)
        await h.end_seeded_run("mig00001")
        await h.wait_for_text("mig00001", chat_id=new_id)
        assert store.chats.migrations() == {LAB_CHAT: new_id}
        subs = await h.reply_to("/subscriptions", chat_id=new_id)
        assert subs.text is not None and PROJECT in subs.text
        runs = await h.reply_to("/runs", chat_id=new_id)
        assert runs.text is not None and runs.text.startswith("📋 runs in wine-quality-dev")
        await h.reply_to("/silence wine-quality-dev 1h", chat_id=new_id)
        await h.end_seeded_run("mig00002")
        await h.wait_polls(3)
        assert not any("mig00002" in t for t in h.texts(new_id))
