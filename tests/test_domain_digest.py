"""Tests for building and rendering a chat's digest."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.digest import (
    Digest,
    build_digest,
    digest_chart_data,
    fmt_since,
    render_digest,
)
from bot.domain.events import RunMemory, StallPolicy, diff_runs
from bot.domain.format import utf16_len
from config.lab import LabConfig
from tests.servers.telegram.html import parse_html
from wandb_client.models import RunSnapshot, SweepSnapshot

NOW = datetime(2025, 11, 24, 8, 0, tzinfo=UTC)  # Mon 24 Nov, 09:00 in Berlin
SINCE = NOW - timedelta(days=1)
LAB = LabConfig(
    entity="lab",
    projects={
        "wine-quality-dev": {"metric": "accuracy"},
        "loss-proj": {"metric": "loss", "goal": "minimize"},
    },
)
HOSTILE = '<b>&"x"</i>'


def make_run(
    rid,
    state="finished",
    *,
    ended=None,
    acc=None,
    project="wine-quality-dev",
    sweep=None,
    step=None,
    name=None,
    updated=None,
    summary=None,
):
    s = dict(summary or {})
    if acc is not None:
        s["accuracy"] = acc
    if step is not None:
        s["_step"] = step
    return RunSnapshot(
        entity="lab",
        project=project,
        id=rid,
        display_name=name or f"rf-{rid}",
        state=state,
        url=f"https://wandb.ai/lab/{project}/runs/{rid}",
        created_at=SINCE - timedelta(days=2),
        heartbeat_at=ended,
        updated_at=updated,
        sweep=sweep,
        summary=s,
    )


def digest_of(projects, sweeps=(), previous=None, since=SINCE, now=NOW, title="ml-alerts"):
    return build_digest(
        chat_title=title,
        projects=projects,
        sweeps=list(sweeps),
        previous_best=previous or {},
        lab=LAB,
        since=since,
        now=now,
    )


def assert_telegram_html(text):
    assert utf16_len(text) <= 4096
    parse_html(text)
    assert set(re.findall(r"</?([a-zA-Z-]+)", text)) <= {
        "b",
        "i",
        "u",
        "s",
        "code",
        "pre",
        "a",
        "blockquote",
    }


@pytest.mark.parametrize(
    ("ended", "counted"),
    [
        (SINCE - timedelta(microseconds=1), False),
        (SINCE, True),
        (SINCE + timedelta(hours=3), True),
        (NOW - timedelta(microseconds=1), True),
        (NOW, False),  # belongs to the next digest, which starts at this one's `now`
        (NOW + timedelta(minutes=1), False),
        (None, False),
    ],
)
def test_window_is_half_open(ended, counted):
    digest = digest_of({"wine-quality-dev": [make_run("a", ended=ended)]})
    assert digest.projects[0].count("finished") == (1 if counted else 0)


def test_window_uses_updated_at_when_no_heartbeat():
    run = make_run("a", updated=SINCE + timedelta(hours=1))
    assert digest_of({"wine-quality-dev": [run]}).projects[0].count("finished") == 1


def test_heartbeat_wins_over_a_later_update():
    # A tag edit long after the end bumps updatedAt; the run still ended before the window.
    run = make_run("a", ended=SINCE - timedelta(days=3), updated=SINCE + timedelta(hours=1))
    assert digest_of({"wine-quality-dev": [run]}).projects[0].count("finished") == 0


def test_naive_timestamps_are_utc():
    run = make_run("a", ended=(SINCE + timedelta(hours=1)).replace(tzinfo=None))
    assert digest_of({"wine-quality-dev": [run]}).projects[0].count("finished") == 1


@pytest.mark.parametrize("state", ["finished", "failed", "crashed", "killed", "preempted"])
def test_each_terminal_state_is_counted(state):
    digest = digest_of({"wine-quality-dev": [make_run("a", state, ended=SINCE)]})
    assert digest.projects[0].ended == ((state, 1),)


def test_running_runs_are_listed_not_counted():
    digest = digest_of({"wine-quality-dev": [make_run("a", "running", ended=NOW, step=40)]})
    project = digest.projects[0]
    assert project.ended_total == 0 and project.running[0].step == 40
    assert not digest.empty


@pytest.mark.parametrize(
    ("project", "values", "previous", "best", "change", "shown"),
    [
        ("wine-quality-dev", [0.97, 0.9778], 0.9722, 0.9778, 0.0056, "(+0.0056)"),
        ("wine-quality-dev", [0.95], 0.9722, 0.95, -0.0222, "(−0.0222)"),
        ("wine-quality-dev", [0.95, math.nan, math.inf], None, 0.95, None, None),
        ("wine-quality-dev", [0.95], 0.95, 0.95, 0.0, None),
        ("loss-proj", [0.30, 0.25], 0.28, 0.25, -0.03, "(−0.0300)"),
    ],
)
def test_best_and_its_change(project, values, previous, best, change, shown):
    runs = [
        make_run(
            str(i),
            ended=SINCE,
            project=project,
            summary={"accuracy" if project == "wine-quality-dev" else "loss": v},
        )
        for i, v in enumerate(values)
    ]
    digest = digest_of({project: runs}, previous={project: previous})
    p = digest.projects[0]
    assert p.best is not None and p.best.value == best
    if change is None:
        assert p.change in (None, 0.0)
    else:
        assert p.change == pytest.approx(change)
    text = render_digest(digest, "UTC")
    if shown:
        assert shown in text
    else:
        assert "(+" not in text and "(−" not in text
    assert digest.best_values() == {project: best}


def test_project_without_metric_has_no_best():
    digest = digest_of({"other": [make_run("a", ended=SINCE, acc=0.9)]})
    assert digest.projects[0].best is None
    assert "best" not in render_digest(digest, "UTC")


def test_render_matches_sketch_in_chat_timezone():
    runs = [
        make_run(str(i), ended=SINCE + timedelta(hours=1), acc=0.9 + i / 1000) for i in range(24)
    ]
    runs.append(make_run("f", "failed", ended=SINCE + timedelta(hours=2)))
    runs.append(
        make_run(
            "best", ended=SINCE + timedelta(hours=2), acc=0.9778, name="rf-random-19", sweep="k3x9q"
        )
    )
    runs.append(make_run("live", "running", step=40, name="rf-bayes-3"))
    sweep = SweepSnapshot(
        entity="lab",
        project="wine-quality-dev",
        id="k3x9q",
        display_name="k3x9q",
        state="RUNNING",
        method="random",
        url="https://wandb.ai/lab/wine-quality-dev/sweeps/k3x9q",
        run_cap=20,
    )
    done = SweepSnapshot(
        entity="lab",
        project="wine-quality-dev",
        id="old",
        display_name="old",
        state="FINISHED",
        method="grid",
        url="u",
    )
    digest = digest_of(
        {"wine-quality-dev": runs, "wine-quality-prod": []},
        sweeps=[(sweep, 18), (done, 5)],
        previous={"wine-quality-dev": 0.9722},
    )
    text = render_digest(digest, ZoneInfo("Europe/Berlin"))
    lines = text.splitlines()
    assert lines[0] == "🗓 <b>digest · ml-alerts</b> · Mon 24 Nov, since 09:00 yesterday"
    assert lines[1].startswith(
        "<b>wine-quality-dev</b>: 25 ✅ 1 ❌ 1 🏃 · best accuracy 0.9778 (+0.0056) <a href="
    )
    assert lines[1].endswith(">rf-random-19</a>")
    assert lines[2] == "<b>wine-quality-prod</b>: quiet"
    assert lines[3].startswith("🏃 running: 1 · <a ") and "rf-bayes-3</a> at step 40" in lines[3]
    assert lines[4].startswith("🧹 sweep <a ") and ": 18/20 · best accuracy 0.9778" in lines[4]
    assert "old" not in text
    assert len(lines) <= 8
    assert_telegram_html(text)


@pytest.mark.parametrize(
    ("tz", "since", "now", "expected"),
    [
        ("UTC", SINCE, NOW, "· nothing ran since 08:00 yesterday"),
        ("Europe/Berlin", SINCE, NOW, "· nothing ran since 09:00 yesterday"),
        ("America/New_York", SINCE, NOW, "· nothing ran since 03:00 yesterday"),
        ("UTC", NOW - timedelta(hours=2), NOW, "· nothing ran since 06:00"),
        ("UTC", NOW - timedelta(days=3), NOW, "· nothing ran since Fri 08:00"),
        ("UTC", NOW - timedelta(days=10), NOW, "· nothing ran since Fri 14 Nov 08:00"),
        ("Asia/Tokyo", NOW - timedelta(hours=10), NOW, "· nothing ran since 07:00"),
    ],
)
def test_empty_period_is_one_line_in_the_chat_timezone(tz, since, now, expected):
    old = make_run("old", ended=since - timedelta(hours=1), acc=0.9)
    digest = digest_of({"wine-quality-dev": [old], "wine-quality-prod": []}, since=since, now=now)
    assert digest.empty
    text = render_digest(digest, tz)
    assert "\n" not in text
    assert text == f"🗓 <b>digest · ml-alerts</b> {expected}"


def test_empty_with_no_projects_at_all():
    digest = digest_of({})
    assert digest.empty
    assert render_digest(digest).count("\n") == 0


def test_dst_change_keeps_local_clock():
    # Europe/Berlin leaves summer time on 26 Oct 2025 at 03:00 local.
    now = datetime(2025, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 CET
    since = datetime(2025, 10, 25, 7, 0, tzinfo=UTC)  # 09:00 CEST
    text = render_digest(digest_of({}, since=since, now=now), "Europe/Berlin")
    assert text.endswith("since 09:00 yesterday")


def test_fmt_since_same_day():
    tz = ZoneInfo("UTC")
    assert fmt_since(NOW.astimezone(tz), NOW.astimezone(tz)) == "since 08:00"


def test_render_escapes_hostile_names():
    run = make_run("a", ended=SINCE, acc=0.9, name=HOSTILE, project=HOSTILE)
    lab = LabConfig(entity="lab", projects={HOSTILE: {"metric": "accuracy"}})
    sweep = SweepSnapshot(
        entity="lab",
        project=HOSTILE,
        id=HOSTILE,
        display_name=HOSTILE,
        state="running",
        method="m",
        url='https://x/"><b>',
        run_cap=None,
    )
    live = make_run("b", "running", project=HOSTILE, name=HOSTILE)
    digest = build_digest(
        chat_title=HOSTILE,
        projects={HOSTILE: [run, live]},
        sweeps=[(sweep, 3)],
        previous_best={},
        lab=lab,
        since=SINCE,
        now=NOW,
    )
    text = render_digest(digest, "UTC")
    assert "<b>&lt;b&gt;&amp;" in text and '"x"' not in text and "</i>" not in text
    assert "3 done" in text
    assert_telegram_html(text)


def test_many_projects_stay_within_one_message():
    projects = {
        f"{HOSTILE}-{i}" * 5: [make_run(str(i), ended=SINCE, acc=0.5, name=HOSTILE * 9)]
        for i in range(300)
    }
    lab = LabConfig(entity="lab", projects={k: {"metric": "accuracy"} for k in projects})
    digest = build_digest(
        chat_title="c",
        projects=projects,
        sweeps=[],
        previous_best={},
        lab=lab,
        since=SINCE,
        now=NOW,
    )
    text = render_digest(digest, "UTC")
    assert_telegram_html(text)
    assert text.splitlines()[-1].startswith("… and ")


def test_chart_data_carries_counts_and_best():
    runs = [
        make_run("a", ended=SINCE, acc=0.9),
        make_run("b", "failed", ended=SINCE),
        make_run("c", "running"),
    ]
    data = digest_chart_data(
        digest_of({"wine-quality-dev": runs}, previous={"wine-quality-dev": 0.8})
    )
    (row,) = data.rows
    assert dict(row.counts) == {"finished": 1, "failed": 1, "running": 1}
    assert row.best == 0.9 and row.change == pytest.approx(0.1)
    assert data.total == 3 and "ml-alerts" in data.title and "24h" in data.title


def test_digest_is_frozen():
    digest = digest_of({})
    assert isinstance(digest, Digest)
    with pytest.raises(AttributeError):
        digest.chat_title = "x"  # type: ignore[misc]


def test_a_crash_declared_after_its_last_heartbeat_counts_in_the_digest_that_saw_it():
    # Last heartbeat just before the window; W&B declared the crash (updatedAt) inside it.
    crashed = make_run(
        "c", "crashed", ended=SINCE - timedelta(minutes=2), updated=SINCE + timedelta(minutes=3)
    )
    assert digest_of({"wine-quality-dev": [crashed]}).projects[0].ended == (("crashed", 1),)
    # …and not again in the digest before, which ended before W&B said "crashed".
    earlier = digest_of({"wine-quality-dev": [crashed]}, since=SINCE - timedelta(days=1), now=SINCE)
    assert earlier.projects[0].ended == ()


def test_a_crash_declared_after_a_digest_is_counted_in_the_next_one_exactly_once():
    """W&B declares a crash once the heartbeat has been missing a while: the run's last
    heartbeat lies before the next digest's window, but the crash belongs to it."""
    first = NOW  # a digest at 08:00 saw the run still running
    beat = first - timedelta(minutes=2)
    running = make_run("c1", "running", ended=beat)
    crashed = make_run("c1", "crashed", ended=beat)
    seen = first + timedelta(minutes=3)  # the monitor's poll sees the crash at 08:03
    memory = {running.path: RunMemory("running", None, 5, beat, beat, False, beat)}
    _, updated = diff_runs(memory, [crashed], seen, StallPolicy(), baseline=False)
    ended = {path: mem.ended_at for path, mem in updated.items() if mem.ended_at}
    assert ended == {crashed.path: seen}

    # The 08:00 digest had seen it running; at 08:00 W&B may already say crashed too,
    # before the monitor saw it: then it waits for the period in which the monitor sees it.
    early = build_digest(
        chat_title="t",
        projects={"wine-quality-dev": [crashed]},
        sweeps=(),
        previous_best={},
        lab=LAB,
        since=SINCE,
        now=first,
        ended={crashed.path: None},  # the monitor last saw it running
    )
    later = build_digest(
        chat_title="t",
        projects={"wine-quality-dev": [crashed]},
        sweeps=(),
        previous_best={},
        lab=LAB,
        since=first,
        now=first + timedelta(days=1),
        ended=ended,
    )
    assert early.projects[0].count("crashed") == 0
    assert later.projects[0].count("crashed") == 1


def test_a_finished_run_counts_by_its_heartbeat_whether_or_not_the_monitor_saw_it():
    beat = NOW - timedelta(seconds=10)
    run = make_run("f1", "finished", ended=beat)
    before = build_digest(
        chat_title="t",
        projects={"wine-quality-dev": [run]},
        sweeps=(),
        previous_best={},
        lab=LAB,
        since=SINCE,
        now=NOW,
        ended={},
    )
    after = build_digest(
        chat_title="t",
        projects={"wine-quality-dev": [run]},
        sweeps=(),
        previous_best={},
        lab=LAB,
        since=NOW,
        now=NOW + timedelta(days=1),
        ended={run.path: beat},
    )
    assert before.projects[0].count("finished") == 1
    assert after.projects[0].count("finished") == 0
