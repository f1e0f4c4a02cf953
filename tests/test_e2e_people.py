"""People end to end: real runs under two users' API keys, owner mentions, /mine, quiet hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ENTITY, LAB_CHAT, PROJECT, Harness, lab_data, with_agent_env
from wandb_client.client import WandbClient

pytestmark = pytest.mark.slow

ALICE, BOB, STRANGER = 7001, 7002, 7003
KEY_ALICE = "local-" + "a1" * 24
KEY_BOB = "local-" + "b2" * 24


def people_lab(quiet: str | None = None) -> dict[str, Any]:
    alice: dict[str, Any] = {"telegram": ALICE, "name": "Alice"}
    if quiet:
        alice |= {"quiet": quiet, "timezone": "UTC"}
    return lab_data(people={"alice": alice, "bob": BOB})


async def meet(h: Harness) -> None:
    """Give the two users their API keys and private chats, and wait for the first poll."""
    h.wb.add_user(KEY_ALICE, "alice")
    h.wb.add_user(KEY_BOB, "bob")
    h.telegram.add_chat(ALICE, "private", first_name="Alice")
    h.telegram.add_chat(BOB, "private", first_name="Bob")
    h.telegram.add_chat(STRANGER, "private", first_name="Mallory")
    await h.wait_polls(1)


async def run_as(h: Harness, key: str, seed: int, *args: str) -> str:
    """Train to the end under a user's API key; return the id of the run with this seed."""
    env = {"WANDB_API_KEY": key}
    await h.train_to_end(
        "--epochs", "2", "--n_estimators", "10", "--seed", str(seed), *args, env=env
    )
    [run_id] = [
        r["name"]
        for r in h.wb.list_runs(ENTITY, PROJECT)
        if r["config"].get("seed", {}).get("value") == seed
    ]
    return run_id


async def drained(h: Harness) -> None:
    """Wait until the bot has sent everything it queued."""
    assert h.application is not None
    store = h.application.bot_data.services.store
    await h.wait_until(lambda: store.outbox.counts()["pending"] == 0, what="outbox drained")


def mentions(message: Any) -> set[int]:
    return {e["user"]["id"] for e in message.entities if e["type"] == "text_mention"}


async def test_the_server_and_the_client_know_who_ran_a_run(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=people_lab()) as h:
        await meet(h)
        run_id = await run_as(h, KEY_BOB, 4)
        assert h.wb.get_run(ENTITY, PROJECT, run_id)["user"] == "bob"  # type: ignore[index]
        client = WandbClient(KEY_ALICE, base_url=h.wandb_url, default_entity=ENTITY, timeout=20)
        try:
            [run] = [r for r in await client.recent_runs(ENTITY, PROJECT) if r.id == run_id]
        finally:
            await client.close()
        assert run.user == "bob"


async def test_mine_brings_a_person_their_own_runs_and_nobody_elses(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=people_lab()) as h:
        await meet(h)
        for person in (ALICE, BOB):
            answer = await h.reply_to("/mine", chat_id=person, user_id=person)
            assert answer.text is not None and answer.text.startswith("🔔 Subscribed:")
        again = await h.reply_to("/mine", chat_id=ALICE, user_id=ALICE)
        assert again.text is not None and "Subscribed since" in again.text and "alice" in again.text
        group = await h.reply_to("/mine", chat_id=LAB_CHAT, user_id=ALICE)
        assert group.text is not None and "private chat" in group.text
        assert any("t.me/" in e.get("url", "") for e in group.entities)
        # A person's private chat is no lab chat: it takes /mine, /help and /start, no more.
        helped = await h.reply_to("/help", chat_id=ALICE, user_id=ALICE)
        assert helped.text is not None and "/mine [off]" in helped.text
        assert "/runs" not in helped.text and "/sweep" not in helped.text
        refused = await h.reply_to(f"/runs {PROJECT}", chat_id=ALICE, user_id=ALICE)
        # ... and says so, rather than asking for the chat to be added to the lab file.
        assert refused.text == (
            "Here I answer only /start, /help, /mine; the other commands work in the lab's chats."
        )
        stranger = await h.reply_to("/mine", chat_id=STRANGER, user_id=STRANGER)
        assert stranger.text is not None and f"Telegram id {STRANGER}" in stranger.text
        assert "people:" in stranger.text

        alice_failed, bob_finished = await asyncio.gather(
            run_as(h, KEY_ALICE, 1, "--fail-at", "1"),
            run_as(h, KEY_BOB, 2),
        )
        mine = await h.wait_for_text("❌ failed", chat_id=ALICE)
        assert alice_failed in (mine.text or "") and not mentions(mine)
        theirs = await h.wait_for_text("✅ finished", chat_id=BOB)
        assert bob_finished in (theirs.text or "")
        failed = await h.wait_for_text(lambda t: alice_failed in t and "failed" in t)
        finished = await h.wait_for_text(lambda t: bob_finished in t and "finished" in t)
        assert mentions(failed) == {ALICE} and "👤 Alice" in (failed.text or "").splitlines()[0]
        assert mentions(finished) == {BOB} and "👤 bob" in (finished.text or "").splitlines()[0]
        await drained(h)
        assert not any(bob_finished in t for t in h.texts(ALICE))
        assert not any(alice_failed in t for t in h.texts(BOB))
        assert h.texts(STRANGER) == [stranger.text]

        off = await h.reply_to("/mine off", chat_id=ALICE, user_id=ALICE)
        assert off.text is not None and off.text.startswith("🔕 Unsubscribed")
        later = await run_as(h, KEY_ALICE, 3, "--fail-at", "1")
        await h.wait_for_text(lambda t: later in t and "failed" in t)
        await drained(h)
        assert not any(later in t for t in h.texts(ALICE))


def quiet_now() -> str:
    """Return a quiet range around now (UTC), ending well after the test."""
    now = datetime.now(UTC)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"


async def test_quiet_hours_hold_a_finished_run_until_they_end(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=people_lab(quiet=quiet_now())) as h:
        await meet(h)
        await h.reply_to("/mine", chat_id=ALICE, user_id=ALICE)
        finished, failed = await asyncio.gather(
            run_as(h, KEY_ALICE, 5),
            run_as(h, KEY_ALICE, 6, "--fail-at", "1"),
        )
        # The failure is urgent: it comes at once, quiet or not, past the held message.
        urgent = await h.wait_for_text(lambda t: failed in t, chat_id=ALICE)
        # A button pressed in one's own private chat works there, and its answer is not held.
        h.telegram.press(ALICE, urgent.message_id, button_text="Config", user_id=ALICE)
        await h.wait_for_text("n_estimators", chat_id=ALICE)
        await h.wait_for_text(lambda t: finished in t)
        assert h.application is not None
        store = h.application.bot_data.services.store
        await h.wait_until(lambda: store.outbox.held(datetime.now(UTC)) != [], what="held")
        held = store.outbox.held(datetime.now(UTC))
        assert [(chat, kind) for _, chat, kind in held] == [(ALICE, "finished")]
        await h.wait_until(lambda: store.outbox.counts()["pending"] == 1, what="the rest sent")
        assert not any(finished in t for t in h.texts(ALICE))
        status = await h.reply_to("/status")
        assert "🌙 1 held for someone's quiet hours" in (status.text or "")

        # The quiet range ends (the admin shortened it) and the bot restarts: it goes out.
        await h.stop_bot()
        h.lab_path.write_text(yaml.safe_dump(with_agent_env(people_lab(), tmp_path / "agent-sdk")))
        await h.start_bot()
        message = await h.wait_for_text(lambda t: finished in t, chat_id=ALICE)
        assert (message.text or "").startswith("✅ finished")


async def test_an_alert_on_a_persons_run_reaches_them_and_mentions_them(tmp_path: Path) -> None:
    lab = people_lab() | {"alerts": [{"name": "nan-loss", "nan": ["loss"]}]}
    async with Harness(tmp_path, lab=lab) as h:
        await meet(h)
        await h.reply_to("/mine", chat_id=BOB, user_id=BOB)
        await h.reply_to("/mine", chat_id=ALICE, user_id=ALICE)
        env = {"WANDB_API_KEY": KEY_ALICE}
        proc = await h.train("--nan-at", "2", "--hang", "--n_estimators", "5", env=env)
        try:
            private = await h.wait_for_text("nan-loss", chat_id=ALICE, timeout=120)
            group = await h.wait_for_text("nan-loss")
        finally:
            proc.kill()
            await proc.communicate()
        assert "loss is NaN" in (private.text or "")
        assert mentions(group) == {ALICE}
        await drained(h)
        assert not any("nan-loss" in t for t in h.texts(BOB))
