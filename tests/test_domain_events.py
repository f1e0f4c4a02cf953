"""Run snapshots between polls become the right events, once each."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.events import (
    RULES,
    RunMemory,
    StallPolicy,
    diff_runs,
    logged_progress,
    stall_threshold,
)
from config.lab import ALL_EVENTS, ProjectConfig
from wandb_client.models import RunSnapshot

T0 = datetime(2024, 11, 23, 9, 0, tzinfo=UTC)
POLICY = StallPolicy(floor=600.0, factor=10.0)


def make_run(state="running", step=10, runtime=100.0, heartbeat=T0, **kw):
    summary = dict(kw.pop("summary", {}))
    if step is not None:
        summary["_step"] = step
    if runtime is not None:
        summary["_runtime"] = runtime
    base = dict(
        entity="lab",
        project="wine",
        id="run1",
        display_name="rf-1",
        state=state,
        url="https://wandb.ai/lab/wine/runs/run1",
        created_at=T0,
        heartbeat_at=heartbeat,
        summary=summary,
    )
    base.update(kw)
    return RunSnapshot(**base)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def remember(run, now=T0):
    """Return the memory after seeing `run` at `now` as a baseline."""
    _, mem = diff_runs({}, [run], now, POLICY, baseline=True)
    return mem


def kinds(events):
    return [e.kind for e in events]


def test_every_event_kind_has_exactly_one_rule():
    assert sorted(rule.key for rule in RULES) == sorted(ALL_EVENTS)


@pytest.mark.parametrize("state", ["running", "finished", "failed", "crashed"])
def test_baseline_records_and_emits_nothing(state):
    events, mem = diff_runs({}, [make_run(state)], T0, POLICY, baseline=True)
    assert events == []
    assert mem["lab/wine/run1"].state == state


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("finished", ["finished"]),
        ("failed", ["failed"]),
        ("crashed", ["crashed"]),
        ("killed", ["killed"]),
        ("preempted", ["killed"]),
        ("running", []),
        ("pending", []),
    ],
)
def test_first_seen_run_emits_only_its_terminal_state(state, expected):
    events, _ = diff_runs({}, [make_run(state)], T0, POLICY, baseline=False)
    assert kinds(events) == expected
    assert all(e.previous_state is None for e in events)


@pytest.mark.parametrize(
    ("new_state", "expected"),
    [
        ("finished", "finished"),
        ("failed", "failed"),
        ("crashed", "crashed"),
        ("killed", "killed"),
        ("preempted", "killed"),
    ],
)
def test_running_run_that_ends_emits_its_end(new_state, expected):
    mem = remember(make_run("running"))
    events, new = diff_runs(mem, [make_run(new_state)], at(30), POLICY, baseline=False)
    assert kinds(events) == [expected]
    assert events[0].previous_state == "running"
    assert events[0].dedupe_key == f"lab/wine/run1:{expected}"
    assert new["lab/wine/run1"].state == new_state


@pytest.mark.parametrize("state", ["running", "finished", "failed", "crashed", "killed"])
def test_same_input_twice_emits_nothing_new(state):
    mem = remember(make_run("running"))
    _, mem2 = diff_runs(mem, [make_run(state)], at(30), POLICY, baseline=False)
    second, _ = diff_runs({**mem, **mem2}, [make_run(state)], at(31), POLICY, baseline=False)
    assert second == []


def test_unchanged_running_run_keeps_its_memory():
    mem = remember(make_run("running"))
    events, new = diff_runs(mem, [make_run("running")], at(30), POLICY, baseline=False)
    assert events == []
    assert new["lab/wine/run1"] == mem["lab/wine/run1"]


def test_step_change_moves_the_idle_clock():
    mem = remember(make_run("running", step=10))
    _, new = diff_runs(mem, [make_run("running", step=11)], at(30), POLICY, baseline=False)
    assert new["lab/wine/run1"].step_changed_at == at(30)
    assert new["lab/wine/run1"].last_step == 11


@pytest.mark.parametrize(
    ("policy", "step", "runtime", "expected"),
    [
        (StallPolicy(600, 10), 10, 100.0, 600.0),  # cadence 10s → 100s < floor
        (StallPolicy(600, 10), 10, 1000.0, 1000.0),  # cadence 100s × 10
        (StallPolicy(600, 10), None, 1000.0, 600.0),  # no step → floor
        (StallPolicy(600, 10), 0, 1000.0, 600.0),  # step 0 → floor
        (StallPolicy(600, 10), 10, None, 600.0),  # no runtime → floor
        (StallPolicy(600, 10, fixed=60), 10, 1000.0, 60.0),  # project override wins
    ],
)
def test_stall_threshold(policy, step, runtime, expected):
    assert stall_threshold(policy, make_run(step=step, runtime=runtime)) == expected


def test_project_stall_after_becomes_a_fixed_threshold():
    assert POLICY.for_project(ProjectConfig(stall_after=42)).fixed == 42
    assert POLICY.for_project(ProjectConfig()) == POLICY


@pytest.mark.parametrize(
    ("name", "policy", "runtime", "elapsed", "heartbeat_age", "stalled_by"),
    [
        ("step idle beyond floor", POLICY, 100.0, 601, 0, "step"),
        ("step idle within floor", POLICY, 100.0, 599, 0, None),
        ("slow cadence raises threshold", POLICY, 1000.0, 900, 0, None),
        ("slow cadence exceeded", POLICY, 1000.0, 1001, 0, "step"),
        ("fixed threshold", StallPolicy(600, 10, fixed=60), 1000.0, 61, 0, "step"),
        # step moved just now but heartbeat went quiet: the idle clock is fresh
        ("heartbeat stale", POLICY, 100.0, 0, 700, "heartbeat"),
    ],
)
def test_stalled(name, policy, runtime, elapsed, heartbeat_age, stalled_by):
    mem = remember(make_run(step=10, runtime=runtime))
    step = 10 if elapsed else 11
    now = at(elapsed or 700)
    run = make_run(step=step, runtime=runtime, heartbeat=now - timedelta(seconds=heartbeat_age))
    events, new = diff_runs(mem, [run], now, policy, baseline=False)
    if stalled_by is None:
        assert events == []
        return
    assert kinds(events) == ["stalled"]
    event = events[0]
    assert event.stalled_by == stalled_by
    assert event.cadence == pytest.approx(runtime / step)
    assert event.idle_for == pytest.approx(elapsed or heartbeat_age)
    assert event.dedupe_key == "lab/wine/run1:stalled:1"
    assert new["lab/wine/run1"].stalled


def test_stalled_run_is_told_once():
    mem = remember(make_run(step=10))
    _, mem2 = diff_runs(
        mem, [make_run(step=10, heartbeat=at(700))], at(700), POLICY, baseline=False
    )
    again, _ = diff_runs(
        mem2, [make_run(step=10, heartbeat=at(800))], at(800), POLICY, baseline=False
    )
    assert again == []


@pytest.mark.parametrize(
    ("name", "step", "heartbeat_at"),
    [("step moved", 11, 900), ("heartbeat fresh and idle short", 10, 900)],
)
def test_recovered(name, step, heartbeat_at):
    if name == "step moved":
        mem = remember(make_run(step=10))
        _, mem = diff_runs(
            mem, [make_run(step=10, heartbeat=at(700))], at(700), POLICY, baseline=False
        )
    else:
        # Stalled by heartbeat while the step still moved recently.
        mem = remember(make_run(step=9))
        _, mem = diff_runs(
            mem, [make_run(step=10, heartbeat=at(0))], at(650), POLICY, baseline=False
        )
    assert mem["lab/wine/run1"].stalled
    events, new = diff_runs(
        mem, [make_run(step=step, heartbeat=at(heartbeat_at))], at(900), POLICY, baseline=False
    )
    assert kinds(events) == ["recovered"]
    assert events[0].dedupe_key == "lab/wine/run1:recovered:1"
    assert not new["lab/wine/run1"].stalled


def test_run_can_stall_twice_with_distinct_keys():
    mem = remember(make_run(step=10))
    keys = []
    now = 0
    for step in (10, 11, 11):
        now += 700
        events, upd = diff_runs(
            mem, [make_run(step=step, heartbeat=at(now))], at(now), POLICY, baseline=False
        )
        mem = {**mem, **upd}
        keys += [e.dedupe_key for e in events]
    assert keys == [
        "lab/wine/run1:stalled:1",
        "lab/wine/run1:recovered:1",
        "lab/wine/run1:stalled:2",
    ]


def test_stalled_run_that_finishes_reports_finished_and_forgets_the_stall():
    mem = remember(make_run(step=10))
    _, mem = diff_runs(mem, [make_run(step=10, heartbeat=at(700))], at(700), POLICY, baseline=False)
    events, new = diff_runs(mem, [make_run("finished", step=10)], at(800), POLICY, baseline=False)
    assert kinds(events) == ["finished"]
    assert not new["lab/wine/run1"].stalled


def test_resume_after_crash_notifies_the_next_end_with_a_new_key():
    mem = remember(make_run("running"))
    seen = []
    for i, state in enumerate(["crashed", "running", "finished", "finished"], start=1):
        events, upd = diff_runs(
            mem, [make_run(state, step=10 + i)], at(30 * i), POLICY, baseline=False
        )
        mem = {**mem, **upd}
        seen += [e.dedupe_key for e in events]
    assert seen == ["lab/wine/run1:crashed", "lab/wine/run1:finished:1"]
    assert mem["lab/wine/run1"].resumes == 1


def test_crashed_then_finished_without_seeing_running_counts_as_resume():
    mem = remember(make_run("crashed"))
    events, _ = diff_runs(mem, [make_run("finished")], at(30), POLICY, baseline=False)
    assert [e.dedupe_key for e in events] == ["lab/wine/run1:finished:1"]


def test_resumed_run_gets_a_fresh_idle_clock():
    mem = remember(make_run("crashed", step=10))
    _, mem = diff_runs(
        mem, [make_run("running", step=10, heartbeat=at(5000))], at(5000), POLICY, baseline=False
    )
    assert mem["lab/wine/run1"].step_changed_at == at(5000)
    events, _ = diff_runs(
        mem, [make_run("running", step=10, heartbeat=at(5100))], at(5100), POLICY, baseline=False
    )
    assert events == []


def test_only_runs_seen_are_returned():
    other = make_run(id="run2", url="https://wandb.ai/lab/wine/runs/run2")
    mem = {**remember(make_run()), **remember(other)}
    _, new = diff_runs(mem, [make_run()], at(10), POLICY, baseline=False)
    assert set(new) == {"lab/wine/run1"}


@pytest.mark.parametrize(
    "memory",
    [
        RunMemory("running", None, None, T0, None, False, T0),
        RunMemory("crashed", "k3x9q", 880, T0, at(-60), True, at(-3600), resumes=2, stalls=3),
    ],
)
def test_memory_round_trips_through_json(memory):
    assert RunMemory.from_dict(json.loads(json.dumps(memory.to_dict()))) == memory


def test_memory_reads_older_dicts_without_counters():
    data = RunMemory("running", None, 5, T0, None, False, T0).to_dict()
    del data["resumes"], data["stalls"]
    assert RunMemory.from_dict(data) == RunMemory("running", None, 5, T0, None, False, T0)


def test_memory_from_a_bad_dict_raises_value_error():
    with pytest.raises(ValueError):
        RunMemory.from_dict({"state": "running", "step_changed_at": None})


def test_events_carry_the_poll_time():
    mem = remember(make_run())
    events, _ = diff_runs(mem, [make_run("failed")], at(30), POLICY, baseline=False)
    assert events[0].at == at(30)
    assert replace(events[0], seq=2).dedupe_key == "lab/wine/run1:failed:2"


@pytest.mark.parametrize(
    ("last_sign", "expected"),
    [
        (at(-90 * 86400), []),  # an old run someone edited: not news
        (at(-10), ["finished"]),  # ended inside the poll window: news
    ],
)
def test_a_run_first_seen_ended_is_news_only_if_it_ended_in_the_window(last_sign, expected):
    run = make_run("finished", heartbeat=last_sign)
    events, memory = diff_runs({}, [run], at(0), POLICY, baseline=False, news_since=at(-120))
    assert kinds(events) == expected
    assert run.path in memory


@pytest.mark.parametrize(
    ("summary", "progress"),
    [
        ({"_step": 7}, ("step", 7)),
        # A script that logs twice an epoch: its own epoch, not W&B's count of log calls.
        ({"_step": 0, "epoch": 1}, ("epoch", 1)),
        ({"_step": 41, "epoch": 3, "global_step": 1200}, ("step", 1200)),
        ({"_step": 5, "step": 9, "epoch": 2}, ("step", 9)),
        ({"_step": 5, "epoch": float("nan")}, ("step", 5)),
        ({"_step": 5, "epoch": True}, ("step", 5)),
        ({"epoch": 2.0}, ("epoch", 2)),
        ({}, None),
    ],
)
def test_logged_progress_prefers_the_runs_own_counter(
    summary: dict[str, object], progress: tuple[str, int] | None
) -> None:
    run = RunSnapshot(
        entity="lab",
        project="p",
        id="r",
        display_name="r",
        state="failed",
        url="u",
        created_at=T0,
        summary=summary,
    )
    assert logged_progress(run) == progress
