"""Telegram faults end to end: whatever Telegram does, every notification arrives once.

The real bot runs against the local servers; the Telegram server injects each fault while
runs end: 429 storms, 5xx for a while (scaled down from minutes), slow answers, a chat
that kicks the bot and comes back, a group that becomes a supergroup, and getUpdates
errors. Afterwards each run is in the chat exactly once (slow answers: at most one repeat
per send that timed out, the documented window).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.harness import ADMIN, ENTITY, LAB_CHAT, PROJECT, Harness, fast_settings, run_ids_in

pytestmark = pytest.mark.slow

SETTINGS = {
    **fast_settings(),
    "WTB_STALL_FLOOR": "3600",
    "WTB_SEND_TIMEOUT": "5",
    "WTB_DELIVERY_MAX_BACKOFF": "1",
}


async def end_runs(h: Harness, names: Sequence[str], state: str = "failed") -> None:
    """Seed runs as running, wait until the bot has seen them, then end them together."""
    assert h.application is not None
    store = h.application.bot_data.services.store
    h.wb.seed(
        {
            "runs": [
                {"entity": ENTITY, "project": PROJECT, "name": n, "state": "running"} for n in names
            ]
        }
    )
    paths = [f"{ENTITY}/{PROJECT}/{n}" for n in names]
    await h.wait_until(
        lambda: set(paths) <= set(store.runs.memory(ENTITY, PROJECT)), what="runs seen running"
    )
    for n in names:
        h.wb.set_run_state(ENTITY, PROJECT, n, state)


async def each_once(h: Harness, names: Sequence[str], chat_id: int = LAB_CHAT) -> dict[str, int]:
    """Wait until every run is in the chat, give repeats a moment, return the counts."""
    await h.wait_until(
        lambda: all(any(n in t for t in h.texts(chat_id)) for n in names),
        timeout=60,
        what="every run in the chat",
    )
    await h.wait_polls(4)
    return run_ids_in(h.texts(chat_id), names)


def names(prefix: str, count: int) -> list[str]:
    """Return run ids that do not contain one another."""
    return [f"{prefix}{i:02d}z" for i in range(count)]


async def test_a_429_storm_delays_but_never_drops_or_repeats(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings=SETTINGS, heartbeat_timeout=3600) as h:
        runs = names("flood", 8)
        h.telegram.inject("sendMessage", "flood", count=6, retry_after=1)
        # Two at a time: each pair is its own message, so the storm meets several sends.
        for pair in (runs[i : i + 2] for i in range(0, len(runs), 2)):
            await end_runs(h, pair)
        assert await each_once(h, runs) == dict.fromkeys(runs, 1)
        assert h.telegram.stats.too_many_requests >= 6


async def test_telegram_down_for_a_while_delivers_everything_once_after(tmp_path: Path) -> None:
    async with Harness(tmp_path, settings=SETTINGS, heartbeat_timeout=3600) as h:
        runs = names("down", 6)
        h.telegram.inject("sendMessage", "server_error", count=10**6)
        h.telegram.inject("sendPhoto", "non_json", count=10**6)
        for pair in (runs[i : i + 2] for i in range(0, len(runs), 2)):
            await end_runs(h, pair)
        delivery = h.application.bot_data.services.delivery  # type: ignore[union-attr]
        # Longer than the eight tries (about four minutes' worth) that once gave up.
        await h.wait_until(lambda: delivery.stats.retried >= 9, timeout=60, what="failed sends")
        h.telegram.faults.clear()
        assert await each_once(h, runs) == dict.fromkeys(runs, 1)
        assert delivery.stats.dead == 0


async def test_slow_answers_repeat_at_most_the_sends_that_timed_out(tmp_path: Path) -> None:
    settings = {**SETTINGS, "WTB_SEND_TIMEOUT": "1"}
    async with Harness(tmp_path, settings=settings, heartbeat_timeout=3600) as h:
        runs = names("slow", 4)
        # Two answers slower than the send timeout (Telegram took them), one just under it.
        h.telegram.inject("sendMessage", "slow_response", count=2, delay=1.5)
        await end_runs(h, runs[:2])
        await end_runs(h, runs[2:])
        counts = await each_once(h, runs)
        delivery = h.application.bot_data.services.delivery  # type: ignore[union-attr]
        timed_out = delivery.stats.retried
        assert all(c >= 1 for c in counts.values())
        assert sum(counts.values()) - len(runs) <= timed_out <= 2, counts


async def test_a_chat_that_kicked_the_bot_gets_everything_once_when_it_is_back(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, settings=SETTINGS, heartbeat_timeout=3600) as h:
        held = names("held", 3)
        h.telegram.block_chat(LAB_CHAT, "kicked")
        for run in held:
            await end_runs(h, [run])
        store = h.application.bot_data.services.store  # type: ignore[union-attr]
        await h.wait_until(
            lambda: all(
                m.get("state") == "failed" for m in store.runs.memory(ENTITY, PROJECT).values()
            ),
            what="every end seen",
        )
        await h.wait_for_text("paused", chat_id=ADMIN)
        h.telegram.unblock_chat(LAB_CHAT)
        h.say("/subscriptions")
        back = await h.wait_for_text("back: 3 notifications held were delivered")
        assert await each_once(h, held) == dict.fromkeys(held, 1)
        texts = h.texts()
        assert texts.index(back.text or "") > max(
            i for i, t in enumerate(texts) if any(r in t for r in held)
        )
        alerts = [t for t in h.texts(ADMIN) if "paused" in t]
        assert len(alerts) == 1


async def test_a_migrated_group_gets_each_notification_once_under_its_new_id(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, settings=SETTINGS, heartbeat_timeout=3600) as h:
        runs = names("move", 4)
        await end_runs(h, runs[:2])
        await h.wait_until(lambda: all(any(r in t for t in h.texts()) for r in runs[:2]))
        new_id = h.telegram.migrate_chat(LAB_CHAT)
        await end_runs(h, runs[2:])
        moved = await each_once(h, runs[2:], chat_id=new_id)
        assert moved == dict.fromkeys(runs[2:], 1)
        assert run_ids_in(h.texts(), runs[:2]) == dict.fromkeys(runs[:2], 1)


async def test_get_updates_errors_cost_no_notification_and_commands_come_back(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, settings=SETTINGS, heartbeat_timeout=3600) as h:
        runs = names("upd", 4)
        h.telegram.inject("getUpdates", "server_error", count=2)
        h.telegram.inject("getUpdates", "non_json", count=1)
        h.telegram.inject("getUpdates", "conflict", count=1)
        await end_runs(h, runs)
        assert await each_once(h, runs) == dict.fromkeys(runs, 1)
        await h.wait_until(lambda: not any(f.count > 0 for f in h.telegram.faults), timeout=60)
        reply = await h.reply_to("/subscriptions", timeout=60)
        assert reply.text is not None and PROJECT in reply.text
