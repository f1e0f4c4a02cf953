"""Digests end to end: the cron job per chat, its counts and chart, and quiet periods."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from matplotlib import image as mpimg

from tests.harness import ENTITY, LAB_CHAT, OTHER_LAB_CHAT, PROJECT, Harness, lab_data

TZ = "Asia/Kathmandu"  # UTC+05:45: a wrong zone shows in every clock time
QUIET = "wine-quality-prod"
SWEEP_ID = "dg5weep1"
CHARTS = Path("/tmp/charts-e2e")


def digest_lab() -> dict[str, Any]:
    every_minute = {"cron": "* * * * *", "timezone": TZ}
    return lab_data(
        chats=[
            {"id": LAB_CHAT, "name": "ml-alerts", "projects": [PROJECT], "digest": every_minute},
            {"id": OTHER_LAB_CHAT, "name": "ml-quiet", "projects": [QUIET], "digest": every_minute},
        ]
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def seed(now: datetime) -> dict[str, Any]:
    """Runs in and out of the first digest's window (the last day), and an active sweep."""

    def run(name: str, state: str, ago: timedelta, acc: float | None, **extra: Any) -> dict:
        moment = now - ago
        return {
            "entity": ENTITY,
            "project": extra.pop("project", PROJECT),
            "name": name,
            "displayName": extra.pop("display", name),
            "state": state,
            "createdAt": iso(moment - timedelta(minutes=5)),
            "updatedAt": iso(moment),
            "heartbeatAt": iso(moment),
            "summary": {"accuracy": acc} if acc is not None else {},
            **extra,
        }

    hour = timedelta(hours=1)
    return {
        "sweeps": [
            {
                "entity": ENTITY,
                "project": PROJECT,
                "name": SWEEP_ID,
                "config": {
                    "method": "random",
                    "metric": {"name": "accuracy", "goal": "maximize"},
                    "run_cap": 20,
                    "parameters": {"depth": {"values": [2, 4, 8]}},
                },
            }
        ],
        "runs": [
            run("old1", "finished", 3 * 24 * hour, 0.90),
            run("old2", "failed", 2 * 24 * hour, None),
            run("f1", "finished", 2 * hour, 0.95, display="rf-random-19"),
            run("f2", "finished", 3 * hour, 0.93, sweep=SWEEP_ID, config={"depth": 4}),
            run("f3", "finished", 4 * hour, 0.91, sweep=SWEEP_ID, config={"depth": 2}),
            run("x1", "failed", 5 * hour, None),
            run("c1", "crashed", 6 * hour, 0.5),
            run("r1", "running", timedelta(seconds=5), 0.7, display="rf-bayes-3"),
            run("q1", "finished", 3 * 24 * hour, 0.8, project=QUIET),
        ],
    }


def next_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def fire_soon(h: Harness, chat_id: int, tz: ZoneInfo) -> datetime:
    """Move a chat's digest job to fire two seconds from now; return when."""
    assert h.application is not None and h.application.job_queue is not None
    (job,) = h.application.job_queue.get_jobs_by_name(f"digest:{chat_id}")
    at = (datetime.now(tz) + timedelta(seconds=2)).replace(microsecond=0)
    job.job.reschedule(CronTrigger(second=at.second, minute=at.minute, timezone=tz))
    assert job.next_t == at
    return at


async def test_digest_fires_every_minute_with_the_right_counts_then_says_quiet(
    tmp_path: Path,
) -> None:
    tz = ZoneInfo(TZ)
    async with Harness(tmp_path, lab=digest_lab()) as h:
        h.wb.seed(seed(datetime.now(UTC)))
        assert h.application is not None and h.application.job_queue is not None
        services = h.application.bot_data.services

        # The lab's `* * * * *` in Kathmandu time: each chat's job is due at the next minute.
        for chat in (LAB_CHAT, OTHER_LAB_CHAT):
            (job,) = h.application.job_queue.get_jobs_by_name(f"digest:{chat}")
            now = datetime.now(tz)
            assert job.next_t in (next_minute(now), next_minute(now) - timedelta(minutes=1))
            assert job.next_t.utcoffset() == timedelta(hours=5, minutes=45)

        at = await fire_soon(h, LAB_CHAT, tz)
        digest = await h.wait_for_text("🗓 digest · ml-alerts", timeout=15)
        sent_at, best = services.store.digests.state(LAB_CHAT)
        assert sent_at is not None and at <= sent_at < at + timedelta(seconds=1.5)
        text = digest.text or ""
        lines = text.split("\n")
        assert lines[0].startswith("🗓 digest · ml-alerts · ")
        assert f"since {(at - timedelta(days=1)).astimezone(tz):%H:%M} yesterday" in lines[0]
        assert "wine-quality-dev: 3 ✅ 1 ❌ 1 💥 1 🏃 · best accuracy 0.9500 rf-random-19" in text
        assert "running: 1 · rf-bayes-3" in text
        assert f"sweep {SWEEP_ID} · wine-quality-dev: 2/20 · best accuracy 0.9300" in text
        assert best == {PROJECT: 0.95}

        chart = await h.telegram.wait_for_messages(
            LAB_CHAT, lambda ms: ms[-1].photo is not None, timeout=10
        )
        photo = chart[-1].photo
        assert photo is not None and (photo["width"], photo["height"]) == (1200, 800)
        stored = h.telegram.files.get(photo["file_id"])
        assert stored is not None
        CHARTS.mkdir(parents=True, exist_ok=True)
        (CHARTS / "digest.png").write_bytes(stored.data)
        pixels = mpimg.imread(io.BytesIO(stored.data), format="png")
        assert (pixels[..., :3] < 0.9).any(axis=-1).mean() > 0.01

        # Nothing ran in the quiet chat's project during the last day: one line, no chart.
        quiet_at = await fire_soon(h, OTHER_LAB_CHAT, tz)
        quiet = await h.wait_for_text("🗓 digest · ml-quiet", chat_id=OTHER_LAB_CHAT, timeout=15)
        since = (quiet_at - timedelta(days=1)).astimezone(tz)
        assert quiet.text == f"🗓 digest · ml-quiet · nothing ran since {since:%H:%M} yesterday"
        await h.wait_until(
            lambda: services.store.outbox.counts().get("pending", 0) == 0, what="outbox drained"
        )
        assert [m.photo for m in h.telegram.bot_messages(OTHER_LAB_CHAT)] == [None]

        # The next digest of the busy chat starts where the last one ended: only r1 runs on.
        await fire_soon(h, LAB_CHAT, tz)
        again = await h.wait_for_text(
            lambda t: t.startswith("🗓 digest · ml-alerts") and t != text, timeout=15
        )
        assert "since " + f"{sent_at.astimezone(tz):%H:%M}" in (again.text or "")
        assert "1 🏃" in (again.text or "") and "✅" not in (again.text or "")


async def test_digest_command_posts_one_now(tmp_path: Path) -> None:
    async with Harness(tmp_path, lab=digest_lab()) as h:
        h.wb.seed(seed(datetime.now(UTC)))
        h.say("/digest")
        digest = await h.wait_for_text("🗓 digest · ml-alerts", timeout=15)
        assert "3 ✅ 1 ❌ 1 💥" in (digest.text or "")
        services = h.application.bot_data.services  # type: ignore[union-attr]
        # A look on demand does not move the scheduled digest's window.
        assert services.store.digests.state(LAB_CHAT) == (None, {})


async def test_a_project_without_runs_is_one_line_not_a_lost_digest(tmp_path: Path) -> None:
    # lab.example.yaml as shipped: wine-quality-prod has no runs, so W&B does not know it.
    lab = lab_data(
        chats=[{"id": LAB_CHAT, "name": "ml-alerts", "projects": [PROJECT, "wine-quality-prod"]}]
    )
    async with Harness(tmp_path, lab=lab) as h:
        spec = seed(datetime.now(UTC))
        spec["runs"] = [r for r in spec["runs"] if r["project"] != QUIET]
        h.wb.seed(spec)
        h.say("/digest")
        digest = await h.wait_for_text("🗓 digest · ml-alerts", timeout=15)
        lines = (digest.text or "").split("\n")
        assert any(line.startswith("wine-quality-dev: ") and "✅" in line for line in lines)
        assert (
            "wine-quality-prod: ⚠️ not found in W&B (a project appears with its first run)" in lines
        )

        assert h.application is not None
        polls = h.application.bot_data.services.polls
        await h.wait_until(
            lambda: polls.last_outcome(ENTITY, QUIET) is not None, what="prod polled"
        )
        status = await h.reply_to("/status")
        assert "wine-quality-prod: polled " in (status.text or "")
        assert "⚠️ not found in W&B" in (status.text or "")
        assert (status.text or "").startswith("🟢 W&B reachable")
