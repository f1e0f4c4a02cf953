"""Pure pieces of driving sweeps and runs: progress, errors in logs, and their messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.control import (
    AgentView,
    SweepProgress,
    SweepView,
    last_error,
    render_agent_end,
    render_crash_loop,
    render_stop_prompt,
    render_sweep_changed,
    render_sweep_started,
    render_sweeps_status,
    summarise_runs,
)
from wandb_client.models import RunSnapshot

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
UI = "https://wandb.example"
PATH = "lab/wine-quality-dev/k3x9q"


def run(run_id: str, state: str, accuracy: float | None = None) -> RunSnapshot:
    summary = {"accuracy": accuracy} if accuracy is not None else {}
    return RunSnapshot(
        entity="lab",
        project="wine-quality-dev",
        id=run_id,
        display_name=f"rf-<{run_id}>",
        state=state,
        url=f"{UI}/lab/wine-quality-dev/runs/{run_id}",
        created_at=NOW,
        summary=summary,
        config={"max_depth": {"value": 8}},
    )


@pytest.mark.parametrize(
    ("goal", "best"),
    [("maximize", "b"), ("minimize", "a"), (None, "a")],
)
def test_summarise_runs_counts_and_picks_the_best_finished_run(goal: str | None, best: str) -> None:
    runs = [
        run("a", "finished", 0.8),
        run("b", "finished", 0.95),
        run("c", "failed", 0.99),  # a failed run is never the best
        run("d", "crashed"),
        run("e", "running", 0.5),
    ]
    progress = summarise_runs(runs, "accuracy", goal)
    assert (progress.done, progress.failed, progress.running) == (4, 2, 1)
    assert progress.best is not None and progress.best.id == best


def test_summarise_runs_without_metric_has_no_best() -> None:
    assert summarise_runs([run("a", "finished", 0.8)], None, None).best is None


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["Traceback (most recent call last):", "  File x", "RuntimeError: boom at 3"],
            "RuntimeError: boom at 3",
        ),
        (
            ["wandb: ERROR oops", "ValueError: bad value", "agent: INFO done"],
            "ValueError: bad value",
        ),
        (["KeyboardInterrupt"], "KeyboardInterrupt"),
        (["all good", "INFO Running runs: []"], None),
        ([], None),
    ],
)
def test_last_error_finds_the_exception_line(lines: list[str], expected: str | None) -> None:
    assert last_error(lines) == expected


def test_agent_end_on_failure_escapes_its_log_tail() -> None:
    text = render_agent_end(
        PATH,
        agent=0,
        returncode=1,
        known=True,
        ran_for_s=75,
        done=1,
        count=3,
        log_tail=["<b>not html</b> & more", "RuntimeError: x"],
        ui_url=UI,
    )
    first, second, *_rest = text.split("\n")
    assert "agent 0 of sweep" in first and "exited with 1" in first
    assert second == "runs done: 1/3"
    assert "&lt;b&gt;not html&lt;/b&gt; &amp; more" in text
    assert "<pre>" in text


@pytest.mark.parametrize(
    ("code", "known", "needle"),
    [(0, True, "is done after 1m 15s"), (None, False, "ended while I was down")],
)
def test_agent_end_says_how_it_ended(code: int | None, known: bool, needle: str) -> None:
    text = render_agent_end(
        PATH,
        agent=0,
        returncode=code,
        known=known,
        ran_for_s=75,
        done=3,
        count=3,
        log_tail=["noise"],
        ui_url=UI,
    )
    assert needle in text
    assert "noise" not in text
    assert "runs done: 3/3" in text


def test_crash_loop_alert_names_the_error_escaped() -> None:
    text, buttons = render_crash_loop(
        PATH,
        failures=[run("a", "failed"), run("b", "failed")],
        window_s=600,
        paused=True,
        error="ValueError: <bad>",
        ui_url=UI,
    )
    assert text.startswith("⚠️ sweep")
    assert "<code>ValueError: &lt;bad&gt;</code>" in text
    assert text.count("agents stopped") == 1, text
    assert [b.action for row in buttons for b in row] == ["sweep_stop"]


def test_started_and_status_show_agents_pids_and_progress() -> None:
    agents = (
        AgentView(0, 4242, NOW - timedelta(minutes=3), True, "0"),
        AgentView(1, 4343, NOW - timedelta(minutes=3), False, "1", exit_code=1),
    )
    started = render_sweep_started(
        PATH, lab_name="wine", count=20, agents=agents[:1], ui_url=UI, now=NOW
    )
    assert "started sweep" in started and "k3x9q" in started and "pid 4242 GPU 0" in started
    view = SweepView(
        path=PATH,
        name="wine",
        count=20,
        started_at=NOW - timedelta(minutes=3),
        finished_at=None,
        agents=agents,
        state="RUNNING",
        progress=SweepProgress(14, 1, 1, None),
    )
    status = render_sweeps_status([view], now=NOW, ui_url=UI)
    assert "14/20" in status and "1 failed" in status and "agents: 1 running of 2" in status
    assert "pid 4242 GPU 0 · up 3m 00s" in status and "pid 4343 GPU 1 · ended (1)" in status
    assert "no sweep running" in render_sweeps_status([], now=NOW, ui_url=UI, known=["wine"])


@pytest.mark.parametrize(
    ("action", "needle"),
    [("stop", "stopped"), ("cancel", "cancelled"), ("pause", "paused"), ("resume", "resumed")],
)
def test_sweep_changed(action: str, needle: str) -> None:
    assert needle in render_sweep_changed(PATH, action, ui_url=UI, agents_stopped=2)


def test_stop_prompt_buttons_and_escaping() -> None:
    text, buttons = render_stop_prompt("lab/wine-quality-dev/a", run("a", "running"), 60)
    assert "rf-&lt;a&gt;" in text and "1m 00s" in text
    assert [b.action for row in buttons for b in row] == ["stop_yes", "stop_no"]
    assert all(b.target == "lab/wine-quality-dev/a" for row in buttons for b in row)
