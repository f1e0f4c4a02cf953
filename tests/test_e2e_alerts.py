"""End to end: metric alerts from real training runs, through the real bot and both servers."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ADMIN, ENTITY, LAB_CHAT, PROJECT, Harness, lab_data
from tests.servers.telegram import ChatMessage

pytestmark = pytest.mark.slow


def alerts_of(h: Harness, rule: str) -> list[ChatMessage]:
    """Return the bot's alert messages (not resolved replies) that name `rule`."""
    return [
        m
        for m in h.telegram.bot_messages(LAB_CHAT)
        if rule in (m.text or "") and "alert" in (m.text or "").split("\n")[0]
    ]


def has_alerts(h: Harness, rule: str, count: int) -> bool:
    """Tell whether `count` alerts of `rule` are in the chat."""
    return len(alerts_of(h, rule)) >= count


def resolved_of(h: Harness, rule: str) -> list[ChatMessage]:
    """Return the bot's "resolved" replies that name `rule`."""
    return [
        m
        for m in h.telegram.bot_messages(LAB_CHAT)
        if rule in (m.text or "") and "resolved" in (m.text or "")
    ]


def seed_finished(h: Harness, values: list[float]) -> None:
    """Seed finished runs with these val/accuracy values: the baseline of zscore/new_best."""
    h.wb.seed(
        {
            "runs": [
                {
                    "entity": ENTITY,
                    "project": PROJECT,
                    "name": f"old{i:02d}",
                    "state": "finished",
                    "createdAt": "2026-01-01T00:00:00",
                    "updatedAt": "2026-01-01T00:10:00",
                    "summary": {"val/accuracy": v},
                }
                for i, v in enumerate(values)
            ]
        }
    )


def lab(*rules: dict[str, Any]) -> dict[str, Any]:
    return lab_data(alerts=list(rules))


async def train_curve(h: Harness, values: str, *extra: str) -> int:
    return await h.train_to_end("--curve", values, "--n_estimators", "3", *extra, timeout=150)


async def test_nan_loss_alerts_once_and_its_stop_button_stops_the_run(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=lab({"name": "nan-loss", "nan": ["loss"]})) as h:
        proc = await h.train("--nan-at", "3", "--hang", "--n_estimators", "5")
        try:
            alert = await h.wait_for_text("nan-loss", timeout=120)
            assert "loss is NaN at step 2" in (alert.text or "")
            labels = [b["text"] for row in alert.buttons for b in row]
            assert labels == ["Stop run", "Mute nan-loss 2h", "Plot"]
            await h.wait_polls(4)
            assert len(alerts_of(h, "nan-loss")) == 1

            h.telegram.press(LAB_CHAT, alert.message_id, button_text="Stop run", user_id=ADMIN)
            prompt = await h.wait_for_text("stop run", timeout=20)
            h.telegram.press(LAB_CHAT, prompt.message_id, button_text="Yes, stop it", user_id=ADMIN)
            await asyncio.wait_for(proc.wait(), 60)
            await h.wait_until(
                lambda: "killed" in h.run_states().values(), timeout=30, what="run killed"
            )
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_a_threshold_alerts_once_and_replies_resolved_in_its_thread(tmp_path: Path) -> None:
    rule = {"name": "low-acc", "threshold": {"metric": "val/accuracy", "below": 0.5}}
    async with Harness(tmp_path, lab=lab(rule)) as h:
        await train_curve(h, "0.7,0.7,0.3,0.3,0.3,0.3,0.8,0.8,0.8,0.8", "--sleep", "1")
        resolved = await h.wait_for_text("resolved", timeout=60)
        (alert,) = alerts_of(h, "low-acc")
        assert "val/accuracy 0.3 below 0.5" in (alert.text or "")
        assert resolved.reply_to_message_id == alert.message_id
        assert len(resolved_of(h, "low-acc")) == 1

        listing = await h.reply_to("/alerts")
        assert "low-acc" in (listing.text or "") and "threshold of val/accuracy" in (
            listing.text or ""
        )
        tried = await h.reply_to(f"/alerts test {PROJECT}")
        assert "Alert test" in (tried.text or "")
        bad = await h.reply_to("/alerts fire")
        assert "Usage" in (bad.text or "") or "/alerts test" in (bad.text or "")
        h.telegram.press(LAB_CHAT, alert.message_id, button_text="Mute low-acc 2h", user_id=ADMIN)
        await h.wait_until(
            lambda: any("Muted low-acc" in (a["text"] or "") for a in h.telegram.callback_answers),
            timeout=20,
            what="the mute answered",
        )
        # Plot draws the rule's metric, not the run's usual curves.
        before = len(h.telegram.bot_messages(LAB_CHAT))
        h.telegram.press(LAB_CHAT, alert.message_id, button_text="Plot", user_id=ADMIN)
        msgs = await h.telegram.wait_for_messages(
            LAB_CHAT, lambda ms: any(m.photo for m in ms[before:]), timeout=30
        )
        caption = next(m.caption for m in msgs[before:] if m.photo) or ""
        assert caption.splitlines()[-1] == "last: val/accuracy 0.8000", caption


async def test_a_plateau_and_a_zscore_outlier_each_alert_once(tmp_path: Path) -> None:
    rules = (
        {"name": "stuck", "plateau": {"metric": "val/accuracy", "no_improvement_for": "3 steps"}},
        {"name": "odd", "zscore": {"metric": "val/accuracy", "above": 3}},
    )
    async with Harness(tmp_path, lab=lab(*rules)) as h:
        await h.wait_polls(1)
        seed_finished(h, [0.80, 0.81, 0.79, 0.80, 0.82, 0.78])
        await train_curve(h, "0.5,0.6,0.6,0.6,0.6,0.6,0.6,0.2", "--sleep", "0.7")
        odd = await h.wait_for_text("odd", timeout=30)
        assert "from the last 6 finished runs" in (odd.text or "")
        await h.wait_polls(3)
        assert len(alerts_of(h, "stuck")) == 1
        assert len(alerts_of(h, "odd")) == 1


async def test_new_best_alerts_per_improvement_and_a_restart_repeats_nothing(
    tmp_path: Path,
) -> None:
    rules = (
        {"name": "best", "new_best": {"metric": "val/accuracy"}},
        {"name": "low-acc", "threshold": {"metric": "val/accuracy", "below": 0.5}},
    )
    async with Harness(tmp_path, lab=lab(*rules)) as h:
        await h.wait_polls(1)
        seed_finished(h, [0.80, 0.82, 0.79])
        for final, expected in (("0.9", 1), ("0.85", 1), ("0.95", 2)):
            await train_curve(h, f"0.5,{final}")
            await h.wait_until(
                functools.partial(has_alerts, h, "best", expected), timeout=30, what="new best"
            )
            await h.wait_polls(3)
            assert len(alerts_of(h, "best")) == expected
        bests = alerts_of(h, "best")
        assert "0.9, best before 0.82" in (bests[0].text or "")
        assert "0.95, best before 0.9" in (bests[1].text or "")

        low = await h.train("--curve", "0.3", "--hang", "--n_estimators", "3")
        try:
            await h.wait_for_text("low-acc", timeout=120)
            await h.stop_bot()
            await h.start_bot()
            await h.wait_polls(6)
            texts = [t.split("\n")[0] for t in h.texts()]
            assert len(alerts_of(h, "low-acc")) == 1 and len(alerts_of(h, "best")) == 2, texts
        finally:
            low.kill()
            await low.wait()
